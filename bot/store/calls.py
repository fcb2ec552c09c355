"""SQLite storage of calls and what came of them: `calls`, `call_participants`, `feedback`,
`seen_submits`, and (when present) next steps, search, skipped digests, rollups.
"""

from __future__ import annotations

import bisect
import json
import re
import sqlite3
import time
from collections.abc import Mapping, Sequence
from typing import Any

import aiosqlite
import orjson

from bot.ringsense import TRANSCRIPT_STORED_APART
from bot.settings import UserSettings
from bot.store.base import (
    TRANSCRIPT_BLOCK,
    StoreBase,
    _replace_search_lines,
    _write_call,
    _write_next_steps,
)
from bot.store.interface import SettingsStore
from bot.store.records import (
    SEARCH_TABLE,
    TRANSCRIPT_KEY,
    NextStepItem,
    SearchHit,
    SearchLine,
    StoredCall,
)


class SqliteCalls(StoreBase, SettingsStore):
    """The SQLite side of `CallStore` (see bot/store/interface.py)."""

    async def save_call(
        self,
        call_key: str,
        *,
        domain: str,
        source_record_id: str,
        source_session_id: str | None,
        owner_extension_id: str,
        recording_start_time: str | None,
        insights: Mapping[str, Any],
        participant_ids: Sequence[str] = (),
        account_id: str | None = None,
        ringsense_url: str | None = None,
    ) -> None:
        """Store a call (its transcript apart, see `StoredCall`) in one transaction."""
        call = StoredCall(
            call_key,
            domain=domain,
            source_record_id=source_record_id,
            source_session_id=source_session_id,
            owner_extension_id=owner_extension_id,
            recording_start_time=recording_start_time,
            insights=insights,
            participant_ids=tuple(participant_ids),
            account_id=account_id,
            ringsense_url=ringsense_url,
        )
        await self._in_one_trip(lambda db: _write_call(db, call))

    async def call_with_account(self, call_key: str) -> tuple[str | None, Mapping[str, Any]] | None:
        """(account, insights without the transcript) of a call, whichever account it is
        of: for the one check that a record id is not stored for another account."""
        async with self._db.execute(
            "SELECT account_id, insights FROM calls WHERE call_key = ?", (call_key,)
        ) as cursor:
            row = await cursor.fetchone()
        return (row[0], orjson.loads(row[1])) if row else None

    async def call_with_account_and_feedback(
        self, call_key: str
    ) -> tuple[tuple[str | None, Mapping[str, Any]] | None, dict[str, str]]:
        """`call_with_account` and `feedback_for` in one statement: a digest needs both
        before it draws its cards, and each trip to the database thread costs the event
        loop more than the two small reads."""
        async with self._db.execute(
            "SELECT c.account_id, c.insights, "
            "(SELECT json_group_object(extension_id, verdict) FROM feedback "
            "WHERE call_key = ?) "
            "FROM (SELECT 1) LEFT JOIN calls AS c ON c.call_key = ?",
            (call_key, call_key),
        ) as cursor:
            row = await cursor.fetchone()
        assert row is not None  # one row, whatever is stored
        account_id, insights, verdicts = tuple(row)
        call = (account_id, orjson.loads(insights)) if insights is not None else None
        return call, dict(orjson.loads(verdicts)) if verdicts is not None else {}

    async def call_insights(self, call_key: str) -> Mapping[str, Any] | None:
        """A call's insights as the cards use them (the transcript is read apart)."""
        async with self._db.execute(
            "SELECT insights FROM calls WHERE call_key = ?", (call_key,)
        ) as cursor:
            row = await cursor.fetchone()
        return orjson.loads(row[0]) if row else None

    async def call_of_account(
        self, call_key: str, account_id: str, *, with_transcript: bool = False
    ) -> Mapping[str, Any] | None:
        """A stored call, only if it belongs to this account (else as if it did not exist).

        The transcript, stored apart, is put back into the insights only when asked for:
        a card needs it only for Show transcript."""
        async with self._db.execute(
            "SELECT insights FROM calls WHERE call_key = ? AND account_id = ?",
            (call_key, account_id),
        ) as cursor:
            row = await cursor.fetchone()
        if row is None:
            return None
        body: dict[str, Any] = orjson.loads(row[0])
        if with_transcript and body.get(TRANSCRIPT_STORED_APART):
            async with self._db.execute(
                "SELECT utterances FROM call_transcripts WHERE call_key = ? AND account_id = ?",
                (call_key, account_id),
            ) as cursor:
                found = await cursor.fetchone()
            if found is not None:
                insights = body.get("insights")
                body["insights"] = {
                    **(insights if isinstance(insights, Mapping) else {}),
                    TRANSCRIPT_KEY: orjson.loads(found[0]),
                }
        return body

    async def calls_of(
        self, account_id: str, extension_id: str, limit: int
    ) -> list[tuple[str, Mapping[str, Any]]]:
        """The calls of this account a person owned or took part in, newest first.

        One walk down `call_participants_newest` that stops after `limit` rows, so it
        costs the same with ten calls stored or a million."""
        async with self._db.execute(
            "SELECT c.call_key, c.insights FROM call_participants p "
            "JOIN calls c ON c.call_key = p.call_key "
            "WHERE p.extension_id = ? AND p.account_id = ? AND c.account_id = ? "
            "ORDER BY p.recording_start_time DESC, p.updated_at DESC LIMIT ?",
            (extension_id, account_id, account_id, limit),
        ) as cursor:
            rows = await cursor.fetchall()
        return [(r["call_key"], orjson.loads(r["insights"])) for r in rows]

    async def call_by_ringsense_url(
        self, url: str, account_id: str
    ) -> tuple[str, Mapping[str, Any]] | None:
        """The call of this account with that RingSense link (another account's: None)."""
        async with self._db.execute(
            "SELECT call_key, insights FROM calls WHERE ringsense_url = ? AND account_id = ?",
            (url, account_id),
        ) as cursor:
            row = await cursor.fetchone()
        return (row["call_key"], orjson.loads(row["insights"])) if row else None

    async def save_feedback(self, call_key: str, extension_id: str, verdict: str) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO feedback (call_key, extension_id, verdict, created_at, account_id) "
                "VALUES (?, ?, ?, ?, (SELECT account_id FROM calls WHERE call_key = ?)) "
                "ON CONFLICT (call_key, extension_id) DO UPDATE SET "
                "verdict = excluded.verdict, created_at = excluded.created_at, "
                "account_id = excluded.account_id",
                (call_key, extension_id, verdict, time.time(), call_key),
            )

    async def feedback_for(self, call_key: str) -> dict[str, str]:
        async with self._db.execute(
            "SELECT extension_id, verdict FROM feedback WHERE call_key = ?", (call_key,)
        ) as cursor:
            return {r["extension_id"]: r["verdict"] for r in await cursor.fetchall()}

    async def first_time_seen(self, uuid: str, account_id: str | None = None) -> bool:
        """Record a card submit's uuid; False when it was seen before (a redelivery)."""
        async with self._transaction() as db:
            cursor = await db.execute(
                "INSERT OR IGNORE INTO seen_submits (uuid, seen_at, account_id) VALUES (?, ?, ?)",
                (uuid, time.time(), account_id),
            )
            return cursor.rowcount == 1

    async def save_next_steps(
        self,
        call_key: str,
        account_id: str,
        steps: Sequence[tuple[str, str, str | None]],
    ) -> None:
        """Store a call's next steps `(assignee extension, text, owner name)` as items.

        A step already stored (same call, same text) keeps its state, so a later event for
        the call never reopens what someone marked done; an open step the newer insights no
        longer list goes; a done one stays (it was done)."""
        await self._in_one_trip(lambda db: _write_next_steps(db, call_key, account_id, steps))

    async def open_next_steps(
        self, account_id: str, assignee_extension_id: str | None, limit: int
    ) -> tuple[list[NextStepItem], int]:
        """This account's open items (one person's, or with None everyone's), newest calls
        first, at most `limit`; and how many there are in all."""
        where = "n.account_id = ? AND n.state = 'open'"
        params: tuple[Any, ...] = (account_id,)
        if assignee_extension_id is not None:
            where += " AND n.assignee_extension_id = ?"
            params += (assignee_extension_id,)
        async with self._db.execute(
            f"SELECT COUNT(*) FROM next_steps n WHERE {where}",  # noqa: S608 - fixed text
            params,
        ) as cursor:
            row = await cursor.fetchone()
        total = int(row[0]) if row else 0
        async with self._db.execute(
            "SELECT n.*, json_extract(c.insights, '$.title') AS call_title, "  # noqa: S608
            "c.recording_start_time AS call_start FROM next_steps n "
            "JOIN calls c ON c.call_key = n.call_key AND c.account_id = n.account_id "
            f"WHERE {where} "  # fixed text only
            "ORDER BY c.recording_start_time DESC, c.updated_at DESC, n.call_key, n.position "
            "LIMIT ?",
            (*params, limit),
        ) as cursor:
            rows = await cursor.fetchall()
        return [_next_step_item(r) for r in rows], total

    async def next_step(self, item_id: int, account_id: str) -> NextStepItem | None:
        """One item, only if it belongs to this account (else as if it did not exist)."""
        async with self._db.execute(
            "SELECT n.*, json_extract(c.insights, '$.title') AS call_title, "
            "c.recording_start_time AS call_start FROM next_steps n "
            "JOIN calls c ON c.call_key = n.call_key AND c.account_id = n.account_id "
            "WHERE n.item_id = ? AND n.account_id = ?",
            (item_id, account_id),
        ) as cursor:
            row = await cursor.fetchone()
        return _next_step_item(row) if row else None

    async def mark_next_step_done(self, item_id: int, account_id: str, done_by: str) -> bool:
        """Close an open item of this account; False when it was not open (or not theirs)."""
        async with self._transaction() as db:
            cursor = await db.execute(
                "UPDATE next_steps SET state = 'done', done_by = ?, done_at = ? "
                "WHERE item_id = ? AND account_id = ? AND state = 'open'",
                (done_by, time.time(), item_id, account_id),
            )
            return cursor.rowcount > 0

    async def index_call(self, call_key: str, account_id: str, lines: Sequence[SearchLine]) -> None:
        """Replace what `find` knows of a stored call with these lines (a digest does it
        in its own transaction: `record_digest`)."""
        await self._in_one_trip(lambda db: _replace_search_lines(db, call_key, account_id, lines))

    async def search_calls(
        self,
        account_id: str,
        match: str,
        *,
        participant: str | None,
        call_key: str | None = None,
        kinds: Sequence[str] | None = None,
        limit: int = 500,
    ) -> list[SearchHit]:
        """Lines of this account's calls matching an FTS5 `match` expression, best first.

        With `participant`, only calls that person owned or took part in; with `call_key`,
        one call; with `kinds`, only those kinds of line. The caller builds `match` from
        quoted words only (`bot.search.match_expression`)."""
        conditions = [f"{SEARCH_TABLE} MATCH ?", "s.account_id = ?"]
        params: list[Any] = [match, account_id]
        if participant is not None:
            conditions.append(
                "EXISTS (SELECT 1 FROM call_participants p WHERE p.call_key = s.call_key "
                "AND p.account_id = s.account_id AND p.extension_id = ?)"
            )
            params.append(participant)
        if call_key is not None:
            conditions.append("s.call_key = ?")
            params.append(call_key)
        if kinds:
            # A transcript's lines are stored in blocks (`TRANSCRIPT_BLOCK`).
            stored_kinds = [*kinds, *([TRANSCRIPT_BLOCK] if "transcript" in kinds else [])]
            conditions.append(f"s.kind IN ({', '.join('?' for _ in stored_kinds)})")
            params.extend(stored_kinds)
        query = (
            "SELECT s.call_key, s.kind, s.position, s.offset_s, s.speaker, s.text, "  # noqa: S608
            f"bm25({SEARCH_TABLE}) AS score, c.recording_start_time, "
            # Where the words are in a transcript block (see `_marked_lines`).
            f"CASE WHEN s.kind = '{TRANSCRIPT_BLOCK}' THEN "
            f"highlight({SEARCH_TABLE}, 0, char(2), char(3)) END AS marked "
            f"FROM {SEARCH_TABLE} s JOIN calls c "
            "ON c.call_key = s.call_key AND c.account_id = s.account_id "
            f"WHERE {' AND '.join(conditions)} "
            "ORDER BY score, c.recording_start_time DESC, c.updated_at DESC LIMIT ?"
        )
        # In one trip to the connection's thread: the query, then the lines of the blocks
        # it found checked one by one (see `_hits`).
        hits: list[SearchHit] = await self._db._execute(  # type: ignore[no-untyped-call]
            _hits, self._db._conn, query, (*params, limit), match, limit
        )
        return hits

    async def rollup_candidates(self) -> list[UserSettings]:
        """Everyone who may get a daily rollup: opted in, of a known account, not off."""
        async with self._db.execute(
            "SELECT extension_id FROM user_settings WHERE opted_in = 1 "
            "AND account_id IS NOT NULL AND rollup_time != 'off' ORDER BY extension_id"
        ) as cursor:
            people = [str(r[0]) for r in await cursor.fetchall()]
        return [await self.user_settings(person) for person in people]

    async def last_rollup_day(self, account_id: str, extension_id: str) -> str | None:
        """The last day (YYYY-MM-DD, the person's own calendar) whose rollup was handled."""
        async with self._db.execute(
            "SELECT day FROM rollup_days WHERE account_id = ? AND extension_id = ?",
            (account_id, extension_id),
        ) as cursor:
            row = await cursor.fetchone()
        return str(row[0]) if row else None

    async def set_last_rollup_day(self, account_id: str, extension_id: str, day: str) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO rollup_days (account_id, extension_id, day, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (account_id, extension_id) DO UPDATE SET "
                "day = excluded.day, updated_at = excluded.updated_at",
                (account_id, extension_id, day, time.time()),
            )

    async def note_skipped_digest(self, account_id: str, extension_id: str, call_key: str) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT OR IGNORE INTO skipped_digests (account_id, extension_id, call_key, "
                "skipped_at) VALUES (?, ?, ?, ?)",
                (account_id, extension_id, call_key, time.time()),
            )

    async def take_skipped_digests(
        self, account_id: str, extension_id: str
    ) -> list[tuple[str, Mapping[str, Any]]]:
        """The calls whose digest this person missed while paused, newest first, and
        forget them (they are offered once)."""
        async with self._transaction() as db:
            async with db.execute(
                "SELECT c.call_key, c.insights FROM skipped_digests s JOIN calls c "
                "ON c.call_key = s.call_key AND c.account_id = s.account_id "
                "WHERE s.account_id = ? AND s.extension_id = ? "
                "ORDER BY c.recording_start_time DESC, s.skipped_at DESC",
                (account_id, extension_id),
            ) as cursor:
                rows = await cursor.fetchall()
            await db.execute(
                "DELETE FROM skipped_digests WHERE account_id = ? AND extension_id = ?",
                (account_id, extension_id),
            )
        return [(str(r["call_key"]), json.loads(r["insights"])) for r in rows]


