"""Which backend a `BOT_DATABASE` names, and opening it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bot.crypto import TokenCipher
from bot.ratelimit import SharedWindows
from bot.reply_limits import PeopleLimits
from bot.store.interface import StorageInterface

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
SQLITE_SCHEME = "sqlite:///"


class DatabaseUnavailable(RuntimeError):
    """The database could not be opened: its address (password hidden) and why."""


def is_postgres(database: str) -> bool:
    return database.startswith(POSTGRES_SCHEMES)


def sqlite_path(database: str) -> Path:
    """The SQLite file a setting names: a path, or `sqlite:///path` (`sqlite:////abs`)."""
    if database.startswith(SQLITE_SCHEME):
        return Path(database[len(SQLITE_SCHEME) :])
    return Path(database)


def redacted(database: str) -> str:
    """The setting as it may be printed or logged: a URL's password replaced by `***`."""
    if not is_postgres(database):
        return database
    parts = urlsplit(database)
    if parts.password is None:
        return database
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))


async def open_storage(
    database: str, cipher: TokenCipher | None = None, replica_id: str | None = None
) -> StorageInterface:
    """The storage `database` names: PostgreSQL for a `postgresql://` URL (several
    replicas may share it), else the SQLite file at that path."""
    if is_postgres(database):
        from bot.leases import SchemaTooNew
        from bot.store.postgres.storage import PostgresStorage

        try:
            return await PostgresStorage.open(database, cipher, replica_id)
        except SchemaTooNew:
            raise
        except Exception as err:  # asyncpg's errors and the socket's share no base
            raise DatabaseUnavailable(
                f"the database {redacted(database)} cannot be opened: {type(err).__name__}: {err}"
            ) from None
    from bot.store.sqlite import Storage

    return await Storage.open(sqlite_path(database), cipher)


@dataclass(frozen=True)
class ReplicaSharing:
    """What replicas must decide together when they share a database: the rate-limit
    windows and penalties, and people's command quotas. None of it on SQLite, where the
    bot is one process and keeps both in memory."""

    windows: SharedWindows | None = None
    people: PeopleLimits | None = None


def replica_sharing(storage: StorageInterface) -> ReplicaSharing:
    """The shared windows and quotas of `storage`'s backend (nothing for SQLite)."""
    from bot.store.postgres.shared import PgShared

    if isinstance(storage, PgShared):
        return ReplicaSharing(storage.shared_windows(), storage.shared_reply_limits())
    return ReplicaSharing()
