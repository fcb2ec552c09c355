"""A short run of bench/shared_windows.py: it runs, and prints what README quotes."""

from __future__ import annotations

import re

import pytest

from bench.shared_windows import measure


async def test_a_short_run_prints_the_cost_per_request_alone_and_contended(
    postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await measure(postgres_url, requests=20, replicas=2, tasks=2)
    printed = capsys.readouterr().out
    assert re.search(r"one replica, one after another: [\d.]+ ms per request", printed)
    assert re.search(r"2 replicas x 2 tasks at once, one row: [\d.]+ ms per request", printed)
    sends = int(re.search(r"sends in the row at the end: (\d+)", printed).group(1))  # type: ignore[union-attr]
    assert 1 <= sends <= 20 + 20 + 3
