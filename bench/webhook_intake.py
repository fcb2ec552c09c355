"""Webhook intake as deployed: notifications/s the bot accepts (`python -m bot run`, workers
on, against `python -m sandbox`) next to a bare aiohttp handler that only answers 200, and
the ack latency at a fixed 500 notifications/s, for a small event and a real-sized one.

The load at full speed comes from `wrk` (C, one thread: cheaper than the server it loads);
each request is the RingSense notification the sandbox really delivered for a registered
call, with a fresh uuid. Bare and bot runs alternate, --runs of each, and every figure is
printed as min / median / max. Before each bot run the bot is restarted with the pending
inbox cleared, so every run starts with idle workers that then work through what arrives.
The ack latency comes from an open-loop generator here (one request every 1/rate s, whatever
the answers do), so a slow answer cannot hide the requests it delays.

What the load is: every request is the RingSense notification of the same call with a fresh
uuid, so every one the bot stores starts a full digest of that call (a card update); the
workers run them one after the other at full speed during and after each run, on the same
2 cores as the intake.

`--intake-only` replaces the bot by a process that serves only the webhook's endpoint
(`bot.webhooks.NotificationEndpoint` over the bot's storage, the same inbox writer, the
same collector settings as `python -m bot run`) with no workers: the best a webhook
intake in a process of its own could do on this machine, since the workers would still
share its 2 cores.

    python bench/webhook_intake.py [--runs 3] [--seconds 10] [--connections 32] [--rate 500]
        [--intake-only]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import durability, fixed_rate, pbx_event, percentile, spread
from bench._stack import ROOT, Stack, cpu_seconds, load_average
from bot.runner import free_port
from sandbox import defaults

WEBHOOK_PATH = "/webhooks/ringcentral"
SIZES = {"small": 4, "40 KB": 200}  # transcript utterances (the 40 KB one: the real-sized event)

_LUA = """
local prefix = [==[%s]==]
local suffix = [==[%s]==]
local counter = 0
local thread_number = 0
local threads = {}
function setup(thread)
  thread_number = thread_number + 1
  thread:set("tag", "%s-" .. thread_number)
  table.insert(threads, thread)
end
function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Verification-Token"] = "%s"
end
function request()
  counter = counter + 1
  return wrk.format(nil, nil, nil, prefix .. tag .. "-" .. counter .. suffix)
