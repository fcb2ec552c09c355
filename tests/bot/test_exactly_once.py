"""Exactly once from what a person sees: interim answers, concurrent settings changes and
catch-up after downtime (issue 9, items 1, 4 and 5)."""

from __future__ import annotations

from typing import Any

from bot.cards import card_as_text
from tests.e2e import Stack, eventually, settle


async def dm_with(stack: Stack, name: str = "Kim Park") -> tuple[str, str]:
    user = await stack.control.user(name)
    return user, await stack.control.chat([user, stack.bot_id])


async def ask_while_failing_once(
    stack: Stack, dm: str, user: str, text: str, faults: dict[str, Any]
) -> None:
    """Ask while RingCentral fails, until the person has been told the bot will answer
    later; then RingCentral recovers."""
    await stack.control.call("POST", "/faults", {"errorRate": 1.0, **faults})
    await stack.control.say(dm, user, text)

    async def told_to_wait() -> bool:
        texts = await stack.control.texts(dm, stack.bot_id)
        return any("as soon as it works" in t for t in texts)

    await eventually(told_to_wait, within_s=10)
    await stack.control.call("DELETE", "/faults")


async def test_insights_after_a_temporary_failure_gets_the_interim_and_the_answer(
    stack: Stack,
) -> None:
    user, dm = await dm_with(stack)
    call = await stack.control.call("POST", "/calls", {"ownerExtensionId": user})
    await settle(stack.bot)
    await ask_while_failing_once(
        stack,
        dm,
        user,
        f"insights {call['sourceRecordId']}",
        {"paths": ["/ai/ringsense/"], "methods": ["GET"]},
    )

    async def digest_arrived() -> list[Any] | None:
        await settle(stack.bot)
        return await stack.control.cards(dm) or None

    await eventually(digest_arrived, within_s=15)
    await settle(stack.bot)
    texts = await stack.control.texts(dm, stack.bot_id)
    assert sum("as soon as it works" in t for t in texts) == 1
    cards = await stack.control.cards(dm)
    assert len(cards) == 1 and "Call from" in card_as_text(cards[0]["card"])


async def test_analyze_after_a_temporary_failure_gets_the_interim_and_the_card(
    stack: Stack,
) -> None:
    user, dm = await dm_with(stack)
    # The result comes much later: what the person sees meanwhile is the "Analysing" card.
    await stack.control.call("POST", "/settings", {"aiJobDelaySeconds": 3600})
    await ask_while_failing_once(
        stack,
        dm,
        user,
        "analyze https://media.example.com/calls/once.mp3",
        {"paths": ["/ai/insights/v1/async/analyze-interaction"], "methods": ["POST"]},
    )

    async def analysis_card() -> list[Any] | None:
        await settle(stack.bot)
        found = [c for c in await stack.control.cards(dm) if "once.mp3" in str(c["card"])]
        return found or None

    await eventually(analysis_card, within_s=15)
    await settle(stack.bot)
    texts = await stack.control.texts(dm, stack.bot_id)
    assert sum("as soon as it works" in t for t in texts) == 1
    cards = [c for c in await stack.control.cards(dm) if "once.mp3" in str(c["card"])]
    assert len(cards) == 1
