"""Expiry reminders (API-FACTS B.5): sent within the threshold, once per interval, until
the subscription is renewed; thresholds and intervals out of the documented range are
refused."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from sandbox.world import World
from tests.sandbox.conftest import BOT_AUTH, Receiver, SandboxClient, subscribe

POSTS = "/team-messaging/v1/posts"


def reminder(threshold: int, interval: int) -> str:
    return f"/restapi/v1.0/subscription/~?threshold={threshold}&interval={interval}"


async def reminders_after(receiver: Receiver, count: int, within_s: float = 5.0) -> list[Any]:
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        got = [n for n in receiver.notifications() if "threshold=" in n["event"]]
        if len(got) >= count or asyncio.get_running_loop().time() > deadline:
            return got
        await asyncio.sleep(0.05)


async def test_reminders_come_within_the_threshold_once_per_interval_until_renewed(
    client: SandboxClient, receiver: Receiver, world: World
) -> None:
    subscription = await subscribe(
        client, BOT_AUTH, receiver, [POSTS, reminder(60, 15)], expiresIn=200
    )
    await asyncio.sleep(1.5)
    assert await reminders_after(receiver, 1, within_s=0) == []  # 200 s left: too early

    world.advance(141)  # 59 s left
    [first] = await reminders_after(receiver, 1)
    assert first["event"] == reminder(60, 15)  # the filter as given, `~` included
    assert first["subscriptionId"] == subscription["id"]
    assert first["body"]["expiresIn"] <= 60
    await asyncio.sleep(1.5)
    assert len(await reminders_after(receiver, 2, within_s=0)) == 1  # not before 15 s

    world.advance(16)
    assert len(await reminders_after(receiver, 2)) == 2

    renewed = await client.post(
        f"/restapi/v1.0/subscription/{subscription['id']}/renew", headers=BOT_AUTH
    )
    assert renewed.status == 200
    world.advance(16)
    await asyncio.sleep(1.5)
    assert len(await reminders_after(receiver, 3, within_s=0)) == 2  # renewed: quiet again


@pytest.mark.parametrize(
    ("threshold", "interval", "expires_in"),
    [
        (302401, 43200, 604800),  # threshold above half the lifetime
        (172800, 86401, 604800),  # interval above half the threshold
        (60, 5, 3600),  # interval below the reminder job's period
    ],
)
async def test_out_of_range_reminders_are_refused(
    client: SandboxClient, receiver: Receiver, threshold: int, interval: int, expires_in: int
) -> None:
    response = await client.post(
        "/restapi/v1.0/subscription",
        json={
            "eventFilters": [POSTS, reminder(threshold, interval)],
            "deliveryMode": {"transportType": "WebHook", "address": receiver.url},
            "expiresIn": expires_in,
        },
        headers=BOT_AUTH,
    )
    body = await response.json()
    assert response.status == 400, body
    assert body["errors"][0]["errorCode"] == "SUB-508"
    assert reminder(threshold, interval) in body["message"]


async def test_the_documented_examples_are_accepted(
    client: SandboxClient, receiver: Receiver
) -> None:
    await subscribe(client, BOT_AUTH, receiver, [POSTS, reminder(259200, 43200)])
    await subscribe(client, BOT_AUTH, receiver, [POSTS, reminder(60, 15)], expiresIn=3600)
