"""Call-to-card latency: from the call's notification to its digest card, at a fixed rate.

The sandbox runs here with no added latency and rate limits raised out of the way (this
measures the bot's own path, not RingCentral's throttling: see delivery_under_limit.py);
the bot runs as its own process. Each call's latency is the card's creation time minus the
moment the sandbox was asked to finish the call and notify.

    python bench/call_to_card.py [--rate 50] [--seconds 10] [--users 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import datetime

from _stack import Stack

from bench._common import percentile

RAISED_LIMITS = {
    g: {"limit": 1_000_000, "windowSeconds": 60, "penaltySeconds": 1}
    for g in ("Light", "Medium", "Heavy", "Auth")
}


async def main(args: argparse.Namespace) -> None:
    async with Stack() as stack:
        await stack.control(
            "POST", "/faults", {"enforceRateLimits": False, "limits": RAISED_LIMITS}
        )
        await stack.start_bot(workers=args.workers)
        people = await stack.opted_in_users(args.users)
        await asyncio.sleep(2)  # opt-in replies out of the way
        started_at: dict[str, float] = {}
        total = int(args.rate * args.seconds)
        tasks = []

        async def one(number: int) -> None:
            owner, _ = people[number % len(people)]
            began = time.time()
            call = await stack.control("POST", "/calls", {"ownerExtensionId": owner})
            started_at[f"pbx:{call['sourceRecordId']}"] = began

        began = time.perf_counter()
        for number in range(total):
            delay = began + number / args.rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(number)))
        await asyncio.gather(*tasks)
        cards = await stack.wait_for_cards([c for _, c in people], total, timeout_s=120)
        latencies = []
        for card in cards:
            text = json.dumps(card["card"])
            key = text.split('"callKey": "', 1)[1].split('"', 1)[0]
            created = datetime.fromisoformat(card["creationTime"].replace("Z", "+00:00"))
            latencies.append(created.timestamp() - started_at[key])
        print(f"calls sent: {total} at {args.rate:.0f}/s; cards: {len(cards)}")
        print(
            f"call-to-card p50 {percentile(latencies, 0.5) * 1000:.1f} ms, "
            f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms, "
            f"max {max(latencies) * 1000:.1f} ms (aim: p99 under 100 ms)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--workers", type=int, default=8)
    asyncio.run(main(parser.parse_args()))
