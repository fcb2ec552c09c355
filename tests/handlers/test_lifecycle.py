"""Install, removal, and joining chats, through the sandbox."""

from __future__ import annotations

import logging

import pytest

from bot.cards import card_as_text
from tests.e2e import Stack, bot_status, eventually, settle


async def health(stack: Stack) -> dict[str, object]:
    return await bot_status(stack.bot)


async def test_added_to_a_group_the_bot_says_what_it_does(stack: Stack) -> None:
    kim = await stack.control.user("Kim Park")
    sam = await stack.control.user("Sam Chen")
    group = await stack.control.chat([kim, sam, stack.bot_id], "Team", name="Sales")
    await settle(stack.bot)
    [welcome] = await stack.control.cards(group)
    text = card_as_text(welcome["card"])
    assert "channel add" in text and "help" in text


async def install(stack: Stack, mode: str) -> dict[str, str]:
    account = await stack.control.call("POST", "/accounts", {"name": f"{mode} customer"})
    installed: dict[str, str] = await stack.control.install_bot(account["accountId"], mode)
    await settle(stack.bot)
    return installed


async def test_a_private_install_in_another_account_works_on_its_own(stack: Stack) -> None:
    bot = await install(stack, "private")
    assert (await health(stack))["installs"] == {  # type: ignore[comparison-overlap]
        stack.bot_id: "809640001",
        bot["extensionId"]: bot["accountId"],
    }
    user = await stack.control.user("Bea Other", accountId=bot["accountId"])
    dm = await stack.control.chat([user, bot["extensionId"]])
    await stack.control.say(dm, user, "optin")
    await settle(stack.bot)
    [reply] = await stack.control.texts(dm, bot["extensionId"])
    assert "You're in" in reply
    # the first account's bot said nothing there
    assert await stack.control.texts(dm, stack.bot_id) == []


async def test_a_public_install_exchanges_its_code(stack: Stack) -> None:
    bot = await install(stack, "public")
    assert bot["extensionId"] in (await health(stack))["installs"]  # type: ignore[operator]
    exchanges = [
        r
        for r in await stack.control.requests()
        if r["path"] == "/restapi/oauth/token" and r["status"] == 200
    ]
    assert exchanges


async def test_removal_deletes_subscriptions_and_data(stack: Stack) -> None:
    bot = await install(stack, "private")
    user = await stack.control.user("Bea Other", accountId=bot["accountId"])
    dm = await stack.control.chat([user, bot["extensionId"]])
    await stack.control.say(dm, user, "optin")
    await settle(stack.bot)
    await stack.control.call("DELETE", f"/bots/{bot['extensionId']}")
    await settle(stack.bot)

    async def removed() -> dict[str, object] | None:
        # The Delete event may be handled before the platform has deleted the extension;
        # the bot then reads it back again a moment later before forgetting anything.
        await settle(stack.bot)
        state = await health(stack)
        return state if bot["extensionId"] not in state["installs"] else None  # type: ignore[operator]

    state = await eventually(removed)
    assert bot["extensionId"] not in state["installs"]  # type: ignore[operator]
    assert f"bot:{bot['extensionId']}" not in state["subscriptions"]  # type: ignore[operator]
    services = stack.bot.app
    from bot.app import SERVICES

    settings = await services[SERVICES].storage.user_settings(user)
    assert not settings.opted_in
    # the home account is untouched
    assert stack.bot_id in state["installs"]  # type: ignore[operator]


async def test_the_install_events_are_taken_quietly(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    """A new bot hears of its own install (extension Create, GroupJoined for its personal
    chat): no welcome card in a chat with itself, no error.

    The platform sends those events on their own after the bot's first subscription (the
    sandbox in the background, once the subscription is listed): the test waits until the
    bot has answered both before it looks, or it would look at a chat the bot has not yet
    heard of (it did, often on PostgreSQL, where the bot answers after its commit)."""
    caplog.set_level(logging.WARNING)
    bot = await install(stack, "private")

    async def install_events_answered() -> set[str] | None:
        answered = {
            str(d["payload"]["body"].get("eventType"))
            for d in await stack.control.call("GET", "/deliveries")
            if str(d.get("payload", {}).get("ownerId")) == bot["extensionId"]
            and d.get("status") == 200
        }
        return answered if {"Create", "GroupJoined"} <= answered else None

    await eventually(install_events_answered)
    await settle(stack.bot)
    chats = await stack.control.call("GET", "/chats")
    records = chats["records"] if isinstance(chats, dict) else chats
    [personal] = [
        c for c in records if c["type"] == "Personal" and _member_ids(c) == [bot["extensionId"]]
    ]
    assert await stack.control.posts(personal["id"]) == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def _member_ids(chat: dict[str, object]) -> list[str]:
    members = chat.get("members")
    return [
        str(m["id"]) if isinstance(m, dict) else str(m)
        for m in (members if isinstance(members, list) else [])
    ]
