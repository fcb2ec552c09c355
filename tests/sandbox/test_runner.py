"""The sandbox as a process (`python -m sandbox`) and as `start_sandbox()`."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import urllib.request

from sandbox import defaults
from sandbox.runner import start_sandbox
from tests.conftest import PROJECT_ROOT


def _get_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback only
        return json.loads(response.read())


async def test_start_sandbox_serves_on_a_free_port() -> None:
    sandbox = await start_sandbox()
    try:
        assert sandbox.url.startswith("http://127.0.0.1:")
        assert not sandbox.url.endswith(":0")
        bots = await asyncio.to_thread(_get_json, sandbox.url + "/_sandbox/bots")
        assert bots == [
            {
                "extensionId": defaults.BOT_EXTENSION_ID,
                "accountId": defaults.ACCOUNT_ID,
                "name": defaults.BOT_NAME,
                "token": defaults.BOT_TOKEN,
            }
        ]
        assert defaults.BOT_EXTENSION_ID in sandbox.world.extensions
    finally:
        await sandbox.close()


async def test_module_prints_its_url_and_stops_on_sigterm() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sandbox",
        "--port",
        "0",
        cwd=PROJECT_ROOT,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        first = (await asyncio.wait_for(process.stdout.readline(), 15)).decode().strip()
        assert first.startswith("sandbox: http://127.0.0.1:")
        url = first.removeprefix("sandbox: ")
        rest = b""
        while b"control API" not in rest:
            rest += await asyncio.wait_for(process.stdout.readline(), 5)
        assert defaults.SERVICE_USER_JWT.encode() in rest
        users = await asyncio.to_thread(_get_json, url + "/_sandbox/users")
        assert isinstance(users, list) and users
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


FREEZE_PROBE = """
import gc
from sandbox.__main__ import freeze_what_survives_full_collections

freeze_what_survives_full_collections()
kept = [[n] for n in range(20_000)]  # what the sandbox keeps: reachable, long-lived
gc.collect()
frozen = gc.get_freeze_count()


class Node:
    other: object = None


first, second = Node(), Node()
first.other, second.other = second, first
del first, second  # garbage made later, in a cycle only the collector frees
print(frozen, gc.collect())
"""


async def test_the_sandbox_process_keeps_what_survives_full_collections_out_of_later_ones() -> None:
    # In its own interpreter, as `python -m sandbox` is: freezing must not touch the test's.
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        FREEZE_PROBE,
        cwd=PROJECT_ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0
    frozen, collected = (int(part) for part in output.split())
    assert frozen >= 20_000  # the kept lists are no longer walked by each full collection
    assert collected >= 2  # while a cycle that became garbage afterwards is still freed
