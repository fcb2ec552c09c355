"""SQLite storage: inbox, outbox, settings, calls and the cards already posted.

One aiosqlite connection (its own thread, so nothing blocks the event loop), WAL journal,
numbered migrations each applied in a transaction and recorded in a version table. Every
write that must be atomic runs under one lock, because statements from concurrent tasks
would otherwise interleave inside one connection's transaction. All SQL is parameterised.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite
import orjson

from bot import db_connection
from bot.crypto import TokenCipher, UndecryptableSecret
from bot.events import Notification
from bot.inbox_writer import Committed, InboxRow, InboxWriter
from bot.ringsense import TRANSCRIPT, TRANSCRIPT_STORED_APART
from bot.settings import Channel, UserSettings

log = logging.getLogger(__name__)

MIGRATIONS: Sequence[str] = (
    # 1: the first schema
    """
    CREATE TABLE inbox (
        id INTEGER PRIMARY KEY,
        uuid TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        received_at REAL NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL DEFAULT 0,
        last_error TEXT
    );
    CREATE INDEX inbox_due ON inbox(status, next_attempt_at, id);

    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        dedupe_key TEXT NOT NULL UNIQUE,
        destination TEXT NOT NULL,
        message TEXT NOT NULL,
        card_key TEXT,
        status TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL DEFAULT 0,
        last_error TEXT,
        created_at REAL NOT NULL,
        sent_at REAL
    );
    CREATE INDEX outbox_due ON outbox(status, next_attempt_at, id);

    CREATE TABLE posted_cards (
        card_key TEXT NOT NULL,
        destination TEXT NOT NULL,
        chat_id TEXT NOT NULL,
        card_id TEXT NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (card_key, destination)
    );

    CREATE TABLE direct_chats (
        extension_id TEXT PRIMARY KEY,
        chat_id TEXT NOT NULL
    );

    CREATE TABLE user_settings (
        extension_id TEXT PRIMARY KEY,
        opted_in INTEGER NOT NULL DEFAULT 0,
        timezone TEXT,
        updated_at REAL NOT NULL
    );

    CREATE TABLE calls (
        call_key TEXT PRIMARY KEY,
        domain TEXT NOT NULL,
        source_record_id TEXT NOT NULL,
        source_session_id TEXT,
        owner_extension_id TEXT NOT NULL,
        recording_start_time TEXT,
        insights TEXT NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX calls_owner ON calls(owner_extension_id, recording_start_time);
    CREATE INDEX calls_session ON calls(source_session_id);

    CREATE TABLE subscriptions (
        id TEXT PRIMARY KEY,
        identity TEXT NOT NULL,
        address TEXT NOT NULL,
        event_filters TEXT NOT NULL,
        token_fingerprint TEXT NOT NULL,
        expiration_time TEXT,
        created_at REAL NOT NULL
    );
    """,
    # 2: full settings, channels, installs per account, feedback
    """
    ALTER TABLE user_settings ADD COLUMN account_id TEXT;
    ALTER TABLE user_settings ADD COLUMN direct_messages INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE user_settings ADD COLUMN sections TEXT;
    ALTER TABLE user_settings ADD COLUMN directions TEXT;
    ALTER TABLE user_settings ADD COLUMN internal_calls INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE user_settings ADD COLUMN external_calls INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE user_settings ADD COLUMN min_duration_s INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE user_settings ADD COLUMN min_ai_score REAL;
    ALTER TABLE user_settings ADD COLUMN external_to_channels INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE user_settings ADD COLUMN paused_until TEXT;
    CREATE INDEX user_settings_account ON user_settings(account_id);

    CREATE TABLE user_channels (
        extension_id TEXT NOT NULL,
        chat_id TEXT NOT NULL,
        chat_name TEXT NOT NULL,
        enabled INTEGER NOT NULL DEFAULT 1,
        added_at REAL NOT NULL,
        PRIMARY KEY (extension_id, chat_id)
    );

    CREATE TABLE installs (
        bot_extension_id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL,
        access_token TEXT NOT NULL,
        creator_extension_id TEXT,
        source TEXT NOT NULL,
        installed_at REAL NOT NULL
    );
    CREATE INDEX installs_account ON installs(account_id);

    CREATE TABLE feedback (
        call_key TEXT NOT NULL,
        extension_id TEXT NOT NULL,
        verdict TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (call_key, extension_id)
    );

    CREATE TABLE call_participants (
        call_key TEXT NOT NULL,
        extension_id TEXT NOT NULL,
        PRIMARY KEY (call_key, extension_id)
    );
    CREATE INDEX call_participants_extension ON call_participants(extension_id);

    CREATE TABLE seen_submits (
        uuid TEXT PRIMARY KEY,
        seen_at REAL NOT NULL
    );

    ALTER TABLE calls ADD COLUMN account_id TEXT;
    ALTER TABLE calls ADD COLUMN ringsense_url TEXT;
    CREATE INDEX calls_ringsense_url ON calls(ringsense_url);
    ALTER TABLE direct_chats ADD COLUMN account_id TEXT;
    ALTER TABLE outbox ADD COLUMN account_id TEXT;
    """,
    # 3: reliability: small named values, the daily post budget
    """
    CREATE TABLE bot_state (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_at REAL NOT NULL
    );

    CREATE TABLE daily_posts (
        account_id TEXT NOT NULL,
        day TEXT NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (account_id, day)
    );
    """,
    # 4: AI API jobs and RingCX transcript segments
    """
    CREATE TABLE ai_jobs (
        job_id TEXT PRIMARY KEY,
        requester_id TEXT NOT NULL,
        account_id TEXT,
        destination TEXT NOT NULL,
        source_label TEXT NOT NULL,
        recording_id TEXT,
        entitled_ids TEXT NOT NULL,
        webhook_secret_hash TEXT NOT NULL,
        state TEXT NOT NULL,
        requested_at REAL NOT NULL,
        finished_at REAL,
        expires_at REAL NOT NULL,
        result TEXT,
        problem TEXT
    );
    CREATE INDEX ai_jobs_requester ON ai_jobs(requester_id, requested_at);
    CREATE INDEX ai_jobs_pending ON ai_jobs(state, requested_at);

    CREATE TABLE ringcx_segments (
        dialog_id TEXT NOT NULL,
        segment_id TEXT NOT NULL,
        metadata TEXT NOT NULL,
        agent_extension_id TEXT,
        agent_group_id TEXT,
        state TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL DEFAULT 0,
        last_error TEXT,
        found_at REAL NOT NULL,
        PRIMARY KEY (dialog_id, segment_id)
    );
    CREATE INDEX ringcx_segments_due ON ringcx_segments(state, next_attempt_at);
    """,
    # 5: every row attributable to an account (uninstall deletes all of it); install tokens
    # encrypted (rows written before this are encrypted by `Storage.open` once it has a key)
    """
    ALTER TABLE inbox ADD COLUMN account_id TEXT;
    ALTER TABLE posted_cards ADD COLUMN account_id TEXT;
    ALTER TABLE user_channels ADD COLUMN account_id TEXT;
    ALTER TABLE feedback ADD COLUMN account_id TEXT;
    ALTER TABLE call_participants ADD COLUMN account_id TEXT;
    ALTER TABLE seen_submits ADD COLUMN account_id TEXT;
    ALTER TABLE ringcx_segments ADD COLUMN account_id TEXT;
    ALTER TABLE subscriptions ADD COLUMN account_id TEXT;
    ALTER TABLE installs ADD COLUMN token_encrypted INTEGER NOT NULL DEFAULT 0;
    UPDATE user_channels SET account_id = (SELECT s.account_id FROM user_settings s
        WHERE s.extension_id = user_channels.extension_id);
    UPDATE call_participants SET account_id = (SELECT c.account_id FROM calls c
        WHERE c.call_key = call_participants.call_key);
    UPDATE feedback SET account_id = (SELECT c.account_id FROM calls c
        WHERE c.call_key = feedback.call_key);
    UPDATE posted_cards SET account_id = COALESCE(
        (SELECT c.account_id FROM calls c WHERE c.call_key = posted_cards.card_key),
        (SELECT j.account_id FROM ai_jobs j WHERE 'ai:' || j.job_id = posted_cards.card_key));
    UPDATE subscriptions SET account_id = (SELECT i.account_id FROM installs i
        WHERE 'bot:' || i.bot_extension_id = subscriptions.identity);
    CREATE INDEX inbox_account ON inbox(account_id);
    CREATE INDEX outbox_account ON outbox(account_id);
    CREATE INDEX posted_cards_account ON posted_cards(account_id);
    CREATE INDEX calls_account ON calls(account_id, updated_at);
    CREATE INDEX call_participants_account ON call_participants(account_id);
    """,
    # 6: the AI webhook finds its job by the secret in its path, before reading any body
    """
    CREATE INDEX IF NOT EXISTS ai_jobs_webhook_secret ON ai_jobs(webhook_secret_hash);
    """,
    # 7: each account's own RingSense reader (an admin's OAuth consent). Secrets
    # (the refresh token, the PKCE verifier) are stored encrypted; a link's state only
    # as its SHA-256.
    """
    CREATE TABLE ringsense_connections (
        account_id TEXT PRIMARY KEY,
        owner_extension_id TEXT NOT NULL,
        refresh_token TEXT NOT NULL,
        connected_by TEXT NOT NULL,
        connected_at REAL NOT NULL
    );

    CREATE TABLE ringsense_connect_links (
        state_hash TEXT PRIMARY KEY,
        account_id TEXT NOT NULL,
        admin_extension_id TEXT NOT NULL,
        code_verifier TEXT NOT NULL,
        expires_at REAL NOT NULL,
        opened INTEGER NOT NULL DEFAULT 0
    );
    """,
    # 8: catch-up asks whether a call's RingSense notification was handled
    # and which destinations its digest was queued for
    """
    CREATE INDEX outbox_card_key ON outbox(card_key);
    CREATE INDEX inbox_ringsense_record
        ON inbox(json_extract(payload, '$.body.sourceRecordId'))
        WHERE kind = 'ringsense.insights';
    """,
    # 9: digests go ahead of replies in the outbox
    """
    ALTER TABLE outbox ADD COLUMN priority INTEGER NOT NULL DEFAULT 1;
    CREATE INDEX outbox_due_priority ON outbox(status, next_attempt_at, priority, id);
    """,
    # 10: around the digest. Which calls a person gets digests of (own, or
    # own and taken part in).
    """
    ALTER TABLE user_settings ADD COLUMN digest_scope TEXT NOT NULL DEFAULT 'owned';

    CREATE TABLE next_steps (
        item_id INTEGER PRIMARY KEY AUTOINCREMENT,
        account_id TEXT NOT NULL,
        call_key TEXT NOT NULL,
        position INTEGER NOT NULL,
        assignee_extension_id TEXT NOT NULL,
        owner_name TEXT,
        text TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'open',
        done_by TEXT,
        done_at REAL,
        created_at REAL NOT NULL,
        UNIQUE (call_key, text)
    );
    CREATE INDEX next_steps_assignee ON next_steps(account_id, assignee_extension_id, state);

    CREATE VIRTUAL TABLE call_search USING fts5(
        text,
        account_id UNINDEXED,
        call_key UNINDEXED,
        kind UNINDEXED,
        position UNINDEXED,
        offset_s UNINDEXED,
        speaker UNINDEXED,
        tokenize = 'porter unicode61 remove_diacritics 2'
    );

    ALTER TABLE user_settings ADD COLUMN rollup_time TEXT NOT NULL DEFAULT '17:00';
    CREATE TABLE skipped_digests (
        account_id TEXT NOT NULL,
        extension_id TEXT NOT NULL,
        call_key TEXT NOT NULL,
        skipped_at REAL NOT NULL,
        PRIMARY KEY (account_id, extension_id, call_key)
    );
    CREATE TABLE rollup_days (
        account_id TEXT NOT NULL,
        extension_id TEXT NOT NULL,
        day TEXT NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (account_id, extension_id)
    );
    """,
    # 11: the people an AI job asked RingCentral to recognise by voice,
    # {speaker id: name}, so the result's cards can name them
    """
    ALTER TABLE ai_jobs ADD COLUMN speaker_names TEXT NOT NULL DEFAULT '{}';
    """,
    # 12: a call's transcript stored once, apart from the insights its cards
    # use; `last` reads a person's newest calls from one index walk; retention finds what
    # it prunes through indexes instead of scanning whole tables.
    """
    CREATE TABLE call_transcripts (
        call_key TEXT PRIMARY KEY,
        account_id TEXT,
        utterances TEXT NOT NULL,
        modified TEXT,
        updated_at REAL NOT NULL
    );
    ALTER TABLE call_participants ADD COLUMN recording_start_time TEXT;
    ALTER TABLE call_participants ADD COLUMN updated_at REAL;
    UPDATE call_participants SET
        recording_start_time = (SELECT c.recording_start_time FROM calls c
            WHERE c.call_key = call_participants.call_key),
        updated_at = (SELECT c.updated_at FROM calls c
            WHERE c.call_key = call_participants.call_key);
    CREATE INDEX call_participants_newest ON call_participants(
        extension_id, account_id, recording_start_time DESC, updated_at DESC);
    CREATE INDEX calls_updated ON calls(updated_at);
    CREATE INDEX inbox_words_kept ON inbox(received_at)
        WHERE status != 'pending' AND payload != '{}';
    CREATE INDEX inbox_finished ON inbox(received_at) WHERE status != 'pending';
    CREATE INDEX outbox_words_kept ON outbox(created_at)
        WHERE status = 'sent' AND message != '{}';
    CREATE INDEX outbox_age ON outbox(status, created_at);
    CREATE INDEX seen_submits_age ON seen_submits(seen_at);
    """,
)

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

PRAGMAS = (
    # Deleted rows (an uninstalled account, pruned messages) are overwritten on disk, not
    # merely unlinked from the b-tree.
    "PRAGMA secure_delete=ON",
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=5000",
)


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


def _ai_job(row: aiosqlite.Row) -> AiJob:
    return AiJob(
        job_id=row["job_id"],
        requester_id=row["requester_id"],
        account_id=row["account_id"],
        destination=json.loads(row["destination"]),
        source_label=row["source_label"],
        recording_id=row["recording_id"],
        entitled_ids=frozenset(json.loads(row["entitled_ids"])),
        webhook_secret_hash=row["webhook_secret_hash"],
        state=row["state"],
        requested_at=row["requested_at"],
        expires_at=row["expires_at"],
        finished_at=row["finished_at"],
        result=json.loads(row["result"]) if row["result"] else None,
        problem=row["problem"],
        speaker_names=json.loads(row["speaker_names"]),
    )


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


@dataclass(frozen=True)
class SearchLine:
    """One searchable line of a call: what it is (title, summary, key_point, next_step,
    highlight, transcript), its place, its time in the recording (seconds) when known, and
    who said it."""

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


def _compact_json(value: Any) -> str:
    return orjson.dumps(value).decode()


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


async def _write_call(db: aiosqlite.Connection, call: StoredCall) -> None:
    """The call's row, its participants (with what `last` sorts by) and its transcript."""
    now = time.time()
    body, transcript = split_transcript(call.insights)
    if call.transcript is not None:
        transcript = call.transcript
        body[TRANSCRIPT_STORED_APART] = len(transcript) if isinstance(transcript, list) else 0
    await db.execute(
        "INSERT INTO calls (call_key, domain, source_record_id, source_session_id, "
        "owner_extension_id, recording_start_time, insights, updated_at, account_id, "
        "ringsense_url) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (call_key) DO UPDATE SET "
        "source_session_id = excluded.source_session_id, "
        "owner_extension_id = excluded.owner_extension_id, "
        "recording_start_time = excluded.recording_start_time, "
        "insights = excluded.insights, updated_at = excluded.updated_at, "
        "account_id = excluded.account_id, ringsense_url = excluded.ringsense_url",
        (
            call.call_key,
            call.domain,
            call.source_record_id,
            call.source_session_id,
            call.owner_extension_id,
            call.recording_start_time,
            _compact_json(body),
            now,
            call.account_id,
            call.ringsense_url,
        ),
    )
    await db.execute("DELETE FROM call_participants WHERE call_key = ?", (call.call_key,))
    await db.executemany(
        "INSERT INTO call_participants (call_key, extension_id, account_id, "
        "recording_start_time, updated_at) VALUES (?, ?, ?, ?, ?)",
        [
            (call.call_key, extension_id, call.account_id, call.recording_start_time, now)
            for extension_id in sorted({call.owner_extension_id, *call.participant_ids})
        ],
    )
    if transcript is not None:
        modified = call.transcript_modified
        if modified is None and isinstance(call.insights.get("lastModifiedTime"), str):
            modified = call.insights["lastModifiedTime"]
        await db.execute(
            "INSERT INTO call_transcripts (call_key, account_id, utterances, modified, "
            "updated_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (call_key) DO UPDATE SET account_id = excluded.account_id, "
            "utterances = excluded.utterances, modified = excluded.modified, "
            "updated_at = excluded.updated_at "
            "WHERE excluded.modified IS NULL OR call_transcripts.modified IS NULL "
            "OR excluded.modified >= call_transcripts.modified",
            (call.call_key, call.account_id, _compact_json(transcript), modified, now),
        )


async def _write_deliveries(db: aiosqlite.Connection, deliveries: Sequence[QueuedDelivery]) -> int:
    """Queue deliveries in one statement; how many were new (the rest were queued before)."""
    if not deliveries:
        return 0
    now = time.time()
    cursor = await db.executemany(
        "INSERT OR IGNORE INTO outbox (dedupe_key, destination, message, card_key, "
        "account_id, created_at, priority) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (
                d.dedupe_key,
                json.dumps(d.destination, separators=(",", ":")),
                _compact_json(d.message),
                d.card_key,
                d.account_id,
                now,
                d.priority,
            )
            for d in deliveries
        ],
    )
    return max(0, cursor.rowcount)


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


