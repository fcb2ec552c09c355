"""PostgreSQL storage: calls, call_participants, call_transcripts, feedback,
seen_submits, next_steps, call_search, skipped_digests, rollup_days."""

from __future__ import annotations

from bot.store.postgres.base import PgStoreBase


class PgCalls(PgStoreBase):
    """The PostgreSQL side of `CallStore` (see bot/store/interface.py)."""
