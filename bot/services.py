"""The long-lived things a handler may use, gathered in one object owned by the app."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from bot.access import Identity
from bot.cards import CardRenderer
from bot.config import Config
from bot.crypto import TokenCipher
from bot.rc import RingCentralClient, RingCentralNotFound, RingCentralPermissionError
from bot.reply_limits import ReplyLimits
from bot.speakers import SpeakerDirectory
from bot.storage import AiJob, StorageInterface

DIRECT_CHAT_TYPES = frozenset({"Direct", "Personal", "PrivateChat", "PersonalChat"})

PERSON_ACCOUNT_TTL_S = 300.0
"""How long a person's confirmed account is reused before RingCentral is asked again."""

CHAT_MEMBERS_TTL_S = 60.0
"""How long a chat's members are reused when checking that a digest may still go there."""


class RingCXTranscripts(Protocol):
    async def transcript(self, dialog_id: str, segment_id: str) -> Mapping[str, Any]: ...

    async def interaction_metadata(self, window_start: datetime, interval_s: int) -> list[Any]:
        """The segments that ended in [window_start, +interval_s)."""
        ...


@dataclass
class BotInstall:
    """The bot as installed in one RingCentral account: its extension and its API client."""

    extension_id: str
    account_id: str
    api: RingCentralClient
    name: str = ""
    source: str = "environment"


@dataclass
class RingSenseReader:
    """The identity that reads one account's RingSense: an admin-approved user of it."""

    account_id: str
    owner_extension_id: str
    api: RingCentralClient


class RingSenseConnector(Protocol):
    """What the `connect` / `disconnect` commands need (bot/connections.py implements it)."""

    @property
    def can_connect(self) -> bool: ...

    async def create_link(self, account_id: str, admin_extension_id: str) -> str: ...

    async def disconnect(self, account_id: str, *, revoke: bool = True) -> bool: ...


@dataclass
class Services:
    config: Config
    storage: StorageInterface
    service_api: RingCentralClient
    cards: CardRenderer
    # Encrypts secrets before they are stored (`cipher.encrypt`/`cipher.decrypt`).
    cipher: TokenCipher
    service_account_id: str = ""
    service_extension_id: str = ""
    ringsense_readers: dict[str, RingSenseReader] = field(default_factory=dict)
    connector: RingSenseConnector | None = None
    installs: dict[str, BotInstall] = field(default_factory=dict)
    wake_outbox: Callable[[], None] = lambda: None
    remove_install: Callable[[str], Awaitable[None]] | None = None
    reload_installs: Callable[[], Awaitable[None]] | None = None
    """With several replicas: read the installs and RingSense connections another replica
    took since, before an event is dropped for belonging to no known install."""
    renew_subscription: Callable[[str], Awaitable[None]] | None = None
    check_ai_job: Callable[[AiJob], Awaitable[str]] | None = None
    ringcx: RingCXTranscripts | None = None
    ringcx_health: Callable[[], Awaitable[Mapping[str, str]]] | None = None
    """RingCX token, metadata position and last error, for administrators' `status`."""
    subscription_health: Callable[[], Mapping[str, Mapping[str, object]]] = dict
    reply_limits: ReplyLimits = field(default_factory=ReplyLimits)
    speaker_directory: SpeakerDirectory = field(default_factory=SpeakerDirectory)
    """Extension names and voice enrollments, cached: who a speaker is (bot.speakers)."""
    _chat_types: dict[str, str] = field(default_factory=dict, repr=False)
    _person_accounts: dict[tuple[str, str], tuple[float, str | None]] = field(
        default_factory=dict, repr=False
    )
    _chat_members: dict[tuple[str, str], tuple[float, frozenset[str]]] = field(
        default_factory=dict, repr=False
    )

    def ringsense_api(self, account_id: str | None) -> RingCentralClient | None:
        """The identity that may read this account's RingSense, or None (not connected).

        The service user reads only its own account; any other account only through the
        user its admin connected. Never another account's identity.
        """
        if not account_id:
            return None
        if account_id == self.service_account_id:
            return self.service_api
        reader = self.ringsense_readers.get(account_id)
        return reader.api if reader is not None else None

    def ringsense_account_of_subscriber(self, owner_id: str | None) -> str | None:
        """Whose RingSense a notification is, from the subscriber it came to (`ownerId`)."""
        if not owner_id:
            return None
        if owner_id == self.service_extension_id and self.service_account_id:
            return self.service_account_id
        for reader in self.ringsense_readers.values():
            if reader.owner_extension_id == owner_id:
                return reader.account_id
        return None

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

    async def person_account(self, install: BotInstall, person_id: str) -> str | None:
        """The account RingCentral says a person belongs to (`companyId`), as seen by this
        install's bot; None when the bot cannot see them. Cached for a few minutes."""
        key = (install.extension_id, person_id)
        cached = self._person_accounts.get(key)
        now = time.monotonic()
        if cached is not None and now - cached[0] < PERSON_ACCOUNT_TTL_S:
            return cached[1]
        try:
            person = await install.api.get_person(person_id)
        except (RingCentralNotFound, RingCentralPermissionError):
            account: str | None = None
        else:
            company = person.get("companyId")
            same_person = str(person.get("id", person_id)) == person_id
            account = str(company) if company not in (None, "") and same_person else None
        self._person_accounts[key] = (now, account)
        return account

    async def identity_of(self, install: BotInstall, person_id: str | None) -> Identity | None:
        """A person as (account, extension) when they are confirmed to be of the install's
        account; anyone else (another company, a guest, unknown) has no identity here."""
        if not person_id or person_id == install.extension_id:
            return None
        account = await self.person_account(install, person_id)
        if account is None or account != install.account_id:
            return None
        return Identity(install.account_id, person_id)

    async def recent_chat_member_ids(self, install: BotInstall, chat_id: str) -> frozenset[str]:
        """A chat's members (without the bot) as of at most a minute ago: enough to check
        before each delivery that the people it is meant for are still there."""
        key = (install.extension_id, chat_id)
        cached = self._chat_members.get(key)
        now = time.monotonic()
        if cached is not None and now - cached[0] < CHAT_MEMBERS_TTL_S:
            return cached[1]
        members = frozenset(await self.chat_member_ids(install, chat_id))
        self._chat_members[key] = (now, members)
        return members
