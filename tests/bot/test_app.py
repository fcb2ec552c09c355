"""The running bot: subscriptions on startup and restart, health, restart durability."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bot.app import SERVICES, create_app, start_subscriptions
from bot.runner import start_bot
from bot.storage import Storage
from tests.e2e import STATUS_TOKEN, Stack, bot_config, bot_status, settle, sqlite_only


async def sandbox_subscriptions(stack: Stack) -> list[dict[str, object]]:
    body = await stack.control.call("GET", "/subscriptions")
    return list(body["records"] if isinstance(body, dict) else body)


async def creates(stack: Stack) -> int:
    return len(
        [
            r
            for r in await stack.control.requests()
            if r["method"] == "POST" and r["path"] == "/restapi/v1.0/subscription"
        ]
    )


async def test_startup_subscribes_both_identities(stack: Stack) -> None:
    subscriptions = [s for s in await sandbox_subscriptions(stack) if s.get("status") == "Active"]
    filters = sorted(f for s in subscriptions for f in s["eventFilters"])  # type: ignore[attr-defined]
    assert any("/team-messaging/v1/posts" in f for f in filters)
    assert any("/domains/pbx/insights" in f for f in filters)
    assert await creates(stack) == 2


async def test_a_restart_reuses_the_subscriptions(stack: Stack) -> None:
    await stack.restart_bot()
    assert await creates(stack) == 2
    active = [s for s in await sandbox_subscriptions(stack) if s.get("status") == "Active"]
    assert len(active) == 2


async def test_a_new_verification_token_replaces_the_subscriptions(stack: Stack) -> None:
    await stack.restart_bot(verification_token="a-brand-new-token-123")
    assert await creates(stack) == 4
    active = [s for s in await sandbox_subscriptions(stack) if s.get("status") == "Active"]
    assert len(active) == 2
    # and the replacement works: the bot still hears its users
    user = await stack.control.user("Kim Park")
    chat = await stack.control.chat([user, stack.bot_id])
    await stack.control.say(chat, user, "help")
    await settle(stack.bot)
    assert await stack.control.texts(chat, stack.bot_id)


async def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        return response.status, await response.text()


async def test_status_reports_subscriptions_and_queues_to_the_token_holder(stack: Stack) -> None:
    health = await bot_status(stack.bot)
    assert health["status"] == "ready"
    assert health["subscriptions"][f"bot:{stack.bot_id}"]["healthy"] is True
    assert health["subscriptions"]["service"]["healthy"] is True
    assert health["installs"] == {stack.bot_id: "809640001"}
    assert "inbox" in health and "outbox" in health


# SQLite only: what it proves is counted in SQLite's own virtual-machine steps (its progress
# handler) on the bot's own connection.
@sqlite_only
async def test_status_counts_what_waits_or_failed_and_never_reads_the_history(
    stack: Stack,
) -> None:
    """`/status` shows the queues' pending and failed rows, each counted up to a bound;
    what was handled or sent long ago (the history, as large as the database) is not read,
    so the answer costs the same with a hundred rows stored or a million."""
    storage = stack.bot.app[SERVICES].storage
    rows = [(f"old-{n}", "post.added", "{}", 0.0, "done") for n in range(3000)]
    rows += [(f"waits-{n}", "post.added", "{}", 0.0, "pending") for n in range(2)]
    await storage._db.executemany(
        "INSERT INTO inbox (uuid, kind, payload, received_at, status, next_attempt_at) "
        "VALUES (?, ?, ?, ?, ?, 9e9)",
        rows,
    )
    await storage._db.execute(
        "INSERT INTO outbox (dedupe_key, destination, message, created_at, status) "
        "VALUES ('k', '{}', '{}', 0, 'failed')"
    )
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    await storage._db.set_progress_handler(count, 100)
    try:
        health = await bot_status(stack.bot)
    finally:
        await storage._db.set_progress_handler(None, 100)
    assert health["inbox"]["pending"] == 2 and health["inbox"]["failed"] == 0
    assert health["outbox"]["failed"] == 1
    assert "done" not in health["inbox"]
    assert steps < 30, steps  # 3,000 finished rows counted would take about 300


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer wrong-token-0123456789",
        f"Bearer {STATUS_TOKEN}x",
        f"Basic {STATUS_TOKEN}",
        STATUS_TOKEN,
        "Bearer ",
    ],
)
async def test_status_without_the_right_token_tells_nothing(
    stack: Stack, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else None
    status, text = await get(f"{stack.bot.url}/status", headers)
    assert status == 401
    assert stack.bot_id not in text and "809640001" not in text
    assert "subscriptions" not in text


async def test_the_public_probes_say_one_word(stack: Stack) -> None:
    assert await get(f"{stack.bot.url}/livez") == (200, "ok")
    assert await get(f"{stack.bot.url}/readyz") == (200, "ready")
    # the old detailed endpoint is gone
    status, text = await get(f"{stack.bot.url}/healthz")
    assert status == 404
    assert stack.bot_id not in text


async def test_readyz_says_unready_until_the_subscriptions_exist(
    stack: Stack, tmp_path: Path
) -> None:
    config = bot_config(stack.sandbox.url, tmp_path / "starting.sqlite3")
    app = create_app(config)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, config.host, config.port).start()
        url = f"http://{config.host}:{config.port}"
        assert await get(f"{url}/livez") == (200, "ok")
        assert await get(f"{url}/readyz") == (503, "unready")
        await start_subscriptions(app)
        assert await get(f"{url}/readyz") == (200, "ready")
    finally:
        await runner.cleanup()


async def test_readyz_says_unready_when_the_database_is_gone(stack: Stack, tmp_path: Path) -> None:
    services = stack.bot.app[SERVICES]
    # A database that no longer answers (closed), in place of the bot's own; the real one
    # stays open, so nothing waits on its lock when it comes back.
    gone = await Storage.open(tmp_path / "gone.sqlite3", stack.config.token_cipher())
    await gone.close()
    real, services.storage = services.storage, gone
    try:
        assert await get(f"{stack.bot.url}/readyz") == (503, "unready")
    finally:
        services.storage = real
    assert (await get(f"{stack.bot.url}/readyz"))[0] == 200


async def test_without_a_status_token_there_is_no_status_endpoint(
    stack: Stack, tmp_path: Path
) -> None:
    await stack.bot.stop()
    config = bot_config(stack.sandbox.url, tmp_path / "other.sqlite3")
    config = replace(config, status_token="")
    bot = await start_bot(config)
    try:
        status, _ = await get(f"{bot.url}/status", {"Authorization": "Bearer "})
        assert status == 404
        assert (await get(f"{bot.url}/readyz"))[0] == 200
    finally:
        await bot.stop()
    stack.bot = await start_bot(stack.config)


async def test_work_stored_before_a_stop_is_done_after_the_restart(stack: Stack) -> None:
    user = await stack.control.user("Kim Park")
    chat = await stack.control.chat([user, stack.bot_id])
    await stack.control.say(chat, user, "optin")
    await settle(stack.bot)
    # Stop the workers without draining, as a crash would, with a notification in the inbox.
    from bot.app import INBOX_WORKER

    await stack.bot.app[INBOX_WORKER].stop(drain_timeout_s=0)
    await stack.control.call("POST", "/calls", {"ownerExtensionId": user})
    assert await stack.control.cards(chat) == []
    await stack.restart_bot()
    await settle(stack.bot)
    assert len(await stack.control.cards(chat)) == 1
