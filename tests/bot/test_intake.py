"""Intake (issue 12): the webhook's inbox insert has its own batched writer, the body is
stored as received, and committed work reaches the workers in memory."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot import workers
from bot.app import SERVICES
from bot.storage import Storage
from bot.webhooks import NotificationEndpoint
from tests.e2e import Stack, eventually, settle, sqlite_only

TOKEN = "expected-verification-token"


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[Storage]:
    storage = await Storage.open(tmp_path / "bot.sqlite3")
    yield storage
    await storage.close()


@pytest.fixture
async def client(aiohttp_client: Any, storage: Storage) -> TestClient[Any, Any]:
    app = web.Application()
    endpoint = NotificationEndpoint(storage, TOKEN, 1024 * 1024)
    app.router.add_post("/webhooks/ringcentral", endpoint.handle)
    client: TestClient[Any, Any] = await aiohttp_client(app)
    return client


def stored_payloads(database: Path) -> list[str]:
    """What is in the inbox, read by a connection of its own (as after a crash)."""
    db = sqlite3.connect(database)
    try:
        return [row[0] for row in db.execute("SELECT payload FROM inbox ORDER BY id")]
    finally:
        db.close()


async def test_the_body_is_stored_exactly_as_received(
    client: TestClient[Any, Any], tmp_path: Path
) -> None:
    # Spacing, key order, escapes and a number as RingCentral wrote them: kept, not re-encoded.
    body = (
        '{ "body": {"eventType": "PostAdded", "text": "caf\\u00e9 \\ud83d\\ude00 ok",'
        ' "groupId": "7", "creatorId": 8, "id": "9", "type": "TextMessage"},\n'
        '  "uuid": "u-raw-1", "event": "/team-messaging/v1/posts",'
        ' "timestamp": "2026-11-30T12:00:00.000Z", "subscriptionId": "s-1", "ownerId": "5"}'
    )
    response = await client.post(
        "/webhooks/ringcentral",
        data=body.encode(),
        headers={"Verification-Token": TOKEN, "Content-Type": "application/json"},
    )
    assert response.status == 200
    assert stored_payloads(tmp_path / "bot.sqlite3") == [body]


@pytest.mark.parametrize(
    "body",
    [
        b'{"uuid": "u-1", "event": "/x", "body": {}',  # cut short
        b'{"uuid": "u-1", "event": "/x", "body": {"n": NaN}}',
        b'{"uuid": "u-1", "event": "/x", "body": {"t": "\\ud800"}}',
        b'{"uuid": "u-1", "event": "/x", "body": {"t": "\xff"}}',
        b'{"uuid": "u-1", "event": "/x", "body": ' + b"[" * 1100 + b"]" * 1100 + b"}",
        b'{"uuid": 5, "event": "/x", "body": {}}',
    ],
)
async def test_a_malformed_body_gets_400_and_is_not_stored(
    client: TestClient[Any, Any], tmp_path: Path, body: bytes
) -> None:
    response = await client.post(
        "/webhooks/ringcentral",
        data=body,
        headers={"Verification-Token": TOKEN, "Content-Type": "application/json"},
    )
    assert response.status == 400
    assert "error" in await response.json()
    assert stored_payloads(tmp_path / "bot.sqlite3") == []


async def test_an_ack_does_not_wait_behind_the_workers_statements(
    client: TestClient[Any, Any], storage: Storage, tmp_path: Path
) -> None:
    """While the workers' connection is busy with a long statement, a notification is
    still stored and answered 200: the 200 comes before that statement ends."""
    busy = asyncio.create_task(
        storage._db.execute_fetchall(
            "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 200000000)"
            " SELECT count(*) FROM n"
        )
    )
    await asyncio.sleep(0.2)  # the statement has started on the workers' connection
    try:
        event = {
            "uuid": "u-while-busy",
            "event": "/team-messaging/v1/posts",
            "body": {"eventType": "PostAdded", "text": "help"},
        }
        response = await client.post(
            "/webhooks/ringcentral", json=event, headers={"Verification-Token": TOKEN}
        )
        assert response.status == 200
        assert not busy.done(), "the answer waited for the workers' statement"
        assert [json.loads(p)["uuid"] for p in stored_payloads(tmp_path / "bot.sqlite3")] == [
            "u-while-busy"
        ]
    finally:
        await storage._db.interrupt()
        with pytest.raises(sqlite3.OperationalError):
            await busy


# SQLite only: watched through SQLite's statement trace on the bot's one connection (on
# PostgreSQL, replicas claim shared queues by design: tests/bot/test_queue_claims.py).
@sqlite_only
async def test_work_reaches_the_workers_without_polling_the_queues(stack: Stack) -> None:
    """After start-up, chat messages are answered without a single read of pending work
    from the inbox or the outbox: committed rows are handed to the workers in memory."""
    user = await stack.control.user("Kim Park")
    dm = await stack.control.chat([user, stack.bot_id])
    await settle(stack.bot)
    statements: list[str] = []
    storage = stack.bot.app[SERVICES].storage
    await storage._db.set_trace_callback(statements.append)
    try:
        for text in ("help", "status", "last"):
            await stack.control.say(dm, user, text)
        await eventually(lambda: _replied(stack, dm, 3), within_s=20)
    finally:
        await storage._db.set_trace_callback(None)
    polls = [
        s
        for s in statements
        if "FROM inbox" in s or ("FROM outbox" in s and "status = 'pending'" in s)
    ]
    assert polls == []
    assert any(s.startswith("UPDATE inbox SET status") for s in statements)  # the trace works


async def _replied(stack: Stack, chat: str, count: int) -> bool:
    return len(await _bot_posts(stack, chat)) >= count


async def _bot_posts(stack: Stack, chat: str) -> list[Any]:
    return [p for p in await stack.control.posts(chat) if str(p.get("creatorId")) == stack.bot_id]


async def test_work_beyond_what_is_held_in_memory_is_all_handled(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past `MAX_HELD` waiting items a worker keeps only their ids and reads them back:
    nothing is lost, every message is answered once."""
    monkeypatch.setattr(workers, "MAX_HELD", 1)
    await stack.control.call("POST", "/faults", {"limits": {"Medium": {"limit": 1000}}})
    users = [await stack.control.user(f"Person {n}") for n in range(6)]
    chats = [await stack.control.chat([user, stack.bot_id]) for user in users]
    await asyncio.gather(
        *(stack.control.say(chat, user, "help") for chat, user in zip(chats, users, strict=True))
    )
    await settle(stack.bot)
    answered = [len(await _bot_posts(stack, chat)) for chat in chats]
    assert answered == [1] * len(chats)


