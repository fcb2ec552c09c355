"""PostgreSQL storage: ringcx_segments.

A segment handed to the RingCX poller is claimed by its replica (`claimed_by`) until
`next_attempt_at`, a short lease (`RINGCX_CLAIM_S`) that the poller renews while it works
on the segment (RingCX may be slow, or the pacing make it wait), and releases when it stops.
A poller that died renews nothing: the next holder of the `ringcx` lease takes its segments
within that lease. Claims are made and judged with the database's clock, one for every
replica, as a lease this short must not depend on replicas' clocks agreeing (`now()`: each
statement is a transaction of its own, and a stable time lets the due index be used).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from bot.store.interface import RingCxStore, SharedRingCx
from bot.store.postgres.base import PgStoreBase

RINGCX_CLAIM_S = 15.0
"""How long a segment handed out by `due_ringcx_segments` is kept from other pollers without
renewal (the poller renews every third of it while it works). The poller finishes or
reschedules each segment it is given (either ends the claim); one that died holding it
leaves the segment due again after this long."""


class PgRingCx(PgStoreBase):
    """The PostgreSQL side of `RingCxStore` and `SharedRingCx` (see bot/store/interface.py)."""

    ringcx_claim_s: float = RINGCX_CLAIM_S
    """Tests shorten it to see a dead poller's segments taken over."""

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
        """Segments whose transcript is due, oldest first, claimed by this replica for
        `ringcx_claim_s` (renewed by `renew_ringcx_claims` while the poller works).

        The poller runs under a lease on one replica, but two holders can overlap for a few
        seconds: the claim (`FOR UPDATE SKIP LOCKED`, then the due time moved on in the same
        statement) gives each segment to one of them."""
        rows = await self._pool.fetch(
            "WITH due AS (SELECT dialog_id, segment_id FROM ringcx_segments "
            "WHERE state = 'pending' AND next_attempt_at <= extract(epoch FROM now()) "
            "ORDER BY found_at LIMIT $1 FOR UPDATE SKIP LOCKED) "
            "UPDATE ringcx_segments s "
            "SET next_attempt_at = extract(epoch FROM now()) + $2, claimed_by = $3 "
            "FROM due WHERE s.dialog_id = due.dialog_id AND s.segment_id = due.segment_id "
            "RETURNING s.dialog_id, s.segment_id, s.metadata, s.attempts, s.found_at",
            limit,
            self.ringcx_claim_s,
            self.replica_id,
        )
        ordered = sorted(rows, key=lambda r: (r["found_at"], r["dialog_id"], r["segment_id"]))
        return [
            (r["dialog_id"], r["segment_id"], json.loads(r["metadata"]), r["attempts"])
            for r in ordered
        ]

    async def renew_ringcx_claims(
        self, segments: Sequence[tuple[str, str]]
    ) -> list[tuple[str, str]]:
        """Extend this replica's claim on segments its poller still works on; the ones it
        still holds (one missing was finished, rescheduled or taken over meanwhile)."""
        if not segments:
            return []
        rows = await self._pool.fetch(
            "UPDATE ringcx_segments "
            "SET next_attempt_at = extract(epoch FROM now()) + $1 "
            "WHERE state = 'pending' AND claimed_by = $4 "
            "AND (dialog_id, segment_id) IN (SELECT * FROM unnest($2::text[], $3::text[])) "
            "RETURNING dialog_id, segment_id",
            self.ringcx_claim_s,
            [dialog for dialog, _ in segments],
            [segment for _, segment in segments],
            self.replica_id,
        )
        return [(r["dialog_id"], r["segment_id"]) for r in rows]

    async def release_ringcx_claims(self, segments: Sequence[tuple[str, str]]) -> None:
        """Give back segments this replica's poller will not finish (it is stopping): due
        again at once for whoever polls next."""
        if not segments:
            return
        await self._pool.execute(
            "UPDATE ringcx_segments "
            "SET next_attempt_at = extract(epoch FROM now()), claimed_by = NULL "
            "WHERE state = 'pending' AND claimed_by = $1 "
            "AND (dialog_id, segment_id) IN (SELECT * FROM unnest($2::text[], $3::text[]))",
            self.replica_id,
            [dialog for dialog, _ in segments],
            [segment for _, segment in segments],
        )

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
            "UPDATE ringcx_segments SET state = $1, attempts = attempts + 1, last_error = $2, "
            "claimed_by = NULL WHERE dialog_id = $3 AND segment_id = $4",
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
            "last_error = $2, claimed_by = NULL WHERE dialog_id = $3 AND segment_id = $4",
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


def _shares_its_claims(store: PgRingCx) -> SharedRingCx:
    """Never called: mypy checks here that this family offers `SharedRingCx`."""
    return store
