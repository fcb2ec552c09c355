"""The sandbox and the bot as two separate processes, started the way a person starts them,
and a small client for the sandbox's `/_sandbox/` control API.

Nothing here imports the bot: the black-box tests see it only through HTTP, what it
posts in the sandbox, and what it writes to its stdout/stderr.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from cryptography.fernet import Fernet

from sandbox import defaults

PROJECT_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Process:
    """A child process whose stdout and stderr go to one log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def log_text(self) -> str:
        return self.log_path.read_bytes().decode("utf-8", errors="replace")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)


def _inherited_environment() -> dict[str, str]:
    """This process's environment without the bot's own variables, so that a developer's
    RC_* / BOT_* settings never leak into (or redirect) the processes under test."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("RC_", "BOT_", "RINGCX_"))}


def spawn(name: str, args: Sequence[str], env: Mapping[str, str], workdir: Path) -> Process:
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log_file:
        popen = subprocess.Popen(  # noqa: S603 (our own interpreter and fixed arguments)
            [sys.executable, *args],
            cwd=workdir,
            env={**_inherited_environment(), **env, "PYTHONPATH": str(PROJECT_ROOT)},
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    return Process(name, popen, log_path)


class Control:
    """The sandbox's control API, plus the bot's public endpoints, over plain HTTP."""

    def __init__(self, session: aiohttp.ClientSession, sandbox_url: str, bot_url: str) -> None:
        self.session = session
        self.sandbox_url = sandbox_url
        self.bot_url = bot_url

    async def call(self, method: str, path: str, payload: Any = None) -> Any:
        async with self.session.request(
            method, f"{self.sandbox_url}/_sandbox{path}", json=payload
        ) as response:
            body = await response.json(content_type=None)
            if response.status >= 400:
                raise AssertionError(f"sandbox {method} {path} -> {response.status}: {body}")
            return body

    async def user(self, name: str, **extra: Any) -> str:
        return str((await self.call("POST", "/users", {"name": name, **extra}))["extensionId"])

    async def chat(self, chat_type: str, members: list[str], name: str | None = None) -> str:
        body: dict[str, Any] = {"type": chat_type, "members": members}
        if name:
            body["name"] = name
        return str((await self.call("POST", "/chats", body))["id"])

    async def say(self, chat_id: str, creator_id: str, text: str) -> None:
        await self.call(
            "POST", "/posts", {"chatId": chat_id, "creatorId": creator_id, "text": text}
        )

    async def posts(self, chat_id: str) -> list[dict[str, Any]]:
        body = await self.call("GET", f"/chats/{chat_id}/posts")
        return list(body["records"] if isinstance(body, Mapping) else body)

    async def chats(self) -> list[dict[str, Any]]:
        body = await self.call("GET", "/chats")
        return list(body["records"] if isinstance(body, Mapping) else body)

    async def press(self, card_id: str, user_id: str, data: Mapping[str, str]) -> Any:
        """That person presses a Submit button of the card with this data; the bot's answer."""
        result = await self.call(
            "POST", f"/cards/{card_id}/submit", {"userId": user_id, "data": dict(data)}
        )
        return result

    async def bot_ready(self) -> bool:
        for path in ("/readyz", "/healthz"):
            try:
                async with self.session.get(self.bot_url + path) as response:
                    if response.status == 404:
                        continue
                    return response.status == 200
            except aiohttp.ClientError:
                return False
        return False


def member_ids(chat: Mapping[str, Any]) -> set[str]:
    return {str(m["id"] if isinstance(m, Mapping) else m) for m in chat.get("members") or []}


def post_text(post: Mapping[str, Any]) -> str:
    """Everything a reader of the post sees: its text and, for a card, the card's JSON."""
    return (post.get("text") or "") + json.dumps(post.get("card") or {}, ensure_ascii=False)


@dataclass
class People:
    owner: str
    participant: str
    colleague: str
    admin: str
    other_admin: str
    other_colleague: str
    guest: str
    bot: str
    other_bot: str
    account_id: str
    other_account_id: str
    guest_account_id: str


@dataclass
class BlackBox:
    """The running pair, with everything a test needs to know about them."""

    workdir: Path
    sandbox: Process
    bot: Process
    sandbox_url: str
    bot_url: str
    people: People
    secrets: dict[str, str] = field(default_factory=dict)
    sent_texts: list[str] = field(default_factory=list)
    """Message text users sent during the run (must never appear in a log line)."""

    def control(self, session: aiohttp.ClientSession) -> Control:
        return Control(session, self.sandbox_url, self.bot_url)

    def stop(self) -> None:
        self.bot.stop()
        self.sandbox.stop()


async def _wait(probe: Any, what: str, process: Process, timeout_s: float = START_TIMEOUT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(f"{process.name} exited: {process.log_text()[-3000:]}")
        try:
            value = await probe()
        except (aiohttp.ClientError, AssertionError, OSError):
            value = None
        if value:
            return value
        await asyncio.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}: {process.log_text()[-3000:]}")


async def _make_people(control: Control) -> dict[str, str]:
    other = await control.call("POST", "/accounts", {"name": "Globex"})
    outsiders = await control.call("POST", "/accounts", {"name": "Initech"})
    ids = {
        "owner": await control.user("Olivia Owner"),
        "participant": await control.user("Pat Participant"),
        "colleague": await control.user("Casey Colleague"),
        "admin": await control.user("Ada Admin", admin=True),
        "other_admin": str(other["admin"]["extensionId"]),
        "other_colleague": await control.user("Bert Globex", accountId=other["accountId"]),
        "guest": await control.user("Gina Guest", accountId=outsiders["accountId"]),
        "other_account_id": str(other["accountId"]),
        "guest_account_id": str(outsiders["accountId"]),
        "other_admin_jwt": str(other["admin"]["jwt"]),
    }
    return ids


