"""Retention: uninstalling deletes every row of the account, in every table; finished
messages and old calls are pruned after the configured days, without breaking dedupe or
card-in-place updates."""

from __future__ import annotations

import asyncio
import copy
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp

from bot.app import SERVICES
from bot.cards import card_as_text
from bot.retention import RetentionPruner
from bot.storage import GLOBAL_TABLES, MIGRATIONS, AiJob, SearchLine, Storage
from bot.webhooks import VERIFICATION_TOKEN_HEADER
from tests.conftest import load_fixture
from tests.e2e import Stack, settle

DEFAULT_ACCOUNT = "809640001"
DAY_S = 86_400.0


async def tables(stack: Stack) -> list[str]:
    """The bot's tables, read the way an auditor would: directly, beside the running bot,
    on either backend."""
    if stack.backend == "postgres":
        query = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
    else:
        query = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    return [str(r[0]) for r in await stack.sql(query)]


async def columns(stack: Stack, table: str) -> list[str]:
    if stack.backend == "postgres":
        rows = await stack.sql(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ?",
            table,
        )
        return [str(r[0]) for r in rows]
    return [str(r[1]) for r in await stack.sql(f"PRAGMA table_info({table})")]


async def rows_per_account(stack: Stack, account_id: str) -> dict[str, int]:
    """Rows attributed to an account, per table, for every table that can attribute rows."""
    counts = {}
    for table in await tables(stack):
        if "account_id" in await columns(stack, table):
            ((count,),) = await stack.sql(
                f"SELECT COUNT(*) FROM {table} WHERE account_id = ?",  # noqa: S608
                account_id,
            )
            counts[table] = int(count)
    return counts


async def every_stored_value(stack: Stack) -> list[tuple[str, str]]:
    """(table, value as text) for every cell of every table."""
    found = []
    for table in await tables(stack):
        for row in await stack.sql(f"SELECT * FROM {table}"):  # noqa: S608
            found.extend((table, str(value)) for value in row if value is not None)
    return found


async def install_second_account(stack: Stack) -> dict[str, str]:
    account = await stack.control.call("POST", "/accounts", {"name": "Second customer"})
    installed: dict[str, str] = await stack.control.install_bot(account["accountId"])
    await settle(stack.bot)
    return installed


def _actions(card: Any) -> Iterator[dict[str, Any]]:
    if isinstance(card, dict):
        if str(card.get("type", "")).startswith("Action."):
            yield card
        for value in card.values():
            yield from _actions(value)
    elif isinstance(card, list):
        for value in card:
            yield from _actions(value)


