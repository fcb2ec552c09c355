"""`PostgresStorage`: the PostgreSQL backend, composed of one mixin per table family, for
several replicas sharing one database (docs/design/replicas.md)."""

from __future__ import annotations

from bot.crypto import TokenCipher
from bot.store.interface import StorageInterface
from bot.store.postgres.accounts import PgAccounts
from bot.store.postgres.ai_jobs import PgAiJobs
from bot.store.postgres.base import PgStoreBase
from bot.store.postgres.calls import PgCalls
from bot.store.postgres.clock import PgClock
from bot.store.postgres.inbox import PgInbox
from bot.store.postgres.outbox import PgOutbox
from bot.store.postgres.ringcx import PgRingCx
from bot.store.postgres.settings import PgSettings
from bot.store.postgres.shared import PgShared
from bot.store.postgres.upkeep import PgUpkeep


class PostgresStorage(
    PgInbox,
    PgOutbox,
    PgSettings,
    PgCalls,
    PgAccounts,
    PgAiJobs,
    PgRingCx,
    PgUpkeep,
    PgShared,
    PgClock,
    PgStoreBase,
):
    """The PostgreSQL storage: every table family's mixin over one connection pool."""

    @classmethod
    async def open(
        cls, url: str, cipher: TokenCipher | None = None, replica_id: str | None = None
    ) -> PostgresStorage:
        """Connect, migrate (once across replicas starting together) and get ready.

        Without a `cipher` the store works but refuses to store or read tokens.
        """
        pool = await cls.connect_pool(url)
        storage = cls(pool, cipher, replica_id)
        try:
            await storage._migrate()
            if cipher is not None:
                await storage._encrypt_plaintext_tokens()
            await storage.follow_installs()
        except BaseException:
            await pool.close()
            raise
        return storage


def _implements_interface(storage: PostgresStorage) -> StorageInterface:
    """Never called: mypy checks here that `PostgresStorage` offers all of
    `StorageInterface`, as SQLite's `Storage` does."""
    return storage
