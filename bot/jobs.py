"""The jobs that must run on one replica at a time, each under its lease.

Subscription upkeep, catch-up, the AI job poller, the RingCX poller(s), retention and the
daily rollups would do their work twice (or fight: two subscription keepers delete each
other's subscriptions) if every replica ran them. So each runs through
`run_while_held(leases.lease(name), job)` (bot/leases.py): on PostgreSQL one replica holds
the lease (a session advisory lock) and runs the job; when it dies, another takes the
lease within seconds and starts the job afresh. On SQLite (`LocalLeases`) the one process
holds every lease and nothing changes.

With shared leases the holder writes a heartbeat, `bot_state['lease.<name>'] =
'<replica> <epoch>'`, every `HEARTBEAT_S` while its job is healthy. A replica that does
not hold a lease is ready when someone else's heartbeat for it is fresh: readiness says
"the job runs somewhere", not "the job runs here" (docs/design/replicas.md, section 4).
The epoch is the database's clock when the storage has one (PostgreSQL), both when written
and when judged: replicas' own clocks drift apart, and a skew longer than the staleness
limit would make a replica call a live holder dead, or a dead one alive.

Catch-up is asked for by whoever creates a RingSense subscription; a replica that does not
hold the `catch-up` lease writes `bot_state['catch-up.requested']` and the holder, looking
every `REQUEST_POLL_S`, runs it. Subscription upkeep is asked for the same way when a
replica that does not keep the subscriptions learns of a new identity (an install, a
RingSense connection): the keeper re-reads what is stored and subscribes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from bot.leases import Lease, LocalLeases, PostgresLeases, run_while_held

if TYPE_CHECKING:
    from bot.ai import JobPoller
    from bot.catchup import CatchUp
    from bot.config import Config
    from bot.retention import RetentionPruner
    from bot.ringcx import RingCXPoller
    from bot.rollup import DailyRollup
    from bot.storage import StorageInterface
    from bot.subscriptions import Subscriptions

log = logging.getLogger(__name__)

SUBSCRIPTIONS_LEASE = "subscriptions"
CATCH_UP_LEASE = "catch-up"
AI_JOBS_LEASE = "ai-jobs"
RINGCX_LEASE = "ringcx"
RETENTION_LEASE = "retention"
ROLLUPS_LEASE = "rollups"

HEARTBEAT_PREFIX = "lease."
HEARTBEAT_S = 5.0
"""How often the holder of a lease says so in `bot_state` (while its job is healthy); the
default of `replicas.heartbeat_s`."""
HEARTBEAT_STALE_S = 30.0
"""A heartbeat older than this means nobody runs the job (or it is unhealthy where it
runs): six missed beats, several times the few seconds a takeover takes. The default of
`replicas.heartbeat_stale_s`."""
REQUEST_POLL_S = 2.0
"""How often the holder of a lease looks for a request another replica wrote."""
IDENTITIES_REFRESH_S = 60.0
"""How often the keeper of the subscriptions re-reads the installs and connections even
unasked (other replicas ask at once; this catches a request missed in a handover)."""
UNHEALTHY_RECHECK_S = 0.5
"""How soon the holder looks again at a job that is not healthy yet."""
RESTART_AFTER_S = 5.0
"""A job that ended on its own (it should not: they are loops) starts again after this."""


class Leases(Protocol):
    def lease(self, name: str) -> Lease: ...


@runtime_checkable
class DatabaseClock(Protocol):
    """A storage shared by replicas whose server's clock they all read (PostgreSQL)."""

    async def database_now(self) -> float: ...


def leases_for(config: Config) -> Leases:
    """PostgreSQL advisory locks when the replicas share a PostgreSQL database (each lease
    on a connection of its own), else the one process holds every lease."""
    if config.postgres_url:
        return PostgresLeases(config.postgres_url)
    return LocalLeases()


def heartbeat_key(name: str) -> str:
    return HEARTBEAT_PREFIX + name


def heartbeat_value(replica_id: str, epoch: float) -> str:
    return f"{replica_id} {epoch:.3f}"


