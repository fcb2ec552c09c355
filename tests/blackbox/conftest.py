"""One sandbox process and one bot process for the whole black-box folder, stopped when
the folder is done (starting them costs seconds; each test makes its own data on top).

Their files live in a folder of our own rather than pytest's numbered temp folders, which
other pytest runs on the machine prune while we still read the logs. Set
`BLACKBOX_KEEP=1` to keep it (its path is printed) and read the bot's and the sandbox's logs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.blackbox.harness import BlackBox, start_blackbox


@pytest.fixture(scope="package")
def blackbox() -> Iterator[BlackBox]:
    workdir = Path(tempfile.mkdtemp(prefix="ringsense-blackbox-"))
    running = start_blackbox(workdir)
    try:
        yield running
    finally:
        running.stop()
        if os.environ.get("BLACKBOX_KEEP"):
            print(f"\nblack-box logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
