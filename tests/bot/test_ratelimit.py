from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.ratelimit import PenaltyMemory, RateGovernor, group_of
from bot.storage import Storage
from tests.conftest import OPENAPI_SUBSET


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def send_one(governor: RateGovernor, group: str, *, answered: bool = True) -> None:
    """One request through the governor, answered without a 429 (or with no answer)."""
    async with governor.sending(group) as ticket:
        if answered:
            governor.relieve(group, ticket)


def spec_operations() -> list[tuple[str, str, str]]:
    spec: dict[str, Any] = yaml.safe_load(OPENAPI_SUBSET.read_text(encoding="utf-8"))
    found = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            group = operation.get("x-throttling-group") if isinstance(operation, dict) else None
            if group and group != "NoThrottling":
                concrete = re.sub(r"\{[^}]+\}", "12345", path)
                found.append((method.upper(), concrete, group.lower()))
    return found


@pytest.mark.parametrize(("method", "path", "group"), spec_operations())
def test_every_endpoint_we_use_is_paced_in_its_real_group(
    method: str, path: str, group: str
) -> None:
    assert group_of(method, path) == group


async def test_requests_are_paced_to_the_limit_of_the_window() -> None:
    fake = FakeTime()
    governor = RateGovernor(fake.clock, fake.sleep)
    governor.observe("heavy", limit=10, remaining=10, window_s=60)
    for _ in range(10):
        await send_one(governor, "heavy")
    assert fake.slept == []
    await send_one(governor, "heavy")  # the 11th waits for the first to leave the window
    assert fake.slept == [pytest.approx(61.0)]  # with a second's margin for arrival lag


async def test_nothing_is_sent_during_a_penalty() -> None:
    fake = FakeTime()
    governor = RateGovernor(fake.clock, fake.sleep)
    governor.penalise("medium", 7)
    await send_one(governor, "medium")
    assert fake.slept == [7.0]
    assert fake.now == 1007.0
    governor.penalise("light", None)  # no Retry-After: at least 30 s, as the docs advise
    await send_one(governor, "light")
    assert fake.slept[-1] == 30.0


async def test_the_servers_count_is_trusted_when_it_is_higher() -> None:
    fake = FakeTime()
    governor = RateGovernor(fake.clock, fake.sleep)
    governor.observe("medium", limit=40, remaining=0, window_s=60)
    await send_one(governor, "medium")
    assert fake.slept and fake.slept[0] == pytest.approx(61.0)


async def test_a_penalty_outlives_the_process_for_its_identity_only(tmp_path: Path) -> None:
    storage = await Storage.open(tmp_path / "bot.sqlite3")
    try:
        before_restart = PenaltyMemory(storage)
        await before_restart.load()
        governor = before_restart.governor("service")
        governor.penalise("heavy", 120)
        await governor.remember_penalty("heavy")
        after_restart = PenaltyMemory(storage)
        await after_restart.load()
        restored = after_restart.governor("service")
        assert 110 < restored.penalty_left("heavy") <= 120
        assert restored.penalty_left("light") == 0
        assert after_restart.governor("bot-0123").penalty_left("heavy") == 0
    finally:
        await storage.close()


async def test_429s_without_retry_after_back_off_exponentially_until_an_answer() -> None:
    """API-FACTS G: without Retry-After wait at least 30 s; a platform that keeps saying 429
    without one gets longer and longer pauses (not a 30 s loop that restarts its penalty),
    and the first real answer ends the backoff."""
    fake = FakeTime()
    governor = RateGovernor(fake.clock, fake.sleep)
    for _ in range(7):
        governor.penalise("heavy", None)
        await send_one(governor, "heavy", answered=False)
    assert fake.slept == [30.0, 60.0, 120.0, 240.0, 480.0, 900.0, 900.0]
    governor.relieve("heavy")  # an answer that is not a 429
    governor.penalise("heavy", None)
    await send_one(governor, "heavy")
    assert fake.slept[-1] == 30.0
    governor.penalise("heavy", 5)  # a Retry-After is obeyed as it is
    await send_one(governor, "heavy")
    assert fake.slept[-1] == 5.0


