"""RingCX segments claimed with a short lease the poller renews while it works (issue 13):
a poller that died (its replica killed) leaves its segments to the next holder within
seconds, not after five minutes; one still working keeps them however long RingCX takes.
Two storages on one PostgreSQL database are two replicas."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

from bot.config import RingCXConfig
from bot.ringcx import RingCXPoller
from bot.store import StorageInterface
from bot.store.interface import SharedRingCx
from bot.store.postgres.storage import PostgresStorage
from tests.stores import postgres_rows

LEASE_S = 1.0
"""Short here, to see a dead poller's segments taken over in a test's time."""


async def _segments(storage: StorageInterface, *names: str) -> None:
    await storage.add_ringcx_segments(
        [(f"d-{name}", f"s-{name}", {"name": name}, "201", None) for name in names],
        "ringcx.position",
        "2026-12-01T00:15:00+00:00",
        "A",
    )


def _keys(due: list[tuple[str, str, Mapping[str, Any], int]]) -> list[tuple[str, str]]:
    return [(dialog, segment) for dialog, segment, _, _ in due]


async def _open(url: str, name: str) -> PostgresStorage:
    storage = await PostgresStorage.open(url, replica_id=name)
    storage.ringcx_claim_s = LEASE_S
    return storage


async def test_a_dead_pollers_segments_are_taken_within_its_short_lease(
    postgres_url: str,
) -> None:
    first = await _open(postgres_url, "first")
    second = await _open(postgres_url, "second")
    try:
        assert isinstance(first, SharedRingCx)
        await _segments(first, "1", "2")
        held = _keys(await first.due_ringcx_segments(20))
        assert held == [("d-1", "s-1"), ("d-2", "s-2")]
        assert await second.due_ringcx_segments(20) == []

        # Working on them for two leases, renewing: nobody else gets them.
        for _ in range(6):
            await asyncio.sleep(LEASE_S / 3)
            assert sorted(await first.renew_ringcx_claims(held)) == held
            assert await second.due_ringcx_segments(20) == []

        # The first replica dies: it renews no more. The second takes them over soon after.
        taken_at = time.monotonic()
        taken: list[tuple[str, str]] = []
        while not taken:
            assert time.monotonic() - taken_at < LEASE_S + 5, "never taken over"
            await asyncio.sleep(0.1)
            taken = _keys(await second.due_ringcx_segments(20))
        assert taken == held
        # A first replica that was only paused finds them gone and gives up.
        assert await first.renew_ringcx_claims(held) == []
        await second.finish_ringcx_segment("d-1", "s-1", "done")
        await second.retry_ringcx_segment("d-2", "s-2", 600.0, "not ready yet")
        assert await first.renew_ringcx_claims(held) == []
        rows = await postgres_rows(
            postgres_url,
            "SELECT segment_id, state, next_attempt_at FROM ringcx_segments ORDER BY segment_id",
        )
        states = [(r["segment_id"], r["state"]) for r in rows]
        assert states == [("s-1", "done"), ("s-2", "pending")]
        assert rows[1]["next_attempt_at"] > time.time() + 500  # its retry kept, not renewed
    finally:
        await first.close()
        await second.close()


async def test_a_stopping_poller_hands_its_segments_over_at_once(postgres_url: str) -> None:
    first = await _open(postgres_url, "first")
    second = await _open(postgres_url, "second")
    try:
        first.ringcx_claim_s = 300.0  # a release, not the lease running out
        await _segments(first, "1")
        held = _keys(await first.due_ringcx_segments(20))
        await first.release_ringcx_claims(held)
        assert _keys(await second.due_ringcx_segments(20)) == held
    finally:
        await first.close()
        await second.close()


class SlowRingCX:
    """RingCX answering a transcript only when the test lets it."""

    def __init__(self) -> None:
        self.asked = asyncio.Event()
        self.answer = asyncio.Event()

    async def transcript(self, dialog_id: str, segment_id: str) -> Mapping[str, Any]:
        self.asked.set()
        await self.answer.wait()
        return {"dialogId": dialog_id, "segmentId": segment_id, "utterances": []}


async def test_a_poller_keeps_its_segment_while_ringcx_is_slow_and_hands_it_over_when_stopped(
    postgres_url: str,
) -> None:
    working = await _open(postgres_url, "working")
    other = await _open(postgres_url, "other")
    ringcx = SlowRingCX()
    services: Any = SimpleNamespace(
        storage=working,
        config=SimpleNamespace(ringcx=RingCXConfig(enabled=True, sub_account_id="1")),
        service_account_id="A",
        install_for_account=lambda _account: None,
    )
    poller = RingCXPoller(ringcx, services, on_stored=lambda: None)  # type: ignore[arg-type]
    fetching = asyncio.create_task(poller._fetch_transcripts())
    try:
        await _segments(working, "1")
        poller.wake.set()
        await asyncio.wait_for(ringcx.asked.wait(), 10)
        # RingCX takes two leases to answer: the segment stays with the working poller.
        for _ in range(4):
            await asyncio.sleep(LEASE_S / 2)
            assert await other.due_ringcx_segments(20) == []
        # Its replica stops (the lease moved, or a deploy): the segment is free at once.
        fetching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await fetching
        assert _keys(await other.due_ringcx_segments(20)) == [("d-1", "s-1")]
    finally:
        fetching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await fetching
        await working.close()
        await other.close()
