"""Run-once jobs across replicas (bot/leases.py) against a real PostgreSQL server: only one
contender runs a job, and when the holder dies another takes over within seconds."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest

from bot.leases import (
    LocalLeases,
    PostgresLeases,
    SchemaTooNew,
    migrate_under_lock,
    run_while_held,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TAKEOVER_LIMIT_S = 15.0
"""Generous bound for "within seconds" on a loaded 2-core machine (retries every 0.2 s)."""


class Replica:
    """One contender's view of the job: whether it runs now, how often it started."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.started = 0
        self.stopped = 0
        self.running = asyncio.Event()

    def job(self, board: Board) -> Callable[[], Awaitable[None]]:
        async def poll_forever() -> None:
            self.started += 1
            board.active += 1
            board.most_active = max(board.most_active, board.active)
            self.running.set()
            try:
                await asyncio.Event().wait()
            finally:
                board.active -= 1
                self.stopped += 1
                self.running.clear()

        return poll_forever


class Board:
    def __init__(self) -> None:
        self.active = 0
        self.most_active = 0


async def _first_running(*replicas: Replica) -> Replica:
    waits = {asyncio.ensure_future(r.running.wait()): r for r in replicas}
    done, pending = await asyncio.wait(
        waits, timeout=TAKEOVER_LIMIT_S, return_when=asyncio.FIRST_COMPLETED
    )
    for task in pending:
        task.cancel()
    assert done, "no contender got the lease"
    return waits[done.pop()]


async def _holder_pid(url: str) -> int:
    """The server process holding this test database's advisory lock."""
    connection = await asyncpg.connect(url)
    try:
        pid = await connection.fetchval(
            "SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
            "WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()"
        )
    finally:
        await connection.close()
    assert pid is not None
    return int(pid)


