"""PostgreSQL storage: ringcx_segments."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from bot.store.interface import RingCxStore
from bot.store.postgres.base import PgStoreBase

RINGCX_CLAIM_S = 300.0
"""How long a segment handed out by `due_ringcx_segments` is kept from other pollers. The
poller finishes or reschedules each segment it is given (either ends the claim); one that
died holding it leaves the segment due again after this long."""


class PgRingCx(PgStoreBase):
    """The PostgreSQL side of `RingCxStore` (see bot/store/interface.py)."""

    async def add_ringcx_segments(
        self,
        segments: Sequence[tuple[str, str, Mapping[str, Any], str | None, str | None]],
        position_key: str,
        next_position: str,
        account_id: str | None = None,
    ) -> int:
        """Remember a window's segments and move the window on, in one transaction, so a
        restart neither skips a window nor takes a segment twice; a segment another replica
        stored already is not counted again."""
        added = 0
        now = time.time()
        async with self._transaction() as conn:
            for dialog_id, segment_id, metadata, agent_id, group_id in segments:
                inserted = await conn.fetchval(
                    "INSERT INTO ringcx_segments (dialog_id, segment_id, metadata, "
                    "agent_extension_id, agent_group_id, found_at, account_id) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING 1",
                    dialog_id,
                    segment_id,
                    json.dumps(metadata),
                    agent_id,
                    group_id,
                    now,
                    account_id or self.default_account_id,
                )
                added += 1 if inserted else 0
            await conn.execute(
                "INSERT INTO bot_state (key, value, updated_at) VALUES ($1, $2, $3) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
                "updated_at = excluded.updated_at",
                position_key,
                next_position,
                now,
            )
        return added

    async def due_ringcx_segments(
        self, limit: int
    ) -> list[tuple[str, str, Mapping[str, Any], int]]:
        """Segments whose transcript is due, oldest first, claimed for `RINGCX_CLAIM_S`.

        The poller runs under a lease on one replica, but two holders can overlap for a few
        seconds: the claim (`FOR UPDATE SKIP LOCKED`, then the due time moved on in the same
        statement) gives each segment to one of them."""
        now = time.time()
        rows = await self._pool.fetch(
            "WITH due AS (SELECT dialog_id, segment_id FROM ringcx_segments "
            "WHERE state = 'pending' AND next_attempt_at <= $1 "
            "ORDER BY found_at LIMIT $2 FOR UPDATE SKIP LOCKED) "
            "UPDATE ringcx_segments s SET next_attempt_at = $3 FROM due "
            "WHERE s.dialog_id = due.dialog_id AND s.segment_id = due.segment_id "
            "RETURNING s.dialog_id, s.segment_id, s.metadata, s.attempts, s.found_at",
            now,
            limit,
            now + RINGCX_CLAIM_S,
        )
        ordered = sorted(rows, key=lambda r: (r["found_at"], r["dialog_id"], r["segment_id"]))
        return [
            (r["dialog_id"], r["segment_id"], json.loads(r["metadata"]), r["attempts"])
            for r in ordered
        ]

    async def ringcx_segment(self, dialog_id: str, segment_id: str) -> Mapping[str, Any] | None:
        value = await self._pool.fetchval(
            "SELECT metadata FROM ringcx_segments WHERE dialog_id = $1 AND segment_id = $2",
            dialog_id,
            segment_id,
        )
        return json.loads(value) if value is not None else None

    async def finish_ringcx_segment(
        self, dialog_id: str, segment_id: str, state: str, error: str | None = None
    ) -> None:
        await self._pool.execute(
            "UPDATE ringcx_segments SET state = $1, attempts = attempts + 1, last_error = $2 "
            "WHERE dialog_id = $3 AND segment_id = $4",
            state,
            error,
            dialog_id,
            segment_id,
        )

    async def retry_ringcx_segment(
        self, dialog_id: str, segment_id: str, delay_s: float, error: str
    ) -> None:
        await self._pool.execute(
            "UPDATE ringcx_segments SET attempts = attempts + 1, next_attempt_at = $1, "
            "last_error = $2 WHERE dialog_id = $3 AND segment_id = $4",
            time.time() + delay_s,
            error,
            dialog_id,
            segment_id,
        )

    async def ringcx_counts(self) -> dict[str, int]:
        rows = await self._pool.fetch("SELECT state, COUNT(*) FROM ringcx_segments GROUP BY state")
        return {str(r[0]): int(r[1]) for r in rows}


def _offers_every_method_of_its_protocol(store: PgRingCx) -> RingCxStore:
    """Never called: mypy checks here that this family matches `RingCxStore` method for method."""
    return store
