"""SQLite storage of notifications received: `inbox`."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from bot.events import RINGSENSE_INSIGHTS, Notification
from bot.inbox_writer import InboxRow
from bot.store.base import StoreBase, _excluding, _json_text
from bot.store.records import InboxItem


class SqliteInbox(StoreBase):
    """The SQLite side of `InboxStore` (see bot/store/interface.py)."""

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
        """Store a notification; False when one with this uuid was already stored.

        Returns once the row is committed by the inbox's own writer (bot/inbox_writer.py),
        which commits concurrent callers together and never waits behind the workers'
        statements. `raw`, when given, is the JSON text of `payload` as received.
        """
        writer = self._inbox_writer
        if writer is None:
            raise RuntimeError("the storage is not open")
        text = raw if raw is not None else _json_text(payload)
        row = InboxRow(
            uuid,
            kind,
            text,
            time.time(),
            account_id,
            source_record_id=_recording_announced(kind, payload),
            parsed=payload,
        )
        return await writer.add(row) is not None

    @property
    def inbox_watermark(self) -> int:
        """The largest inbox id stored before this process opened the database: rows above
        it were committed (and handed over in memory) by this process."""
        return self._inbox_writer.watermark if self._inbox_writer is not None else 0

    async def due_inbox(self, limit: int, exclude_ids: Sequence[int] = ()) -> list[InboxItem]:
        """Every pending inbox row that is due, oldest first."""
        return await self._select_inbox("", (), limit, exclude_ids)

    async def due_inbox_not_handed_over(
        self, limit: int, exclude_ids: Sequence[int] = ()
    ) -> list[InboxItem]:
        """Due rows the worker cannot have in memory: left by an earlier process (at or
        below the watermark) or waiting for a retry (attempted before)."""
        return await self._select_inbox(
            "AND (id <= ? OR attempts > 0)", (self.inbox_watermark,), limit, exclude_ids
        )

    async def inbox_items(self, ids: Sequence[int]) -> list[InboxItem]:
        """These inbox rows, if still pending (oldest first)."""
        if not ids:
            return []
        placeholders = ",".join("?" for _ in ids)
        return await self._select_inbox(
            f"AND id IN ({placeholders})", tuple(ids), len(ids), (), due_only=False
        )

    async def _select_inbox(
        self,
        condition: str,
        params: tuple[Any, ...],
        limit: int,
        exclude_ids: Sequence[int],
        *,
        due_only: bool = True,
    ) -> list[InboxItem]:
        exclusion, excluded = _excluding(exclude_ids)
        due = "AND next_attempt_at <= ?" if due_only else ""
        due_params = (time.time(),) if due_only else ()
        # Only "?" placeholders and fixed conditions are interpolated into these queries.
        query = (
            "SELECT id, uuid, kind, payload, attempts, received_at FROM inbox "  # noqa: S608
            f"WHERE status = 'pending' {due} {condition} {exclusion} "
            "ORDER BY id LIMIT ?"
        )
        async with self._db.execute(query, (*due_params, *params, *excluded, limit)) as cursor:
            rows = await cursor.fetchall()
        return [
            InboxItem(
                r["id"],
                r["uuid"],
                r["kind"],
                orjson.loads(r["payload"]),
                r["attempts"],
                float(r["received_at"] or 0.0),
            )
            for r in rows
        ]

    async def finish_inbox(self, item_id: int, status: str, error: str | None = None) -> None:
        # One statement is its own transaction (autocommit); the lock only keeps it out of
        # another task's open transaction on this connection.
        async with self._write_lock:
            await self._db.execute(
                "UPDATE inbox SET status = ?, last_error = ?, attempts = attempts + 1 WHERE id = ?",
                (status, error, item_id),
            )

    async def retry_inbox_later(self, item_id: int, delay_s: float, error: str) -> float:
        """Try again in `delay_s`; returns when (epoch seconds). The row is pending again
        even if a handler of the notification had marked it done before another failed."""
        due_at = time.time() + delay_s
        async with self._write_lock:
            await self._db.execute(
                "UPDATE inbox SET status = 'pending', attempts = attempts + 1, "
                "next_attempt_at = ?, last_error = ? WHERE id = ?",
                (due_at, error, item_id),
            )
        return due_at

    async def inbox_counts(self) -> dict[str, int]:
        async with self._db.execute("SELECT status, COUNT(*) FROM inbox GROUP BY status") as cur:
            return {row[0]: row[1] for row in await cur.fetchall()}

    async def ringsense_notification_handled(self, source_record_id: str) -> bool:
        """Whether a RingSense notification for this recording was handled (or waits to be):
        the digest decision for the call was made, by the settings of that time."""
        async with self._db.execute(
            "SELECT 1 FROM inbox WHERE kind = 'ringsense.insights' "
            "AND source_record_id = ? AND status IN ('pending', 'done') LIMIT 1",
            (source_record_id,),
        ) as cursor:
            return await cursor.fetchone() is not None

    async def next_inbox_due_at(self) -> float | None:
        """When the next pending row is due, whether or not it was handed over."""
        async with self._db.execute(
            "SELECT MIN(next_attempt_at) FROM inbox WHERE status = 'pending'"
        ) as cursor:
            row = await cursor.fetchone()
        return float(row[0]) if row and row[0] is not None else None

    async def next_inbox_retry_at(self, after: float) -> float | None:
        """When the next row the worker must read from the database falls due, after
        `after` (see `due_inbox_not_handed_over`)."""
        async with self._db.execute(
            "SELECT MIN(next_attempt_at) FROM inbox WHERE status = 'pending' "
            "AND next_attempt_at > ? AND (id <= ? OR attempts > 0)",
            (after, self.inbox_watermark),
        ) as cursor:
            row = await cursor.fetchone()
        return float(row[0]) if row and row[0] is not None else None


def _recording_announced(kind: str, payload: Mapping[str, Any]) -> str | None:
    """The recording a RingSense notification is about (`body.sourceRecordId`), else None."""
    if kind != RINGSENSE_INSIGHTS:
        return None
    body = payload.get("body")
    record_id = body.get("sourceRecordId") if isinstance(body, Mapping) else None
    return record_id if isinstance(record_id, str) else None
