"""`find`'s index of a call's words is replaced in place: what replacing one call's lines
costs does not grow with the calls already indexed (before, the index's `call_key`, a
column FTS5 cannot look up, was found by reading every indexed line of every call)."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from bot.storage import MIGRATIONS, SearchLine, Storage

DAY_S = 86_400.0


def _lines(key: str, count: int) -> list[SearchLine]:
    title = [SearchLine("title", 0, None, None, f"Call {key}")]
    return title + [
        SearchLine("transcript", n, float(n), "Ann", f"line {n} of {key} about the renewal")
        for n in range(count)
    ]


async def _store(storage: Storage, key: str) -> None:
    await storage.save_call(
        key,
        domain="pbx",
        source_record_id=key,
        source_session_id=None,
        owner_extension_id="101",
        recording_start_time="2026-01-01T10:00:00Z",
        insights={"title": f"Call {key}"},
        account_id="1",
    )
    await storage.index_call(key, "1", _lines(key, 20))


async def _steps_to_reindex(storage: Storage, key: str) -> int:
    """SQLite virtual machine steps (in hundreds) spent replacing one call's lines."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    await storage._db.set_progress_handler(count, 100)
    try:
        await storage.index_call(key, "1", _lines(key, 20))
    finally:
        await storage._db.set_progress_handler(None, 100)
    return steps


async def test_replacing_a_calls_words_costs_the_same_with_many_calls_indexed(
    tmp_path: Path,
) -> None:
    storage = await Storage.open(tmp_path / "bot.sqlite3")
    try:
        for n in range(5):
            await _store(storage, f"pbx:few{n}")
        with_few = await _steps_to_reindex(storage, "pbx:few0")
        for n in range(300):
            await _store(storage, f"pbx:many{n}")
        with_many = await _steps_to_reindex(storage, "pbx:few0")
        assert with_many < with_few * 1.5 + 5, (with_few, with_many)

        # And the index still answers as before: each call's own lines, once.
        hits = await storage.search_calls("1", '"renewal"', participant=None, limit=10_000)
        assert len(hits) == 305 * 20
        assert sum(h.call_key == "pbx:few0" for h in hits) == 20
        [title] = await storage.search_calls("1", '"few0"', participant=None, kinds=["title"])
        assert title.line.kind == "title"
    finally:
        await storage.close()


async def test_a_database_of_migration_12_keeps_what_find_finds_and_what_was_handled(
    tmp_path: Path,
) -> None:
    """Migration 13 on a database made before it: `find` still finds every call's lines
    (now in each call's own rowid range, replaced in place by a later digest), and the
    RingSense notifications already handled are still known by their recording id."""
    path = tmp_path / "bot.sqlite3"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for number, script in enumerate(MIGRATIONS[:12], start=1):
        old.executescript(script)
        old.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))
    for key in ("pbx:r1", "pbx:r2"):
        old.execute(
            "INSERT INTO calls (call_key, domain, source_record_id, owner_extension_id, "
            "insights, updated_at, account_id) VALUES (?, 'pbx', ?, '101', '{}', 0, '1')",
            (key, key),
        )
        for n in range(3):
            old.execute(
                "INSERT INTO call_search (text, account_id, call_key, kind, position) "
                "VALUES (?, '1', ?, 'transcript', ?)",
                (f"pineapple {n} of {key}", key, n),
            )
    old.execute(
        "INSERT INTO inbox (uuid, kind, payload, received_at, status) VALUES "
        "('n-1', 'ringsense.insights', ?, 0, 'done')",
        (json.dumps({"body": {"sourceRecordId": "r1"}}),),
    )
    old.commit()
    old.close()

    storage = await Storage.open(path)
    try:
        hits = await storage.search_calls("1", '"pineapple"', participant=None)
        assert sorted(h.call_key for h in hits) == ["pbx:r1"] * 3 + ["pbx:r2"] * 3
        await storage.index_call("pbx:r1", "1", _lines("pbx:r1", 1))
        hits = await storage.search_calls("1", '"pineapple"', participant=None)
        assert sorted(h.call_key for h in hits) == ["pbx:r2"] * 3
        assert await storage.ringsense_notification_handled("r1")
        assert not await storage.ringsense_notification_handled("r2")
    finally:
        await storage.close()