async def test_uninstall_deletes_every_row_of_the_account_and_keeps_the_other(
    stack: Stack,
) -> None:
    control = stack.control
    storage = stack.bot.app[SERVICES].storage
    # Account A (the default account, whose service user reads RingSense): a person opts
    # in, adds a group channel, has a call, presses Helpful on its digest.
    owner = await control.user("Olga Owner")
    colleague = await control.user("Carl Colleague")
    dm = await control.chat([owner, stack.bot_id])
    await control.say(dm, owner, "optin")
    group = await control.chat([owner, colleague, stack.bot_id], "Team", name="Deals")
    await control.say(group, owner, f"![:Person]({stack.bot_id}) channel add")
    await settle(stack.bot)
    call = await control.call(
        "POST", "/calls", {"ownerExtensionId": owner, "participants": [colleague]}
    )
    await settle(stack.bot)
    digest = next(c for c in await control.cards(dm) if "digest.feedback" in str(c))
    data = next(a["data"] for a in _actions(digest["card"]) if "verdict" in a.get("data", {}))
    await control.call("POST", f"/cards/{digest['cardId']}/submit", {"userId": owner, "data": data})
    # ...and the kinds of work no chat command makes here: an AI analysis, a RingCX segment.
    await storage.save_ai_job(
        AiJob(
            job_id="job-of-a",
            requester_id=owner,
            account_id=DEFAULT_ACCOUNT,
            destination={"kind": "direct", "extensionId": owner},
            source_label="call.mp3",
            recording_id=None,
            entitled_ids=frozenset({owner}),
            webhook_secret_hash="x",
            state="done",
            requested_at=time.time(),
            expires_at=time.time() + 3600,
            result={"utterances": ["what Olga said"]},
        )
    )
    await storage.add_ringcx_segments(
        [("dialog-a", "segment-a", {"agent": owner}, owner, None)],
        "ringcx:test-position",
        "2026-01-01T00:00:00",
        DEFAULT_ACCOUNT,
    )
    # Account B, where the bot is installed too: a person opts in and asks for help.
    second = await install_second_account(stack)
    bea = await control.user("Bea Other", accountId=second["accountId"])
    bea_dm = await control.chat([bea, second["extensionId"]])
    await control.say(bea_dm, bea, "optin")
    await control.say(bea_dm, bea, "help")
    await settle(stack.bot)

    before_a = await rows_per_account(stack, DEFAULT_ACCOUNT)
    before_b = await rows_per_account(stack, second["accountId"])
    for table in (
        "inbox",
        "outbox",
        "posted_cards",
        "calls",
        "call_participants",
        "feedback",
        "user_settings",
        "user_channels",
        "direct_chats",
        "daily_posts",
        "seen_submits",
        "ai_jobs",
        "ringcx_segments",
        "installs",
        "next_steps",
        "call_search",
    ):
        if table != "installs":  # A's bot came from RC_BOT_TOKEN: its token is not stored
            assert before_a[table] > 0, f"account A made no {table} rows: the test is void"
    assert before_b["inbox"] > 0 and before_b["outbox"] > 0 and before_b["installs"] == 1

    await control.call("DELETE", f"/bots/{stack.bot_id}")
    await settle(stack.bot)

    every_table = await tables(stack)
    # PostgreSQL's `rate_limits` (pacing windows shared by replicas) is keyed by the caller
    # identity, not by account: a token's fingerprint or the account's RingSense reader,
    # whose rows `forget_account` deletes by that identity. It holds no call data (times
    # and counts), and the `leftovers` check below still reads every one of its cells.
    keyed_by_identity = {"rate_limits"} if stack.backend == "postgres" else set()
    for table in every_table:
        if table in keyed_by_identity:
            continue
        # SQLite's FTS5 keeps an index's rows in shadow tables `<index>_…`: they are deleted
        # through the index, by its account_id (and `leftovers` below checks that).
        index = table.rsplit("_", 1)[0]
        shadow = index in every_table and "account_id" in await columns(stack, index)
        assert shadow or table in GLOBAL_TABLES or "account_id" in await columns(stack, table), (
            f"{table} has no account_id: its rows cannot be deleted with their account"
        )
    assert {t: n for t, n in (await rows_per_account(stack, DEFAULT_ACCOUNT)).items() if n} == {}
    assert await rows_per_account(stack, second["accountId"]) == before_b
    traces = {owner, colleague, dm, group, str(call["sourceRecordId"]), "what Olga said"}
    leftovers = [
        (table, value)
        for table, value in await every_stored_value(stack)
        if any(trace in value for trace in traces)
    ]
    assert leftovers == []
    # Account B still works.
    await control.say(bea_dm, bea, "status")
    await settle(stack.bot)
    assert len(await control.texts(bea_dm, second["extensionId"])) >= 3


async def redeliver(stack: Stack, payload: dict[str, Any]) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            stack.config.webhook_address,
            json=payload,
            headers={VERIFICATION_TOKEN_HEADER: stack.config.verification_token},
        ) as response,
    ):
        return response.status


