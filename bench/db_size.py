"""Do `last`, `status` and /readyz stay flat as the database grows? Times each at 1k, 10k and
100k stored calls (1M with --sizes 1000,10000,100000,1000000 if the disk and time allow).

The bot (`python -m bot run`, workers on) first handles --real calls from the sandbox
(`python -m sandbox`), so every table holds rows exactly as the bot writes them. Then, with
the bot stopped, the database is filled by copying those rows under new keys: each call with
its participants and transcript, inbox notifications, outbox posts and posted cards, one
copy a minute further back in time, owned by one of 100 people (the person who asks owns
every 100th, so their history grows with the rest). Nothing is pruned or vacuumed in between: what a
bot that has run for a while holds. Each size then restarts the bot and times:

- `last` and `status`: the bot's reply's creation time minus the command's, both from the
  sandbox's clock (--asks of each; the reply must arrive),
- /readyz: --asks GETs from here,
- start-up: process start to /readyz 200.

    python bench/db_size.py [--sizes 1000,10000,100000] [--asks 7]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import durability, spread
from bench._stack import Stack, load_average

PEOPLE = 100

# How a copy (number :n) of each table's row differs from the real row it copies: keys get
# a `#n` suffix, people become one of PEOPLE stand-ins (the real one for every 100th copy),
# and the call starts n minutes earlier. Other columns are copied as they are.
_PERSON = f"CASE WHEN :n % {PEOPLE} = 0 THEN {{0}} ELSE {{0}} || '-p' || (:n % {PEOPLE}) END"
COPIED_COLUMNS: dict[str, dict[str, str]] = {
    "calls": {
        "call_key": "call_key || '#' || :n",
        "source_record_id": "source_record_id || '#' || :n",
        "source_session_id": "source_session_id || '#' || :n",
        "owner_extension_id": _PERSON.format("owner_extension_id"),
        "recording_start_time": (
            "strftime('%Y-%m-%dT%H:%M:%fZ', recording_start_time, '-' || :n || ' minutes')"
        ),
        # A copy has no lines in `find`'s index, so no rowid range of its own (yet).
        "search_id": "NULL",
    },
    "call_participants": {
        "call_key": "call_key || '#' || :n",
        "extension_id": _PERSON.format("extension_id"),
        "recording_start_time": (
            "strftime('%Y-%m-%dT%H:%M:%fZ', recording_start_time, '-' || :n || ' minutes')"
        ),
    },
    "call_transcripts": {"call_key": "call_key || '#' || :n"},
    "inbox": {"id": "NULL", "uuid": "uuid || '#' || :n"},
    "outbox": {
        "id": "NULL",
        "dedupe_key": "dedupe_key || '#' || :n",
        "card_key": "card_key || '#' || :n",
    },
    "posted_cards": {"card_key": "card_key || '#' || :n"},
}


def fill_database(database: Path, target_calls: int) -> tuple[int, float]:
    """Copy the real rows until `calls` holds `target_calls` rows; (calls, file MB)."""
    db = sqlite3.connect(database)
    try:
        real = db.execute("SELECT count(*) FROM calls WHERE call_key NOT LIKE '%#%'").fetchone()[0]
        have = db.execute("SELECT count(*) FROM calls").fetchone()[0]
        copies_done = (have - real) // real
        copies_needed = (target_calls - real) // real
        statements = []
        for table, changes in COPIED_COLUMNS.items():
            columns = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
            chosen = ", ".join(changes.get(column, column) for column in columns)
            key = next(iter(c for c in changes if c != "id"))
            # Table and column names come from this file and the schema itself; the copy
            # numbers are bound parameters. The real rows are set apart once, so a copy
            # does not scan the growing table.
            db.execute(f"DROP TABLE IF EXISTS temp.real_{table}")
            db.execute(
                f"CREATE TEMP TABLE real_{table} AS SELECT * FROM {table} "  # noqa: S608
                f"WHERE {key} NOT LIKE '%#%'"
            )
            statements.append(
                "WITH RECURSIVE copy(n) AS (SELECT :first UNION ALL "  # noqa: S608
                "SELECT n + 1 FROM copy WHERE n < :last) "
                f"INSERT INTO {table} ({', '.join(columns)}) "
                f"SELECT {chosen.replace(':n', 'copy.n')} FROM copy, temp.real_{table}"
            )
        chunk = 1000
        for first in range(copies_done + 1, copies_needed + 1, chunk):
            last = min(copies_needed, first + chunk - 1)
            for statement in statements:
                db.execute(statement, {"first": first, "last": last})
            db.commit()
        db.commit()
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        calls = db.execute("SELECT count(*) FROM calls").fetchone()[0]
    finally:
        db.close()
    return calls, database.stat().st_size / 1e6


def _created(post: dict[str, object]) -> float:
    return datetime.fromisoformat(str(post["creationTime"]).replace("Z", "+00:00")).timestamp()


async def _ask(stack: Stack, person: str, chat_id: str, text: str) -> float:
    """Seconds from the command's post to the bot's reply (sandbox clock)."""
    before = {p["id"] for p in await stack.posts(chat_id)}
    command = await stack.control(
        "POST", "/posts", {"chatId": chat_id, "creatorId": person, "text": text}
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        await asyncio.sleep(0.02)
        replies = [
            p
            for p in await stack.posts(chat_id)
            if p["id"] not in before and p["id"] != command["id"] and p.get("creatorId") != person
        ]
        if replies:
            return _created(replies[0]) - _created(command)
    raise RuntimeError(f"no reply to {text!r} within 60 s")


async def _readyz(stack: Stack) -> float:
    assert stack.session is not None
    began = time.perf_counter()
    async with stack.session.get(f"{stack.bot_url}/readyz") as response:
        await response.read()
        if response.status != 200:
            raise RuntimeError(f"/readyz answered {response.status}")
    return time.perf_counter() - began


async def main(args: argparse.Namespace) -> None:
    sizes = [int(size) for size in args.sizes.split(",")]
    print(durability())
    async with Stack() as stack:
        await stack.raise_rate_limits()
        await stack.start_bot()
        (person, chat_id), *others = await stack.opted_in_users(3)
        participants = [other for other, _ in others]
        for number in range(args.real):
            await stack.control(
                "POST",
                "/calls",
                {"ownerExtensionId": person, "participants": participants[: number % 3]},
            )
        cards = await stack.wait_for_cards([chat_id], args.real, timeout_s=120)
        print(f"{args.real} real calls handled, {len(cards)} cards; filling the database")
        # `last` once so the bot knows the direct chat is where the person asks.
        await _ask(stack, person, chat_id, "last")
        rows = []
        for size in sizes:
            await stack.stop_bot()
            began = time.monotonic()
            calls, megabytes = await asyncio.to_thread(fill_database, stack.database, size)
            filled_in = time.monotonic() - began
            await stack.start_bot()
            await asyncio.sleep(1)
            last = [await _ask(stack, person, chat_id, "last") for _ in range(args.asks)]
            status = [await _ask(stack, person, chat_id, "status") for _ in range(args.asks)]
            ready = [await _readyz(stack) for _ in range(args.asks * 3)]
            rows.append((calls, last, status, ready, stack.startup_s))
            print(
                f"{calls:>9,} calls ({megabytes:,.0f} MB, filled in {filled_in:.0f} s): "
                f"last {statistics.median(last) * 1000:.0f} ms, "
                f"status {statistics.median(status) * 1000:.0f} ms, "
                f"/readyz {statistics.median(ready) * 1000:.1f} ms, "
                f"startup {stack.startup_s * 1000:.0f} ms  (load {load_average()})"
            )
        print(f"\nmin / median / max of {args.asks} asks (ms):")
        for calls, last, status, ready, startup in rows:
            print(f"  {calls:>9,} calls: last    {spread([v * 1000 for v in last], 0)}")
            print(f"  {calls:>9,} calls: status  {spread([v * 1000 for v in status], 0)}")
            print(f"  {calls:>9,} calls: /readyz {spread([v * 1000 for v in ready], 1)}")
            print(f"  {calls:>9,} calls: startup {startup * 1000:.0f} ms (aim: under 1 s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--asks", type=int, default=7)
    parser.add_argument("--real", type=int, default=20, help="calls the bot really handles")
    asyncio.run(main(parser.parse_args()))
