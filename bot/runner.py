"""Running the bot as a server: bind, start, subscribe; and stop with the work drained."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web

from bot.app import create_app, start_subscriptions
from bot.config import Config
from bot.jobs import Leases
from bot.router import Router


@dataclass
class RunningBot:
    app: web.Application
    runner: web.AppRunner
    url: str

    async def stop(self) -> None:
        """Stop accepting requests, let the workers drain, close everything."""
        await self.runner.cleanup()


async def start_bot(
    config: Config,
    routers: Sequence[Router] | None = None,
    *,
    wait_ready: bool = True,
    leases: Leases | None = None,
) -> RunningBot:
    """Serve at once; with `wait_ready`, return only once signed in and subscribed (and
    raise StartupFailed when that can never happen). `leases`: see `create_app`."""
    app = create_app(config, routers, leases=leases)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.host, config.port)
        await site.start()
        await start_subscriptions(app, wait=wait_ready)
    except BaseException:
        await runner.cleanup()
        raise
    return RunningBot(app, runner, f"http://{config.host}:{config.port}")


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (for the demo and tests, which need the bot's
    public URL before the bot starts)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
