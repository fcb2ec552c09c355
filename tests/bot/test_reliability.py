"""Never lose or duplicate a digest, proven through the sandbox with exact counts."""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.app import CATCH_UP, SERVICES, SUBSCRIPTIONS
from bot.cards import card_as_text
from bot.ratelimit import group_of
from bot.rc import RingCentralError
from tests.conftest import load_fixture
from tests.e2e import Stack, eventually, running_stack, settle


async def opted_in(stack: Stack, name: str = "Kim Park") -> tuple[str, str]:
    user = await stack.control.user(name)
    dm = await stack.control.chat([user, stack.bot_id])
    await stack.control.say(dm, user, "optin")
    await settle(stack.bot)
    return user, dm


def call_keys_in(cards: list[dict[str, Any]]) -> list[str]:
    keys = []
    for card in cards:
        text = json.dumps(card["card"])
        marker = '"callKey": "'
        if marker in text:
            keys.append(text.split(marker, 1)[1].split('"', 1)[0])
    return keys


def event_for(owner: str, record_id: str, summary: str, modified: str) -> dict[str, Any]:
    event: dict[str, Any] = copy.deepcopy(load_fixture("ringsense-event-pbx.json"))
    body = event["body"]
    body["ownerExtensionId"] = owner
    body["speakerInfo"][0]["extensionId"] = owner
    body["sourceRecordId"] = record_id
    body["sourceSessionId"] = f"s-{record_id}"
    body["lastModifiedTime"] = modified
    body["insights"]["Summary"] = [{"start": 0, "end": 1, "value": summary}]
    return event


async def test_triple_and_shuffled_notifications_give_one_card_per_call_with_the_latest(
    stack: Stack,
) -> None:
    user, dm = await opted_in(stack)
    await stack.control.call(
        "POST", "/faults", {"duplicateNotifications": 2, "reorderNotifications": True, "seed": 7}
    )
    records = [f"77000{n:04d}" for n in range(8)]
    for record in records:
        first = event_for(user, record, f"First take of {record}", "2026-11-20T10:00:00.000Z")
        latest = event_for(user, record, f"Final summary of {record}", "2026-11-20T10:05:00.000Z")
        await stack.control.call("POST", "/calls", {"event": latest})
        await stack.control.call("POST", "/calls", {"event": first})
    await stack.sandbox.idle()
    await settle(stack.bot)
    cards = await stack.control.cards(dm)
    assert sorted(call_keys_in(cards)) == sorted(f"pbx:{r}" for r in records)
    for card in cards:
        text = card_as_text(card["card"])
        assert "Final summary of" in text and "First take of" not in text
    deliveries = await stack.control.call("GET", "/deliveries")
    records_sent = deliveries["records"] if isinstance(deliveries, dict) else deliveries
    ringsense = [d for d in records_sent if "ringsense" in d.get("event", "")]
    assert len(ringsense) == 3 * 2 * len(records)  # every notification three times


async def test_flaky_posts_and_a_429_storm_lose_nothing_and_respect_the_penalty(
    stack: Stack,
) -> None:
    user, dm = await opted_in(stack)
    await stack.control.call("DELETE", "/requests")
    await stack.control.call(
        "POST",
        "/faults",
        {
            "seed": 11,
            "errorRate": 0.3,
            "paths": ["/adaptive-cards", "/conversations"],
            "methods": ["POST", "PUT"],
            "storm": {"durationSeconds": 2, "retryAfter": 1, "paths": ["/adaptive-cards"]},
        },
    )
    calls = [
        await stack.control.call("POST", "/calls", {"ownerExtensionId": user}) for _ in range(10)
    ]

    async def all_delivered() -> list[dict[str, Any]] | None:
        found = await stack.control.cards(dm)
        return found if len(found) >= len(calls) else None

    cards = await eventually(all_delivered, within_s=90)
    await settle(stack.bot)
    cards = await stack.control.cards(dm)
    assert sorted(call_keys_in(cards)) == sorted(f"pbx:{c['sourceRecordId']}" for c in calls)

    # Faulted answers come before the sandbox reads the token, so they have no owner; only
    # the bot uses team messaging, so its requests are those paths.
    requests = [
        r for r in await stack.control.requests() if r["path"].startswith("/team-messaging/")
    ]
    failures = [r for r in requests if r["status"] and r["status"] >= 500]
    throttled = [r for r in requests if r["status"] == 429]
    assert failures and throttled, "the faults should have bitten"
    medium = [r for r in requests if group_of(r["method"], r["path"]) == "medium"]
    for refusal in throttled:
        started = refusal["arrivedMonotonic"]
        during = [r for r in medium if started < r["arrivedMonotonic"] < started + 1.0 - 0.02]
        assert during == [], f"{len(during)} requests sent during a penalty"


