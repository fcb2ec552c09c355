"""Text the bot repeats from others (command words, chat names, call titles, what was said)
is shown, never acted on: no mention notifies anyone, no link appears, no markup applies.

The sandbox lists the mentions RingCentral would find in each post the bot makes, so "nobody
was mentioned" is what a person in the chat would notice.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from tests.e2e import Stack, settle

# Markdown RingCentral acts on: mentions, links, emphasis, code.
MENTION = re.compile(r"!\[:(?:Person|Team)\]\(")
LINK = re.compile(r"\[[^\]]*\]\([^)]*\)")
EMPHASIS = re.compile(r"\*\*[^*]+\*\*")


def hostile(victim: str, team: str) -> str:
    return f"![:Person]({victim}) ![:Team]({team}) [click](https://evil.example) **bold**"


def assert_inert(text: str) -> None:
    assert not MENTION.search(text), text
    assert not LINK.search(text), text
    assert "**bold**" not in text and "`" not in text.replace("`s-…`", ""), text


async def bot_posts(stack: Stack, chat: str) -> list[Mapping[str, Any]]:
    return [
        p
        for p in await stack.control.posts(chat)
        if str(p.get("creatorId")) == stack.bot_id and p.get("type") != "Card"
    ]


def card_texts(node: object) -> Iterator[str]:
    """Every text a card shows (and its fallbackText)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str) and key in ("text", "title", "value", "fallbackText"):
                yield value
            elif key != "data":
                yield from card_texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from card_texts(item)


async def test_an_unknown_command_is_repeated_without_mentioning_anyone(stack: Stack) -> None:
    victim = await stack.control.user("Vic Tim")
    user = await stack.control.user("Kim Park")
    chat = await stack.control.chat([user, stack.bot_id])
    team = await stack.control.chat([user, victim, stack.bot_id], "Team", name="Everyone here")
    await stack.control.say(chat, user, hostile(victim, team))
    await settle(stack.bot)
    [reply] = await bot_posts(stack, chat)
    assert reply.get("mentions") in (None, [])
    assert "I don't know" in reply["text"]
    assert f"\uff3b:Person\uff3d({victim})" in reply["text"]  # shown, in look-alike brackets
    assert_inert(reply["text"])


async def test_chat_names_in_channel_and_status_replies_stay_text(stack: Stack) -> None:
    victim = await stack.control.user("Vic Tim")
    user = await stack.control.user("Kim Park")
    dm = await stack.control.chat([user, stack.bot_id])
    name = hostile(victim, "1")
    group = await stack.control.chat([user, victim, stack.bot_id], "Team", name=name)
    await stack.control.say(dm, user, "optin")
    await stack.control.say(group, user, f"![:Person]({stack.bot_id}) channel add")
    await settle(stack.bot)
    await stack.control.say(dm, user, "channel")
    await stack.control.say(dm, user, "status")
    await settle(stack.bot)
    replies = await bot_posts(stack, dm)
    listing = next(r["text"] for r in replies if "Your digest channels" in r["text"])
    status = next(r["text"] for r in replies if "Delivered to" in r["text"])
    for text in (listing, status):
        assert "\uff3bclick\uff3d(https://evil.example)" in text  # the name, shown
        assert_inert(text.replace("**", ""))  # our own bold labels aside
        assert "![:Person]" not in text
    assert all(r.get("mentions") in (None, []) for r in replies)
    for post in await bot_posts(stack, group):
        assert post.get("mentions") in (None, [])


async def test_a_digest_shows_call_text_and_names_without_markup(stack: Stack) -> None:
    victim = await stack.control.user("Vic Tim")
    owner = await stack.control.user("Alex Rivera")
    dm = await stack.control.chat([owner, stack.bot_id])
    await stack.control.say(dm, owner, "optin")
    await settle(stack.bot)
    said = hostile(victim, "1")
    await stack.control.call(
        "POST",
        "/calls",
        {
            "ownerExtensionId": owner,
            "participants": [{"name": "[click](https://evil.example)", "phoneNumber": "+1"}],
            "insights": {"Summary": [{"value": said, "start": 0, "end": 1}]},
        },
    )
    await settle(stack.bot)
    [card] = await stack.control.cards(dm)
    texts = list(card_texts(card["card"]))
    assert any("\uff3bclick\uff3d(https://evil.example)" in t for t in texts)
    assert any("\u2217\u2217bold\u2217\u2217" in t for t in texts)
    for text in texts:
        assert_inert(text)
    fallback = card["card"]["fallbackText"]
    assert_inert(fallback)
    assert "**" not in fallback
