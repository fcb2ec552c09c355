"""PostgreSQL storage: installs, subscriptions, ringsense_connections,
ringsense_connect_links; and forgetting an account."""

from __future__ import annotations

from bot.store.postgres.base import PgStoreBase


class PgAccounts(PgStoreBase):
    """The PostgreSQL side of `AccountStore` (see bot/store/interface.py)."""
