"""Secrets and words at rest: the database is the owner's alone, stored tokens are
encrypted with BOT_SECRET_KEY (and re-encrypted by `rotate-key`), and the log holds neither
tokens nor what people wrote unless `--log-content` asks for it.

Tests taking `store_factory` run on SQLite and on PostgreSQL; the file-mode tests and the
upgrade from an older SQLite schema are about SQLite's file and stay SQLite-only (a
PostgreSQL server keeps its own files; its plain-text upgrade is in test_account_storage.py)."""

from __future__ import annotations

import io
import logging
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.__main__ import main
from bot.crypto import TokenCipher, generate_key
from bot.logs import configure_logging
from bot.storage import MIGRATIONS, NoSecretKey, Storage, StoredInstall
from tests.conftest import PROJECT_ROOT
from tests.e2e import Stack, settle
from tests.stores import StoreFactory, postgres_rows

INSTALL = StoredInstall("62288330099", "809640077", "bot-token-IN-PLAIN-SIGHT", None, "private")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def raw_bytes(database: Path) -> bytes:
    """Everything on disk for the database: the file and its WAL."""
    found = b""
    for candidate in (database, Path(f"{database}-wal")):
        if candidate.exists():
            found += candidate.read_bytes()
    return found


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A permissive umask, as many servers have: files would be world-readable by default."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


async def test_the_database_and_its_folder_are_the_owners_alone(
    tmp_path: Path, open_umask: None
) -> None:
    database = tmp_path / "fresh" / "data" / "bot.sqlite3"
    storage = await Storage.open(database, TokenCipher([generate_key()]))
    try:
        await storage.save_install(INSTALL)  # writes: the WAL and shared memory files exist
        assert mode(database.parent) == 0o700
        for suffix in ("", "-wal", "-shm"):
            assert mode(Path(f"{database}{suffix}")) == 0o600, suffix
    finally:
        await storage.close()


async def test_an_existing_database_open_to_others_is_tightened(
    tmp_path: Path, open_umask: None
) -> None:
    database = tmp_path / "bot.sqlite3"
    storage = await Storage.open(database)
    await storage.close()
    os.chmod(database, 0o644)
    storage = await Storage.open(database)
    try:
        assert mode(database) == 0o600
    finally:
        await storage.close()


async def stored_secrets(factory: StoreFactory) -> bytes:
    """What is on disk for the database: SQLite's file and its WAL; on PostgreSQL, every
    stored install as the server returns it to anyone who can read the table."""
    if factory.backend == "sqlite":
        return raw_bytes(Path(factory.database))
    rows = await postgres_rows(factory.database, "SELECT * FROM installs")
    return repr([tuple(r.values()) for r in rows]).encode()


async def test_install_tokens_are_stored_encrypted_and_read_back(
    store_factory: StoreFactory,
) -> None:
    key = generate_key()
    storage = await store_factory.open(TokenCipher([key]))
    await storage.save_install(INSTALL)
    await storage.close()
    assert INSTALL.bot_extension_id.encode() in await stored_secrets(store_factory)
    assert b"bot-token-IN-PLAIN-SIGHT" not in await stored_secrets(store_factory)

    storage = await store_factory.open(TokenCipher([key]))
    assert await storage.stored_installs() == [INSTALL]
    await storage.close()
    # With another key the token cannot be read, and the install is left out, not guessed.
    storage = await store_factory.open(TokenCipher([generate_key()]))
    assert await storage.stored_installs() == []


async def test_without_a_key_no_token_is_stored(store_factory: StoreFactory) -> None:
    storage = await store_factory.open()
    with pytest.raises(NoSecretKey):
        await storage.save_install(INSTALL)
    assert b"bot-token-IN-PLAIN-SIGHT" not in await stored_secrets(store_factory)


async def test_plain_text_tokens_of_an_older_version_are_encrypted_on_first_start(
    tmp_path: Path,
) -> None:
    database = tmp_path / "bot.sqlite3"
    old = sqlite3.connect(database)
    old.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for number, script in enumerate(MIGRATIONS[:4], start=1):
        old.executescript(script)
        old.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))
    old.execute(
        "INSERT INTO installs (bot_extension_id, account_id, access_token, source, installed_at) "
        "VALUES (?, ?, ?, 'private', 0)",
        (INSTALL.bot_extension_id, INSTALL.account_id, INSTALL.access_token),
    )
    old.commit()
    old.close()

    key = generate_key()
    storage = await Storage.open(database, TokenCipher([key]))
    try:
        assert [i.access_token for i in await storage.stored_installs()] == [INSTALL.access_token]
        await storage._db.execute("VACUUM")  # rewrite pages, as SQLite eventually does
    finally:
        await storage.close()
    assert b"bot-token-IN-PLAIN-SIGHT" not in raw_bytes(database)