async def _stop(*tasks: asyncio.Task[None]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_of_two_contenders_only_one_runs_the_job_until_it_lets_go(postgres_url: str) -> None:
    board = Board()
    first, second = Replica("first"), Replica("second")
    tasks = [
        asyncio.create_task(
            run_while_held(PostgresLeases(postgres_url, retry_s=0.2).lease("upkeep"), r.job(board))
        )
        for r in (first, second)
    ]
    try:
        holder = await _first_running(first, second)
        other = second if holder is first else first
        # Many retry periods pass: the other contender never gets the job meanwhile.
        await asyncio.sleep(1.5)
        assert (holder.started, other.started, board.most_active) == (1, 0, 1)

        # The holder shuts down cleanly: the other one takes over.
        await _stop(tasks[[first, second].index(holder)])
        await asyncio.wait_for(other.running.wait(), TAKEOVER_LIMIT_S)
        assert (holder.stopped, other.started, board.active, board.most_active) == (1, 1, 1, 1)
    finally:
        await _stop(*tasks)


async def test_a_terminated_holder_connection_hands_the_job_over(postgres_url: str) -> None:
    board = Board()
    first, second = Replica("first"), Replica("second")
    leases = {
        r: PostgresLeases(postgres_url, retry_s=0.2, heartbeat_s=0.5).lease("ringcx")
        for r in (first, second)
    }
    tasks = [asyncio.create_task(run_while_held(leases[r], r.job(board))) for r in leases]
    try:
        holder = await _first_running(first, second)
        other = second if holder is first else first
        assert leases[holder].held and not leases[other].held
        admin = await asyncpg.connect(postgres_url)
        try:
            assert await admin.fetchval(
                "SELECT pg_terminate_backend($1)", await _holder_pid(postgres_url)
            )
        finally:
            await admin.close()

        await asyncio.wait_for(other.running.wait(), TAKEOVER_LIMIT_S)
        # The old holder noticed and stopped its job; exactly one job runs.
        assert holder.stopped == 1
        assert board.active == 1
        assert other.started == 1
        assert leases[other].held and not leases[holder].held
        # And the old holder, contending again, does not start the job beside it.
        await asyncio.sleep(1.0)
        assert (holder.started, board.active) == (1, 1)
    finally:
        await _stop(*tasks)


HOLDER_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from bot.leases import PostgresLeases, run_while_held

    async def hold() -> None:
        print("held", flush=True)
        await asyncio.Event().wait()

    asyncio.run(run_while_held(PostgresLeases(sys.argv[1]).lease("rollups"), hold))
    """
)


async def test_a_killed_holder_process_hands_the_job_over(postgres_url: str) -> None:
    holder = subprocess.Popen(  # noqa: ASYNC220, S603 - a process the test kills itself
        [sys.executable, "-c", HOLDER_SCRIPT, postgres_url],
        stdout=subprocess.PIPE,
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
    )
    board = Board()
    survivor = Replica("survivor")
    task: asyncio.Task[None] | None = None
    try:
        assert holder.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(holder.stdout.readline), 30)
        assert line.strip() == b"held"
        task = asyncio.create_task(
            run_while_held(
                PostgresLeases(postgres_url, retry_s=0.2).lease("rollups"), survivor.job(board)
            )
        )
        await asyncio.sleep(1.5)
        assert survivor.started == 0, "ran the job while another process held it"

        holder.send_signal(signal.SIGKILL)
        await asyncio.wait_for(survivor.running.wait(), TAKEOVER_LIMIT_S)
        assert survivor.started == 1
    finally:
        if task is not None:
            await _stop(task)
        if holder.poll() is None:
            holder.kill()
        holder.wait()


async def test_local_leases_run_one_job_of_a_name_at_a_time() -> None:
    leases = LocalLeases()
    order: list[str] = []
    release_first = asyncio.Event()

    async def first() -> str:
        order.append("first started")
        await release_first.wait()
        order.append("first done")
        return "first result"

    async def second() -> str:
        order.append("second started")
        return "second result"

    running_first = asyncio.create_task(run_while_held(leases.lease("upkeep"), first))
    await asyncio.sleep(0)
    running_second = asyncio.create_task(run_while_held(leases.lease("upkeep"), second))
    other_name = await run_while_held(leases.lease("catch-up"), second)
    await asyncio.sleep(0.05)
    assert order == ["first started", "second started"]  # only the other name ran
    assert other_name == "second result"

    release_first.set()
    assert await running_first == "first result"
    assert await running_second == "second result"
    assert order == ["first started", "second started", "first done", "second started"]


MIGRATIONS = (
    "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)",
    # Slow enough that two starters overlap; fails if run twice (the same key again).
    "SELECT pg_sleep(0.3); INSERT INTO notes (id, body) VALUES (1, 'once')",
)


async def test_replicas_starting_together_migrate_once(postgres_url: str) -> None:
    connections = [await asyncpg.connect(postgres_url) for _ in range(3)]
    try:
        results = await asyncio.gather(
            *(migrate_under_lock(connection, MIGRATIONS) for connection in connections)
        )
        assert sorted(results) == [[], [], [1, 2]]
        check = connections[0]
        assert await check.fetch("SELECT id, body FROM notes") == [(1, "once")]
        versions = await check.fetch("SELECT version FROM schema_version ORDER BY version")
        assert [r["version"] for r in versions] == [1, 2]
        # A later start finds nothing to do.
        assert await migrate_under_lock(check, MIGRATIONS) == []
    finally:
        for connection in connections:
            await connection.close()


async def test_an_older_version_refuses_a_newer_schema_and_changes_nothing(
    postgres_url: str,
) -> None:
    connection = await asyncpg.connect(postgres_url)
    try:
        await migrate_under_lock(connection, MIGRATIONS)
        with pytest.raises(SchemaTooNew, match="at migration 2; this version knows 1"):
            await migrate_under_lock(connection, MIGRATIONS[:1])
        assert await connection.fetchval("SELECT COUNT(*) FROM schema_version") == 2
    finally:
        await connection.close()


async def test_a_failing_migration_leaves_the_schema_as_it_was(postgres_url: str) -> None:
    connection = await asyncpg.connect(postgres_url)
    try:
        broken = (*MIGRATIONS, "CREATE TABLE more (id INTEGER); SELECT no_such_function()")
        with pytest.raises(asyncpg.UndefinedFunctionError):
            await migrate_under_lock(connection, broken)
        # All in one transaction: nothing of it stayed, and a fixed start applies it all.
        assert await connection.fetchval("SELECT to_regclass('notes')") is None
        assert await migrate_under_lock(connection, MIGRATIONS) == [1, 2]
    finally:
        await connection.close()
