"""Delivery under RingCentral's real Medium limit: cards per window as a fraction of what
the limit allows, and how many 429s the bot provoked.

The sandbox enforces the real rules (Light 50, Medium 40, Heavy 10, Auth 5 requests per
sliding window per user, a penalty restarted by every request made during it). To keep the
run short every window is scaled down by the same factor (default 6 s instead of 60 s, same
counts): the bot learns the window from `X-Rate-Limit-Window`, so the fraction is what it
would be at full scale.

    python bench/delivery_under_limit.py [--cards 200] [--window 6] [--database postgres]

`--database postgres`: the bot on PostgreSQL (one replica), where its requests of a group
go one at a time across replicas (bot/store/postgres/shared.py): does one at a time still
fill the window? PostgreSQL: BOT_TEST_POSTGRES_URL, else a private `pgserver` server.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import per_whole_window, spread
from bench._stack import Stack, load_average
from bot.ratelimit import group_of


async def main(args: argparse.Namespace, database_url: str | None = None) -> None:
    async with Stack(database_url=database_url) as stack:
        await stack.start_bot()
        people = await stack.opted_in_users(args.users)
        # Warm up: one digest each, so the bot knows every direct chat and the measured
        # deliveries are card creates only.
        for owner, _ in people:
            await stack.control("POST", "/calls", {"ownerExtensionId": owner})
        await stack.wait_for_cards([c for _, c in people], len(people), timeout_s=120)
        await asyncio.sleep(1)
        # Every group scaled by the same factor, so Medium stays the binding limit as it
        # is at full scale (a digest costs one Light record fetch and one Medium create).
        await stack.control(
            "POST",
            "/faults",
            {
                "enforceRateLimits": True,
                "limits": {
                    group: {
                        "limit": limit,
                        "windowSeconds": args.window,
                        "penaltySeconds": args.window,
                    }
                    for group, limit in (("Light", 50), ("Medium", 40), ("Heavy", 10), ("Auth", 5))
                },
            },
        )
        await stack.control("DELETE", "/requests")
        began = time.monotonic()
        for number in range(args.cards):
            owner, _ = people[number % len(people)]
            await stack.control("POST", "/calls", {"ownerExtensionId": owner})
        cards = await stack.wait_for_cards(
            [c for _, c in people], args.cards + len(people), timeout_s=600
        )
        requests = await stack.control("GET", "/requests")
        bot_medium = [
            r
            for r in requests
            if r["path"].startswith("/team-messaging/")
            and group_of(r["method"], r["path"]) == "medium"
        ]
        creates = [
            r
            for r in bot_medium
            if r["method"] == "POST"
            and r["path"].endswith("/adaptive-cards")
            and r["status"] == 201
        ]
        throttled = [r for r in requests if r["status"] == 429]
        # Whole windows only, from the first card create on: a part window at the end would
        # make the rate look better or worse than it is.
        per_window = per_whole_window([r["arrivedMonotonic"] for r in creates], args.window)
        windows = len(per_window)
        delivered = len(cards) - len(people)
        print(f"cards delivered: {delivered} of {args.cards} in {time.monotonic() - began:.1f} s")
        print(
            f"Medium requests by the bot: {len(bot_medium)}, of which card creates {len(creates)}"
        )
        if per_window:
            mean = statistics.fmean(per_window)
            print(
                f"card creates per whole {args.window:g} s window ({windows} windows): "
                f"min / median / max {spread(per_window, 0)}, mean "
                f"{mean:.1f} of the 40 allowed = {mean / 40:.1%} (aim: at least 95 %)"
            )
        else:
            print("fewer card creates than one whole window: run with more --cards")
        assert stack.process is not None
        print(
            f"bot RSS {stack.bot_rss_mb():.0f} MB, peak (VmHWM) {stack.bot_peak_rss_mb():.0f} MB"
            f"  (load {load_average()})"
        )
        print(f"database: {'PostgreSQL' if database_url else 'SQLite'}")
        print(
            f"429 responses: {len(throttled)} (aim: none)"
            + (f": {sorted({(r['method'], r['path']) for r in throttled})}" if throttled else "")
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=200)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--window", type=float, default=6.0)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    arguments = parser.parse_args()
    if arguments.database == "sqlite":
        asyncio.run(main(arguments))
    else:
        from tests.postgres import fresh_database, postgres_server

        async def on_postgres(server_url: str) -> None:
            async with fresh_database(server_url) as database_url:
                await main(arguments, database_url)

        with postgres_server() as server:
            asyncio.run(on_postgres(server))
