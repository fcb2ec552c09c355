"""PostgreSQL storage: ringcx_segments."""

from __future__ import annotations

from bot.store.postgres.base import PgStoreBase


class PgRingCx(PgStoreBase):
    """The PostgreSQL side of `RingCxStore` (see bot/store/interface.py)."""