class Requests:
    """Requests of one group through a governor, answered when the test says so: how many
    were out at once is what RingCentral would see arrive together."""

    def __init__(self, governor: RateGovernor, group: str) -> None:
        self.governor = governor
        self.group = group
        self.out = 0
        self.most_at_once = 0
        self.answer = asyncio.Event()

    async def one(self, *, status: int = 200, usage_told: bool = True) -> None:
        async with self.governor.sending(self.group) as ticket:
            self.out += 1
            self.most_at_once = max(self.most_at_once, self.out)
            await self.answer.wait()
            self.out -= 1
            if status == 429:
                self.governor.penalise(self.group, 5)
            else:
                if usage_told:
                    self.governor.observe(self.group, 40, 30, 60)
                self.governor.relieve(self.group, ticket, usage_told=usage_told)

    async def ready(self, count: int, **answer: Any) -> list[asyncio.Task[None]]:
        """`count` requests ready at once, given every chance to go."""
        self.answer.clear()
        self.most_at_once = 0
        tasks = [asyncio.create_task(self.one(**answer)) for _ in range(count)]
        for _ in range(20):
            await asyncio.sleep(0)
        return tasks

    async def answered(self, tasks: list[asyncio.Task[None]]) -> None:
        self.answer.set()
        await asyncio.gather(*tasks)


async def test_a_started_bot_sends_one_request_per_group_until_an_answer_says_where_it_stands() -> (
    None
):
    """After a start the window may be full, or penalised, without our knowing: the first
    request probes alone; once its answer tells the window's use, the rest go side by side."""
    fake = FakeTime()
    medium = Requests(RateGovernor(fake.clock, fake.sleep), "medium")
    tasks = await medium.ready(4)
    assert medium.most_at_once == 1
    await medium.answered(tasks)
    tasks = await medium.ready(4)
    assert medium.most_at_once == 4  # known now: side by side, paced by the window only
    await medium.answered(tasks)
    assert fake.slept == []


async def test_after_a_429_one_at_a_time_until_a_request_sent_since_succeeds() -> None:
    """Requests already out when the 429 came say nothing about the penalty: only an
    answer to one sent after it lets the others go together again."""
    fake = FakeTime()
    medium = Requests(RateGovernor(fake.clock, fake.sleep), "medium")
    await medium.answered(await medium.ready(1))
    out_before = await medium.ready(3)  # side by side, as the state was known
    assert medium.most_at_once == 3
    medium.governor.penalise("medium", 5)  # one of them met a 429 ...
    await medium.answered(out_before)  # ... the others' answers come after it
    tasks = await medium.ready(4)
    assert fake.slept == [5.0]  # the penalty waited out
    assert medium.most_at_once == 1  # then one probe
    await medium.answered(tasks)
    assert medium.governor.probing("medium") is False


async def test_without_rate_headers_probing_ends_once_a_whole_window_is_counted() -> None:
    """An answer without `X-Rate-Limit-Remaining` (rare, API-FACTS G) says nothing about
    the window's use before our start; after a whole window, our own count is the window's."""
    fake = FakeTime()
    medium = Requests(RateGovernor(fake.clock, fake.sleep), "medium")
    await medium.answered(await medium.ready(1, usage_told=False))
    tasks = await medium.ready(2, usage_told=False)
    assert medium.most_at_once == 1
    await medium.answered(tasks)
    fake.now += 60
    await medium.answered(await medium.ready(1, usage_told=False))
    tasks = await medium.ready(3, usage_told=False)
    assert medium.most_at_once == 3
    await medium.answered(tasks)


