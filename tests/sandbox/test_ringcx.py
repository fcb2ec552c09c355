"""RingCX on the sandbox host: the token exchange and refresh, interaction metadata and
transcripts, their limits and errors, checked against the RingCX fixtures and the
engage-voice OpenAPI spec."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from sandbox import defaults
from sandbox.world import World
from tests.conftest import FIXTURES_DIR, load_fixture
from tests.sandbox.conftest import BASIC, BOT_AUTH, SandboxClient, service_user_token

EXCHANGE = "/api/auth/login/rc/accesstoken"
REFRESH = "/api/auth/token/refresh"
SUB = "12345"
INTEGRATION = f"/voice/api/cx/integration/v1/accounts/{defaults.ACCOUNT_ID}/sub-accounts/{SUB}"
METADATA = INTEGRATION + "/interaction-metadata"
EASTERN = ZoneInfo("US/Eastern")


@cache
def _raw_engage_spec() -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(
        (FIXTURES_DIR / "openapi" / "engage-voice_openapi3.json").read_text(encoding="utf-8")
    )
    return spec


@cache
def _engage_spec() -> dict[str, Any]:
    spec = _raw_engage_spec()
    patched = copy.deepcopy(spec)
    schemas = patched["components"]["schemas"]
    # The docs' login samples (fixtures ringcx-auth-*.json) send `agentGroupId: null`;
    # the spec types it as a plain integer.
    schemas["AgentV2"]["properties"]["agentGroupId"]["nullable"] = True
    # The spec's own voice transcript example (fixture ringcx-transcript-response-voice.json)
    # has `participantType: null`; its schema types it as a plain string.
    schemas["TranscriptPhrase"]["properties"]["participantType"]["nullable"] = True
    return patched


def _problems(schema_name: str, body: Any, *, patched: bool = True) -> list[str]:
    spec = _engage_spec() if patched else _raw_engage_spec()
    registry: Registry[Any] = Registry().with_resource(
        "urn:ev", Resource.from_contents(spec, default_specification=DRAFT4)
    )
    validator = OAS30Validator(
        {"$ref": f"urn:ev#/components/schemas/{schema_name}"}, registry=registry
    )
    return [error.message for error in validator.iter_errors(body)]


def test_the_spec_patches_follow_the_samples() -> None:
    """Each patch is needed for a real sample to pass, and the samples pass with them."""
    voice = load_fixture("ringcx-transcript-response-voice.json")
    login = load_fixture("ringcx-auth-token-response.json")
    assert not _problems("RCInteractionTranscriptData", voice)
    assert _problems("RCInteractionTranscriptData", voice, patched=False)
    assert _problems("AccessTokenUserDetails", login, patched=False)
    voice["transcript"][0]["participantType"] = 7
    assert _problems("RCInteractionTranscriptData", voice)
    login["agentDetails"][0]["agentGroupId"] = "x"
    assert _problems("AccessTokenUserDetails", login)


def test_the_spec_check_can_fail() -> None:
    assert _problems("WEMInteractionSegmentMetaData2Array", [{"hasTranscript": "yes"}])
    assert _problems("RCInteractionTranscriptData", {"transcript": [{"message": 1}]})
    assert not _problems("AccessTokenUserDetails", load_fixture("ringcx-auth-token-response.json"))


async def _enable(client: SandboxClient, **body: Any) -> dict[str, Any]:
    response = await client.post("/_sandbox/ringcx/accounts", json=body)
    result: dict[str, Any] = await response.json()
    assert response.status == 201, result
    return result


async def _login(client: SandboxClient, rc_token: str, **query: str) -> tuple[int, Any]:
    response = await client.post(
        EXCHANGE,
        params={"includeRefresh": "true", **query},
        data={"rcAccessToken": rc_token, "rcTokenType": "Bearer"},
    )
    if response.content_type == "application/json":
        return response.status, await response.json()
    return response.status, await response.text()


async def _cx_auth(client: SandboxClient) -> dict[str, str]:
    status, body = await _login(client, await service_user_token(client))
    assert status == 200, body
    return {"Authorization": f"Bearer {body['accessToken']}"}


async def _segment(client: SandboxClient, **body: Any) -> dict[str, Any]:
    body.setdefault("agentExtensionId", defaults.SERVICE_USER_EXTENSION_ID)
    response = await client.post("/_sandbox/ringcx/segments", json=body)
    result: dict[str, Any] = await response.json()
    assert response.status == 201, result
    return result


def _eastern(moment: datetime) -> str:
    return moment.astimezone(EASTERN).strftime("%Y-%m-%d %H:%M:%S")


async def test_the_exchange_answers_like_the_docs_sample(client: SandboxClient) -> None:
    enabled = await _enable(client)
    assert enabled["rcAccountId"] == defaults.ACCOUNT_ID
    assert enabled["subAccounts"][0]["subAccountId"] == SUB
    status, body = await _login(client, await service_user_token(client))
    assert status == 200
    sample = load_fixture("ringcx-auth-token-response.json")
    assert list(body) == list(sample)
    assert [list(agent) for agent in body["agentDetails"]] == [list(sample["agentDetails"][0])]
    agent = body["agentDetails"][0]
    assert agent["rcUserId"] == int(defaults.SERVICE_USER_EXTENSION_ID)
    assert agent["accountId"] == SUB
    assert body["tokenType"] == "Bearer"
    assert body["mainAccountId"] == enabled["mainAccountId"]
    assert _problems("AccessTokenUserDetails", body) == []
    without_refresh = await client.post(
        EXCHANGE, data={"rcAccessToken": await service_user_token(client), "rcTokenType": "Bearer"}
    )
    assert "refreshToken" not in await without_refresh.json()


async def test_the_exchange_refuses_what_cannot_use_ringcx(client: SandboxClient) -> None:
    token = await service_user_token(client)
    status, body = await _login(client, token)
    assert status == 403  # the account has no RingCX yet
    assert set(body) == set(load_fixture("ringcx-error-403.json"))
    await _enable(client)
    status, body = await _login(client, "sbx-at-nonsense")
    assert status == 401
    assert body["requestUri"] == f"{EXCHANGE} - POST"
    assert (await _login(client, defaults.BOT_TOKEN))[0] == 403  # a bot is no RingCX user
    wrong_type = await client.post(EXCHANGE, data={"rcAccessToken": token, "rcTokenType": "MAC"})
    assert wrong_type.status == 400
    # an expired RingCentral token is no good either
    revoke = await client.post(
        "/restapi/oauth/revoke", data={"token": token}, headers={"Authorization": BASIC}
    )
    assert revoke.status == 200
    assert (await _login(client, token))[0] == 401


async def test_the_exchange_allows_five_a_minute(client: SandboxClient, world: World) -> None:
    await _enable(client)
    token = await service_user_token(client)
    statuses = [(await _login(client, token))[0] for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    response = await client.post(EXCHANGE, data={"rcAccessToken": token, "rcTokenType": "Bearer"})
    assert response.status == 429
    assert response.headers["Retry-After"] == "60"
    world.advance(59)
    assert (await _login(client, token))[0] == 429
    world.advance(1)
    assert (await _login(client, token))[0] == 200
    # the refused tries did not count: four more fit in this minute
    assert [(await _login(client, token))[0] for _ in range(5)] == [200] * 4 + [429]


async def test_tokens_expire_after_five_minutes_and_refresh(
    client: SandboxClient, world: World
) -> None:
    await _enable(client)
    _, login = await _login(client, await service_user_token(client))
    auth = {"Authorization": f"Bearer {login['accessToken']}"}
    window = {"segmentEndTime": "2024-07-22 07:00:00", "timeInterval": 60, "timeZone": "UTC"}
    assert (await client.post(METADATA, json=window, headers=auth)).status == 200
    world.advance(299)
    assert (await client.post(METADATA, json=window, headers=auth)).status == 200
    world.advance(1)
    expired = await client.post(METADATA, json=window, headers=auth)
    assert expired.status == 401
    assert expired.content_type == "text/plain"
    assert await expired.text() == "Jwt is expired"

    refreshed = await client.post(REFRESH, data={"refresh_token": login["refreshToken"]})
    body = await refreshed.json()
    assert refreshed.status == 200, body
    assert list(body) == list(load_fixture("ringcx-auth-refresh-response.json"))
    assert body["refreshToken"] != login["refreshToken"]
    fresh = {"Authorization": f"Bearer {body['accessToken']}"}
    assert (await client.post(METADATA, json=window, headers=fresh)).status == 200
    again = await client.post(REFRESH, data={"refresh_token": login["refreshToken"]})
    assert again.status == 401  # single use

    nobody = await client.post(METADATA, json=window)
    assert nobody.status == 401 and nobody.content_type == "text/plain"
    forged = await client.post(METADATA, json=window, headers={"Authorization": "Bearer x"})
    assert forged.status == 401
    # RingCentral tokens are no RingCX tokens
    assert (await client.post(METADATA, json=window, headers=BOT_AUTH)).status == 401


async def test_metadata_reports_segments_ending_in_the_window(
    client: SandboxClient, world: World
) -> None:
    await _enable(client)
    auth = await _cx_auth(client)
    base = datetime(2024, 7, 22, 11, 0, 0, tzinfo=UTC)
    inside_first = await _segment(
        client, segmentStartTime=(base - timedelta(seconds=120)).isoformat(), durationSec=120
    )
    inside_last = await _segment(
        client, segmentStartTime=(base + timedelta(seconds=500)).isoformat(), durationSec=99
    )
    after = await _segment(
        client, segmentStartTime=(base + timedelta(seconds=480)).isoformat(), durationSec=120
    )
    before = await _segment(
        client, segmentStartTime=(base - timedelta(seconds=200)).isoformat(), durationSec=199
    )
    ongoing = await _segment(
        client, segmentStartTime=datetime.now(tz=UTC).isoformat(), durationSec=3600
    )
    window = {"segmentEndTime": _eastern(base), "timeInterval": 600, "timeZone": "US/Eastern"}
    response = await client.post(METADATA, json=window, headers=auth)
    segments = await response.json()
    assert response.status == 200
    assert [s["segmentId"] for s in segments] == [
        inside_first["segmentId"],
        inside_last["segmentId"],
    ]
    assert after["segmentId"] not in json.dumps(segments)
    assert before["segmentId"] not in json.dumps(segments)
    sample = load_fixture("ringcx-interaction-metadata-response.json")[0]
    for segment in segments:
        assert list(segment) == list(sample)
    assert segments[0] == inside_first["metadata"]
    first = segments[0]
    assert first["segmentEndTimeMs"] == "2024-07-22T11:00:00.000Z"
    assert first["segmentDurationMs"] == 120000
    assert first["segmentParticipantRcExtensionId"] == defaults.SERVICE_USER_EXTENSION_ID
    assert first["dialogId"].startswith("s-v-") and first["segmentId"].startswith("p-v-")
    assert first["segmentId"].startswith("p" + first["dialogId"][1:] + "-")
    assert [e["eventType"] for e in first["segmentEvents"]] == ["REC_START", "REC_STOP"]
    assert _problems("WEMInteractionSegmentMetaData2Array", segments) == []
    # the same window read in another zone is another window
    utc = {**window, "timeZone": "UTC"}
    assert await (await client.post(METADATA, json=utc, headers=auth)).json() == []
    # a segment still going on is not reported yet
    world.advance(7200)
    now = datetime.now(tz=UTC) + timedelta(seconds=7200)
    recent = {"segmentEndTime": _eastern(now - timedelta(minutes=90)), "timeInterval": 3600}
    auth = await _cx_auth(client)
    later = await client.post(METADATA, json={**recent, "timeZone": "US/Eastern"}, headers=auth)
    assert ongoing["segmentId"] in [s["segmentId"] for s in await later.json()]


@pytest.mark.parametrize(
    ("change", "attribute"),
    [
        ({"segmentEndTime": "2024-07-22T07:00:00"}, "segmentEndTime"),
        ({"segmentEndTime": "2024-02-30 07:00:00"}, "segmentEndTime"),
        ({"timeInterval": 0}, "timeInterval"),
        # EVSPEC says 10800, the older reports.md 3600: the stricter one holds.
        ({"timeInterval": 3601}, "timeInterval"),
        ({"timeInterval": "600"}, "timeInterval"),
        ({"timeZone": "Mars/Olympus"}, "timeZone"),
        ({"timeZone": None}, "timeZone"),
    ],
)
async def test_bad_metadata_requests_are_400(
    client: SandboxClient, change: dict[str, Any], attribute: str
) -> None:
    await _enable(client)
    auth = await _cx_auth(client)
    body = {"segmentEndTime": "2022-10-20 07:40:00", "timeInterval": 600, "timeZone": "US/Eastern"}
    body = {k: v for k, v in {**body, **change}.items() if v is not None}
    response = await client.post(METADATA, json=body, headers=auth)
    error = await response.json()
    assert response.status == 400
    sample = load_fixture("ringcx-error-400.json")
    assert {k: error[k] for k in sample if k != "timestamp"} == {
        **{k: v for k, v in sample.items() if k != "timestamp"},
        "requestUri": f"{METADATA} - POST",
    }
    assert [v["attributeName"] for v in error["validationErrors"]] == [attribute]
    assert _problems("Errors", error) == []


async def test_accounts_and_sub_accounts_are_checked(client: SandboxClient) -> None:
    await _enable(client)
    auth = await _cx_auth(client)
    window = load_fixture("ringcx-interaction-metadata-request.json")
    other_account = METADATA.replace(defaults.ACCOUNT_ID, "999999001")
    denied = await client.post(other_account, json=window, headers=auth)
    assert denied.status == 403
    assert set(await denied.json()) == set(load_fixture("ringcx-error-403.json"))
    not_json = await client.post(METADATA, data=b"nope", headers=auth)
    assert not_json.status == 400
    assert "validationErrors" not in await not_json.json()
    missing = await client.post(METADATA.replace(SUB, "99999999"), json=window, headers=auth)
    assert missing.status == 404
    other = await client.post("/_sandbox/accounts", json={"name": "Other Corp"})
    await _enable(client, rcAccountId=(await other.json())["accountId"], subAccountId="777")
    foreign = await client.post(METADATA.replace(SUB, "777"), json=window, headers=auth)
    assert foreign.status == 403
    taken = await client.post("/_sandbox/ringcx/accounts", json={"subAccountId": "777"})
    assert taken.status == 409


async def test_metadata_allows_3_a_minute_and_9_per_quarter_hour(
    client: SandboxClient, world: World
) -> None:
    await _enable(client)
    await _enable(client, subAccountId="54321")
    window = load_fixture("ringcx-interaction-metadata-request.json")

    async def statuses(count: int, path: str = METADATA) -> list[int]:
        auth = await _cx_auth(client)  # tokens only live 5 minutes
        return [(await client.post(path, json=window, headers=auth)).status for _ in range(count)]

    assert await statuses(4) == [200, 200, 200, 429]
    auth = await _cx_auth(client)
    refused = await client.post(METADATA, json=window, headers=auth)
    assert refused.headers["Retry-After"] == "60"
    assert set(await refused.json()) >= {"generalMessage", "requestUri", "timestamp"}
    assert await statuses(1, METADATA.replace(SUB, "54321")) == [200]  # per sub-account
    world.advance(60)
    assert await statuses(4) == [200, 200, 200, 429]
    world.advance(60)
    assert await statuses(3) == [200, 200, 200]
    world.advance(60)  # 3 minutes in: 9 used in the quarter hour
    auth = await _cx_auth(client)
    quarter = await client.post(METADATA, json=window, headers=auth)
    assert quarter.status == 429
    assert quarter.headers["Retry-After"] == str(900 - 180)
    world.advance(720)
    assert await statuses(1) == [200]
    await client.post("/_sandbox/settings", json={"ringcxEnforceRateLimits": False})
    assert await statuses(5) == [200] * 5


async def test_a_transcript_is_404_until_ready(client: SandboxClient, world: World) -> None:
    await _enable(client)
    lines = [
        {"speaker": "agent", "text": "Thank you for calling, how can I help?"},
        {"speaker": "contact", "text": "My order did not arrive."},
        {"speaker": "agent", "text": "Let me check that for you."},
    ]
    segment = await _segment(client, readyAfterSeconds=300, transcript=lines, durationSec=90)
    path = (
        f"{INTEGRATION}/transcripts/dialogs/{segment['dialogId']}/segments/{segment['segmentId']}"
    )
    auth = await _cx_auth(client)
    pending = await client.get(path, headers=auth)
    assert pending.status == 404
    error = await pending.json()
    sample = load_fixture("ringcx-error-404.json")
    assert list(error) == list(sample)
    assert error["requestUri"] == f"{path} - GET"
    assert {k: error[k] for k in ("developerMessage", "generalMessage")} == {
        k: sample[k] for k in ("developerMessage", "generalMessage")
    }
    ready_at = datetime.fromisoformat(segment["transcriptReadyAt"].replace("Z", "+00:00"))
    world.advance(ready_at.timestamp() - world.now() - 1)
    assert (await client.get(path, headers=auth)).status == 404
    world.advance(1.01)  # the ISO time is truncated to the millisecond
    ready = await client.get(path, headers=auth)
    body = await ready.json()
    assert ready.status == 200, body
    sample_body = load_fixture("ringcx-transcript-response-voice.json")
    assert list(body) == list(sample_body)
    assert [list(line) for line in body["transcript"]] == [list(sample_body["transcript"][0])] * 3
    assert [line["message"] for line in body["transcript"]] == [line["text"] for line in lines]
    assert body["transcript"][0]["participantId"] == segment["segmentId"]
    assert body["transcript"][1]["participantId"] != segment["segmentId"]
    stamps = [int(line["timestamp"]) for line in body["transcript"]]
    start_ms = int(
        datetime.fromisoformat(segment["segmentStartTime"].replace("Z", "+00:00")).timestamp()
        * 1000
    )
    assert stamps == sorted(stamps) and start_ms < stamps[0] and stamps[-1] < start_ms + 90000
    assert _problems("RCInteractionTranscriptData", body) == []
    unknown = path.replace(segment["segmentId"], segment["segmentId"] + "0")
    assert (await client.get(unknown, headers=auth)).status == 404


async def test_no_transcript_is_404_forever_and_a_made_up_one_is_plausible(
    client: SandboxClient, world: World
) -> None:
    await _enable(client)
    silent = await _segment(client, hasTranscript=False)
    talking = await _segment(client, dialogOrigination="OUTBOUND")
    assert silent["metadata"]["hasTranscript"] is False
    assert talking["metadata"]["dialogOrigination"] == "OUTBOUND"
    world.advance(3600)
    auth = await _cx_auth(client)
    for segment, expected in ((silent, 404), (talking, 200)):
        path = (
            f"{INTEGRATION}/transcripts/dialogs/{segment['dialogId']}"
            f"/segments/{segment['segmentId']}"
        )
        response = await client.get(path, headers=auth)
        assert response.status == expected
    transcript = (await response.json())["transcript"]
    assert len(transcript) >= 20
    assert len({line["participantId"] for line in transcript}) == 2
    listed = await (await client.get("/_sandbox/ringcx/segments")).json()
    assert [s["segmentId"] for s in listed] == [silent["segmentId"], talking["segmentId"]]


async def test_transcripts_allow_120_a_minute(client: SandboxClient) -> None:
    await _enable(client)
    segment = await _segment(client)
    path = (
        f"{INTEGRATION}/transcripts/dialogs/{segment['dialogId']}/segments/{segment['segmentId']}"
    )
    auth = await _cx_auth(client)
    statuses = [(await client.get(path, headers=auth)).status for _ in range(121)]
    assert statuses == [200] * 120 + [429]


async def test_ringcx_calls_are_in_the_request_log(client: SandboxClient) -> None:
    await _enable(client)
    rc_token = await service_user_token(client)
    await client.delete("/_sandbox/requests")
    status, _ = await _login(client, "x", rcAccessToken=rc_token)
    assert status == 401  # the form wins over the query
    status, login = await _login(client, rc_token)
    auth = {"Authorization": f"Bearer {login['accessToken']}"}
    window = load_fixture("ringcx-interaction-metadata-request.json")
    await client.post(METADATA, json=window, headers=auth)
    await client.get(f"{INTEGRATION}/transcripts/dialogs/d/segments/s", headers=auth)
    log = await (await client.get("/_sandbox/requests")).json()
    assert [(e["group"], e["status"]) for e in log] == [
        ("RingCX-auth", 401),
        ("RingCX-auth", 200),
        ("RingCX-metadata", 200),
        ("RingCX-transcript", 404),
    ]
    assert all(e["tokenOwner"] == defaults.SERVICE_USER_EXTENSION_ID for e in log[1:])
    assert rc_token not in json.dumps(log)
    assert "rcAccessToken=***" in log[0]["query"]


async def test_control_validates_segments(client: SandboxClient) -> None:
    first = await client.post(
        "/_sandbox/ringcx/segments", json={"agentExtensionId": defaults.SERVICE_USER_EXTENSION_ID}
    )
    assert first.status == 400  # no RingCX yet
    await _enable(client)
    for bad in (
        {"agentExtensionId": defaults.BOT_EXTENSION_ID},
        {"agentExtensionId": "404"},
        {"agentExtensionId": defaults.SERVICE_USER_EXTENSION_ID, "dialogOrigination": "X"},
        {"agentExtensionId": defaults.SERVICE_USER_EXTENSION_ID, "durationSec": 0},
        {"agentExtensionId": defaults.SERVICE_USER_EXTENSION_ID, "transcript": [{"text": "x"}]},
        {"agentExtensionId": defaults.SERVICE_USER_EXTENSION_ID, "subAccountId": "1"},
        {"agentExtensionId": defaults.SERVICE_USER_EXTENSION_ID, "segmentStartTime": "soon"},
    ):
        response = await client.post("/_sandbox/ringcx/segments", json=bad)
        assert response.status == 400, bad