end
function done(summary, latency, requests)
  io.write(string.format(
    "RESULT {\\"requests\\": %%d, \\"duration_us\\": %%d, \\"non2xx\\": %%d, "
    .. "\\"errors\\": %%d, \\"p50_us\\": %%d, \\"p99_us\\": %%d}\\n",
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


async def _serve_bare(port: int) -> None:
    async def ok(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post(WEBHOOK_PATH, ok)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


class BareServer:
    """The minimal aiohttp handler, in its own process like the bot."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: asyncio.subprocess.Process | None = None
        self.arguments = ["--serve-bare", str(self.port)]

    async def __aenter__(self) -> BareServer:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, __file__, *self.arguments, cwd=ROOT
        )
        async with aiohttp.ClientSession() as session:
            for _ in range(500):
                try:
                    async with session.get(f"http://127.0.0.1:{self.port}/"):
                        return self
                except aiohttp.ClientError:
                    await asyncio.sleep(0.02)
        raise RuntimeError("the bare server did not come up")

    async def __aexit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.terminate()
        await self.process.wait()


async def _serve_intake(port: int, database: str, token: str) -> None:
    from bot.__main__ import tune_garbage_collection
    from bot.storage import Storage
    from bot.webhooks import NotificationEndpoint

    storage = await Storage.open(database)
    app = web.Application(client_max_size=1_048_576)
    endpoint = NotificationEndpoint(storage, token, 1_048_576)
    app.router.add_post(WEBHOOK_PATH, endpoint.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    tune_garbage_collection()
    await asyncio.Event().wait()


class IntakeOnlyServer(BareServer):
    """The webhook's endpoint and storage alone (no workers), in its own process."""

    def __init__(self, database: Path, token: str) -> None:
        super().__init__()
        self.arguments = ["--serve-intake", str(self.port), str(database), token]


def _split_at_uuid(payload: dict[str, Any]) -> tuple[str, str]:
    marker = "@@UUID@@"
    text = json.dumps({**payload, "uuid": marker})
    before, after = text.split(marker)
    return before, after


async def _wrk(
    url: str, payload: dict[str, Any], token: str, args: argparse.Namespace
) -> dict[str, float]:
    before, after = _split_at_uuid(payload)
    tag = f"r{time.monotonic_ns()}"
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_LUA % (before, after, tag, token))
    process = await asyncio.create_subprocess_exec(
        "wrk",
        "-t1",
        f"-c{args.connections}",
        f"-d{round(args.seconds)}s",
        "-s",
        script.name,
        url,
        stdout=asyncio.subprocess.PIPE,
    )
    output, _ = await process.communicate()
    await asyncio.to_thread(Path(script.name).unlink)
    match = re.search(rb"RESULT (\{.*\})", output)
    if match is None:
        raise RuntimeError(f"wrk printed no result: {output.decode(errors='replace')}")
    result = json.loads(match.group(1))
    seconds = result["duration_us"] / 1e6
    return {
        "rate": (result["requests"] - result["non2xx"] - result["errors"]) / seconds,
        "failed": result["non2xx"] + result["errors"],
        "requests": result["requests"],
        "p99_ms": result["p99_us"] / 1000,
    }


async def _ack_latency(
    url: str, payload: dict[str, Any], token: str, rate: float, seconds: float
) -> tuple[float, float, int]:
    """p50, p99 (ms) and failures of an open-loop run at `rate` per second."""
    before, after = _split_at_uuid(payload)
    tag = f"a{time.monotonic_ns()}"
    failures = 0
    headers = {"Content-Type": "application/json", "Verification-Token": token}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def send(number: int) -> None:
            nonlocal failures
            body = f"{before}{tag}-{number}{after}".encode()
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    failures += 1

        latencies, _ = await fixed_rate(send, rate, seconds)
    return percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000, failures


def _clear_pending_inbox(database: Path) -> None:
    db = sqlite3.connect(database)
    try:
        db.execute("DELETE FROM inbox WHERE status = 'pending'")
        db.commit()
    finally:
        db.close()


def _inbox_done(database: Path) -> int:
    db = sqlite3.connect(database)
    try:
        return int(db.execute("SELECT count(*) FROM inbox WHERE status != 'pending'").fetchone()[0])
    finally:
        db.close()


@contextlib.asynccontextmanager
async def _fresh_bot(stack: Stack, args: argparse.Namespace) -> AsyncIterator[tuple[str, int]]:
    """The bot restarted with idle workers (its pending inbox cleared), or with
    `--intake-only` the webhook's endpoint alone on a new database: its URL and pid."""
    if args.intake_only:
        database = stack.workdir / f"intake-{time.monotonic_ns()}.sqlite3"
        async with IntakeOnlyServer(database, stack.verification_token) as intake:
            assert intake.process is not None
            yield f"http://127.0.0.1:{intake.port}{WEBHOOK_PATH}", intake.process.pid
        return
    await stack.stop_bot()
    _clear_pending_inbox(stack.database)
    await stack.start_bot(workers=args.workers)
    assert stack.process is not None
    # The same address after each restart.
    yield f"{stack.bot_url}{WEBHOOK_PATH}", stack.process.pid


async def main(args: argparse.Namespace) -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    print(durability())
    async with Stack() as stack:
        await stack.raise_rate_limits()
        await stack.start_bot(workers=args.workers)
        print(f"bot startup to /readyz 200: {stack.startup_s * 1000:.0f} ms")
        owner, _ = (await stack.opted_in_users(1))[0]
        await asyncio.sleep(1)
        payloads: dict[str, dict[str, Any]] = {}
        for number, (size, utterances) in enumerate(SIZES.items()):
            event = pbx_event(
                account_id=defaults.ACCOUNT_ID,
                owner_id=owner,
                record_id=f"90000000{number:05d}",
                session_id=f"s-bench0intake0{number}",
                utterances=utterances,
            )
            answer = await stack.control("POST", "/calls", {"event": event})
            delivered = [n for n in answer["notifications"] if n["ok"]]
            if not delivered:
                raise RuntimeError(f"the sandbox delivered no notification: {answer}")
            payloads[size] = delivered[0]["payload"]
            print(f"{size} event: {len(json.dumps(payloads[size])):,} bytes")
        bot = "intake" if args.intake_only else "bot"
        if args.intake_only:
            await stack.stop_bot()
        rates: dict[tuple[str, str], list[float]] = {}
        cpu_ms: dict[str, list[float]] = {}
        for run in range(1, args.runs + 1):
            for size, payload in payloads.items():
                async with BareServer() as bare:
                    figures = await _wrk(
                        f"http://127.0.0.1:{bare.port}{WEBHOOK_PATH}",
                        payload,
                        stack.verification_token,
                        args,
                    )
                rates.setdefault(("bare", size), []).append(figures["rate"])
                print(
                    f"run {run} bare {size:>6}: {figures['rate']:8,.0f}/s  (load {load_average()})"
                )
                async with _fresh_bot(stack, args) as (bot_url, pid):
                    done_before = _inbox_done(stack.database)
                    cpu_before = cpu_seconds(pid)
                    figures = await _wrk(bot_url, payload, stack.verification_token, args)
                    cpu = cpu_seconds(pid) - cpu_before
                    worked = _inbox_done(stack.database) - done_before
                rates.setdefault(("bot", size), []).append(figures["rate"])
                accepted = figures["requests"] - figures["failed"]
                cpu_ms.setdefault(size, []).append(cpu * 1000 / max(1, accepted))
                meanwhile = (
                    "no workers"
                    if args.intake_only
                    else f"incl. its workers, who finished {worked} events meanwhile"
                )
                print(
                    f"run {run} {bot:<4} {size:>6}: {figures['rate']:8,.0f}/s  "
                    f"{figures['failed']:.0f} refused/failed; CPU "
                    f"{cpu * 1000 / max(1, accepted):.2f} ms per accepted notification "
                    f"({meanwhile})  (load {load_average()})"
                )
        print(
            f"\nmin / median / max of {args.runs} runs, {args.seconds:.0f} s each, "
            f"wrk -t1 -c{args.connections}:"
        )
        for size in payloads:
            bare_rates, bot_rates = rates[("bare", size)], rates[("bot", size)]
            ratios = [b / a for a, b in zip(bare_rates, bot_rates, strict=True)]
            aim = "0.8" if size == "small" else "0.2"
            print(f"  {size:>6} bare    {spread(bare_rates, 0)} /s")
            print(f"  {size:>6} {bot:<7} {spread(bot_rates, 0)} /s")
            print(f"  {size:>6} ratio   {spread(ratios)} (aim: at least {aim})")
            print(f"  {size:>6} CPU     {spread(cpu_ms[size])} ms per notification")

        workers = "no workers (--intake-only)" if args.intake_only else "workers on"
        print(f"\nack latency at {args.rate:.0f}/s for {args.seconds:.0f} s, {workers}:")
        for size, payload in payloads.items():
            p99s = []
            for run in range(1, args.runs + 1):
                async with _fresh_bot(stack, args) as (bot_url, _):
                    p50, p99, failures = await _ack_latency(
                        bot_url, payload, stack.verification_token, args.rate, args.seconds
                    )
                p99s.append(p99)
                print(
                    f"run {run} {size:>6}: p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
                    f"{failures} not 200  (load {load_average()})"
                )
            print(f"  {size:>6} ack p99 {spread(p99s, 1)} ms (aim: under 10 ms)")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-bare":
        asyncio.run(_serve_bare(int(sys.argv[2])))
        raise SystemExit
    if len(sys.argv) == 5 and sys.argv[1] == "--serve-intake":
        asyncio.run(_serve_intake(int(sys.argv[2]), sys.argv[3], sys.argv[4]))
        raise SystemExit
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument(
        "--intake-only",
        action="store_true",
        help="the webhook's endpoint alone in its own process, no workers (see above)",
    )
    asyncio.run(main(parser.parse_args()))