async def test_clients_of_one_identity_share_one_count(tmp_path: Path) -> None:
    """RingCentral counts per user: a second client with the same token (an install
    registered again) must not start a count, or a probe, of its own."""
    storage = await Storage.open(tmp_path / "bot.sqlite3")
    try:
        memory = PenaltyMemory(storage)
        await memory.load()
        first, second = memory.governor("bot-0123"), memory.governor("bot-0123")
        first.penalise("medium", 30)
        assert second.penalty_left("medium") == pytest.approx(30, abs=1)
        assert memory.governor("service").penalty_left("medium") == 0
    finally:
        await storage.close()


async def test_a_slow_request_counts_in_the_window_until_its_answer() -> None:
    """RingCentral counts a request from its arrival, which on a loaded machine can come
    well after we stamped it: in a busy window it counts until its answer, so the request
    that would be one too many waits instead of drawing a 429."""
    fake = FakeTime()
    governor = RateGovernor(fake.clock, fake.sleep)
    governor.observe("heavy", limit=2, remaining=2, window_s=10)
    await send_one(governor, "heavy")  # sent and answered at once, at t=0
    async with governor.sending("heavy") as slow:  # sent at t=0 ...
        fake.now += 3  # ... answered 3 s later
        governor.relieve("heavy", slow, usage_told=True)
    fake.now += 7.5  # both were sent 10.5 s ago, beyond the window and its margin
    await send_one(governor, "heavy")  # the quick one's place
    assert fake.slept == []
    await send_one(governor, "heavy")  # the slow one's place is free at 3 + 10.2 s only
    assert fake.slept == [pytest.approx(3 + 10.2 - 10.5)]


async def test_subscription_upkeep_takes_the_next_place_before_the_requests_waiting() -> None:
    """A full window with reads queued: the subscription check goes next, not after them
    (bench/replicas.py saw checks wait behind 50 RingSense reads, over a minute)."""
    fake = FakeTime()
    window_opens = asyncio.Event()

    async def sleep_until_the_window_opens(seconds: float) -> None:
        fake.slept.append(seconds)
        await window_opens.wait()
        fake.now += seconds

    governor = RateGovernor(fake.clock, sleep_until_the_window_opens)
    governor.observe("light", limit=2, remaining=2, window_s=60)
    for _ in range(2):
        await send_one(governor, "light")  # the window is full
    order: list[str] = []

    async def send(name: str, *, urgent: bool = False) -> None:
        async with governor.sending("light", urgent=urgent) as ticket:
            order.append(name)
            governor.relieve("light", ticket)

    waiting = []
    for name in ("read 1", "read 2", "read 3"):
        waiting.append(asyncio.create_task(send(name)))
        await asyncio.sleep(0)
    waiting.append(asyncio.create_task(send("subscription check", urgent=True)))
    await asyncio.sleep(0)
    assert order == []
    window_opens.set()
    await asyncio.wait_for(asyncio.gather(*waiting), 5)
    # "read 1" was already waiting for the window with the turn; the check goes next.
    assert order == ["read 1", "subscription check", "read 2", "read 3"]


async def test_a_request_cancelled_while_waiting_its_turn_holds_nobody_up() -> None:
    fake = FakeTime()
    window_opens = asyncio.Event()

    async def sleep_until_the_window_opens(seconds: float) -> None:
        await window_opens.wait()
        fake.now += seconds

    governor = RateGovernor(fake.clock, sleep_until_the_window_opens)
    governor.observe("light", limit=1, remaining=1, window_s=60)
    await send_one(governor, "light")
    order: list[str] = []

    async def send(name: str, *, urgent: bool = False) -> None:
        async with governor.sending("light", urgent=urgent) as ticket:
            order.append(name)
            governor.relieve("light", ticket)

    first = asyncio.create_task(send("first"))
    await asyncio.sleep(0)
    given_up = asyncio.create_task(send("given up", urgent=True))
    last = asyncio.create_task(send("last"))
    await asyncio.sleep(0)
    given_up.cancel()
    window_opens.set()
    await asyncio.wait_for(asyncio.gather(first, last), 5)
    assert given_up.cancelled()
    assert order == ["first", "last"]
