"""bench/proxy.py, the round-robin proxy bench/replicas.py puts in front of the replicas:
requests take turns, a replica that is down is skipped without losing the request, and a
request a replica accepted and then dropped is not sent twice."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from aiohttp import web

from bench.proxy import proxy_app
from bot.runner import free_port


@asynccontextmanager
async def serving(app: web.Application, port: int) -> AsyncIterator[str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def backend(name: str, seen: list[tuple[str, str, bytes]]) -> web.Application:
    async def answer(request: web.Request) -> web.Response:
        body = await request.read()
        seen.append((name, request.path_qs, body))
        if request.path == "/drop":
            assert request.transport is not None
            request.transport.close()  # accepted, then the connection is gone
        return web.json_response(
            {"by": name, "token": request.headers.get("Verification-Token")}, status=201
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    return app


async def test_requests_take_turns_and_arrive_whole() -> None:
    seen: list[tuple[str, str, bytes]] = []
    async with (
        serving(backend("a", seen), free_port()) as a,
        serving(backend("b", seen), free_port()) as b,
        serving(proxy_app([a, b]), free_port()) as proxy,
        aiohttp.ClientSession() as session,
    ):
        answers = []
        for number in range(4):
            async with session.post(
                f"{proxy}/webhooks/ringcentral?n={number}",
                data=b'{"uuid": "%d"}' % number,
                headers={"Verification-Token": "secret-token"},
            ) as response:
                assert response.status == 201
                answers.append(await response.json())
    assert [answer["by"] for answer in answers] in (["a", "b", "a", "b"], ["b", "a", "b", "a"])
    assert all(answer["token"] == "secret-token" for answer in answers)
    assert sorted(body for _, _, body in seen) == [b'{"uuid": "%d"}' % n for n in range(4)]
    assert {path for _, path, _ in seen} == {f"/webhooks/ringcentral?n={n}" for n in range(4)}


async def test_a_replica_that_is_down_is_skipped_and_nothing_is_lost() -> None:
    seen: list[tuple[str, str, bytes]] = []
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    async with (
        serving(backend("alive", seen), free_port()) as alive,
        serving(proxy_app([dead, alive]), free_port()) as proxy,
        aiohttp.ClientSession() as session,
    ):
        for number in range(6):
            async with session.post(f"{proxy}/webhooks/ringcentral", data=b"%d" % number) as r:
                assert r.status == 201
    assert [body for _, _, body in seen] == [b"%d" % n for n in range(6)]


async def test_a_request_a_replica_accepted_and_dropped_is_not_sent_again() -> None:
    seen: list[tuple[str, str, bytes]] = []
    async with (
        serving(backend("a", seen), free_port()) as a,
        serving(backend("b", seen), free_port()) as b,
        serving(proxy_app([a, b]), free_port()) as proxy,
        aiohttp.ClientSession() as session,
    ):
        async with session.post(f"{proxy}/drop", data=b"once") as response:
            assert response.status == 502
    assert [body for _, _, body in seen] == [b"once"]