def heartbeat_epoch(value: str | None) -> float | None:
    """When a heartbeat was written, or None when there is none (or it is unreadable)."""
    if not value:
        return None
    try:
        epoch = float(value.rsplit(" ", 1)[-1])
    except ValueError:
        return None
    return epoch if math.isfinite(epoch) else None  # "nan" must not count as fresh


@dataclass
class RunOnceJob:
    name: str
    run: Callable[[], Awaitable[None]]
    """Runs the job until cancelled (a loop that re-reads its state from the database)."""
    healthy: Callable[[], bool]
    """Whether the job does its work here now; the heartbeat is written only while it does."""


def background_job(
    start: Callable[[], object], stop: Callable[[], Awaitable[None]]
) -> Callable[[], Awaitable[None]]:
    """A job of the classic start()/stop() kind (pollers with their own tasks), as one
    coroutine that runs it until cancelled and stops it then."""

    async def run() -> None:
        start()
        try:
            await asyncio.Event().wait()
        finally:
            await stop()

    return run


class RunOnceJobs:
    """This replica's side of every run-once job: contends for each lease, runs the job
    while it holds it, beats the heartbeat, and answers who runs what.

    `heartbeat_s` and `stale_after_s` come from `replicas.heartbeat_s` and
    `replicas.heartbeat_stale_s`; `clock` stamps heartbeats only when the storage has no
    clock of its own (`DatabaseClock`: PostgreSQL has one, for every replica)."""

    def __init__(
        self,
        leases: Leases,
        storage: StorageInterface,
        replica_id: str,
        *,
        heartbeat_s: float = HEARTBEAT_S,
        stale_after_s: float = HEARTBEAT_STALE_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._leases = leases
        self._storage = storage
        self.replica_id = replica_id
        self._heartbeat_s = heartbeat_s
        self._stale_after_s = stale_after_s
        self._clock = clock
        self._jobs: dict[str, RunOnceJob] = {}
        self._held: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._all_held = asyncio.Event()
        self._fresh_elsewhere: dict[str, bool] = {}

    @property
    def shared(self) -> bool:
        """Whether other replicas may hold these leases (PostgreSQL), rather than this
        process holding every one (SQLite)."""
        return not isinstance(self._leases, LocalLeases)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._jobs)

    def add(
        self,
        name: str,
        run: Callable[[], Awaitable[None]],
        healthy: Callable[[], bool] | None = None,
    ) -> None:
        self._jobs[name] = RunOnceJob(name, run, healthy or (lambda: True))

    def holds(self, name: str) -> bool:
        """Whether this replica runs the job called `name` now."""
        return name in self._held

    async def start(self) -> None:
        """Contend for every lease from now on. With local leases, return once every job
        runs (as the bot did before leases: ready means the pollers run); with shared
        ones at once (another replica may hold them for as long as it lives)."""
        if self._tasks:
            return
        for job in self._jobs.values():
            self._tasks.append(asyncio.create_task(self._contend(job), name=f"lease:{job.name}"))
        if self.shared:
            self._tasks.append(asyncio.create_task(self._watch_elsewhere(), name="heartbeats"))
        if not self.shared and self._jobs:
            await self._all_held.wait()

    async def stop(self) -> None:
        """Stop every job this replica runs and give its leases up (to the next replica
        at once, rather than when our connections time out)."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _contend(self, job: RunOnceJob) -> None:
        lease = self._leases.lease(job.name)
        while True:
            try:
                await run_while_held(lease, lambda: self._while_held(job))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("run-once job %s failed; contending again", job.name)
            await asyncio.sleep(RESTART_AFTER_S)

    async def _while_held(self, job: RunOnceJob) -> None:
        """Run the job (restarting it if it ever ends) and beat its heartbeat, until
        `run_while_held` cancels this because the lease is lost or we stop."""
        log.info("replica %s runs %s", self.replica_id, job.name)
        self._held.add(job.name)
        if self._held >= set(self._jobs):
            self._all_held.set()
        work: asyncio.Future[None] = asyncio.ensure_future(job.run())
        await asyncio.sleep(0)  # let the job start before its health is asked
        try:
            while True:
                beaten = await self._beat(job)
                # Until the job is healthy (a subscription being made), look again soon:
                # the other replicas' readiness follows within moments.
                pause = self._heartbeat_s if beaten else min(self._heartbeat_s, UNHEALTHY_RECHECK_S)
                await asyncio.wait({work}, timeout=pause)
                if work.done():
                    problem = None if work.cancelled() else work.exception()
                    log.error(
                        "run-once job %s ended (%s); starting it again",
                        job.name,
                        type(problem).__name__ if problem else "no error",
                    )
                    await asyncio.sleep(RESTART_AFTER_S)
                    work = asyncio.ensure_future(job.run())
        finally:
            self._held.discard(job.name)
            self._all_held.clear()
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await work

    async def _beat(self, job: RunOnceJob) -> bool:
        """Write the heartbeat if the job is healthy; whether it was written."""
        if not job.healthy():
            return False  # the others' readiness goes red when it stays so: nothing runs it
        if not self.shared:
            return True  # one process: nobody else reads it (and SQLite writes stay as few)
        try:
            await self._storage.set_state(
                heartbeat_key(job.name), heartbeat_value(self.replica_id, await self._now())
            )
        except Exception as problem:  # a database hiccup: the next beat tries again
            log.warning("heartbeat of %s not written: %s", job.name, type(problem).__name__)
            return False
        return True

    async def elsewhere_problems(self, names: Iterable[str]) -> list[str]:
        """For each job among `names` this replica does not run: a problem unless another
        replica's heartbeat for it is fresh."""
        problems: list[str] = []
        for name in names:
            if name not in self._jobs or self.holds(name):
                continue
            if not await self._fresh(name):
                problems.append(f"{name}: no replica runs it (no fresh heartbeat)")
        return problems

    async def _now(self) -> float:
        """The time heartbeats are stamped and judged with: the database's clock, one for
        every replica, when the storage has one; else this process's."""
        if isinstance(self._storage, DatabaseClock):
            return await self._storage.database_now()
        return self._clock()

    async def _fresh(self, name: str) -> bool:
        beat = heartbeat_epoch(await self._storage.state(heartbeat_key(name)))
        fresh = beat is not None and await self._now() - beat <= self._stale_after_s
        self._fresh_elsewhere[name] = fresh
        return fresh

    async def wait_runs_well(self, name: str, timeout_s: float) -> bool:
        """Wait until the job called `name` runs healthily here or on another replica (a
        fresh heartbeat); False if it still does not after `timeout_s`."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            job = self._jobs.get(name)
            if job is None or not self.shared:
                return True
            if self.holds(name):
                if job.healthy():
                    return True
            elif await self._fresh(name):
                return True
            if asyncio.get_running_loop().time() >= deadline:
                return False
            await asyncio.sleep(0.1)

    def runs_well(self, name: str) -> bool:
        """Whether the job called `name` runs healthily somewhere: here, or (as its
        holder's heartbeat said when last read) on another replica. For what must not
        wait for the database, such as a person's `status` command."""
        if self.holds(name) or not self.shared:
            return True
        return self._fresh_elsewhere.get(name, False)

    async def _watch_elsewhere(self) -> None:
        """Keep `runs_well` current for the jobs another replica runs."""
        while True:
            for name in self._jobs:
                if not self.holds(name):
                    try:
                        await self._fresh(name)
                    except Exception as problem:
                        log.debug("heartbeat of %s unreadable: %s", name, type(problem).__name__)
                        self._fresh_elsewhere[name] = False
            await asyncio.sleep(self._heartbeat_s)


class Requests:
    """Asking the holder of a lease to do its job's work now, from any replica.

    On the holder the request runs at once (`act`); elsewhere it is written to
    `bot_state[<name>.requested]` (a fresh value each time), and the holder's `watch`
    loop, which looks every `poll_s`, acts on a value it has not seen.
    """

    def __init__(
        self,
        name: str,
        jobs: RunOnceJobs,
        storage: StorageInterface,
        act: Callable[[], object],
        *,
        poll_s: float = REQUEST_POLL_S,
    ) -> None:
        self.name = name
        self._jobs = jobs
        self._storage = storage
        self._act = act
        self._poll_s = poll_s
        self._pending: set[asyncio.Task[None]] = set()

    @property
    def key(self) -> str:
        return f"{self.name}.requested"

    def request(self) -> None:
        """Have the work done (here if we hold the lease, else by the holder)."""
        if self._jobs.holds(self.name) or not self._jobs.shared:
            self._act()
            return
        task = asyncio.create_task(self._write_request(), name=f"request:{self.name}")
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _write_request(self) -> None:
        value = f"{self._jobs.replica_id} {secrets.token_hex(8)}"
        try:
            await self._storage.set_state(self.key, value)
            log.info("asked the holder of %s to run it", self.name)
        except Exception as problem:
            log.warning("could not ask for %s: %s", self.name, type(problem).__name__)

    async def seen(self) -> str | None:
        """The latest request now (read when taking the lease: what came before is covered
        by the run every new holder starts with)."""
        return await self._storage.state(self.key)

    async def watch(
        self,
        seen: str | None,
        act: Callable[[], Awaitable[object]],
        *,
        every_s: float | None = None,
    ) -> None:
        """On the holder, forever: act on each request written since `seen` (and, with
        `every_s`, at least that often: a request can be missed, e.g. written while the
        lease changed hands)."""
        if not self._jobs.shared:
            await asyncio.Event().wait()  # one process: requests act at once
        last_act = time.monotonic()
        while True:
            await asyncio.sleep(self._poll_s)
            if every_s is not None and time.monotonic() - last_act >= every_s:
                last_act = time.monotonic()
                await act()
                continue
            try:
                latest = await self._storage.state(self.key)
            except Exception as problem:
                log.warning("%s requests unreadable: %s", self.name, type(problem).__name__)
                continue
            if latest is not None and latest != seen:
                seen = latest
                last_act = time.monotonic()
                await act()


def add_bot_jobs(
    jobs: RunOnceJobs,
    *,
    subscriptions: Subscriptions,
    upkeep_requests: Requests,
    refresh_identities: Callable[[], Awaitable[None]],
    catch_up: CatchUp,
    catch_up_requests: Requests,
    ai_poller: JobPoller,
    ringcx_pollers: list[RingCXPoller] | None,
    pruner: RetentionPruner,
    rollup: DailyRollup,
) -> None:
    """The bot's run-once jobs (docs/design/replicas.md, section 4). `ringcx_pollers`:
    None when RingCX is off; else the list the poller is put in once the service user
    signed in (before the jobs start)."""

    async def keep_subscriptions() -> None:
        seen = await upkeep_requests.seen()
        subscriptions.start()
        if jobs.shared:
            # Installs and connections made on other replicas since this one started.
            await refresh_identities()
        try:
            await upkeep_requests.watch(seen, refresh_identities, every_s=IDENTITIES_REFRESH_S)
        finally:
            await subscriptions.stop()

    def subscriptions_healthy() -> bool:
        health = subscriptions.health()
        return bool(health) and all(state["healthy"] for state in health.values())

    jobs.add(SUBSCRIPTIONS_LEASE, keep_subscriptions, subscriptions_healthy)

    async def catch_up_when_asked() -> None:
        seen = await catch_up_requests.seen()
        try:
            # A new holder looks for what was missed: the bot (or the last holder) was
            # down, or died in the middle of a catch-up.
            await catch_up.trigger()
            await catch_up_requests.watch(seen, catch_up.trigger)
        finally:
            await catch_up.stop()

    jobs.add(CATCH_UP_LEASE, catch_up_when_asked)
    jobs.add(AI_JOBS_LEASE, background_job(ai_poller.start, ai_poller.stop), ai_poller.healthy)
    if ringcx_pollers is not None:
        pollers = ringcx_pollers

        def start_ringcx() -> None:
            for poller in pollers:
                poller.start()

        async def stop_ringcx() -> None:
            for poller in pollers:
                await poller.stop()

        jobs.add(
            RINGCX_LEASE,
            background_job(start_ringcx, stop_ringcx),
            lambda: bool(pollers) and all(poller.healthy() for poller in pollers),
        )
    jobs.add(RETENTION_LEASE, background_job(pruner.start, pruner.stop))
    jobs.add(ROLLUPS_LEASE, background_job(rollup.start, rollup.stop))
