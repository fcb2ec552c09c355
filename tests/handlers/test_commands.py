"""Commands as a person types them, through the sandbox."""

from __future__ import annotations

from tests.e2e import Stack, settle


async def test_help_lists_the_commands(stack: Stack) -> None:
    user = await stack.control.user("Kim Park")
    chat = await stack.control.chat([user, stack.bot_id])
    await stack.control.say(chat, user, "HELP")
    await settle(stack.bot)
    [reply] = await stack.control.texts(chat, stack.bot_id)
    for command in ("help", "optin", "optout"):
        assert f"**{command}" in reply


async def test_optin_twice_says_so(stack: Stack) -> None:
    user = await stack.control.user("Kim Park")
    chat = await stack.control.chat([user, stack.bot_id])
    await stack.control.say(chat, user, "optin")
    await stack.control.say(chat, user, "opt-in")
    await settle(stack.bot)
    first, second = await stack.control.texts(chat, stack.bot_id)
    assert "You're in" in first
    assert "already opted in" in second


async def test_a_typo_gets_a_suggestion(stack: Stack) -> None:
    user = await stack.control.user("Kim Park")
    chat = await stack.control.chat([user, stack.bot_id])
    await stack.control.say(chat, user, "optn")
    await settle(stack.bot)
    [reply] = await stack.control.texts(chat, stack.bot_id)
    assert "Did you mean **optin**?" in reply


async def test_in_a_group_the_bot_answers_only_when_mentioned(stack: Stack) -> None:
    kim = await stack.control.user("Kim Park")
    sam = await stack.control.user("Sam Chen")
    group = await stack.control.chat([kim, sam, stack.bot_id], "Group", name="Sales")
    await stack.control.say(group, kim, "help")
    await settle(stack.bot)
    assert await stack.control.texts(group, stack.bot_id) == []
    await stack.control.say(group, kim, f"![:Person]({stack.bot_id}) help")
    await settle(stack.bot)
    [reply] = await stack.control.texts(group, stack.bot_id)
    assert "**optin" in reply
