"""One sandbox process and one bot process for the whole black-box folder (starting them
costs seconds; every test builds its own people-independent data on top)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.blackbox.harness import BlackBox, start_blackbox


@pytest.fixture(scope="session")
def blackbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BlackBox]:
    running = start_blackbox(tmp_path_factory.mktemp("blackbox"))
    try:
        yield running
    finally:
        running.stop()
