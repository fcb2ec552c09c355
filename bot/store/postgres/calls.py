"""PostgreSQL storage: calls, call_participants, call_transcripts, feedback,
seen_submits, next_steps, call_search, skipped_digests, rollup_days.

The same behaviour as the SQLite mixin (bot/store/calls.py), with what several replicas
add: where two replicas could do the same thing at once (a submit delivered to both,
Done pressed on two cards, two digests of one call), one statement decides.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from bot.ringsense import TRANSCRIPT_STORED_APART
from bot.settings import UserSettings
from bot.store.interface import SettingsStore
from bot.store.postgres.base import PgStoreBase
from bot.store.records import (
    TRANSCRIPT_KEY,
    NextStepItem,
    SearchHit,
    SearchLine,
    StoredCall,
    split_transcript,
)

TEXT_SEARCH_CONFIG = "bot_search"
"""The text search configuration of `call_search.terms` (see migrations.py): Snowball's
English stemmer without stop words, as SQLite's FTS5 uses Porter's, so `priced` finds
`pricing` and `the` is a word like any other; with `bot_search_fold`, accents folded."""

RANK_NORMALISATION = 1
"""`ts_rank`'s length normalisation (divide by 1 + log of the line's length): a word in a
short line (a title, a key point) ranks above the same word lost in a long monologue, as
FTS5's bm25 ranks them."""

MAX_SEARCH_PHRASES = 16
"""More than `find` ever sends (bot.search.MAX_WORDS): a bound on the query's size."""

_QUOTED = re.compile(r'"([^"]*)"')
_WORD = re.compile(r"\w+", re.UNICODE)


