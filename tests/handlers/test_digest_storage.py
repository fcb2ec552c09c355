"""What a digest leaves in the database (issue 12): the transcript once, apart from the
insights every card reads; the call and its deliveries stored together or not at all."""

from __future__ import annotations

from typing import Any

from bot.app import INBOX_WORKER, SERVICES
from bot.cards import card_as_text
from tests.e2e import Stack, settle, sqlite_only
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


async def _rows_with(stack: Stack, table: str, column: str, text: str) -> int:
    """How many rows of `table` hold `text` in `column`, on either backend."""
    contains = "instr" if stack.backend == "sqlite" else "strpos"
    # Table and column names come from the tests below.
    [(count,)] = await stack.sql(
        f"SELECT COUNT(*) FROM {table} WHERE {contains}({column}, ?) > 0",  # noqa: S608
        text,
    )
    return int(count)


async def _refuse_inserts(stack: Stack, table: str, when: str = "") -> None:
    """From now on the database refuses rows inserted into `table` (those matching
    `when`, a condition on NEW), as a full disk or a failing server would."""
    if stack.backend == "sqlite":
        condition = f"WHEN {when} " if when else ""
        await stack.sql(
            f"CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} {condition}"
            "BEGIN SELECT RAISE(ABORT, 'disk trouble'); END"
        )
        return
    condition = f"WHEN ({when}) " if when else ""
    await stack.sql(
        "CREATE FUNCTION refuse_insert() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'disk trouble'; END $$"
    )
    await stack.sql(
        f"CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} FOR EACH ROW "
        f"{condition}EXECUTE FUNCTION refuse_insert()"
    )


async def _allow_inserts_and_retry(stack: Stack, table: str) -> None:
    """The database takes `table`'s rows again, and the failed notifications are due
    again (as an operator's retry would make them)."""
    if stack.backend == "sqlite":
        await stack.sql(f"DROP TRIGGER refuse_{table}")
        await stack.sql(
            "UPDATE inbox SET status = 'pending', next_attempt_at = 0 "
            "WHERE kind = 'ringsense.insights'"
        )
    else:
        await stack.sql(f"DROP TRIGGER refuse_{table} ON {table}")
        await stack.sql("DROP FUNCTION refuse_insert()")
        await stack.sql(
            "UPDATE inbox SET status = 'pending', next_attempt_at = 0, claimed_by = NULL, "
            "lease_until = NULL WHERE kind = 'ringsense.insights'"
        )
    stack.bot.app[SERVICES].wake_outbox()
    stack.bot.app[INBOX_WORKER].wake()


async def test_the_transcript_is_stored_once_and_still_shown(stack: Stack) -> None:
    owner, chat = await opted_in_user(stack)
    await stack.control.call(
        "POST",
        "/calls",
        {"ownerExtensionId": owner, "insights": {"Transcript": _transcript(200)}},
    )
    await settle(stack.bot)
    [digest] = await stack.control.cards(chat)

    assert await _rows_with(stack, "call_transcripts", "utterances", WORDS) == 1
    assert await _rows_with(stack, "calls", "insights", WORDS) == 0
    assert await _rows_with(stack, "outbox", "message", WORDS) == 0

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
    await _refuse_inserts(stack, "outbox", when="NEW.priority = 0")
    call = await stack.control.call("POST", "/calls", {"ownerExtensionId": owner})
    await settle(stack.bot)
    assert await stack.control.cards(chat) == []
    assert await storage.call_insights(f"pbx:{call['sourceRecordId']}") is None

    await _allow_inserts_and_retry(stack, "outbox")
    await settle(stack.bot)
    [card] = await stack.control.cards(chat)
    assert call["sourceRecordId"] in str(card["card"])  # this call's digest, once
    assert await storage.call_insights(f"pbx:{call['sourceRecordId']}") is not None


async def test_a_digest_its_to_do_items_and_its_search_words_are_kept_together(
    stack: Stack,
) -> None:
    """The database refuses the call's next steps once: then neither the call nor its
    digest may be kept (a digest whose words `find` never finds and whose items `todo`
    never lists, with its notification marked failed, is lost for good). The retry
    stores everything, and exactly one digest arrives."""
    owner, chat = await opted_in_user(stack)
    storage = stack.bot.app[SERVICES].storage
    await _refuse_inserts(stack, "next_steps")
    call = await stack.control.call(
        "POST",
        "/calls",
        {"ownerExtensionId": owner, "insights": {"Transcript": _transcript(20)}},
    )
    await settle(stack.bot)
    key = f"pbx:{call['sourceRecordId']}"
    assert await stack.control.cards(chat) == []
    assert await storage.call_insights(key) is None

    await _allow_inserts_and_retry(stack, "next_steps")
    await settle(stack.bot)
    [card] = await stack.control.cards(chat)
    assert call["sourceRecordId"] in str(card["card"])
    account = stack.bot.app[SERVICES].installs[stack.bot_id].account_id
    items, total = await storage.open_next_steps(account, None, 10)
    assert total > 0 and {i.call_key for i in items} == {key}
    hits = await storage.search_calls(account, '"zebra"', participant=None)
    assert [hit.call_key for hit in hits] == [key]


def _write_transactions(statements: list[str]) -> list[str]:
    """The transactions that write among these statements (as traced), by their first
    write: each BEGIN, and each write outside one (SQLite commits it on its own)."""
    found: list[str] = []
    inside = False
    for statement in statements:
        if statement.startswith("--"):
            continue  # run by SQLite itself inside another statement (FTS5, triggers)
        word = statement.split(None, 1)[0].upper() if statement.strip() else ""
        if word == "BEGIN":
            found.append("")
            inside = True
        elif word in ("COMMIT", "ROLLBACK", "END"):
            inside = False
        elif word in ("INSERT", "UPDATE", "DELETE", "REPLACE"):
            if not inside:
                found.append(statement[:50])
            elif not found[-1]:
                found[-1] = statement[:50]
    return found


# SQLite only: it counts the transactions SQLite's statement trace shows on the workers'
# connection (PostgreSQL's batching is measured by the storage tests and benches).
@sqlite_only
async def test_a_digest_costs_three_transactions_from_notification_to_card(
    stack: Stack,
) -> None:
    """Issue 12: the handler writes the call, its participants, transcript, next steps,
    search words, deliveries and its notification's `done` in one transaction; the
    delivery two more (the card marked pending before it is created; then the post
    counted, the card id kept and the delivery marked sent). Nothing else writes on the
    workers' connection for a digest, not even for the bot's own card coming back as a
    post."""
    owner, chat = await opted_in_user(stack)
    storage = stack.bot.app[SERVICES].storage
    seen: list[str] = []
    for number in range(4):
        if number == 1:  # the first digest also remembers the person's direct chat
            await storage._db.set_trace_callback(seen.append)
        await stack.control.call(
            "POST",
            "/calls",
            {"ownerExtensionId": owner, "insights": {"Transcript": _transcript(50)}},
        )
        await settle(stack.bot)
    await storage._db.set_trace_callback(None)
    assert len(await stack.control.cards(chat)) == 4
    transactions = _write_transactions(seen)
    assert len(transactions) == 3 * 3, transactions
