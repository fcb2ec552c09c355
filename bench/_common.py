"""Shared pieces of the bench scripts: percentiles, a fixed-rate load loop, printing."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any


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


def spread(values: list[float], digits: int = 2) -> str:
    """min / median / max of repeated runs, the way every bench reports them."""
    if not values:
        return "no runs"
    low, middle, high = min(values), statistics.median(values), max(values)
    return f"{low:,.{digits}f} / {middle:,.{digits}f} / {high:,.{digits}f}"


def per_whole_window(moments: list[float], window_s: float) -> list[float]:
    """How many of `moments` fall in each whole window from the first one on; the part
    window at the end is left out, as it would make a rate look better or worse."""
    if not moments:
        return []
    first = min(moments)
    windows = int((max(moments) - first) // window_s)
    counts = [0.0] * windows
    for moment in moments:
        index = int((moment - first) // window_s)
        if index < windows:
            counts[index] += 1
    return counts


def durability() -> str:
    """What "stored" means: the SQLite settings the bot applies on its connections (the
    workers' `bot.storage.PRAGMAS`, the inbox writer's `bot.inbox_writer.WRITER_PRAGMAS`,
    which acknowledges notifications), read back from connections they were applied to."""
    import sqlite3
    import tempfile

    from bot.inbox_writer import WRITER_PRAGMAS
    from bot.storage import PRAGMAS

    def probe(folder: str, name: str, pragmas: tuple[str, ...]) -> str:
        db = sqlite3.connect(Path(folder) / "probe.sqlite3")
        try:
            for pragma in pragmas:
                db.execute(pragma)
            values = {
                key: db.execute(f"PRAGMA {key}").fetchone()[0]
                for key in ("journal_mode", "synchronous", "wal_autocheckpoint")
            }
        finally:
            db.close()
        level = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(values["synchronous"], "?")
        return (
            f"{name}: journal_mode={values['journal_mode']} synchronous={level} "
            f"wal_autocheckpoint={values['wal_autocheckpoint']} pages"
        )

    with tempfile.TemporaryDirectory() as folder:
        return "storage: " + "; ".join(
            (
                probe(folder, "inbox writer (acks)", WRITER_PRAGMAS),
                probe(folder, "workers", tuple(PRAGMAS)),
            )
        )


SHARED = Path(
    os.environ.get("RINGSENSE_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared")
)

_LINES = (
    "Thanks for making the time today, I wanted to go through the renewal before the quarter ends.",
    "Sure, we looked at the proposal last week and the team had a few questions about pricing "
    "and about the support tiers you offer.",
    "The main one is whether the support tier includes weekend coverage for the contact centre, "
    "because that is where most tickets come from.",
    "It does on the premium tier, and we can add it to the standard tier for a small monthly fee "
    "if you would rather keep the current plan.",
    "Okay, and what would the timeline be if we decided to move forward by the end of this month?",
    "We could have the new contract in place within two weeks and the rollout done by early "
    "next month.",
)


def transcript(utterances: int, speaker_ids: list[str]) -> list[dict[str, Any]]:
    """A realistic transcript: `utterances` turns of ordinary sentences (about 205 bytes of
    JSON each, so 200 of them make the ~42 KB event RingSense sends for a 15-minute call)."""
    units = []
    for number in range(utterances):
        start = round(2.0 + number * 4.5, 2)
        units.append(
            {
                "end": round(start + 4.1, 2),
                "text": _LINES[number % len(_LINES)],
                "start": start,
                "speakerId": speaker_ids[number % len(speaker_ids)],
            }
        )
    return units


def pbx_event(
    *, account_id: str, owner_id: str, record_id: str, session_id: str, utterances: int
) -> dict[str, Any]:
    """The real pbx RingSense event (fixtures/ringcentral/ringsense-event-pbx.json) for
    this account, owner and recording, with a transcript of `utterances` turns."""
    event = json.loads((SHARED / "fixtures/ringcentral/ringsense-event-pbx.json").read_text())
    body = event["body"]
    speaker_ids = [f"p-{session_id.removeprefix('s-')}-{n}" for n in (1, 2)]
    event["event"] = f"/ai/ringsense/v1/public/accounts/{account_id}/domains/pbx/insights"
    event["ownerId"] = owner_id
    body["sourceRecordId"] = record_id
    body["sourceSessionId"] = session_id
    body["ownerExtensionId"] = owner_id
    body["speakerInfo"][0].update(
        speakerId=speaker_ids[0], accountId=account_id, extensionId=owner_id
    )
    body["speakerInfo"][1]["speakerId"] = speaker_ids[1]
    insights = body["insights"]
    insights["Transcript"] = transcript(utterances, speaker_ids)
    for item in insights.get("NextSteps", []):
        item["speakerId"] = speaker_ids[0]
    return event
