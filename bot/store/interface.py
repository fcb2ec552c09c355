"""What the bot asks of its storage, one protocol per table family.

Drawn from the SQLite `Storage` (bot/store/sqlite.py); a second backend implements
the same protocols, and code that only needs one family can ask for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, runtime_checkable

from bot.events import Notification
from bot.settings import UserSettings
from bot.store.records import (
    REPLY_PRIORITY,
    AiJob,
    ConnectLink,
    DeliveryReads,
    InboxItem,
    NextStepItem,
    OperationalLevels,
    OutboxItem,
    PostPlace,
    QueuedDelivery,
    RingSenseConnection,
    SearchHit,
    SearchLine,
    StoredCall,
    StoredCard,
    StoredInstall,
    StoredSubscription,
)


class CoreStore(Protocol):
    """What every storage backend offers for the connection, its pragmas, transactions,
    migrating, secret keys, and which account a subscription owner belongs to; tables
    `schema_version`.
    """

    def attribute_owner(self, owner_id: str, account_id: str) -> None: ...

    def account_of_owner(self, owner_id: str | None) -> str | None: ...

    async def rotate_secret_key(self) -> int: ...

    async def close(self) -> None: ...

    async def checkpoint(self) -> None: ...

    async def schema_version(self) -> int: ...

    on_inbox_committed: Callable[[Sequence[InboxItem]], None]

    on_outbox_queued: Callable[[OutboxItem], None]

    record_digest_hands_over: bool

    default_account_id: str | None


class InboxStore(Protocol):
    """What every storage backend offers for notifications received: `inbox`."""

    async def add_notification(
        self, notification: Notification, raw: str | None = None
    ) -> bool: ...

    async def add_to_inbox(
        self,
        uuid: str,
        kind: str,
        payload: Mapping[str, Any],
        account_id: str | None = None,
        *,
        raw: str | None = None,
    ) -> bool: ...

    @property
    def inbox_watermark(self) -> int: ...

    async def due_inbox(self, limit: int, exclude_ids: Sequence[int] = ()) -> list[InboxItem]: ...

    async def due_inbox_not_handed_over(
        self, limit: int, exclude_ids: Sequence[int] = ()
    ) -> list[InboxItem]: ...

    async def inbox_items(self, ids: Sequence[int]) -> list[InboxItem]: ...

    async def finish_inbox(self, item_id: int, status: str, error: str | None = None) -> None: ...

    async def retry_inbox_later(self, item_id: int, delay_s: float, error: str) -> float: ...

    async def inbox_counts(self) -> dict[str, int]: ...

    async def ringsense_notification_handled(self, source_record_id: str) -> bool: ...

    async def next_inbox_due_at(self) -> float | None: ...

    async def next_inbox_retry_at(self, after: float) -> float | None: ...


class OutboxStore(Protocol):
    """What every storage backend offers for messages to send and the cards already posted:
    `outbox`, `posted_cards`.
    """

    async def enqueue(
        self,
        dedupe_key: str,
        destination: Mapping[str, str],
        message: Mapping[str, Any],
        card_key: str | None = None,
        account_id: str | None = None,
        priority: int = REPLY_PRIORITY,
    ) -> bool: ...

    async def due_outbox(self, limit: int, exclude_ids: Sequence[int] = ()) -> list[OutboxItem]: ...

    async def outbox_items(self, ids: Sequence[int]) -> list[OutboxItem]: ...

    async def newer_version_sent(self, item: OutboxItem) -> bool: ...

    async def delivery_reads(self, item: OutboxItem, destination: str) -> DeliveryReads: ...

    async def mark_sent(self, item_id: int) -> None: ...

    async def delivered(
        self,
        item_id: int,
        *,
        account_id: str | None,
        day: str | None,
        card: tuple[str, str, str, str] | None = None,
    ) -> None: ...

    async def retry_outbox_later(self, item_id: int, delay_s: float, error: str) -> float: ...

    async def postpone_outbox(self, item_id: int, delay_s: float, reason: str) -> float: ...

    async def mark_failed(self, item_id: int, error: str) -> None: ...

    async def outbox_counts(self) -> dict[str, int]: ...

    async def next_outbox_due_at(self, after: float | None = None) -> float | None: ...

    async def posted_card(self, card_key: str, destination: str) -> StoredCard | None: ...

    async def remember_card(
        self,
        card_key: str,
        destination: str,
        chat_id: str,
        card_id: str,
        account_id: str | None = None,
    ) -> None: ...

    async def card_destinations(self, card_key: str) -> set[str]: ...

    async def forget_pending_card(self, card_key: str, destination: str) -> None: ...

    async def forget_card(self, card_key: str, destination: str) -> None: ...

    async def mark_card_pending(
        self, card_key: str, destination: str, chat_id: str, account_id: str | None = None
    ) -> None: ...

    async def take_post(
        self,
        account_id: str,
        day: str,
        budget: int,
        card: tuple[str, str, str] | None = None,
    ) -> PostPlace: ...

    async def give_back_post(self, account_id: str, day: str) -> None: ...

    async def requeue_failed(
        self, destinations: Sequence[str] | None, *, account_id: str | None = None
    ) -> int: ...

    async def failed_deliveries(self, destinations: Sequence[str]) -> int: ...


class SettingsStore(Protocol):
    """What every storage backend offers for people's settings and small named values:
    `user_settings`, `user_channels`, `direct_chats`, `bot_state`, `daily_posts`.
    """

    async def state(self, key: str) -> str | None: ...

    async def set_state(self, key: str, value: str) -> None: ...

    async def states_with_prefix(self, prefix: str) -> dict[str, str]: ...

    async def posts_today(self, account_id: str, day: str) -> int: ...

    async def count_post(self, account_id: str, day: str) -> None: ...

    async def direct_chat(self, extension_id: str) -> str | None: ...

    async def remember_direct_chat(
        self, extension_id: str, chat_id: str, account_id: str | None = None
    ) -> None: ...

    async def user_settings(self, extension_id: str) -> UserSettings: ...

    async def save_settings(
        self, settings: UserSettings, *, before: UserSettings | None = None
    ) -> None: ...

    async def remove_channel_everywhere(self, chat_id: str) -> int: ...

    async def set_opted_in(self, extension_id: str, opted_in: bool) -> None: ...

    async def record_digest(
        self,
        call: StoredCall | None,
        deliveries: Sequence[QueuedDelivery],
        states: Mapping[str, str] | None = None,
        *,
        next_steps: Sequence[tuple[str, str, str | None]] | None = None,
        search_lines: Sequence[SearchLine] | None = None,
        finished_inbox_id: int | None = None,
    ) -> int: ...


class CallStore(Protocol):
    """What every storage backend offers for calls and what came of them: `calls`,
    `call_participants`, `feedback`, `seen_submits`, and (when present) next steps, search,
    skipped digests, rollups.
    """

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
    ) -> None: ...

    async def call_with_account(
        self, call_key: str
    ) -> tuple[str | None, Mapping[str, Any]] | None: ...

    async def call_with_account_and_feedback(
        self, call_key: str
    ) -> tuple[tuple[str | None, Mapping[str, Any]] | None, dict[str, str]]: ...

    async def call_insights(self, call_key: str) -> Mapping[str, Any] | None: ...

    async def call_of_account(
        self, call_key: str, account_id: str, *, with_transcript: bool = False
    ) -> Mapping[str, Any] | None: ...

    async def calls_of(
        self, account_id: str, extension_id: str, limit: int
    ) -> list[tuple[str, Mapping[str, Any]]]: ...

    async def call_by_ringsense_url(
        self, url: str, account_id: str
    ) -> tuple[str, Mapping[str, Any]] | None: ...

    async def save_feedback(self, call_key: str, extension_id: str, verdict: str) -> None: ...

    async def feedback_for(self, call_key: str) -> dict[str, str]: ...

    async def first_time_seen(self, uuid: str, account_id: str | None = None) -> bool: ...

    async def save_next_steps(
        self,
        call_key: str,
        account_id: str,
        steps: Sequence[tuple[str, str, str | None]],
    ) -> None: ...

    async def open_next_steps(
        self, account_id: str, assignee_extension_id: str | None, limit: int
    ) -> tuple[list[NextStepItem], int]: ...

    async def next_step(self, item_id: int, account_id: str) -> NextStepItem | None: ...

    async def mark_next_step_done(self, item_id: int, account_id: str, done_by: str) -> bool: ...

    async def index_call(
        self, call_key: str, account_id: str, lines: Sequence[SearchLine]
    ) -> None: ...

    async def search_calls(
        self,
        account_id: str,
        match: str,
        *,
        participant: str | None,
        call_key: str | None = None,
        kinds: Sequence[str] | None = None,
        limit: int = 500,
    ) -> list[SearchHit]: ...

    async def rollup_candidates(self) -> list[UserSettings]: ...

    async def last_rollup_day(self, account_id: str, extension_id: str) -> str | None: ...

    async def set_last_rollup_day(self, account_id: str, extension_id: str, day: str) -> None: ...

    async def note_skipped_digest(
        self, account_id: str, extension_id: str, call_key: str
    ) -> None: ...

    async def take_skipped_digests(
        self, account_id: str, extension_id: str
    ) -> list[tuple[str, Mapping[str, Any]]]: ...


class AccountStore(Protocol):
    """What every storage backend offers for installs, subscriptions and RingSense connections:
    `installs`, `subscriptions`, `ringsense_connections`, `ringsense_connect_links`; and
    forgetting an account.
    """

    async def save_install(self, install: StoredInstall) -> None: ...

    async def stored_installs(self) -> list[StoredInstall]: ...

    async def install_account(self, bot_extension_id: str) -> str | None: ...

    async def forget_account(self, account_id: str, bot_extension_id: str) -> dict[str, int]: ...

    async def add_connect_link(self, state_hash: str, link: ConnectLink) -> None: ...

    async def open_connect_link(self, state_hash: str) -> ConnectLink | None: ...

    async def take_connect_link(self, state_hash: str) -> ConnectLink | None: ...

    async def save_ringsense_connection(self, connection: RingSenseConnection) -> None: ...

    async def replace_ringsense_refresh_token(self, account_id: str, encrypted: str) -> bool: ...

    async def ringsense_connection(self, account_id: str) -> RingSenseConnection | None: ...

    async def ringsense_connections(self) -> list[RingSenseConnection]: ...

    async def forget_ringsense_connection(self, account_id: str) -> None: ...

    def ringsense_refresh_turn(self, account_id: str) -> AbstractAsyncContextManager[None]:
        """Held while the account's single-use refresh token is read, spent and replaced:
        replicas take turns (PostgreSQL: an advisory lock), so the one that waited reads
        the token the other stored instead of spending a dead one."""
        ...

    async def subscriptions(self, identity: str) -> list[StoredSubscription]: ...

    async def save_subscription(self, subscription: StoredSubscription) -> None: ...

    async def forget_subscription(self, subscription_id: str) -> None: ...


class AiJobStore(Protocol):
    """What every storage backend offers for AI API jobs: `ai_jobs`."""

    async def save_ai_job(self, job: AiJob) -> None: ...

    async def ai_job(self, job_id: str) -> AiJob | None: ...

    async def ai_job_with_webhook_secret(self, webhook_secret_hash: str) -> AiJob | None: ...

    async def ai_jobs_of(self, requester_id: str, limit: int) -> list[AiJob]: ...

    async def pending_ai_jobs(self, requested_before: float) -> list[AiJob]: ...


class RingCxStore(Protocol):
    """What every storage backend offers for RingCX segments: `ringcx_segments`."""

    async def add_ringcx_segments(
        self,
        segments: Sequence[tuple[str, str, Mapping[str, Any], str | None, str | None]],
        position_key: str,
        next_position: str,
        account_id: str | None = None,
    ) -> int: ...

    async def due_ringcx_segments(
        self, limit: int
    ) -> list[tuple[str, str, Mapping[str, Any], int]]: ...

    async def ringcx_segment(self, dialog_id: str, segment_id: str) -> Mapping[str, Any] | None: ...

    async def finish_ringcx_segment(
        self, dialog_id: str, segment_id: str, state: str, error: str | None = None
    ) -> None: ...

    async def retry_ringcx_segment(
        self, dialog_id: str, segment_id: str, delay_s: float, error: str
    ) -> None: ...

    async def ringcx_counts(self) -> dict[str, int]: ...


class UpkeepStore(Protocol):
    """What every storage backend offers for work across every table: retention (`prune`) and
    the levels the metrics read.
    """

    async def operational_levels(self, now: float) -> OperationalLevels: ...

    async def queue_depths(self, cap: int) -> dict[str, dict[str, int]]: ...

    async def prune(
        self,
        *,
        now: float,
        messages_days: int,
        calls_days: int,
        dedupe_days: float,
    ) -> dict[str, int]: ...


class StorageInterface(
    CoreStore,
    InboxStore,
    OutboxStore,
    SettingsStore,
    CallStore,
    AccountStore,
    AiJobStore,
    RingCxStore,
    UpkeepStore,
    Protocol,
):
    """Everything the bot asks of its storage, whichever the backend."""


@runtime_checkable
class SharedQueue(Protocol):
    """What a backend shared by several replicas adds for the inbox and outbox workers
    (PostgreSQL; SQLite has one process, whose workers' memory is enough): rows are
    claimed before work starts, the claims' leases renewed while work goes on, released
    when a replica stops, and a worker is woken when another replica frees work.
    `queue` is "inbox" or "outbox"."""

    claim_lease_s: float
    queue_poll_s: float

    async def claim_queued(self, queue: str, ids: Sequence[int]) -> list[int]: ...

    async def renew_claims(self, queue: str, ids: Sequence[int]) -> list[int]: ...

    async def release_claims(self, queue: str, ids: Sequence[int]) -> None: ...

    async def listen_for_work(self, queue: str, wake: Callable[[], None]) -> None: ...


@runtime_checkable
class SharedRingCx(Protocol):
    """What a backend shared by several replicas adds for the RingCX poller (PostgreSQL;
    on SQLite the one process's poller needs no claim): `due_ringcx_segments` claims the
    segments it hands out for `ringcx_claim_s`, the poller renews the claim while it works
    on them and releases what it did not finish when it stops. Segments are
    `(dialog_id, segment_id)`."""

    ringcx_claim_s: float

    async def renew_ringcx_claims(
        self, segments: Sequence[tuple[str, str]]
    ) -> list[tuple[str, str]]: ...

    async def release_ringcx_claims(self, segments: Sequence[tuple[str, str]]) -> None: ...


@runtime_checkable
class PendingLines(Protocol):
    """What a backend shared by several replicas adds for coalescing notifications of one
    call (PostgreSQL): a notification waiting behind an older one of its line is not held
    in a worker's memory there (only the head of a line is claimed), so the worker asks
    the database (see `bot.workers.InboxWorker`)."""

    async def newer_pending_in_line(self, order_key: str, after_id: int) -> InboxItem | None:
        """The newest notification of this line stored after `after_id`, pending and
        never tried yet, or None."""
        ...
