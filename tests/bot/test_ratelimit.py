from __future__ import annotations

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
        await governor.acquire("heavy")
    assert fake.slept == []
    await governor.acquire("heavy")  # the 11th waits for the first to leave the window
    assert fake.slept == [pytest.approx(61.0)]  # with a second's margin for arrival lag


async def test_nothing_is_sent_during_a_penalty() -> None:
    fake = FakeTime()
    governor = RateGovernor(fake.clock, fake.sleep)
    governor.penalise("medium", 7)
    await governor.acquire("medium")
    assert fake.slept == [7.0]
    assert fake.now == 1007.0
    governor.penalise("light", None)  # no Retry-After: at least 30 s, as the docs advise
    await governor.acquire("light")
    assert fake.slept[-1] == 30.0


async def test_the_servers_count_is_trusted_when_it_is_higher() -> None:
    fake = FakeTime()
    governor = RateGovernor(fake.clock, fake.sleep)
    governor.observe("medium", limit=40, remaining=0, window_s=60)
    await governor.acquire("medium")
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
        await governor.acquire("heavy")
    assert fake.slept == [30.0, 60.0, 120.0, 240.0, 480.0, 900.0, 900.0]
    governor.relieve("heavy")  # an answer that is not a 429
    governor.penalise("heavy", None)
    await governor.acquire("heavy")
    assert fake.slept[-1] == 30.0
    governor.penalise("heavy", 5)  # a Retry-After is obeyed as it is
    await governor.acquire("heavy")
    assert fake.slept[-1] == 5.0
