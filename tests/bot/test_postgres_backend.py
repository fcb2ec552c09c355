"""Choosing and opening the PostgreSQL backend: BOT_DATABASE, migrations once across
replicas starting together, a schema newer than the code refused, no password printed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.config import load_config
from bot.leases import SchemaTooNew
from bot.store import open_storage
from bot.store.postgres.migrations import POSTGRES_MIGRATIONS
from bot.store.postgres.storage import PostgresStorage
from bot.store.sqlite import Storage
from tests.stores import StoreFactory, postgres_rows


async def test_a_postgresql_url_opens_postgres_and_a_path_opens_sqlite(
    postgres_url: str, tmp_path: Path
) -> None:
    on_postgres = await open_storage(postgres_url)
    on_sqlite = await open_storage(f"sqlite:///{tmp_path}/bot.sqlite3")
    try:
        assert isinstance(on_postgres, PostgresStorage)
        assert isinstance(on_sqlite, Storage)
        assert (tmp_path / "bot.sqlite3").exists()
        assert await on_postgres.schema_version() == len(POSTGRES_MIGRATIONS)
    finally:
        await on_postgres.close()
        await on_sqlite.close()


async def test_replicas_starting_together_migrate_once(postgres_url: str) -> None:
    replicas = await asyncio.gather(
        *(PostgresStorage.open(postgres_url, replica_id=f"r{n}") for n in range(4))
    )
    try:
        versions = await postgres_rows(postgres_url, "SELECT version FROM schema_version")
        assert sorted(row["version"] for row in versions) == list(
            range(1, len(POSTGRES_MIGRATIONS) + 1)
        )
        assert {r.replica_id for r in replicas} == {"r0", "r1", "r2", "r3"}
    finally:
        for replica in replicas:
            await replica.close()


async def test_an_older_replica_refuses_a_newer_schema(postgres_url: str) -> None:
    first = await PostgresStorage.open(postgres_url)
    await first.close()
    await postgres_rows(
        postgres_url,
        "INSERT INTO schema_version (version) VALUES ($1) RETURNING version",
        len(POSTGRES_MIGRATIONS) + 1,
    )
    with pytest.raises(SchemaTooNew):
        await PostgresStorage.open(postgres_url)


async def test_the_store_factory_reopens_the_same_database(store_factory: StoreFactory) -> None:
    first = await store_factory.open()
    version = await first.schema_version()
    await first.close()
    again = await store_factory.open()
    assert await again.schema_version() == version > 0


def test_the_database_password_is_never_printed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.__main__ import main
    from tests.bot.test_config import GOOD_ENV
    from tests.conftest import PROJECT_ROOT

    for key, value in GOOD_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("BOT_DATABASE", "postgresql://bot:s3cret-pw@db.internal:5432/bot")
    config_path = PROJECT_ROOT / "bot.config.yaml"
    config = load_config(config_path)
    assert config.postgres_url is not None
    assert "s3cret-pw" not in repr(config)
    assert config.database_label == "postgresql://bot:***@db.internal:5432/bot"
    assert main(["check-config", "--config", str(config_path)]) == 0
    printed = capsys.readouterr()
    assert "s3cret-pw" not in printed.out + printed.err
    assert "db.internal" in printed.out


def test_a_database_that_does_not_answer_stops_the_bot_with_one_clear_line(
    tmp_path: Path,
) -> None:
    """`python -m bot run` pointed at a PostgreSQL nobody serves: exit 2 with one line
    naming the database (password hidden) and why, no traceback."""
    import os
    import subprocess
    import sys

    from bot.crypto import generate_key
    from tests.bot.test_config import GOOD_ENV
    from tests.conftest import PROJECT_ROOT
    from tests.e2e import free_port

    env = {
        **os.environ,
        **GOOD_ENV,
        "BOT_SECRET_KEY": generate_key(),
        "BOT_DATABASE": f"postgresql://bot:s3cret-pw@127.0.0.1:{free_port()}/bot",
        "BOT_PORT": str(free_port()),
    }
    finished = subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, "-m", "bot", "run", "--config", str(PROJECT_ROOT / "bot.config.yaml")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    said = finished.stdout + finished.stderr
    assert finished.returncode == 2, said
    assert "not started: the database postgresql://bot:***@127.0.0.1:" in said
    assert "s3cret-pw" not in said
    assert "Traceback" not in said
