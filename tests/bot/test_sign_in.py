"""Signing in at start (issue 9 item 2), with the bot as a process: a login 429 is a
wait, never an exit, while the bot already serves; a wrong JWT is a clear, final error."""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.rc import RingCentralAuthError, RingCentralRateLimited, ServiceUserTokens
from bot.runner import free_port
from sandbox import defaults
from sandbox.runner import start_sandbox
from tests.conftest import PROJECT_ROOT
from tests.e2e import TEST_SECRET_KEY

TOKEN_PATH = "/restapi/oauth/token"


def bot_environment(sandbox_url: str, tmp_path: Path, port: int, jwt: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "RC_SERVER_URL": sandbox_url,
        "RC_CLIENT_ID": defaults.CLIENT_ID,
        "RC_CLIENT_SECRET": defaults.CLIENT_SECRET,
        "RC_JWT": jwt,
        "RC_BOT_TOKEN": defaults.BOT_TOKEN,
        "RC_VERIFICATION_TOKEN": "sign-in-test-verification-token",
        "RC_SHARED_SECRET": defaults.SHARED_SECRET,
        "BOT_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "BOT_HOST": "127.0.0.1",
        "BOT_PORT": str(port),
        "BOT_DATABASE": str(tmp_path / "bot.sqlite3"),
        "BOT_SECRET_KEY": TEST_SECRET_KEY,
    }


