"""`/metrics`: the values after a known sequence of events, and who may read them."""

from __future__ import annotations

import asyncio
import copy
import json
from dataclasses import replace
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bot.app import metrics_listener_url
from bot.runner import RunningBot, start_bot
from tests.conftest import load_fixture
from tests.e2e import Stack, eventually, settle

METRICS_TOKEN = "metrics-token-0123456789"
ACCOUNT = "809640001"


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the exposition (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and all(found.labels.get(k) == v for k, v in labels.items()):
                return float(found.value)
    return 0.0


async def get(url: str, token: str | None = None) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        return response.status, await response.text()


async def restart_with_metrics(stack: Stack, **changes: Any) -> RunningBot:
    await stack.bot.stop()
    stack.config = replace(stack.config, **changes)
    stack.bot = await start_bot(stack.config)
    return stack.bot


async def scrape(bot: RunningBot) -> str:
    status, text = await get(f"{bot.url}/metrics", METRICS_TOKEN)
    assert status == 200, text
    return text


async def notify(bot: RunningBot, token: str, body: bytes) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{bot.url}/webhooks/ringcentral",
            data=body,
            headers={"Verification-Token": token, "Content-Type": "application/json"},
        ) as response,
    ):
        return response.status


async def test_metrics_count_a_known_sequence_of_events(stack: Stack) -> None:
    bot = await restart_with_metrics(stack, metrics_token=METRICS_TOKEN)
    before = await scrape(bot)
    received = sample(before, "ringsense_bot_notifications_received_total")

    # Two refused at the edge, one delivered twice by hand (a redelivery).
    assert await notify(bot, "wrong-token", b"{}") == 403
    assert await notify(bot, stack.config.verification_token, b"{not json") == 400
    event = copy.deepcopy(load_fixture("ringsense-event-pbx.json"))
    event["uuid"] = "metrics-test-duplicate-1"
    event["body"]["sourceRecordId"] = "990000001"  # a call RingSense does not know
    raw = json.dumps(event).encode()
    assert await notify(bot, stack.config.verification_token, raw) == 200
    assert await notify(bot, stack.config.verification_token, raw) == 200
    await settle(bot)
    after = await scrape(bot)
    assert sample(after, "ringsense_bot_notifications_received_total") - received == 4
    refused = "ringsense_bot_notifications_refused_total"
    assert sample(after, refused, reason="verification_token") == 1
    assert sample(after, refused, reason="malformed") == 1
    assert sample(after, "ringsense_bot_notifications_deduplicated_total") == 1

    # A user opts in; their call's digest goes out through a 429 storm on cards.
    user = await stack.control.user("Kim Park")
    dm = await stack.control.chat([user, stack.bot_id])
    await stack.control.say(dm, user, "optin")
    await settle(bot)
    await stack.control.call(
        "POST",
        "/faults",
        {"storm": {"durationSeconds": 1, "retryAfter": 1, "paths": ["/adaptive-cards"]}},
    )
    await stack.control.call("POST", "/calls", {"ownerExtensionId": user})

    async def card_posted() -> list[Any] | None:
        return await stack.control.cards(dm) or None

    await eventually(card_posted, within_s=30)
    await settle(bot)
    text = await scrape(bot)

    latency = "ringsense_bot_call_to_card_seconds_count"
    assert sample(text, latency, since="notification") == 1
    assert sample(text, latency, since="recording_end") == 1
    assert sample(text, "ringsense_bot_call_to_card_seconds_sum", since="notification") > 0
    throttled = sample(text, "ringsense_bot_ringcentral_rate_limited_total", group="medium")
    assert throttled >= 1
    assert (
        sample(text, "ringsense_bot_ringcentral_requests_total", group="medium", status="429")
        == throttled
    )
    # Each 429 of the storm said Retry-After: 1.
    assert (
        sample(text, "ringsense_bot_ringcentral_penalty_seconds_total", group="medium") == throttled
    )
    assert sample(text, "ringsense_bot_deliveries_total", outcome="retried") == throttled
    assert sample(text, "ringsense_bot_deliveries_total", outcome="failed") == 0
    posts = len(
        [p for p in await stack.control.posts(dm) if str(p.get("creatorId")) == stack.bot_id]
    )
    assert posts == 2  # the answer to optin, and the digest
    assert sample(text, "ringsense_bot_deliveries_total", outcome="sent") == posts
    assert (
        sample(text, "ringsense_bot_daily_post_budget_left", account=ACCOUNT)
        == stack.config.daily_post_limit - posts
    )
    assert sample(text, "ringsense_bot_queue_depth", queue="inbox") == 0
    assert sample(text, "ringsense_bot_queue_depth", queue="outbox") == 0
    assert sample(text, "ringsense_bot_queue_oldest_age_seconds", queue="outbox") == 0
    assert sample(text, "ringsense_bot_subscription_healthy", identity="service") == 1
    assert sample(text, "ringsense_bot_subscription_healthy", identity=f"bot:{stack.bot_id}") == 1
    assert sample(text, "ringsense_bot_ringcentral_requests_total", group="light", status="200")
    # Nothing in the exposition names a secret or what people wrote.
    for secret in (METRICS_TOKEN, stack.config.verification_token, "optin", "Kim Park"):
        assert secret not in text


