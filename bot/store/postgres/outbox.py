"""PostgreSQL storage: outbox, posted_cards."""

from __future__ import annotations

from bot.store.postgres.base import PgStoreBase


class PgOutbox(PgStoreBase):
    """The PostgreSQL side of `OutboxStore` (see bot/store/interface.py)."""
