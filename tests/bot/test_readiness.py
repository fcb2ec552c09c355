"""`/readyz` turns red when AI or RingCX work can no longer be done, and green again."""

from __future__ import annotations

import asyncio
import os
import shlex
import sys

import aiohttp

from bot.app import AI_POLLER
from tests.bot.test_image import instructions
from tests.e2e import Stack, bot_status, eventually

SUB_ACCOUNT = "88820001"


async def readyz(stack: Stack) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{stack.bot.url}/readyz") as response,
    ):
        return response.status, await response.text()


async def test_a_stopped_ai_poller_makes_the_bot_unready_until_it_runs_again(
    stack: Stack,
) -> None:
    assert await readyz(stack) == (200, "ready")
    poller = stack.bot.app[AI_POLLER]
    await poller.stop()
    assert await readyz(stack) == (503, "unready")
    status = await bot_status(stack.bot)
    assert status["status"] == "unready"
    assert status["problems"] == ["AI job poller stopped or stuck"]
    poller.start()
    assert await readyz(stack) == (200, "ready")
    assert (await bot_status(stack.bot))["problems"] == []


async def test_ringcx_without_a_token_is_unready_and_recovers(stack: Stack) -> None:
    """RingCX refuses the token exchange (403: no RingCX account yet) until the account
    exists; meanwhile transcripts cannot come, and readiness says so."""
    await stack.restart_bot(
        ringcx={
            "enabled": True,
            "base_url": stack.sandbox.url,
            "sub_account_id": SUB_ACCOUNT,
            "window_minutes": 5,
            "lag_minutes": 5,
            "poll_interval_s": 1,
        }
    )

    async def unready() -> bool:
        return await readyz(stack) == (503, "unready")

    await eventually(unready, within_s=10)
    problems = (await bot_status(stack.bot))["problems"]
    assert problems == ["RingCX: no token, or the poller stopped or is stuck"]

    await stack.control.call("POST", "/ringcx/accounts", {})

    async def ready() -> bool:
        return await readyz(stack) == (200, "ready")

    # The poller retries after its back-off (10 s after a first failure).
    await eventually(ready, within_s=30)


async def docker_health_check(stack: Stack) -> int:
    """Run the image's HEALTHCHECK command as Docker would, against the running bot."""
    [check] = [args for keyword, args in instructions() if keyword == "HEALTHCHECK"]
    command = check.split(" CMD ", 1)[1].strip()
    assert command.startswith("python ")
    process = await asyncio.create_subprocess_shell(
        shlex.quote(sys.executable) + command.removeprefix("python"),
        # the image listens on every interface (BOT_HOST=0.0.0.0); the check asks loopback
        env={**os.environ, "BOT_HOST": "0.0.0.0", "BOT_PORT": str(stack.config.port)},  # noqa: S104
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return await process.wait()


async def test_the_docker_health_check_follows_readyz_on_the_configured_port(
    stack: Stack,
) -> None:
    assert await docker_health_check(stack) == 0
    await stack.bot.app[AI_POLLER].stop()
    assert await docker_health_check(stack) == 1
    stack.bot.app[AI_POLLER].start()
    assert await docker_health_check(stack) == 0
