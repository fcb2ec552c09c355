"""PostgreSQL storage: inbox."""

from __future__ import annotations

from bot.store.postgres.base import PgStoreBase


class PgInbox(PgStoreBase):
    """The PostgreSQL side of `InboxStore` (see bot/store/interface.py)."""