def _next_step_item(row: aiosqlite.Row) -> NextStepItem:
    title = row["call_title"]
    return NextStepItem(
        item_id=int(row["item_id"]),
        account_id=str(row["account_id"]),
        call_key=str(row["call_key"]),
        assignee_extension_id=str(row["assignee_extension_id"]),
        owner_name=row["owner_name"],
        text=str(row["text"]),
        state=str(row["state"]),
        call_title=title if isinstance(title, str) else "",
        call_start=row["call_start"],
    )


SEARCH_TOKENIZER = "porter unicode61 remove_diacritics 2"
"""The tokenizer of `find`'s index (`SEARCH_TABLE`, bot/store/migrations.py)."""

LINE_CHECK_TABLE = "temp.find_lines"
"""A private, in-memory FTS5 table of this connection with the tokenizer of `find`'s index,
in which the lines of the transcript blocks a search found are checked one by one."""

LINE_CHECK_BATCH = 32
"""Blocks whose lines are checked at a time, until a search has the lines it asked for."""


def _hits(
    db: sqlite3.Connection, query: str, params: Sequence[Any], match: str, limit: int
) -> list[SearchHit]:
    """The rows `query` found, best first, as hits of one line each: a transcript block
    (`TRANSCRIPT_BLOCK`) matched when its lines hold every word between them, so each of
    its lines is matched alone, with the same FTS5 expression and tokenizer, and those
    that hold every word are its hits, in their order, with the block's score. At most
    `limit` hits; the rows are read whole before any line is checked (run in the
    connection's thread: no snapshot stays open)."""
    rows = db.execute(query, params).fetchall()
    hits: list[SearchHit] = []
    for start in range(0, len(rows), LINE_CHECK_BATCH):
        batch = rows[start : start + LINE_CHECK_BATCH]
        matching = _lines_matching(db, match, [r for r in batch if r[1] == TRANSCRIPT_BLOCK])
        for row in batch:
            key, kind, position, offset_s, speaker, text, score, started, _ = row
            if kind == TRANSCRIPT_BLOCK:
                lines = matching.get(id(row), [])
            else:
                offset = float(offset_s) if offset_s is not None else None
                lines = [SearchLine(str(kind), int(position), offset, speaker, str(text))]
            hits.extend(
                SearchHit(
                    call_key=str(key), line=line, score=float(score), recording_start_time=started
                )
                for line in lines
            )
        if len(hits) >= limit:
            break
    return hits[:limit]


