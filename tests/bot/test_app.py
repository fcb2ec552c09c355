"""The running bot: subscriptions on startup and restart, health, restart durability."""

from __future__ import annotations

import aiohttp

from tests.e2e import Stack, settle


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


async def test_healthz_reports_subscriptions_and_queues(stack: Stack) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{stack.bot.url}/healthz") as response:
            assert response.status == 200
            health = await response.json()
    assert health["subscriptions"][f"bot:{stack.bot_id}"]["healthy"] is True
    assert health["subscriptions"]["service"]["healthy"] is True
    assert health["installs"] == {stack.bot_id: "809640001"}
    assert "inbox" in health and "outbox" in health


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
