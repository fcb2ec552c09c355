"""Simulated calls through the control API, RingSense REST, the call log, and the control
API's other flows (posts → PostAdded, chats → GroupJoined, request log, rate limits)."""

from __future__ import annotations

import copy
from typing import Any

from sandbox import defaults
from sandbox.world import World
from tests.conftest import load_fixture
from tests.sandbox.conftest import (
    BASIC,
    BOT_AUTH,
    Receiver,
    SandboxClient,
    service_user_token,
    subscribe,
)

RINGSENSE_FILTER = "/ai/ringsense/v1/public/accounts/~/domains/pbx/insights"
RS = f"/ai/ringsense/v1/public/accounts/{defaults.ACCOUNT_ID}/domains/pbx"


async def _user(client: SandboxClient, name: str, **extra: Any) -> str:
    response = await client.post("/_sandbox/users", json={"name": name, **extra})
    return str((await response.json())["extensionId"])


async def _call(client: SandboxClient, **body: Any) -> dict[str, Any]:
    response = await client.post("/_sandbox/calls", json=body)
    result: dict[str, Any] = await response.json()
    assert response.status == 201, result
    return result


async def test_simulated_call_notifies_a_subset_and_rest_serves_everything(
    client: SandboxClient, receiver: Receiver, service_auth: dict[str, str]
) -> None:
    subscription = await subscribe(client, service_auth, receiver, [RINGSENSE_FILTER])
    alice = await _user(client, "Alice Able")
    call = await _call(
        client,
        ownerExtensionId=alice,
        participants=[{"name": "Tracy Debolah", "phoneNumber": "+14155550199"}],
        direction="Outbound",
        durationSec=240,
    )
    assert call["notifications"] == [
        {**call["notifications"][0], "subscriptionId": subscription["id"], "status": 200}
    ]
    [notification] = receiver.notifications()
    assert notification["event"] == RS + "/insights"
    assert notification["ownerId"] == defaults.SERVICE_USER_EXTENSION_ID
    body = notification["body"]
    assert body["title"] == "Call from Alice Able to Tracy Debolah"
    assert body["sourceRecordId"] == call["sourceRecordId"]
    assert sorted(body["insights"]) == ["NextSteps", "Sentiment", "Summary", "Transcript"]
    speakers = {s["speakerId"] for s in body["speakerInfo"]}
    assert {step["speakerId"] for step in body["insights"]["NextSteps"]} <= speakers
    assert body["speakerInfo"][0]["extensionId"] == alice
    assert body["speakerInfo"][1]["extensionId"] is None

    response = await client.get(
        f"{RS}/records/{call['sourceRecordId']}/insights", headers=service_auth
    )
    record = await response.json()
    assert response.status == 200
    assert response.headers["X-Rate-Limit-Group"] == "Light"
    assert set(record["insights"]) == {
        "Transcript",
        "Summary",
        "BulletedSummary",
        "NextSteps",
        "Highlights",
        "AIScore",
        "Sentiment",
        "CallNotes",
    }
    assert isinstance(record["insights"]["AIScore"][0]["value"], str)
    assert set(load_fixture("ringsense-insights-record-pbx.json")) <= set(record)


async def test_insight_types_select_keys(
    client: SandboxClient, service_auth: dict[str, str]
) -> None:
    call = await _call(client, ownerExtensionId=defaults.SERVICE_USER_EXTENSION_ID)
    response = await client.get(
        f"{RS}/records/{call['sourceRecordId']}/insights?insightTypes=Summary,AIScore",
        headers=service_auth,
    )
    assert sorted((await response.json())["insights"]) == ["AIScore", "Summary"]
    bad = await client.get(
        f"{RS}/records/{call['sourceRecordId']}/insights?insightTypes=Nope", headers=service_auth
    )
    assert bad.status == 400


async def test_overrides_and_chosen_notification_keys(
    client: SandboxClient, receiver: Receiver, service_auth: dict[str, str]
) -> None:
    await subscribe(client, service_auth, receiver, [RINGSENSE_FILTER])
    await _call(
        client,
        ownerExtensionId=defaults.SERVICE_USER_EXTENSION_ID,
        insights={"AIScore": [{"value": "3"}], "CallNotes": None},
        notifyInsights=["AIScore", "CallNotes"],
    )
    [notification] = receiver.notifications()
    assert notification["body"]["insights"] == {"AIScore": [{"value": "3"}]}


async def test_unknown_record_is_404(client: SandboxClient, service_auth: dict[str, str]) -> None:
    response = await client.get(f"{RS}/records/123/insights", headers=service_auth)
    assert response.status == 404
    assert (await response.json())["errors"][0]["errorCode"] == "CMN-102"


async def test_bot_token_cannot_read_ringsense(client: SandboxClient) -> None:
    call = await _call(client, ownerExtensionId=defaults.SERVICE_USER_EXTENSION_ID)
    response = await client.get(f"{RS}/records/{call['sourceRecordId']}/insights", headers=BOT_AUTH)
    body = await response.json()
    assert response.status == 403
    assert body["errorCode"] == "CMN-408"
    assert body["permissionName"] == "ReadRingSenseInsights"
    assert set(body) == set(load_fixture("error-403-user-permission-CMN-408.json"))


