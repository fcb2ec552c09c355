"""The bot asks RingCentral for expiry reminders on every subscription it makes, inside the
documented limits (API-FACTS B.5), and renews when reminded instead of letting a
subscription lapse."""

from __future__ import annotations

import re
from typing import Any

from tests.e2e import Stack, eventually, settle

REMINDER = re.compile(r"^/restapi/v1\.0/subscription/~\?threshold=(\d+)&interval=(\d+)$")


async def our_subscriptions(stack: Stack) -> list[dict[str, Any]]:
    return list(await stack.control.call("GET", "/subscriptions"))


async def test_every_subscription_asks_for_reminders_within_the_limits(stack: Stack) -> None:
    subscriptions = await our_subscriptions(stack)
    assert len(subscriptions) >= 2  # the bot's and the service user's
    for subscription in subscriptions:
        reminders = [REMINDER.match(f) for f in subscription["eventFilters"]]
        [found] = [r for r in reminders if r is not None]
        threshold, interval = int(found.group(1)), int(found.group(2))
        assert 2 * threshold <= subscription["expiresIn"] + 1
        assert 2 * interval <= threshold


async def test_a_reminder_makes_the_bot_renew(stack: Stack) -> None:
    [before] = [s for s in await our_subscriptions(stack) if s["ownerId"] == stack.bot_id]
    threshold = int(next(m for f in before["eventFilters"] if (m := REMINDER.match(f))).group(1))
    # Move to just inside the threshold: the reminder job notices within a second.
    await stack.control.call(
        "POST", "/clock", {"advanceSeconds": before["expiresIn"] - threshold + 5}
    )

    async def renewed() -> dict[str, Any] | None:
        await settle(stack.bot)
        for subscription in await our_subscriptions(stack):
            if subscription["id"] == before["id"] and subscription["expiresIn"] > threshold:
                return subscription
        return None

    after = await eventually(renewed, within_s=15)
    assert after["status"] == "Active"
    deliveries = await stack.control.call("GET", "/deliveries")
    records = deliveries["records"] if isinstance(deliveries, dict) else deliveries
    assert any(d["subscriptionId"] == before["id"] and "threshold=" in d["event"] for d in records)
