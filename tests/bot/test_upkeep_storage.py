"""Retention (`prune`) and the levels the metrics read, on SQLite and on PostgreSQL alike
(`store_factory` runs each test on both): words go after their days, dedupe keys later,
pending work never, old calls with everything hanging off them, in batches however big the
backlog; and two replicas pruning at once (a lease's holders overlapping) on PostgreSQL.

Rows of other table families are laid out with SQL (tests/raw_sql.py), as an operator
would see them, so these tests need only the upkeep family."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from bot.store.interface import UpkeepStore
from bot.store.records import PRUNE_BATCH
from tests.raw_sql import insert, run_sql
from tests.stores import StoreFactory

DAY_S = 86_400.0


async def prune(storage: UpkeepStore, now: float) -> dict[str, int]:
    """One retention round at `now`: words kept 7 days, dedupe keys 30, calls 90."""
    return await storage.prune(now=now, messages_days=7, calls_days=90, dedupe_days=30.0)


def day(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d")


def inbox_row(uuid: str, status: str, age_days: float, now: float, text: str) -> dict[str, Any]:
    return {
        "uuid": uuid,
        "kind": "post.added",
        "payload": f'{{"text":"{text}"}}',
        "received_at": now - age_days * DAY_S,
        "status": status,
        "last_error": "boom" if status == "failed" else None,
        "account_id": "acct-1",
    }


def outbox_row(key: str, status: str, age_days: float, now: float) -> dict[str, Any]:
    return {
        "dedupe_key": key,
        "destination": "direct:101",
        "message": f'{{"text":"card words of {key}"}}',
        "status": status,
        "created_at": now - age_days * DAY_S,
        "account_id": "acct-1",
    }


LAID_OUT_CALLS: dict[str, list[str]] = {}
"""The calls laid out in each test database, to give each its own search rowid range."""


async def lay_out_a_call(factory: StoreFactory, key: str, updated_at: float) -> None:
    """A call with everything that hangs off it: participants, transcript, feedback, next
    steps, a search line, a skipped digest, the id of its posted card."""
    call: dict[str, Any] = {
        "call_key": key,
        "domain": "pbx",
        "source_record_id": key,
        "owner_extension_id": "101",
        "insights": f'{{"summary":"words of {key}"}}',
        "updated_at": updated_at,
        "account_id": "acct-1",
    }
    search_line: dict[str, Any] = {
        "text": f"pineapple of {key}",
        "account_id": "acct-1",
        "call_key": key,
    }
    if factory.backend == "sqlite":
        # SQLite's index: each call owns a range of `find`'s rowids (bot/store/base.py).
        search_id = len(LAID_OUT_CALLS.setdefault(factory.database, [])) + 1
        LAID_OUT_CALLS[factory.database].append(key)
        call["search_id"] = search_id
        search_line["rowid"] = search_id << 20
    await insert(factory, "calls", [call])
    await insert(
        factory,
        "call_participants",
        [
            {"call_key": key, "extension_id": person, "account_id": "acct-1"}
            for person in ("101", "102")
        ],
    )
    await insert(
        factory,
        "call_transcripts",
        [{"call_key": key, "account_id": "acct-1", "utterances": "[]", "updated_at": 1.0}],
    )
    await insert(
        factory,
        "feedback",
        [
            {
                "call_key": key,
                "extension_id": "101",
                "verdict": "helpful",
                "created_at": 1.0,
                "account_id": "acct-1",
            }
        ],
    )
    await insert(
        factory,
        "next_steps",
        [
            {
                "account_id": "acct-1",
                "call_key": key,
                "position": 0,
                "assignee_extension_id": "101",
                "text": f"next step of {key}",
                "created_at": 1.0,
            }
        ],
    )
    await insert(factory, "call_search", [search_line])
    await insert(
        factory,
        "skipped_digests",
        [{"account_id": "acct-1", "extension_id": "102", "call_key": key, "skipped_at": 1.0}],
    )
    await insert(
        factory,
        "posted_cards",
        [
            {
                "card_key": key,
                "destination": "direct:101",
                "chat_id": "dm-101",
                "card_id": f"card-{key}",
                "updated_at": 1.0,
                "account_id": "acct-1",
            }
        ],
    )


def ai_job_row(job_id: str, state: str, age_days: float, now: float) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "requester_id": "101",
        "account_id": "acct-1",
        "destination": "{}",
        "source_label": "call.mp3",
        "entitled_ids": "[]",
        "webhook_secret_hash": f"hash-{job_id}",
        "state": state,
        "requested_at": now - age_days * DAY_S,
        "expires_at": now,
        "result": '{"utterances":["what was said"]}' if state == "done" else None,
        "speaker_names": "{}",
    }


def segment_row(dialog: str, state: str, age_days: float, now: float) -> dict[str, Any]:
    return {
        "dialog_id": dialog,
        "segment_id": "seg",
        "metadata": "{}",
        "state": state,
        "found_at": now - age_days * DAY_S,
        "account_id": "acct-1",
    }


async def test_prune_removes_what_retention_allows_and_keeps_the_rest(
    store_factory: StoreFactory,
) -> None:
    storage = await store_factory.open()
    now = time.time()
    await insert(
        store_factory,
        "inbox",
        [
            inbox_row("old-done", "done", 10, now, "old words"),
            inbox_row("ancient-done", "done", 40, now, "ancient words"),
            inbox_row("ancient-failed", "failed", 40, now, "failed words"),
            inbox_row("ancient-pending", "pending", 40, now, "pending words"),
            inbox_row("new-done", "done", 1, now, "new words"),
        ],
    )
    await insert(
        store_factory,
        "outbox",
        [
            outbox_row("failed-old", "failed", 10, now),
            outbox_row("sent-old", "sent", 10, now),
            outbox_row("sent-ancient", "sent", 40, now),
            outbox_row("pending-ancient", "pending", 40, now),
            outbox_row("sent-new", "sent", 1, now),
        ],
    )
    await insert(
        store_factory,
        "seen_submits",
        [
            {"uuid": "submit-old", "seen_at": now - 40 * DAY_S, "account_id": "acct-1"},
            {"uuid": "submit-new", "seen_at": now - 1 * DAY_S, "account_id": "acct-1"},
        ],
    )
    await lay_out_a_call(store_factory, "old-call", now - 91 * DAY_S)
    await lay_out_a_call(store_factory, "new-call", now - 10 * DAY_S)
    await insert(
        store_factory,
        "ai_jobs",
        [
            ai_job_row("job-old", "done", 91, now),
            ai_job_row("job-old-pending", "pending", 91, now),
            ai_job_row("job-new", "done", 10, now),
        ],
    )
    await insert(
        store_factory,
        "posted_cards",
        [
            {
                "card_key": f"ai:{job}",
                "destination": "direct:101",
                "chat_id": "dm-101",
                "card_id": f"card-{job}",
                "updated_at": 1.0,
                "account_id": "acct-1",
            }
            for job in ("job-old", "job-new")
        ],
    )
    await insert(
        store_factory,
        "ringcx_segments",
        [
            segment_row("dialog-old-done", "done", 10, now),
            segment_row("dialog-old-pending", "pending", 10, now),
            segment_row("dialog-new-done", "done", 1, now),
        ],
    )
    await insert(
        store_factory,
        "daily_posts",
        [
            {"account_id": "acct-1", "day": day(now - 5 * DAY_S), "count": 3},
            {"account_id": "acct-1", "day": day(now), "count": 2},
        ],
    )

    pruned = await prune(storage, now)

    assert pruned == {
        "inbox": 5,  # 3 emptied (old-done, ancient-done, ancient-failed), 2 then deleted
        "outbox": 4,  # failed-old deleted, sent-old and sent-ancient emptied, the latter deleted
        "seen_submits": 1,
        "calls": 1,
        "call_participants": 2,
        "call_transcripts": 1,
        "feedback": 1,
        "next_steps": 1,
        "call_search": 1,
        "skipped_digests": 1,
        "posted_cards": 2,  # the old call's card id, and the old analysis's
        "ringcx_segments": 1,
        "ai_jobs": 1,
        "daily_posts": 1,
    }
    assert sorted(await run_sql(store_factory, "SELECT uuid, payload, last_error FROM inbox")) == [
        ("ancient-pending", '{"text":"pending words"}', None),
        ("new-done", '{"text":"new words"}', None),
        ("old-done", "{}", None),
    ]
    assert sorted(await run_sql(store_factory, "SELECT dedupe_key, message FROM outbox")) == [
        ("pending-ancient", '{"text":"card words of pending-ancient"}'),
        ("sent-new", '{"text":"card words of sent-new"}'),
        ("sent-old", "{}"),
    ]
    assert await run_sql(store_factory, "SELECT uuid FROM seen_submits") == [("submit-new",)]
    for table in ("calls", "call_transcripts", "call_search", "skipped_digests", "next_steps"):
        found = await run_sql(store_factory, f"SELECT DISTINCT call_key FROM {table}")  # noqa: S608
        assert found == [("new-call",)], table
    assert sorted(await run_sql(store_factory, "SELECT card_key FROM posted_cards")) == [
        ("ai:job-new",),
        ("new-call",),
    ]
    assert sorted(await run_sql(store_factory, "SELECT job_id FROM ai_jobs")) == [
        ("job-new",),
        ("job-old-pending",),
    ]
    assert sorted(await run_sql(store_factory, "SELECT dialog_id FROM ringcx_segments")) == [
        ("dialog-new-done",),
        ("dialog-old-pending",),
    ]
    assert await run_sql(store_factory, "SELECT day FROM daily_posts") == [(day(now),)]
    # A second round finds nothing more to do.
    assert await prune(storage, now) == {}


async def lay_out_a_backlog(factory: StoreFactory, count: int, now: float) -> None:
    await insert(
        factory,
        "inbox",
        [inbox_row(f"n-{n}", "done", 40, now, "old words") for n in range(count)],
    )
    await insert(
        factory,
        "outbox",
        [outbox_row(f"o-{n}", "sent", 10, now) for n in range(count)],
    )
    await insert(
        factory,
        "calls",
        [
            {
                "call_key": f"r{n}",
                "domain": "pbx",
                "source_record_id": f"r{n}",
                "owner_extension_id": "101",
                "insights": "{}",
                "updated_at": now - 91 * DAY_S,
                "account_id": "acct-1",
            }
            for n in range(count)
        ],
    )
    await insert(
        factory,
        "call_transcripts",
        [
            {"call_key": f"r{n}", "account_id": "acct-1", "utterances": "[]", "updated_at": 1.0}
            for n in range(count)
        ],
    )


async def test_a_backlog_bigger_than_a_batch_is_pruned_entirely(
    store_factory: StoreFactory,
) -> None:
    storage = await store_factory.open()
    now = time.time()
    backlog = PRUNE_BATCH + 20
    await lay_out_a_backlog(store_factory, backlog, now)
    pruned = await prune(storage, now)
    assert pruned == {
        "inbox": 2 * backlog,  # each emptied, then deleted
        "outbox": backlog,
        "calls": backlog,
        "call_transcripts": backlog,
    }
    assert await run_sql(store_factory, "SELECT COUNT(*) FROM inbox") == [(0,)]
    assert await run_sql(store_factory, "SELECT COUNT(*) FROM outbox WHERE message <> '{}'") == [
        (0,)
    ]
    assert await run_sql(store_factory, "SELECT COUNT(*) FROM call_transcripts") == [(0,)]


async def test_two_replicas_pruning_at_once_leave_the_same_result(postgres_url: str) -> None:
    """Only on PostgreSQL: the retention lease's holders can overlap for a few seconds.
    Neither waits for rows the other holds, and together they prune everything once."""
    factory = StoreFactory("postgres", postgres_url)
    try:
        first = await factory.open(replica_id="replica-a")
        second = await factory.open(replica_id="replica-b")
        now = time.time()
        backlog = 2 * PRUNE_BATCH + 20
        await lay_out_a_backlog(factory, backlog, now)
        await insert(factory, "inbox", [inbox_row("still-pending", "pending", 40, now, "keep")])
        results = await asyncio.gather(
            prune(first, now),
            prune(second, now),
        )
        together = {
            table: sum(result.get(table, 0) for result in results)
            for table in ("outbox", "calls", "call_transcripts")
        }
        assert together == {"outbox": backlog, "calls": backlog, "call_transcripts": backlog}
        assert await run_sql(factory, "SELECT uuid, payload FROM inbox") == [
            ("still-pending", '{"text":"keep"}')
        ]
        assert await run_sql(factory, "SELECT COUNT(*) FROM outbox WHERE message <> '{}'") == [(0,)]
        assert await run_sql(factory, "SELECT COUNT(*) FROM calls") == [(0,)]
        assert await run_sql(factory, "SELECT COUNT(*) FROM call_transcripts") == [(0,)]
    finally:
        await factory.close_all()


async def test_operational_levels_count_waiting_work_and_job_states(
    store_factory: StoreFactory,
) -> None:
    storage = await store_factory.open()
    now = time.time()
    empty = await storage.operational_levels(now)
    assert empty.queues == {"inbox": (0, None), "outbox": (0, None)}
    assert empty.ai_jobs == {} and empty.ringcx_segments == {}

    await insert(
        store_factory,
        "inbox",
        [
            inbox_row("waiting-1", "pending", 0.5, now, "a"),
            inbox_row("waiting-2", "pending", 0.1, now, "b"),
            inbox_row("handled", "done", 3, now, "c"),
        ],
    )
    await insert(
        store_factory,
        "outbox",
        [outbox_row("to-send", "pending", 0.2, now), outbox_row("sent", "sent", 5, now)],
    )
    await insert(
        store_factory,
        "ai_jobs",
        [
            ai_job_row("j1", "pending", 0, now),
            ai_job_row("j2", "done", 0, now),
            ai_job_row("j3", "done", 0, now),
        ],
    )
    await insert(
        store_factory,
        "ringcx_segments",
        [segment_row("d1", "pending", 0, now), segment_row("d2", "failed", 0, now)],
    )
    levels = await storage.operational_levels(now)
    assert levels.queues == {
        "inbox": (2, now - 0.5 * DAY_S),
        "outbox": (1, now - 0.2 * DAY_S),
    }
    assert levels.ai_jobs == {"pending": 1, "done": 2}
    assert levels.ringcx_segments == {"pending": 1, "failed": 1}