async def test_missing_app_scope_is_cmn_401(client: SandboxClient) -> None:
    login = await client.post(
        "/restapi/oauth/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": defaults.SERVICE_USER_JWT,
            "scope": "TeamMessaging",
        },
        headers={"Authorization": BASIC},
    )
    token = (await login.json())["access_token"]
    response = await client.get(
        "/restapi/v1.0/account/~/extension/~", headers={"Authorization": f"Bearer {token}"}
    )
    body = await response.json()
    assert response.status == 403
    assert body["errorCode"] == "InsufficientPermissions"
    assert body["errors"][0]["errorCode"] == "CMN-401"
    assert body["permissionName"] == "ReadAccounts"


async def test_session_with_two_legs(client: SandboxClient, service_auth: dict[str, str]) -> None:
    first = await _call(client, ownerExtensionId=defaults.SERVICE_USER_EXTENSION_ID)
    alice = await _user(client, "Alice Able")
    second = await _call(client, ownerExtensionId=alice, sourceSessionId=first["sourceSessionId"])
    response = await client.get(
        f"{RS}/sessions/{first['sourceSessionId']}/insights", headers=service_auth
    )
    body = await response.json()
    assert response.status == 200
    assert {r["sourceRecordId"] for r in body["records"]} == {
        first["sourceRecordId"],
        second["sourceRecordId"],
    }
    assert body["paging"]["totalElements"] == 2


async def test_event_file_form_recreates_people_and_replays_the_body(
    client: SandboxClient, receiver: Receiver, service_auth: dict[str, str]
) -> None:
    await subscribe(client, service_auth, receiver, [RINGSENSE_FILTER])
    event = load_fixture("ringsense-event-pbx.json")
    result = await _call(client, event=event)
    [notification] = receiver.notifications()
    assert notification["body"] == event["body"]
    assert notification["uuid"] != event["uuid"]
    users = await (await client.get("/_sandbox/users")).json()
    john = next(u for u in users if u["extensionId"] == "6228832XXXX")
    assert john["name"] == "John Smith"
    record = await (
        await client.get(f"{RS}/records/2728084995017/insights", headers=service_auth)
    ).json()
    assert record == event["body"]
    assert result["callLogId"]


async def test_a_late_older_event_is_announced_but_the_record_stays_current(
    client: SandboxClient, receiver: Receiver, service_auth: dict[str, str]
) -> None:
    """The REST record is the call's state now; a reordered, older notification does not
    turn it back (the bot reads the record back instead of trusting a body)."""
    await subscribe(client, service_auth, receiver, [RINGSENSE_FILTER])
    newer = copy.deepcopy(load_fixture("ringsense-event-pbx.json"))
    newer["body"]["lastModifiedTime"] = "2024-09-04T21:20:00.000Z"
    newer["body"]["title"] = "Newer"
    older = copy.deepcopy(load_fixture("ringsense-event-pbx.json"))
    await _call(client, event=newer)
    await _call(client, event=older)
    assert [n["body"]["title"] for n in receiver.notifications()] == [
        "Newer",
        older["body"]["title"],
    ]
    record = await (
        await client.get(f"{RS}/records/2728084995017/insights", headers=service_auth)
    ).json()
    assert record["title"] == "Newer"


async def test_call_log_links_to_ringsense_ids(
    client: SandboxClient, service_auth: dict[str, str]
) -> None:
    call = await _call(client, ownerExtensionId=defaults.SERVICE_USER_EXTENSION_ID)
    response = await client.get(
        "/restapi/v1.0/account/~/extension/~/call-log?recordingType=All", headers=service_auth
    )
    body = await response.json()
    assert response.status == 200
    assert response.headers["X-Rate-Limit-Group"] == "Heavy"
    [record] = body["records"]
    assert record["telephonySessionId"] == call["sourceSessionId"]
    assert record["recording"]["id"] == call["sourceRecordId"]
    assert set(load_fixture("call-log-record-with-recording.json")) <= set(record)
    by_session = await (
        await client.get(
            "/restapi/v1.0/account/~/call-log?telephonySessionId=" + call["sourceSessionId"],
            headers=service_auth,
        )
    ).json()
    assert [r["id"] for r in by_session["records"]] == [call["callLogId"]]
    single = await client.get(
        f"/restapi/v1.0/account/~/extension/~/call-log/{call['callLogId']}", headers=service_auth
    )
    assert (await single.json())["id"] == call["callLogId"]


async def test_call_log_default_window_is_one_day(client: SandboxClient, world: World) -> None:
    await _call(client, ownerExtensionId=defaults.SERVICE_USER_EXTENSION_ID)
    world.advance(2 * 86400)
    auth = {"Authorization": f"Bearer {await service_user_token(client)}"}
    path = "/restapi/v1.0/account/~/extension/~/call-log"
    recent = await (await client.get(path, headers=auth)).json()
    assert recent["records"] == []
    older = await (await client.get(path + "?dateFrom=2000-01-01T00:00:00Z", headers=auth)).json()
    assert len(older["records"]) == 1


