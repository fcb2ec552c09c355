"""PostgreSQL storage: retention (`prune`) and the levels the metrics read."""

from __future__ import annotations

from bot.store.postgres.base import PgStoreBase


class PgUpkeep(PgStoreBase):
    """The PostgreSQL side of `UpkeepStore` (see bot/store/interface.py)."""
