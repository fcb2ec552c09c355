"""Run-once jobs and migrations across replicas: the building blocks of issue 13.

Several replicas of the bot will share one PostgreSQL database (issue 13). Some jobs must
then run on exactly one replica at a time: subscription upkeep, catch-up, the RingCX
poller, AI job polling, daily rollups. This module gives them a lease:

- `LocalLeases` (SQLite, one process): the process always holds every lease; jobs of one
  name still run one at a time.
- `PostgresLeases`: a PostgreSQL session advisory lock, held on a connection of its own.
  When the holder dies (process killed, connection cut, backend terminated) the server
  frees the lock and another replica, retrying every `retry_s` (about a second), takes
  over within seconds. The holder watches its connection (a termination callback and a
  heartbeat) and cancels its job as soon as the lock may be gone.
- `run_while_held`: run a job only while its lease is held; contend again after a loss.
- `migrate_under_lock`: numbered migrations applied in one transaction under a
  transaction-scoped advisory lock, so replicas that start together migrate once.

Not wired into the bot yet: there is no PostgreSQL storage backend to go with it. What uses
it next (docs/design/replicas.md): the PostgreSQL backend runs its migrations with
`migrate_under_lock`, and `bot/app.py` starts each run-once job through `run_while_held`
with `PostgresLeases` when `BOT_DATABASE` is a `postgresql://` URL, `LocalLeases` otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

LOCK_NAMESPACE = "ringsense-digest-bot"
"""Prefix of every lock name, so that our advisory locks cannot meet another program's."""

MIGRATIONS_LOCK = "migrations"


