"""Both storage backends for tests: the `store_factory` and `any_storage` fixtures
(tests/conftest.py) run a test once on SQLite and once on PostgreSQL."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from bot.crypto import TokenCipher
from bot.store import StorageInterface, open_storage

BACKENDS = ("sqlite", "postgres")


@dataclass
class StoreFactory:
    """Opens the one database of a test, as many times as the test likes (a reopen is a
    restart); whatever is still open at the end is closed."""

    backend: str
    database: str
    opened: list[StorageInterface] = field(default_factory=list)

    async def open(
        self, cipher: TokenCipher | None = None, replica_id: str | None = None
    ) -> StorageInterface:
        storage = await open_storage(self.database, cipher, replica_id)
        self.opened.append(storage)
        return storage

    async def close_all(self) -> None:
        for storage in self.opened:
            # Closed by the test already, perhaps: SQLite refuses a second close.
            with contextlib.suppress(Exception):
                await storage.close()


async def postgres_rows(url: str, sql: str, *args: Any) -> list[Any]:
    """Rows straight from the database, as an operator would look at them."""
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        return list(await connection.fetch(sql, *args))
    finally:
        await connection.close()
