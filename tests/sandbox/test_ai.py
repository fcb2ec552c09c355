"""The deprecated AI API (analyze-interaction, job status), recording content, and the
control API for AI jobs: validation, the background job and its webhook, the outcome of
sandbox recording URLs, expiry, masking of tokens, rate limits."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from typing import Any

import pytest

from sandbox import defaults
from sandbox.ai_jobs import interaction_response
from sandbox.keys import WORLD_KEY
from sandbox.world import World
from tests.conftest import load_fixture
from tests.sandbox.conftest import (
    BASIC,
    BOT_AUTH,
    Receiver,
    SandboxClient,
    service_user_token,
    settle,
)

ANALYZE = "/ai/insights/v1/async/analyze-interaction"
JOBS = "/ai/status/v1/jobs/"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-1[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
#: The 2022 API page's utterance emotions (docs/ai/interaction-analytics-api.md).
DOCUMENTED_EMOTIONS = (
    "Anger",
    "Anticipation",
    "Disgust",
    "Fear",
    "Joy",
    "Sadness",
    "Surprise",
    "Trust",
    "Neutral",
)
GOOD_BODY = {
    "contentUri": "https://media.example.com/call.mp3",
    "encoding": "Mpeg",
    "languageCode": "en-US",
    "source": "RingCentral",
    "audioType": "CallCenter",
    "insights": ["All"],
    "enableVoiceActivityDetection": True,
    "separateSpeakerPerChannel": False,
    "speakerCount": 2,
    "speechContexts": [{"phrases": ["RingCentral"]}],
}


async def _settings(client: SandboxClient, **values: Any) -> dict[str, Any]:
    response = await client.post("/_sandbox/settings", json=values)
    body: dict[str, Any] = await response.json()
    assert response.status == 200, body
    return body


async def _submit(
    client: SandboxClient, auth: dict[str, str], webhook: str, **body: Any
) -> dict[str, Any]:
    response = await client.post(
        ANALYZE, params={"webhook": webhook}, json={**GOOD_BODY, **body}, headers=auth
    )
    result: dict[str, Any] = await response.json()
    assert response.status == 202, result
    return result


async def _status(client: SandboxClient, auth: dict[str, str], job_id: str) -> tuple[int, Any]:
    response = await client.get(JOBS + job_id, headers=auth)
    return response.status, await response.json()


async def _login(client: SandboxClient, jwt: str) -> dict[str, str]:
    response = await client.post(
        "/restapi/oauth/token",
        data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": jwt},
        headers={"Authorization": BASIC},
    )
    assert response.status == 200, await response.text()
    return {"Authorization": f"Bearer {(await response.json())['access_token']}"}


async def _jobs(client: SandboxClient) -> list[dict[str, Any]]:
    response = await client.get("/_sandbox/ai/jobs")
    jobs: list[dict[str, Any]] = await response.json()
    return jobs


async def test_a_job_runs_then_posts_its_result_to_the_webhook(
    client: SandboxClient, receiver: Receiver, world: World, service_auth: dict[str, str]
) -> None:
    await _settings(client, aiJobDelaySeconds=600)
    accepted = await _submit(client, service_auth, receiver.url)
    assert list(accepted) == ["jobId"]
    job_id = accepted["jobId"]
    assert UUID.match(job_id)

    status, running = await _status(client, service_auth, job_id)
    assert status == 200
    assert running["status"] == "InProgress"
    assert list(running) == list(load_fixture("ai-job-status-in-progress.json"))
    assert receiver.requests == []

    world.advance(599)
    await asyncio.sleep(0.1)
    assert (await _status(client, service_auth, job_id))[1]["status"] == "InProgress"
    world.advance(1)
    await settle(client)
    [request] = receiver.requests
    result = request["json"]
    assert request["headers"]["RCRequestId"] == job_id
    assert request["headers"]["Content-Type"] == "application/json"
    assert not any("signature" in name.lower() for name in request["headers"])
    # The documented callback body (seed 000, fixture ai-webhook-fail-CAI-101.json): no
    # jobId, so the receiver must know the job by its address.
    assert list(result) == list(load_fixture("ai-webhook-fail-CAI-101.json"))
    assert result["status"] == "Success"
    status, done = await _status(client, service_auth, job_id)
    assert status == 200
    assert list(done) == list(load_fixture("ai-job-status-success.json"))
    assert done["api"] == ANALYZE
    assert (done["status"], done["response"]) == (result["status"], result["response"])

    created = world.ai_jobs[job_id].creation_time
    assert world.ai_jobs[job_id].expiration_time == created + 7 * 86400
    [shown] = await _jobs(client)
    assert shown["status"] == "Success"
    assert [d["status"] for d in shown["webhookDeliveries"]] == [200]
    assert shown["webhookDeliveries"][0]["payload"] == result


async def test_the_analysis_has_the_documented_shape(
    client: SandboxClient, receiver: Receiver, service_auth: dict[str, str]
) -> None:
    accepted = await _submit(client, service_auth, receiver.url)
    await settle(client)
    response = receiver.notifications()[0]["response"]
    assert list(response) == ["utteranceInsights", "speakerInsights", "conversationalInsights"]
    utterances = response["utteranceInsights"]
    assert 25 <= len(utterances) <= 35
    assert {u["speakerId"] for u in utterances} == {"0", "1"}
    for unit in utterances:
        assert set(unit) == {"start", "end", "text", "confidence", "speakerId", "insights"}
        assert unit["start"] < unit["end"]
        [emotion] = unit["insights"]
        assert emotion["name"] == "Emotion"
        assert emotion["value"] in DOCUMENTED_EMOTIONS
    starts = [u["start"] for u in utterances]
    assert starts == sorted(starts)

    speaker = response["speakerInsights"]
    assert speaker["speakerCount"] == 2
    by_name = {i["name"]: i["values"] for i in speaker["insights"]}
    assert list(by_name) == ["Energy", "Pace", "TalkToListenRatio", "QuestionsAsked"]
    for value in by_name["Energy"]:
        assert isinstance(value["value"], float) and value["value"] > 0
    for value in by_name["Pace"]:
        assert value["value"] in ("slow", "medium", "fast") and value["wpm"] > 0
    ratios = [v["value"] for v in by_name["TalkToListenRatio"]]
    assert all(re.match(r"^\d+:\d+$", r) for r in ratios)
    asked = {v["speakerId"]: v for v in by_name["QuestionsAsked"]}
    for speaker_id, value in asked.items():
        mine = [u for u in utterances if u["speakerId"] == speaker_id and u["text"].endswith("?")]
        assert value["value"] == len(mine) == len(value["questions"])

    names = [i["name"] for i in response["conversationalInsights"]]
    assert names == [
        "KeyPhrases",
        "ExtractiveSummary",
        "Topics",
        "Tasks",
        "AbstractiveSummaryLong",
        "AbstractiveSummaryShort",
    ]
    for insight in response["conversationalInsights"]:
        for value in insight["values"]:
            assert {"start", "end", "value", "confidence"} <= set(value)
    # the same job id always gives the same analysis
    assert interaction_response(accepted["jobId"], GOOD_BODY) == response


async def test_insights_and_speaker_count_shape_the_analysis(
    client: SandboxClient, receiver: Receiver, service_auth: dict[str, str]
) -> None:
    await _submit(client, service_auth, receiver.url, insights=["Pace", "Topics"], speakerCount=3)
    await settle(client)
    response = receiver.notifications()[0]["response"]
    assert [i["name"] for i in response["speakerInsights"]["insights"]] == ["Pace"]
    assert [i["name"] for i in response["conversationalInsights"]] == ["Topics"]
    assert response["speakerInsights"]["speakerCount"] == 3
    assert {u["speakerId"] for u in response["utteranceInsights"]} == {"0", "1", "2"}


@pytest.mark.parametrize(
    ("asked", "section", "answered"),
    [
        ("KeyPhrases", "conversationalInsights", "KeyPhrases"),
        ("AbstractiveSummaryLong", "conversationalInsights", "AbstractiveSummaryLong"),
        ("AbstractiveSummaryShort", "conversationalInsights", "AbstractiveSummaryShort"),
        ("ExtractiveSummary", "conversationalInsights", "ExtractiveSummary"),
        ("Topics", "conversationalInsights", "Topics"),
        ("Tasks", "conversationalInsights", "Tasks"),
        ("Title", "conversationalInsights", "Titles"),
        ("TalkToListenRatio", "speakerInsights", "TalkToListenRatio"),
        ("Energy", "speakerInsights", "Energy"),
        ("Pace", "speakerInsights", "Pace"),
        ("QuestionsAsked", "speakerInsights", "QuestionsAsked"),
        ("Emotion", "utteranceInsights", "Emotion"),
    ],
)
async def test_every_documented_insight_is_accepted_and_answered_alone(
    client: SandboxClient,
    receiver: Receiver,
    service_auth: dict[str, str],
    asked: str,
    section: str,
    answered: str,
) -> None:
    """Seed 004's list: each insight name the docs allow is accepted and brings exactly its
    own result, in the documented shape."""
    await _submit(client, service_auth, receiver.url, insights=[asked])
    await settle(client)
    response = receiver.notifications()[0]["response"]
    utterances = response["utteranceInsights"]
    emotions = [i for u in utterances for i in u.get("insights", [])]
    speaker = response["speakerInsights"]["insights"]
    conversational = response["conversationalInsights"]
    if section == "utteranceInsights":
        assert len(emotions) == len(utterances) > 0
        assert {e["name"] for e in emotions} == {"Emotion"}
        assert {e["value"] for e in emotions} <= set(DOCUMENTED_EMOTIONS)
        assert len({e["value"] for e in emotions}) > 2  # not all Neutral
        assert speaker == [] and conversational == []
        return
    assert emotions == []
    found = speaker if section == "speakerInsights" else conversational
    other = conversational if section == "speakerInsights" else speaker
    assert [i["name"] for i in found] == [answered] and other == []
    [insight] = found
    assert insight["values"]
    for value in insight["values"]:
        if section == "speakerInsights":
            assert value["speakerId"] in {u["speakerId"] for u in utterances}
        else:
            assert isinstance(value["value"], str) and value["value"].strip()
            assert value["start"] <= value["end"]


async def test_all_with_title_brings_the_title_too(
    client: SandboxClient, receiver: Receiver, service_auth: dict[str, str]
) -> None:
    await _submit(client, service_auth, receiver.url, insights=["All", "Title"])
    await settle(client)
    response = receiver.notifications()[0]["response"]
    names = [i["name"] for i in response["conversationalInsights"]]
    assert "Titles" in names and "Tasks" in names and "KeyPhrases" in names
    [title] = next(i["values"] for i in response["conversationalInsights"] if i["name"] == "Titles")
    assert title["value"].strip()


async def test_enrolled_speakers_are_recognised_on_their_own_recording_only(
    client: SandboxClient, receiver: Receiver, service_auth: dict[str, str], world: World
) -> None:
    """`speakerIds` must be enrolled; a voice the service knows comes back under its id,
    and an enrolled id of someone who is not on the recording never appears."""
    record = await _recorded_call(client, service_auth)
    owner = defaults.SERVICE_USER_EXTENSION_ID
    token = service_auth["Authorization"].split()[1]
    media = f"{record['recording']['contentUri']}?access_token={token}"
    refused = await client.post(
        ANALYZE,
        params={"webhook": receiver.url},
        json={**GOOD_BODY, "contentUri": media, "speakerIds": [owner]},
        headers=service_auth,
    )
    assert refused.status == 400
    [error] = (await refused.json())["errors"]
    assert (error["errorCode"], error["parameterName"]) == ("CAI-101", "speakerIds")

    status = await client.get(f"/ai/audio/v1/enrollments/{owner}", headers=service_auth)
    assert status.status == 404
    for speaker_id in (owner, "7770001"):
        enrolled = await client.post("/_sandbox/ai/enrollments", json={"enrollmentId": speaker_id})
        assert enrolled.status == 201
    status = await client.get(f"/ai/audio/v1/enrollments/{owner}", headers=service_auth)
    assert status.status == 200
    shown = await status.json()
    assert shown["enrollmentId"] == owner and shown["enrollmentComplete"] is True
    assert shown["enrollmentQuality"] in ("Poor", "Average", "Good", "High")

    await _submit(
        client, service_auth, receiver.url, contentUri=media, speakerIds=[owner, "7770001"]
    )
    await settle(client)
    response = receiver.notifications()[0]["response"]
    voices = {u["speakerId"] for u in response["utteranceInsights"]}
    assert voices == {owner, "1"}  # the owner recognised; the outsider keeps a number
    talk = {v["speakerId"] for i in response["speakerInsights"]["insights"] for v in i["values"]}
    assert talk == voices
    assert "7770001" not in json.dumps(response)


@pytest.mark.parametrize(
    ("change", "parameter"),
    [
        ({"contentUri": None}, "contentUri"),
        ({"contentUri": "/restapi/v1.0/account/~/recording/1/content"}, "contentUri"),
        ({"contentUri": "ftp://media.example.com/a.mp3"}, "contentUri"),
        ({"encoding": "Mp3"}, "encoding"),
        ({"encoding": None}, "encoding"),
        ({"languageCode": None}, "languageCode"),
        ({"languageCode": "english"}, "languageCode"),
        ({"audioType": "PhoneCall"}, "audioType"),
        ({"insights": ["Sentiment"]}, "insights"),
        ({"insights": ["Titles"]}, "insights"),
        ({"speakerIds": "6228832"}, "speakerIds"),
        ({"speakerIds": [6228832]}, "speakerIds"),
        ({"speakerIds": ["6228832"]}, "speakerIds"),
        ({"insights": "All"}, "insights"),
        ({"speakerCount": "2"}, "speakerCount"),
        ({"speakerCount": True}, "speakerCount"),
        ({"speakerCount": 0}, "speakerCount"),
        ({"separateSpeakerPerChannel": "yes"}, "separateSpeakerPerChannel"),
        ({"enableVoiceActivityDetection": 1}, "enableVoiceActivityDetection"),
        ({"speechContexts": [{"phrases": ["x"]}] * 51}, "speechContexts"),
        ({"speechContexts": [{"words": ["x"]}]}, "speechContexts"),
        ({"source": 7}, "source"),
        # The media inline and by address at once: which one to analyse is ambiguous.
        ({"content": "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQAAAAA="}, "content"),
    ],
)
async def test_a_bad_field_is_a_cai_101_naming_it(
    client: SandboxClient,
    service_auth: dict[str, str],
    change: dict[str, Any],
    parameter: str,
) -> None:
    body = {key: value for key, value in {**GOOD_BODY, **change}.items() if value is not None}
    response = await client.post(
        ANALYZE, params={"webhook": "https://bot.example/ai"}, json=body, headers=service_auth
    )
    assert response.status == 400
    errors = (await response.json())["errors"]
    assert errors == [
        {
            "errorCode": "CAI-101",
            "message": errors[0]["message"],
            "parameterName": parameter,
        }
    ]
    assert errors[0]["message"].startswith(f"Parameter [{parameter}] is invalid")
    assert await _jobs(client) == []


async def test_the_webhook_is_required_and_every_bad_field_is_reported(
    client: SandboxClient, service_auth: dict[str, str]
) -> None:
    response = await client.post(
        ANALYZE, json={**GOOD_BODY, "encoding": "Flac"}, headers=service_auth
    )
    assert response.status == 400
    errors = (await response.json())["errors"]
    assert [e["parameterName"] for e in errors] == ["webhook", "encoding"]
    not_json = await client.post(
        ANALYZE, params={"webhook": "https://x.example"}, data=b"[1]", headers=service_auth
    )
    assert not_json.status == 400
    assert (await not_json.json())["errors"][0]["parameterName"] == "body"
    # the failure body is the documented CAI-101 sample's
    contentless = await client.post(
        ANALYZE,
        params={"webhook": "https://x.example"},
        json={**GOOD_BODY, "contentUri": "not a uri"},
        headers=service_auth,
    )
    documented = load_fixture("ai-webhook-fail-CAI-101.json")["response"]
    assert await contentless.json() == documented


async def _recorded_call(client: SandboxClient, service: dict[str, str]) -> dict[str, Any]:
    """A simulated call of the service user, as the call log shows it."""
    response = await client.post(
        "/_sandbox/calls", json={"ownerExtensionId": defaults.SERVICE_USER_EXTENSION_ID}
    )
    assert response.status == 201
    log = await client.get(
        "/restapi/v1.0/account/~/extension/~/call-log",
        params={"dateFrom": "2000-01-01T00:00:00Z"},
        headers=service,
    )
    record: dict[str, Any] = (await log.json())["records"][0]
    return record


async def test_a_sandbox_recording_needs_a_token_in_the_url(
    client: SandboxClient, receiver: Receiver, service_auth: dict[str, str]
) -> None:
    record = await _recorded_call(client, service_auth)
    content_uri = record["recording"]["contentUri"]
    assert content_uri == f"{client.make_url('')}".rstrip("/") + (
        f"/restapi/v1.0/account/{defaults.ACCOUNT_ID}/recording/{record['recording']['id']}/content"
    )
    token = service_auth["Authorization"].split()[1]
    good = await _submit(
        client, service_auth, receiver.url, contentUri=f"{content_uri}?access_token={token}"
    )
    bare = await _submit(client, service_auth, receiver.url, contentUri=content_uri)
    forged = await _submit(
        client, service_auth, receiver.url, contentUri=f"{content_uri}?access_token=forged"
    )
    missing = content_uri.replace(record["recording"]["id"], "999")
    unknown = await _submit(
        client, service_auth, receiver.url, contentUri=f"{missing}?access_token={token}"
    )
    bot = await _submit(
        client,
        service_auth,
        receiver.url,
        contentUri=f"{content_uri}?access_token={defaults.BOT_TOKEN}",
    )
    await settle(client)
    # The callback body has no jobId; the RCRequestId header names the job.
    outcomes = {r["headers"]["RCRequestId"]: r["json"] for r in receiver.requests}
    assert outcomes[good["jobId"]]["status"] == "Success"
    documented = load_fixture("ai-webhook-fail-CAI-101.json")
    for job in (bare, forged, unknown, bot):
        failed = outcomes[job["jobId"]]
        assert failed == documented


async def test_a_token_revoked_before_the_job_runs_fails_it(
    client: SandboxClient, receiver: Receiver, world: World
) -> None:
    token = await service_user_token(client)
    auth = {"Authorization": f"Bearer {token}"}
    record = await _recorded_call(client, auth)
    await _settings(client, aiJobDelaySeconds=60)
    job = await _submit(
        client,
        auth,
        receiver.url,
        contentUri=f"{record['recording']['contentUri']}?access_token={token}",
    )
    revoke = await client.post(
        "/restapi/oauth/revoke", data={"token": token}, headers={"Authorization": BASIC}
    )
    assert revoke.status == 200
    world.advance(60)
    await settle(client)
    [request] = receiver.requests
    assert request["headers"]["RCRequestId"] == job["jobId"]
    assert request["json"]["status"] == "Fail"


async def test_unknown_other_accounts_and_expired_jobs_are_404(
    client: SandboxClient, receiver: Receiver, world: World, service_auth: dict[str, str]
) -> None:
    job = await _submit(client, service_auth, receiver.url)
    await settle(client)
    status, body = await _status(client, service_auth, "9d3c0a2e-0000-1000-8000-000000000000")
    assert status == 404
    assert body == {
        "errors": [
            {
                "errorCode": "CAI-101",
                "message": "The 9d3c0a2e-0000-1000-8000-000000000000 doesn't exist",
                "parameterName": "jobId",
            }
        ]
    }
    other = await client.post("/_sandbox/accounts", json={"name": "Other Corp"})
    assert other.status == 201, await other.text()
    other_admin = await _login(client, (await other.json())["admin"]["jwt"])
    status, _ = await _status(client, other_admin, job["jobId"])
    assert status == 404
    status, _ = await _status(client, BOT_AUTH, job["jobId"])
    assert status == 200  # the same account's bot sees it

    world.advance(7 * 86400 - 5)
    assert (await _status(client, BOT_AUTH, job["jobId"]))[0] == 200
    world.advance(5)
    assert (await _status(client, BOT_AUTH, job["jobId"]))[0] == 404
    [shown] = await _jobs(client)
    assert shown["expired"] is True


async def test_never_delivering_leaves_only_polling(
    client: SandboxClient, receiver: Receiver, service_auth: dict[str, str]
) -> None:
    settings = await _settings(client, aiWebhookDelivery="never")
    assert settings["aiWebhookDelivery"] == "never"
    job = await _submit(client, service_auth, receiver.url)
    await settle(client)
    status, body = await _status(client, service_auth, job["jobId"])
    assert (status, body["status"]) == (200, "Success")
    assert body["response"]["utteranceInsights"]
    assert receiver.requests == []
    [shown] = await _jobs(client)
    assert shown["webhookDeliveries"] == []
    bad = await client.post("/_sandbox/settings", json={"aiWebhookDelivery": "sometimes"})
    assert bad.status == 400


async def test_an_unreachable_webhook_is_tried_once(
    client: SandboxClient, service_auth: dict[str, str]
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    await _submit(client, service_auth, f"http://127.0.0.1:{closed_port}/ai")
    await settle(client)
    [shown] = await _jobs(client)
    [attempt] = shown["webhookDeliveries"]
    assert attempt["status"] is None and attempt["ok"] is False
    assert attempt["error"]


async def test_control_forces_the_outcome_of_a_running_job(
    client: SandboxClient, receiver: Receiver, service_auth: dict[str, str]
) -> None:
    await _settings(client, aiJobDelaySeconds=3600)
    failing = await _submit(client, service_auth, receiver.url)
    succeeding = await _submit(client, service_auth, receiver.url)
    error = {"errorCode": "CAI-105", "message": "Content is too large", "parameterName": "x"}
    path = f"/_sandbox/ai/jobs/{failing['jobId']}"
    assert (await client.post(path, json={"outcome": "maybe"})).status == 400
    assert (await client.post(path, json={"outcome": "fail", "error": {"x": 1}})).status == 400
    forced = await client.post(path, json={"outcome": "fail", "error": error})
    shown = await forced.json()
    assert forced.status == 200, shown
    assert shown["status"] == "Fail" and shown["forced"] is True
    assert shown["webhookDeliveries"][0]["payload"]["response"] == {"errors": [error]}
    assert (await client.post(path, json={"outcome": "success"})).status == 409
    done = await client.post(
        f"/_sandbox/ai/jobs/{succeeding['jobId']}", json={"outcome": "success"}
    )
    assert (await done.json())["result"]["status"] == "Success"
    assert [n["status"] for n in receiver.notifications()] == ["Fail", "Success"]
    _, body = await _status(client, service_auth, failing["jobId"])
    assert body["response"] == {"errors": [error]}
    assert (await client.post("/_sandbox/ai/jobs/nope", json={"outcome": "success"})).status == 404


async def test_control_and_request_log_never_show_the_access_token(
    client: SandboxClient, receiver: Receiver, service_auth: dict[str, str]
) -> None:
    token = service_auth["Authorization"].split()[1]
    record = await _recorded_call(client, service_auth)
    uri = record["recording"]["contentUri"]
    await _submit(
        client,
        service_auth,
        f"{receiver.url}?access_token={token}",
        contentUri=f"{uri}?x=1&access_token={token}",
    )
    fetched = await client.get(
        uri.split(str(client.make_url("")).rstrip("/"))[1], params={"access_token": token}
    )
    assert fetched.status == 200
    await settle(client)
    jobs = await _jobs(client)
    assert token not in json.dumps(jobs)
    assert jobs[0]["request"]["body"]["contentUri"] == f"{uri}?x=1&access_token=***"
    assert jobs[0]["request"]["webhook"].endswith("access_token=***")
    log = await (await client.get("/_sandbox/requests")).json()
    assert token not in json.dumps(log)
    assert any(entry["query"] == "access_token=***" for entry in log)


async def test_ai_calls_are_heavy_and_need_the_ai_permission(
    client: SandboxClient, receiver: Receiver, world: World, service_auth: dict[str, str]
) -> None:
    narrowed = await client.post(
        "/restapi/oauth/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": defaults.SERVICE_USER_JWT,
            "scope": "ReadAccounts ReadCallLog",
        },
        headers={"Authorization": BASIC},
    )
    no_ai = {"Authorization": f"Bearer {(await narrowed.json())['access_token']}"}
    refused = await client.post(
        ANALYZE, params={"webhook": receiver.url}, json=GOOD_BODY, headers=no_ai
    )
    assert refused.status == 403
    assert (await refused.json())["errors"][0]["permissionName"] == "AI"

    world.enforce_rate_limits = True
    job = await _submit(client, service_auth, receiver.url)
    statuses = []
    for _ in range(10):
        response = await client.get(JOBS + job["jobId"], headers=service_auth)
        statuses.append(response.status)
        assert response.headers["X-Rate-Limit-Group"] == "Heavy"
    # Heavy is 10/min per user: the refused POST and the submit counted too
    assert statuses == [200] * 8 + [429, 429]
    assert response.headers["Retry-After"] == "60"
    await settle(client)


async def test_recording_content_and_metadata(
    client: SandboxClient, world: World, service_auth: dict[str, str]
) -> None:
    record = await _recorded_call(client, service_auth)
    recording = record["recording"]
    path = recording["contentUri"].split(str(client.make_url("")).rstrip("/"), 1)[1]
    token = service_auth["Authorization"].split()[1]

    by_header = await client.get(path, headers=service_auth)
    audio = await by_header.read()
    assert by_header.status == 200
    assert by_header.content_type == "audio/mpeg"
    assert by_header.headers["X-Rate-Limit-Group"] == "Heavy"
    assert audio[:2] == b"\xff\xfb" and len(audio) > 1000
    by_query = await client.get(path, params={"access_token": token})
    assert await by_query.read() == audio
    download = await client.get(
        path,
        params={"contentDisposition": "Attachment", "contentDispositionFilename": "call.mp3"},
        headers=service_auth,
    )
    assert download.headers["Content-Disposition"] == 'attachment; filename="call.mp3"'
    unknown = await client.get(path.replace(recording["id"], "404404"), headers=service_auth)
    assert unknown.status == 404
    assert (await unknown.json())["errors"][0]["errorCode"] == "CMN-102"
    assert (await client.get(path)).status == 401

    # someone not on the call, without the company permission, may not hear it
    outsider = await client.post("/_sandbox/users", json={"name": "Olive Outsider"})
    outsider_auth = await _login(client, (await outsider.json())["jwt"])
    denied = await client.get(path, headers=outsider_auth)
    assert denied.status == 403
    assert (await denied.json())["permissionName"] == "ReadCompanyCallRecording"

    metadata = await client.get(path.removesuffix("/content"), headers=service_auth)
    body = await metadata.json()
    assert metadata.status == 200, body
    assert body == {
        "uri": recording["uri"],
        "id": recording["id"],
        "contentUri": recording["contentUri"],
        "contentType": "audio/mpeg",
        "duration": record["duration"],
    }
    bot = await client.get(path.removesuffix("/content"), headers=BOT_AUTH)
    assert bot.status == 403
    assert (await bot.json())["permissionName"] == "ReadCallRecording"


async def test_a_running_job_does_not_hold_up_shutdown(
    client: SandboxClient, receiver: Receiver, service_auth: dict[str, str]
) -> None:
    await _settings(client, aiJobDelaySeconds=3600)
    job = await _submit(client, service_auth, receiver.url)
    started = time.monotonic()
    await client.close()
    assert time.monotonic() - started < 1.0
    assert receiver.requests == []
    assert client.app is not None
    assert client.app[WORLD_KEY].ai_jobs[job["jobId"]].status == "InProgress"
