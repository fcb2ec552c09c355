"""One chatty person must not delay or starve everyone else's digests: digests go first
in the outbox, a share of the pacing and of the daily post budget is kept for them, and a
person who keeps sending words the bot does not know is answered a few times, told once
that the bot will be quiet, and then not answered for a while."""

from __future__ import annotations

import dataclasses

from bot.app import SERVICES
from bot.cards import card_as_text
from bot.outbox import DIGEST_SHARE
from bot.reply_limits import QUIET_FOR_S, UNKNOWN_WORDS_IN_A_ROW, ReplyLimits
from bot.runner import start_bot
from tests.e2e import Stack, eventually, settle


async def person_with_dm(stack: Stack, name: str) -> tuple[str, str]:
    person = await stack.control.user(name)
    return person, await stack.control.chat([person, stack.bot_id])


async def test_unknown_words_in_a_row_get_a_few_answers_one_notice_then_quiet(
    stack: Stack,
) -> None:
    person, dm = await person_with_dm(stack, "Chatty Charlie")
    for n in range(UNKNOWN_WORDS_IN_A_ROW + 6):
        await stack.control.say(dm, person, f"blorp{n}")
    await settle(stack.bot)
    answers = await stack.control.texts(dm, stack.bot_id)
    assert len(answers) == UNKNOWN_WORDS_IN_A_ROW + 1
    assert all("I don't know" in a for a in answers[:UNKNOWN_WORDS_IN_A_ROW])
    notice = answers[-1]
    assert "quiet" in notice and f"{QUIET_FOR_S // 60} minutes" in notice

    # A command the bot knows is answered at once, and the count starts again.
    await stack.control.say(dm, person, "help")
    await settle(stack.bot)
    answers = await stack.control.texts(dm, stack.bot_id)
    assert len(answers) == UNKNOWN_WORDS_IN_A_ROW + 2
    assert "Here is what I can do" in answers[-1]


async def test_replies_cannot_spend_the_budget_kept_for_digests(stack: Stack) -> None:
    limit = 8
    await stack.bot.stop()
    stack.config = dataclasses.replace(stack.config, daily_post_limit=limit)
    stack.bot = await start_bot(stack.config)
    owner, owner_dm = await person_with_dm(stack, "Olivia Owner")
    await stack.control.say(owner_dm, owner, "optin")
    talkers = [await person_with_dm(stack, f"Talker {n}") for n in range(3)]
    for _ in range(3):
        for person, dm in talkers:
            await stack.control.say(dm, person, "help")
    await settle(stack.bot)
    replies = [len(await stack.control.texts(dm, stack.bot_id)) for _, dm in talkers]
    assert sum(replies) + 1 <= limit - round(limit * DIGEST_SHARE)  # 1: the optin answer

    await stack.control.call("POST", "/calls", {"ownerExtensionId": owner})
    await settle(stack.bot)
    cards = await stack.control.cards(owner_dm)
    assert len(cards) == 1 and "Next steps" in card_as_text(cards[0]["card"])


async def test_a_digest_overtakes_a_queue_of_replies_at_the_platform_limits(
    stack: Stack,
) -> None:
    """With the platform's real limits (Medium: 40 a minute), 45 queued replies would hold
    a digest back for a minute; digests go first and have a share of the pacing kept."""
    await stack.control.call("POST", "/faults", {"enforceRateLimits": True})
    owner, owner_dm = await person_with_dm(stack, "Olivia Owner")
    await stack.control.say(owner_dm, owner, "optin")
    await settle(stack.bot)
    talkers = [await person_with_dm(stack, f"Talker {n}") for n in range(5)]
    for _ in range(9):
        for person, dm in talkers:
            await stack.control.say(dm, person, "help")
    await stack.control.call("POST", "/calls", {"ownerExtensionId": owner})

    async def digest_posted() -> bool:
        return bool(await stack.control.cards(owner_dm))

    await eventually(digest_posted, within_s=30)
    replies = [len(await stack.control.texts(dm, stack.bot_id)) for _, dm in talkers]
    assert sum(replies) < 45  # some replies still wait their turn; the digest did not
    requests = await stack.control.requests()
    assert not [r for r in requests if r.get("status") == 429]


async def test_a_person_over_the_command_quota_is_told_once_then_not_answered(
    stack: Stack,
) -> None:
    quota = 8  # a small `bot.commands_per_person_per_10_min`, so the test stays short
    stack.bot.app[SERVICES].reply_limits = ReplyLimits(commands_per_window=quota)
    person, dm = await person_with_dm(stack, "Busy Bea")
    for _ in range(quota + 4):
        await stack.control.say(dm, person, "help")
    await settle(stack.bot)
    answers = await stack.control.texts(dm, stack.bot_id)
    assert len(answers) == quota + 1
    assert "taking a break" in answers[-1]
    # Someone else is not affected.
    other, other_dm = await person_with_dm(stack, "Calm Cal")
    await stack.control.say(other_dm, other, "help")
    await settle(stack.bot)
    assert len(await stack.control.texts(other_dm, stack.bot_id)) == 1
