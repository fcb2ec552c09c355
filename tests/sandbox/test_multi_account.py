"""Several customer accounts side by side: RingSense events, REST reads, people and chats
stay within their account; guests are visible through shared chats only. Also each
extension's own call log."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from sandbox import defaults
from tests.sandbox.conftest import BASIC, Receiver, SandboxClient, subscribe

RINGSENSE_FILTER = "/ai/ringsense/v1/public/accounts/~/domains/pbx/insights"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@pytest.fixture
async def other_receiver(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> Receiver:
    hook = Receiver()
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    server = await aiohttp_server(app)
    hook.url = str(server.make_url("/hook"))
    return hook


async def _login(client: SandboxClient, jwt: str) -> dict[str, str]:
    response = await client.post(
        "/restapi/oauth/token",
        data={"grant_type": JWT_GRANT, "assertion": jwt},
        headers={"Authorization": BASIC},
    )
    body = await response.json()
    assert response.status == 200, body
    return {"Authorization": f"Bearer {body['access_token']}"}


async def _account(client: SandboxClient) -> dict[str, Any]:
    response = await client.post("/_sandbox/accounts", json={"name": "Globex"})
    body: dict[str, Any] = await response.json()
    assert response.status == 201, body
    return body


async def _user(client: SandboxClient, name: str, **extra: Any) -> dict[str, Any]:
    response = await client.post("/_sandbox/users", json={"name": name, **extra})
    body: dict[str, Any] = await response.json()
    assert response.status == 201, body
    return body


async def _call(client: SandboxClient, **body: Any) -> dict[str, Any]:
    response = await client.post("/_sandbox/calls", json=body)
    result: dict[str, Any] = await response.json()
    assert response.status == 201, result
    return result


async def test_ringsense_events_and_records_stay_in_their_account(
    client: SandboxClient,
    receiver: Receiver,
    other_receiver: Receiver,
    service_auth: dict[str, str],
) -> None:
    globex = await _account(client)
    globex_id = globex["accountId"]
    globex_auth = await _login(client, globex["admin"]["jwt"])
    await subscribe(client, service_auth, receiver, [RINGSENSE_FILTER])
    subscription = await subscribe(client, globex_auth, other_receiver, [RINGSENSE_FILTER])
    assert subscription["eventFilters"] == [
        f"/ai/ringsense/v1/public/accounts/{globex_id}/domains/pbx/insights"
    ]

    ours = await _call(client, ownerExtensionId=defaults.SERVICE_USER_EXTENSION_ID)
    theirs = await _call(client, ownerExtensionId=globex["admin"]["extensionId"])
    [our_event] = receiver.notifications()
    [their_event] = other_receiver.notifications()
    assert our_event["body"]["sourceRecordId"] == ours["sourceRecordId"]
    assert their_event["body"]["sourceRecordId"] == theirs["sourceRecordId"]
    assert their_event["event"] == (
        f"/ai/ringsense/v1/public/accounts/{globex_id}/domains/pbx/insights"
    )
    assert their_event["body"]["speakerInfo"][0]["accountId"] == globex_id

    own_path = f"/ai/ringsense/v1/public/accounts/~/domains/pbx/records/{theirs['sourceRecordId']}"
    assert (await client.get(own_path + "/insights", headers=globex_auth)).status == 200
    assert (await client.get(own_path + "/insights", headers=service_auth)).status == 404
    foreign = (
        f"/ai/ringsense/v1/public/accounts/{defaults.ACCOUNT_ID}/domains/pbx/records/"
        f"{ours['sourceRecordId']}/insights"
    )
    assert (await client.get(foreign, headers=globex_auth)).status == 404
    session = (
        f"/ai/ringsense/v1/public/accounts/~/domains/pbx/sessions/{ours['sourceSessionId']}"
        "/insights"
    )
    assert (await client.get(session, headers=globex_auth)).status == 404
    assert (await client.get(session, headers=service_auth)).status == 200


async def test_people_and_chats_of_another_account_are_invisible_until_shared(
    client: SandboxClient, service_auth: dict[str, str]
) -> None:
    globex = await _account(client)
    globex_auth = await _login(client, globex["admin"]["jwt"])
    guest = await _user(client, "Gina Guest", accountId=globex["accountId"])
    assert guest["accountId"] == globex["accountId"]

    person = f"/team-messaging/v1/persons/{guest['extensionId']}"
    assert (await client.get(person, headers=service_auth)).status == 404
    extension = f"/restapi/v1.0/account/~/extension/{guest['extensionId']}"
    assert (await client.get(extension, headers=service_auth)).status == 404
    assert (await client.get(extension, headers=globex_auth)).status == 200

    chats = (await (await client.get("/team-messaging/v1/chats", headers=globex_auth)).json())[
        "records"
    ]
    assert [c["id"] for c in chats if c["type"] == "Everyone"] == [globex["everyoneChatId"]]
    everyone = await client.get(
        f"/team-messaging/v1/chats/{globex['everyoneChatId']}", headers=service_auth
    )
    assert everyone.status == 404

    response = await client.post(
        "/_sandbox/chats",
        json={
            "type": "Team",
            "name": "Partners",
            "members": [defaults.SERVICE_USER_EXTENSION_ID, guest["extensionId"]],
        },
    )
    assert response.status == 201
    shared = await client.get(person, headers=service_auth)
    assert shared.status == 200
    assert (await shared.json())["companyId"] == globex["accountId"]
    assert (await client.get(extension, headers=service_auth)).status == 404


async def test_each_account_has_its_own_company_call_log(
    client: SandboxClient, service_auth: dict[str, str]
) -> None:
    globex = await _account(client)
    globex_auth = await _login(client, globex["admin"]["jwt"])
    ours = await _call(client, ownerExtensionId=defaults.SERVICE_USER_EXTENSION_ID)
    theirs = await _call(client, ownerExtensionId=globex["admin"]["extensionId"])
    path = "/restapi/v1.0/account/~/call-log"
    our_log = await (await client.get(path, headers=service_auth)).json()
    their_log = await (await client.get(path, headers=globex_auth)).json()
    assert [r["id"] for r in our_log["records"]] == [ours["callLogId"]]
    assert [r["id"] for r in their_log["records"]] == [theirs["callLogId"]]
    assert f"/account/{globex['accountId']}/" in their_log["records"][0]["uri"]


async def test_a_users_call_log_holds_its_own_calls_and_legs_only(
    client: SandboxClient, service_auth: dict[str, str]
) -> None:
    alice = await _user(client, "Alice Able")
    bob = await _user(client, "Bob Baker")
    carol = await _user(client, "Carol Cole")
    internal = await _call(
        client,
        ownerExtensionId=alice["extensionId"],
        participants=[bob["extensionId"]],
        direction="Outbound",
    )
    await _call(client, ownerExtensionId=carol["extensionId"])
    path = "/restapi/v1.0/account/~/extension/~/call-log"

    alice_auth = await _login(client, alice["jwt"])
    [alice_record] = (await (await client.get(path, headers=alice_auth)).json())["records"]
    assert alice_record["id"] == internal["callLogId"]
    assert alice_record["direction"] == "Outbound"
    assert alice_record["from"]["extensionId"] == alice["extensionId"]

    bob_auth = await _login(client, bob["jwt"])
    [bob_record] = (await (await client.get(path, headers=bob_auth)).json())["records"]
    assert bob_record["telephonySessionId"] == internal["sourceSessionId"]
    assert bob_record["recording"]["id"] == internal["sourceRecordId"]
    assert bob_record["direction"] == "Inbound"
    assert bob_record["id"] != alice_record["id"]
    assert bob_record["to"]["extensionId"] == bob["extensionId"]

    someone_else = f"/restapi/v1.0/account/~/extension/{carol['extensionId']}/call-log"
    refused = await client.get(someone_else, headers=alice_auth)
    assert refused.status == 403
    assert (await refused.json())["permissionName"] == "FullCompanyCallLog"
    company = await client.get("/restapi/v1.0/account/~/call-log", headers=alice_auth)
    assert company.status == 403
    everything = await (
        await client.get("/restapi/v1.0/account/~/call-log", headers=service_auth)
    ).json()
    assert len(everything["records"]) == 3
    admin_view = await (await client.get(someone_else, headers=service_auth)).json()
    assert len(admin_view["records"]) == 1


async def test_a_second_leg_shows_in_the_call_log_and_the_session_insights(
    client: SandboxClient, service_auth: dict[str, str]
) -> None:
    alice = await _user(client, "Alice Able")
    first = await _call(client, ownerExtensionId=defaults.SERVICE_USER_EXTENSION_ID)
    second = await _call(
        client, ownerExtensionId=alice["extensionId"], sourceSessionId=first["sourceSessionId"]
    )
    log = await (
        await client.get(
            "/restapi/v1.0/account/~/call-log?telephonySessionId=" + first["sourceSessionId"],
            headers=service_auth,
        )
    ).json()
    assert {r["id"] for r in log["records"]} == {first["callLogId"], second["callLogId"]}
    assert {r["recording"]["id"] for r in log["records"]} == {
        first["sourceRecordId"],
        second["sourceRecordId"],
    }
    assert len({r["partyId"] for r in log["records"]}) == 2
    insights = await (
        await client.get(
            "/ai/ringsense/v1/public/accounts/~/domains/pbx/sessions/"
            f"{first['sourceSessionId']}/insights",
            headers=service_auth,
        )
    ).json()
    assert {r["sourceRecordId"] for r in insights["records"]} == {
        first["sourceRecordId"],
        second["sourceRecordId"],
    }
