"""Nothing reaches RingCentral inside a 429 penalty, not even from requests that were
waiting to go when it began (API-FACTS G: every request during a penalty restarts it).

The sandbox runs on loopback with the platform's rate limiting on (tightened here so a
test takes seconds, not minutes), and what counts is the sandbox's own request log, read
with the same check `bench/chaos.py` uses: after a 429, no request of that group from that
sender until the `Retry-After` it was told has passed. Each scenario has several requests
of one group ready at once, as the bot's outbox workers do after a restart.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest

from bench.chaos import requests_inside_penalty
from bot.ratelimit import KEEP_WINDOWS_EVERY_S, PenaltyMemory
from bot.rc import RingCentralClient, RingCentralRateLimited, StaticToken
from bot.storage import Storage
from sandbox import defaults
from sandbox.runner import RunningSandbox, start_sandbox
from tests.e2e import Control

T = TypeVar("T")

SENDERS = 4
"""Requests of one group ready to go at the same moment (the outbox runs 4 workers)."""


@pytest.fixture
async def sandbox() -> AsyncIterator[RunningSandbox]:
    running = await start_sandbox()
    try:
        yield running
    finally:
        await running.close()


@pytest.fixture
async def control(sandbox: RunningSandbox) -> AsyncIterator[Control]:
    async with aiohttp.ClientSession() as session:
        yield Control(session, sandbox.url)


async def bot_chats(control: Control, count: int) -> list[str]:
    """Direct chats between new people and the sandbox's bot, one per sender."""
    chats = []
    for n in range(count):
        person = await control.user(f"Person {n}")
        chats.append(await control.chat([person, defaults.BOT_EXTENSION_ID]))
    return chats


def a_fresh_bot(session: aiohttp.ClientSession, sandbox: RunningSandbox) -> RingCentralClient:
    """The bot's client as a just-started process has it: it knows nothing of the window."""
    return RingCentralClient(session, sandbox.url, StaticToken(defaults.BOT_TOKEN))


def card(text: str) -> dict[str, Any]:
    return {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.3",
        "body": [{"type": "TextBlock", "text": text, "wrap": True}],
    }


async def until_answered(send: Callable[[], Awaitable[T]]) -> T:
    """What the outbox does with a 429: try again (the governor holds it until allowed)."""
    for _ in range(30):
        try:
            return await send()
        except RingCentralRateLimited:
            continue
    raise AssertionError("still refused after 30 attempts")


async def inside_a_penalty(control: Control) -> list[str]:
    return requests_inside_penalty([dict(r) for r in await control.requests()])


def refused(requests: list[Mapping[str, Any]]) -> int:
    return sum(1 for r in requests if r.get("status") == 429)


async def test_a_restarted_bot_meeting_the_window_its_last_run_filled_sends_nothing_in_the_penalty(
    sandbox: RunningSandbox, control: Control
) -> None:
    """What bench/chaos.py saw: the previous process used the whole Medium window, the new
    one started with four card recoveries (GET chat posts) at once; the first got 429 and
    the other three arrived 1 to 4 ms later, inside the penalty, restarting it."""
    await control.call(
        "POST",
        "/faults",
        {"limits": {"Medium": {"limit": 5, "windowSeconds": 3, "penaltySeconds": 1}}},
    )
    chats = await bot_chats(control, SENDERS)
    async with aiohttp.ClientSession() as session:
        last_run = a_fresh_bot(session, sandbox)
        for n in range(5):
            await last_run.recent_card_ids(chats[n % SENDERS], creator_id="x", since=0)
        await control.call("DELETE", "/requests")

        restarted = a_fresh_bot(session, sandbox)
        answers = await asyncio.gather(
            *(
                until_answered(partial(restarted.recent_card_ids, chat, creator_id="x", since=0))
                for chat in chats
            )
        )
    assert answers == [[]] * SENDERS  # every recovery got its answer in the end
    requests = await control.requests()
    assert refused(requests) >= 1, "the window was full: the scenario must meet a 429"
    assert await inside_a_penalty(control) == []