def env_for(database: Path | str, key: str) -> dict[str, str]:
    return {
        "RC_CLIENT_ID": "client-abc",
        "RC_CLIENT_SECRET": "s3cr3t-value-1",
        "RC_JWT": "eyJhbGciOi.jwt-value",
        "RC_VERIFICATION_TOKEN": "verify-123456",
        "RC_SHARED_SECRET": "shared-secret-value",
        "BOT_DATABASE": str(database),
        "BOT_SECRET_KEY": key,
    }


async def test_rotate_key_reencrypts_under_the_new_key(
    store_factory: StoreFactory, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    old_key, new_key = generate_key(), generate_key()
    storage = await store_factory.open(TokenCipher([old_key]))
    await storage.save_install(INSTALL)
    await storage.close()
    config = PROJECT_ROOT / "bot.config.yaml"

    # A key that opens nothing: the rotation refuses and changes nothing.
    for name, value in env_for(store_factory.database, generate_key()).items():
        monkeypatch.setenv(name, value)
    assert await _in_thread(main, ["rotate-key", "--config", str(config)]) == 1
    assert "nothing changed" in capsys.readouterr().err

    monkeypatch.setenv("BOT_SECRET_KEY", f"{new_key},{old_key}")
    assert await _in_thread(main, ["rotate-key", "--config", str(config)]) == 0
    assert "1 stored secret(s)" in capsys.readouterr().out

    storage = await store_factory.open(TokenCipher([new_key]))
    assert await storage.stored_installs() == [INSTALL]


async def _in_thread(function: object, argv: list[str]) -> int:
    """`main` runs its own event loop, so it cannot run inside this test's loop."""
    import asyncio

    assert callable(function)
    result: int = await asyncio.to_thread(function, argv)
    return result


def test_generate_key_prints_a_usable_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate-key"]) == 0
    key = capsys.readouterr().out.strip()
    cipher = TokenCipher.from_setting(key)
    assert cipher.decrypt(cipher.encrypt("token")) == "token"


@pytest.fixture
def captured_log() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.getLogger("aiosqlite").level)
    buffer = io.StringIO()
    try:
        yield buffer
    finally:
        root.handlers[:], level, aiosqlite_level = saved
        root.setLevel(level)
        logging.getLogger("aiosqlite").setLevel(aiosqlite_level)


async def install_and_talk(stack: Stack) -> tuple[str, str]:
    """A private install in a second account (its token stored), and a message there."""
    account = await stack.control.call("POST", "/accounts", {"name": "Logged customer"})
    installed = await stack.control.install_bot(account["accountId"])
    await settle(stack.bot)
    user = await stack.control.user("Lou Logger", accountId=account["accountId"])
    dm = await stack.control.chat([user, installed["extensionId"]])
    words = "optin please, my PIN is 4471 and the deal closes Friday"
    await stack.control.say(dm, user, words)
    await settle(stack.bot)
    tokens = await stack.control.call("GET", "/bots")
    [token] = [str(b["token"]) for b in tokens if b["extensionId"] == installed["extensionId"]]
    return token, words


async def test_debug_logging_holds_no_token_and_no_message_text(
    stack: Stack, captured_log: io.StringIO
) -> None:
    configure_logging("DEBUG", secrets=(stack.config.verification_token,), stream=captured_log)
    token, words = await install_and_talk(stack)
    text = captured_log.getvalue()
    assert "DEBUG" in text  # the run did log at DEBUG
    assert token not in text
    assert "PIN is 4471" not in text and words not in text


async def test_log_content_is_an_explicit_choice(stack: Stack, captured_log: io.StringIO) -> None:
    configure_logging(
        "DEBUG",
        secrets=(stack.config.verification_token,),
        stream=captured_log,
        log_content=True,
    )
    await install_and_talk(stack)
    assert "PIN is 4471" in captured_log.getvalue()
