"""PostgreSQL storage: inbox (notifications received), claimed by replicas.

Storing: the webhook's requests on one replica are committed together (a group commit,
as bot/inbox_writer.py does for SQLite): while one `INSERT … SELECT FROM unnest(…)` is on
its way, the rows arriving meanwhile wait and go in the next one, so a burst costs a few
round trips and commits instead of one per notification. A request returns once its row is
committed ("stored before the 200"). `ON CONFLICT (uuid) DO NOTHING` keeps one row per
notification even when RingCentral delivers it to two replicas at once.

The rows a replica stores are reserved by it (claimed, with a lease) and handed to its own
inbox worker in memory; see bot/store/postgres/claims.py for how rows are claimed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from bot.events import Notification
from bot.store.base import _json_text
from bot.store.postgres.claims import PgClaims
from bot.store.records import InboxItem

log = logging.getLogger(__name__)
# The rows themselves, at DEBUG, only with `--log-content` (bot/logs.py CONTENT_LOGGERS).
content_log = logging.getLogger("bot.inbox_writer.content")

INBOX_BATCH_MAX = 500
"""Rows per INSERT at most (one array parameter per column, so no parameter limit)."""

RINGSENSE_KIND = "ringsense.insights"


def inbox_order_key(uuid: str, payload: Mapping[str, Any]) -> str:
    """The line a notification waits in: handled one at a time, oldest first, across
    replicas. Messages and card submits of one chat, events of one call; anything else is
    a line of its own. The same keys as `bot.workers.ordering_key`, which orders within a
    process."""
    body = payload.get("body")
    if isinstance(body, Mapping):
        if body.get("groupId") is not None:
            return f"chat:{body['groupId']}"
        if body.get("sourceRecordId") is not None:
            return f"call:{body.get('domain')}:{body['sourceRecordId']}"
    return f"item:{payload.get('uuid', uuid)}"


def _source_record_id(kind: str, payload: Mapping[str, Any]) -> str | None:
    body = payload.get("body")
    if kind != RINGSENSE_KIND or not isinstance(body, Mapping):
        return None
    value = body.get("sourceRecordId")
    return None if value is None else str(value)


@dataclass(eq=False)
class _Waiting:
    """One notification waiting for the next group commit."""

    uuid: str
    kind: str
    text: str
    parsed: Mapping[str, Any]
    account_id: str | None
    future: asyncio.Future[int | None]
    received_at: float = field(default_factory=time.time)
    order_key: str = ""
    source_record_id: str | None = None

    def __post_init__(self) -> None:
        self.order_key = inbox_order_key(self.uuid, self.parsed)
        self.source_record_id = _source_record_id(self.kind, self.parsed)


INSERT_INBOX = (
    "INSERT INTO inbox (uuid, kind, payload, received_at, account_id, source_record_id, "
    "order_key, claimed_by, lease_until) "
    "SELECT t.uuid, t.kind, t.payload, t.received_at, t.account_id, t.source_record_id, "
    "t.order_key, $8, $9 FROM unnest($1::text[], $2::text[], $3::text[], "
    "$4::double precision[], $5::text[], $6::text[], $7::text[]) WITH ORDINALITY "
    "AS t(uuid, kind, payload, received_at, account_id, source_record_id, order_key, n) "
    "ORDER BY t.n "
    "ON CONFLICT (uuid) DO NOTHING RETURNING uuid, id"
)


class PgInbox(PgClaims):
    """The PostgreSQL side of `InboxStore` (see bot/store/interface.py)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._inbox_waiting: list[_Waiting] = []
        self._inbox_flusher: asyncio.Task[None] | None = None

    async def add_notification(self, notification: Notification, raw: str | None = None) -> bool:
        """Store a notification in the inbox; False when its uuid was stored before.

        `raw` is the body exactly as RingCentral sent it (the webhook's): it is stored as
        received, never re-encoded. Work the bot made itself has none and is encoded here.
        """
        return await self.add_to_inbox(
            notification.uuid,
            notification.kind,
            notification.to_payload(),
            self.account_of_owner(notification.owner_id),
            raw=raw,
        )

    async def add_to_inbox(
        self,
        uuid: str,
        kind: str,
        payload: Mapping[str, Any],
        account_id: str | None = None,
        *,
        raw: str | None = None,
    ) -> bool:
        """Store a notification; False when one with this uuid was already stored (by any
        replica). Returns once the row is committed, together with whatever other requests
        of this replica were waiting (see the module's docstring)."""
        text = raw if raw is not None else _json_text(payload)
        future: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._inbox_waiting.append(_Waiting(uuid, kind, text, payload, account_id, future))
        if self._inbox_flusher is None or self._inbox_flusher.done():
            self._inbox_flusher = asyncio.create_task(self._flush_inbox(), name="inbox-insert")
        return await future is not None

    async def _flush_inbox(self) -> None:
        while self._inbox_waiting:
            batch = self._inbox_waiting[:INBOX_BATCH_MAX]
            del self._inbox_waiting[:INBOX_BATCH_MAX]
            outcomes: list[int | BaseException | None]
            try:
                outcomes = list(await self._insert_inbox_rows(batch))
            except Exception as err:
                if len(batch) > 1 and _refused_a_value(err):
                    # One row PostgreSQL will not take (a NUL character, say) must not fail
                    # the rows sent with it: then each is stored on its own.
                    outcomes = [await self._insert_inbox_row_alone(row) for row in batch]
                else:
                    # The database did not answer: every request of the batch is told so
                    # (its webhook fails; RingCentral sends the notification again).
                    outcomes = [err] * len(batch)
            committed: list[InboxItem] = []
            for row, outcome in zip(batch, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    if not row.future.done():
                        row.future.set_exception(outcome)
                    continue
                if outcome is not None:
                    committed.append(
                        InboxItem(outcome, row.uuid, row.kind, row.parsed, 0, row.received_at)
                    )
                if not row.future.done():
                    row.future.set_result(outcome)
            if committed:
                try:
                    self.on_inbox_committed(committed)
                except Exception:
                    log.exception("inbox: handing committed rows over failed")

    async def _insert_inbox_row_alone(self, row: _Waiting) -> int | BaseException | None:
        try:
            return (await self._insert_inbox_rows([row]))[0]
        except Exception as err:
            return err

    async def _insert_inbox_rows(self, rows: Sequence[_Waiting]) -> list[int | None]:
        """Insert in one statement; per row its new id, or None (its uuid was stored
        before, or earlier in this batch: the first one wins)."""
        if content_log.isEnabledFor(logging.DEBUG):
            for row in rows:
                content_log.debug("inbox row %r (%s): %s", row.uuid, row.kind, row.text)
        now = time.time()
        inserted = {
            r["uuid"]: int(r["id"])
            for r in await self._pool.fetch(
                INSERT_INBOX,
                [r.uuid for r in rows],
                [r.kind for r in rows],
                [r.text for r in rows],
                [r.received_at for r in rows],
                [r.account_id for r in rows],
                [r.source_record_id for r in rows],
                [r.order_key for r in rows],
                self.replica_id,
                self._lease_end(now),
            )
        }
        return [inserted.pop(row.uuid, None) for row in rows]

    @property
    def inbox_watermark(self) -> int:
        """Not used on PostgreSQL: which rows a replica holds is in the rows themselves
        (`claimed_by`), not told by their ids."""
        return 0

    async def due_inbox(self, limit: int, exclude_ids: Sequence[int] = ()) -> list[InboxItem]:
        """Claim due rows for this replica: the head of each line, oldest first, none that
        another replica holds, none of `exclude_ids` (what this replica's worker has)."""
        rows = await self._claim_rows("inbox", limit, exclude_ids, only_ids=False)
        return [_inbox_item(r) for r in rows]

    async def due_inbox_not_handed_over(
        self, limit: int, exclude_ids: Sequence[int] = ()
    ) -> list[InboxItem]:
        """On PostgreSQL the same as `due_inbox`: rows handed over in memory are in
        `exclude_ids`, and rows another replica stored are for whoever claims them first."""
        return await self.due_inbox(limit, exclude_ids)

    async def inbox_items(self, ids: Sequence[int]) -> list[InboxItem]:
        """These inbox rows, if still pending (oldest first). Only a read: the worker
        claims them before it starts (`claim_queued`)."""
        if not ids:
            return []
        rows = await self._pool.fetch(
            "SELECT id, uuid, kind, payload, attempts, received_at FROM inbox "
            "WHERE status = 'pending' AND id = ANY($1::bigint[]) ORDER BY id",
            list(ids),
        )
        return [_inbox_item(r) for r in rows]

    async def newer_pending_in_line(self, order_key: str, after_id: int) -> InboxItem | None:
        """The newest notification of this line stored after `after_id`, pending and never
        tried yet (`inbox_line` finds it), or None; see `bot.workers.InboxWorker`."""
        row = await self._pool.fetchrow(
            "SELECT id, uuid, kind, payload, attempts, received_at FROM inbox "
            "WHERE order_key = $1 AND status = 'pending' AND id > $2 AND attempts = 0 "
            "ORDER BY id DESC LIMIT 1",
            order_key,
            after_id,
        )
        return _inbox_item(row) if row is not None else None

    async def finish_inbox(self, item_id: int, status: str, error: str | None = None) -> None:
        await self._fenced_update(
            "inbox",
            "UPDATE inbox SET status = $3, last_error = $4, attempts = attempts + 1, "
            "lease_until = NULL WHERE id = $1 AND claimed_by = $2 RETURNING id, order_key",
            item_id,
            status,
            error,
        )

    async def retry_inbox_later(self, item_id: int, delay_s: float, error: str) -> float:
        """Try again in `delay_s`; returns when (epoch seconds). Until then the row does
        not hold up its line, and any replica may take it when it falls due."""
        due_at = time.time() + delay_s
        await self._fenced_update(
            "inbox",
            "UPDATE inbox SET attempts = attempts + 1, next_attempt_at = $3, last_error = $4, "
            "lease_until = NULL WHERE id = $1 AND claimed_by = $2 RETURNING id, order_key",
            item_id,
            due_at,
            error,
        )
        return due_at

    async def inbox_counts(self) -> dict[str, int]:
        rows = await self._pool.fetch("SELECT status, COUNT(*) AS n FROM inbox GROUP BY status")
        return {r["status"]: int(r["n"]) for r in rows}

    async def ringsense_notification_handled(self, source_record_id: str) -> bool:
        """Whether a RingSense notification for this recording was handled (or waits to be):
        the digest decision for the call was made, by the settings of that time."""
        found = await self._pool.fetchval(
            "SELECT 1 FROM inbox WHERE kind = $1 AND source_record_id = $2 "
            "AND status IN ('pending', 'done') LIMIT 1",
            RINGSENSE_KIND,
            source_record_id,
        )
        return found is not None

    async def next_inbox_due_at(self) -> float | None:
        """When the next pending row is due, whoever holds it."""
        value = await self._pool.fetchval(
            "SELECT MIN(next_attempt_at) FROM inbox WHERE status = 'pending'"
        )
        return None if value is None else float(value)

    async def next_inbox_retry_at(self, after: float) -> float | None:
        """When the next pending row falls due after `after` (a retry, here or on another
        replica: whoever is free then claims it)."""
        value = await self._pool.fetchval(
            "SELECT MIN(next_attempt_at) FROM inbox WHERE status = 'pending' "
            "AND next_attempt_at > $1",
            after,
        )
        return None if value is None else float(value)

    async def close(self) -> None:
        if self._inbox_flusher is not None:
            await asyncio.gather(self._inbox_flusher, return_exceptions=True)
        await super().close()


def _refused_a_value(err: Exception) -> bool:
    """Whether the server (or the driver, encoding a parameter) refused what was sent, as
    opposed to not answering at all."""
    import asyncpg

    return isinstance(err, asyncpg.PostgresError | asyncpg.DataError | ValueError)


def _inbox_item(row: Any) -> InboxItem:
    return InboxItem(
        int(row["id"]),
        row["uuid"],
        row["kind"],
        orjson.loads(row["payload"]),
        int(row["attempts"]),
        float(row["received_at"] or 0.0),
    )
