"""SQLite storage basics: the connection, its pragmas, transactions, migrating, secret keys,
and which account a subscription owner belongs to; tables `schema_version`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import stat
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
import orjson

from bot.crypto import TokenCipher
from bot.inbox_writer import InboxWriter
from bot.ringsense import TRANSCRIPT_STORED_APART
from bot.store.common import StoreCommon
from bot.store.migrations import MIGRATIONS
from bot.store.records import (
    SEARCH_TABLE,
    SECRET_COLUMNS,
    SearchLine,
    StoredCall,
    split_transcript,
)

log = logging.getLogger(__name__)

_T = TypeVar("_T")

PRAGMAS = (
    # Deleted rows (an uninstalled account, pruned messages) are overwritten on disk, not
    # merely unlinked from the b-tree.
    "PRAGMA secure_delete=ON",
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=5000",
)


class StoreBase(StoreCommon):
    """The SQLite side of `CoreStore` (see bot/store/interface.py)."""

    def __init__(self, db: aiosqlite.Connection, cipher: TokenCipher | None = None) -> None:
        super().__init__(cipher)
        self._db = db
        self.record_digest_hands_over = True  # see `SqliteSettings.record_digest`
        self._write_lock = asyncio.Lock()
        self._inbox_writer: InboxWriter | None = None
        self._checkpoint: asyncio.Task[None] | None = None

    async def _encrypt_plaintext_tokens(self) -> None:
        """Install tokens stored before encryption existed are encrypted on the first start
        with a key, all in one transaction."""
        cipher = self._require_cipher()
        async with self._transaction() as db:
            cursor = await db.execute(
                "SELECT bot_extension_id, access_token FROM installs WHERE token_encrypted = 0"
            )
            rows = list(await cursor.fetchall())
            await cursor.close()
            for row in rows:
                await db.execute(
                    "UPDATE installs SET access_token = ?, token_encrypted = 1 "
                    "WHERE bot_extension_id = ?",
                    (cipher.encrypt(row["access_token"]), row["bot_extension_id"]),
                )
        if rows:
            log.info("encrypted %d install token(s) stored in plain text", len(rows))

    async def rotate_secret_key(self) -> int:
        """Re-encrypt every stored secret under the current (first) key; how many.

        All or nothing: a secret no configured key opens stops the rotation unchanged.
        """
        cipher = self._require_cipher()
        rotated = 0
        async with self._transaction() as db:
            for table, key_column, secret_column in SECRET_COLUMNS:
                # Table and column names come from SECRET_COLUMNS above, never from input.
                cursor = await db.execute(
                    f"SELECT {key_column}, {secret_column} FROM {table} "  # noqa: S608
                    f"WHERE {secret_column} IS NOT NULL AND {secret_column} != ''"
                )
                rows = await cursor.fetchall()
                await cursor.close()
                for key, stored in rows:
                    await db.execute(
                        f"UPDATE {table} SET {secret_column} = ? "  # noqa: S608
                        f"WHERE {key_column} = ?",
                        (cipher.reencrypt(stored), key),
                    )
                    rotated += 1
        return rotated

    async def close(self) -> None:
        if self._inbox_writer is not None:
            await self._inbox_writer.close()
        if self._checkpoint is not None and not self._checkpoint.done():
            self._checkpoint.cancel()
            await asyncio.gather(self._checkpoint, return_exceptions=True)
            await self.checkpoint()
        await self._db.close()

    async def checkpoint(self) -> None:
        try:
            # Not inside another task's transaction on this connection (SQLite refuses).
            async with self._write_lock, self._db.execute("PRAGMA wal_checkpoint(PASSIVE)"):
                pass
        except Exception:
            log.warning("WAL checkpoint failed; SQLite retries at the next one", exc_info=True)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._write_lock:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            else:
                await self._db.execute("COMMIT")

    async def _in_one_trip(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """`work` in one write transaction run whole in the connection's thread: BEGIN,
        every statement and COMMIT in a single trip. The write lock is then held only for
        as long as SQLite works, never across event-loop turns (while it is held the
        inbox writer's commit, which an ack waits for, cannot start), and there is one
        thread hop instead of one per statement."""
        async with self._write_lock:
            result: _T = await self._db._execute(  # type: ignore[no-untyped-call]
                _run_transaction, self._db._conn, work
            )
            return result

    async def _migrate(self) -> None:
        await self._db.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"
        )
        async with self._db.execute("SELECT MAX(version) FROM schema_version") as cursor:
            row = await cursor.fetchone()
        current = row[0] if row and row[0] is not None else 0
        for number, script in enumerate(MIGRATIONS, start=1):
            if number <= current:
                continue
            async with self._transaction() as db:
                for statement in _split_statements(script):
                    await db.execute(statement)
                await db.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))

    async def schema_version(self) -> int:
        async with self._db.execute("SELECT MAX(version) FROM schema_version") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row and row[0] is not None else 0


def _run_transaction(db: sqlite3.Connection, work: Callable[[sqlite3.Connection], _T]) -> _T:
    db.execute("BEGIN IMMEDIATE")
    try:
        result = work(db)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return result


def _compact_json(value: Any) -> str:
    return orjson.dumps(value).decode()


SEARCH_ROWID_BITS = 20
"""Each call owns the rowids `search_id << 20` to `(search_id + 1 << 20) - 1` of `find`'s
index (`SEARCH_TABLE`): its lines are found and replaced by rowid, the one thing FTS5
looks up without reading every row. The lower half holds its title, summaries and other
short lines, the upper half its transcript lines."""
SEARCH_TRANSCRIPT_BASE = 1 << (SEARCH_ROWID_BITS - 1)
"""Offset of the transcript's lines in a call's range (and how many rows fit in each half)."""

TRANSCRIPT_BLOCK = "transcript_block"
"""The kind of a row of `find`'s index holding up to `TRANSCRIPT_BLOCK_LINES` consecutive
transcript lines (SQLite only). One FTS5 row per line cost a digest more than anything
else it wrote (a 1,500-utterance call: 1,500 rows in the index's content, size and term
tables); a block of lines costs about the same as one line. The block's `text` is its
lines' texts joined by newlines, and its `speaker` column their JSON list of
`[position, offset_s, speaker, length of text]`, from which `search_calls` gives back
the very lines that matched (each checked alone against the words), as before. Rows of
kind "transcript" (one line each, written before blocks existed) are read as ever."""

TRANSCRIPT_BLOCK_LINES = 20
"""Transcript lines per row of `find`'s index (see `TRANSCRIPT_BLOCK`)."""


def _write_call(db: sqlite3.Connection, call: StoredCall) -> bool:
    """The call's row, its participants (with what `last` sorts by) and its transcript,
    in the caller's transaction (run in the connection's thread: `_in_one_trip`).

    True when the call's transcript is now the one `call` carries (it had one, and no
    later one was stored before)."""
    now = time.time()
    body, transcript = split_transcript(call.insights)
    if call.transcript is not None:
        transcript = call.transcript
        body[TRANSCRIPT_STORED_APART] = len(transcript) if isinstance(transcript, list) else 0
    db.execute(
        "INSERT INTO calls (call_key, domain, source_record_id, source_session_id, "
        "owner_extension_id, recording_start_time, insights, updated_at, account_id, "
        "ringsense_url, search_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
        "(SELECT COALESCE(MAX(search_id), 0) + 1 FROM calls)) "
        "ON CONFLICT (call_key) DO UPDATE SET "
        "source_session_id = excluded.source_session_id, "
        "owner_extension_id = excluded.owner_extension_id, "
        "recording_start_time = excluded.recording_start_time, "
        "insights = excluded.insights, updated_at = excluded.updated_at, "
        "account_id = excluded.account_id, ringsense_url = excluded.ringsense_url, "
        "search_id = COALESCE(calls.search_id, excluded.search_id)",
        (
            call.call_key,
            call.domain,
            call.source_record_id,
            call.source_session_id,
            call.owner_extension_id,
            call.recording_start_time,
            _compact_json(body),
            now,
            call.account_id,
            call.ringsense_url,
        ),
    )
    db.execute("DELETE FROM call_participants WHERE call_key = ?", (call.call_key,))
    db.executemany(
        "INSERT INTO call_participants (call_key, extension_id, account_id, "
        "recording_start_time, updated_at) VALUES (?, ?, ?, ?, ?)",
        [
            (call.call_key, extension_id, call.account_id, call.recording_start_time, now)
            for extension_id in sorted({call.owner_extension_id, *call.participant_ids})
        ],
    )
    if transcript is None:
        return False
    modified = call.transcript_modified
    if modified is None and isinstance(call.insights.get("lastModifiedTime"), str):
        modified = call.insights["lastModifiedTime"]
    cursor = db.execute(
        "INSERT INTO call_transcripts (call_key, account_id, utterances, modified, "
        "updated_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (call_key) DO UPDATE SET account_id = excluded.account_id, "
        "utterances = excluded.utterances, modified = excluded.modified, "
        "updated_at = excluded.updated_at "
        "WHERE excluded.modified IS NULL OR call_transcripts.modified IS NULL "
        "OR excluded.modified >= call_transcripts.modified",
        (call.call_key, call.account_id, _compact_json(transcript), modified, now),
    )
    return cursor.rowcount > 0


def _replace_search_lines(
    db: sqlite3.Connection,
    call_key: str,
    account_id: str,
    lines: Sequence[SearchLine],
    *,
    with_transcript: bool = True,
) -> None:
    """What `find` knows of a stored call becomes `lines`, found by the call's rowid range.

    Without `with_transcript`, the transcript lines already indexed stay (the transcript
    stored is not the one these lines came with) and only the other lines are replaced.
    One statement deletes, one inserts every line; a call not stored gets nothing."""
    row = db.execute(
        "SELECT search_id FROM calls WHERE call_key = ? AND search_id IS NOT NULL", (call_key,)
    ).fetchone()
    if row is None:
        return
    first = int(row[0]) << SEARCH_ROWID_BITS
    size = 1 << SEARCH_ROWID_BITS if with_transcript else SEARCH_TRANSCRIPT_BASE
    db.execute(
        f"DELETE FROM {SEARCH_TABLE} WHERE rowid BETWEEN ? AND ?",  # noqa: S608 - a constant
        (first, first + size - 1),
    )
    numbered: list[tuple[Any, ...]] = []
    count = 0  # rows placed in the lower half
    transcript: list[SearchLine] = []
    for line in lines:
        if line.kind == "transcript":
            if with_transcript:
                transcript.append(line)
            continue
        if count >= SEARCH_TRANSCRIPT_BASE:
            continue
        numbered.append(
            (
                first + count,
                line.text,
                account_id,
                call_key,
                line.kind,
                line.position,
                line.offset_s,
                line.speaker,
            )
        )
        count += 1
    blocks = range(0, len(transcript), TRANSCRIPT_BLOCK_LINES)
    for number, start in enumerate(blocks[:SEARCH_TRANSCRIPT_BASE]):
        block = transcript[start : start + TRANSCRIPT_BLOCK_LINES]
        numbered.append(
            (
                first + SEARCH_TRANSCRIPT_BASE + number,
                "\n".join(line.text for line in block),
                account_id,
                call_key,
                TRANSCRIPT_BLOCK,
                block[0].position,
                None,
                _compact_json(
                    [[line.position, line.offset_s, line.speaker, len(line.text)] for line in block]
                ),
            )
        )
    db.executemany(
        f"INSERT INTO {SEARCH_TABLE} (rowid, text, account_id, call_key, kind, "  # noqa: S608
        "position, offset_s, speaker) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        numbered,
    )


def _write_next_steps(
    db: sqlite3.Connection,
    call_key: str,
    account_id: str,
    steps: Sequence[tuple[str, str, str | None]],
) -> None:
    """A call's next steps `(assignee extension, text, owner name)` as items (see
    `save_next_steps`), in the caller's transaction."""
    now = time.time()
    texts = [text for _, text, _ in steps]
    db.execute(
        "DELETE FROM next_steps WHERE call_key = ? AND account_id = ? "
        "AND state = 'open' AND text NOT IN (SELECT value FROM json_each(?))",
        (call_key, account_id, _compact_json(texts)),
    )
    db.executemany(
        "INSERT INTO next_steps (account_id, call_key, position, "
        "assignee_extension_id, owner_name, text, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (call_key, text) DO UPDATE SET "
        "position = excluded.position, "
        "assignee_extension_id = excluded.assignee_extension_id, "
        "owner_name = excluded.owner_name "
        "WHERE next_steps.account_id = excluded.account_id",
        [
            (account_id, call_key, position, assignee, owner_name, text, now)
            for position, (assignee, text, owner_name) in enumerate(steps)
        ],
    )


def _excluding(ids: Sequence[int]) -> tuple[str, tuple[str, ...]]:
    """A condition leaving out these ids, however many: one JSON parameter."""
    if not ids:
        return "", ()
    return "AND id NOT IN (SELECT value FROM json_each(?))", (json.dumps(list(ids)),)


def _json_text(payload: Mapping[str, Any]) -> str:
    """Compact JSON of what the bot made itself. orjson, unless the value holds what it
    refuses (a lone surrogate read from an API, a key that is not a string)."""
    try:
        return orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(payload, separators=(",", ":"))


def _split_statements(script: str) -> list[str]:
    """Our migrations hold no `;` inside literals, so splitting on it is exact."""
    return [s.strip() for s in script.split(";") if s.strip()]


def _prepare_private_file(path: Path) -> None:
    """Create the database's folder (0700) and file (0600) before SQLite does, so they are
    never readable by others, not even for a moment."""
    folder = path.parent
    if not folder.exists():
        folder.mkdir(parents=True, mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)  # mkdir's mode is filtered by the umask; be exact
    elif folder.stat().st_mode & 0o007:
        log.warning(
            "the database folder %s is open to other users; consider `chmod 700` on it", folder
        )
    descriptor = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(descriptor)
    _tighten_files(path)


def _tighten_files(path: Path) -> None:
    """The database and its -wal/-shm/-journal files: owner read/write only. A file found
    with wider permissions (made by an older version, or copied in) is tightened and
    reported."""
    for candidate in (path, *(Path(f"{path}{suffix}") for suffix in ("-wal", "-shm", "-journal"))):
        try:
            mode = stat.S_IMODE(candidate.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            os.chmod(candidate, 0o600)
            log.warning("%s was readable by others (mode %o); now 0600", candidate, mode)


async def _optimise_search_index(db: aiosqlite.Connection) -> None:
    """Merge the FTS5 index so deleted lines leave no words in its segments (with
    `secure_delete` the freed pages are overwritten too)."""
    await db.execute("INSERT INTO call_search(call_search) VALUES ('optimize')")
