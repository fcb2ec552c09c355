"""The inbox and outbox on both backends (`any_storage`, `store_factory`); the migrations
test is SQLite's (PostgreSQL's are in tests/bot/test_postgres_backend.py)."""

from __future__ import annotations

import asyncio

from bot.storage import MIGRATIONS
from bot.store import StorageInterface
from bot.store.postgres.migrations import POSTGRES_MIGRATIONS
from tests.stores import StoreFactory


async def test_migrations_run_once_and_survive_reopen(store_factory: StoreFactory) -> None:
    migrations = MIGRATIONS if store_factory.backend == "sqlite" else POSTGRES_MIGRATIONS
    storage = await store_factory.open()
    assert await storage.schema_version() == len(migrations)
    await storage.set_opted_in("101", True)
    await storage.close()
    reopened = await store_factory.open()
    assert await reopened.schema_version() == len(migrations)
    assert (await reopened.user_settings("101")).opted_in
    await reopened.close()


async def test_inbox_keeps_one_row_per_uuid(any_storage: StorageInterface) -> None:
    storage = any_storage
    assert await storage.add_to_inbox("u-1", "post.added", {"a": 1})
    assert not await storage.add_to_inbox("u-1", "post.added", {"a": 2})
    due = await storage.due_inbox(10)
    assert [(i.uuid, i.payload) for i in due] == [("u-1", {"a": 1})]
    await storage.finish_inbox(due[0].id, "done")
    assert await storage.due_inbox(10) == []
    assert await storage.inbox_counts() == {"done": 1}
    await storage.close()


async def test_outbox_dedupes_and_tracks_failures(any_storage: StorageInterface) -> None:
    storage = any_storage
    destination = {"kind": "direct", "extensionId": "7"}
    assert await storage.enqueue("k1", destination, {"kind": "text", "text": "hi"})
    assert not await storage.enqueue("k1", destination, {"kind": "text", "text": "hi again"})
    [item] = await storage.due_outbox(10)
    await storage.retry_outbox_later(item.id, 3600, "500 from RingCentral")
    assert await storage.due_outbox(10) == []
    await storage.mark_failed(item.id, "gave up")
    assert await storage.outbox_counts() == {"failed": 1}
    await storage.close()


async def test_text_with_sql_and_quotes_is_stored_verbatim(any_storage: StorageInterface) -> None:
    storage = any_storage
    nasty = "'); DROP TABLE inbox; -- \" \\ ${x} {{y}}"
    await storage.add_to_inbox(nasty, "other", {"text": nasty})
    [item] = await storage.due_inbox(10)
    assert item.uuid == nasty and item.payload == {"text": nasty}
    await storage.close()


async def test_concurrent_inbox_writes_keep_exactly_one_row_per_uuid(
    any_storage: StorageInterface,
) -> None:
    storage = any_storage
    uuids = [f"u-{n % 300}" for n in range(1200)]  # every uuid four times, interleaved
    results = await asyncio.gather(*(storage.add_to_inbox(u, "other", {"n": u}) for u in uuids))
    firsts = [u for u, stored in zip(uuids, results, strict=True) if stored]
    assert sorted(firsts) == sorted(set(uuids))
    assert len(await storage.due_inbox(10_000)) == 300
    await storage.close()
