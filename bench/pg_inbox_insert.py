"""The PostgreSQL inbox's insert: one replica's concurrent webhook requests group-committed
(`PgInbox.add_to_inbox`: one `INSERT … SELECT FROM unnest(…)` per batch) next to one
`INSERT … ON CONFLICT DO NOTHING RETURNING id` per request on the pool, as the alternative.

Each request is a real-sized notification with a fresh uuid; `--concurrency` requests are
in flight at once (as many webhook requests waiting for their commit); figures are
notifications/s and the latency of one insert (p50 / p99), min / median / max over --runs.
PostgreSQL: BOT_TEST_POSTGRES_URL, else a private `pgserver` (as the tests).

    python bench/pg_inbox_insert.py [--runs 3] [--count 3000] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import percentile, spread
from bot.store.base import _json_text
from bot.store.postgres.inbox import inbox_order_key
from bot.store.postgres.storage import PostgresStorage
from tests.postgres import fresh_database, postgres_server

ONE_BY_ONE = (
    "INSERT INTO inbox (uuid, kind, payload, received_at, account_id, source_record_id, "
    "order_key, claimed_by, lease_until) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
    "ON CONFLICT (uuid) DO NOTHING RETURNING id"
)


def notification(number: int) -> dict[str, object]:
    return {
        "uuid": str(uuid.uuid4()),
        "event": "/ai/ringsense/v1/public/accounts/~/domains/pbx/records/~/insights",
        "body": {
            "domain": "pbx",
            "sourceRecordId": f"rec-{number}",
            "title": "Quarterly pricing review " * 4,
            "insights": {"Summary": [{"value": "words " * 300}]},
        },
    }


async def timed(
    count: int, concurrency: int, insert: Callable[[int], Awaitable[None]]
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    gate = asyncio.Semaphore(concurrency)

    async def one(number: int) -> None:
        async with gate:
            started = time.perf_counter()
            await insert(number)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(one(n) for n in range(count)))
    return count / (time.perf_counter() - started), latencies


async def run(server: str, runs: int, count: int, concurrency: int) -> None:
    results: dict[str, list[tuple[float, float, float]]] = {"group commit": [], "one by one": []}
    for _ in range(runs):
        for mode in results:
            async with fresh_database(server) as url:
                storage = await PostgresStorage.open(url, replica_id="bench")
                try:
                    if mode == "group commit":

                        async def insert(number: int, storage: PostgresStorage = storage) -> None:
                            payload = notification(number)
                            await storage.add_to_inbox(
                                str(payload["uuid"]), "ringsense.insights", payload, "1"
                            )

                    else:

                        async def insert(number: int, storage: PostgresStorage = storage) -> None:
                            payload = notification(number)
                            now = time.time()
                            await storage._pool.fetchval(
                                ONE_BY_ONE,
                                payload["uuid"],
                                "ringsense.insights",
                                _json_text(payload),
                                now,
                                "1",
                                f"rec-{number}",
                                inbox_order_key(str(payload["uuid"]), payload),
                                "bench",
                                now + 60,
                            )

                    rate, latencies = await timed(count, concurrency, insert)
                finally:
                    await storage.close()
            results[mode].append(
                (rate, percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000)
            )
    print(f"{count} notifications, {concurrency} in flight, {runs} runs (min / median / max)")
    for mode, rows in results.items():
        print(
            f"  {mode:13s} {spread([r[0] for r in rows], 0)} notifications/s, "
            f"p50 {spread([r[1] for r in rows], 1)} ms, "
            f"p99 {spread([r[2] for r in rows], 1)} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    with postgres_server() as server:
        asyncio.run(run(server, args.runs, args.count, args.concurrency))


if __name__ == "__main__":
    main()
