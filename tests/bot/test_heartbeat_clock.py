"""Lease heartbeats judged on one clock (issue 13): replicas on PostgreSQL stamp and judge
the run-once jobs' heartbeats with the database's clock, so a replica whose own clock is
off by more than the staleness limit neither calls a live holder dead (its /readyz would
go red for nothing) nor a dead one alive (its /readyz would stay green while nothing runs
the job)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from bot.jobs import RunOnceJobs
from bot.leases import PostgresLeases
from bot.store.postgres.storage import PostgresStorage

SKEW_S = 25.0
"""About what an unsynchronised clock drifts to: far beyond the staleness limit below."""
HEARTBEAT_S = 0.2
STALE_AFTER_S = 2.0


@asynccontextmanager
async def replica(
    url: str, name: str, clock: Callable[[], float], healthy: Callable[[], bool]
) -> AsyncIterator[RunOnceJobs]:
    storage = await PostgresStorage.open(url, replica_id=name)
    jobs = RunOnceJobs(
        PostgresLeases(url, retry_s=0.2, heartbeat_s=0.5),
        storage,
        name,
        heartbeat_s=HEARTBEAT_S,
        stale_after_s=STALE_AFTER_S,
        clock=clock,
    )

    async def work() -> None:
        await asyncio.Event().wait()

    jobs.add("poller", work, healthy)
    await jobs.start()
    try:
        yield jobs
    finally:
        await jobs.stop()
        await storage.close()


async def until(condition: Callable[[], bool], within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, "not within the time allowed"
        await asyncio.sleep(0.05)


async def test_replicas_with_skewed_clocks_judge_the_holders_heartbeat_rightly(
    postgres_url: str,
) -> None:
    working = True
    async with replica(postgres_url, "holder", time.time, lambda: working) as holder:
        await until(lambda: holder.holds("poller"), within_s=20)
        ahead = lambda: time.time() + SKEW_S  # noqa: E731
        behind = lambda: time.time() - SKEW_S  # noqa: E731
        async with (
            replica(postgres_url, "ahead", ahead, lambda: True) as fast,
            replica(postgres_url, "behind", behind, lambda: True) as slow,
        ):
            assert not fast.holds("poller") and not slow.holds("poller")
            # The holder beats: both see the job run (the one ahead used to see a heartbeat
            # 25 s old, and said no replica runs it).
            assert await fast.wait_runs_well("poller", timeout_s=5)
            assert await fast.elsewhere_problems(["poller"]) == []
            assert await slow.elsewhere_problems(["poller"]) == []

            # The holder's poller gets stuck: no more heartbeats. Both say so once the last
            # one is older than the limit (the one behind used to wait 25 s more).
            working = False
            await asyncio.sleep(STALE_AFTER_S + 0.5)
            problem = ["poller: no replica runs it (no fresh heartbeat)"]
            assert await slow.elsewhere_problems(["poller"]) == problem
            assert await fast.elsewhere_problems(["poller"]) == problem

            # And it recovers: both see it again.
            working = True
            assert await slow.wait_runs_well("poller", timeout_s=5)
            assert await fast.elsewhere_problems(["poller"]) == []


async def test_a_holder_with_a_skewed_clock_writes_heartbeats_others_read_as_fresh(
    postgres_url: str,
) -> None:
    behind = lambda: time.time() - SKEW_S  # noqa: E731
    async with replica(postgres_url, "holder", behind, lambda: True) as holder:
        await until(lambda: holder.holds("poller"), within_s=20)
        async with replica(postgres_url, "other", time.time, lambda: True) as other:
            assert await other.wait_runs_well("poller", timeout_s=5)
            assert await other.elsewhere_problems(["poller"]) == []
