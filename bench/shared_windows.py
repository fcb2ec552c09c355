"""What the shared rate-limit window costs a RingCentral request when replicas pace together
on PostgreSQL: every request reserves its place in the group's row before it is sent and
reports its answer after (bot/store/postgres/shared.py).

Times --requests places of one group (reserve and finish, no HTTP) taken one after
another by one replica, then by --replicas replicas (each its own pool) with --tasks
requests each at once, all contending for the one row. The group's limit is set high so
that nothing waits for the window: the figure is the database's part alone.

    python bench/shared_windows.py [--requests 500] [--replicas 2] [--tasks 4]

PostgreSQL: BOT_TEST_POSTGRES_URL (a role that may create databases), else a private
server from the `pgserver` wheel, as the tests use.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.ratelimit import RateGovernor
from bot.store import StorageInterface, open_storage
from bot.store.opening import replica_sharing
from tests.postgres import fresh_database, postgres_server
from tests.stores import postgres_rows

GROUP = "light"


async def send_places(governor: RateGovernor, count: int) -> None:
    for _ in range(count):
        async with governor.sending(GROUP) as ticket:
            governor.relieve(GROUP, ticket)


async def widen(governor: RateGovernor) -> None:
    """One answer telling a limit nothing reaches: the group is known and never full. A
    one-second window keeps the row's sends about as many as a second's requests (a real
    group holds at most its limit, 50)."""
    async with governor.sending(GROUP) as ticket:
        governor.observe(GROUP, 1_000_000, 999_999, 1, ticket)
        governor.relieve(GROUP, ticket, usage_told=True)


async def measure(url: str, requests: int, replicas: int, tasks: int) -> None:
    storages: list[StorageInterface] = [
        await open_storage(url, replica_id=f"bench-{n}") for n in range(replicas)
    ]
    try:
        governors = [
            RateGovernor(identity="bench", shared=replica_sharing(s).windows) for s in storages
        ]
        await widen(governors[0])
        for governor in governors:
            await send_places(governor, 1)  # each replica's first place (its start) probes

        started = time.perf_counter()
        await send_places(governors[0], requests)
        alone = time.perf_counter() - started
        print(
            f"one replica, one after another: {alone * 1000 / requests:.2f} ms per request "
            f"({requests / alone:,.0f} requests/s)"
        )

        each = max(1, requests // (replicas * tasks))
        started = time.perf_counter()
        await asyncio.gather(
            *(send_places(governor, each) for governor in governors for _ in range(tasks))
        )
        together = time.perf_counter() - started
        total = each * replicas * tasks
        print(
            f"{replicas} replicas x {tasks} tasks at once, one row: "
            f"{together * 1000 / total:.2f} ms per request ({total / together:,.0f} requests/s)"
        )
        rows = await postgres_rows(url, "SELECT cardinality(sends) AS n FROM rate_limits")
        print(f"sends in the row at the end: {rows[0]['n']}")
    finally:
        for storage in storages:
            await storage.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--tasks", type=int, default=4)
    args = parser.parse_args()
    with postgres_server() as server:

        async def run() -> None:
            async with fresh_database(server) as url:
                await measure(url, args.requests, args.replicas, args.tasks)

        asyncio.run(run())


if __name__ == "__main__":
    main()
