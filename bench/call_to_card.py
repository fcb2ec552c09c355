"""Call-to-card latency as deployed: from asking the sandbox to finish a call (which
delivers its RingSense notification) to the digest card's creation in the sandbox, at a
fixed rate, with realistic transcripts (200 and 1,500 utterances).

`python -m sandbox` and `python -m bot run` (workers on) are separate processes; the
sandbox's rate limits are raised out of the way (delivery_under_limit.py measures the real
ones). A card that has not arrived --wait seconds after the last call counts as a failure
with an infinite latency, so it pushes p99 and max up instead of vanishing from them. The
bot's CPU per digest is its user+system time over the whole run (intake, workers, posting)
divided by the cards it delivered.

    python bench/call_to_card.py [--rate 50] [--seconds 10] [--runs 3] [--users 50]
                                 [--utterances 200,1500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import durability, percentile, spread, transcript
from bench._stack import Stack, cpu_seconds, load_average

UTTERANCES = (200, 1500)


def _ms(seconds: float) -> str:
    return "never" if math.isinf(seconds) else f"{seconds * 1000:.0f}"


async def one_run(
    stack: Stack, people: list[tuple[str, str]], utterances: int, run: int, args: argparse.Namespace
) -> dict[str, float]:
    started_at: dict[str, float] = {}
    total = int(args.rate * args.seconds)
    tasks = []

    # The request body serialised once (a 1,500-utterance transcript is ~300 KB of JSON);
    # each call only swaps in its own session id, which its speaker ids carry too.
    placeholder = "bench0session0placeholder"
    template = json.dumps(
        {
            "ownerExtensionId": "@@OWNER@@",
            "sourceSessionId": f"s-{placeholder}",
            "insights": {
                "Transcript": transcript(utterances, [f"p-{placeholder}-{n}" for n in (1, 2)])
            },
        }
    )

    async def one(number: int) -> None:
        owner, _ = people[number % len(people)]
        body = template.replace(placeholder, f"bench{utterances}r{run}n{number:06d}")
        began = time.time()
        call = await stack.control_raw("POST", "/calls", body.replace("@@OWNER@@", owner))
        started_at[f"pbx:{call['sourceRecordId']}"] = began

    assert stack.process is not None and stack.sandbox_process is not None
    cpu_before = cpu_seconds(stack.process.pid)
    sandbox_cpu_before = cpu_seconds(stack.sandbox_process.pid)
    began = time.perf_counter()
    for number in range(total):
        delay = began + number / args.rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(number)))
    sent_in = time.perf_counter() - began
    await asyncio.gather(*tasks)
    arrived: dict[str, float] = {}
    deadline = time.monotonic() + args.wait
    while len(arrived) < total and time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        for _, chat_id in people:
            for post in await stack.posts(chat_id):
                if post.get("type") != "Card":
                    continue
                text = json.dumps(post["card"])
                key = (
                    text.split('"callKey": "', 1)[1].split('"', 1)[0] if '"callKey"' in text else ""
                )
                if key in started_at and key not in arrived:
                    created = datetime.fromisoformat(post["creationTime"].replace("Z", "+00:00"))
                    arrived[key] = created.timestamp() - started_at[key]
    cpu = cpu_seconds(stack.process.pid) - cpu_before
    sandbox_cpu = cpu_seconds(stack.sandbox_process.pid) - sandbox_cpu_before
    latencies = [arrived.get(key, math.inf) for key in started_at]
    figures = {
        "p50": percentile(latencies, 0.5),
        "p99": percentile(latencies, 0.99),
        "max": max(latencies),
        "missing": float(total - len(arrived)),
        "cpu_ms": cpu * 1000 / max(1, len(arrived)),
        "sandbox_cpu_ms": sandbox_cpu * 1000 / max(1, total),
    }
    print(
        f"run {run} {utterances:>5} utterances: {total} calls started in {sent_in:.1f} s "
        f"({total / sent_in:.0f}/s), "
        f"{len(arrived)} cards, {total - len(arrived)} never arrived; "
        f"p50 {_ms(figures['p50'])} ms, p99 {_ms(figures['p99'])} ms, "
        f"max {_ms(figures['max'])} ms; bot CPU {figures['cpu_ms']:.1f} ms per digest "
        f"(sandbox {figures['sandbox_cpu_ms']:.1f} ms per call); "
        f"RSS {stack.bot_rss_mb():.0f} MB, peak {stack.bot_peak_rss_mb():.0f} MB  "
        f"(load {load_average()})"
    )
    return figures


async def main(args: argparse.Namespace) -> None:
    print(durability())
    async with Stack() as stack:
        await stack.raise_rate_limits()
        await stack.start_bot(workers=args.workers)
        print(f"bot startup to /readyz 200: {stack.startup_s * 1000:.0f} ms")
        people = await stack.opted_in_users(args.users)
        await asyncio.sleep(2)  # opt-in replies out of the way
        results: dict[int, list[dict[str, float]]] = {}
        for run in range(1, args.runs + 1):
            for utterances in args.utterances:
                results.setdefault(utterances, []).append(
                    await one_run(stack, people, utterances, run, args)
                )
        print(
            f"\nmin / median / max of {args.runs} runs at {args.rate:.0f} calls/s for "
            f"{args.seconds:.0f} s ({args.workers} workers):"
        )
        for utterances, runs in results.items():

            def column(name: str, runs: list[dict[str, float]] = runs) -> list[float]:
                return [r[name] * (1000 if name in ("p50", "p99", "max") else 1) for r in runs]

            aim_cpu = 5 if utterances == 200 else 20
            print(f"  {utterances:>5} utterances: p50 {spread(column('p50'), 0)} ms")
            print(
                f"  {utterances:>5} utterances: p99 {spread(column('p99'), 0)} ms"
                + (" (aim: under 100 ms)" if utterances == 200 else "")
            )
            print(f"  {utterances:>5} utterances: max {spread(column('max'), 0)} ms")
            print(
                f"  {utterances:>5} utterances: cards never arrived {spread(column('missing'), 0)}"
            )
            print(
                f"  {utterances:>5} utterances: bot CPU per digest "
                f"{spread(column('cpu_ms'), 1)} ms (aim: at most {aim_cpu} ms)"
            )
            print(
                f"  {utterances:>5} utterances: sandbox CPU per call "
                f"{spread(column('sandbox_cpu_ms'), 1)} ms (its whole process over the run)"
            )
        print(f"bot RSS {stack.bot_rss_mb():.0f} MB, peak (VmHWM) {stack.bot_peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument(
        "--utterances",
        type=lambda text: [int(n) for n in text.split(",")],
        default=list(UTTERANCES),
        help="transcript sizes to run, comma-separated (default 200,1500)",
    )
    parser.add_argument("--wait", type=float, default=60, help="seconds to wait for late cards")
    asyncio.run(main(parser.parse_args()))
