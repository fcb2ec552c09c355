"""The bot and the sandbox as they are deployed: each its own process (`python -m sandbox`,
`python -m bot run` with its workers on), driven from this process over loopback."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.crypto import ENV_SECRET_KEY, generate_key  # noqa: E402
from bot.runner import free_port  # noqa: E402
from sandbox import defaults  # noqa: E402

# Every rate-limit group raised far out of the way (said so in each bench's output): these
# benches measure the bot's own path, not RingCentral's throttling (delivery_under_limit.py
# measures that with the real limits).
RAISED_LIMITS = {
    group: {"limit": 1_000_000, "windowSeconds": 60, "penaltySeconds": 1}
    for group in ("Light", "Medium", "Heavy", "Auth")
}


def proc_status(pid: int, field: str) -> float:
    """A `/proc/<pid>/status` memory field (VmRSS, VmHWM) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


class Stack:
    def __init__(self, workdir: str | None = None, database_url: str | None = None) -> None:
        """`database_url`: a `postgresql://` database for the bot instead of SQLite in
        `workdir`."""
        self.database_url = database_url
        self.sandbox_process: asyncio.subprocess.Process | None = None
        self.process: asyncio.subprocess.Process | None = None
        self.session: aiohttp.ClientSession | None = None
        self._tempdir = (
            tempfile.TemporaryDirectory(prefix="ringsense-bench-") if workdir is None else None
        )
        self.workdir = Path(workdir or self._tempdir.name)  # type: ignore[union-attr]
        # One key per stack: a bot restarted on the same database must read its tokens.
        self._secret_key = generate_key()
        self.verification_token = secrets.token_urlsafe(16)
        self.sandbox_url = ""
        self.bot_url = ""
        self._bot_port = 0
        self.bot_id = ""
        self.startup_s = float("nan")

    @property
    def database(self) -> Path:
        return self.workdir / "bot.sqlite3"

    async def __aenter__(self) -> Stack:
        port = free_port()
        self.sandbox_url = f"http://127.0.0.1:{port}"
        self.sandbox_process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "sandbox",
            "--port",
            str(port),
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=asyncio.subprocess.DEVNULL,
        )
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200))
        await self._wait_for(f"{self.sandbox_url}/_sandbox/bots", "the sandbox")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_bot()
        if self.sandbox_process is not None and self.sandbox_process.returncode is None:
            self.sandbox_process.terminate()
            await self.sandbox_process.wait()
        if self.session is not None:
            await self.session.close()
        if self._tempdir is not None:
            self._tempdir.cleanup()

    async def _wait_for(self, url: str, what: str, timeout_s: float = 60) -> None:
        assert self.session is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                async with self.session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.02)
        raise RuntimeError(f"{what} did not come up")

    async def control(self, method: str, path: str, payload: Any = None) -> Any:
        assert self.session is not None
        async with self.session.request(
            method, f"{self.sandbox_url}/_sandbox{path}", json=payload
        ) as response:
            body = await response.json(content_type=None)
            if response.status >= 400:
                raise RuntimeError(f"{method} {path}: {response.status} {body}")
            return body

    async def control_raw(self, method: str, path: str, body: str) -> Any:
        """A control request whose JSON body is already serialised."""
        assert self.session is not None
        async with self.session.request(
            method,
            f"{self.sandbox_url}/_sandbox{path}",
            data=body.encode(),
            headers={"Content-Type": "application/json"},
        ) as response:
            answer = await response.json(content_type=None)
            if response.status >= 400:
                raise RuntimeError(f"{method} {path}: {response.status} {answer}")
            return answer

    async def raise_rate_limits(self) -> None:
        await self.control("POST", "/faults", {"enforceRateLimits": False, "limits": RAISED_LIMITS})
        print(
            "sandbox rate limits: raised to 1,000,000 requests/60 s per group and not enforced "
            "(POST /_sandbox/faults); this measures the bot, not RingCentral's throttling"
        )

    async def start_bot(self, workers: int = 8, daily_post_limit: int = 1_000_000) -> None:
        """`python -m bot run` on this stack's database; `startup_s` is the time from the
        process start to /readyz answering 200."""
        # The same address on every restart, as a deployed bot keeps its public URL.
        port = self._bot_port = self._bot_port or free_port()
        self.bot_url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "RC_SERVER_URL": self.sandbox_url,
            "RC_CLIENT_ID": defaults.CLIENT_ID,
            "RC_CLIENT_SECRET": defaults.CLIENT_SECRET,
            "RC_JWT": defaults.SERVICE_USER_JWT,
            "RC_BOT_TOKEN": defaults.BOT_TOKEN,
            "RC_VERIFICATION_TOKEN": self.verification_token,
            "RC_SHARED_SECRET": defaults.SHARED_SECRET,
            ENV_SECRET_KEY: self._secret_key,
            "BOT_PUBLIC_URL": self.bot_url,
            "BOT_PORT": str(port),
            "BOT_DATABASE": self.database_url or str(self.database),
            "PYTHONPATH": str(ROOT),
        }
        config = self.workdir / "bot.config.yaml"
        config.write_text(
            (ROOT / "bot.config.yaml")
            .read_text()
            .replace("workers: 4", f"workers: {workers}")
            .replace("daily_post_limit: 2500", f"daily_post_limit: {daily_post_limit}")
        )
        began = time.monotonic()
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
        await self._wait_for(f"{self.bot_url}/readyz", "the bot")
        self.startup_s = time.monotonic() - began
        self.bot_id = str((await self.control("GET", "/bots"))[0]["extensionId"])

    async def stop_bot(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()
        self.process = None

    def bot_rss_mb(self) -> float:
        assert self.process is not None
        return proc_status(self.process.pid, "VmRSS")

    def bot_peak_rss_mb(self) -> float:
        assert self.process is not None
        return proc_status(self.process.pid, "VmHWM")

    def bot_cpu_s(self) -> float:
        assert self.process is not None
        return cpu_seconds(self.process.pid)

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

    async def posts(self, chat_id: str) -> list[Any]:
        posts = await self.control("GET", f"/chats/{chat_id}/posts")
        return list(posts["records"] if isinstance(posts, dict) else posts)

    async def wait_for_cards(self, chats: list[str], expected: int, timeout_s: float) -> list[Any]:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            cards = []
            for chat_id in chats:
                cards.extend(p for p in await self.posts(chat_id) if p.get("type") == "Card")
            if len(cards) >= expected or asyncio.get_running_loop().time() > deadline:
                return cards
            await asyncio.sleep(0.25)