def advisory_key(name: str) -> int:
    """The 64-bit advisory lock key of a lease name (stable across processes and versions:
    a hash, not Python's randomised `hash`)."""
    digest = hashlib.blake2b(f"{LOCK_NAMESPACE}:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class Lease(Protocol):
    """The right to run the job called `name` on this replica."""

    name: str

    async def acquire(self) -> None:
        """Wait until this replica holds the lease."""

    async def wait_lost(self) -> None:
        """Return once the lease is (or may be) no longer held: stop the job now."""

    async def release(self) -> None:
        """Give the lease up, letting another replica take it at once."""


class LocalLease:
    """A lease in a single process: free whenever no other job of the same name runs."""

    def __init__(self, name: str, lock: asyncio.Lock) -> None:
        self.name = name
        self._lock = lock
        self._held = False

    async def acquire(self) -> None:
        await self._lock.acquire()
        self._held = True

    async def wait_lost(self) -> None:
        await asyncio.Event().wait()  # one process never loses its own lease

    async def release(self) -> None:
        if self._held:
            self._held = False
            self._lock.release()


class LocalLeases:
    """Leases for the embedded (SQLite) setup: one process is always the holder."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}

    def lease(self, name: str) -> LocalLease:
        return LocalLease(name, self._locks.setdefault(name, asyncio.Lock()))


Connect = Callable[..., Awaitable[Any]]


class PostgresLease:
    """A session advisory lock on a dedicated connection (see `PostgresLeases`)."""

    def __init__(
        self,
        name: str,
        dsn: str,
        *,
        retry_s: float,
        heartbeat_s: float,
        connect: Connect,
    ) -> None:
        self.name = name
        self._dsn = dsn
        self._key = advisory_key(f"lease:{name}")  # never the migrations lock
        self._retry_s = retry_s
        self._heartbeat_s = heartbeat_s
        self._connect = connect
        self._connection: Any = None
        self._lost = asyncio.Event()
        self._was_held = False
        self._heartbeat: asyncio.Task[None] | None = None

    @property
    def held(self) -> bool:
        """Whether this replica holds the lock now (as far as it can tell)."""
        return self._heartbeat is not None and not self._lost.is_set()

    async def acquire(self) -> None:
        if self._lost.is_set() and self._was_held:
            # A replica that just lost its connection is the least healthy contender: let
            # the others (asking every `retry_s`) take the job over first.
            await asyncio.sleep(self._retry_s * 3)
        try:
            while True:
                try:
                    if await self._try_once():
                        return
                except Exception as problem:  # asyncpg's and the socket's errors share no base
                    log.warning("lease %s: %s; retrying", self.name, type(problem).__name__)
                    await self._drop_connection()
                await asyncio.sleep(self._retry_s)
        except asyncio.CancelledError:
            await self._drop_connection()  # a contender that gives up keeps no connection
            raise

    async def _try_once(self) -> bool:
        if self._connection is None or self._connection.is_closed():
            self._connection = await self._connect(
                self._dsn,
                timeout=max(self._retry_s * 5, 5.0),
                server_settings={
                    "application_name": f"lease:{self.name}"[:63],
                    # A holder whose host vanishes (no FIN) is noticed by the server in
                    # about 11 s rather than the system default of hours.
                    "tcp_keepalives_idle": "5",
                    "tcp_keepalives_interval": "2",
                    "tcp_keepalives_count": "3",
                },
            )
        taken = bool(await self._connection.fetchval("SELECT pg_try_advisory_lock($1)", self._key))
        if not taken:
            return False
        self._lost = asyncio.Event()
        self._was_held = True
        self._connection.add_termination_listener(self._on_connection_closed)
        self._heartbeat = asyncio.create_task(self._watch_connection())
        log.info("lease %s: held by this replica", self.name)
        return True

    def _on_connection_closed(self, _connection: Any) -> None:
        self._lost.set()

    async def _watch_connection(self) -> None:
        """A connection can die without the socket saying so (a cut network): ask the
        server regularly, and count the lease lost when it does not answer in time."""
        connection = self._connection
        while not self._lost.is_set():
            await asyncio.sleep(self._heartbeat_s)
            try:
                await connection.fetchval("SELECT 1", timeout=self._heartbeat_s)
            except Exception:  # any failure means the lock may be gone
                self._lost.set()
        log.warning("lease %s: lost (its connection ended)", self.name)

    async def wait_lost(self) -> None:
        await self._lost.wait()

    async def release(self) -> None:
        connection = self._connection
        if connection is not None and not connection.is_closed() and not self._lost.is_set():
            with contextlib.suppress(Exception):
                await connection.fetchval("SELECT pg_advisory_unlock($1)", self._key)
            self._was_held = False  # given up, not lost: no reason to hold back next time
        await self._drop_connection()

    async def _drop_connection(self) -> None:
        self._lost.set()
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            # Closing the session frees every session lock it held.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), timeout=self._retry_s * 5)
            if not connection.is_closed():
                connection.terminate()


class PostgresLeases:
    """Leases shared by every replica using the PostgreSQL database at `dsn`.

    `retry_s`: how often a replica asks for a lease someone else holds (so a dead holder
    is replaced within about this much after the server noticed). `heartbeat_s`: how often
    the holder checks its connection (so a holder cut off stops its job within about twice
    this).
    """

    def __init__(
        self,
        dsn: str,
        *,
        retry_s: float = 1.0,
        heartbeat_s: float = 2.0,
        connect: Connect | None = None,
    ) -> None:
        if connect is None:
            import asyncpg  # only needed with PostgreSQL

            connect = asyncpg.connect
        self._dsn = dsn
        self._retry_s = retry_s
        self._heartbeat_s = heartbeat_s
        self._connect = connect

    def lease(self, name: str) -> PostgresLease:
        return PostgresLease(
            name,
            self._dsn,
            retry_s=self._retry_s,
            heartbeat_s=self._heartbeat_s,
            connect=self._connect,
        )


async def run_while_held(lease: Lease, job: Callable[[], Awaitable[T]]) -> T:
    """Run `job` on this replica only while it holds `lease`.

    Waits for the lease, starts the job, and cancels it the moment the lease is lost, then
    waits for the lease again and starts the job afresh (so a job must be safe to restart:
    the run-once jobs are loops that re-read their state from the database). Returns the
    job's result once it finishes while held, releasing the lease. Cancelling this cancels
    the job and releases the lease.
    """
    while True:
        await lease.acquire()
        try:
            work: asyncio.Task[T] = asyncio.ensure_future(job())
            lost = asyncio.ensure_future(lease.wait_lost())
            try:
                await asyncio.wait({work, lost}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                lost.cancel()
                if not work.done():
                    work.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await work
            if not work.cancelled():
                return work.result()
            log.warning("lease %s lost: its job stopped; waiting to hold it again", lease.name)
        finally:
            await lease.release()


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer version of the bot than this one."""


async def migrate_under_lock(
    connection: Any, migrations: Sequence[str], *, table: str = "schema_version"
) -> list[int]:
    """Apply the migrations not applied yet, in one transaction, under an advisory lock
    held until it commits: replicas starting together queue behind each other and the
    later ones find nothing left to do. Returns the numbers applied here.

    A database already migrated past `migrations` is refused (an older replica must not
    run against a schema it does not know), and nothing is changed.
    """
    applied: list[int] = []
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", advisory_key(MIGRATIONS_LOCK))
        # The table name is a constant of ours, never input.
        await connection.execute(
            f"CREATE TABLE IF NOT EXISTS {table} ("
            "version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        current = int(
            await connection.fetchval(f"SELECT COALESCE(MAX(version), 0) FROM {table}")  # noqa: S608
        )
        if current > len(migrations):
            raise SchemaTooNew(
                f"the database is at migration {current}; this version knows "
                f"{len(migrations)}: upgrade the bot"
            )
        for number, script in enumerate(migrations, start=1):
            if number <= current:
                continue
            await connection.execute(script)
            await connection.execute(
                f"INSERT INTO {table} (version) VALUES ($1)",  # noqa: S608
                number,
            )
            applied.append(number)
    return applied
