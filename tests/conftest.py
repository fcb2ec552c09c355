"""Shared test plumbing: where the real RingCentral fixtures live, and a guard that keeps
every test off the network (loopback only)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import json
import os
import socket
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from bot.store import StorageInterface
from tests.postgres import (
    create_migrated_template,
    drop_database,
    fresh_database,
    postgres_server,
    server_addresses,
)
from tests.stores import BACKENDS, StoreFactory

T = TypeVar("T")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("RINGSENSE_SHARED_DIR", PROJECT_ROOT.parent / "shared"))
FIXTURES_DIR = SHARED_DIR / "fixtures" / "ringcentral"
OPENAPI_SUBSET = FIXTURES_DIR / "openapi" / "rc-bot-subset-openapi.yml"
ADAPTIVE_CARD_SCHEMA = SHARED_DIR / "schemas" / "adaptive-cards" / "1.3.0" / "adaptive-card.json"


def load_fixture(name: str) -> Any:
    """A real RingCentral payload from ../shared/fixtures/ringcentral, parsed."""
    return json.loads((FIXTURES_DIR / name).read_text(encoding="utf-8"))


# Addresses besides loopback a test may reach: the PostgreSQL server named by
# BOT_TEST_POSTGRES_URL, once a test has asked for it.
_ALLOWED_ADDRESSES: set[str] = set()


def _is_loopback(address: object) -> bool:
    if isinstance(address, tuple) and address:
        host = address[0]
    else:
        return True  # unix sockets and the like
    if host in ("localhost", "") or host in _ALLOWED_ADDRESSES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any test that tries to connect anywhere but loopback."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def guarded_connect(self: socket.socket, address: Any) -> Any:
        if not _is_loopback(address):
            raise RuntimeError(f"test tried to reach the network: {address!r}")
        return real_connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> Any:
        if not _is_loopback(address):
            raise RuntimeError(f"test tried to reach the network: {address!r}")
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)


@pytest.fixture
async def stack(tmp_path: Path) -> Any:
    """The sandbox and the bot, both on loopback, the bot subscribed and ready."""
    from tests.e2e import running_stack

    async with running_stack(tmp_path / "bot.sqlite3") as stack:
        yield stack


@pytest.fixture(params=BACKENDS)
async def e2e_database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The bot's `BOT_DATABASE` for an end-to-end test, once an SQLite file and once a
    fresh PostgreSQL database: the one switch that runs a test on both backends. A test
    that is really about SQLite (its file on disk, WAL, its triggers) takes the `sqlite`
    one only: `@sqlite_only` (tests/e2e.py), with a comment saying why."""
    if request.param == "sqlite":
        yield str(tmp_path / "bot.sqlite3")
        return
    server_url = request.getfixturevalue("postgres_server_url")
    template = request.getfixturevalue("migrated_postgres_template")
    async with fresh_database(server_url, template) as url:
        yield url


@pytest.fixture
async def stack_on_each_backend(e2e_database: str) -> Any:
    """`stack`, once with SQLite and once with PostgreSQL (a fresh database): tests/handlers
    takes it as its `stack` (tests/handlers/conftest.py)."""
    from tests.e2e import running_stack

    async with running_stack(e2e_database) as stack:
        yield stack


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A PostgreSQL server for the whole run: BOT_TEST_POSTGRES_URL, else a private one
    started from the `pgserver` wheel (see tests/postgres.py)."""
    with postgres_server() as url:
        _ALLOWED_ADDRESSES.update(server_addresses(url))
        yield url


@pytest.fixture(scope="session")
def migrated_postgres_template(postgres_server_url: str) -> Iterator[str]:
    """The name of a database on that server with every migration applied and no rows,
    which end-to-end tests copy (`CREATE DATABASE … TEMPLATE`) instead of migrating an
    empty one each time."""
    name = _run_in_a_thread(lambda: create_migrated_template(postgres_server_url))
    yield name
    _run_in_a_thread(lambda: drop_database(postgres_server_url, name))


def _run_in_a_thread(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run `work` to its end on an event loop of its own, in a thread of its own: a
    session fixture may be first asked for inside a test's running loop."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(lambda: asyncio.run(work())).result()


@pytest.fixture
async def postgres_url(postgres_server_url: str) -> AsyncIterator[str]:
    """The URL of a fresh, empty PostgreSQL database of this test's own."""
    async with fresh_database(postgres_server_url) as url:
        yield url


@pytest.fixture(params=BACKENDS)
async def store_factory(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[StoreFactory]:
    """Opens this test's database, on SQLite and then on PostgreSQL (a fresh database)."""
    if request.param == "sqlite":
        factory = StoreFactory("sqlite", str(tmp_path / "bot.sqlite3"))
        yield factory
        await factory.close_all()
        return
    server_url = request.getfixturevalue("postgres_server_url")
    async with fresh_database(server_url) as url:
        factory = StoreFactory("postgres", url)
        yield factory
        await factory.close_all()


@pytest.fixture
async def any_storage(store_factory: StoreFactory) -> StorageInterface:
    """An open storage without a secret key, on each backend in turn."""
    return await store_factory.open()


BLACKBOX_TESTS = "tests/blackbox/"


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under pytest-xdist (`-n 2`, its default `--dist load`), tests go to whichever worker is
    free, one at a time, except the black-box folder, which goes to one worker as a whole and
    in order, first (the largest unit): its processes are started once for the folder (a
    package fixture), its who-sees-what table once for its module, and its last module
    scans the logs the earlier ones made. (xdist's own `loadgroup` would do this with marks,
    but under pytest 9 its renaming of node ids no longer takes.)"""
    if config.getoption("dist") != "load":
        return None  # another --dist asked for explicitly
    from xdist.scheduler import LoadScopeScheduling

    class BlackBoxTogether(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return BLACKBOX_TESTS if nodeid.startswith(BLACKBOX_TESTS) else nodeid

    return BlackBoxTogether(config, log)
