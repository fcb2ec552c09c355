"""`Storage`: the SQLite backend, composed of one mixin per table family.

SQLite storage: inbox, outbox, settings, calls and the cards already posted.

One aiosqlite connection (its own thread, so nothing blocks the event loop), WAL journal,
numbered migrations each applied in a transaction and recorded in a version table. Every
write that must be atomic runs under one lock, because statements from concurrent tasks
would otherwise interleave inside one connection's transaction. All SQL is parameterised.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import aiosqlite
import orjson

from bot import db_connection
from bot.crypto import TokenCipher
from bot.inbox_writer import Committed, InboxWriter
from bot.store.accounts import SqliteAccounts
from bot.store.ai_jobs import SqliteAiJobs
from bot.store.base import PRAGMAS, StoreBase, _prepare_private_file, _tighten_files
from bot.store.calls import SqliteCalls
from bot.store.inbox import SqliteInbox
from bot.store.interface import StorageInterface
from bot.store.outbox import SqliteOutbox
from bot.store.records import CHECKPOINT_EVERY_S, InboxItem
from bot.store.ringcx import SqliteRingCx
from bot.store.settings import SqliteSettings
from bot.store.upkeep import SqliteUpkeep


class Storage(
    SqliteInbox,
    SqliteOutbox,
    SqliteSettings,
    SqliteCalls,
    SqliteAccounts,
    SqliteAiJobs,
    SqliteRingCx,
    SqliteUpkeep,
    StoreBase,
):
    """The SQLite storage: every table family's mixin over one connection."""

    @classmethod
    async def open(cls, path: Path | str, cipher: TokenCipher | None = None) -> Storage:
        """Open (creating if needed) the database, readable by its owner only.

        Without a `cipher` the store works but refuses to store or read tokens.
        """
        if str(path) == ":memory:":
            raise ValueError("the storage needs a file: the inbox writer opens it a second time")
        _prepare_private_file(Path(path))
        db = await db_connection.connect(path, isolation_level=None)
        db.row_factory = aiosqlite.Row
        for pragma in PRAGMAS:
            await db.execute(pragma)
        storage = cls(db, cipher)
        await storage._migrate()
        storage._inbox_writer = await InboxWriter.open(Path(path))
        storage._inbox_writer.on_committed = storage._inbox_rows_committed
        storage._inbox_writer.on_batch_committed = storage._checkpoint_soon
        _tighten_files(Path(path))
        if cipher is not None:
            await storage._encrypt_plaintext_tokens()
        return storage

    def _checkpoint_soon(self) -> None:
        """Sync the WAL (and copy it into the database) within `CHECKPOINT_EVERY_S`, on
        this connection, the workers' one: the inbox writer's commits (the acks) never
        wait for a checkpoint or an fsync, and what they stored is on the disk soon after."""
        if self._checkpoint is None or self._checkpoint.done():
            self._checkpoint = asyncio.create_task(self._checkpoint_after_delay())

    async def _checkpoint_after_delay(self) -> None:
        await asyncio.sleep(CHECKPOINT_EVERY_S)
        await self.checkpoint()

    def _inbox_rows_committed(self, committed: Sequence[Committed]) -> None:
        """The writer committed these rows: hand them to the inbox worker, parsed."""
        items = []
        for entry in committed:
            row = entry.row
            payload = row.parsed if row.parsed is not None else orjson.loads(row.payload)
            items.append(InboxItem(entry.id, row.uuid, row.kind, payload, 0, row.received_at))
        self.on_inbox_committed(items)


def _implements_interface(storage: Storage) -> StorageInterface:
    """Never called: mypy checks here that `Storage` offers all of `StorageInterface`."""
    return storage