async def test_pruning_removes_words_but_keeps_dedupe_and_cards_in_place(stack: Stack) -> None:
    control = stack.control
    event = load_fixture("ringsense-event-pbx.json")
    owner = event["body"]["ownerExtensionId"]
    await control.user("John Smith", extensionId=owner)
    dm = await control.chat([owner, stack.bot_id])
    await control.say(dm, owner, "optin")
    await settle(stack.bot)
    await control.call("POST", "/calls", {"event": event})
    await settle(stack.bot)
    [card] = await control.cards(dm)
    replies_before = await control.texts(dm, stack.bot_id)
    ((optin_payload,),) = await stack.sql(
        "SELECT payload FROM inbox WHERE kind = 'post.added' AND payload LIKE '%optin%'"
    )

    eight_days_on = RetentionPruner(
        stack.bot.app[SERVICES].storage, stack.config, clock=lambda: time.time() + 8 * DAY_S
    )
    pruned = await eight_days_on.prune_once()
    assert pruned.get("inbox") and pruned.get("outbox")

    words = [
        (table, value)
        for table, value in await every_stored_value(stack)
        if table in ("inbox", "outbox") and ("optin" in value or "Write a developer guide" in value)
    ]
    assert words == []
    assert await stack.sql("SELECT COUNT(*) FROM calls") == [(1,)]
    # RingCentral redelivers the `optin` message: it is recognised, not answered again.
    assert await redeliver(stack, json.loads(optin_payload)) == 200
    await settle(stack.bot)
    assert await control.texts(dm, stack.bot_id) == replies_before
    # More insights for the call, within calls retention: the same card is updated.
    later = copy.deepcopy(event)
    later["uuid"] = "later-" + event["uuid"]
    later["body"]["lastModifiedTime"] = "2024-09-04T21:20:00.000Z"
    later["body"]["insights"]["Summary"] = [
        {"start": 0, "end": 1, "value": "Updated after pruning."}
    ]
    await control.call("POST", "/calls", {"event": later})
    await settle(stack.bot)
    [updated] = await control.cards(dm)
    assert updated["id"] == card["id"]
    assert "Updated after pruning." in card_as_text(updated["card"])


async def test_calls_past_retention_are_gone_and_recent_ones_stay(tmp_path: Path) -> None:
    storage = await Storage.open(tmp_path / "bot.sqlite3")
    try:
        for key, age_days in (("old-call", 91), ("recent-call", 10)):
            await storage.save_call(
                key,
                domain="pbx",
                source_record_id=key,
                source_session_id=None,
                owner_extension_id="101",
                recording_start_time=None,
                insights={"summary": f"words of {key}"},
                participant_ids=["102"],
                account_id="1",
            )
            await storage.remember_card(key, "direct:101", "chat-1", f"card-{key}", "1")
            await storage.save_feedback(key, "101", "helpful")
            await storage.save_next_steps(key, "1", [("101", f"next step of {key}", None)])
            await storage.index_call(
                key, "1", [SearchLine("transcript", 0, 1.0, None, f"pineapple of {key}")]
            )
            await storage._db.execute(
                "UPDATE calls SET updated_at = ? WHERE call_key = ?",
                (time.time() - age_days * DAY_S, key),
            )
        pruned = await storage.prune(
            now=time.time(), messages_days=7, calls_days=90, dedupe_days=30
        )
        assert pruned == {
            "calls": 1,
            "call_participants": 2,
            "feedback": 1,
            "posted_cards": 1,
            "next_steps": 1,
            "call_search": 1,
        }
        hits = await storage.search_calls("1", '"pineapple"', participant=None)
        assert [hit.call_key for hit in hits] == ["recent-call"]
        mine, _ = await storage.open_next_steps("1", "101", 10)
        assert [item.text for item in mine] == ["next step of recent-call"]
        assert await storage.call_insights("old-call") is None
        assert await storage.call_insights("recent-call") == {"summary": "words of recent-call"}
        assert await storage.posted_card("recent-call", "direct:101") is not None
        assert [key for key, _ in await storage.calls_of("1", "102", 10)] == ["recent-call"]
    finally:
        await storage.close()