async def missed_call_is_caught_up(stack: Stack, user: str, dm: str) -> None:
    call = await stack.control.call("POST", "/calls", {"ownerExtensionId": user})
    await settle(stack.bot)
    assert await stack.control.cards(dm) == [], "nothing can arrive without a subscription"
    await stack.bot.app[SUBSCRIPTIONS].ensure_all()  # the periodic check
    await stack.bot.app[CATCH_UP].trigger()
    await settle(stack.bot)
    cards = await stack.control.cards(dm)
    assert call_keys_in(cards) == [f"pbx:{call['sourceRecordId']}"]
    # and running the catch-up again finds nothing new
    assert await stack.bot.app[CATCH_UP].trigger() == 0


def service_subscription_id(stack: Stack) -> str:
    keeper = stack.bot.app[SUBSCRIPTIONS].keepers["service"]
    assert keeper.current is not None
    return keeper.current.id


async def test_a_deleted_subscription_is_recreated_and_the_missed_call_delivered(
    stack: Stack,
) -> None:
    user, dm = await opted_in(stack)
    del stack.sandbox.world.subscriptions[service_subscription_id(stack)]
    await missed_call_is_caught_up(stack, user, dm)


async def test_an_expired_subscription_is_recreated_and_the_missed_call_delivered(
    stack: Stack,
) -> None:
    user, dm = await opted_in(stack)
    old = service_subscription_id(stack)
    await stack.control.call("POST", "/clock", {"advanceSeconds": 8 * 86400})
    await missed_call_is_caught_up(stack, user, dm)
    assert service_subscription_id(stack) != old


async def test_a_catch_up_asked_for_while_one_runs_reads_the_calls_made_meanwhile(
    stack: Stack,
) -> None:
    """A subscription recreated while a catch-up is reading the call log asks for another:
    the run going has read the log already, so folding the two would lose the calls made
    in between (bench/replicas.py lost 22 digests so)."""
    import asyncio

    user, dm = await opted_in(stack)
    del stack.sandbox.world.subscriptions[service_subscription_id(stack)]
    services = stack.bot.app[SERVICES]
    first = await stack.control.call("POST", "/calls", {"ownerExtensionId": user})
    await settle(stack.bot)
    assert await stack.control.cards(dm) == [], "nothing can arrive without a subscription"
    read_the_log = asyncio.Event()
    go_on = asyncio.Event()
    real_call_log = services.service_api.company_call_log
    reads = 0

    async def call_log_held_after_its_first_read(**query: Any) -> Any:
        nonlocal reads
        answer = await real_call_log(**query)
        reads += 1
        if reads == 1:
            read_the_log.set()
            await go_on.wait()
        return answer

    services.service_api.company_call_log = call_log_held_after_its_first_read  # type: ignore[method-assign]
    try:
        running = stack.bot.app[CATCH_UP].trigger()
        await asyncio.wait_for(read_the_log.wait(), 30)
        second = await stack.control.call("POST", "/calls", {"ownerExtensionId": user})
        assert stack.bot.app[CATCH_UP].trigger() is running  # never two runs at once
        go_on.set()
        await asyncio.wait_for(running, 60)
    finally:
        go_on.set()
        services.service_api.company_call_log = real_call_log  # type: ignore[method-assign]
    await settle(stack.bot)
    cards = await stack.control.cards(dm)
    assert sorted(call_keys_in(cards)) == sorted(
        f"pbx:{call['sourceRecordId']}" for call in (first, second)
    )


async def test_a_blacklisted_subscription_is_recreated_after_downtime(stack: Stack) -> None:
    user, dm = await opted_in(stack)
    old = service_subscription_id(stack)
    await stack.control.call("POST", "/settings", {"blacklistAfterFailures": 1})
    await stack.bot.stop()
    call = await stack.control.call("POST", "/calls", {"ownerExtensionId": user})
    subscriptions = await stack.control.call("GET", "/subscriptions")
    listed = subscriptions["records"] if isinstance(subscriptions, dict) else subscriptions
    assert any(s["id"] == old and s["status"] == "Blacklisted" for s in listed)
    await stack.restart_bot(already_stopped=True)

    async def delivered() -> list[dict[str, Any]] | None:
        # The catch-up after downtime is a job of its own, started beside the bot's start
        # (later on a loaded machine): settling the queues before it queued the call is no
        # proof of anything, so wait for its card, then for anything more.
        return await stack.control.cards(dm) or None

    await eventually(delivered, within_s=30)
    await settle(stack.bot)
    cards = await stack.control.cards(dm)
    assert call_keys_in(cards) == [f"pbx:{call['sourceRecordId']}"]
    assert service_subscription_id(stack) != old


hostile_bodies = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False)
        | st.text(max_size=30),
        lambda children: (
            st.lists(children, max_size=5)
            | st.dictionaries(
                st.sampled_from(["uuid", "event", "body", "ownerId", "subscriptionId"])
                | st.text(max_size=8),
                children,
                max_size=6,
            )
        ),
        max_leaves=15,
    ).map(lambda v: json.dumps(v).encode()),
)