class PgCalls(PgStoreBase, SettingsStore):
    """The PostgreSQL side of `CallStore` (see bot/store/interface.py)."""

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
        async with self._transaction() as connection:
            await write_call(connection, call)

    async def call_with_account(self, call_key: str) -> tuple[str | None, Mapping[str, Any]] | None:
        """(account, insights without the transcript) of a call, whichever account it is
        of: for the one check that a record id is not stored for another account."""
        row = await self._pool.fetchrow(
            "SELECT account_id, insights FROM calls WHERE call_key = $1", call_key
        )
        return (row["account_id"], orjson.loads(row["insights"])) if row else None

    async def call_with_account_and_feedback(
        self, call_key: str
    ) -> tuple[tuple[str | None, Mapping[str, Any]] | None, dict[str, str]]:
        """`call_with_account` and `feedback_for` in one statement (one round trip): a
        digest needs both before it draws its cards."""
        row = await self._pool.fetchrow(
            "SELECT c.account_id, c.insights, "
            "(SELECT json_object_agg(extension_id, verdict)::text FROM feedback "
            "WHERE call_key = $1) AS verdicts "
            "FROM (SELECT 1) AS one LEFT JOIN calls AS c ON c.call_key = $1",
            call_key,
        )
        assert row is not None  # one row, whatever is stored
        insights, verdicts = row["insights"], row["verdicts"]
        call = (row["account_id"], orjson.loads(insights)) if insights is not None else None
        return call, dict(orjson.loads(verdicts)) if verdicts is not None else {}

    async def call_insights(self, call_key: str) -> Mapping[str, Any] | None:
        """A call's insights as the cards use them (the transcript is read apart)."""
        stored = await self._pool.fetchval(
            "SELECT insights FROM calls WHERE call_key = $1", call_key
        )
        return orjson.loads(stored) if stored is not None else None

    async def call_of_account(
        self, call_key: str, account_id: str, *, with_transcript: bool = False
    ) -> Mapping[str, Any] | None:
        """A stored call, only if it belongs to this account (else as if it did not exist).

        The transcript, stored apart, is put back into the insights only when asked for:
        a card needs it only for Show transcript."""
        stored = await self._pool.fetchval(
            "SELECT insights FROM calls WHERE call_key = $1 AND account_id = $2",
            call_key,
            account_id,
        )
        if stored is None:
            return None
        body: dict[str, Any] = orjson.loads(stored)
        if with_transcript and body.get(TRANSCRIPT_STORED_APART):
            utterances = await self._pool.fetchval(
                "SELECT utterances FROM call_transcripts WHERE call_key = $1 AND account_id = $2",
                call_key,
                account_id,
            )
            if utterances is not None:
                insights = body.get("insights")
                body["insights"] = {
                    **(insights if isinstance(insights, Mapping) else {}),
                    TRANSCRIPT_KEY: orjson.loads(utterances),
                }
        return body

    async def calls_of(
        self, account_id: str, extension_id: str, limit: int
    ) -> list[tuple[str, Mapping[str, Any]]]:
        """The calls of this account a person owned or took part in, newest first (a call
        without a start time last, as SQLite sorts them).

        One walk down `call_participants_newest_last` (the order of `last` as SQLite
        sorts NULLs, see migrations.py) that stops after `limit` rows, so it
        costs the same with ten calls stored or a million."""
        rows = await self._pool.fetch(
            "SELECT c.call_key, c.insights FROM call_participants p "
            "JOIN calls c ON c.call_key = p.call_key "
            "WHERE p.extension_id = $1 AND p.account_id = $2 AND c.account_id = $2 "
            "ORDER BY p.recording_start_time DESC NULLS LAST, p.updated_at DESC NULLS LAST "
            "LIMIT $3",
            extension_id,
            account_id,
            limit,
        )
        return [(r["call_key"], orjson.loads(r["insights"])) for r in rows]

    async def call_by_ringsense_url(
        self, url: str, account_id: str
    ) -> tuple[str, Mapping[str, Any]] | None:
        """The call of this account with that RingSense link (another account's: None)."""
        row = await self._pool.fetchrow(
            "SELECT call_key, insights FROM calls WHERE ringsense_url = $1 AND account_id = $2",
            url,
            account_id,
        )
        return (row["call_key"], orjson.loads(row["insights"])) if row else None

    async def save_feedback(self, call_key: str, extension_id: str, verdict: str) -> None:
        await self._pool.execute(
            "INSERT INTO feedback (call_key, extension_id, verdict, created_at, account_id) "
            "VALUES ($1, $2, $3, $4, (SELECT account_id FROM calls WHERE call_key = $1)) "
            "ON CONFLICT (call_key, extension_id) DO UPDATE SET "
            "verdict = excluded.verdict, created_at = excluded.created_at, "
            "account_id = excluded.account_id",
            call_key,
            extension_id,
            verdict,
            time.time(),
        )

    async def feedback_for(self, call_key: str) -> dict[str, str]:
        rows = await self._pool.fetch(
            "SELECT extension_id, verdict FROM feedback WHERE call_key = $1", call_key
        )
        return {r["extension_id"]: r["verdict"] for r in rows}

    async def first_time_seen(self, uuid: str, account_id: str | None = None) -> bool:
        """Record a card submit's uuid; False when it was seen before (a redelivery).

        The insert decides: of two replicas given the same submit, exactly one gets a row
        back."""
        inserted = await self._pool.fetchval(
            "INSERT INTO seen_submits (uuid, seen_at, account_id) VALUES ($1, $2, $3) "
            "ON CONFLICT (uuid) DO NOTHING RETURNING uuid",
            uuid,
            time.time(),
            account_id,
        )
        return inserted is not None

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
        async with self._transaction() as connection:
            await write_next_steps(connection, call_key, account_id, steps)

    async def open_next_steps(
        self, account_id: str, assignee_extension_id: str | None, limit: int
    ) -> tuple[list[NextStepItem], int]:
        """This account's open items (one person's, or with None everyone's), newest calls
        first, at most `limit`; and how many there are in all."""
        # $2 NULL stands for everyone: one fixed statement either way.
        where = (
            "n.account_id = $1 AND n.state = 'open' "
            "AND ($2::text IS NULL OR n.assignee_extension_id = $2)"
        )
        # One snapshot for the count and the items.
        async with (
            self._pool.acquire() as connection,
            connection.transaction(isolation="repeatable_read", readonly=True),
        ):
            total = await connection.fetchval(
                f"SELECT COUNT(*) FROM next_steps n WHERE {where}",  # noqa: S608 - fixed text
                account_id,
                assignee_extension_id,
            )
            rows = await connection.fetch(
                "SELECT n.*, c.insights AS call_insights, "  # noqa: S608 - fixed text only
                "c.recording_start_time AS call_start FROM next_steps n "
                "JOIN calls c ON c.call_key = n.call_key AND c.account_id = n.account_id "
                f"WHERE {where} "
                "ORDER BY c.recording_start_time DESC NULLS LAST, c.updated_at DESC, "
                "n.call_key, n.position LIMIT $3",
                account_id,
                assignee_extension_id,
                limit,
            )
        return [_next_step_item(r) for r in rows], int(total)

    async def next_step(self, item_id: int, account_id: str) -> NextStepItem | None:
        """One item, only if it belongs to this account (else as if it did not exist)."""
        row = await self._pool.fetchrow(
            "SELECT n.*, c.insights AS call_insights, "
            "c.recording_start_time AS call_start FROM next_steps n "
            "JOIN calls c ON c.call_key = n.call_key AND c.account_id = n.account_id "
            "WHERE n.item_id = $1 AND n.account_id = $2",
            item_id,
            account_id,
        )
        return _next_step_item(row) if row else None

    async def mark_next_step_done(self, item_id: int, account_id: str, done_by: str) -> bool:
        """Close an open item of this account; False when it was not open (or not theirs).

        One conditional update decides: of two people pressing Done at once (on two
        replicas), exactly one closes the item."""
        closed = await self._pool.fetchval(
            "UPDATE next_steps SET state = 'done', done_by = $1, done_at = $2 "
            "WHERE item_id = $3 AND account_id = $4 AND state = 'open' RETURNING item_id",
            done_by,
            time.time(),
            item_id,
            account_id,
        )
        return closed is not None

    async def index_call(self, call_key: str, account_id: str, lines: Sequence[SearchLine]) -> None:
        """Replace what `find` knows of a call with these lines."""
        async with self._transaction() as connection:
            await replace_search_lines(connection, call_key, account_id, lines)

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
        """Lines of this account's calls holding every word of `match`, best first.

        `match` is what `bot.search.match_expression` builds for FTS5 (quoted words); each
        word becomes a phrase of `TEXT_SEARCH_CONFIG` (stemmed, so `priced` finds
        `pricing`; accents folded, so `cafe` finds `café`) and every one must be in the
        line, small words too, as in FTS5.
        With `participant`, only calls that person owned or took part in; with `call_key`,
        one call; with `kinds`, only those kinds of line. `score` is lower for better hits,
        as SQLite's bm25."""
        words = search_words(match)
        if not words:
            return []
        params: list[Any] = [account_id]
        phrases = []
        for word in words:
            params.append(word)
            phrases.append(
                f"phraseto_tsquery('{TEXT_SEARCH_CONFIG}', bot_search_fold(${len(params)}))"
            )
        query = f"({' && '.join(phrases)})"
        conditions = ["s.account_id = $1", f"s.terms @@ {query}"]
        if participant is not None:
            params.append(participant)
            conditions.append(
                "EXISTS (SELECT 1 FROM call_participants p WHERE p.call_key = s.call_key "  # noqa: S608
                f"AND p.account_id = s.account_id AND p.extension_id = ${len(params)})"
            )
        if call_key is not None:
            params.append(call_key)
            conditions.append(f"s.call_key = ${len(params)}")
        if kinds:
            params.append(list(kinds))
            conditions.append(f"s.kind = ANY(${len(params)}::text[])")
        params.append(limit)
        # Only placeholders and the fixed texts above are interpolated.
        rows = await self._pool.fetch(
            "SELECT s.call_key, s.kind, s.position, s.offset_s, s.speaker, s.text, "  # noqa: S608
            f"-ts_rank(s.terms, {query}, {RANK_NORMALISATION}) AS score, "
            "c.recording_start_time FROM call_search s JOIN calls c "
            "ON c.call_key = s.call_key AND c.account_id = s.account_id "
            f"WHERE {' AND '.join(conditions)} "
            "ORDER BY score, c.recording_start_time DESC NULLS LAST, c.updated_at DESC, s.id "
            f"LIMIT ${len(params)}",
            *params,
        )
        return [
            SearchHit(
                call_key=str(r["call_key"]),
                line=SearchLine(
                    kind=str(r["kind"]),
                    position=int(r["position"]),
                    offset_s=float(r["offset_s"]) if r["offset_s"] is not None else None,
                    speaker=r["speaker"],
                    text=str(r["text"]),
                ),
                score=float(r["score"]),
                recording_start_time=r["recording_start_time"],
            )
            for r in rows
        ]

    async def rollup_candidates(self) -> list[UserSettings]:
        """Everyone who may get a daily rollup: opted in, of a known account, not off."""
        rows = await self._pool.fetch(
            "SELECT extension_id FROM user_settings WHERE opted_in = 1 "
            "AND account_id IS NOT NULL AND rollup_time <> 'off' ORDER BY extension_id"
        )
        return [await self.user_settings(str(r["extension_id"])) for r in rows]

    async def last_rollup_day(self, account_id: str, extension_id: str) -> str | None:
        """The last day (YYYY-MM-DD, the person's own calendar) whose rollup was handled."""
        day = await self._pool.fetchval(
            "SELECT day FROM rollup_days WHERE account_id = $1 AND extension_id = $2",
            account_id,
            extension_id,
        )
        return str(day) if day is not None else None

    async def set_last_rollup_day(self, account_id: str, extension_id: str, day: str) -> None:
        await self._pool.execute(
            "INSERT INTO rollup_days (account_id, extension_id, day, updated_at) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT (account_id, extension_id) DO UPDATE SET "
            "day = excluded.day, updated_at = excluded.updated_at",
            account_id,
            extension_id,
            day,
            time.time(),
        )

    async def note_skipped_digest(self, account_id: str, extension_id: str, call_key: str) -> None:
        await self._pool.execute(
            "INSERT INTO skipped_digests (account_id, extension_id, call_key, skipped_at) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            account_id,
            extension_id,
            call_key,
            time.time(),
        )

    async def take_skipped_digests(
        self, account_id: str, extension_id: str
    ) -> list[tuple[str, Mapping[str, Any]]]:
        """The calls whose digest this person missed while paused, newest first, and
        forget them (they are offered once: taken by one delete, so two replicas asked at
        once share them out and never offer one twice)."""
        rows = await self._pool.fetch(
            "WITH taken AS (DELETE FROM skipped_digests "
            "WHERE account_id = $1 AND extension_id = $2 "
            "RETURNING account_id, call_key, skipped_at) "
            "SELECT c.call_key, c.insights FROM taken s JOIN calls c "
            "ON c.call_key = s.call_key AND c.account_id = s.account_id "
            "ORDER BY c.recording_start_time DESC NULLS LAST, s.skipped_at DESC",
            account_id,
            extension_id,
        )
        return [(str(r["call_key"]), orjson.loads(r["insights"])) for r in rows]