async def test_bot_cannot_read_the_company_call_log(client: SandboxClient) -> None:
    response = await client.get("/restapi/v1.0/account/~/call-log", headers=BOT_AUTH)
    assert response.status == 403


async def test_user_post_reaches_the_bot_with_mentions(
    client: SandboxClient, receiver: Receiver
) -> None:
    await subscribe(client, BOT_AUTH, receiver, ["/restapi/v1.0/glip/posts"])
    alice = await _user(client, "Alice Able")
    chat = await (
        await client.post(
            "/_sandbox/chats",
            json={"type": "Group", "members": [alice, defaults.BOT_EXTENSION_ID]},
        )
    ).json()
    response = await client.post(
        "/_sandbox/posts",
        json={
            "chatId": chat["id"],
            "creatorId": alice,
            "text": f"![:Person]({defaults.BOT_EXTENSION_ID}) digest last",
        },
    )
    post = await response.json()
    assert post["notifications"][0]["status"] == 200
    [notification] = receiver.notifications()
    assert notification["event"] == "/restapi/v1.0/glip/posts"
    body = notification["body"]
    assert set(body) == set(load_fixture("webhook-post-added.json")["body"])
    assert body["eventType"] == "PostAdded"
    assert body["groupId"] == chat["id"]
    assert body["mentions"] == [
        {"id": defaults.BOT_EXTENSION_ID, "type": "Person", "name": "RingSense Digest"}
    ]


async def test_posts_in_chats_without_the_bot_do_not_reach_it(
    client: SandboxClient, receiver: Receiver
) -> None:
    await subscribe(client, BOT_AUTH, receiver, ["/team-messaging/v1/posts"])
    alice = await _user(client, "Alice Able")
    bob = await _user(client, "Bob Baker")
    chat = await (
        await client.post("/_sandbox/chats", json={"type": "Direct", "members": [alice, bob]})
    ).json()
    await client.post(
        "/_sandbox/posts", json={"chatId": chat["id"], "creatorId": alice, "text": "hi"}
    )
    assert receiver.notifications() == []


async def test_new_chat_sends_group_joined_to_the_bot(
    client: SandboxClient, receiver: Receiver
) -> None:
    await subscribe(client, BOT_AUTH, receiver, ["/team-messaging/v1/chats"])
    alice = await _user(client, "Alice Able")
    response = await client.post(
        "/_sandbox/chats",
        json={"type": "Team", "name": "Sales", "members": [alice, defaults.BOT_EXTENSION_ID]},
    )
    chat = await response.json()
    [notification] = receiver.notifications()
    body = notification["body"]
    real = load_fixture("webhook-chat-group-joined.json")["body"]
    assert set(body) == set(real)
    assert body["eventType"] == "GroupJoined"
    assert body["type"] == "Team"
    assert body["name"] == "Sales"
    assert body["members"] == [alice, defaults.BOT_EXTENSION_ID]
    assert body["id"] == chat["id"]


async def test_request_log_records_owner_not_token(client: SandboxClient) -> None:
    await client.delete("/_sandbox/requests")
    await client.get("/restapi/v1.0/account/~/extension/~", headers=BOT_AUTH)
    await client.get("/restapi/v1.0/account/~/extension/~")
    log = await (await client.get("/_sandbox/requests")).json()
    assert [(e["status"], e["tokenOwner"], e["group"]) for e in log] == [
        (200, defaults.BOT_EXTENSION_ID, "Light"),
        (401, None, "Light"),
    ]
    assert defaults.BOT_TOKEN not in str(log)


async def test_rate_limit_headers_count_down_and_enforcement_gives_429(
    client: SandboxClient, world: World
) -> None:
    path = "/restapi/v1.0/account/~/call-log"
    auth = {"Authorization": f"Bearer {await service_user_token(client)}"}
    first = await client.get(path, headers=auth)
    second = await client.get(path, headers=auth)
    assert first.headers["X-Rate-Limit-Limit"] == "10"
    assert first.headers["X-Rate-Limit-Window"] == "60"
    assert int(second.headers["X-Rate-Limit-Remaining"]) == (
        int(first.headers["X-Rate-Limit-Remaining"]) - 1
    )
    world.enforce_rate_limits = True
    statuses = [(await client.get(path, headers=auth)).status for _ in range(9)]
    assert statuses[:8] == [200] * 8
    assert statuses[8] == 429
    refused = await client.get(path, headers=auth)
    assert refused.status == 429
    assert refused.headers["Retry-After"] == "60"
    assert await refused.json() == load_fixture("error-429-CMN-301.json")
    world.advance(30)
    assert (await client.get(path, headers=auth)).status == 429  # retrying restarts the penalty
    world.advance(61)
    assert (await client.get(path, headers=auth)).status == 200
