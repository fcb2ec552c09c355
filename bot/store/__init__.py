"""Storage, one module per table family.

- `records.py`: rows and constants; `interface.py`: the protocols a backend implements;
  `migrations.py`: the numbered SQLite migrations; `base.py`: connection and transactions;
  `sqlite.py`: `Storage`, the composition.
- `inbox.py`: notifications received: `inbox`.
- `outbox.py`: messages to send and the cards already posted: `outbox`, `posted_cards`.
- `settings.py`: people's settings and small named values: `user_settings`, `user_channels`,
  `direct_chats`, `bot_state`, `daily_posts`.
- `calls.py`: calls and what came of them: `calls`, `call_participants`, `feedback`,
  `seen_submits`, and (when present) next steps, search, skipped digests, rollups.
- `accounts.py`: installs, subscriptions and RingSense connections: `installs`,
  `subscriptions`, `ringsense_connections`, `ringsense_connect_links`; and forgetting an
  account.
- `ai_jobs.py`: AI API jobs: `ai_jobs`.
- `ringcx.py`: RingCX segments: `ringcx_segments`.
- `upkeep.py`: work across every table: retention (`prune`) and the levels the metrics read.
- `postgres/`: the PostgreSQL backend, the same families as modules of their own.
- `opening.py`: `open_storage(BOT_DATABASE)` picks the backend.
"""

from __future__ import annotations

from bot.store.base import PRAGMAS
from bot.store.interface import (
    AccountStore,
    AiJobStore,
    CallStore,
    CoreStore,
    InboxStore,
    OutboxStore,
    RingCxStore,
    SettingsStore,
    StorageInterface,
    UpkeepStore,
)
from bot.store.migrations import MIGRATIONS
from bot.store.opening import is_postgres, open_storage, redacted, sqlite_path
from bot.store.records import (
    CHECKPOINT_EVERY_S,
    DAY_S,
    DIGEST_PRIORITY,
    GLOBAL_TABLES,
    PRUNE_BATCH,
    REPLY_PRIORITY,
    SEARCH_TABLE,
    SECRET_COLUMNS,
    TRANSCRIPT_KEY,
    AiJob,
    ConnectLink,
    InboxItem,
    NextStepItem,
    NoSecretKey,
    OperationalLevels,
    OutboxItem,
    QueuedDelivery,
    RingSenseConnection,
    SearchHit,
    SearchLine,
    StoredCall,
    StoredCard,
    StoredInstall,
    StoredSubscription,
    destination_key,
    split_transcript,
)
from bot.store.sqlite import Storage

__all__ = [
    "CHECKPOINT_EVERY_S",
    "DAY_S",
    "DIGEST_PRIORITY",
    "GLOBAL_TABLES",
    "MIGRATIONS",
    "PRAGMAS",
    "PRUNE_BATCH",
    "REPLY_PRIORITY",
    "SEARCH_TABLE",
    "SECRET_COLUMNS",
    "TRANSCRIPT_KEY",
    "AccountStore",
    "AiJob",
    "AiJobStore",
    "CallStore",
    "ConnectLink",
    "CoreStore",
    "InboxItem",
    "InboxStore",
    "NextStepItem",
    "NoSecretKey",
    "OperationalLevels",
    "OutboxItem",
    "OutboxStore",
    "QueuedDelivery",
    "RingCxStore",
    "RingSenseConnection",
    "SearchHit",
    "SearchLine",
    "SettingsStore",
    "Storage",
    "StorageInterface",
    "StoredCall",
    "StoredCard",
    "StoredInstall",
    "StoredSubscription",
    "UpkeepStore",
    "destination_key",
    "is_postgres",
    "open_storage",
    "redacted",
    "split_transcript",
    "sqlite_path",
]
