"""SQLite storage of work across every table: retention (`prune`) and the levels the metrics
read.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from bot.store.base import SEARCH_ROWID_BITS, StoreBase, _compact_json, _optimise_search_index
from bot.store.records import DAY_S, PRUNE_BATCH, SEARCH_TABLE, OperationalLevels


class SqliteUpkeep(StoreBase):
    """The SQLite side of `UpkeepStore` (see bot/store/interface.py)."""

    async def operational_levels(self, now: float) -> OperationalLevels:
        """Queue depths and ages, and job states, for the metrics (no content is read)."""
        queues: dict[str, tuple[int, float | None]] = {}
        for queue, since in (("inbox", "received_at"), ("outbox", "created_at")):
            # Table and column names come from the fixed pairs above, never from input.
            async with self._db.execute(
                f"SELECT COUNT(*), MIN({since}) FROM {queue} WHERE status = 'pending'"  # noqa: S608
            ) as cursor:
                row = await cursor.fetchone()
            count = int(row[0]) if row else 0
            queues[queue] = (count, float(row[1]) if row and row[1] is not None else None)
        states: dict[str, dict[str, int]] = {}
        for table in ("ai_jobs", "ringcx_segments"):
            async with self._db.execute(
                f"SELECT state, COUNT(*) FROM {table} GROUP BY state"  # noqa: S608
            ) as cursor:
                states[table] = {str(r[0]): int(r[1]) for r in await cursor.fetchall()}
        return OperationalLevels(queues, states["ai_jobs"], states["ringcx_segments"])

    async def queue_depths(self, cap: int) -> dict[str, dict[str, int]]:
        """For `/status`: the inbox's and the outbox's pending and failed rows, each counted
        up to `cap` (a figure of `cap` means at least that many). Every count walks its
        index over those rows only and stops at `cap`: what was handled or sent (the
        history) is never read."""
        depths: dict[str, dict[str, int]] = {}
        for queue in ("inbox", "outbox"):
            depths[queue] = {}
            for status in ("pending", "failed"):
                # The table name comes from the fixed pair above, never from input.
                async with self._db.execute(
                    f"SELECT COUNT(*) FROM (SELECT 1 FROM {queue} "  # noqa: S608
                    "WHERE status = ? LIMIT ?)",
                    (status, cap),
                ) as cursor:
                    row = await cursor.fetchone()
                depths[queue][status] = int(row[0]) if row else 0
        return depths

    async def prune(
        self,
        *,
        now: float,
        messages_days: int,
        calls_days: int,
        dedupe_days: float,
    ) -> dict[str, int]:
        """Delete people's words once they are older than the retention allows.

        - Finished inbox rows (notification payloads: chat messages, insights) and finished
          outbox rows (cards) lose their content after `messages_days`. The bare row (the
          notification `uuid`, the delivery's dedupe key, no words) is kept until
          `dedupe_days` has also passed, because that key is what makes a notification
          RingCentral redelivers, or one catch-up finds again, a no-op; only then is the
          row deleted. Pending work is never pruned. A failed delivery past retention is
          deleted (`resend` could no longer send its content).
        - Calls whose insights last changed more than `calls_days` ago go, with their
          participants, transcript, feedback and the ids of their posted cards. A call
          updated within retention keeps its card id, so a later event still updates that
          card in place.
          Finished AI analyses follow the same rule.
        Returns rows changed or deleted per table.
        """
        messages_cutoff = now - messages_days * DAY_S
        keys_cutoff = now - max(messages_days, dedupe_days) * DAY_S
        calls_cutoff = now - calls_days * DAY_S
        changed: dict[str, int] = {}

        def note(table: str, count: int) -> None:
            if count > 0:
                changed[table] = changed.get(table, 0) + count

        # Each statement picks at most PRUNE_BATCH rows through an index (never a scan of
        # the table) and each batch is its own short transaction, so a round that has a
        # million rows to prune never holds the database for long: webhooks, digests and
        # start-up go on in between.
        batched: tuple[tuple[str, str, tuple[Any, ...]], ...] = (
            (
                "inbox",
                "UPDATE inbox SET payload = '{}', last_error = NULL WHERE id IN "
                "(SELECT id FROM inbox INDEXED BY inbox_words_kept "
                "WHERE status != 'pending' AND payload != '{}' "
                "AND received_at < ? LIMIT ?)",
                (messages_cutoff,),
            ),
            (
                "inbox",
                "DELETE FROM inbox WHERE id IN (SELECT id FROM inbox "
                "WHERE status != 'pending' AND received_at < ? LIMIT ?)",
                (keys_cutoff,),
            ),
            (
                "outbox",
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox "
                "WHERE status = 'failed' AND created_at < ? LIMIT ?)",
                (messages_cutoff,),
            ),
            (
                "outbox",
                "UPDATE outbox SET message = '{}', last_error = NULL WHERE id IN "
                "(SELECT id FROM outbox INDEXED BY outbox_words_kept "
                "WHERE status = 'sent' AND message != '{}' "
                "AND created_at < ? LIMIT ?)",
                (messages_cutoff,),
            ),
            (
                "outbox",
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox "
                "WHERE status = 'sent' AND created_at < ? LIMIT ?)",
                (keys_cutoff,),
            ),
            (
                "seen_submits",
                "DELETE FROM seen_submits WHERE uuid IN "
                "(SELECT uuid FROM seen_submits WHERE seen_at < ? LIMIT ?)",
                (keys_cutoff,),
            ),
        )
        for table, sql, params in batched:
            while True:
                async with self._transaction() as db:
                    cursor = await db.execute(sql, (*params, PRUNE_BATCH))
                    count = cursor.rowcount
                note(table, count)
                if count < PRUNE_BATCH:
                    break
                await asyncio.sleep(0)
        while True:
            async with self._transaction() as db:
                async with db.execute(
                    "SELECT call_key, search_id FROM calls WHERE updated_at < ? LIMIT ?",
                    (calls_cutoff, PRUNE_BATCH),
                ) as cursor:
                    rows = await cursor.fetchall()
                keys = [str(r[0]) for r in rows]
                chosen = _compact_json(keys)
                # `find`'s lines by each call's rowid range: FTS5 would read every
                # indexed line of every call to find them by call key.
                cursor = await db.executemany(
                    f"DELETE FROM {SEARCH_TABLE} WHERE rowid BETWEEN ? AND ?",  # noqa: S608
                    [
                        (int(r[1]) << SEARCH_ROWID_BITS, (int(r[1]) + 1 << SEARCH_ROWID_BITS) - 1)
                        for r in rows
                        if r[1] is not None
                    ],
                )
                note(SEARCH_TABLE, cursor.rowcount)
                for table, column in (
                    ("feedback", "call_key"),
                    ("call_participants", "call_key"),
                    ("posted_cards", "card_key"),
                    ("call_transcripts", "call_key"),
                    ("next_steps", "call_key"),
                    ("skipped_digests", "call_key"),
                    ("calls", "call_key"),
                ):
                    # Table and column names come from the fixed pairs above.
                    cursor = await db.execute(
                        f"DELETE FROM {table} WHERE {column} IN "  # noqa: S608
                        "(SELECT value FROM json_each(?))",
                        (chosen,),
                    )
                    note(table, cursor.rowcount)
            if len(keys) < PRUNE_BATCH:
                break
            await asyncio.sleep(0)
        # Small tables (a row per analysis, segment or day), pruned in one go.
        rest: tuple[tuple[str, str, tuple[Any, ...]], ...] = (
            (
                "ringcx_segments",
                "DELETE FROM ringcx_segments WHERE state != 'pending' AND found_at < ?",
                (messages_cutoff,),
            ),
            (
                "posted_cards",
                "DELETE FROM posted_cards WHERE card_key IN (SELECT 'ai:' || job_id FROM ai_jobs "
                "WHERE state != 'pending' AND requested_at < ?)",
                (calls_cutoff,),
            ),
            (
                "ai_jobs",
                "DELETE FROM ai_jobs WHERE state != 'pending' AND requested_at < ?",
                (calls_cutoff,),
            ),
            (
                "daily_posts",
                "DELETE FROM daily_posts WHERE day < ?",
                (datetime.fromtimestamp(now - 2 * DAY_S, UTC).strftime("%Y-%m-%d"),),
            ),
        )
        async with self._transaction() as db:
            for table, sql, params in rest:
                cursor = await db.execute(sql, params)
                note(table, cursor.rowcount)
            if changed.get(SEARCH_TABLE):
                await _optimise_search_index(db)
        return changed
