"""PostgreSQL storage: retention (`prune`) and the levels the metrics read.

PostgreSQL has no `secure_delete`: a deleted row's bytes stay in the table's pages until
VACUUM (autovacuum) reuses them; whether freed disk blocks are wiped is the operator's
storage policy (README, "Retention")."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from bot.store.interface import UpkeepStore
from bot.store.postgres.base import PgStoreBase
from bot.store.postgres.status import rows_affected
from bot.store.records import DAY_S, PRUNE_BATCH, SEARCH_TABLE, OperationalLevels

LEVELS_TIMEOUT = "5s"
"""Longest a metrics scrape may read: the levels are counts served by partial indexes, and
a scrape that cannot have them fails rather than hold the database."""


class PgUpkeep(PgStoreBase):
    """The PostgreSQL side of `UpkeepStore` (see bot/store/interface.py)."""

    async def queue_depths(self, cap: int) -> dict[str, dict[str, int]]:
        """For `/status`: the inbox's and the outbox's pending and failed rows, each counted
        up to `cap` (a figure of `cap` means at least that many), over partial indexes of
        those rows only: the history is never read."""
        depths: dict[str, dict[str, int]] = {}
        async with self._pool.acquire() as conn:
            for queue in ("inbox", "outbox"):
                depths[queue] = {}
                for status in ("pending", "failed"):
                    # The table name comes from the fixed pair above, never from input.
                    counted = await conn.fetchval(
                        f"SELECT COUNT(*) FROM (SELECT 1 FROM {queue} "  # noqa: S608
                        "WHERE status = $1 LIMIT $2) AS counted",
                        status,
                        cap,
                    )
                    depths[queue][status] = int(counted)
        return depths

    async def operational_levels(self, now: float) -> OperationalLevels:
        """Queue depths and ages, and job states, for the metrics (no content is read).

        Each count walks an index of the rows it counts (pending queue rows through the
        partial `*_due` indexes, jobs and segments through their state indexes), never
        the finished history, and the reads are cut off after `LEVELS_TIMEOUT`."""
        queues: dict[str, tuple[int, float | None]] = {}
        states: dict[str, dict[str, int]] = {}
        async with self._transaction() as conn:
            await conn.execute(f"SET LOCAL statement_timeout = '{LEVELS_TIMEOUT}'")
            for queue, since in (("inbox", "received_at"), ("outbox", "created_at")):
                # Table and column names come from the fixed pairs above, never from input.
                row = await conn.fetchrow(
                    f"SELECT COUNT(*), MIN({since}) FROM {queue} "  # noqa: S608
                    "WHERE status = 'pending'"
                )
                count = int(row[0]) if row else 0
                queues[queue] = (count, float(row[1]) if row and row[1] is not None else None)
            for table in ("ai_jobs", "ringcx_segments"):
                rows = await conn.fetch(
                    f"SELECT state, COUNT(*) FROM {table} GROUP BY state"  # noqa: S608
                )
                states[table] = {str(r[0]): int(r[1]) for r in rows}
        return OperationalLevels(queues, states["ai_jobs"], states["ringcx_segments"])

    async def prune(
        self,
        *,
        now: float,
        messages_days: int,
        calls_days: int,
        dedupe_days: float,
    ) -> dict[str, int]:
        """Delete people's words once they are older than the retention allows; the rules
        are SQLite's (bot/store/upkeep.py `SqliteUpkeep.prune`):

        - finished inbox and sent outbox rows lose their content after `messages_days`,
          and the bare row (the dedupe key) goes after `dedupe_days` too; pending work is
          never pruned; failed deliveries past retention are deleted;
        - calls not updated for `calls_days` go with their participants, transcript,
          feedback, next steps, search lines, skipped digests and posted card ids;
          finished AI analyses follow the same rule.

        Every statement takes at most `PRUNE_BATCH` rows through an index, each batch in
        its own short transaction, so a large backlog never holds the database for long.
        Rows another pruner (a replica whose lease overlaps) has locked are skipped, not
        waited for. Returns rows changed or deleted per table.
        """
        messages_cutoff = now - messages_days * DAY_S
        keys_cutoff = now - max(messages_days, dedupe_days) * DAY_S
        calls_cutoff = now - calls_days * DAY_S
        changed: dict[str, int] = {}

        def note(table: str, count: int) -> None:
            if count > 0:
                changed[table] = changed.get(table, 0) + count

        batched: tuple[tuple[str, str, tuple[Any, ...]], ...] = (
            (
                "inbox",
                "UPDATE inbox SET payload = '{}', last_error = NULL WHERE id IN "
                "(SELECT id FROM inbox WHERE status <> 'pending' AND payload <> '{}' "
                "AND received_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
                (messages_cutoff,),
            ),
            (
                "inbox",
                "DELETE FROM inbox WHERE id IN (SELECT id FROM inbox "
                "WHERE status <> 'pending' AND received_at < $1 LIMIT $2 "
                "FOR UPDATE SKIP LOCKED)",
                (keys_cutoff,),
            ),
            (
                "outbox",
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox "
                "WHERE status = 'failed' AND created_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
                (messages_cutoff,),
            ),
            (
                "outbox",
                "UPDATE outbox SET message = '{}', last_error = NULL WHERE id IN "
                "(SELECT id FROM outbox WHERE status = 'sent' AND message <> '{}' "
                "AND created_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
                (messages_cutoff,),
            ),
            (
                "outbox",
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox "
                "WHERE status = 'sent' AND created_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
                (keys_cutoff,),
            ),
            (
                "seen_submits",
                "DELETE FROM seen_submits WHERE uuid IN (SELECT uuid FROM seen_submits "
                "WHERE seen_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
                (keys_cutoff,),
            ),
        )
        for table, sql, params in batched:
            while True:
                count = rows_affected(await self._pool.execute(sql, *params, PRUNE_BATCH))
                note(table, count)
                if count < PRUNE_BATCH:
                    break
                await asyncio.sleep(0)
        while True:
            async with self._transaction() as conn:
                keys = [
                    str(r[0])
                    for r in await conn.fetch(
                        "SELECT call_key FROM calls WHERE updated_at < $1 LIMIT $2 "
                        "FOR UPDATE SKIP LOCKED",
                        calls_cutoff,
                        PRUNE_BATCH,
                    )
                ]
                for table, column in (
                    ("feedback", "call_key"),
                    ("call_participants", "call_key"),
                    ("posted_cards", "card_key"),
                    ("call_transcripts", "call_key"),
                    ("next_steps", "call_key"),
                    ("skipped_digests", "call_key"),
                    (SEARCH_TABLE, "call_key"),
                    ("calls", "call_key"),
                ):
                    if not keys:
                        break
                    # Table and column names come from the fixed pairs above.
                    status = await conn.execute(
                        f"DELETE FROM {table} WHERE {column} = ANY($1::text[])",  # noqa: S608
                        keys,
                    )
                    note(table, rows_affected(status))
            if len(keys) < PRUNE_BATCH:
                break
            await asyncio.sleep(0)
        # Small tables (a row per analysis, segment or day), pruned in one go.
        rest: tuple[tuple[str, str, tuple[Any, ...]], ...] = (
            (
                "ringcx_segments",
                "DELETE FROM ringcx_segments WHERE state <> 'pending' AND found_at < $1",
                (messages_cutoff,),
            ),
            (
                "posted_cards",
                "DELETE FROM posted_cards WHERE card_key IN (SELECT 'ai:' || job_id FROM ai_jobs "
                "WHERE state <> 'pending' AND requested_at < $1)",
                (calls_cutoff,),
            ),
            (
                "ai_jobs",
                "DELETE FROM ai_jobs WHERE state <> 'pending' AND requested_at < $1",
                (calls_cutoff,),
            ),
            (
                "daily_posts",
                "DELETE FROM daily_posts WHERE day < $1",
                (datetime.fromtimestamp(now - 2 * DAY_S, UTC).strftime("%Y-%m-%d"),),
            ),
        )
        async with self._transaction() as conn:
            for table, sql, params in rest:
                note(table, rows_affected(await conn.execute(sql, *params)))
        return changed


def _offers_every_method_of_its_protocol(store: PgUpkeep) -> UpkeepStore:
    """Never called: mypy checks here that this family matches `UpkeepStore` method for method."""
    return store