class Storage:
    def __init__(self, db: aiosqlite.Connection, cipher: TokenCipher | None = None) -> None:
        self._db = db
        self._cipher = cipher
        self._write_lock = asyncio.Lock()
        self._inbox_writer: InboxWriter | None = None
        self._checkpoint: asyncio.Task[None] | None = None
        # Work is handed to the workers in memory once committed (see bot/workers.py):
        # each inbox row the writer commits, each delivery `enqueue` commits.
        self.on_inbox_committed: Callable[[Sequence[InboxItem]], None] = lambda _items: None
        self.on_outbox_queued: Callable[[OutboxItem], None] = lambda _item: None
        # Which account a notification belongs to, by the subscription owner that brought it
        # (a bot extension, the service user): every inbox row is attributed on arrival.
        self._owner_accounts: dict[str, str] = {}
        self.default_account_id: str | None = None

    @classmethod
    async def open(cls, path: Path | str, cipher: TokenCipher | None = None) -> Storage:
        """Open (creating if needed) the database, readable by its owner only.

        Without a `cipher` the store works but refuses to store or read tokens.
        """
        if str(path) == ":memory:":
            raise ValueError("the storage needs a file: the inbox writer opens it a second time")
        _prepare_private_file(Path(path))
        db = await db_connection.connect(path, isolation_level=None)
        db.row_factory = aiosqlite.Row
        for pragma in PRAGMAS:
            await db.execute(pragma)
        storage = cls(db, cipher)
        await storage._migrate()
        storage._inbox_writer = await InboxWriter.open(Path(path))
        storage._inbox_writer.on_committed = storage._inbox_rows_committed
        storage._inbox_writer.on_batch_committed = storage._checkpoint_soon
        _tighten_files(Path(path))
        if cipher is not None:
            await storage._encrypt_plaintext_tokens()
        return storage

    def attribute_owner(self, owner_id: str, account_id: str) -> None:
        """Notifications whose subscription `owner_id` made belong to `account_id`."""
        if owner_id and account_id:
            self._owner_accounts[owner_id] = account_id

    def account_of_owner(self, owner_id: str | None) -> str | None:
        if owner_id is None:
            return self.default_account_id
        return self._owner_accounts.get(owner_id)

    def _require_cipher(self) -> TokenCipher:
        if self._cipher is None:
            raise NoSecretKey("no BOT_SECRET_KEY: tokens can be neither stored nor read")
        return self._cipher

    async def _encrypt_plaintext_tokens(self) -> None:
        """Install tokens stored before encryption existed are encrypted on the first start
        with a key, all in one transaction."""
        cipher = self._require_cipher()
        async with self._transaction() as db:
            cursor = await db.execute(
                "SELECT bot_extension_id, access_token FROM installs WHERE token_encrypted = 0"
            )
            rows = list(await cursor.fetchall())
            await cursor.close()
            for row in rows:
                await db.execute(
                    "UPDATE installs SET access_token = ?, token_encrypted = 1 "
                    "WHERE bot_extension_id = ?",
                    (cipher.encrypt(row["access_token"]), row["bot_extension_id"]),
                )
        if rows:
            log.info("encrypted %d install token(s) stored in plain text", len(rows))

    async def rotate_secret_key(self) -> int:
        """Re-encrypt every stored secret under the current (first) key; how many.

        All or nothing: a secret no configured key opens stops the rotation unchanged.
        """
        cipher = self._require_cipher()
        rotated = 0
        async with self._transaction() as db:
            for table, key_column, secret_column in SECRET_COLUMNS:
                # Table and column names come from SECRET_COLUMNS above, never from input.
                cursor = await db.execute(
                    f"SELECT {key_column}, {secret_column} FROM {table} "  # noqa: S608
                    f"WHERE {secret_column} IS NOT NULL AND {secret_column} != ''"
                )
                rows = await cursor.fetchall()
                await cursor.close()
                for key, stored in rows:
                    await db.execute(
                        f"UPDATE {table} SET {secret_column} = ? "  # noqa: S608
                        f"WHERE {key_column} = ?",
                        (cipher.reencrypt(stored), key),
                    )
                    rotated += 1
        return rotated

    async def close(self) -> None:
        if self._inbox_writer is not None:
            await self._inbox_writer.close()
        if self._checkpoint is not None and not self._checkpoint.done():
            self._checkpoint.cancel()
            await asyncio.gather(self._checkpoint, return_exceptions=True)
            await self.checkpoint()
        await self._db.close()

    def _checkpoint_soon(self) -> None:
        """Sync the WAL (and copy it into the database) within `CHECKPOINT_EVERY_S`, on
        this connection, the workers' one: the inbox writer's commits (the acks) never
        wait for a checkpoint or an fsync, and what they stored is on the disk soon after."""
        if self._checkpoint is None or self._checkpoint.done():
            self._checkpoint = asyncio.create_task(self._checkpoint_after_delay())

    async def _checkpoint_after_delay(self) -> None:
        await asyncio.sleep(CHECKPOINT_EVERY_S)
        await self.checkpoint()

    async def checkpoint(self) -> None:
        try:
            # Not inside another task's transaction on this connection (SQLite refuses).
            async with self._write_lock, self._db.execute("PRAGMA wal_checkpoint(PASSIVE)"):
                pass
        except Exception:
            log.warning("WAL checkpoint failed; SQLite retries at the next one", exc_info=True)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._write_lock:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            else:
                await self._db.execute("COMMIT")

    async def _migrate(self) -> None:
        await self._db.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"
        )
        async with self._db.execute("SELECT MAX(version) FROM schema_version") as cursor:
            row = await cursor.fetchone()
        current = row[0] if row and row[0] is not None else 0
        for number, script in enumerate(MIGRATIONS, start=1):
            if number <= current:
                continue
            async with self._transaction() as db:
                for statement in _split_statements(script):
                    await db.execute(statement)
                await db.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))

    async def schema_version(self) -> int:
        async with self._db.execute("SELECT MAX(version) FROM schema_version") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    # -- inbox --------------------------------------------------------------------------

    async def add_notification(self, notification: Notification, raw: str | None = None) -> bool:
        """Store a notification in the inbox; False when its uuid was stored before.

        `raw` is the body exactly as RingCentral sent it (the webhook's): it is stored as
        received, never re-encoded. Work the bot made itself has none and is encoded here.
        """
        return await self.add_to_inbox(
            notification.uuid,
            notification.kind,
            notification.to_payload(),
            self.account_of_owner(notification.owner_id),
            raw=raw,
        )

    async def add_to_inbox(
        self,
        uuid: str,
        kind: str,
        payload: Mapping[str, Any],
        account_id: str | None = None,
        *,
        raw: str | None = None,
    ) -> bool:
        """Store a notification; False when one with this uuid was already stored.

        Returns once the row is committed by the inbox's own writer (bot/inbox_writer.py),
        which commits concurrent callers together and never waits behind the workers'
        statements. `raw`, when given, is the JSON text of `payload` as received.
        """
        writer = self._inbox_writer
        if writer is None:
            raise RuntimeError("the storage is not open")
        text = raw if raw is not None else _json_text(payload)
        row = InboxRow(uuid, kind, text, time.time(), account_id, parsed=payload)
        return await writer.add(row) is not None

    def _inbox_rows_committed(self, committed: Sequence[Committed]) -> None:
        """The writer committed these rows: hand them to the inbox worker, parsed."""
        items = []
        for entry in committed:
            row = entry.row
            payload = row.parsed if row.parsed is not None else orjson.loads(row.payload)
            items.append(InboxItem(entry.id, row.uuid, row.kind, payload, 0, row.received_at))
        self.on_inbox_committed(items)

    @property
    def inbox_watermark(self) -> int:
        """The largest inbox id stored before this process opened the database: rows above
        it were committed (and handed over in memory) by this process."""
        return self._inbox_writer.watermark if self._inbox_writer is not None else 0

    async def due_inbox(self, limit: int, exclude_ids: Sequence[int] = ()) -> list[InboxItem]:
        """Every pending inbox row that is due, oldest first."""
        return await self._select_inbox("", (), limit, exclude_ids)

    async def due_inbox_not_handed_over(
        self, limit: int, exclude_ids: Sequence[int] = ()
    ) -> list[InboxItem]:
        """Due rows the worker cannot have in memory: left by an earlier process (at or
        below the watermark) or waiting for a retry (attempted before)."""
        return await self._select_inbox(
            "AND (id <= ? OR attempts > 0)", (self.inbox_watermark,), limit, exclude_ids
        )

    async def inbox_items(self, ids: Sequence[int]) -> list[InboxItem]:
        """These inbox rows, if still pending (oldest first)."""
        if not ids:
            return []
        placeholders = ",".join("?" for _ in ids)
        return await self._select_inbox(
            f"AND id IN ({placeholders})", tuple(ids), len(ids), (), due_only=False
        )

    async def _select_inbox(
        self,
        condition: str,
        params: tuple[Any, ...],
        limit: int,
        exclude_ids: Sequence[int],
        *,
        due_only: bool = True,
    ) -> list[InboxItem]:
        exclusion, excluded = _excluding(exclude_ids)
        due = "AND next_attempt_at <= ?" if due_only else ""
        due_params = (time.time(),) if due_only else ()
        # Only "?" placeholders and fixed conditions are interpolated into these queries.
        query = (
            "SELECT id, uuid, kind, payload, attempts, received_at FROM inbox "  # noqa: S608
            f"WHERE status = 'pending' {due} {condition} {exclusion} "
            "ORDER BY id LIMIT ?"
        )
        async with self._db.execute(query, (*due_params, *params, *excluded, limit)) as cursor:
            rows = await cursor.fetchall()
        return [
            InboxItem(
                r["id"],
                r["uuid"],
                r["kind"],
                orjson.loads(r["payload"]),
                r["attempts"],
                float(r["received_at"] or 0.0),
            )
            for r in rows
        ]

    async def finish_inbox(self, item_id: int, status: str, error: str | None = None) -> None:
        # One statement is its own transaction (autocommit); the lock only keeps it out of
        # another task's open transaction on this connection.
        async with self._write_lock:
            await self._db.execute(
                "UPDATE inbox SET status = ?, last_error = ?, attempts = attempts + 1 WHERE id = ?",
                (status, error, item_id),
            )

    async def retry_inbox_later(self, item_id: int, delay_s: float, error: str) -> float:
        """Try again in `delay_s`; returns when (epoch seconds)."""
        due_at = time.time() + delay_s
        async with self._write_lock:
            await self._db.execute(
                "UPDATE inbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? "
                "WHERE id = ?",
                (due_at, error, item_id),
            )
        return due_at

    async def inbox_counts(self) -> dict[str, int]:
        async with self._db.execute("SELECT status, COUNT(*) FROM inbox GROUP BY status") as cur:
            return {row[0]: row[1] for row in await cur.fetchall()}

    async def ringsense_notification_handled(self, source_record_id: str) -> bool:
        """Whether a RingSense notification for this recording was handled (or waits to be):
        the digest decision for the call was made, by the settings of that time."""
        async with self._db.execute(
            "SELECT 1 FROM inbox WHERE kind = 'ringsense.insights' "
            "AND json_extract(payload, '$.body.sourceRecordId') = ? "
            "AND status IN ('pending', 'done') LIMIT 1",
            (source_record_id,),
        ) as cursor:
            return await cursor.fetchone() is not None

    async def next_inbox_due_at(self) -> float | None:
        """When the next pending row is due, whether or not it was handed over."""
        async with self._db.execute(
            "SELECT MIN(next_attempt_at) FROM inbox WHERE status = 'pending'"
        ) as cursor:
            row = await cursor.fetchone()
        return float(row[0]) if row and row[0] is not None else None

    async def next_inbox_retry_at(self, after: float) -> float | None:
        """When the next row the worker must read from the database falls due, after
        `after` (see `due_inbox_not_handed_over`)."""
        async with self._db.execute(
            "SELECT MIN(next_attempt_at) FROM inbox WHERE status = 'pending' "
            "AND next_attempt_at > ? AND (id <= ? OR attempts > 0)",
            (after, self.inbox_watermark),
        ) as cursor:
            row = await cursor.fetchone()
        return float(row[0]) if row and row[0] is not None else None

    # -- outbox -------------------------------------------------------------------------

    async def enqueue(
        self,
        dedupe_key: str,
        destination: Mapping[str, str],
        message: Mapping[str, Any],
        card_key: str | None = None,
        account_id: str | None = None,
        priority: int = REPLY_PRIORITY,
    ) -> bool:
        """Queue a delivery; False when this exact delivery was queued before.

        Once committed, the delivery is handed to the delivery worker in memory
        (`on_outbox_queued`): it is not read back from the database."""
        # The destination's text is compared by `newer_version_sent`: encoded as always.
        destination_text = json.dumps(destination, separators=(",", ":"))
        message_text = _json_text(message)
        async with self._write_lock:
            cursor = await self._db.execute(
                "INSERT INTO outbox (dedupe_key, destination, message, card_key, "
                "account_id, created_at, priority) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
                (
                    dedupe_key,
                    destination_text,
                    message_text,
                    card_key,
                    account_id,
                    time.time(),
                    priority,
                ),
            )
            row = await cursor.fetchone()
            await cursor.close()
        if row is None:
            return False
        # Exactly what a read from the database would give (the round trip copies the
        # values, so a caller changing its dict later changes nothing queued).
        self.on_outbox_queued(
            OutboxItem(
                int(row[0]),
                dedupe_key,
                orjson.loads(destination_text),
                orjson.loads(message_text),
                card_key,
                0,
                account_id,
                priority,
            )
        )
        return True

    async def due_outbox(self, limit: int, exclude_ids: Sequence[int] = ()) -> list[OutboxItem]:
        """Pending deliveries that are due, digests first, then oldest first."""
        exclusion, excluded = _excluding(exclude_ids)
        # Only fixed conditions are interpolated into this query.
        return await self._select_outbox(
            f"next_attempt_at <= ? {exclusion} ORDER BY priority, id LIMIT ?",
            (time.time(), *excluded, limit),
        )

    async def outbox_items(self, ids: Sequence[int]) -> list[OutboxItem]:
        """These deliveries, if still pending (oldest first)."""
        if not ids:
            return []
        return await self._select_outbox(
            "id IN (SELECT value FROM json_each(?)) ORDER BY id", (json.dumps(list(ids)),)
        )

    async def _select_outbox(self, condition: str, params: tuple[Any, ...]) -> list[OutboxItem]:
        query = (
            "SELECT id, dedupe_key, destination, message, card_key, attempts, account_id, "  # noqa: S608
            f"priority FROM outbox WHERE status = 'pending' AND {condition}"
        )
        async with self._db.execute(query, params) as cursor:
            rows = await cursor.fetchall()
        return [
            OutboxItem(
                r["id"],
                r["dedupe_key"],
                orjson.loads(r["destination"]),
                orjson.loads(r["message"]),
                r["card_key"],
                r["attempts"],
                r["account_id"],
                r["priority"],
            )
            for r in rows
        ]

    async def newer_version_sent(self, item: OutboxItem) -> bool:
        """Whether a later delivery of the same card to the same destination was sent
        already: then `item` is an older version, and sending it would undo the newer one
        (a retry that waited while the newer version went out)."""
        if item.card_key is None:
            return False
        async with self._db.execute(
            "SELECT 1 FROM outbox WHERE id > ? AND card_key = ? AND destination = ? "
            "AND status = 'sent' LIMIT 1",
            (item.id, item.card_key, json.dumps(item.destination, separators=(",", ":"))),
        ) as cursor:
            return await cursor.fetchone() is not None

    async def mark_sent(self, item_id: int) -> None:
        async with self._write_lock:
            await self._db.execute(
                "UPDATE outbox SET status = 'sent', sent_at = ?, attempts = attempts + 1, "
                "last_error = NULL WHERE id = ?",
                (time.time(), item_id),
            )

    async def delivered(
        self,
        item_id: int,
        *,
        account_id: str | None,
        day: str | None,
        card: tuple[str, str, str, str] | None = None,
    ) -> None:
        """A delivery went out: in one transaction, the post counted against `day`'s
        budget (None: nothing was posted, an update), the card remembered for in-place
        updates (`card`: card key, destination, chat id, card id) and the delivery marked
        sent. A crash before this commit retries the delivery, which finds the card it
        marked pending (`mark_card_pending`) instead of posting a second one."""
        now = time.time()
        async with self._transaction() as db:
            if day is not None and account_id is not None:
                await db.execute(
                    "INSERT INTO daily_posts (account_id, day, count) VALUES (?, ?, 1) "
                    "ON CONFLICT (account_id, day) DO UPDATE SET count = count + 1",
                    (account_id, day),
                )
            if card is not None:
                card_key, destination, chat_id, card_id = card
                await db.execute(
                    "INSERT INTO posted_cards (card_key, destination, chat_id, card_id, "
                    "updated_at, account_id) VALUES (?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (card_key, destination) DO UPDATE SET "
                    "chat_id = excluded.chat_id, card_id = excluded.card_id, "
                    "updated_at = excluded.updated_at, "
                    "account_id = COALESCE(excluded.account_id, posted_cards.account_id)",
                    (card_key, destination, chat_id, card_id, now, account_id),
                )
            await db.execute(
                "UPDATE outbox SET status = 'sent', sent_at = ?, attempts = attempts + 1, "
                "last_error = NULL WHERE id = ?",
                (now, item_id),
            )

    async def retry_outbox_later(self, item_id: int, delay_s: float, error: str) -> float:
        """Try again in `delay_s`; returns when (epoch seconds)."""
        due_at = time.time() + delay_s
        async with self._write_lock:
            await self._db.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? "
                "WHERE id = ?",
                (due_at, error, item_id),
            )
        return due_at

    async def postpone_outbox(self, item_id: int, delay_s: float, reason: str) -> float:
        """Try again later without using up an attempt (the delay is not the delivery's
        fault); returns when (epoch seconds)."""
        due_at = time.time() + delay_s
        async with self._write_lock:
            await self._db.execute(
                "UPDATE outbox SET next_attempt_at = ?, last_error = ? WHERE id = ?",
                (due_at, reason, item_id),
            )
        return due_at

    async def mark_failed(self, item_id: int, error: str) -> None:
        async with self._write_lock:
            await self._db.execute(
                "UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = ? "
                "WHERE id = ?",
                (error, item_id),
            )

    async def outbox_counts(self) -> dict[str, int]:
        async with self._db.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status") as cur:
            return {row[0]: row[1] for row in await cur.fetchall()}

    async def next_outbox_due_at(self, after: float | None = None) -> float | None:
        """When the next pending delivery is due (the first one due after `after`)."""
        async with self._db.execute(
            "SELECT MIN(next_attempt_at) FROM outbox WHERE status = 'pending' "
            "AND next_attempt_at > ?",
            (-1.0 if after is None else after,),
        ) as cursor:
            row = await cursor.fetchone()
        return float(row[0]) if row and row[0] is not None else None

    # -- cards already posted -----------------------------------------------------------

    async def posted_card(self, card_key: str, destination: str) -> StoredCard | None:
        async with self._db.execute(
            "SELECT chat_id, card_id, updated_at FROM posted_cards "
            "WHERE card_key = ? AND destination = ?",
            (card_key, destination),
        ) as cursor:
            row = await cursor.fetchone()
        return StoredCard(row["chat_id"], row["card_id"], row["updated_at"]) if row else None

    async def remember_card(
        self,
        card_key: str,
        destination: str,
        chat_id: str,
        card_id: str,
        account_id: str | None = None,
    ) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO posted_cards (card_key, destination, chat_id, card_id, updated_at, "
                "account_id) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (card_key, destination) DO UPDATE SET "
                "chat_id = excluded.chat_id, card_id = excluded.card_id, "
                "updated_at = excluded.updated_at, "
                "account_id = COALESCE(excluded.account_id, posted_cards.account_id)",
                (card_key, destination, chat_id, card_id, time.time(), account_id),
            )

    async def card_destinations(self, card_key: str) -> set[str]:
        """Every destination (`direct:…`, `chat:…`) this card was queued for or posted to,
        whatever became of the delivery (a failed one is for `resend`, not a new copy)."""
        found: set[str] = set()
        async with self._db.execute(
            "SELECT destination FROM outbox WHERE card_key = ?", (card_key,)
        ) as cursor:
            for row in await cursor.fetchall():
                found.add(destination_key(json.loads(row[0])))
        async with self._db.execute(
            "SELECT destination FROM posted_cards WHERE card_key = ?", (card_key,)
        ) as cursor:
            found.update(str(row[0]) for row in await cursor.fetchall())
        return found

    async def forget_pending_card(self, card_key: str, destination: str) -> None:
        """The create certainly failed: no card to look for on the next attempt."""
        async with self._transaction() as db:
            await db.execute(
                "DELETE FROM posted_cards WHERE card_key = ? AND destination = ? AND card_id = ''",
                (card_key, destination),
            )

    async def forget_card(self, card_key: str, destination: str) -> None:
        async with self._transaction() as db:
            await db.execute(
                "DELETE FROM posted_cards WHERE card_key = ? AND destination = ?",
                (card_key, destination),
            )

    async def mark_card_pending(
        self, card_key: str, destination: str, chat_id: str, account_id: str | None = None
    ) -> None:
        """About to create a card: if we die before learning its id, a retry knows to look
        for it in the chat instead of posting a second one."""
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO posted_cards (card_key, destination, chat_id, card_id, updated_at, "
                "account_id) VALUES (?, ?, ?, '', ?, ?) "
                "ON CONFLICT (card_key, destination) DO NOTHING",
                (card_key, destination, chat_id, time.time(), account_id),
            )

    async def requeue_failed(
        self, destinations: Sequence[str] | None, *, account_id: str | None = None
    ) -> int:
        """Failed deliveries (to these destinations, or all of `account_id`'s) go back into
        the queue. Without destinations an account is required: nobody resends another
        account's deliveries."""
        async with self._transaction() as db:
            if destinations is None:
                if account_id is None:
                    raise ValueError("resending every failed delivery needs an account")
                cursor = await db.execute(
                    "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = 0 "
                    "WHERE status = 'failed' AND account_id = ?",
                    (account_id,),
                )
                return cursor.rowcount
            total = 0
            for destination in destinations:
                kind, _, ident = destination.partition(":")
                field = "extensionId" if kind == "direct" else "chatId"
                cursor = await db.execute(
                    "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = 0 "
                    "WHERE status = 'failed' AND json_extract(destination, '$.kind') = ? "
                    "AND json_extract(destination, ?) = ?",
                    (kind, f"$.{field}", ident),
                )
                total += cursor.rowcount
            return total

    # -- small named values and counters -----------------------------------------------

    async def state(self, key: str) -> str | None:
        async with self._db.execute("SELECT value FROM bot_state WHERE key = ?", (key,)) as cur:
            row = await cur.fetchone()
        return str(row[0]) if row else None

    async def set_state(self, key: str, value: str) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO bot_state (key, value, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
                "updated_at = excluded.updated_at",
                (key, value, time.time()),
            )

    async def states_with_prefix(self, prefix: str) -> dict[str, str]:
        """Every named value whose key starts with `prefix` (taken literally)."""
        async with self._db.execute(
            "SELECT key, value FROM bot_state WHERE substr(key, 1, ?) = ?", (len(prefix), prefix)
        ) as cursor:
            return {str(r[0]): str(r[1]) for r in await cursor.fetchall()}

    async def operational_levels(self, now: float) -> OperationalLevels:
        """Queue depths and ages, and job states, for the metrics (no content is read)."""
        queues: dict[str, tuple[int, float | None]] = {}
        for queue, since in (("inbox", "received_at"), ("outbox", "created_at")):
            # Table and column names come from the fixed pairs above, never from input.
            async with self._db.execute(
                f"SELECT COUNT(*), MIN({since}) FROM {queue} WHERE status = 'pending'"  # noqa: S608
            ) as cursor:
                row = await cursor.fetchone()
            count = int(row[0]) if row else 0
            queues[queue] = (count, float(row[1]) if row and row[1] is not None else None)
        states: dict[str, dict[str, int]] = {}
        for table in ("ai_jobs", "ringcx_segments"):
            async with self._db.execute(
                f"SELECT state, COUNT(*) FROM {table} GROUP BY state"  # noqa: S608
            ) as cursor:
                states[table] = {str(r[0]): int(r[1]) for r in await cursor.fetchall()}
        return OperationalLevels(queues, states["ai_jobs"], states["ringcx_segments"])

    async def posts_today(self, account_id: str, day: str) -> int:
        async with self._db.execute(
            "SELECT count FROM daily_posts WHERE account_id = ? AND day = ?", (account_id, day)
        ) as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def count_post(self, account_id: str, day: str) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO daily_posts (account_id, day, count) VALUES (?, ?, 1) "
                "ON CONFLICT (account_id, day) DO UPDATE SET count = count + 1",
                (account_id, day),
            )

    # -- AI API jobs --------------------------------------------------------------------

    async def save_ai_job(self, job: AiJob) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO ai_jobs (job_id, requester_id, account_id, destination, "
                "source_label, recording_id, entitled_ids, webhook_secret_hash, state, "
                "requested_at, finished_at, expires_at, result, problem, speaker_names) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (job_id) DO UPDATE SET state = excluded.state, "
                "finished_at = excluded.finished_at, result = excluded.result, "
                "problem = excluded.problem, expires_at = excluded.expires_at",
                (
                    job.job_id,
                    job.requester_id,
                    job.account_id,
                    json.dumps(dict(job.destination)),
                    job.source_label,
                    job.recording_id,
                    json.dumps(sorted(job.entitled_ids)),
                    job.webhook_secret_hash,
                    job.state,
                    job.requested_at,
                    job.finished_at,
                    job.expires_at,
                    json.dumps(job.result) if job.result is not None else None,
                    job.problem,
                    json.dumps(dict(job.speaker_names)),
                ),
            )

    async def ai_job(self, job_id: str) -> AiJob | None:
        async with self._db.execute("SELECT * FROM ai_jobs WHERE job_id = ?", (job_id,)) as cur:
            row = await cur.fetchone()
        return _ai_job(row) if row else None

    async def ai_job_with_webhook_secret(self, webhook_secret_hash: str) -> AiJob | None:
        """The job whose webhook address carries this secret (by its hash): the documented
        AI callback body has no `jobId`, so the address is what names the job."""
        async with self._db.execute(
            "SELECT * FROM ai_jobs WHERE webhook_secret_hash = ?", (webhook_secret_hash,)
        ) as cur:
            row = await cur.fetchone()
        return _ai_job(row) if row else None

    async def ai_jobs_of(self, requester_id: str, limit: int) -> list[AiJob]:
        async with self._db.execute(
            "SELECT * FROM ai_jobs WHERE requester_id = ? ORDER BY requested_at DESC LIMIT ?",
            (requester_id, limit),
        ) as cursor:
            return [_ai_job(r) for r in await cursor.fetchall()]

    async def pending_ai_jobs(self, requested_before: float) -> list[AiJob]:
        async with self._db.execute(
            "SELECT * FROM ai_jobs WHERE state = 'pending' AND requested_at <= ? "
            "ORDER BY requested_at",
            (requested_before,),
        ) as cursor:
            return [_ai_job(r) for r in await cursor.fetchall()]

    # -- RingCX segments ----------------------------------------------------------------

    async def add_ringcx_segments(
        self,
        segments: Sequence[tuple[str, str, Mapping[str, Any], str | None, str | None]],
        position_key: str,
        next_position: str,
        account_id: str | None = None,
    ) -> int:
        """Remember a window's segments and move the window on, in one transaction, so a
        restart neither skips a window nor takes a segment twice."""
        added = 0
        async with self._transaction() as db:
            for dialog_id, segment_id, metadata, agent_id, group_id in segments:
                cursor = await db.execute(
                    "INSERT OR IGNORE INTO ringcx_segments (dialog_id, segment_id, metadata, "
                    "agent_extension_id, agent_group_id, found_at, account_id) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        dialog_id,
                        segment_id,
                        json.dumps(metadata),
                        agent_id,
                        group_id,
                        time.time(),
                        account_id or self.default_account_id,
                    ),
                )
                added += cursor.rowcount
            await db.execute(
                "INSERT INTO bot_state (key, value, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
                "updated_at = excluded.updated_at",
                (position_key, next_position, time.time()),
            )
        return added

    async def due_ringcx_segments(
        self, limit: int
    ) -> list[tuple[str, str, Mapping[str, Any], int]]:
        async with self._db.execute(
            "SELECT dialog_id, segment_id, metadata, attempts FROM ringcx_segments "
            "WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY found_at LIMIT ?",
            (time.time(), limit),
        ) as cursor:
            rows = await cursor.fetchall()
        return [(r[0], r[1], json.loads(r[2]), r[3]) for r in rows]

    async def ringcx_segment(self, dialog_id: str, segment_id: str) -> Mapping[str, Any] | None:
        async with self._db.execute(
            "SELECT metadata FROM ringcx_segments WHERE dialog_id = ? AND segment_id = ?",
            (dialog_id, segment_id),
        ) as cursor:
            row = await cursor.fetchone()
        return json.loads(row[0]) if row else None

    async def finish_ringcx_segment(
        self, dialog_id: str, segment_id: str, state: str, error: str | None = None
    ) -> None:
        async with self._transaction() as db:
            await db.execute(
                "UPDATE ringcx_segments SET state = ?, attempts = attempts + 1, last_error = ? "
                "WHERE dialog_id = ? AND segment_id = ?",
                (state, error, dialog_id, segment_id),
            )

    async def retry_ringcx_segment(
        self, dialog_id: str, segment_id: str, delay_s: float, error: str
    ) -> None:
        async with self._transaction() as db:
            await db.execute(
                "UPDATE ringcx_segments SET attempts = attempts + 1, next_attempt_at = ?, "
                "last_error = ? WHERE dialog_id = ? AND segment_id = ?",
                (time.time() + delay_s, error, dialog_id, segment_id),
            )

    async def ringcx_counts(self) -> dict[str, int]:
        async with self._db.execute(
            "SELECT state, COUNT(*) FROM ringcx_segments GROUP BY state"
        ) as cursor:
            return {row[0]: row[1] for row in await cursor.fetchall()}

    # -- direct chats -------------------------------------------------------------------

    async def direct_chat(self, extension_id: str) -> str | None:
        async with self._db.execute(
            "SELECT chat_id FROM direct_chats WHERE extension_id = ?", (extension_id,)
        ) as cursor:
            row = await cursor.fetchone()
        return str(row[0]) if row else None

    async def remember_direct_chat(
        self, extension_id: str, chat_id: str, account_id: str | None = None
    ) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO direct_chats (extension_id, chat_id, account_id) VALUES (?, ?, ?) "
                "ON CONFLICT (extension_id) DO UPDATE SET chat_id = excluded.chat_id, "
                "account_id = excluded.account_id",
                (extension_id, chat_id, account_id),
            )

    # -- settings -----------------------------------------------------------------------

    async def user_settings(self, extension_id: str) -> UserSettings:
        async with self._db.execute(
            "SELECT * FROM user_settings WHERE extension_id = ?", (extension_id,)
        ) as cursor:
            row = await cursor.fetchone()
        async with self._db.execute(
            "SELECT chat_id, chat_name, enabled FROM user_channels WHERE extension_id = ? "
            "ORDER BY added_at, chat_id",
            (extension_id,),
        ) as cursor:
            channels = tuple(
                Channel(r["chat_id"], r["chat_name"], bool(r["enabled"]))
                for r in await cursor.fetchall()
            )
        if row is None:
            return UserSettings(extension_id, channels=channels)
        defaults = UserSettings(extension_id)
        return UserSettings(
            extension_id=extension_id,
            account_id=row["account_id"],
            opted_in=bool(row["opted_in"]),
            direct_messages=bool(row["direct_messages"]),
            channels=channels,
            sections=tuple(json.loads(row["sections"])) if row["sections"] else defaults.sections,
            directions=(
                frozenset(json.loads(row["directions"]))
                if row["directions"]
                else defaults.directions
            ),
            internal_calls=bool(row["internal_calls"]),
            external_calls=bool(row["external_calls"]),
            min_duration_s=int(row["min_duration_s"]),
            min_ai_score=row["min_ai_score"],
            timezone=row["timezone"],
            external_to_channels=bool(row["external_to_channels"]),
            paused_until=(
                datetime.fromisoformat(row["paused_until"]) if row["paused_until"] else None
            ),
            digest_scope=row["digest_scope"] or defaults.digest_scope,
            rollup_time=None if row["rollup_time"] == "off" else row["rollup_time"],
        )

    async def save_settings(
        self, settings: UserSettings, *, before: UserSettings | None = None
    ) -> None:
        """Store a person's settings in one transaction.

        With `before` (what the change was made from), only the fields and channels that
        differ from it are written, so two changes one person makes at the same time in
        two chats (`optin` here, `channel add` there; Save on the settings card and
        `pause`) both survive. Without it, every field and channel is replaced.
        """
        columns = _settings_columns(settings)
        async with self._transaction() as db:
            if before is None:
                changed = columns
                baseline = columns
            else:
                baseline = _settings_columns(before)
                changed = {k: v for k, v in columns.items() if baseline[k] != v}
            names = ", ".join(baseline)
            marks = ", ".join("?" for _ in baseline)
            # Only fixed column names from _settings_columns are interpolated.
            await db.execute(
                f"INSERT INTO user_settings (extension_id, {names}, updated_at) "  # noqa: S608
                f"VALUES (?, {marks}, ?) ON CONFLICT (extension_id) DO NOTHING",
                (settings.extension_id, *baseline.values(), time.time()),
            )
            assignments = "".join(f"{name} = ?, " for name in changed)
            await db.execute(
                f"UPDATE user_settings SET {assignments}updated_at = ? "  # noqa: S608
                "WHERE extension_id = ?",
                (*changed.values(), time.time(), settings.extension_id),
            )
            if before is None:
                await db.execute(
                    "DELETE FROM user_channels WHERE extension_id = ?", (settings.extension_id,)
                )
                earlier: dict[str, Channel] = {}
            else:
                earlier = {c.chat_id: c for c in before.channels}
            now = {c.chat_id for c in settings.channels}
            for chat_id in earlier.keys() - now:
                await db.execute(
                    "DELETE FROM user_channels WHERE extension_id = ? AND chat_id = ?",
                    (settings.extension_id, chat_id),
                )
            for order, channel in enumerate(settings.channels):
                if earlier.get(channel.chat_id) == channel:
                    continue
                await db.execute(
                    "INSERT INTO user_channels (extension_id, chat_id, chat_name, enabled, "
                    "added_at, account_id) VALUES (?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (extension_id, chat_id) DO UPDATE SET "
                    "chat_name = excluded.chat_name, enabled = excluded.enabled",
                    (
                        settings.extension_id,
                        channel.chat_id,
                        channel.name,
                        int(channel.enabled),
                        time.time() + order * 1e-6,
                        settings.account_id,
                    ),
                )

    async def remove_channel_everywhere(self, chat_id: str) -> int:
        """The bot left a chat: nobody's digests can go there any more."""
        async with self._transaction() as db:
            cursor = await db.execute("DELETE FROM user_channels WHERE chat_id = ?", (chat_id,))
            return cursor.rowcount

    async def failed_deliveries(self, destinations: Sequence[str]) -> int:
        """How many deliveries to these destinations (`direct:…`, `chat:…`) gave up."""
        if not destinations:
            return 0
        count = 0
        for destination in destinations:
            kind, _, ident = destination.partition(":")
            field = "extensionId" if kind == "direct" else "chatId"
            async with self._db.execute(
                "SELECT COUNT(*) FROM outbox WHERE status = 'failed' "
                "AND json_extract(destination, '$.kind') = ? "
                "AND json_extract(destination, ?) = ?",
                (kind, f"$.{field}", ident),
            ) as cursor:
                row = await cursor.fetchone()
            count += int(row[0]) if row else 0
        return count

    async def set_opted_in(self, extension_id: str, opted_in: bool) -> None:
        current = await self.user_settings(extension_id)
        await self.save_settings(replace(current, opted_in=opted_in), before=current)

    # -- calls --------------------------------------------------------------------------

    async def save_call(
        self,
        call_key: str,
        *,
        domain: str,
        source_record_id: str,
        source_session_id: str | None,
        owner_extension_id: str,
        recording_start_time: str | None,
        insights: Mapping[str, Any],
        participant_ids: Sequence[str] = (),
        account_id: str | None = None,
        ringsense_url: str | None = None,
    ) -> None:
        """Store a call (its transcript apart, see `StoredCall`) in one transaction."""
        call = StoredCall(
            call_key,
            domain=domain,
            source_record_id=source_record_id,
            source_session_id=source_session_id,
            owner_extension_id=owner_extension_id,
            recording_start_time=recording_start_time,
            insights=insights,
            participant_ids=tuple(participant_ids),
            account_id=account_id,
            ringsense_url=ringsense_url,
        )
        async with self._transaction() as db:
            await _write_call(db, call)

    async def record_digest(
        self,
        call: StoredCall | None,
        deliveries: Sequence[QueuedDelivery],
        states: Mapping[str, str] | None = None,
    ) -> int:
        """A digest's writes in one transaction: the call with its participants and
        transcript, every delivery it queued, and small named values (when RingSense
        notifications last arrived). Either all of it is stored or none of it, so a crash
        in between leaves nothing half done for the retry. Returns deliveries newly queued."""
        if call is None and not deliveries and not states:
            return 0
        async with self._transaction() as db:
            if call is not None:
                await _write_call(db, call)
            queued = await _write_deliveries(db, deliveries)
            if states:
                now = time.time()
                await db.executemany(
                    "INSERT INTO bot_state (key, value, updated_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
                    "updated_at = excluded.updated_at",
                    [(key, value, now) for key, value in states.items()],
                )
        return queued

    async def call_with_account(self, call_key: str) -> tuple[str | None, Mapping[str, Any]] | None:
        """(account, insights without the transcript) of a call, whichever account it is
        of: for the one check that a record id is not stored for another account."""
        async with self._db.execute(
            "SELECT account_id, insights FROM calls WHERE call_key = ?", (call_key,)
        ) as cursor:
            row = await cursor.fetchone()
        return (row[0], orjson.loads(row[1])) if row else None

    async def call_insights(self, call_key: str) -> Mapping[str, Any] | None:
        """A call's insights as the cards use them (the transcript is read apart)."""
        async with self._db.execute(
            "SELECT insights FROM calls WHERE call_key = ?", (call_key,)
        ) as cursor:
            row = await cursor.fetchone()
        return orjson.loads(row[0]) if row else None

    async def call_of_account(
        self, call_key: str, account_id: str, *, with_transcript: bool = False
    ) -> Mapping[str, Any] | None:
        """A stored call, only if it belongs to this account (else as if it did not exist).

        The transcript, stored apart, is put back into the insights only when asked for:
        a card needs it only for Show transcript."""
        async with self._db.execute(
            "SELECT insights FROM calls WHERE call_key = ? AND account_id = ?",
            (call_key, account_id),
        ) as cursor:
            row = await cursor.fetchone()
        if row is None:
            return None
        body: dict[str, Any] = orjson.loads(row[0])
        if with_transcript and body.get(TRANSCRIPT_STORED_APART):
            async with self._db.execute(
                "SELECT utterances FROM call_transcripts WHERE call_key = ? AND account_id = ?",
                (call_key, account_id),
            ) as cursor:
                found = await cursor.fetchone()
            if found is not None:
                insights = body.get("insights")
                body["insights"] = {
                    **(insights if isinstance(insights, Mapping) else {}),
                    TRANSCRIPT_KEY: orjson.loads(found[0]),
                }
        return body

    async def calls_of(
        self, account_id: str, extension_id: str, limit: int
    ) -> list[tuple[str, Mapping[str, Any]]]:
        """The calls of this account a person owned or took part in, newest first.

        One walk down `call_participants_newest` that stops after `limit` rows, so it
        costs the same with ten calls stored or a million."""
        async with self._db.execute(
            "SELECT c.call_key, c.insights FROM call_participants p "
            "JOIN calls c ON c.call_key = p.call_key "
            "WHERE p.extension_id = ? AND p.account_id = ? AND c.account_id = ? "
            "ORDER BY p.recording_start_time DESC, p.updated_at DESC LIMIT ?",
            (extension_id, account_id, account_id, limit),
        ) as cursor:
            rows = await cursor.fetchall()
        return [(r["call_key"], orjson.loads(r["insights"])) for r in rows]

    async def call_by_ringsense_url(
        self, url: str, account_id: str
    ) -> tuple[str, Mapping[str, Any]] | None:
        """The call of this account with that RingSense link (another account's: None)."""
        async with self._db.execute(
            "SELECT call_key, insights FROM calls WHERE ringsense_url = ? AND account_id = ?",
            (url, account_id),
        ) as cursor:
            row = await cursor.fetchone()
        return (row["call_key"], orjson.loads(row["insights"])) if row else None

    async def save_feedback(self, call_key: str, extension_id: str, verdict: str) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO feedback (call_key, extension_id, verdict, created_at, account_id) "
                "VALUES (?, ?, ?, ?, (SELECT account_id FROM calls WHERE call_key = ?)) "
                "ON CONFLICT (call_key, extension_id) DO UPDATE SET "
                "verdict = excluded.verdict, created_at = excluded.created_at, "
                "account_id = excluded.account_id",
                (call_key, extension_id, verdict, time.time(), call_key),
            )

    async def feedback_for(self, call_key: str) -> dict[str, str]:
        async with self._db.execute(
            "SELECT extension_id, verdict FROM feedback WHERE call_key = ?", (call_key,)
        ) as cursor:
            return {r["extension_id"]: r["verdict"] for r in await cursor.fetchall()}

    async def first_time_seen(self, uuid: str, account_id: str | None = None) -> bool:
        """Record a card submit's uuid; False when it was seen before (a redelivery)."""
        async with self._transaction() as db:
            cursor = await db.execute(
                "INSERT OR IGNORE INTO seen_submits (uuid, seen_at, account_id) VALUES (?, ?, ?)",
                (uuid, time.time(), account_id),
            )
            return cursor.rowcount == 1

    # -- installs -----------------------------------------------------------------------

    async def save_install(self, install: StoredInstall) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO installs (bot_extension_id, account_id, access_token, "
                "creator_extension_id, source, installed_at, token_encrypted) "
                "VALUES (?, ?, ?, ?, ?, ?, 1) "
                "ON CONFLICT (bot_extension_id) DO UPDATE SET account_id = excluded.account_id, "
                "access_token = excluded.access_token, "
                "creator_extension_id = excluded.creator_extension_id, "
                "source = excluded.source, installed_at = excluded.installed_at, "
                "token_encrypted = 1",
                (
                    install.bot_extension_id,
                    install.account_id,
                    self._require_cipher().encrypt(install.access_token),
                    install.creator_extension_id,
                    install.source,
                    time.time(),
                ),
            )

    async def stored_installs(self) -> list[StoredInstall]:
        """The stored installs with their tokens decrypted. One whose token no configured key
        opens is left out (and said so): the bot cannot act for it until the key is back."""
        cipher = self._require_cipher()
        async with self._db.execute(
            "SELECT bot_extension_id, account_id, access_token, creator_extension_id, source, "
            "token_encrypted FROM installs ORDER BY installed_at"
        ) as cursor:
            rows = await cursor.fetchall()
        installs: list[StoredInstall] = []
        for r in rows:
            try:
                token = cipher.decrypt(r["access_token"]) if r["token_encrypted"] else None
            except UndecryptableSecret as err:
                log.error("install of bot %s skipped: %s", r["bot_extension_id"], err)
                continue
            if token is None:
                log.error("install of bot %s skipped: its token is not encrypted", r[0])
                continue
            installs.append(
                StoredInstall(
                    r["bot_extension_id"],
                    r["account_id"],
                    token,
                    r["creator_extension_id"],
                    r["source"],
                )
            )
        return installs

    async def install_account(self, bot_extension_id: str) -> str | None:
        """The account a stored install belongs to (no token needed)."""
        async with self._db.execute(
            "SELECT account_id FROM installs WHERE bot_extension_id = ?", (bot_extension_id,)
        ) as cursor:
            row = await cursor.fetchone()
        return str(row[0]) if row else None

    async def forget_account(self, account_id: str, bot_extension_id: str) -> dict[str, int]:
        """Delete everything stored for an account the bot was removed from: every row of
        every table that carries `account_id` (found in the schema, so a table added later
        is covered), plus rows written before rows were attributed, found through the
        account's people and the bot's own extension. Returns rows deleted per table."""
        deleted: dict[str, int] = {}

        def count(table: str, cursor: aiosqlite.Cursor) -> None:
            if cursor.rowcount > 0:
                deleted[table] = deleted.get(table, 0) + cursor.rowcount

        async with self._transaction() as db:
            people = {
                str(r[0])
                for table in ("user_settings", "direct_chats", "call_participants")
                for r in await (
                    await db.execute(
                        f"SELECT extension_id FROM {table} WHERE account_id = ?",  # noqa: S608
                        (account_id,),
                    )
                ).fetchall()
            }
            people.discard("")
            for extension_id in people:
                for table, condition in (
                    ("user_channels", "extension_id = ? AND account_id IS NULL"),
                    ("feedback", "extension_id = ? AND account_id IS NULL"),
                    ("posted_cards", "destination = 'direct:' || ? AND account_id IS NULL"),
                ):
                    count(
                        table,
                        await db.execute(
                            f"DELETE FROM {table} WHERE {condition}",  # noqa: S608
                            (extension_id,),
                        ),
                    )
            count(
                "inbox",
                await db.execute(
                    "DELETE FROM inbox WHERE account_id IS NULL "
                    "AND json_extract(payload, '$.ownerId') = ?",
                    (bot_extension_id,),
                ),
            )
            count(
                "subscriptions",
                await db.execute(
                    "DELETE FROM subscriptions WHERE identity = ?", (f"bot:{bot_extension_id}",)
                ),
            )
            count(
                "installs",
                await db.execute(
                    "DELETE FROM installs WHERE bot_extension_id = ?", (bot_extension_id,)
                ),
            )
            for table in await self._tables_with_account(db):
                count(
                    table,
                    await db.execute(
                        f"DELETE FROM {table} WHERE account_id = ?",  # noqa: S608
                        (account_id,),
                    ),
                )
            if deleted.get(SEARCH_TABLE):
                await _optimise_search_index(db)
        self._owner_accounts.pop(bot_extension_id, None)
        return deleted

    @staticmethod
    async def _tables_with_account(db: aiosqlite.Connection) -> list[str]:
        """Every table of ours with an `account_id` column, read from the schema."""
        async with db.execute(
            "SELECT m.name FROM sqlite_master m, pragma_table_info(m.name) c "
            "WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND c.name = 'account_id' "
            "ORDER BY m.name"
        ) as cursor:
            return [str(r[0]) for r in await cursor.fetchall()]

    # -- retention ----------------------------------------------------------------------

    async def prune(
        self,
        *,
        now: float,
        messages_days: int,
        calls_days: int,
        dedupe_days: float,
    ) -> dict[str, int]:
        """Delete people's words once they are older than the retention allows.

        - Finished inbox rows (notification payloads: chat messages, insights) and finished
          outbox rows (cards) lose their content after `messages_days`. The bare row (the
          notification `uuid`, the delivery's dedupe key, no words) is kept until
          `dedupe_days` has also passed, because that key is what makes a notification
          RingCentral redelivers, or one catch-up finds again, a no-op; only then is the
          row deleted. Pending work is never pruned. A failed delivery past retention is
          deleted (`resend` could no longer send its content).
        - Calls whose insights last changed more than `calls_days` ago go, with their
          participants, transcript, feedback and the ids of their posted cards. A call
          updated within retention keeps its card id, so a later event still updates that
          card in place.
          Finished AI analyses follow the same rule.
        Returns rows changed or deleted per table.
        """
        messages_cutoff = now - messages_days * DAY_S
        keys_cutoff = now - max(messages_days, dedupe_days) * DAY_S
        calls_cutoff = now - calls_days * DAY_S
        changed: dict[str, int] = {}

        def note(table: str, count: int) -> None:
            if count > 0:
                changed[table] = changed.get(table, 0) + count

        # Each statement picks at most PRUNE_BATCH rows through an index (never a scan of
        # the table) and each batch is its own short transaction, so a round that has a
        # million rows to prune never holds the database for long: webhooks, digests and
        # start-up go on in between.
        batched: tuple[tuple[str, str, tuple[Any, ...]], ...] = (
            (
                "inbox",
                "UPDATE inbox SET payload = '{}', last_error = NULL WHERE id IN "
                "(SELECT id FROM inbox INDEXED BY inbox_words_kept "
                "WHERE status != 'pending' AND payload != '{}' "
                "AND received_at < ? LIMIT ?)",
                (messages_cutoff,),
            ),
            (
                "inbox",
                "DELETE FROM inbox WHERE id IN (SELECT id FROM inbox "
                "WHERE status != 'pending' AND received_at < ? LIMIT ?)",
                (keys_cutoff,),
            ),
            (
                "outbox",
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox "
                "WHERE status = 'failed' AND created_at < ? LIMIT ?)",
                (messages_cutoff,),
            ),
            (
                "outbox",
                "UPDATE outbox SET message = '{}', last_error = NULL WHERE id IN "
                "(SELECT id FROM outbox INDEXED BY outbox_words_kept "
                "WHERE status = 'sent' AND message != '{}' "
                "AND created_at < ? LIMIT ?)",
                (messages_cutoff,),
            ),
            (
                "outbox",
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox "
                "WHERE status = 'sent' AND created_at < ? LIMIT ?)",
                (keys_cutoff,),
            ),
            (
                "seen_submits",
                "DELETE FROM seen_submits WHERE uuid IN "
                "(SELECT uuid FROM seen_submits WHERE seen_at < ? LIMIT ?)",
                (keys_cutoff,),
            ),
        )
        for table, sql, params in batched:
            while True:
                async with self._transaction() as db:
                    cursor = await db.execute(sql, (*params, PRUNE_BATCH))
                    count = cursor.rowcount
                note(table, count)
                if count < PRUNE_BATCH:
                    break
                await asyncio.sleep(0)
        while True:
            async with self._transaction() as db:
                async with db.execute(
                    "SELECT call_key FROM calls WHERE updated_at < ? LIMIT ?",
                    (calls_cutoff, PRUNE_BATCH),
                ) as cursor:
                    keys = [str(r[0]) for r in await cursor.fetchall()]
                chosen = _compact_json(keys)
                for table, column in (
                    ("feedback", "call_key"),
                    ("call_participants", "call_key"),
                    ("posted_cards", "card_key"),
                    ("call_transcripts", "call_key"),
                    ("next_steps", "call_key"),
                    ("skipped_digests", "call_key"),
                    (SEARCH_TABLE, "call_key"),
                    ("calls", "call_key"),
                ):
                    # Table and column names come from the fixed pairs above.
                    cursor = await db.execute(
                        f"DELETE FROM {table} WHERE {column} IN "  # noqa: S608
                        "(SELECT value FROM json_each(?))",
                        (chosen,),
                    )
                    note(table, cursor.rowcount)
            if len(keys) < PRUNE_BATCH:
                break
            await asyncio.sleep(0)
        # Small tables (a row per analysis, segment or day), pruned in one go.
        rest: tuple[tuple[str, str, tuple[Any, ...]], ...] = (
            (
                "ringcx_segments",
                "DELETE FROM ringcx_segments WHERE state != 'pending' AND found_at < ?",
                (messages_cutoff,),
            ),
            (
                "posted_cards",
                "DELETE FROM posted_cards WHERE card_key IN (SELECT 'ai:' || job_id FROM ai_jobs "
                "WHERE state != 'pending' AND requested_at < ?)",
                (calls_cutoff,),
            ),
            (
                "ai_jobs",
                "DELETE FROM ai_jobs WHERE state != 'pending' AND requested_at < ?",
                (calls_cutoff,),
            ),
            (
                "daily_posts",
                "DELETE FROM daily_posts WHERE day < ?",
                (datetime.fromtimestamp(now - 2 * DAY_S, UTC).strftime("%Y-%m-%d"),),
            ),
        )
        async with self._transaction() as db:
            for table, sql, params in rest:
                cursor = await db.execute(sql, params)
                note(table, cursor.rowcount)
            if changed.get(SEARCH_TABLE):
                await _optimise_search_index(db)
        return changed

    # -- RingSense connections (h8-connect) -----------------------------------------------

    async def add_connect_link(self, state_hash: str, link: ConnectLink) -> None:
        async with self._transaction() as db:
            await db.execute(
                "DELETE FROM ringsense_connect_links WHERE expires_at <= ?", (time.time(),)
            )
            await db.execute(
                "INSERT INTO ringsense_connect_links (state_hash, account_id, "
                "admin_extension_id, code_verifier, expires_at) VALUES (?, ?, ?, ?, ?)",
                (
                    state_hash,
                    link.account_id,
                    link.admin_extension_id,
                    link.code_verifier_encrypted,
                    link.expires_at,
                ),
            )

    async def open_connect_link(self, state_hash: str) -> ConnectLink | None:
        """The link, if it is live and was never opened; it counts as opened from now on."""
        async with self._transaction() as db:
            cursor = await db.execute(
                "UPDATE ringsense_connect_links SET opened = 1 "
                "WHERE state_hash = ? AND opened = 0 AND expires_at > ?",
                (state_hash, time.time()),
            )
            if cursor.rowcount != 1:
                return None
            row = await (
                await db.execute(
                    "SELECT * FROM ringsense_connect_links WHERE state_hash = ?", (state_hash,)
                )
            ).fetchone()
        return _connect_link(row) if row else None

    async def take_connect_link(self, state_hash: str) -> ConnectLink | None:
        """The opened, live link for a callback's state, deleted so it can never serve again."""
        async with self._transaction() as db:
            row = await (
                await db.execute(
                    "SELECT * FROM ringsense_connect_links WHERE state_hash = ?", (state_hash,)
                )
            ).fetchone()
            await db.execute(
                "DELETE FROM ringsense_connect_links WHERE state_hash = ?", (state_hash,)
            )
        if row is None or not row["opened"] or row["expires_at"] <= time.time():
            return None
        return _connect_link(row)

    async def save_ringsense_connection(self, connection: RingSenseConnection) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO ringsense_connections (account_id, owner_extension_id, "
                "refresh_token, connected_by, connected_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (account_id) DO UPDATE SET "
                "owner_extension_id = excluded.owner_extension_id, "
                "refresh_token = excluded.refresh_token, "
                "connected_by = excluded.connected_by, connected_at = excluded.connected_at",
                (
                    connection.account_id,
                    connection.owner_extension_id,
                    connection.refresh_token_encrypted,
                    connection.connected_by,
                    connection.connected_at,
                ),
            )

    async def replace_ringsense_refresh_token(self, account_id: str, encrypted: str) -> bool:
        """Keep the newest refresh token (the old one is spent); False if disconnected."""
        async with self._transaction() as db:
            cursor = await db.execute(
                "UPDATE ringsense_connections SET refresh_token = ? WHERE account_id = ?",
                (encrypted, account_id),
            )
            return cursor.rowcount == 1

    async def ringsense_connection(self, account_id: str) -> RingSenseConnection | None:
        async with self._db.execute(
            "SELECT * FROM ringsense_connections WHERE account_id = ?", (account_id,)
        ) as cursor:
            row = await cursor.fetchone()
        return _ringsense_connection(row) if row else None

    async def ringsense_connections(self) -> list[RingSenseConnection]:
        async with self._db.execute("SELECT * FROM ringsense_connections") as cursor:
            rows = await cursor.fetchall()
        return [_ringsense_connection(r) for r in rows]

    async def forget_ringsense_connection(self, account_id: str) -> None:
        async with self._transaction() as db:
            await db.execute(
                "DELETE FROM ringsense_connections WHERE account_id = ?", (account_id,)
            )
            await db.execute(
                "DELETE FROM ringsense_connect_links WHERE account_id = ?", (account_id,)
            )
            await db.execute(
                "DELETE FROM subscriptions WHERE identity = ?", (f"ringsense:{account_id}",)
            )

    # -- subscriptions ------------------------------------------------------------------

    async def subscriptions(self, identity: str) -> list[StoredSubscription]:
        async with self._db.execute(
            "SELECT id, identity, address, event_filters, token_fingerprint, expiration_time "
            "FROM subscriptions WHERE identity = ?",
            (identity,),
        ) as cursor:
            rows = await cursor.fetchall()
        return [
            StoredSubscription(
                r["id"],
                r["identity"],
                r["address"],
                tuple(json.loads(r["event_filters"])),
                r["token_fingerprint"],
                r["expiration_time"],
            )
            for r in rows
        ]

    async def save_subscription(self, subscription: StoredSubscription) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO subscriptions (id, identity, address, event_filters, "
                "token_fingerprint, expiration_time, created_at, account_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET expiration_time = excluded.expiration_time",
                (
                    subscription.id,
                    subscription.identity,
                    subscription.address,
                    json.dumps(list(subscription.event_filters)),
                    subscription.token_fingerprint,
                    subscription.expiration_time,
                    time.time(),
                    self._account_of_identity(subscription.identity),
                ),
            )

    def _account_of_identity(self, identity: str) -> str | None:
        """`bot:<extension>` belongs to that bot's account (and goes when it is removed).
        The service user's own subscriptions belong to the operator, not to an install."""
        kind, _, owner = identity.partition(":")
        return self._owner_accounts.get(owner) if kind == "bot" else None

    async def forget_subscription(self, subscription_id: str) -> None:
        async with self._transaction() as db:
            await db.execute("DELETE FROM subscriptions WHERE id = ?", (subscription_id,))

    # -- next steps as to-do items (h11-around) --------------------------------------------

    async def save_next_steps(
        self,
        call_key: str,
        account_id: str,
        steps: Sequence[tuple[str, str, str | None]],
    ) -> None:
        """Store a call's next steps `(assignee extension, text, owner name)` as items.

        A step already stored (same call, same text) keeps its state, so a later event for
        the call never reopens what someone marked done; an open step the newer insights no
        longer list goes; a done one stays (it was done)."""
        now = time.time()
        async with self._transaction() as db:
            texts = [text for _, text, _ in steps]
            marks = ", ".join("?" for _ in texts)
            await db.execute(
                "DELETE FROM next_steps WHERE call_key = ? AND account_id = ? "  # noqa: S608
                f"AND state = 'open' AND text NOT IN ({marks})",  # only ? marks interpolated
                (call_key, account_id, *texts),
            )
            for position, (assignee, text, owner_name) in enumerate(steps):
                await db.execute(
                    "INSERT INTO next_steps (account_id, call_key, position, "
                    "assignee_extension_id, owner_name, text, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (call_key, text) DO UPDATE SET "
                    "position = excluded.position, "
                    "assignee_extension_id = excluded.assignee_extension_id, "
                    "owner_name = excluded.owner_name "
                    "WHERE next_steps.account_id = excluded.account_id",
                    (account_id, call_key, position, assignee, owner_name, text, now),
                )

    async def open_next_steps(
        self, account_id: str, assignee_extension_id: str | None, limit: int
    ) -> tuple[list[NextStepItem], int]:
        """This account's open items (one person's, or with None everyone's), newest calls
        first, at most `limit`; and how many there are in all."""
        where = "n.account_id = ? AND n.state = 'open'"
        params: tuple[Any, ...] = (account_id,)
        if assignee_extension_id is not None:
            where += " AND n.assignee_extension_id = ?"
            params += (assignee_extension_id,)
        async with self._db.execute(
            f"SELECT COUNT(*) FROM next_steps n WHERE {where}",  # noqa: S608 - fixed text
            params,
        ) as cursor:
            row = await cursor.fetchone()
        total = int(row[0]) if row else 0
        async with self._db.execute(
            "SELECT n.*, json_extract(c.insights, '$.title') AS call_title, "  # noqa: S608
            "c.recording_start_time AS call_start FROM next_steps n "
            "JOIN calls c ON c.call_key = n.call_key AND c.account_id = n.account_id "
            f"WHERE {where} "  # fixed text only
            "ORDER BY c.recording_start_time DESC, c.updated_at DESC, n.call_key, n.position "
            "LIMIT ?",
            (*params, limit),
        ) as cursor:
            rows = await cursor.fetchall()
        return [_next_step_item(r) for r in rows], total

    async def next_step(self, item_id: int, account_id: str) -> NextStepItem | None:
        """One item, only if it belongs to this account (else as if it did not exist)."""
        async with self._db.execute(
            "SELECT n.*, json_extract(c.insights, '$.title') AS call_title, "
            "c.recording_start_time AS call_start FROM next_steps n "
            "JOIN calls c ON c.call_key = n.call_key AND c.account_id = n.account_id "
            "WHERE n.item_id = ? AND n.account_id = ?",
            (item_id, account_id),
        ) as cursor:
            row = await cursor.fetchone()
        return _next_step_item(row) if row else None

    async def mark_next_step_done(self, item_id: int, account_id: str, done_by: str) -> bool:
        """Close an open item of this account; False when it was not open (or not theirs)."""
        async with self._transaction() as db:
            cursor = await db.execute(
                "UPDATE next_steps SET state = 'done', done_by = ?, done_at = ? "
                "WHERE item_id = ? AND account_id = ? AND state = 'open'",
                (done_by, time.time(), item_id, account_id),
            )
            return cursor.rowcount > 0

    # -- searching calls (h11-around) ------------------------------------------------------

    async def index_call(self, call_key: str, account_id: str, lines: Sequence[SearchLine]) -> None:
        """Replace what `find` knows of a call with these lines."""
        async with self._transaction() as db:
            await db.execute(
                f"DELETE FROM {SEARCH_TABLE} WHERE call_key = ?",  # noqa: S608 - a constant
                (call_key,),
            )
            await db.executemany(
                f"INSERT INTO {SEARCH_TABLE} (text, account_id, call_key, kind, "  # noqa: S608
                "position, offset_s, speaker) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        line.text,
                        account_id,
                        call_key,
                        line.kind,
                        line.position,
                        line.offset_s,
                        line.speaker,
                    )
                    for line in lines
                ],
            )

    async def search_calls(
        self,
        account_id: str,
        match: str,
        *,
        participant: str | None,
        call_key: str | None = None,
        kinds: Sequence[str] | None = None,
        limit: int = 500,
    ) -> list[SearchHit]:
        """Lines of this account's calls matching an FTS5 `match` expression, best first.

        With `participant`, only calls that person owned or took part in; with `call_key`,
        one call; with `kinds`, only those kinds of line. The caller builds `match` from
        quoted words only (`bot.search.match_expression`)."""
        conditions = [f"{SEARCH_TABLE} MATCH ?", "s.account_id = ?"]
        params: list[Any] = [match, account_id]
        if participant is not None:
            conditions.append(
                "EXISTS (SELECT 1 FROM call_participants p WHERE p.call_key = s.call_key "
                "AND p.account_id = s.account_id AND p.extension_id = ?)"
            )
            params.append(participant)
        if call_key is not None:
            conditions.append("s.call_key = ?")
            params.append(call_key)
        if kinds:
            conditions.append(f"s.kind IN ({', '.join('?' for _ in kinds)})")
            params.extend(kinds)
        async with self._db.execute(
            "SELECT s.call_key, s.kind, s.position, s.offset_s, s.speaker, s.text, "  # noqa: S608
            f"bm25({SEARCH_TABLE}) AS score, c.recording_start_time "
            f"FROM {SEARCH_TABLE} s JOIN calls c "
            "ON c.call_key = s.call_key AND c.account_id = s.account_id "
            f"WHERE {' AND '.join(conditions)} "
            "ORDER BY score, c.recording_start_time DESC, c.updated_at DESC LIMIT ?",
            (*params, limit),
        ) as cursor:
            rows = await cursor.fetchall()
        return [
            SearchHit(
                call_key=str(r["call_key"]),
                line=SearchLine(
                    kind=str(r["kind"]),
                    position=int(r["position"]),
                    offset_s=float(r["offset_s"]) if r["offset_s"] is not None else None,
                    speaker=r["speaker"],
                    text=str(r["text"]),
                ),
                score=float(r["score"]),
                recording_start_time=r["recording_start_time"],
            )
            for r in rows
        ]

    # -- daily rollup (h11-around) ---------------------------------------------------------

    async def rollup_candidates(self) -> list[UserSettings]:
        """Everyone who may get a daily rollup: opted in, of a known account, not off."""
        async with self._db.execute(
            "SELECT extension_id FROM user_settings WHERE opted_in = 1 "
            "AND account_id IS NOT NULL AND rollup_time != 'off' ORDER BY extension_id"
        ) as cursor:
            people = [str(r[0]) for r in await cursor.fetchall()]
        return [await self.user_settings(person) for person in people]

    async def last_rollup_day(self, account_id: str, extension_id: str) -> str | None:
        """The last day (YYYY-MM-DD, the person's own calendar) whose rollup was handled."""
        async with self._db.execute(
            "SELECT day FROM rollup_days WHERE account_id = ? AND extension_id = ?",
            (account_id, extension_id),
        ) as cursor:
            row = await cursor.fetchone()
        return str(row[0]) if row else None

    async def set_last_rollup_day(self, account_id: str, extension_id: str, day: str) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO rollup_days (account_id, extension_id, day, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (account_id, extension_id) DO UPDATE SET "
                "day = excluded.day, updated_at = excluded.updated_at",
                (account_id, extension_id, day, time.time()),
            )

    # -- digests skipped while paused (h11-around) -----------------------------------------

    async def note_skipped_digest(self, account_id: str, extension_id: str, call_key: str) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT OR IGNORE INTO skipped_digests (account_id, extension_id, call_key, "
                "skipped_at) VALUES (?, ?, ?, ?)",
                (account_id, extension_id, call_key, time.time()),
            )

    async def take_skipped_digests(
        self, account_id: str, extension_id: str
    ) -> list[tuple[str, Mapping[str, Any]]]:
        """The calls whose digest this person missed while paused, newest first, and
        forget them (they are offered once)."""
        async with self._transaction() as db:
            async with db.execute(
                "SELECT c.call_key, c.insights FROM skipped_digests s JOIN calls c "
                "ON c.call_key = s.call_key AND c.account_id = s.account_id "
                "WHERE s.account_id = ? AND s.extension_id = ? "
                "ORDER BY c.recording_start_time DESC, s.skipped_at DESC",
                (account_id, extension_id),
            ) as cursor:
                rows = await cursor.fetchall()
            await db.execute(
                "DELETE FROM skipped_digests WHERE account_id = ? AND extension_id = ?",
                (account_id, extension_id),
            )
        return [(str(r["call_key"]), json.loads(r["insights"])) for r in rows]


