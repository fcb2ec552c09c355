"""PostgreSQL for tests, with nothing to install on the machine.

`BOT_TEST_POSTGRES_URL` (for example `postgresql://bot@127.0.0.1:5432/postgres`, a role
allowed to create databases) names a server to use; without it a private server from the
`pgserver` wheel is started in a temporary folder the first time a test asks for one, for
the whole run, and deleted afterwards. Each test gets a database of its own, dropped after.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import tempfile
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ENV_URL = "BOT_TEST_POSTGRES_URL"


def with_database(url: str, database: str) -> str:
    """`url` pointing at `database` instead (user, host, socket folder kept)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def server_addresses(url: str) -> set[str]:
    """The IP addresses of the server in `url`, which the test network guard lets through
    (a unix socket needs no exception)."""
    host = urlsplit(url).hostname
    if not host:
        return set()
    port = urlsplit(url).port or 5432
    return {str(info[4][0]) for info in socket.getaddrinfo(host, port)}


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """The URL of a PostgreSQL server's maintenance database, for the duration."""
    configured = os.environ.get(ENV_URL)
    if configured:
        yield configured
        return
    with warnings.catch_warnings():
        # platformdirs warns, on import, of a machine without XDG_RUNTIME_DIR (containers).
        warnings.simplefilter("ignore")
        import pgserver

    with tempfile.TemporaryDirectory(prefix="bot-test-pg-") as folder:
        server = pgserver.get_server(Path(folder) / "data", cleanup_mode="delete")
        try:
            yield str(server.get_uri())
        finally:
            server.cleanup()


@contextlib.asynccontextmanager
async def fresh_database(server_url: str, template: str | None = None) -> AsyncIterator[str]:
    """A new, empty database on the server (a copy of `template` if named), dropped
    (sessions and all) afterwards."""
    name = await create_database(server_url, template)
    try:
        yield with_database(server_url, name)
    finally:
        await drop_database(server_url, name)


async def create_database(
    server_url: str, template: str | None = None, prefix: str = "bot_test_"
) -> str:
    """The name of a new database on the server (a copy of `template` if named)."""
    import asyncpg

    name = f"{prefix}{secrets.token_hex(6)}"
    copied = f' TEMPLATE "{template}"' if template else ""
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"{copied}')
    finally:
        await admin.close()
    return name


async def drop_database(server_url: str, name: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def create_migrated_template(server_url: str) -> str:
    """A database with every migration applied and nothing else, to copy for end-to-end
    tests: a copy costs what an empty database does, while migrating one costs more than
    half a second per test (the migrations themselves are tested from an empty database
    by the storage tests)."""
    from bot.store import open_storage

    name = await create_database(server_url, prefix="bot_template_")
    storage = await open_storage(with_database(server_url, name))
    await storage.close()
    return name
