"""One sandbox process and one bot process for the whole black-box folder, stopped when
the folder is done (starting them costs seconds; each test makes its own data on top).

Their files live in a folder of our own rather than pytest's numbered temp folders, which
other pytest runs on the machine prune while we still read the logs. Set
`BLACKBOX_KEEP=1` to keep it (its path is printed) and read the bot's and the sandbox's logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.blackbox.harness import BlackBox, start_blackbox
from tests.postgres import create_database, drop_database, with_database
from tests.stores import BACKENDS


@pytest.fixture(scope="package", params=BACKENDS)
def blackbox(request: pytest.FixtureRequest) -> Iterator[BlackBox]:
    """The pair, once with the bot on SQLite (its file in the folder) and once on a fresh
    PostgreSQL database (`BOT_DATABASE=postgresql://…`, as an operator sets it)."""
    workdir = Path(tempfile.mkdtemp(prefix="ringsense-blackbox-"))
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(_remove_unless_kept, workdir)
        database = None
        if request.param == "postgres":
            server_url = request.getfixturevalue("postgres_server_url")
            template = request.getfixturevalue("migrated_postgres_template")
            database = cleanup.enter_context(_fresh_database(server_url, template))
        running = start_blackbox(workdir, database)
        cleanup.callback(running.stop)
        yield running


@contextlib.contextmanager
def _fresh_database(server_url: str, template: str) -> Iterator[str]:
    """`tests.postgres.fresh_database` for a fixture outside any event loop."""
    name = asyncio.run(create_database(server_url, template))
    try:
        yield with_database(server_url, name)
    finally:
        asyncio.run(drop_database(server_url, name))


def _remove_unless_kept(workdir: Path) -> None:
    if os.environ.get("BLACKBOX_KEEP"):
        print(f"\nblack-box logs kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
