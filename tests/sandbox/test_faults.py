"""Fault injection: each knob of `/_sandbox/faults`, with exact counts where randomness
is involved (the expected counts replay the same seeded `random.Random`)."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import aiohttp
import pytest

from sandbox import defaults
from sandbox.world import World
from tests.conftest import load_fixture
from tests.sandbox.conftest import BOT_AUTH, Receiver, SandboxClient, settle, subscribe

ME = "/restapi/v1.0/account/~/extension/~"
SUBSCRIPTIONS = "/restapi/v1.0/subscription"
POSTS = "/team-messaging/v1/posts"


async def _faults(client: SandboxClient, **settings: Any) -> dict[str, Any]:
    response = await client.post("/_sandbox/faults", json=settings)
    body: dict[str, Any] = await response.json()
    assert response.status == 200, body
    return body


async def _requests(client: SandboxClient) -> list[dict[str, Any]]:
    log: list[dict[str, Any]] = await (await client.get("/_sandbox/requests")).json()
    return log


async def _everyone_chat(client: SandboxClient) -> str:
    chats = await (await client.get("/_sandbox/chats")).json()
    return str(next(chat["id"] for chat in chats if chat["type"] == "Everyone"))


async def _user_says(client: SandboxClient, chat_id: str, text: str) -> dict[str, Any]:
    response = await client.post(
        "/_sandbox/posts",
        json={"chatId": chat_id, "creatorId": defaults.SERVICE_USER_EXTENSION_ID, "text": text},
    )
    body: dict[str, Any] = await response.json()
    assert response.status == 201, body
    return body


def _draws(seed: int, count: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.random() for _ in range(count)]


async def test_every_fault_is_off_and_the_real_limits_on_by_default_and_after_delete(
    client: SandboxClient,
) -> None:
    defaults_shown = await (await client.get("/_sandbox/faults")).json()
    assert defaults_shown["latencyMs"] is None
    assert defaults_shown["errorRate"] == 0
    assert defaults_shown["resetRate"] == 0
    assert defaults_shown["storm"] is None
    assert defaults_shown["enforceRateLimits"] is True
    assert defaults_shown["dailyPostLimit"] is None
    assert defaults_shown["duplicateNotifications"] == 0
    assert defaults_shown["reorderNotifications"] is None
    assert defaults_shown["webhookRetries"] is None
    assert defaults_shown["subscriptionTtlSeconds"] is None

    shown = await _faults(
        client,
        seed=3,
        latencyMs={"min": 5, "max": 10},
        errorRate=0.25,
        paths=["^/team-messaging/"],
        methods=["get"],
        enforceRateLimits=True,
        limits={"Medium": {"limit": 5, "windowSeconds": 2, "penaltySeconds": 1}},
        dailyPostLimit=True,
        webhookRetries={"attempts": 2, "delaySeconds": 0.5},
    )
    assert shown["latencyMs"] == {"min": 5, "max": 10}
    assert shown["methods"] == ["GET"]
    assert shown["limits"] == {"Medium": {"limit": 5, "windowSeconds": 2, "penaltySeconds": 1}}
    assert shown["dailyPostLimit"] == 2500
    assert shown["enforceRateLimits"] is True
    assert await (await client.get("/_sandbox/faults")).json() == shown

    for bad in ({"errorRate": 2}, {"errorStatus": 404}, {"paths": ["("]}, {"nope": 1}):
        response = await client.post("/_sandbox/faults", json=bad)
        assert response.status == 400, bad
    assert await (await client.get("/_sandbox/faults")).json() == shown

    cleared = await (await client.delete("/_sandbox/faults")).json()
    assert cleared == defaults_shown


async def test_latency_applies_only_to_matching_requests(client: SandboxClient) -> None:
    await _faults(client, latencyMs=150, paths=["/extension/~$"])
    started = time.monotonic()
    slow = await client.get(ME, headers=BOT_AUTH)
    slow_seconds = time.monotonic() - started
    started = time.monotonic()
    fast = await client.get(SUBSCRIPTIONS, headers=BOT_AUTH)
    fast_seconds = time.monotonic() - started
    assert slow.status == fast.status == 200
    assert slow_seconds >= 0.15
    assert fast_seconds < 0.15
    first, second = await _requests(client)
    assert (first["fault"], first["latencyMs"]) == ("latency", 150)
    assert (second["fault"], second["latencyMs"]) == (None, None)


async def test_latency_range_is_seeded(client: SandboxClient) -> None:
    await _faults(client, seed=11, latencyMs={"min": 1, "max": 30})
    for _ in range(3):
        await client.get(ME, headers=BOT_AUTH)
    rng = random.Random(11)
    expected = [rng.uniform(1, 30) for _ in range(3)]
    assert [entry["latencyMs"] for entry in await _requests(client)] == pytest.approx(expected)


async def test_error_rate_is_seeded_and_scoped_by_method(client: SandboxClient) -> None:
    await _faults(client, seed=42, errorRate=0.5, methods=["GET"])
    statuses = [(await client.get(ME, headers=BOT_AUTH)).status for _ in range(20)]
    expected = [503 if draw < 0.5 else 200 for draw in _draws(42, 20)]
    assert statuses == expected
    assert 0 < statuses.count(503) < 20

    refused = await client.get(ME, headers={**BOT_AUTH, "X-Sandbox-Fault": "503"})
    assert await refused.json() == {
        "errorCode": "CMN-201",
        "message": "Service Temporary Unavailable",
        "errors": [{"errorCode": "CMN-201", "message": "Service Temporary Unavailable"}],
    }
    posted = await client.post(
        f"/team-messaging/v1/chats/{await _everyone_chat(client)}/posts",
        json={"text": "not a GET"},
        headers=BOT_AUTH,
    )
    assert posted.status == 201  # POST is outside `methods`, and draws nothing

    log = await _requests(client)
    assert [entry["fault"] for entry in log[:20]] == [
        "error" if status == 503 else None for status in expected
    ]
    await client.delete("/_sandbox/faults")
    await _faults(client, seed=42, errorRate=0.5, methods=["GET"])
    again = [(await client.get(ME, headers=BOT_AUTH)).status for _ in range(20)]
    assert again == statuses


async def test_error_status_500_has_the_internal_error_body(client: SandboxClient) -> None:
    await _faults(client, errorRate=1, errorStatus=500, errorRetryAfter=7)
    response = await client.get(ME, headers=BOT_AUTH)
    assert response.status == 500
    assert (await response.json())["errorCode"] == "CMN-203"
    assert response.headers["Retry-After"] == "7"


async def test_reset_closes_the_connection_without_an_answer(client: SandboxClient) -> None:
    await _faults(client, seed=3, resetRate=0.5, methods=["POST"], paths=["^/restapi/v1.0/sub"])
    outcomes: list[int | None] = []
    for _ in range(10):
        try:
            response = await client.post(SUBSCRIPTIONS, json={}, headers=BOT_AUTH)
            outcomes.append(response.status)
        except aiohttp.ClientError:
            outcomes.append(None)
    expected = [None if draw < 0.5 else 400 for draw in _draws(3, 10)]
    assert outcomes == expected
    assert None in outcomes
    log = await _requests(client)
    assert [(e["status"], e["fault"]) for e in log] == [
        (None, "reset") if status is None else (400, None) for status in expected
    ]


async def test_storm_refuses_until_quiet_and_every_request_extends_it(
    client: SandboxClient, world: World
) -> None:
    shown = await _faults(
        client, storm={"durationSeconds": 10, "retryAfter": 5, "paths": ["^/team-messaging/"]}
    )
    assert shown["storm"]["active"] is True
    chats = "/team-messaging/v1/chats"
    refused = await client.get(chats, headers=BOT_AUTH)
    assert refused.status == 429
    assert refused.headers["Retry-After"] == "5"
    assert refused.headers["X-Rate-Limit-Group"] == "Medium"
    assert refused.headers["X-Rate-Limit-Remaining"] == "0"
    assert refused.headers["X-Rate-Limit-Window"] == "60"
    assert await refused.json() == load_fixture("error-429-CMN-301.json")
    assert (await client.get(ME, headers=BOT_AUTH)).status == 200  # outside `paths`

    world.advance(6)
    assert (await client.get(chats, headers=BOT_AUTH)).status == 429  # storm now ends at 11
    world.advance(4.5)
    assert (await client.get(chats, headers=BOT_AUTH)).status == 429  # at 10.5: extended
    world.advance(5.5)
    assert (await client.get(chats, headers=BOT_AUTH)).status == 200
    log = await _requests(client)
    assert [e["fault"] for e in log] == ["storm", None, "storm", "storm", None]


async def test_the_fault_header_forces_one_fault_for_one_request(client: SandboxClient) -> None:
    unavailable = await client.get(ME, headers={**BOT_AUTH, "X-Sandbox-Fault": "503"})
    assert unavailable.status == 503
    limited = await client.get(ME, headers={**BOT_AUTH, "X-Sandbox-Fault": "429"})
    assert limited.status == 429
    assert limited.headers["Retry-After"] == "60"
    assert limited.headers["X-Rate-Limit-Group"] == "Light"
    short = await client.get(ME, headers={**BOT_AUTH, "X-Sandbox-Fault": "429,retry-after=2"})
    assert short.headers["Retry-After"] == "2"
    started = time.monotonic()
    slow = await client.get(ME, headers={**BOT_AUTH, "X-Sandbox-Fault": "latency=120"})
    assert slow.status == 200
    assert time.monotonic() - started >= 0.12
    with pytest.raises(aiohttp.ClientError):
        await client.post(SUBSCRIPTIONS, json={}, headers={**BOT_AUTH, "X-Sandbox-Fault": "reset"})
    unknown = await client.get(ME, headers={**BOT_AUTH, "X-Sandbox-Fault": "teapot"})
    assert unknown.status == 400
    assert (await client.get(ME, headers=BOT_AUTH)).status == 200
    faults = [e["fault"] for e in await _requests(client)]
    assert faults == ["error", "storm", "storm", "latency", "reset", None, None]


async def test_rate_limit_overrides_and_the_penalty_rule(
    client: SandboxClient, world: World
) -> None:
    await _faults(
        client,
        enforceRateLimits=True,
        limits={"Light": {"limit": 3, "windowSeconds": 2, "penaltySeconds": 1}},
    )
    answers = [await client.get(ME, headers=BOT_AUTH) for _ in range(4)]
    assert [a.status for a in answers] == [200, 200, 200, 429]
    assert answers[0].headers["X-Rate-Limit-Limit"] == "3"
    assert answers[0].headers["X-Rate-Limit-Window"] == "2"
    assert answers[3].headers["Retry-After"] == "1"
    world.advance(0.6)
    assert (await client.get(ME, headers=BOT_AUTH)).status == 429  # restarts the penalty
    world.advance(0.6)
    assert (await client.get(ME, headers=BOT_AUTH)).status == 429  # 1.2 s in, still penalised
    world.advance(2.5)
    assert (await client.get(ME, headers=BOT_AUTH)).status == 200
    assert (await client.get(SUBSCRIPTIONS, headers=BOT_AUTH)).headers[
        "X-Rate-Limit-Limit"
    ] == "3"  # another Light endpoint, same override
    log = await _requests(client)
    refused = [e for e in log if e["fault"] == "rateLimit"]
    assert len(refused) == 3
    assert all(e["status"] == 429 for e in refused)
    assert [e["arrivedEpoch"] for e in log] == sorted(e["arrivedEpoch"] for e in log)


async def test_daily_post_limit_refuses_posts_and_cards_until_tomorrow(
    client: SandboxClient, world: World
) -> None:
    await _faults(client, dailyPostLimit=2)
    chat = await (await client.get("/team-messaging/v1/chats/~", headers=BOT_AUTH)).json()
    posts = f"/team-messaging/v1/chats/{chat['id']}/posts"
    cards = f"/team-messaging/v1/chats/{chat['id']}/adaptive-cards"
    card = {"type": "AdaptiveCard", "version": "1.3", "body": [{"type": "TextBlock", "text": "x"}]}
    assert (await client.post(posts, json={"text": "one"}, headers=BOT_AUTH)).status == 201
    assert (await client.post(cards, json=card, headers=BOT_AUTH)).status == 201
    over = await client.post(posts, json={"text": "three"}, headers=BOT_AUTH)
    assert over.status == 500
    body = await over.json()
    assert body["message"] == "You have exceeded your limits for this action."
    assert (await client.post(cards, json=card, headers=BOT_AUTH)).status == 500
    assert (await _requests(client))[-1]["fault"] == "dailyPostLimit"
    world.advance(86400)
    assert (await client.post(posts, json={"text": "tomorrow"}, headers=BOT_AUTH)).status == 201


async def test_duplicates_carry_the_same_uuid(client: SandboxClient, receiver: Receiver) -> None:
    await subscribe(client, BOT_AUTH, receiver, [POSTS])
    await _faults(client, duplicateNotifications=2)
    result = await _user_says(client, await _everyone_chat(client), "hello")
    assert [(n["copy"], n["ok"]) for n in result["notifications"]] == [
        (0, True),
        (1, True),
        (2, True),
    ]
    notifications = receiver.notifications()
    assert len(notifications) == 3
    assert len({n["uuid"] for n in notifications}) == 1
    assert notifications[0] == notifications[2]


async def test_dropped_notifications_are_never_sent(
    client: SandboxClient, receiver: Receiver
) -> None:
    await subscribe(client, BOT_AUTH, receiver, [POSTS])
    await _faults(client, seed=5, dropNotifications=0.5)
    chat_id = await _everyone_chat(client)
    for index in range(10):
        await _user_says(client, chat_id, f"message {index}")
    kept = [f"message {i}" for i, draw in enumerate(_draws(5, 10)) if draw >= 0.5]
    assert [n["body"]["text"] for n in receiver.notifications()] == kept
    assert 0 < len(kept) < 10
    deliveries = await (await client.get("/_sandbox/deliveries")).json()
    assert sum(1 for d in deliveries if d["dropped"]) == 10 - len(kept)
    subscription = (await (await client.get("/_sandbox/subscriptions")).json())[0]
    assert subscription["status"] == "Active"  # a drop is not the receiver's failure


async def test_reordered_notifications_arrive_shuffled(
    client: SandboxClient, receiver: Receiver
) -> None:
    await subscribe(client, BOT_AUTH, receiver, [POSTS])
    await _faults(client, seed=1, reorderNotifications={"windowMs": 300})
    chat_id = await _everyone_chat(client)
    texts = [f"message {index}" for index in range(6)]
    for text in texts:
        result = await _user_says(client, chat_id, text)
        assert result["notifications"] == []  # held, sent later
    await settle(client)
    expected = list(texts)
    random.Random(1).shuffle(expected)
    assert expected != texts
    assert [n["body"]["text"] for n in receiver.notifications()] == expected


async def test_webhook_retries_resend_the_same_notification(
    client: SandboxClient, receiver: Receiver
) -> None:
    await subscribe(client, BOT_AUTH, receiver, [POSTS])
    receiver.mode = "error"
    await _faults(client, webhookRetries={"attempts": 2, "delaySeconds": 0.01})
    result = await _user_says(client, await _everyone_chat(client), "retry me")
    attempts = result["notifications"]
    assert [(a["attempt"], a["status"]) for a in attempts] == [(1, 500), (2, 500), (3, 500)]
    assert len({a["uuid"] for a in attempts}) == 1
    assert len(receiver.notifications()) == 3


async def test_retries_stop_once_the_subscription_is_blacklisted(
    client: SandboxClient, receiver: Receiver
) -> None:
    await subscribe(client, BOT_AUTH, receiver, [POSTS])
    receiver.mode = "error"
    await client.post("/_sandbox/settings", json={"blacklistAfterFailures": 3})
    await _faults(client, webhookRetries={"attempts": 5, "delaySeconds": 0})
    result = await _user_says(client, await _everyone_chat(client), "retry me")
    assert len(result["notifications"]) == 3
    subscription = (await (await client.get("/_sandbox/subscriptions")).json())[0]
    assert subscription["status"] == "Blacklisted"


async def test_without_retries_a_failed_notification_is_lost(
    client: SandboxClient, receiver: Receiver
) -> None:
    await subscribe(client, BOT_AUTH, receiver, [POSTS])
    receiver.mode = "error"
    result = await _user_says(client, await _everyone_chat(client), "once")
    assert len(result["notifications"]) == 1


async def test_subscription_ttl_cap_makes_expiry_testable(
    client: SandboxClient, receiver: Receiver, world: World
) -> None:
    await _faults(client, subscriptionTtlSeconds=60)
    subscription = await subscribe(client, BOT_AUTH, receiver, [POSTS], expiresIn=604800)
    assert subscription["expiresIn"] == 60
    renewed = await client.post(f"{SUBSCRIPTIONS}/{subscription['id']}/renew", headers=BOT_AUTH)
    assert (await renewed.json())["expiresIn"] == 60
    world.advance(61)
    gone = await client.get(f"{SUBSCRIPTIONS}/{subscription['id']}", headers=BOT_AUTH)
    assert gone.status == 404
    await _user_says(client, await _everyone_chat(client), "too late")
    assert receiver.notifications() == []


async def test_request_log_times_show_real_gaps(client: SandboxClient) -> None:
    await client.get(ME, headers=BOT_AUTH)
    await asyncio.sleep(0.05)
    await client.get(ME, headers=BOT_AUTH)
    first, second = await _requests(client)
    assert second["arrivedMonotonic"] - first["arrivedMonotonic"] >= 0.05
    assert second["arrivedEpoch"] - first["arrivedEpoch"] >= 0.05
    assert first["arrivedAt"].endswith("Z")