def _excluding(ids: Sequence[int]) -> tuple[str, tuple[str, ...]]:
    """A condition leaving out these ids, however many: one JSON parameter."""
    if not ids:
        return "", ()
    return "AND id NOT IN (SELECT value FROM json_each(?))", (json.dumps(list(ids)),)


def _json_text(payload: Mapping[str, Any]) -> str:
    """Compact JSON of what the bot made itself. orjson, unless the value holds what it
    refuses (a lone surrogate read from an API, a key that is not a string)."""
    try:
        return orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(payload, separators=(",", ":"))


def _settings_columns(settings: UserSettings) -> dict[str, Any]:
    """The `user_settings` columns (but the key and `updated_at`) as stored."""
    return {
        "account_id": settings.account_id,
        "opted_in": int(settings.opted_in),
        "timezone": settings.timezone,
        "direct_messages": int(settings.direct_messages),
        "sections": json.dumps(list(settings.sections)),
        "directions": json.dumps(sorted(settings.directions)),
        "internal_calls": int(settings.internal_calls),
        "external_calls": int(settings.external_calls),
        "min_duration_s": settings.min_duration_s,
        "min_ai_score": settings.min_ai_score,
        "external_to_channels": int(settings.external_to_channels),
        "paused_until": settings.paused_until.isoformat() if settings.paused_until else None,
        "digest_scope": settings.digest_scope,
        "rollup_time": settings.rollup_time or "off",
    }


