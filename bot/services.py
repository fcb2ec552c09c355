"""The long-lived things a handler may use, gathered in one object owned by the app."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.cards import CardRenderer
from bot.config import Config
from bot.rc import RingCentralClient
from bot.reply_limits import ReplyLimits
from bot.storage import AiJob, Storage

DIRECT_CHAT_TYPES = frozenset({"Direct", "Personal", "PrivateChat", "PersonalChat"})


class RingCXTranscripts(Protocol):
    async def transcript(self, dialog_id: str, segment_id: str) -> Mapping[str, Any]: ...


@dataclass
class BotInstall:
    """The bot as installed in one RingCentral account: its extension and its API client."""

    extension_id: str
    account_id: str
    api: RingCentralClient
    name: str = ""
    source: str = "environment"


@dataclass
class Services:
    config: Config
    storage: Storage
    service_api: RingCentralClient
    cards: CardRenderer
    service_account_id: str = ""
    installs: dict[str, BotInstall] = field(default_factory=dict)
    wake_outbox: Callable[[], None] = lambda: None
    remove_install: Callable[[str], Awaitable[None]] | None = None
    renew_subscription: Callable[[str], Awaitable[None]] | None = None
    check_ai_job: Callable[[AiJob], Awaitable[str]] | None = None
    ringcx: RingCXTranscripts | None = None
    subscription_health: Callable[[], Mapping[str, Mapping[str, object]]] = dict
    reply_limits: ReplyLimits = field(default_factory=ReplyLimits)
    _chat_types: dict[str, str] = field(default_factory=dict, repr=False)

    def install_for_bot(self, extension_id: str | None) -> BotInstall | None:
        return self.installs.get(extension_id) if extension_id else None

    def install_for_account(self, account_id: str | None) -> BotInstall | None:
        for install in self.installs.values():
            if install.account_id == account_id:
                return install
        return None

    async def is_direct_chat(self, install: BotInstall, chat_id: str) -> bool:
        """Whether a chat is a one-to-one conversation (every message there is a command)."""
        chat_type = self._chat_types.get(chat_id)
        if chat_type is None:
            chat = await install.api.get_chat(chat_id)
            chat_type = str(chat.get("type", ""))
            self._chat_types[chat_id] = chat_type
        return chat_type in DIRECT_CHAT_TYPES

    def remember_chat_type(self, chat_id: str, chat_type: str) -> None:
        self._chat_types[chat_id] = chat_type

    async def chat_info(self, install: BotInstall, chat_id: str) -> Mapping[str, object]:
        """The chat as RingCentral has it now (members change, so this is not cached)."""
        info = await install.api.get_chat(chat_id)
        self._chat_types[chat_id] = str(info.get("type", ""))
        return info

    async def chat_member_ids(self, install: BotInstall, chat_id: str) -> set[str]:
        """The people in a chat, without the bot itself."""
        info = await self.chat_info(install, chat_id)
        members = info.get("members")
        ids: set[str] = set()
        if isinstance(members, list):
            for member in members:
                member_id = member.get("id") if isinstance(member, dict) else member
                if member_id is not None:
                    ids.add(str(member_id))
        ids.discard(install.extension_id)
        return ids
