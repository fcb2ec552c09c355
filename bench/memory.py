"""Resident memory of the bot process (`python -m bot run` against `python -m sandbox`):
RSS and peak RSS (VmHWM) idle, and after handling 50,000 calls.

python bench/memory.py [--calls 50000] [--users 100]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._stack import Stack, load_average


def _posted_cards(database: Path) -> int:
    db = sqlite3.connect(database)
    try:
        return int(db.execute("SELECT count(*) FROM posted_cards").fetchone()[0])
    finally:
        db.close()


async def main(args: argparse.Namespace) -> None:
    async with Stack() as stack:
        await stack.raise_rate_limits()
        await stack.start_bot(daily_post_limit=10 * args.calls)
        print(f"bot startup to /readyz 200: {stack.startup_s * 1000:.0f} ms")
        await asyncio.sleep(2)
        idle, idle_peak = stack.bot_rss_mb(), stack.bot_peak_rss_mb()
        people = await stack.opted_in_users(args.users)
        began = time.monotonic()
        sent = 0
        while sent < args.calls:
            batch = min(50, args.calls - sent)
            await asyncio.gather(
                *(
                    stack.control(
                        "POST", "/calls", {"ownerExtensionId": people[(sent + n) % len(people)][0]}
                    )
                    for n in range(batch)
                )
            )
            sent += batch
        # Waiting on the bot's own record of posted cards: asking the sandbox for every
        # chat's posts again and again would cost more than the bot does at 50k cards.
        deadline = time.monotonic() + args.timeout
        while await asyncio.to_thread(_posted_cards, stack.database) < args.calls:
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(2)
        elapsed = time.monotonic() - began
        cards = await stack.wait_for_cards([c for _, c in people], args.calls, timeout_s=0)
        await asyncio.sleep(2)
        after = stack.bot_rss_mb()
        print(f"bot RSS idle: {idle:.1f} MB, peak {idle_peak:.1f} MB")
        print(
            f"bot RSS after {args.calls} calls ({len(cards)} cards in {elapsed:.0f} s): "
            f"{after:.1f} MB, peak (VmHWM) {stack.bot_peak_rss_mb():.1f} MB "
            f"(aim: under 100 MB)  (load {load_average()})"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50_000)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=3600)
    asyncio.run(main(parser.parse_args()))