async def test_dedupe_keys_outlive_the_words_then_go(tmp_path: Path) -> None:
    storage = await Storage.open(tmp_path / "bot.sqlite3")
    try:
        assert await storage.add_to_inbox("n-1", "post.added", {"text": "my secret plan"})
        [item] = await storage.due_inbox(10)
        await storage.finish_inbox(item.id, "done")
        assert await storage.add_to_inbox("n-2", "post.added", {"text": "still pending"})
        now = time.time()
        await storage.prune(now=now + 8 * DAY_S, messages_days=7, calls_days=90, dedupe_days=30)
        assert not await storage.add_to_inbox("n-1", "post.added", {"text": "redelivered"})
        async with storage._db.execute("SELECT uuid, payload FROM inbox ORDER BY id") as cursor:
            rows = [tuple(r) for r in await cursor.fetchall()]
        assert rows == [("n-1", "{}"), ("n-2", '{"text":"still pending"}')]
        await storage.prune(now=now + 31 * DAY_S, messages_days=7, calls_days=90, dedupe_days=30)
        [pending] = await storage.due_inbox(10)
        assert pending.uuid == "n-2"  # pending work is never pruned
        async with storage._db.execute("SELECT COUNT(*) FROM inbox") as cursor:
            assert (await cursor.fetchone())[0] == 1  # type: ignore[index]
    finally:
        await storage.close()


async def test_the_pruner_runs_by_itself_on_its_schedule(tmp_path: Path) -> None:
    from tests.e2e import bot_config

    config = bot_config("http://127.0.0.1:1", tmp_path / "bot.sqlite3")
    storage = await Storage.open(config.database_path)
    clock = [time.time()]
    pruner = RetentionPruner(storage, config, clock=lambda: clock[0], interval_s=0.01)
    try:
        await storage.add_to_inbox("n-1", "post.added", {"text": "words to forget"})
        [item] = await storage.due_inbox(10)
        await storage.finish_inbox(item.id, "done")
        pruner.start()
        await asyncio.sleep(0.05)
        assert await storage.inbox_counts() == {"done": 1}  # within retention: kept as is
        clock[0] += (config.retention.messages_days + 1) * DAY_S
        for _ in range(100):
            async with storage._db.execute("SELECT payload FROM inbox") as cursor:
                (payload,) = await cursor.fetchone()  # type: ignore[misc]
            if payload == "{}":
                break
            await asyncio.sleep(0.01)
        assert payload == "{}"
    finally:
        await pruner.stop()
        await storage.close()


async def test_rows_stored_before_accounts_were_recorded_are_deleted_with_their_account(
    tmp_path: Path,
) -> None:
    """A database from before every table had `account_id`: uninstall still finds it all."""
    path = tmp_path / "bot.sqlite3"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for number, script in enumerate(MIGRATIONS[:4], start=1):
        old.executescript(script)
        old.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))
    old.executescript(
        """
        INSERT INTO user_settings (extension_id, account_id, opted_in, updated_at)
            VALUES ('101', 'A', 1, 0), ('201', 'B', 1, 0);
        INSERT INTO user_channels (extension_id, chat_id, chat_name, added_at)
            VALUES ('101', 'chat-a', 'A team', 0), ('201', 'chat-b', 'B team', 0);
        INSERT INTO calls (call_key, domain, source_record_id, owner_extension_id, insights,
            updated_at, account_id) VALUES ('call-a', 'pbx', 'r1', '101', '{}', 0, 'A');
        INSERT INTO call_participants (call_key, extension_id) VALUES ('call-a', '101');
        INSERT INTO feedback (call_key, extension_id, verdict, created_at)
            VALUES ('call-a', '101', 'helpful', 0);
        INSERT INTO posted_cards (card_key, destination, chat_id, card_id, updated_at)
            VALUES ('call-a', 'direct:101', 'dm-a', 'card-a', 0);
        INSERT INTO inbox (uuid, kind, payload, received_at)
            VALUES ('n-a', 'post.added', '{"ownerId":"9001","body":{"text":"A words"}}', 0);
        """
    )
    old.commit()
    old.close()

    storage = await Storage.open(path)
    try:
        await storage.forget_account("A", "9001")
    finally:
        await storage.close()
    db = sqlite3.connect(path)
    try:
        names = [
            r[0]
            for r in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        leftovers = [
            (table, str(value))
            for table in names
            for row in db.execute(f"SELECT * FROM {table}")  # noqa: S608
            for value in row
            if str(value) in ("101", "chat-a", "call-a", "card-a", "n-a", "A")
        ]
        assert leftovers == []
        assert db.execute("SELECT chat_id FROM user_channels").fetchall() == [("chat-b",)]
    finally:
        db.close()
