"""Rows, constants and helpers shared by every storage backend (no SQL here)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, NamedTuple

from bot.ratelimit import PENALTY_KEY_PREFIX, WINDOW_KEY_PREFIX
from bot.ringsense import TRANSCRIPT, TRANSCRIPT_STORED_APART

SEARCH_TABLE = "call_search"
"""The FTS5 index of people's words in calls. SQLite keeps its rows in shadow tables
(`call_search_content`, …) that have no `account_id` of their own: rows are deleted through
`call_search` by its `account_id`, and the index is then optimised so no deleted word stays
in its segments."""

# Columns holding secrets encrypted with the `TokenCipher` (table, key column, secret column):
# `rotate_secret_key` re-encrypts each of them. A new table with a secret appends itself here.
SECRET_COLUMNS: Sequence[tuple[str, str, str]] = (
    ("installs", "bot_extension_id", "access_token"),
    ("ringsense_connections", "account_id", "refresh_token"),
    ("ringsense_connect_links", "state_hash", "code_verifier"),
)

# Tables whose rows belong to no account (named values of the bot itself, the schema).
GLOBAL_TABLES = frozenset({"schema_version", "bot_state"})

DAY_S = 86_400.0

CHECKPOINT_EVERY_S = 1.0
"""How soon after the inbox writer commits, the WAL is synced to the disk by a checkpoint
(what a power cut can lose of acknowledged notifications; see bot/inbox_writer.py)."""

PRUNE_BATCH = 500
"""Rows retention deletes or empties per transaction."""

DIGEST_PRIORITY = 0
"""Outbox priority of digests: sent before anything else that is due."""

REPLY_PRIORITY = 1
"""Outbox priority of everything else: answers to commands, notices, analyses."""


@dataclass(frozen=True)
class InboxItem:
    id: int
    uuid: str
    kind: str
    payload: Mapping[str, Any]
    attempts: int
    # When the notification reached the bot (epoch seconds), for the call-to-card latency.
    received_at: float = 0.0


@dataclass(frozen=True)
class OutboxItem:
    id: int
    dedupe_key: str
    destination: Mapping[str, str]
    message: Mapping[str, Any]
    card_key: str | None
    attempts: int
    account_id: str | None
    priority: int = REPLY_PRIORITY

    @property
    def is_digest(self) -> bool:
        return self.priority == DIGEST_PRIORITY


@dataclass(frozen=True)
class OperationalLevels:
    """What the metrics read when scraped: per queue (waiting items, oldest arrival), and
    AI jobs and RingCX segments by state."""

    queues: Mapping[str, tuple[int, float | None]]
    ai_jobs: Mapping[str, int]
    ringcx_segments: Mapping[str, int]


@dataclass(frozen=True)
class StoredCard:
    chat_id: str
    card_id: str
    updated_at: float = 0.0


@dataclass(frozen=True)
class DeliveryReads:
    """What a delivery reads before it sends, read together in one query (one trip to the
    database instead of three, each of which cost the event loop a hand-off): whether a
    newer version of its card went out already, the card it would update, and the
    direct chat its person is known by (None when not known, or not a direct message)."""

    newer_version_sent: bool
    posted: StoredCard | None
    direct_chat: str | None


@dataclass(frozen=True)
class AiJob:
    """An Interaction Analytics job we asked for. The media URL is never stored."""

    job_id: str
    requester_id: str
    account_id: str | None
    destination: Mapping[str, str]
    source_label: str
    recording_id: str | None
    entitled_ids: frozenset[str]
    webhook_secret_hash: str
    state: str
    requested_at: float
    expires_at: float
    finished_at: float | None = None
    result: Mapping[str, Any] | None = None
    problem: str | None = None
    speaker_names: Mapping[str, str] = field(default_factory=dict)
    """The speaker ids sent as `speakerIds` (extension ids) and the names to show for them."""


@dataclass(frozen=True)
class StoredInstall:
    bot_extension_id: str
    account_id: str
    access_token: str
    creator_extension_id: str | None
    source: str


@dataclass(frozen=True)
class RingSenseConnection:
    """An account's own RingSense reader: whose consent, and its refresh token (encrypted)."""

    account_id: str
    owner_extension_id: str
    refresh_token_encrypted: str
    connected_by: str
    connected_at: float


@dataclass(frozen=True)
class ConnectLink:
    """A one-time `connect` link: for which account, asked by which admin, its PKCE
    verifier (encrypted), until when."""

    account_id: str
    admin_extension_id: str
    code_verifier_encrypted: str
    expires_at: float


@dataclass(frozen=True)
class StoredSubscription:
    id: str
    identity: str
    address: str
    event_filters: tuple[str, ...]
    token_fingerprint: str
    expiration_time: str | None


