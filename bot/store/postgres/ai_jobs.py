"""PostgreSQL storage: ai_jobs."""

from __future__ import annotations

from bot.store.postgres.base import PgStoreBase


class PgAiJobs(PgStoreBase):
    """The PostgreSQL side of `AiJobStore` (see bot/store/interface.py)."""