def start_blackbox(workdir: Path, database: str | None = None) -> BlackBox:
    """Start the sandbox, make the people, start the bot, install it in a second account.
    The bot's database is `database` (`BOT_DATABASE`, a `postgresql://` URL) if given,
    else an SQLite file in `workdir`."""
    sandbox_port = free_port()
    sandbox = spawn("sandbox", ["-m", "sandbox", "--port", str(sandbox_port)], {}, workdir)
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    try:
        return asyncio.run(_start(workdir, sandbox, sandbox_url, database))
    except BaseException:
        sandbox.stop()
        raise


async def _start(
    workdir: Path, sandbox: Process, sandbox_url: str, database: str | None
) -> BlackBox:
    bot_port = free_port()
    bot_url = f"http://127.0.0.1:{bot_port}"
    async with aiohttp.ClientSession() as session:
        control = Control(session, sandbox_url, bot_url)
        await _wait(lambda: control.call("GET", "/bots"), "the sandbox", sandbox)
        ids = await _make_people(control)
        # Who sees what is under test here, not pacing: the table makes the bot post
        # hundreds of answers a minute, which RingCentral's default limits (and the bot,
        # pacing itself by them) would spread over many minutes. The sandbox announces
        # these limits in its X-Rate-Limit-* headers, as an account with raised limits does.
        await control.call(
            "POST",
            "/faults",
            {"limits": {g: {"limit": 100_000} for g in ("Light", "Medium", "Heavy", "Auth")}},
        )
        secrets = {
            "RC_CLIENT_SECRET": defaults.CLIENT_SECRET,
            "RC_JWT": defaults.SERVICE_USER_JWT,
            "RC_BOT_TOKEN": defaults.BOT_TOKEN,
            "RC_VERIFICATION_TOKEN": "vt-" + os.urandom(18).hex(),
            "RC_SHARED_SECRET": defaults.SHARED_SECRET,
            "BOT_SECRET_KEY": Fernet.generate_key().decode(),
            "BOT_STATUS_TOKEN": "st-" + os.urandom(18).hex(),
            "BOT_METRICS_TOKEN": "mt-" + os.urandom(18).hex(),
            "other account admin JWT": ids["other_admin_jwt"],
        }
        config_path = workdir / "bot.config.yaml"
        config_path.write_text(
            yaml.safe_dump(
                {
                    "ringcentral": {"server_url": sandbox_url, "ringsense_domains": ["pbx"]},
                    "bot": {
                        "public_url": bot_url,
                        "host": "127.0.0.1",
                        "port": bot_port,
                        "database": str(workdir / "data" / "bot.sqlite3"),
                        "admins": [ids["admin"], ids["other_admin"]],
                        "default_timezone": "America/New_York",
                        # The table is each person's ~100 commands in about a minute, far
                        # beyond anyone's use; raised so the table measures who sees what.
                        "commands_per_person_per_10_min": 1000,
                    },
                }
            ),
            encoding="utf-8",
        )
        env = {
            "RC_SERVER_URL": sandbox_url,
            "RC_CLIENT_ID": defaults.CLIENT_ID,
            "BOT_PUBLIC_URL": bot_url,
            **{k: v for k, v in secrets.items() if k.startswith(("RC_", "BOT_"))},
        }
        if database:
            env["BOT_DATABASE"] = database
        bot = spawn(
            "bot",
            [
                "-m",
                "bot",
                "run",
                "--config",
                str(config_path),
                "--log-level",
                "DEBUG",
                "--log-format",
                "json",
            ],
            env,
            workdir,
        )
        try:
            await _wait(control.bot_ready, "the bot to be ready", bot)
            await control.call(
                "POST",
                "/settings",
                {
                    "interactiveMessagesUrl": f"{bot_url}/webhooks/interactive",
                    "oauthRedirectUri": f"{bot_url}/oauth/redirect",
                },
            )
            install = await control.call("POST", "/bots", {"accountId": ids["other_account_id"]})
            assert install["redirectStatus"] == 200, install
            bots = await control.call("GET", "/bots")
            by_account = {str(b["accountId"]): b for b in bots}
            for index, found in enumerate(bots):
                if found.get("token"):
                    secrets[f"bot token {index}"] = str(found["token"])

            async def other_bot_subscribed() -> bool:
                subscriptions = await control.call("GET", "/subscriptions")
                return any(
                    str(s.get("ownerId")) == str(install["extensionId"]) for s in subscriptions
                )

            await _wait(other_bot_subscribed, "the second install's subscription", bot)
        except BaseException:
            bot.stop()
            raise
        people = People(
            owner=ids["owner"],
            participant=ids["participant"],
            colleague=ids["colleague"],
            admin=ids["admin"],
            other_admin=ids["other_admin"],
            other_colleague=ids["other_colleague"],
            guest=ids["guest"],
            bot=str(by_account[defaults.ACCOUNT_ID]["extensionId"]),
            other_bot=str(install["extensionId"]),
            account_id=defaults.ACCOUNT_ID,
            other_account_id=ids["other_account_id"],
            guest_account_id=ids["guest_account_id"],
        )
        return BlackBox(workdir, sandbox, bot, sandbox_url, bot_url, people, secrets)