def _block_lines(row: Sequence[Any]) -> list[SearchLine]:
    """The lines a transcript block holds (see `TRANSCRIPT_BLOCK`)."""
    text = str(row[5])
    lines: list[SearchLine] = []
    at = 0
    for position, offset_s, speaker, length in orjson.loads(row[4]):
        lines.append(
            SearchLine(
                "transcript",
                int(position),
                float(offset_s) if offset_s is not None else None,
                speaker,
                text[at : at + length],
            )
        )
        at += length + 1  # the newline between two lines
    return lines


MARK_OPEN, MARK_CLOSE = "\x02", "\x03"
"""What `highlight()` puts around each place in a block where the words matched."""

ONE_WORD = re.compile(r'^"[^\W_]+"$')
"""A query of one word that FTS5 reads as one token: a line holds it exactly when
`highlight()` marks a place in that line."""


def _marked_lines(block: Sequence[Any], lines: list[SearchLine]) -> list[SearchLine] | None:
    """The lines of a block in which `highlight()` marked a place where a word of the query
    matched; None when the marks cannot be placed with certainty (the text holds a marker
    character itself, or what was marked is not the text with marks added, as with a NUL
    character in it)."""
    text, marked = str(block[5]), block[8]
    if (
        not isinstance(marked, str)
        or MARK_OPEN in text
        or MARK_CLOSE in text
        or marked.replace(MARK_OPEN, "").replace(MARK_CLOSE, "") != text
    ):
        return None
    starts: list[int] = []  # where each line starts in the block's text
    at = 0
    for line in lines:
        starts.append(at)
        at += len(line.text) + 1
    chosen: dict[int, SearchLine] = {}
    found = marked.find(MARK_OPEN)
    opened = 0
    while found >= 0:
        # The place in the text: minus the markers before it (an open and a close each).
        index = bisect.bisect_right(starts, found - 2 * opened) - 1
        chosen.setdefault(index, lines[index])
        opened += 1
        found = marked.find(MARK_OPEN, found + 1)
    return [chosen[n] for n in sorted(chosen)]


