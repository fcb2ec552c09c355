"""Resident memory (RSS) of the bot process: idle, and after handling 10,000 calls.

python bench/memory.py [--calls 10000] [--users 100]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from _stack import Stack

from bench.call_to_card import RAISED_LIMITS


async def main(args: argparse.Namespace) -> None:
    async with Stack() as stack:
        await stack.control("POST", "/faults", {"limits": RAISED_LIMITS})
        await stack.start_bot(daily_post_limit=10 * args.calls)
        await asyncio.sleep(2)
        idle = stack.bot_rss_mb()
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
        cards = await stack.wait_for_cards([c for _, c in people], args.calls, timeout_s=900)
        elapsed = time.monotonic() - began
        await asyncio.sleep(2)
        after = stack.bot_rss_mb()
        print(f"bot RSS idle: {idle:.1f} MB")
        print(
            f"bot RSS after {args.calls} calls ({len(cards)} cards in {elapsed:.0f} s): "
            f"{after:.1f} MB (aim: under 100 MB)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=100)
    asyncio.run(main(parser.parse_args()))