@settings(max_examples=1000, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(
    body=hostile_bodies,
    verified=st.booleans(),
    forged_real_event=st.booleans(),
    token=st.sampled_from(["", "x", "Bearer abc"]),
)
async def test_a_thousand_malformed_or_forged_bodies_store_nothing(
    stack: Stack, body: bytes, verified: bool, forged_real_event: bool, token: str
) -> None:
    """A verified body may be anything but a well-formed notification (hostile_bodies cannot
    build one); an unverified one may even be a real notification, with a wrong token."""
    headers = {"Content-Type": "application/json"}
    if verified:
        headers["Verification-Token"] = stack.config.verification_token
    else:
        headers["Verification-Token"] = token
        if forged_real_event:
            body = json.dumps(load_fixture("ringsense-event-pbx.json")).encode()
    async with (
        aiohttp.ClientSession() as session,
        session.post(stack.config.webhook_address, data=body, headers=headers) as response,
    ):
        assert response.status < 500
        if not verified:
            assert response.status == 403
    assert sum((await stack.bot.app[SERVICES].storage.inbox_counts()).values()) == 0


@pytest.fixture
async def stack_giving_up_soon(e2e_database: str) -> AsyncIterator[Stack]:
    """`stack` whose bot gives a delivery 2 attempts, not 6: the same failure to show, without
    waiting out five backoffs (up to 31 s) for it. On each backend, as `stack`."""
    async with running_stack(
        e2e_database, overrides={"bot": {"delivery_max_attempts": 2}}
    ) as stack:
        yield stack


async def test_a_delivery_that_keeps_failing_is_visible_and_can_be_resent(
    stack_giving_up_soon: Stack,
) -> None:
    stack = stack_giving_up_soon
    user, dm = await opted_in(stack)
    await stack.control.call(
        "POST", "/faults", {"errorRate": 1.0, "errorStatus": 500, "paths": ["/adaptive-cards"]}
    )
    await stack.control.call("POST", "/calls", {"ownerExtensionId": user})

    async def failed() -> int | None:
        counts = await stack.bot.app[SERVICES].storage.outbox_counts()
        return counts.get("failed") or None

    await eventually(failed, within_s=90)
    await stack.control.say(dm, user, "status")
    await settle(stack.bot)
    assert "**Failed deliveries**: 1" in (await stack.control.texts(dm, stack.bot_id))[-1]
    await stack.control.call("DELETE", "/faults")
    await stack.control.say(dm, user, "resend")
    await settle(stack.bot)
    assert "Trying 1 failed delivery again" in (await stack.control.texts(dm, stack.bot_id))[-1]
    await settle(stack.bot)
    assert len(await stack.control.cards(dm)) == 1


async def test_the_daily_post_limit_makes_deliveries_wait_not_fail(stack: Stack) -> None:
    user, dm = await opted_in(stack)
    await stack.control.call("POST", "/faults", {"dailyPostLimit": 1})
    await stack.control.call("POST", "/calls", {"ownerExtensionId": user})
    await stack.control.call("POST", "/calls", {"ownerExtensionId": user})
    await settle(stack.bot)
    counts = await stack.bot.app[SERVICES].storage.outbox_counts()
    assert counts.get("failed", 0) == 0
    # The opt-in reply used the day's one post: both digests wait for tomorrow, not lost.
    assert counts.get("pending", 0) == 2
    assert await stack.control.cards(dm) == []


async def test_a_revoked_bot_token_marks_the_install_removed(stack: Stack) -> None:
    account = await stack.control.call("POST", "/accounts", {"name": "Leaving Inc"})
    installed = await stack.control.install_bot(account["accountId"])
    await settle(stack.bot)
    bot_id = installed["extensionId"]
    user = await stack.control.user("Bea Other", accountId=account["accountId"])
    dm = await stack.control.chat([user, bot_id])
    await stack.control.say(dm, user, "optin")
    await settle(stack.bot)
    # The Delete event is lost on the way; the bot learns it from RingCentral's answers.
    await stack.control.call("POST", "/faults", {"dropNotifications": 1.0})
    await stack.control.call("DELETE", f"/bots/{bot_id}")
    await stack.control.call("DELETE", "/faults")
    subscriptions = stack.bot.app[SUBSCRIPTIONS]
    with contextlib.suppress(RingCentralError):
        await subscriptions.ensure_all()  # the periodic check meets the revoked token

    async def removed() -> bool:
        await settle(stack.bot)
        return bot_id not in stack.bot.app[SERVICES].installs

    await eventually(removed, within_s=10)
    assert not (await stack.bot.app[SERVICES].storage.user_settings(user)).opted_in
