"""SQLite storage of RingCX segments: `ringcx_segments`."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from bot.store.base import StoreBase


class SqliteRingCx(StoreBase):
    """The SQLite side of `RingCxStore` (see bot/store/interface.py)."""

    async def add_ringcx_segments(
        self,
        segments: Sequence[tuple[str, str, Mapping[str, Any], str | None, str | None]],
        position_key: str,
        next_position: str,
        account_id: str | None = None,
    ) -> int:
        """Remember a window's segments and move the window on, in one transaction, so a
        restart neither skips a window nor takes a segment twice."""
        added = 0
        async with self._transaction() as db:
            for dialog_id, segment_id, metadata, agent_id, group_id in segments:
                cursor = await db.execute(
                    "INSERT OR IGNORE INTO ringcx_segments (dialog_id, segment_id, metadata, "
                    "agent_extension_id, agent_group_id, found_at, account_id) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        dialog_id,
                        segment_id,
                        json.dumps(metadata),
                        agent_id,
                        group_id,
                        time.time(),
                        account_id or self.default_account_id,
                    ),
                )
                added += cursor.rowcount
            await db.execute(
                "INSERT INTO bot_state (key, value, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
                "updated_at = excluded.updated_at",
                (position_key, next_position, time.time()),
            )
        return added

    async def due_ringcx_segments(
        self, limit: int
    ) -> list[tuple[str, str, Mapping[str, Any], int]]:
        async with self._db.execute(
            "SELECT dialog_id, segment_id, metadata, attempts FROM ringcx_segments "
            "WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY found_at LIMIT ?",
            (time.time(), limit),
        ) as cursor:
            rows = await cursor.fetchall()
        return [(r[0], r[1], json.loads(r[2]), r[3]) for r in rows]

    async def ringcx_segment(self, dialog_id: str, segment_id: str) -> Mapping[str, Any] | None:
        async with self._db.execute(
            "SELECT metadata FROM ringcx_segments WHERE dialog_id = ? AND segment_id = ?",
            (dialog_id, segment_id),
        ) as cursor:
            row = await cursor.fetchone()
        return json.loads(row[0]) if row else None

    async def finish_ringcx_segment(
        self, dialog_id: str, segment_id: str, state: str, error: str | None = None
    ) -> None:
        async with self._transaction() as db:
            await db.execute(
                "UPDATE ringcx_segments SET state = ?, attempts = attempts + 1, last_error = ? "
                "WHERE dialog_id = ? AND segment_id = ?",
                (state, error, dialog_id, segment_id),
            )

    async def retry_ringcx_segment(
        self, dialog_id: str, segment_id: str, delay_s: float, error: str
    ) -> None:
        async with self._transaction() as db:
            await db.execute(
                "UPDATE ringcx_segments SET attempts = attempts + 1, next_attempt_at = ?, "
                "last_error = ? WHERE dialog_id = ? AND segment_id = ?",
                (time.time() + delay_s, error, dialog_id, segment_id),
            )

    async def ringcx_counts(self) -> dict[str, int]:
        async with self._db.execute(
            "SELECT state, COUNT(*) FROM ringcx_segments GROUP BY state"
        ) as cursor:
            return {row[0]: row[1] for row in await cursor.fetchall()}
