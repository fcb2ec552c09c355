"""RingSense cards name a colleague whose `speakerInfo` has an extension but no name, from
the account's extension directory; nobody else is named that way (issue 10)."""

from __future__ import annotations

import copy
from typing import Any

from bot.cards import card_as_text
from sandbox import defaults
from tests.conftest import load_fixture
from tests.e2e import Stack, settle

STEP = "Write a developer guide for the API."


async def _digest_with_unnamed_tracy(stack: Stack, tracy_account: str | None) -> str:
    """The real pbx event, owned by John Smith of our account; Tracy Debolah (the owner of
    its next step) is an extension of our directory, but RingSense gives her no name."""
    event: dict[str, Any] = copy.deepcopy(load_fixture("ringsense-event-pbx.json"))
    owner = event["body"]["ownerExtensionId"]
    await stack.control.user("John Smith", extensionId=owner)
    tracy = await stack.control.user("Tracy Debolah")
    john_info, tracy_info = event["body"]["speakerInfo"]
    john_info["accountId"] = defaults.ACCOUNT_ID
    tracy_info.update(name="", extensionId=tracy, accountId=tracy_account)
    chat = await stack.control.chat([owner, stack.bot_id])
    await stack.control.say(chat, owner, "optin")
    await settle(stack.bot)
    await stack.control.call("POST", "/calls", {"event": event})
    await settle(stack.bot)
    [card_post] = await stack.control.cards(chat)
    return card_as_text(card_post["card"])


async def test_a_colleague_without_a_name_is_named_from_the_directory(stack: Stack) -> None:
    text = await _digest_with_unnamed_tracy(stack, defaults.ACCOUNT_ID)
    assert f"Tracy Debolah · {STEP}" in text
    assert "With John Smith, Tracy Debolah" in text


async def test_an_extension_not_confirmed_of_the_account_is_not_named(stack: Stack) -> None:
    """RingSense does not say Tracy is of the call's account (accountId null): the same
    extension id in our directory is no proof it is her, so no name is put on her words."""
    text = await _digest_with_unnamed_tracy(stack, None)
    body = text.split("\n", 1)[1]  # after RingSense's own title ("Call from ... to ...")
    assert "Tracy Debolah" not in body
    assert "With John Smith, Unknown participant (external)" in body
    assert STEP in body
