"""Claiming queue rows among replicas: `inbox` and `outbox` rows are worked on by the one
replica that holds them (`claimed_by`, `lease_until`), in order per `order_key`.

The rules (docs/design/replicas.md, section 2):

- A row is claimable when it is pending, due, and nobody holds a live lease on it (or this
  replica holds it: a row it reserved when storing it, see below).
- Only the head of a line is claimable: no older pending row with the same `order_key` may
  be due or held. An older row waiting for a retry does not hold its line up (as on SQLite,
  where only the items in flight are serialised); it goes first again once it is due.
- Claims are made by one `UPDATE … FROM (SELECT … FOR UPDATE SKIP LOCKED)` statement, so
  two replicas never claim one row; the lease is renewed while a worker holds the row, and
  a replica that dies stops renewing: its rows are claimable once the lease runs out.
- Finishing, retrying and postponing are fenced by `claimed_by`: a replica that lost its
  lease (paused past it) changes nothing.
- A replica reserves the rows it stores itself (claimed by it, with a lease) and hands them
  to its own workers in memory; the worker claims them again before starting (the head of
  their line, not taken over meanwhile). Other replicas learn that a line is free (its head
  finished or went back to wait) by `NOTIFY`, and poll every few seconds as a safety net.

Epoch seconds come from this replica's clock, as everywhere else in the schema; replicas
are expected to keep their clocks in step (NTP), and a lease is long (a minute) next to any
drift that would matter.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from bot.store.postgres.base import PgStoreBase

log = logging.getLogger(__name__)

CLAIM_LEASE_S = 60.0
"""How long a claim holds without renewal: the longest a killed replica delays its rows
(default of `replicas.claim_lease_s`)."""
QUEUE_POLL_S = 5.0
"""Default of `replicas.queue_poll_s` (see `PgClaims.queue_poll_s`)."""

QUEUES = {"inbox": "inbox", "outbox": "outbox"}
"""The queue tables, by the worker's name for them (never interpolated from input)."""

CHANNELS = {"inbox": "bot_inbox", "outbox": "bot_outbox"}
"""The `NOTIFY` channel telling every replica that rows of a queue became claimable."""

ORDERING = {"inbox": "q.id", "outbox": "q.priority, q.id"}


def _table(queue: str) -> str:
    try:
        return QUEUES[queue]
    except KeyError:
        raise ValueError(f"no such queue: {queue!r}") from None


def claim_sql(queue: str, *, only_ids: bool) -> str:
    """The statement claiming due heads of lines: $1 now, $2 this replica, $3 lease end,
    $4 limit, $5 ids to leave out (or, with `only_ids`, the only ids to consider)."""
    table = _table(queue)
    chosen = "q.id = ANY($5::bigint[])" if only_ids else "NOT (q.id = ANY($5::bigint[]))"
    # Only the fixed names above are interpolated; every value is a parameter.
    return (
        f"UPDATE {table} AS c SET claimed_by = $2, lease_until = $3 "  # noqa: S608
        "FROM ("
        f"  SELECT q.id FROM {table} AS q"
        "   WHERE q.status = 'pending' AND q.next_attempt_at <= $1"
        "     AND (q.lease_until IS NULL OR q.lease_until < $1 OR q.claimed_by = $2)"
        f"    AND {chosen}"
        f"    AND NOT EXISTS (SELECT 1 FROM {table} AS p"
        "       WHERE p.order_key = q.order_key AND p.status = 'pending' AND p.id < q.id"
        "         AND (p.next_attempt_at <= $1 OR p.lease_until >= $1))"
        f"   ORDER BY {ORDERING[queue]} LIMIT $4"
        "   FOR UPDATE OF q SKIP LOCKED"
        ") AS due WHERE c.id = due.id "
        "RETURNING c.*"
    )