async def test_a_workers_write_succeeds_while_a_query_is_half_read_and_a_notification_lands(
    storage: Storage,
) -> None:
    """The storage's queries run on the workers' connection while other tasks' statements
    interleave with them. A notification committed by the inbox writer in between must not
    make the workers' next write fail with "database is locked"."""
    for n in range(3):
        assert await storage.add_to_inbox(f"u-{n}", "other", {"n": n})
    async with storage._db.execute("SELECT id FROM inbox ORDER BY id") as query:
        first = await query.fetchone()  # the way the storage reads: one row, then close
        assert await storage.add_to_inbox("u-3", "other", {"n": 3})
        await storage.set_state("worker-step", "done")  # another task's write
        rest = await query.fetchall()
    assert first is not None and len(rest) == 2
    assert await storage.state("worker-step") == "done"
    assert await storage.inbox_counts() == {"pending": 4}


async def test_a_chunked_body_is_stored_and_an_oversized_one_refused(
    aiohttp_client: Any, storage: Storage, tmp_path: Path
) -> None:
    """Without a Content-Length the body is read chunk by chunk and still limited: a
    notification sent chunked is stored as sent, one past the limit gets 413, not stored."""
    app = web.Application()
    app.router.add_post("/webhooks/ringcentral", NotificationEndpoint(storage, TOKEN, 4096).handle)
    client: TestClient[Any, Any] = await aiohttp_client(app)

    async def chunked(text: str) -> AsyncIterator[bytes]:
        for start in range(0, len(text), 100):
            yield text[start : start + 100].encode()

    def post(uuid: str, text: str) -> str:
        return json.dumps(
            {
                "uuid": uuid,
                "event": "/team-messaging/v1/posts",
                "body": {"eventType": "PostAdded", "text": text},
            }
        )

    small, large = post("u-chunked", "help"), post("u-too-large", "x" * 5000)
    headers = {"Verification-Token": TOKEN, "Content-Type": "application/json"}
    response = await client.post("/webhooks/ringcentral", data=chunked(small), headers=headers)
    assert response.status == 200
    response = await client.post("/webhooks/ringcentral", data=chunked(large), headers=headers)
    assert response.status == 413
    assert stored_payloads(tmp_path / "bot.sqlite3") == [small]


async def test_closing_the_storage_answers_and_keeps_every_notification_waiting(
    tmp_path: Path,
) -> None:
    """Notifications still waiting for the inbox writer when the bot stops are committed
    and their requests answered (stored), none lost; after that the writer refuses."""
    storage = await Storage.open(tmp_path / "bot.sqlite3")
    waiting = [
        asyncio.create_task(storage.add_to_inbox(f"u-stop-{n}", "other", {"n": n}))
        for n in range(300)
    ]
    await asyncio.sleep(0)  # every one of them is waiting for the writer now
    await storage.close()
    assert [task.result() for task in waiting] == [True] * 300
    stored = {json.loads(p)["n"] for p in stored_payloads(tmp_path / "bot.sqlite3")}
    assert stored == set(range(300))
    with pytest.raises(RuntimeError):
        await storage.add_to_inbox("u-after-stop", "other", {})