async def test_waiting_work_shows_as_queue_depth_and_age(stack: Stack) -> None:
    bot = await restart_with_metrics(stack, metrics_token=METRICS_TOKEN)
    user = await stack.control.user("Kim Park")
    dm = await stack.control.chat([user, stack.bot_id])
    await stack.control.say(dm, user, "optin")
    await settle(bot)
    # Cards fail with 503 for now: the digest waits in the outbox.
    await stack.control.call(
        "POST",
        "/faults",
        {"errorRate": 1.0, "errorStatus": 503, "paths": ["/adaptive-cards"]},
    )
    await stack.control.call("POST", "/calls", {"ownerExtensionId": user})

    async def waiting() -> float | None:
        text = await scrape(bot)
        if sample(text, "ringsense_bot_queue_depth", queue="outbox") != 1:
            return None
        # (an item queued while the scrape began counts as 0 s old)
        return sample(text, "ringsense_bot_queue_oldest_age_seconds", queue="outbox") or None

    first_age = await eventually(waiting, within_s=15)
    await asyncio.sleep(0.2)
    assert (await waiting() or 0) >= first_age + 0.2
    await stack.control.call("DELETE", "/faults")


async def test_metrics_are_served_only_where_the_operator_says(stack: Stack) -> None:
    # Neither a bind address nor a token: no /metrics at all.
    assert (await get(f"{stack.bot.url}/metrics"))[0] == 404
    assert (await get(f"{stack.bot.url}/metrics", METRICS_TOKEN))[0] == 404
    assert metrics_listener_url(stack.bot.app) is None

    # A token: on the bot's port, only with it.
    bot = await restart_with_metrics(stack, metrics_token=METRICS_TOKEN)
    for wrong in (None, "", "metrics-token-012345678", METRICS_TOKEN + "x"):
        status, text = await get(f"{bot.url}/metrics", wrong)
        assert status == 401
        assert "ringsense_bot" not in text
    assert (await get(f"{bot.url}/metrics", METRICS_TOKEN))[0] == 200

    # A bind address: its own listener serves /metrics (and nothing else) without a token,
    # while the bot's port keeps refusing without the token.
    bot = await restart_with_metrics(stack, metrics_token="", metrics_bind="127.0.0.1:0")
    url = metrics_listener_url(bot.app)
    assert url is not None and url != f"{bot.url}/metrics"
    status, text = await get(url)
    assert status == 200 and "ringsense_bot_notifications_received_total" in text
    assert (await get(url.replace("/metrics", "/readyz")))[0] == 404
    assert (await get(f"{bot.url}/metrics"))[0] == 404


async def test_each_app_has_its_own_registry(stack: Stack) -> None:
    """Two bots in one process (tests, the demo) never share or double-register metrics."""
    from bot.app import METRICS, create_app

    first, second = (create_app(stack.config) for _ in range(2))
    first[METRICS].notifications_received.inc()
    assert first[METRICS].registry is not second[METRICS].registry
    text = second[METRICS].exposition()[0].decode()
    assert sample(text, "ringsense_bot_notifications_received_total") == 0