def _lines_matching(
    db: sqlite3.Connection, match: str, blocks: Sequence[Sequence[Any]]
) -> dict[int, list[SearchLine]]:
    """Per block row (by `id`), its lines that match `match` on their own. Only the lines
    where `highlight()` marked a word can; of a one-word query those are the answer, else
    they are matched alone in `LINE_CHECK_TABLE`."""
    if not blocks:
        return {}
    one_word = ONE_WORD.match(match) is not None
    matching: dict[int, list[SearchLine]] = {}
    numbered: list[tuple[int, SearchLine]] = []  # lines still to be matched alone
    for block in blocks:
        lines = _block_lines(block)
        marked = _marked_lines(block, lines)
        if marked is not None and one_word:
            matching[id(block)] = marked
        else:
            numbered.extend((id(block), line) for line in (lines if marked is None else marked))
    if not numbered:
        return matching
    db.execute(
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {LINE_CHECK_TABLE} USING fts5("
        f"text, tokenize = '{SEARCH_TOKENIZER}')"
    )
    try:
        db.executemany(
            f"INSERT INTO {LINE_CHECK_TABLE} (rowid, text) VALUES (?, ?)",  # noqa: S608
            [(n, line.text) for n, (_, line) in enumerate(numbered)],
        )
        found = db.execute(
            f"SELECT rowid FROM {LINE_CHECK_TABLE} WHERE find_lines MATCH ? "  # noqa: S608
            "ORDER BY rowid",
            (match,),
        ).fetchall()
    finally:
        db.execute(f"DELETE FROM {LINE_CHECK_TABLE}")  # noqa: S608 - a constant
    for (n,) in found:
        block_id, line = numbered[int(n)]
        matching.setdefault(block_id, []).append(line)
    return matching
