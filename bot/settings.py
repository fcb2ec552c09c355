"""A person's digest settings, and which calls they let through.

Defaults are the cautious ones: not opted in; once opted in, every section, every call,
delivered by direct message; calls with people outside the account are never posted to a
channel unless the owner turns that on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.cards import DIGEST_SECTIONS
from bot.ringsense import CallInsights

DIRECTIONS: Final = ("Inbound", "Outbound")

SCOPE_OWNED: Final = "owned"
"""Digests of the calls I own (the default)."""
SCOPE_ALL: Final = "all"
"""Digests of the calls I own or take part in (a colleague's call gets me my own copy)."""
DIGEST_SCOPES: Final = (SCOPE_OWNED, SCOPE_ALL)

DEFAULT_ROLLUP_TIME: Final = "17:00"
"""When the daily rollup comes on weekdays, in the person's time zone, unless they chose
another time or turned it off (None)."""


@dataclass(frozen=True)
class Channel:
    """A group chat or team where the owner asked for their digests too."""

    chat_id: str
    name: str
    enabled: bool = True


@dataclass(frozen=True)
class UserSettings:
    extension_id: str
    account_id: str | None = None
    opted_in: bool = False
    direct_messages: bool = True
    channels: tuple[Channel, ...] = ()
    sections: tuple[str, ...] = DIGEST_SECTIONS
    directions: frozenset[str] = field(default_factory=lambda: frozenset(DIRECTIONS))
    internal_calls: bool = True
    external_calls: bool = True
    min_duration_s: int = 0
    min_ai_score: float | None = None
    timezone: str | None = None
    external_to_channels: bool = False
    paused_until: datetime | None = None
    digest_scope: str = SCOPE_OWNED
    rollup_time: str | None = DEFAULT_ROLLUP_TIME

    def is_paused(self, now: datetime | None = None) -> bool:
        if self.paused_until is None:
            return False
        return (now or datetime.now(UTC)) < self.paused_until

    def exclusion_reason(self, insights: CallInsights) -> str | None:
        """Why this call gets no digest under these settings, or None if it does."""
        if not self.opted_in:
            return "not opted in"
        if self.is_paused():
            return "paused"
        if insights.call_direction in DIRECTIONS and insights.call_direction not in self.directions:
            return f"{insights.call_direction.lower()} calls are filtered out"
        if insights.is_external and not self.external_calls:
            return "calls with external participants are filtered out"
        if not insights.is_external and not self.internal_calls:
            return "internal calls are filtered out"
        duration_s = (insights.recording_duration_ms or 0) / 1000
        if self.min_duration_s and duration_s < self.min_duration_s:
            return "shorter than the minimum duration"
        if self.min_ai_score is not None and (
            insights.ai_score is None or insights.ai_score < self.min_ai_score
        ):
            return "AI score below the minimum"
        return None

    def wants_copy_as_participant(self, insights: CallInsights) -> bool:
        """Whether this person, not the owner, gets their own copy of this call's digest:
        they chose calls they take part in, they are a colleague of the call's account
        known to have spoken on it, and the call passes their own filters. Anything
        unknown (their account, the call's) means no."""
        if self.digest_scope != SCOPE_ALL or not self.direct_messages:
            return False
        if self.extension_id == insights.owner_extension_id:
            return False
        if self.account_id is None or self.account_id != insights.account_id:
            return False
        if self.extension_id not in insights.entitled_extension_ids():
            return False
        return self.exclusion_reason(insights) is None

    def zone(self, default: ZoneInfo) -> ZoneInfo:
        """The time zone for this person's dates (the default when unset or unknown)."""
        if self.timezone:
            try:
                return ZoneInfo(self.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                return default
        return default

    def enabled_channels(self) -> tuple[Channel, ...]:
        return tuple(c for c in self.channels if c.enabled)

    def digest_destination_keys(self, insights: CallInsights) -> list[str]:
        """Where this call's digest goes under these settings (`direct:…`, `chat:…`), as
        `handlers.digests.deliver_digest` sends it; empty when the call gets no digest."""
        if self.exclusion_reason(insights) is not None:
            return []
        keys = [f"direct:{insights.owner_extension_id}"] if self.direct_messages else []
        if not insights.is_external or self.external_to_channels:
            keys.extend(f"chat:{c.chat_id}" for c in self.enabled_channels())
        return keys

    def with_channel(self, chat_id: str, name: str) -> UserSettings:
        others = tuple(c for c in self.channels if c.chat_id != chat_id)
        return replace(self, channels=(*others, Channel(chat_id, name, True)))

    def without_channel(self, chat_id: str) -> UserSettings:
        return replace(self, channels=tuple(c for c in self.channels if c.chat_id != chat_id))


def settings_revision(settings: UserSettings) -> str:
    """A short fingerprint of every setting. A settings card carries the one it was drawn
    from, so saving a card made stale by a later change (a command, another card) is
    noticed instead of silently undoing that change."""
    fields = {
        name: (
            sorted(value)
            if isinstance(value, frozenset)
            else value.isoformat()
            if isinstance(value, datetime)
            else [vars(c) for c in value]
            if name == "channels"
            else value
        )
        for name, value in vars(settings).items()
    }
    canonical = json.dumps(fields, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]