def search_words(match: str) -> list[str]:
    """The phrases of an FTS5 expression made by `bot.search.match_expression` (each
    quoted word, which the text search parser may split as FTS5's tokenizer does, into a
    phrase); an unquoted text gives its words. Never syntax: each is a bound parameter."""
    quoted = [storable_text(p) for p in _QUOTED.findall(match) if _WORD.search(p)]
    return (quoted or _WORD.findall(match))[:MAX_SEARCH_PHRASES]


def storable_text(text: str) -> str:
    """PostgreSQL's text holds every character but NUL, which SQLite takes: a NUL in what
    RingSense sent (a transcript line, a next step) is dropped instead of failing the
    digest on every retry."""
    return text.replace("\x00", "")


async def write_call(connection: Any, call: StoredCall) -> bool:
    """The call's row, its participants (with what `last` sorts by) and its transcript,
    in the caller's transaction (SQLite's `_write_call`).

    The call's row is written first: two replicas writing one call at once queue on it,
    so the second replaces the first's participants instead of colliding with them.
    True when the call's transcript is now the one `call` carries (it had one, and no
    later one was stored before)."""
    now = time.time()
    body, transcript = split_transcript(call.insights)
    if call.transcript is not None:
        transcript = call.transcript
        body[TRANSCRIPT_STORED_APART] = len(transcript) if isinstance(transcript, list) else 0
    await connection.execute(
        "INSERT INTO calls (call_key, domain, source_record_id, source_session_id, "
        "owner_extension_id, recording_start_time, insights, updated_at, account_id, "
        "ringsense_url) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
        "ON CONFLICT (call_key) DO UPDATE SET "
        "source_session_id = excluded.source_session_id, "
        "owner_extension_id = excluded.owner_extension_id, "
        "recording_start_time = excluded.recording_start_time, "
        "insights = excluded.insights, updated_at = excluded.updated_at, "
        "account_id = excluded.account_id, ringsense_url = excluded.ringsense_url",
        call.call_key,
        call.domain,
        call.source_record_id,
        call.source_session_id,
        call.owner_extension_id,
        call.recording_start_time,
        orjson.dumps(body).decode(),
        now,
        call.account_id,
        call.ringsense_url,
    )
    await connection.execute("DELETE FROM call_participants WHERE call_key = $1", call.call_key)
    await connection.executemany(
        "INSERT INTO call_participants (call_key, extension_id, account_id, "
        "recording_start_time, updated_at) VALUES ($1, $2, $3, $4, $5)",
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
    # Times compare as SQLite compares them, byte by byte (not by the server's locale).
    kept = await connection.fetchval(
        "INSERT INTO call_transcripts (call_key, account_id, utterances, modified, "
        "updated_at) VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT (call_key) DO UPDATE SET account_id = excluded.account_id, "
        "utterances = excluded.utterances, modified = excluded.modified, "
        "updated_at = excluded.updated_at "
        "WHERE excluded.modified IS NULL OR call_transcripts.modified IS NULL "
        'OR excluded.modified COLLATE "C" >= call_transcripts.modified COLLATE "C" '
        "RETURNING call_key",
        call.call_key,
        call.account_id,
        orjson.dumps(transcript).decode(),
        modified,
        now,
    )
    return kept is not None


async def write_next_steps(
    connection: Any,
    call_key: str,
    account_id: str,
    steps: Sequence[tuple[str, str, str | None]],
) -> None:
    """A call's next steps `(assignee extension, text, owner name)` as items (see
    `PgCalls.save_next_steps`), in the caller's transaction."""
    now = time.time()
    steps = [
        (assignee, storable_text(text), storable_text(owner) if owner is not None else None)
        for assignee, text, owner in steps
    ]
    await connection.execute(
        "DELETE FROM next_steps WHERE call_key = $1 AND account_id = $2 "
        "AND state = 'open' AND NOT (text = ANY($3::text[]))",
        call_key,
        account_id,
        [text for _, text, _ in steps],
    )
    await connection.executemany(
        "INSERT INTO next_steps (account_id, call_key, position, "
        "assignee_extension_id, owner_name, text, created_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (call_key, text) DO UPDATE SET "
        "position = excluded.position, "
        "assignee_extension_id = excluded.assignee_extension_id, "
        "owner_name = excluded.owner_name "
        "WHERE next_steps.account_id = excluded.account_id",
        [
            (account_id, call_key, position, assignee, owner_name, text, now)
            for position, (assignee, text, owner_name) in enumerate(steps)
        ],
    )


async def replace_search_lines(
    connection: Any,
    call_key: str,
    account_id: str,
    lines: Sequence[SearchLine],
    *,
    with_transcript: bool = True,
) -> None:
    """What `find` knows of a stored call of this account becomes `lines`, in the
    caller's transaction (lines of a call not stored, which no search could show, are
    not kept: nothing would ever prune them).

    Without `with_transcript`, the transcript lines already indexed stay (the transcript
    stored is not the one these lines came with) and only the other lines are replaced."""
    if with_transcript:
        await connection.execute("DELETE FROM call_search WHERE call_key = $1", call_key)
    else:
        await connection.execute(
            "DELETE FROM call_search WHERE call_key = $1 AND kind IS DISTINCT FROM 'transcript'",
            call_key,
        )
    kept = [line for line in lines if with_transcript or line.kind != "transcript"]
    if not kept:
        return
    await connection.execute(
        "INSERT INTO call_search (text, account_id, call_key, kind, position, offset_s, "
        "speaker) SELECT t.text, $1, $2, t.kind, t.position, t.offset_s, t.speaker "
        "FROM unnest($3::text[], $4::text[], $5::integer[], $6::double precision[], "
        "$7::text[]) AS t (text, kind, position, offset_s, speaker) "
        "WHERE EXISTS (SELECT 1 FROM calls c WHERE c.call_key = $2 AND c.account_id = $1)",
        account_id,
        call_key,
        [storable_text(line.text) for line in kept],
        [line.kind for line in kept],
        [line.position for line in kept],
        [line.offset_s for line in kept],
        [storable_text(line.speaker) if line.speaker is not None else None for line in kept],
    )


def _next_step_item(row: Any) -> NextStepItem:
    """An item from a row of `next_steps` with its call's insights and start; the title is
    read in Python (as SQLite's json_extract: only a string counts)."""
    try:
        call: Any = orjson.loads(row["call_insights"])
    except orjson.JSONDecodeError:
        call = None
    title = call.get("title") if isinstance(call, dict) else None
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
