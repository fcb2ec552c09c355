"""A small round-robin HTTP proxy for the benches: one address in front of several bot
replicas, as HAProxy or nginx would be in production (deploy/haproxy.cfg).

    python bench/proxy.py --port 8000 --backend http://127.0.0.1:8081 --backend http://...

Each request goes to the next backend in turn. A backend that refuses the connection (a
replica that was killed or is restarting) is skipped for a second and the request is tried
on the next one, as HAProxy's `retries` + `option redispatch` do: the request never reached
it, so sending it elsewhere cannot do anything twice. A backend that accepted the request
and then failed is not retried (the request may have been acted on): the caller gets a 502,
as from HAProxy. It prints `proxy: <url>` once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time

import aiohttp
from aiohttp import web

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "content-encoding",
    }
)
"""Headers that describe one connection (or that aiohttp sets itself), never forwarded."""

DOWN_FOR_S = 1.0
"""How long a backend that refused a connection is skipped."""


class RoundRobin:
    def __init__(self, backends: list[str], timeout_s: float) -> None:
        self._backends = backends
        self._turn = itertools.cycle(range(len(backends)))
        self._down_until = [0.0] * len(backends)
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def start(self, _app: web.Application) -> None:
        # No decompression: bodies pass through as the backend sent them.
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), auto_decompress=False
        )

    async def stop(self, _app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    def _order(self) -> list[int]:
        """This request's backends: the next in turn first, those marked down last."""
        first = next(self._turn)
        order = [(first + n) % len(self._backends) for n in range(len(self._backends))]
        now = time.monotonic()
        return sorted(order, key=lambda index: self._down_until[index] > now)

    async def forward(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        for index in self._order():
            url = self._backends[index] + request.path_qs
            try:
                async with self._session.request(
                    request.method,
                    url,
                    data=body,
                    headers=headers,
                    allow_redirects=False,
                    timeout=self._timeout,
                ) as answer:
                    payload = await answer.read()
                    kept = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP}
                    encoding = answer.headers.get("Content-Encoding")
                    if encoding:
                        kept["Content-Encoding"] = encoding
                    return web.Response(status=answer.status, body=payload, headers=kept)
            except aiohttp.ClientConnectorError:
                self._down_until[index] = time.monotonic() + DOWN_FOR_S
                continue  # never reached it: safe to send to the next one
            except (aiohttp.ClientError, TimeoutError):
                return web.Response(status=502, text="backend failed\n")
        return web.Response(status=503, text="no backend\n")


def proxy_app(backends: list[str], timeout_s: float = 30.0) -> web.Application:
    """Every request, whatever its path and method, sent on to the backends in turn."""
    balancer = RoundRobin([b.rstrip("/") for b in backends], timeout_s)
    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.on_startup.append(balancer.start)
    app.on_cleanup.append(balancer.stop)
    app.router.add_route("*", "/{tail:.*}", balancer.forward)
    return app


async def serve(port: int, backends: list[str], timeout_s: float) -> None:
    runner = web.AppRunner(proxy_app(backends, timeout_s), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print(f"proxy: http://127.0.0.1:{port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--backend", action="append", required=True)
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.backend, args.timeout))


if __name__ == "__main__":
    main()
