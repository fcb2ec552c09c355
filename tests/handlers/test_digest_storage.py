"""What a digest leaves in the database (issue 12): the transcript once, apart from the
insights every card reads; the call and its deliveries stored together or not at all."""

from __future__ import annotations

import sqlite3
from typing import Any

from bot.app import SERVICES
from bot.cards import card_as_text
from tests.e2e import Stack, settle
from tests.handlers.test_digests import opted_in_user

WORDS = "Zebra-crossing budget of forty-two thousand"


def _transcript(count: int) -> list[dict[str, Any]]:
    return [
        {
            "speakerId": "1" if n % 2 else "2",
            "text": f"{WORDS} line {n}." if n == 3 else f"Line {n} of the call.",
            "start": float(n),
            "end": n + 0.9,
        }
        for n in range(count)
    ]


def _actions(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        here = [node] if str(node.get("type", "")).startswith("Action.") else []
        return here + [a for value in node.values() for a in _actions(value)]
    if isinstance(node, list):
        return [a for value in node for a in _actions(value)]
    return []


def _rows_with(database: str, table: str, column: str, text: str) -> int:
    db = sqlite3.connect(database)
    try:
        # Table and column names come from the tests below.
        (count,) = db.execute(
            f"SELECT COUNT(*) FROM {table} WHERE instr({column}, ?) > 0",  # noqa: S608
            (text,),
        ).fetchone()
        return int(count)
    finally:
        db.close()


async def test_the_transcript_is_stored_once_and_still_shown(stack: Stack) -> None:
    owner, chat = await opted_in_user(stack)
    await stack.control.call(
        "POST",
        "/calls",
        {"ownerExtensionId": owner, "insights": {"Transcript": _transcript(200)}},
    )
    await settle(stack.bot)
    [digest] = await stack.control.cards(chat)

    database = str(stack.config.database_path)
    assert _rows_with(database, "call_transcripts", "utterances", WORDS) == 1
    assert _rows_with(database, "calls", "insights", WORDS) == 0
    assert _rows_with(database, "outbox", "message", WORDS) == 0

    # The digest still offers the transcript, and pressing it (after a restart, so it is
    # read back from the database) sends it with its lines.
    await stack.restart_bot()
    [show] = [
        a["data"]
        for a in _actions(digest["card"])
        if a.get("data", {}).get("action") == "digest.transcript"
    ]
    answer = await stack.control.call(
        "POST", f"/cards/{digest['cardId']}/submit", {"userId": owner, "data": show}
    )
    assert answer["status"] == 200
    await settle(stack.bot)
    texts = [card_as_text(p["card"]) for p in await stack.control.cards(chat)]
    assert any(WORDS in text for text in texts[1:]), texts


async def test_a_call_and_its_deliveries_are_stored_together_or_not_at_all(
    stack: Stack,
) -> None:
    """The database refuses the digest's delivery once: the call must not be stored
    without it (a crash there would leave a call whose digest nobody queues). When the
    retry succeeds, exactly one digest arrives."""
    owner, chat = await opted_in_user(stack)
    storage = stack.bot.app[SERVICES].storage
    await storage._db.execute(
        "CREATE TEMP TRIGGER refuse_digest BEFORE INSERT ON outbox "
        "WHEN NEW.priority = 0 BEGIN SELECT RAISE(ABORT, 'disk trouble'); END"
    )
    call = await stack.control.call("POST", "/calls", {"ownerExtensionId": owner})
    await settle(stack.bot)
    assert await stack.control.cards(chat) == []
    assert await storage.call_insights(f"pbx:{call['sourceRecordId']}") is None

    await storage._db.execute("DROP TRIGGER temp.refuse_digest")
    await storage._db.execute(
        "UPDATE inbox SET status = 'pending', next_attempt_at = 0 WHERE kind = 'ringsense.insights'"
    )
    stack.bot.app[SERVICES].wake_outbox()
    from bot.app import INBOX_WORKER

    stack.bot.app[INBOX_WORKER].wake()
    await settle(stack.bot)
    [card] = await stack.control.cards(chat)
    assert call["sourceRecordId"] in str(card["card"])  # this call's digest, once
    assert await storage.call_insights(f"pbx:{call['sourceRecordId']}") is not None
