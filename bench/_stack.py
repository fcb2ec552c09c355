"""The sandbox in this process and the bot as a separate process, for the benches."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import tempfile
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.crypto import ENV_SECRET_KEY, generate_key  # noqa: E402
from bot.runner import free_port  # noqa: E402
from sandbox import defaults  # noqa: E402
from sandbox.runner import RunningSandbox, start_sandbox  # noqa: E402


class Stack:
    def __init__(self) -> None:
        self.sandbox: RunningSandbox | None = None
        self.process: asyncio.subprocess.Process | None = None
        self.session: aiohttp.ClientSession | None = None
        self._workdir = tempfile.TemporaryDirectory(prefix="ringsense-bench-")
        # One key per stack: a bot restarted on the same database must read its tokens.
        self._secret_key = generate_key()
        self.bot_url = ""
        self.bot_id = ""

    async def __aenter__(self) -> Stack:
        self.sandbox = await start_sandbox()
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()
        if self.session is not None:
            await self.session.close()
        if self.sandbox is not None:
            await self.sandbox.close()
        self._workdir.cleanup()

    async def control(self, method: str, path: str, payload: Any = None) -> Any:
        assert self.session is not None and self.sandbox is not None
        async with self.session.request(
            method, f"{self.sandbox.url}/_sandbox{path}", json=payload
        ) as response:
            body = await response.json(content_type=None)
            if response.status >= 400:
                raise RuntimeError(f"{method} {path}: {response.status} {body}")
            return body

    async def start_bot(self, workers: int = 8, daily_post_limit: int = 2500) -> None:
        assert self.sandbox is not None
        port = free_port()
        self.bot_url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "RC_SERVER_URL": self.sandbox.url,
            "RC_CLIENT_ID": defaults.CLIENT_ID,
            "RC_CLIENT_SECRET": defaults.CLIENT_SECRET,
            "RC_JWT": defaults.SERVICE_USER_JWT,
            "RC_BOT_TOKEN": defaults.BOT_TOKEN,
            "RC_VERIFICATION_TOKEN": secrets.token_urlsafe(16),
            "RC_SHARED_SECRET": defaults.SHARED_SECRET,
            ENV_SECRET_KEY: self._secret_key,
            "BOT_PUBLIC_URL": self.bot_url,
            "BOT_PORT": str(port),
            "BOT_DATABASE": str(Path(self._workdir.name) / "bot.sqlite3"),
            "PYTHONPATH": str(ROOT),
        }
        config = Path(self._workdir.name) / "bot.config.yaml"
        config.write_text(
            (ROOT / "bot.config.yaml")
            .read_text()
            .replace("workers: 4", f"workers: {workers}")
            .replace("daily_post_limit: 2500", f"daily_post_limit: {daily_post_limit}")
        )
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            "--config",
            str(config),
            "--log-level",
            "WARNING",
            cwd=ROOT,
            env=env,
        )
        for _ in range(300):
            try:
                assert self.session is not None
                async with self.session.get(f"{self.bot_url}/readyz") as response:
                    if response.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        else:
            raise RuntimeError("the bot did not come up")
        self.bot_id = str((await self.control("GET", "/bots"))[0]["extensionId"])

    def bot_rss_mb(self) -> float:
        assert self.process is not None
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    async def opted_in_users(self, count: int) -> list[tuple[str, str]]:
        """(user id, direct chat id) for `count` users who opted in."""
        people = []
        for number in range(count):
            user = await self.control("POST", "/users", {"name": f"Bench User {number}"})
            user_id = str(user["extensionId"])
            chat = await self.control(
                "POST", "/chats", {"type": "Direct", "members": [user_id, self.bot_id]}
            )
            await self.control(
                "POST", "/posts", {"chatId": chat["id"], "creatorId": user_id, "text": "optin"}
            )
            people.append((user_id, str(chat["id"])))
        return people

    async def wait_for_cards(self, chats: list[str], expected: int, timeout_s: float) -> list[Any]:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            cards = []
            for chat_id in chats:
                posts = await self.control("GET", f"/chats/{chat_id}/posts")
                records = posts["records"] if isinstance(posts, dict) else posts
                cards.extend(p for p in records if p.get("type") == "Card")
            if len(cards) >= expected or asyncio.get_running_loop().time() > deadline:
                return cards
            await asyncio.sleep(0.25)