@asynccontextmanager
async def bot_process(env: Mapping[str, str]) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        cwd=PROJECT_ROOT,
        env=dict(env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()


async def status_of(session: aiohttp.ClientSession, url: str) -> int | None:
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
            return response.status
    except (aiohttp.ClientError, TimeoutError):
        return None


async def control(session: aiohttp.ClientSession, url: str, payload: Any) -> None:
    async with session.post(url, json=payload) as response:
        assert response.status < 400, await response.text()


async def logins(session: aiohttp.ClientSession, sandbox_url: str) -> list[dict[str, Any]]:
    async with session.get(f"{sandbox_url}/_sandbox/requests") as response:
        body = await response.json()
    records = body["records"] if isinstance(body, dict) else body
    return [r for r in records if r["path"] == TOKEN_PATH]


async def refuse_logins_until_one_is_refused(
    session: aiohttp.ClientSession, sandbox_url: str, retry_after_s: int
) -> None:
    """A 429 storm on the token endpoint that lasts until the bot has met it once (a slow
    start on a busy machine must not slip past it), then ends."""
    await control(
        session,
        f"{sandbox_url}/_sandbox/faults",
        {"storm": {"durationSeconds": 120, "retryAfter": retry_after_s, "paths": [TOKEN_PATH]}},
    )


async def end_the_storm_after_a_refusal(session: aiohttp.ClientSession, sandbox_url: str) -> None:
    deadline = asyncio.get_running_loop().time() + 30
    while not any(r["status"] == 429 for r in await logins(session, sandbox_url)):
        assert asyncio.get_running_loop().time() < deadline, "no login was refused"
        await asyncio.sleep(0.05)
    async with session.delete(f"{sandbox_url}/_sandbox/faults") as response:
        assert response.status < 400


async def test_a_login_429_at_start_is_waited_out_while_the_bot_serves(tmp_path: Path) -> None:
    sandbox = await start_sandbox()
    port = free_port()
    bot_url = f"http://127.0.0.1:{port}"
    penalty_s = 3
    try:
        async with aiohttp.ClientSession() as session:
            await refuse_logins_until_one_is_refused(session, sandbox.url, penalty_s)
            env = bot_environment(sandbox.url, tmp_path, port, defaults.SERVICE_USER_JWT)
            async with bot_process(env) as process:
                # It serves before it is signed in...
                await wait_for_status(session, f"{bot_url}/livez", 200, 30)
                assert await status_of(session, f"{bot_url}/readyz") == 503
                await end_the_storm_after_a_refusal(session, sandbox.url)
                # ...and a 429 is a wait, not an exit.
                started = asyncio.get_running_loop().time()
                while await status_of(session, f"{bot_url}/readyz") != 200:
                    assert process.returncode is None, "the bot exited on a 429"
                    assert asyncio.get_running_loop().time() - started < 40, "never ready"
                    await asyncio.sleep(0.1)
                assert await status_of(session, f"{bot_url}/livez") == 200
                assert process.returncode is None
            attempts = await logins(session, sandbox.url)
        assert attempts[-1]["status"] == 200
        for refusal, following in itertools.pairwise(attempts):
            if refusal["status"] == 429:
                waited = following["arrivedMonotonic"] - refusal["arrivedMonotonic"]
                assert waited >= penalty_s - 0.05, f"a login {waited:.2f}s into the penalty"
    finally:
        await sandbox.close()


async def test_a_wrong_jwt_is_a_clear_final_configuration_error(tmp_path: Path) -> None:
    sandbox = await start_sandbox()
    wrong_jwt = "not-the-service-user-jwt-5f1c"
    try:
        env = bot_environment(sandbox.url, tmp_path, free_port(), wrong_jwt)
        async with bot_process(env) as process:
            assert process.stdout is not None
            output = await asyncio.wait_for(process.stdout.read(), 30)
            code = await asyncio.wait_for(process.wait(), 5)
    finally:
        await sandbox.close()
    text = output.decode()
    assert code != 0
    assert "RC_JWT" in text and "refused" in text
    assert wrong_jwt not in text


async def test_sdk_failures_keep_their_status_and_code() -> None:
    """The SDK's exception carries the answer behind a method; reading it as an attribute
    made every failure 'no answer'."""
    sandbox = await start_sandbox()
    try:
        wrong = ServiceUserTokens(
            sandbox.url, defaults.CLIENT_ID, defaults.CLIENT_SECRET, "wrong-jwt"
        )
        with pytest.raises(RingCentralAuthError) as refused:
            await wrong.access_token()
        assert refused.value.status == 400 and refused.value.error_code == "OAU-140"
        async with aiohttp.ClientSession() as session:
            await control(
                session,
                f"{sandbox.url}/_sandbox/faults",
                {"storm": {"durationSeconds": 5, "retryAfter": 7, "paths": [TOKEN_PATH]}},
            )
        throttled = ServiceUserTokens(
            sandbox.url, defaults.CLIENT_ID, defaults.CLIENT_SECRET, defaults.SERVICE_USER_JWT
        )
        with pytest.raises(RingCentralRateLimited) as limited:
            await throttled.access_token()
        assert limited.value.status == 429 and limited.value.retry_after == 7
    finally:
        await sandbox.close()


async def wait_for_status(
    session: aiohttp.ClientSession, url: str, wanted: int, within_s: float
) -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while await status_of(session, url) != wanted:
        assert asyncio.get_running_loop().time() < deadline, f"{url} never answered {wanted}"
        await asyncio.sleep(0.1)


async def test_a_message_sent_while_the_bot_waits_out_a_login_429_is_answered(
    tmp_path: Path,
) -> None:
    """After a restart the subscriptions exist: what RingCentral delivers while the bot is
    not signed in yet is stored, and handled once it is."""
    sandbox = await start_sandbox()
    port = free_port()
    bot_url = f"http://127.0.0.1:{port}"
    env = bot_environment(sandbox.url, tmp_path, port, defaults.SERVICE_USER_JWT)
    try:
        async with aiohttp.ClientSession() as session:
            async with bot_process(env) as first_run:
                await wait_for_status(session, f"{bot_url}/readyz", 200, 30)
                first_run.terminate()
                assert await asyncio.wait_for(first_run.wait(), 20) == 0
            user_id = await sandbox_post(session, f"{sandbox.url}/_sandbox/users", {"name": "Kim"})
            dm = await sandbox_post(
                session,
                f"{sandbox.url}/_sandbox/chats",
                {"type": "Direct", "members": [user_id["extensionId"], defaults.BOT_EXTENSION_ID]},
            )
            await refuse_logins_until_one_is_refused(session, sandbox.url, 3)
            async with bot_process(env) as second_run:
                await wait_for_status(session, f"{bot_url}/livez", 200, 30)
                assert await status_of(session, f"{bot_url}/readyz") == 503
                await control(
                    session,
                    f"{sandbox.url}/_sandbox/posts",
                    {"chatId": dm["id"], "creatorId": user_id["extensionId"], "text": "optin"},
                )
                await end_the_storm_after_a_refusal(session, sandbox.url)
                await wait_for_status(session, f"{bot_url}/readyz", 200, 30)
                deadline = asyncio.get_running_loop().time() + 20
                while True:
                    async with session.get(
                        f"{sandbox.url}/_sandbox/chats/{dm['id']}/posts"
                    ) as response:
                        body = await response.json()
                    posts = body["records"] if isinstance(body, dict) else body
                    answers = [
                        p
                        for p in posts
                        if str(p.get("creatorId")) == defaults.BOT_EXTENSION_ID
                        and "You're in" in str(p.get("text"))
                    ]
                    if answers:
                        break
                    assert asyncio.get_running_loop().time() < deadline, "optin never answered"
                    await asyncio.sleep(0.2)
                assert len(answers) == 1
                assert second_run.returncode is None
    finally:
        await sandbox.close()


async def sandbox_post(session: aiohttp.ClientSession, url: str, payload: Any) -> Any:
    async with session.post(url, json=payload) as response:
        assert response.status < 400, await response.text()
        return await response.json()


async def bot_texts(session: aiohttp.ClientSession, sandbox_url: str, chat_id: str) -> list[str]:
    async with session.get(f"{sandbox_url}/_sandbox/chats/{chat_id}/posts") as response:
        body = await response.json()
    posts = body["records"] if isinstance(body, dict) else body
    return [
        str(p.get("text"))
        for p in posts
        if str(p.get("creatorId")) == defaults.BOT_EXTENSION_ID and p.get("type") != "Card"
    ]


async def test_queued_replies_go_out_while_the_service_user_waits_out_a_429(
    tmp_path: Path,
) -> None:
    """The bot's own token is enough to deliver what was queued before a restart."""
    sandbox = await start_sandbox()
    port = free_port()
    bot_url = f"http://127.0.0.1:{port}"
    env = bot_environment(sandbox.url, tmp_path, port, defaults.SERVICE_USER_JWT)
    try:
        async with aiohttp.ClientSession() as session:
            user = await sandbox_post(session, f"{sandbox.url}/_sandbox/users", {"name": "Kim"})
            dm = await sandbox_post(
                session,
                f"{sandbox.url}/_sandbox/chats",
                {"type": "Direct", "members": [user["extensionId"], defaults.BOT_EXTENSION_ID]},
            )
            async with bot_process(env) as first_run:
                await wait_for_status(session, f"{bot_url}/readyz", 200, 30)
                await control(
                    session,
                    f"{sandbox.url}/_sandbox/faults",
                    {"errorRate": 1.0, "paths": ["/posts$"], "methods": ["POST"]},
                )
                await control(
                    session,
                    f"{sandbox.url}/_sandbox/posts",
                    {"chatId": dm["id"], "creatorId": user["extensionId"], "text": "help"},
                )
                deadline = asyncio.get_running_loop().time() + 20
                while True:
                    async with session.get(f"{sandbox.url}/_sandbox/requests") as response:
                        body = await response.json()
                    records = body["records"] if isinstance(body, dict) else body
                    if any(r["path"].endswith("/posts") and r["status"] == 503 for r in records):
                        break
                    assert asyncio.get_running_loop().time() < deadline, "no post was tried"
                    await asyncio.sleep(0.05)
                first_run.terminate()
                assert await asyncio.wait_for(first_run.wait(), 30) == 0
            assert await bot_texts(session, sandbox.url, dm["id"]) == []
            async with session.delete(f"{sandbox.url}/_sandbox/faults") as response:
                assert response.status < 400
            await refuse_logins_until_one_is_refused(session, sandbox.url, 3)
            async with bot_process(env):
                await wait_for_status(session, f"{bot_url}/livez", 200, 30)
                deadline = asyncio.get_running_loop().time() + 30
                while not await bot_texts(session, sandbox.url, dm["id"]):
                    assert asyncio.get_running_loop().time() < deadline, "the reply never came"
                    await asyncio.sleep(0.1)
                assert await status_of(session, f"{bot_url}/readyz") == 503
                await end_the_storm_after_a_refusal(session, sandbox.url)
                await wait_for_status(session, f"{bot_url}/readyz", 200, 30)
            assert len(await bot_texts(session, sandbox.url, dm["id"])) == 1
    finally:
        await sandbox.close()
