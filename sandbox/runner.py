"""Run the sandbox on a real port, for the bot's `demo` command and end-to-end tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from sandbox.app import create_sandbox_app
from sandbox.keys import BACKGROUND_KEY, WORLD_KEY
from sandbox.world import World


@dataclass
class RunningSandbox:
    url: str
    """Base URL, e.g. "http://127.0.0.1:54321"; use it as the RingCentral server URL."""
    world: World
    app: web.Application
    _runner: web.AppRunner

    async def idle(self) -> None:
        """Wait until notifications caused by API calls so far have been delivered."""
        await self.app[BACKGROUND_KEY].idle()

    async def close(self) -> None:
        await self._runner.cleanup()


async def start_sandbox(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    world: World | None = None,
    adaptive_card_schema: Path | None = None,
) -> RunningSandbox:
    """Start the sandbox; port 0 picks a free port (read it from `.url`)."""
    app = create_sandbox_app(world, adaptive_card_schema=adaptive_card_schema)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_port = runner.addresses[0][1] if runner.addresses else port
    url_host = f"[{host}]" if ":" in host else host
    return RunningSandbox(f"http://{url_host}:{bound_port}", app[WORLD_KEY], app, runner)