async def test_a_handled_notification_is_still_known_once_its_words_are_pruned(
    tmp_path: Path,
) -> None:
    """Retention empties a finished notification's payload long before it forgets the row:
    catch-up must still see that the call's digest decision was made (else a person who
    opted in later would get calls from before)."""
    storage = await Storage.open(tmp_path / "bot.sqlite3")
    try:
        event = {"uuid": "n-1", "event": "/ai", "body": {"sourceRecordId": "r-7"}}
        assert await storage.add_to_inbox("n-1", "ringsense.insights", event)
        [item] = await storage.due_inbox(10)
        await storage.finish_inbox(item.id, "done")
        assert await storage.ringsense_notification_handled("r-7")
        now = time.time()
        await storage.prune(now=now + 8 * DAY_S, messages_days=7, calls_days=90, dedupe_days=30)
        assert await storage.ringsense_notification_handled("r-7")
        assert not await storage.ringsense_notification_handled("r-8")
    finally:
        await storage.close()


def test_a_transcript_indexed_from_memory_gives_the_lines_of_the_parsed_one() -> None:
    """A digest indexes the transcript it holds as RingSense sent it: the lines must be
    exactly those of the same transcript read into `CallInsights` (text or value, times
    as numbers or numeric strings, speakers named by id, odd items skipped)."""
    from bot.ringsense import CallInsights
    from bot.search import search_lines
    from bot.storage import split_transcript

    utterances = [
        {"speakerId": "s1", "text": "Hello there", "start": 1.5},
        {"speakerId": 7, "value": "By value", "start": "2.25"},
        {"speakerId": "s2", "text": "   ", "value": "Text blank, value kept"},
        {"speakerId": "unknown", "text": "Nobody named", "start": True},
        "not an utterance",
        {"text": ""},
        {"speakerId": "s1", "text": "Last", "start": float("inf")},
    ]
    record = {
        "domain": "pbx",
        "sourceRecordId": "r1",
        "ownerExtensionId": "101",
        "title": "Renewal",
        "speakerInfo": [
            {"speakerId": "s1", "name": "Ann"},
            {"speakerId": "7", "name": "", "phoneNumber": "+15550100"},
            {"speakerId": "s2", "name": "Bob"},
        ],
        "insights": {"Transcript": utterances, "Summary": [{"value": "We agreed."}]},
    }
    parsed = search_lines(CallInsights.from_api(record))
    without, transcript = split_transcript(record)
    from_memory = search_lines(CallInsights.from_api(without), transcript=transcript)
    assert from_memory == parsed
    assert [line.speaker for line in parsed if line.kind == "transcript"] == [
        "Ann",
        "+15550100",
        "Bob",
        None,
        "Ann",
    ]


async def _steps_to_prune_one_old_call(storage: Storage, key: str) -> int:
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    await storage._db.execute("UPDATE calls SET updated_at = 0 WHERE call_key = ?", (key,))
    await storage._db.set_progress_handler(count, 100)
    try:
        pruned = await storage.prune(
            now=time.time(), messages_days=7, calls_days=90, dedupe_days=30
        )
    finally:
        await storage._db.set_progress_handler(None, 100)
    # Its title's row and the one block holding its 20 transcript lines.
    assert pruned["calls"] == 1 and pruned["call_search"] == 2
    return steps


async def test_pruning_a_call_costs_the_same_with_many_calls_indexed(tmp_path: Path) -> None:
    """Retention removes an old call's lines from `find`'s index by the call's rowid
    range, not by reading every indexed line of every call (which cost 37 times more with
    50 times the calls). What still grows a little is the one `optimize` per round that
    merges the index so no deleted word stays in it."""
    storage = await Storage.open(tmp_path / "bot.sqlite3")
    try:
        for n in range(6):
            await _store(storage, f"pbx:few{n}")
        with_few = await _steps_to_prune_one_old_call(storage, "pbx:few0")
        for n in range(300):
            await _store(storage, f"pbx:many{n}")
        with_many = await _steps_to_prune_one_old_call(storage, "pbx:few1")
        # Deleting the call's two rows (title, one transcript block) costs almost
        # nothing now, so the optimize's own growth is allowed a fixed allowance too;
        # reading every indexed row to find the call's (600 rows here) costs far more.
        assert with_many < with_few * 4 + 10, (with_few, with_many)
        hits = await storage.search_calls("1", '"renewal"', participant=None, limit=10_000)
        assert len(hits) == 304 * 20
    finally:
        await storage.close()
