"""RingCX (formerly Engage Voice) state: which RingCentral accounts have RingCX and with
which sub-accounts, RingCX logins, interaction segments and their transcripts, and the
RingCX rate-limit windows (API-FACTS F).

It has no HTTP in it; `sandbox.api.ringcx` serves it and `sandbox.ringcx_control` sets it
up. Times are epoch seconds on the world's clock.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

ACCESS_TOKEN_SECONDS = 300
"""RingCX access tokens expire after 5 minutes (API-FACTS F)."""
REFRESH_TOKEN_SECONDS = 24 * 3600
"""UNCONFIRMED: no source gives the RingCX refresh token's lifetime; one day is assumed."""
DEFAULT_SUB_ACCOUNT = "12345"

Origination = Literal["INBOUND", "OUTBOUND"]
Speaker = Literal["agent", "contact"]


@dataclass
class RingCxAccount:
    rc_account_id: str
    main_account_id: str
    admin_id: int
    sub_accounts: dict[str, str]
    """sub-account id -> its name."""


@dataclass
class RingCxSession:
    """One login through the RingCentral token exchange."""

    extension_id: str
    rc_account_id: str
    access_token: str
    access_expires_at: float
    refresh_token: str
    refresh_expires_at: float


@dataclass(frozen=True)
class TranscriptLine:
    speaker: Speaker
    text: str
    offset_ms: int
    """Milliseconds after the segment start."""


@dataclass
class Segment:
    """One agent segment of a dialog (voice or digital), with its transcript."""

    rc_account_id: str
    sub_account_id: str
    dialog_id: str
    segment_id: str
    interaction_id: str
    agent_extension_id: str
    agent_id: str
    agent_group_id: str
    queue_name: str
    origination: Origination
    start: float
    duration_ms: int
    has_transcript: bool
    ready_after_seconds: float
    channel_endpoint: str
    contact_endpoint: str
    contact_participant_id: str
    transcript: list[TranscriptLine]
    created_at: float
    channel_type: str = "VOICE"
    """VOICE, or a digital channel (ENGAGE_MESSAGING, EMAIL, MESSENGER, SMS...)."""

    @property
    def channel_class(self) -> str:
        return "VOICE" if self.channel_type == "VOICE" else "DIGITAL"

    @property
    def end(self) -> float:
        return self.start + self.duration_ms / 1000

    @property
    def transcript_ready_at(self) -> float:
        return self.end + self.ready_after_seconds


@dataclass(frozen=True)
class Rule:
    limit: int
    window_seconds: float


METADATA_RULES = (Rule(3, 60), Rule(9, 900))
"""Per sub-account: 3 requests per 60 s and 9 per 15 min (EVSPEC getInteractionMetadata)."""
TRANSCRIPT_RULES = (Rule(120, 60),)
EXCHANGE_RULES = (Rule(5, 60),)


@dataclass
class RateWindows:
    """Sliding windows where only admitted requests count: a refused request does not
    extend the wait (UNCONFIRMED; RingCX documents the limits, not how it counts)."""

    hits: dict[str, deque[float]] = field(default_factory=dict)

    def admit(self, key: str, rules: tuple[Rule, ...], now: float) -> int | None:
        """None when admitted (and counted); else the seconds until it would be."""
        hits = self.hits.setdefault(key, deque())
        longest = max(rule.window_seconds for rule in rules)
        while hits and hits[0] <= now - longest:
            hits.popleft()
        waits = []
        for rule in rules:
            inside = [hit for hit in hits if hit > now - rule.window_seconds]
            if len(inside) >= rule.limit:
                oldest_to_expire = inside[len(inside) - rule.limit]
                waits.append(oldest_to_expire + rule.window_seconds - now)
        if waits:
            return max(1, math.ceil(max(waits)))
        hits.append(now)
        return None


@dataclass
class RingCx:
    accounts: dict[str, RingCxAccount] = field(default_factory=dict)
    """RingCentral account id -> its RingCX."""
    sessions: dict[str, RingCxSession] = field(default_factory=dict)
    """access token -> session. A refresh makes a new session; the old access token
    keeps working until it expires (UNCONFIRMED), the old refresh token stops at once."""
    refresh_tokens: dict[str, RingCxSession] = field(default_factory=dict)
    segments: list[Segment] = field(default_factory=list)
    agent_ids: dict[str, str] = field(default_factory=dict)
    """RingCentral extension id -> RingCX agent id."""
    windows: RateWindows = field(default_factory=RateWindows)

    def account_of_sub_account(self, sub_account_id: str) -> RingCxAccount | None:
        for account in self.accounts.values():
            if sub_account_id in account.sub_accounts:
                return account
        return None

    def segment(
        self, rc_account_id: str, sub_account_id: str, dialog_id: str, segment_id: str
    ) -> Segment | None:
        for segment in self.segments:
            if (
                segment.rc_account_id == rc_account_id
                and segment.sub_account_id == sub_account_id
                and segment.dialog_id == dialog_id
                and segment.segment_id == segment_id
            ):
                return segment
        return None
