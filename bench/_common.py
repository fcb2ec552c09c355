"""Shared pieces of the bench scripts: percentiles, a fixed-rate load loop, printing."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable


def percentile(samples: list[float], fraction: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def summarise(
    name: str, latencies_s: list[float], elapsed_s: float, count: int
) -> dict[str, float]:
    figures = {
        "rate_per_s": count / elapsed_s if elapsed_s else float("nan"),
        "p50_ms": percentile(latencies_s, 0.50) * 1000,
        "p99_ms": percentile(latencies_s, 0.99) * 1000,
        "mean_ms": statistics.fmean(latencies_s) * 1000 if latencies_s else float("nan"),
    }
    print(
        f"{name:<28} {figures['rate_per_s']:>9.0f}/s   p50 {figures['p50_ms']:6.2f} ms   "
        f"p99 {figures['p99_ms']:6.2f} ms   ({count} requests in {elapsed_s:.1f} s)"
    )
    return figures


async def closed_loop(
    send: Callable[[int], Awaitable[None]], total: int, concurrency: int
) -> tuple[list[float], float]:
    """As fast as possible with `concurrency` requests in flight; latencies and elapsed."""
    latencies: list[float] = []
    counter = iter(range(total))

    async def worker() -> None:
        for number in counter:
            started = time.perf_counter()
            await send(number)
            latencies.append(time.perf_counter() - started)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - began


async def fixed_rate(
    send: Callable[[int], Awaitable[None]], rate_per_s: float, duration_s: float
) -> tuple[list[float], float]:
    """Start one request every 1/rate seconds (open loop), whatever the answers do."""
    latencies: list[float] = []
    tasks: list[asyncio.Task[None]] = []

    async def one(number: int) -> None:
        started = time.perf_counter()
        await send(number)
        latencies.append(time.perf_counter() - started)

    total = int(rate_per_s * duration_s)
    began = time.perf_counter()
    for number in range(total):
        due = began + number / rate_per_s
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(number)))
    await asyncio.gather(*tasks)
    return latencies, time.perf_counter() - began
