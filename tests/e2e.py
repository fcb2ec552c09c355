"""The bot and the sandbox running together on loopback, for end-to-end tests."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest

from bot.app import DELIVERY_WORKER, INBOX_WORKER
from bot.config import Config, load_config
from bot.crypto import ENV_SECRET_KEY, generate_key
from bot.runner import RunningBot, free_port, start_bot
from sandbox import defaults
from tests.raw_sql import run_sql
from tests.stores import StoreFactory

T = TypeVar("T")

sqlite_only = pytest.mark.parametrize("e2e_database", ["sqlite"], indirect=True)
"""For an end-to-end test that is really about SQLite (its file, WAL, an SQLite trigger
or trace): it runs on that backend only; say why beside it."""


TEST_SECRET_KEY = generate_key()
"""The key the tests' bot encrypts stored tokens with (new for every test run)."""

ADMIN_ID = "70000001"
"""The extension id the tests' bot configuration names as an administrator."""

STATUS_TOKEN = "e2e-status-token-0123456789"
"""The `BOT_STATUS_TOKEN` of the tests' bot: what `GET /status` wants as a bearer token."""


def bot_config(
    sandbox_url: str,
    database: Path | str,
    *,
    verification_token: str | None = None,
    port: int | None = None,
    ringcx: dict[str, Any] | None = None,
    secret_key: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> Config:
    port = port or free_port()
    return load_config(
        None,
        environ={
            "RC_SERVER_URL": sandbox_url,
            "RC_CLIENT_ID": defaults.CLIENT_ID,
            "RC_CLIENT_SECRET": defaults.CLIENT_SECRET,
            "RC_JWT": defaults.SERVICE_USER_JWT,
            "RC_BOT_TOKEN": defaults.BOT_TOKEN,
            "RC_VERIFICATION_TOKEN": verification_token or secrets.token_urlsafe(16),
            "RC_SHARED_SECRET": defaults.SHARED_SECRET,
            ENV_SECRET_KEY: secret_key or TEST_SECRET_KEY,
            "BOT_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "BOT_STATUS_TOKEN": STATUS_TOKEN,
        },
        overrides=_merged(
            {
                "bot": {
                    "admins": [ADMIN_ID],
                    "ai_poll_after_s": 1,
                    "ai_poll_interval_s": 1,
                    # Rollups are driven by the tests (DailyRollup.run_once), never by the
                    # real clock in the middle of a test.
                    "rollup_check_interval_s": 0,
                    "port": port,
                    "database": str(database),
                    "default_timezone": "America/New_York",
                },
                "ringcx": ringcx or {"enabled": False},
            },
            overrides or {},
        ),
    )


def _merged(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `changes` applied section by section (a section's other keys stay)."""
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


class Control:
    """The sandbox's control API."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url

    async def call(
        self, method: str, path: str, payload: Any = None, expect: int | None = None
    ) -> Any:
        async with self.session.request(
            method, f"{self.url}/_sandbox{path}", json=payload
        ) as response:
            body = await response.json(content_type=None)
            if expect is not None:
                assert response.status == expect, body
            elif response.status >= 400:
                raise AssertionError(f"{method} {path} -> {response.status}: {body}")
            return body

    async def user(self, name: str, **extra: Any) -> str:
        return str((await self.call("POST", "/users", {"name": name, **extra}))["extensionId"])

    async def install_bot(self, account_id: str, mode: str = "private") -> dict[str, Any]:
        """Install the bot in an account and wait, as a person would, until its
        subscription exists: RingCentral (and the sandbox, by default) answers SUB-406 to a
        bot installed moments ago, and the bot retries until it is let in."""
        installed: dict[str, Any] = await self.call(
            "POST", "/bots", {"accountId": account_id, "mode": mode}
        )
        assert installed["redirectStatus"] == 200, installed

        async def subscribed() -> bool:
            listed = await self.call("GET", "/subscriptions")
            return any(str(s["ownerId"]) == str(installed["extensionId"]) for s in listed)

        await eventually(subscribed, within_s=30)
        return installed

    async def bot_id(self) -> str:
        return str((await self.call("GET", "/bots"))[0]["extensionId"])

    async def chat(self, members: list[str], chat_type: str = "Direct", **extra: Any) -> str:
        """A new chat; for a Direct chat that already exists (the bot may have opened it to
        deliver something), that one."""
        async with self.session.post(
            f"{self.url}/_sandbox/chats", json={"type": chat_type, "members": members, **extra}
        ) as response:
            body = await response.json(content_type=None)
            if response.status < 400:
                return str(body["id"])
            if not (response.status == 409 and chat_type == "Direct"):
                raise AssertionError(f"POST /chats -> {response.status}: {body}")
        chats = await self.call("GET", "/chats")
        records = chats["records"] if isinstance(chats, dict) else chats
        for existing in records:
            ids = {str(m["id"] if isinstance(m, dict) else m) for m in existing["members"]}
            if existing["type"] == "Direct" and ids == set(members):
                return str(existing["id"])
        raise AssertionError(f"no Direct chat between {members}")

    async def say(self, chat_id: str, creator_id: str, text: str) -> Mapping[str, Any]:
        result: Mapping[str, Any] = await self.call(
            "POST", "/posts", {"chatId": chat_id, "creatorId": creator_id, "text": text}
        )
        return result

    async def posts(self, chat_id: str) -> list[Mapping[str, Any]]:
        body = await self.call("GET", f"/chats/{chat_id}/posts")
        return list(body["records"] if isinstance(body, Mapping) else body)

    async def cards(self, chat_id: str) -> list[Mapping[str, Any]]:
        return [p for p in await self.posts(chat_id) if p.get("type") == "Card"]

    async def texts(self, chat_id: str, creator_id: str) -> list[str]:
        return [
            str(p["text"])
            for p in await self.posts(chat_id)
            if p.get("type") != "Card" and str(p.get("creatorId")) == creator_id
        ]

    async def requests(self) -> list[Mapping[str, Any]]:
        body = await self.call("GET", "/requests")
        return list(body["records"] if isinstance(body, Mapping) else body)


async def bot_status(bot: RunningBot) -> dict[str, Any]:
    """The administrators' `GET /status` of a running bot."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{bot.url}/status", headers={"Authorization": f"Bearer {STATUS_TOKEN}"}
        ) as response,
    ):
        assert response.status == 200, await response.text()
        result: dict[str, Any] = await response.json()
        return result


async def settle(bot: RunningBot) -> None:
    """Wait until the bot has handled everything it received and sent everything it queued."""
    for _ in range(3):
        await asyncio.wait_for(bot.app[INBOX_WORKER].idle(), 10)
        await asyncio.wait_for(bot.app[DELIVERY_WORKER].idle(), 10)


async def eventually(probe: Callable[[], Awaitable[T | None]], within_s: float = 10.0) -> T:
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        value = await probe()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def wait_until_subscriptions_kept(bot: RunningBot, config: Config) -> None:
    """On PostgreSQL, subscriptions come from whichever replica keeps them, after its
    start-up: wait until this one does (on SQLite the one process keeps them at start)."""
    if config.postgres_url is None:
        return
    from bot.app import RUN_ONCE_JOBS
    from bot.jobs import SUBSCRIPTIONS_LEASE

    assert await bot.app[RUN_ONCE_JOBS].wait_runs_well(SUBSCRIPTIONS_LEASE, 60)


@dataclass
class Stack:
    sandbox: Any
    bot: RunningBot
    control: Control
    config: Config
    bot_id: str
    overrides: dict[str, Any] = field(default_factory=dict)
    """The configuration the stack was started with beyond the tests' defaults (its
    database among them); a restart keeps it."""

    @property
    def backend(self) -> str:
        """Which storage backend this bot runs on: "sqlite" or "postgres"."""
        return "postgres" if self.config.postgres_url else "sqlite"

    def database(self) -> StoreFactory:
        """The bot's database, for a test to open beside the bot (as a second process or
        an operator would) on either backend."""
        return StoreFactory(self.backend, self.config.database)

    async def sql(self, statement: str, *args: Any) -> list[tuple[Any, ...]]:
        """Run one SQL statement (`?` placeholders) on the bot's database, on either
        backend, on a connection of its own; its rows."""
        return await run_sql(self.database(), statement, *args)

    async def everything_stored(self) -> str:
        """All the bot's database holds, as text, for a test to look for what must never be
        stored in the clear: on SQLite the file and its WAL as they are on disk; on
        PostgreSQL every row of every table, each line led by its table's name."""
        if self.backend == "sqlite":
            database = self.config.database_path
            files = (database, database.with_name(database.name + "-wal"))
            return "".join(path.read_bytes().decode("latin-1") for path in files if path.exists())
        tables = await self.sql(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename"
        )
        lines: list[str] = []
        for (table,) in tables:
            rows = await self.sql(f'SELECT t::text FROM "{table}" AS t')  # noqa: S608 (catalogue names)
            lines.extend(f"{table}: {row}" for (row,) in rows)
        return "\n".join(lines)

    async def restart_bot(self, *, already_stopped: bool = False, **config_changes: Any) -> None:
        """Stop the bot (unless it is already) and start it again on the same database
        and configuration, with `verification_token` or `ringcx` changed if given."""
        if not already_stopped:
            await self.bot.stop()
        self.config = bot_config(
            self.sandbox.url,
            self.config.database,
            verification_token=config_changes.get(
                "verification_token", self.config.verification_token
            ),
            port=self.config.port,
            ringcx=config_changes.get("ringcx"),
            overrides=self.overrides,
        )
        self.bot = await start_bot(self.config)
        await wait_until_subscriptions_kept(self.bot, self.config)


@asynccontextmanager
async def running_stack(
    database: Path | str, *, overrides: dict[str, Any] | None = None
) -> AsyncIterator[Stack]:
    """The sandbox and the bot, both on loopback, the bot subscribed and ready, the app's
    interactive and redirect addresses registered with the sandbox. `database` is an
    SQLite file or a `postgresql://` URL."""
    from sandbox.runner import start_sandbox

    sandbox = await start_sandbox()
    overrides = overrides or {}
    config = bot_config(sandbox.url, database, overrides=overrides)
    bot = await start_bot(config)
    await wait_until_subscriptions_kept(bot, config)
    session = aiohttp.ClientSession()
    control = Control(session, sandbox.url)
    await control.call(
        "POST",
        "/settings",
        {
            "interactiveMessagesUrl": f"{config.public_url}/webhooks/interactive",
            "oauthRedirectUri": f"{config.public_url}/oauth/redirect",
        },
    )
    stack = Stack(sandbox, bot, control, config, await control.bot_id(), overrides)
    try:
        yield stack
    finally:
        await stack.bot.stop()
        await session.close()
        await sandbox.close()
