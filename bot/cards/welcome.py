"""The welcome card: what the bot says when it joins a chat."""

from __future__ import annotations

from typing import Any, Final

from bot.cards.formatting import short_line
from bot.cards.render import CardRenderer

WELCOME_TEMPLATE: Final = "welcome.card.json.j2"


CHAT_KINDS: Final = ("direct", "group")
DEFAULT_BOT_NAME: Final = "the digest bot"


def welcome_view(*, bot_name: str, chat_kind: str) -> dict[str, Any]:
    """The values `welcome.card.json.j2` needs: the bot's name (shown literally) and whether
    the chat is a "direct" one (say `optin`) or a "group" (mention the bot: `channel add`)."""
    if chat_kind not in CHAT_KINDS:
        raise ValueError(f"chat_kind must be one of {CHAT_KINDS}, got {chat_kind!r}")
    name = bot_name if bot_name.strip() else DEFAULT_BOT_NAME
    return {
        "bot_name": name,
        "chat_kind": chat_kind,
        "fallback_text": f"{short_line(name)}: digests of your calls analysed by RingSense",
    }


def welcome_card(renderer: CardRenderer, *, bot_name: str, chat_kind: str) -> dict[str, Any]:
    """What the bot says when it joins a chat: what it does, how to start, `help`."""
    return renderer.render(WELCOME_TEMPLATE, **welcome_view(bot_name=bot_name, chat_kind=chat_kind))