class SearchLine(NamedTuple):
    """One searchable line of a call: what it is (title, summary, key_point, next_step,
    highlight, transcript), its place, its time in the recording (seconds) when known, and
    who said it. A named tuple: a digest makes one per line of its transcript, and a
    tuple is made several times faster than a frozen dataclass."""

    kind: str
    position: int
    offset_s: float | None
    speaker: str | None
    text: str


@dataclass(frozen=True)
class SearchHit:
    call_key: str
    line: SearchLine
    score: float
    recording_start_time: str | None


@dataclass(frozen=True)
class NextStepItem:
    """One next step of an analysed call, as a to-do item: who it is on (`assignee`, an
    extension of the call's account), the name RingSense gave its owner, and whether it is
    still open. `call_title` and `call_start` come from the call, for listing."""

    item_id: int
    account_id: str
    call_key: str
    assignee_extension_id: str
    owner_name: str | None
    text: str
    state: str
    call_title: str
    call_start: str | None


TRANSCRIPT_KEY = TRANSCRIPT
"""The insight RingSense sends a call's words in (the only big one). A stored call's
record says how many utterances it has under `TRANSCRIPT_STORED_APART` instead, so a card
knows there is a transcript to show without reading it."""


@dataclass(frozen=True)
class StoredCall:
    """A call as it is stored: the merged RingSense record and who may see it.

    The transcript inside `insights` is written once, to `call_transcripts`, and left out
    of `calls.insights`, which every card, `last` and every button reads. Of two
    transcripts of the same call, the one with the later `transcript_modified` (the
    `lastModifiedTime` of the record that brought it) is kept."""

    call_key: str
    domain: str
    source_record_id: str
    source_session_id: str | None
    owner_extension_id: str
    recording_start_time: str | None
    insights: Mapping[str, Any]
    participant_ids: tuple[str, ...] = ()
    account_id: str | None = None
    ringsense_url: str | None = None
    transcript: Any | None = None
    """The transcript, when it came apart from `insights` (see `split_transcript`)."""
    transcript_modified: str | None = None


@dataclass(frozen=True)
class QueuedDelivery:
    """One outbox row as a handler queues it (see `Storage.record_digest`)."""

    dedupe_key: str
    destination: Mapping[str, str]
    message: Mapping[str, Any]
    card_key: str | None = None
    account_id: str | None = None
    priority: int = REPLY_PRIORITY


def split_transcript(
    record: Mapping[str, Any],
) -> tuple[dict[str, Any], Any | None]:
    """(a call's RingSense record without its transcript, the transcript or None).

    The record left says how many utterances were taken out (`TRANSCRIPT_STORED_APART`).
    Of two spellings of the key, the first with items is the transcript, as
    `CallInsights` reads it."""
    body = dict(record)
    inner = body.get("insights")
    if not isinstance(inner, Mapping):
        return body, None
    transcript: Any | None = None
    kept: dict[str, Any] = {}
    for key, value in inner.items():
        if isinstance(key, str) and key.lower() == TRANSCRIPT_KEY.lower():
            if transcript is None or (not transcript and value):
                transcript = value
        else:
            kept[key] = value
    if transcript is None:
        return body, None
    body["insights"] = kept
    body[TRANSCRIPT_STORED_APART] = len(transcript) if isinstance(transcript, list) else 0
    return body, transcript


def destination_key(destination: Mapping[str, str]) -> str:
    """A stable text key: `direct:<extensionId>`, `chat:<chatId>` or `card:<cardId>`."""
    kind = destination.get("kind")
    if kind == "direct":
        return f"direct:{destination['extensionId']}"
    if kind == "card":
        return f"card:{destination['cardId']}"
    return f"chat:{destination['chatId']}"


class NoSecretKey(RuntimeError):
    """Storage was opened without a cipher, so it may neither store nor read a secret."""


class PostPlace(Enum):
    """What `take_post` decided about one post or card about to be made."""

    TAKEN = "taken"
    """A place in the day's budget is taken (and the card, if any, noted as being created
    here): go ahead."""
    OVER_BUDGET = "over budget"
    """The day's budget (or the share given) is used up: nothing was taken."""
    CARD_CLAIMED = "card claimed"
    """Another replica is creating this card right now: nothing was taken; wait."""


def ringsense_identity(account_id: str) -> str:
    """The identity of an account's connected RingSense reader (bot/connections.py), under
    which its subscription and its rate-limit pacing are kept."""
    return f"ringsense:{account_id}"


def rate_limit_state_prefixes(account_id: str) -> tuple[str, ...]:
    """The `bot_state` keys an account's RingSense reader may have kept its 429 penalties
    and windows under (`PenaltyMemory`: prefix, identity, '.', group)."""
    identity = ringsense_identity(account_id)
    return (f"{PENALTY_KEY_PREFIX}{identity}.", f"{WINDOW_KEY_PREFIX}{identity}.")