async def test_cards_queued_at_start_into_a_429_storm_are_each_posted_once_and_nothing_inside_it(
    sandbox: RunningSandbox, control: Control
) -> None:
    """A just-started bot does not know whether the group is penalised: its first request
    probes alone, and the others follow once an answer says they may."""
    chats = await bot_chats(control, SENDERS)
    await control.call(
        "POST",
        "/faults",
        {"storm": {"durationSeconds": 0.5, "retryAfter": 1, "paths": ["/adaptive-cards"]}},
    )
    async with aiohttp.ClientSession() as session:
        bot = a_fresh_bot(session, sandbox)
        await asyncio.gather(
            *(
                until_answered(partial(bot.create_card, chat, card(f"digest {chat}")))
                for chat in chats
            )
        )
    for chat in chats:
        cards = await control.cards(chat)
        assert [c["card"]["body"][0]["text"] for c in cards] == [f"digest {chat}"]
    assert refused(await control.requests()) >= 1
    assert await inside_a_penalty(control) == []


async def test_after_a_429_requests_that_were_waiting_wait_it_out_and_go_one_at_a_time(
    sandbox: RunningSandbox, control: Control
) -> None:
    """A storm that outlasts its first `Retry-After`: the requests that were waiting when
    the 429 came must not all go when it has passed, or all but one land in the next
    penalty. One probes; the rest follow once a request succeeds again."""
    chats = await bot_chats(control, SENDERS)
    async with aiohttp.ClientSession() as session:
        bot = a_fresh_bot(session, sandbox)
        await bot.create_card(chats[0], card("before the storm"))  # the window is known
        await control.call(
            "POST",
            "/faults",
            {"storm": {"durationSeconds": 2.5, "retryAfter": 1, "paths": ["/adaptive-cards"]}},
        )
        with pytest.raises(RingCentralRateLimited):
            await bot.create_card(chats[0], card("the first 429"))
        await asyncio.gather(
            *(
                until_answered(partial(bot.create_card, chat, card(f"digest {chat}")))
                for chat in chats
            )
        )
    for chat in chats:
        texts = [c["card"]["body"][0]["text"] for c in await control.cards(chat)]
        assert texts.count(f"digest {chat}") == 1
    assert refused(await control.requests()) >= 2  # the storm outlasted one Retry-After
    assert await inside_a_penalty(control) == []


async def test_a_restarted_bot_remembers_how_full_the_window_was_and_meets_no_429(
    sandbox: RunningSandbox, control: Control, tmp_path: Path
) -> None:
    """The window's use is kept in the database beside the penalties, so the process that
    follows waits for room instead of walking into a 429 (and a whole penalty, 60 s on the
    platform, for every request of the group)."""
    await control.call(
        "POST",
        "/faults",
        {"limits": {"Medium": {"limit": 5, "windowSeconds": 3, "penaltySeconds": 1}}},
    )
    chats = await bot_chats(control, SENDERS)
    storage = await Storage.open(tmp_path / "bot.sqlite3")
    try:
        async with aiohttp.ClientSession() as session:
            last_run = await a_bot_with_memory(session, sandbox, storage)
            for n in range(5):
                await last_run.recent_card_ids(chats[n % SENDERS], creator_id="x", since=0)
            # The process lives on a moment after its last send (the window is written
            # in the background, gathered over KEEP_WINDOWS_EVERY_S).
            await asyncio.sleep(KEEP_WINDOWS_EVERY_S + 0.25)
            await control.call("DELETE", "/requests")

            restarted = await a_bot_with_memory(session, sandbox, storage)
            answers = await asyncio.gather(
                *(
                    until_answered(
                        partial(restarted.recent_card_ids, chat, creator_id="x", since=0)
                    )
                    for chat in chats
                )
            )
    finally:
        await storage.close()
    assert answers == [[]] * SENDERS
    requests = await control.requests()
    assert len(requests) == SENDERS
    assert refused(requests) == 0


async def a_bot_with_memory(
    session: aiohttp.ClientSession, sandbox: RunningSandbox, storage: Storage
) -> RingCentralClient:
    """The bot's client as `python -m bot run` builds it: penalties (and now the window's
    use) read from the database at start and kept there."""
    memory = PenaltyMemory(storage)
    await memory.load()
    return RingCentralClient(
        session, sandbox.url, StaticToken(defaults.BOT_TOKEN), governor=memory.governor("bot")
    )