class PgClaims(PgStoreBase):
    """Claims, leases and wake-ups shared by the inbox and the outbox (`SharedQueue` in
    bot/store/interface.py)."""

    claim_lease_s: float = CLAIM_LEASE_S
    """`replicas.claim_lease_s`; tests shorten it to see a dead replica's rows taken over."""
    queue_poll_s: float = QUEUE_POLL_S
    """`replicas.queue_poll_s`: how often a worker with room reads the queue unprompted."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._listener: Any = None
        self._listening: list[tuple[str, Callable[..., None]]] = []
        # The inbox and outbox workers start listening at once, on the one connection.
        self._listener_lock = asyncio.Lock()

    def _lease_end(self, now: float) -> float:
        return now + self.claim_lease_s

    async def _claim_rows(
        self, queue: str, limit: int, ids: Sequence[int], *, only_ids: bool
    ) -> list[Any]:
        now = time.time()
        rows: list[Any] = await self._pool.fetch(
            claim_sql(queue, only_ids=only_ids),
            now,
            self.replica_id,
            self._lease_end(now),
            limit,
            list(ids),
        )
        # RETURNING comes in no particular order; the workers start rows in queue order.
        if queue == "outbox":
            rows.sort(key=lambda r: (r["priority"], r["id"]))
        else:
            rows.sort(key=lambda r: r["id"])
        return rows

    async def claim_queued(self, queue: str, ids: Sequence[int]) -> list[int]:
        """Of these rows (handed over in memory), the ones this replica now holds: still
        pending, due, at the head of their line and not taken over by another replica."""
        if not ids:
            return []
        rows = await self._claim_rows(queue, len(ids), ids, only_ids=True)
        return [int(r["id"]) for r in rows]

    async def renew_claims(self, queue: str, ids: Sequence[int]) -> list[int]:
        """Extend the lease on rows a worker still holds; the ids this replica still holds
        (a row missing was taken over after this replica's lease ran out)."""
        if not ids:
            return []
        table = _table(queue)
        rows = await self._pool.fetch(
            f"UPDATE {table} SET lease_until = $1 "  # noqa: S608
            "WHERE id = ANY($2::bigint[]) AND claimed_by = $3 AND status = 'pending' "
            "RETURNING id",
            self._lease_end(time.time()),
            list(ids),
            self.replica_id,
        )
        return [int(r["id"]) for r in rows]

    async def release_claims(self, queue: str, ids: Sequence[int]) -> None:
        """Rows this replica will not work on after all (it is stopping): claimable by
        the others at once instead of after the lease."""
        if not ids:
            return
        table = _table(queue)
        released = await self._pool.fetch(
            f"UPDATE {table} SET lease_until = NULL "  # noqa: S608
            "WHERE id = ANY($1::bigint[]) AND claimed_by = $2 AND status = 'pending' "
            "RETURNING id",
            list(ids),
            self.replica_id,
        )
        if released:
            await self._notify(queue)

    async def listen_for_work(self, queue: str, wake: Callable[[], None]) -> None:
        """Call `wake` whenever another replica says rows of `queue` became claimable.

        One connection of the pool, kept, listens for every queue. If it is lost, the
        workers' poll every few seconds still finds the work."""
        channel = CHANNELS[queue]

        def woken(*_args: Any) -> None:
            wake()

        async with self._listener_lock:
            if self._listener is None:
                self._listener = await self._pool.acquire()
            await self._listener.add_listener(channel, woken)
            self._listening.append((channel, woken))

    async def _notify(self, queue: str) -> None:
        await self._pool.execute("SELECT pg_notify($1, '')", CHANNELS[queue])

    async def _fenced_update(self, queue: str, sql: str, item_id: int, *args: Any) -> bool:
        """Run a finishing/retrying UPDATE of one row that this replica holds (`sql` takes
        the id as $1, this replica as $2, then `args`, and RETURNING id, order_key). Tells
        the others when rows were waiting behind it; False when another replica holds the
        row (nothing was changed)."""
        table = _table(queue)
        row = await self._pool.fetchrow(
            f"WITH changed AS ({sql}) "  # noqa: S608
            "SELECT changed.id, EXISTS (SELECT 1 FROM "
            f"{table} AS n WHERE n.order_key = changed.order_key AND n.status = 'pending' "
            "AND n.id > changed.id) AS waiting FROM changed",
            item_id,
            self.replica_id,
            *args,
        )
        if row is None:
            log.warning(
                "%s row %s is held by another replica (this one's lease ran out): "
                "its outcome here is dropped",
                queue,
                item_id,
            )
            return False
        if row["waiting"]:
            await self._notify(queue)
        return True

    async def close(self) -> None:
        if self._listener is not None:
            listener, self._listener = self._listener, None
            try:
                for channel, callback in self._listening:
                    await listener.remove_listener(channel, callback)
                await self._pool.release(listener)
            except Exception:
                log.debug("closing the queue listener failed", exc_info=True)
        await super().close()
