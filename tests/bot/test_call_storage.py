"""Calls as stored (issue 12): the transcript once and apart, `last` newest first from one
index walk, retention that prunes transcripts with their call and works through any backlog
in small batches, and calls stored before this layout still readable. On both backends
(issue 13) where the test is not about SQLite's own files or plans."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from bot.ringsense import CallInsights
from bot.storage import MIGRATIONS, PRUNE_BATCH, Storage
from bot.store import StorageInterface
from tests.stores import StoreFactory, postgres_rows

DAY_S = 86_400.0
UTTERANCES = [{"speakerId": "1", "text": "We sign on Friday.", "start": 1.0, "end": 2.0}]


def _record(key: str, started: str, **insights: Any) -> dict[str, Any]:
    return {
        "domain": "pbx",
        "sourceRecordId": key,
        "ownerExtensionId": "101",
        "recordingStartTime": started,
        "insights": {"Summary": [{"value": f"About {key}."}], **insights},
    }


async def _save(
    storage: StorageInterface, key: str, account: str, started: str, **insights: Any
) -> None:
    await storage.save_call(
        key,
        domain="pbx",
        source_record_id=key,
        source_session_id=None,
        owner_extension_id="101",
        recording_start_time=started,
        insights=_record(key, started, **insights),
        participant_ids=["102"],
        account_id=account,
    )


async def test_the_transcript_is_kept_apart_and_comes_back_only_when_asked(
    any_storage: StorageInterface,
) -> None:
    storage = any_storage
    await _save(storage, "r1", "A", "2026-11-30T10:00:00Z", Transcript=UTTERANCES)
    card_view = await storage.call_of_account("r1", "A")
    assert card_view is not None and "Transcript" not in card_view["insights"]
    call = CallInsights.from_api(card_view, account_id="A")
    assert call.has_transcript and call.transcript == ()  # Show transcript is offered

    shown = await storage.call_of_account("r1", "A", with_transcript=True)
    assert shown is not None
    assert [u.text for u in CallInsights.from_api(shown).transcript] == ["We sign on Friday."]
    # Another account gets nothing, transcript or not.
    assert await storage.call_of_account("r1", "B", with_transcript=True) is None


async def test_an_older_record_never_replaces_a_newer_transcript(
    any_storage: StorageInterface,
) -> None:
    storage = any_storage
    newer = [{"speakerId": "1", "text": "Corrected words.", "start": 1.0}]
    older = [{"speakerId": "1", "text": "First draft.", "start": 1.0}]
    for words, modified in ((newer, "2026-11-30T12:00:00Z"), (older, "2026-11-30T11:00:00Z")):
        record = _record("r1", "2026-11-30T10:00:00Z", Transcript=words)
        record["lastModifiedTime"] = modified
        await storage.save_call(
            "r1",
            domain="pbx",
            source_record_id="r1",
            source_session_id=None,
            owner_extension_id="101",
            recording_start_time=None,
            insights=record,
            account_id="A",
        )
    shown = await storage.call_of_account("r1", "A", with_transcript=True)
    assert shown is not None
    assert [u.text for u in CallInsights.from_api(shown).transcript] == ["Corrected words."]


async def test_last_is_a_persons_newest_calls_of_their_account(
    any_storage: StorageInterface,
) -> None:
    storage = any_storage
    for day in range(1, 29):
        await _save(storage, f"a{day:02d}", "A", f"2026-11-{day:02d}T09:00:00Z")
    # Newer calls of the same extension id in another account are never theirs.
    await _save(storage, "b1", "B", "2026-11-29T09:00:00Z")
    newest = [key for key, _ in await storage.calls_of("A", "102", 3)]
    assert newest == ["a28", "a27", "a26"]
    # A call updated later (a new insight) keeps its place by start time.
    await _save(storage, "a01", "A", "2026-11-01T09:00:00Z")
    assert [key for key, _ in await storage.calls_of("A", "102", 1)] == ["a28"]
    # A call without a start time comes after every dated one, on either backend.
    await storage.save_call(
        "undated",
        domain="pbx",
        source_record_id="undated",
        source_session_id=None,
        owner_extension_id="102",
        recording_start_time=None,
        insights=_record("undated", ""),
        account_id="A",
    )
    everything = [key for key, _ in await storage.calls_of("A", "102", 100)]
    assert everything[:2] == ["a28", "a27"] and everything[-1] == "undated"
    assert len(everything) == 29


async def test_last_walks_one_index_on_sqlite(tmp_path: Path) -> None:
    """SQLite's plan: no sort of all their calls (PostgreSQL's: the test below)."""
    storage = await Storage.open(tmp_path / "bot.sqlite3")
    try:
        plan = await storage._db.execute_fetchall(
            "EXPLAIN QUERY PLAN SELECT c.call_key, c.insights FROM call_participants p "
            "JOIN calls c ON c.call_key = p.call_key "
            "WHERE p.extension_id = ? AND p.account_id = ? AND c.account_id = ? "
            "ORDER BY p.recording_start_time DESC, p.updated_at DESC LIMIT ?",
            ("102", "A", "A", 5),
        )
        assert not any("TEMP B-TREE" in str(row[3]) for row in plan), plan
    finally:
        await storage.close()


async def test_last_walks_one_index_on_postgres(postgres_url: str) -> None:
    """With a thousand calls of others and a hundred of theirs, PostgreSQL reads their
    newest few down the index and stops: no Sort node, whatever the history."""
    factory = StoreFactory("postgres", postgres_url)
    storage = await factory.open()
    try:
        for n in range(100):
            await _save(storage, f"a{n:03d}", "A", f"2026-11-01T09:{n // 60:02d}:{n % 60:02d}Z")
        # The account's history: a thousand calls of other people.
        await postgres_rows(
            postgres_url,
            "INSERT INTO calls (call_key, domain, source_record_id, owner_extension_id, "
            "recording_start_time, insights, updated_at, account_id) SELECT 'x' || n, 'pbx', "
            "'x' || n, 'other' || (n % 50), '2026-11-02T00:00:00Z', '{}', 0, 'A' "
            "FROM generate_series(1, 1000) AS n RETURNING 1",
        )
        await postgres_rows(
            postgres_url,
            "INSERT INTO call_participants (call_key, extension_id, account_id, "
            "recording_start_time, updated_at) SELECT 'x' || n, 'other' || (n % 50), 'A', "
            "'2026-11-02T00:00:00Z', 0 FROM generate_series(1, 1000) AS n RETURNING 1",
        )
        await postgres_rows(postgres_url, "ANALYZE calls")
        await postgres_rows(postgres_url, "ANALYZE call_participants")
        plan = await postgres_rows(
            postgres_url,
            "EXPLAIN SELECT c.call_key, c.insights FROM call_participants p "
            "JOIN calls c ON c.call_key = p.call_key "
            "WHERE p.extension_id = $1 AND p.account_id = $2 AND c.account_id = $2 "
            "ORDER BY p.recording_start_time DESC NULLS LAST, p.updated_at DESC NULLS LAST "
            "LIMIT $3",
            "102",
            "A",
            3,
        )
        text = "\n".join(row[0] for row in plan)
        assert "call_participants_newest_last" in text and "Sort" not in text, text
        assert [k for k, _ in await storage.calls_of("A", "102", 3)] == ["a099", "a098", "a097"]
    finally:
        await factory.close_all()


async def test_retention_prunes_a_backlog_bigger_than_a_batch_with_transcripts(
    tmp_path: Path,
) -> None:
    storage = await Storage.open(tmp_path / "bot.sqlite3")
    old = PRUNE_BATCH + 20
    try:
        for number in range(old):
            await storage.add_to_inbox(f"n-{number}", "post.added", {"text": "old words"})
        for item in await storage.due_inbox(old + 10):
            await storage.finish_inbox(item.id, "done")
        for number in range(old):
            await _save(storage, f"r{number}", "A", "2026-01-01T00:00:00Z", Transcript=UTTERANCES)
        await _save(storage, "recent", "A", "2026-11-01T00:00:00Z", Transcript=UTTERANCES)
        await storage._db.execute(
            "UPDATE calls SET updated_at = ? WHERE call_key != 'recent'",
            (time.time() - 91 * DAY_S,),
        )
        pruned = await storage.prune(
            now=time.time() + 8 * DAY_S, messages_days=7, calls_days=90, dedupe_days=30
        )
        assert pruned["inbox"] == old
        assert pruned["calls"] == old and pruned["call_transcripts"] == old
        async with storage._db.execute("SELECT COUNT(*) FROM inbox WHERE payload != '{}'") as c:
            assert (await c.fetchone())[0] == 0  # type: ignore[index]
        async with storage._db.execute("SELECT call_key FROM call_transcripts") as c:
            assert [r[0] for r in await c.fetchall()] == ["recent"]
        # A second round has nothing left to do.
        assert (
            await storage.prune(
                now=time.time() + 8 * DAY_S, messages_days=7, calls_days=90, dedupe_days=30
            )
            == {}
        )
    finally:
        await storage.close()


async def test_calls_stored_before_the_transcript_moved_still_read_whole(tmp_path: Path) -> None:
    """A database of migration 9: the transcript inside the insights, participants without
    the start time `last` sorts by."""
    path = tmp_path / "bot.sqlite3"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for number, script in enumerate(MIGRATIONS[:9], start=1):
        old.executescript(script)
        old.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))
    for key, started in (("r1", "2026-11-01T09:00:00Z"), ("r2", "2026-11-02T09:00:00Z")):
        old.execute(
            "INSERT INTO calls (call_key, domain, source_record_id, owner_extension_id, "
            "recording_start_time, insights, updated_at, account_id) "
            "VALUES (?, 'pbx', ?, '101', ?, ?, 0, 'A')",
            (key, key, started, json.dumps(_record(key, started, Transcript=UTTERANCES))),
        )
        old.execute(
            "INSERT INTO call_participants (call_key, extension_id, account_id) "
            "VALUES (?, '102', 'A')",
            (key,),
        )
    old.commit()
    old.close()

    storage = await Storage.open(path)
    try:
        assert [key for key, _ in await storage.calls_of("A", "102", 5)] == ["r2", "r1"]
        shown = await storage.call_of_account("r1", "A", with_transcript=True)
        assert shown is not None
        assert [u.text for u in CallInsights.from_api(shown).transcript] == ["We sign on Friday."]
    finally:
        await storage.close()