def _split_statements(script: str) -> list[str]:
    """Our migrations hold no `;` inside literals, so splitting on it is exact."""
    return [s.strip() for s in script.split(";") if s.strip()]


def _prepare_private_file(path: Path) -> None:
    """Create the database's folder (0700) and file (0600) before SQLite does, so they are
    never readable by others, not even for a moment."""
    folder = path.parent
    if not folder.exists():
        folder.mkdir(parents=True, mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)  # mkdir's mode is filtered by the umask; be exact
    elif folder.stat().st_mode & 0o007:
        log.warning(
            "the database folder %s is open to other users; consider `chmod 700` on it", folder
        )
    descriptor = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(descriptor)
    _tighten_files(path)


def _tighten_files(path: Path) -> None:
    """The database and its -wal/-shm/-journal files: owner read/write only. A file found
    with wider permissions (made by an older version, or copied in) is tightened and
    reported."""
    for candidate in (path, *(Path(f"{path}{suffix}") for suffix in ("-wal", "-shm", "-journal"))):
        try:
            mode = stat.S_IMODE(candidate.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            os.chmod(candidate, 0o600)
            log.warning("%s was readable by others (mode %o); now 0600", candidate, mode)


def _connect_link(row: aiosqlite.Row) -> ConnectLink:
    return ConnectLink(
        account_id=row["account_id"],
        admin_extension_id=row["admin_extension_id"],
        code_verifier_encrypted=row["code_verifier"],
        expires_at=row["expires_at"],
    )


def _ringsense_connection(row: aiosqlite.Row) -> RingSenseConnection:
    return RingSenseConnection(
        account_id=row["account_id"],
        owner_extension_id=row["owner_extension_id"],
        refresh_token_encrypted=row["refresh_token"],
        connected_by=row["connected_by"],
        connected_at=row["connected_at"],
    )


def _next_step_item(row: aiosqlite.Row) -> NextStepItem:
    title = row["call_title"]
    return NextStepItem(
        item_id=int(row["item_id"]),
        account_id=str(row["account_id"]),
        call_key=str(row["call_key"]),
        assignee_extension_id=str(row["assignee_extension_id"]),
        owner_name=row["owner_name"],
        text=str(row["text"]),
        state=str(row["state"]),
        call_title=title if isinstance(title, str) else "",
        call_start=row["call_start"],
    )


async def _optimise_search_index(db: aiosqlite.Connection) -> None:
    """Merge the FTS5 index so deleted lines leave no words in its segments (with
    `secure_delete` the freed pages are overwritten too)."""
    await db.execute("INSERT INTO call_search(call_search) VALUES ('optimize')")
