"""Webhook intake: notifications/s accepted with durable storage, and ack latency.

Runs the bot's real notification endpoint (verification, parsing, SQLite inbox insert and
commit before the 200) in a separate process, and beside it a bare aiohttp handler that only
answers 200; the load comes from this process over loopback. Prints both and their ratio,
then the ack latency at a fixed 500 notifications/s.

    python bench/webhook_intake.py [--requests 20000] [--concurrency 32] [--rate 500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import sys
import tempfile
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import closed_loop, fixed_rate, summarise

TOKEN = "bench-verification-token"


def _serve(kind: str, port: int, database: str, ready: multiprocessing.synchronize.Event) -> None:
    async def main() -> None:
        app = web.Application()
        if kind == "bare":

            async def ok(request: web.Request) -> web.Response:
                await request.read()
                return web.Response(status=200)

            app.router.add_post("/webhooks/ringcentral", ok)
        else:
            from bot.storage import Storage
            from bot.webhooks import NotificationEndpoint

            storage = await Storage.open(database)
            endpoint = NotificationEndpoint(storage, TOKEN, 1_048_576, lambda: None)
            app.router.add_post("/webhooks/ringcentral", endpoint.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


def _notification(number: int) -> bytes:
    return json.dumps(
        {
            "uuid": f"bench-{number}",
            "event": "/ai/ringsense/v1/public/accounts/809640001/domains/pbx/insights",
            "timestamp": "2026-11-21T10:00:00.000Z",
            "subscriptionId": "b1f0c3a2-0000-4000-8000-000000000000",
            "ownerId": "62288320001",
            "body": {
                "title": "Call",
                "domain": "pbx",
                "sourceRecordId": str(number),
                "sourceSessionId": f"s-{number}",
                "ownerExtensionId": "62288330001",
                "insights": {"Summary": [{"value": "x" * 400, "start": 0, "end": 1}]},
            },
        }
    ).encode()


async def _load(port: int, args: argparse.Namespace, name: str, offset: int) -> dict[str, float]:
    url = f"http://127.0.0.1:{port}/webhooks/ringcentral"
    headers = {"Content-Type": "application/json", "Verification-Token": TOKEN}
    connector = aiohttp.TCPConnector(limit=args.concurrency * 2)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def send(number: int) -> None:
            async with session.post(
                url, data=_notification(offset + number), headers=headers
            ) as response:
                if response.status != 200:
                    raise RuntimeError(f"status {response.status}")
                await response.read()

        await closed_loop(send, 500, args.concurrency)  # warm-up
        latencies, elapsed = await closed_loop(
            lambda n: send(n + 1_000_000), args.requests, args.concurrency
        )
        figures = summarise(f"{name} (max rate)", latencies, elapsed, args.requests)
        latencies, elapsed = await fixed_rate(
            lambda n: send(n + 2_000_000), args.rate, args.seconds
        )
        fixed = summarise(f"{name} (at {args.rate:.0f}/s)", latencies, elapsed, len(latencies))
        figures["fixed_p99_ms"] = fixed["p99_ms"]
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    from bot.runner import free_port

    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as workdir:
        for kind in ("bare", "bot"):
            port = free_port()
            ready = multiprocessing.Event()
            server = multiprocessing.Process(
                target=_serve,
                args=(kind, port, str(Path(workdir) / "inbox.sqlite3"), ready),
                daemon=True,
            )
            server.start()
            ready.wait(10)
            try:
                name = "bare aiohttp handler" if kind == "bare" else "bot intake (SQLite)"
                results[kind] = asyncio.run(_load(port, args, name, 0))
            finally:
                server.terminate()
                server.join()
    ratio = results["bot"]["rate_per_s"] / results["bare"]["rate_per_s"]
    print(f"\nintake rate / bare rate: {ratio:.2f} (aim: at least 0.5)")
    print(
        f"p99 ack at {args.rate:.0f}/s: {results['bot']['fixed_p99_ms']:.2f} ms (aim: under 10 ms)"
    )


if __name__ == "__main__":
    main()
