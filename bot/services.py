"""The long-lived things a handler may use, gathered in one object owned by the app."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from bot.cards import CardRenderer
from bot.config import Config
from bot.rc import RingCentralClient
from bot.storage import Storage

DIRECT_CHAT_TYPES = frozenset({"Direct", "Personal", "PrivateChat", "PersonalChat"})


@dataclass
class Services:
    config: Config
    storage: Storage
    bot_api: RingCentralClient
    service_api: RingCentralClient
    cards: CardRenderer
    bot_extension_id: str = ""
    wake_outbox: Callable[[], None] = lambda: None
    _chat_types: dict[str, str] = field(default_factory=dict, repr=False)

    async def is_direct_chat(self, chat_id: str) -> bool:
        """Whether a chat is a one-to-one conversation (every message there is a command)."""
        chat_type = self._chat_types.get(chat_id)
        if chat_type is None:
            chat = await self.bot_api.get_chat(chat_id)
            chat_type = str(chat.get("type", ""))
            self._chat_types[chat_id] = chat_type
        return chat_type in DIRECT_CHAT_TYPES

    def remember_chat_type(self, chat_id: str, chat_type: str) -> None:
        self._chat_types[chat_id] = chat_type
