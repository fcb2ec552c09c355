"""PostgreSQL storage basics: the connection pool, transactions, migrating under a lock, and
the stored secrets; tables `schema_version`.

Every replica opens its own pool against one database. Statements are parameterised
(`$1`, `$2`, ...). A replica is named by `replica_id` (host and process id unless
configured), which is what it writes into the rows it claims.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from bot.crypto import TokenCipher
from bot.leases import migrate_under_lock
from bot.store.common import StoreCommon
from bot.store.postgres.migrations import POSTGRES_MIGRATIONS
from bot.store.records import SECRET_COLUMNS

log = logging.getLogger(__name__)

POOL_MIN = 2
POOL_MAX = 10


def default_replica_id() -> str:
    """This process among the replicas: the host's name and the process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


class PgStoreBase(StoreCommon):
    """The PostgreSQL side of `CoreStore` (see bot/store/interface.py).

    `self._pool` is an asyncpg pool; `self._transaction()` yields one of its connections
    inside a transaction; simple reads use `self._pool.fetch/fetchrow/fetchval` directly.
    """

    def __init__(
        self, pool: Any, cipher: TokenCipher | None = None, replica_id: str | None = None
    ) -> None:
        super().__init__(cipher)
        self._pool = pool
        self.replica_id = replica_id or default_replica_id()

    @classmethod
    async def connect_pool(cls, url: str) -> Any:
        """A pool on `url`; asyncpg is needed only by this backend (the `postgres` extra)."""
        import asyncpg

        return await asyncpg.create_pool(url, min_size=POOL_MIN, max_size=POOL_MAX)

    async def _migrate(self) -> list[int]:
        """Apply what is missing, once across replicas starting together."""
        async with self._pool.acquire() as connection:
            applied = await migrate_under_lock(connection, POSTGRES_MIGRATIONS)
        if applied:
            log.info("PostgreSQL schema migrated to %d", applied[-1])
        return applied

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Any]:
        async with self._pool.acquire() as connection, connection.transaction():
            yield connection

    async def _encrypt_plaintext_tokens(self) -> None:
        """Install tokens stored before encryption existed are encrypted on the first start
        with a key, all in one transaction."""
        cipher = self._require_cipher()
        async with self._transaction() as connection:
            rows = await connection.fetch(
                "SELECT bot_extension_id, access_token FROM installs "
                "WHERE token_encrypted = 0 FOR UPDATE"
            )
            for row in rows:
                await connection.execute(
                    "UPDATE installs SET access_token = $1, token_encrypted = 1 "
                    "WHERE bot_extension_id = $2",
                    cipher.encrypt(row["access_token"]),
                    row["bot_extension_id"],
                )
        if rows:
            log.info("encrypted %d install token(s) stored in plain text", len(rows))

    async def rotate_secret_key(self) -> int:
        """Re-encrypt every stored secret under the current (first) key; how many.

        All or nothing: a secret no configured key opens stops the rotation unchanged.
        """
        cipher = self._require_cipher()
        rotated = 0
        async with self._transaction() as connection:
            for table, key_column, secret_column in SECRET_COLUMNS:
                # Table and column names come from SECRET_COLUMNS, never from input.
                rows = await connection.fetch(
                    f"SELECT {key_column}, {secret_column} FROM {table} "  # noqa: S608
                    f"WHERE {secret_column} IS NOT NULL AND {secret_column} <> '' FOR UPDATE"
                )
                for key, stored in rows:
                    await connection.execute(
                        f"UPDATE {table} SET {secret_column} = $1 "  # noqa: S608
                        f"WHERE {key_column} = $2",
                        cipher.reencrypt(stored),
                        key,
                    )
                    rotated += 1
        return rotated

    async def close(self) -> None:
        await self._pool.close()

    async def checkpoint(self) -> None:
        """Nothing to do: PostgreSQL checkpoints by itself, and a commit is durable once
        it returns (`synchronous_commit` on, the server's default)."""

    async def schema_version(self) -> int:
        value = await self._pool.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version")
        return int(value)
