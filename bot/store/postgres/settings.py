"""PostgreSQL storage: user_settings, user_channels, direct_chats, bot_state, daily_posts."""

from __future__ import annotations

from bot.store.postgres.base import PgStoreBase


class PgSettings(PgStoreBase):
    """The PostgreSQL side of `SettingsStore` (see bot/store/interface.py)."""
