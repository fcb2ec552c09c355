"""Fixtures for the sandbox tests: the sandbox under `aiohttp_client`, a webhook receiver
on a loopback port that behaves as told, and ready-made tokens."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from sandbox import defaults
from sandbox.app import create_sandbox_app
from sandbox.keys import BACKGROUND_KEY
from sandbox.world import World
from tests.conftest import ADAPTIVE_CARD_SCHEMA
from tests.sandbox.fake_app import FakeApp

BASIC = (
    "Basic " + base64.b64encode(f"{defaults.CLIENT_ID}:{defaults.CLIENT_SECRET}".encode()).decode()
)
BOT_AUTH = {"Authorization": f"Bearer {defaults.BOT_TOKEN}"}

SandboxClient = TestClient[web.Request, web.Application]


@dataclass
class Receiver:
    """A webhook endpoint that answers as a test tells it to and remembers every call."""

    url: str = ""
    mode: str = "echo"
    """echo | no-echo | slow | big | error"""
    slow_seconds: float = 0.5
    requests: list[dict[str, Any]] = field(default_factory=list)

    def notifications(self) -> list[dict[str, Any]]:
        return [r["json"] for r in self.requests if r["json"] is not None]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        self.requests.append(
            {
                "headers": dict(request.headers),
                "json": await request.json() if raw else None,
            }
        )
        validation_token = request.headers.get("Validation-Token")
        headers = {"Content-Type": "application/json"}
        if self.mode == "error":
            return web.Response(status=500, headers=headers)
        if self.mode == "slow":
            await asyncio.sleep(self.slow_seconds)
        if validation_token and self.mode != "no-echo":
            headers["Validation-Token"] = validation_token
        body = "x" * 2000 if self.mode == "big" else ""
        return web.Response(status=200, text=body, headers=headers)


@pytest.fixture
def world() -> World:
    return World(seed=7)


@pytest.fixture
async def client(
    aiohttp_client: Callable[..., Awaitable[SandboxClient]], world: World
) -> SandboxClient:
    app = create_sandbox_app(world, adaptive_card_schema=ADAPTIVE_CARD_SCHEMA)
    return await aiohttp_client(app)


@pytest.fixture
async def receiver(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> Receiver:
    hook = Receiver()
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    server = await aiohttp_server(app)
    hook.url = str(server.make_url("/hook"))
    return hook


@pytest.fixture
async def fake_app(
    client: SandboxClient, aiohttp_server: Callable[..., Awaitable[TestServer]]
) -> AsyncIterator[FakeApp]:
    """The bot's web app stand-in, pointed at the sandbox under test."""
    async with aiohttp.ClientSession() as http:
        app = FakeApp(str(client.make_url("")).rstrip("/"), http)
        server = await aiohttp_server(app.web_app())
        app.url = str(server.make_url("")).rstrip("/")
        yield app


async def settle(client: SandboxClient) -> None:
    """Wait for notifications that API calls sent in the background."""
    await client.app[BACKGROUND_KEY].idle()


async def service_user_token(client: SandboxClient) -> str:
    response = await client.post(
        "/restapi/oauth/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": defaults.SERVICE_USER_JWT,
        },
        headers={"Authorization": BASIC},
    )
    assert response.status == 200, await response.text()
    return str((await response.json())["access_token"])


@pytest.fixture
async def service_auth(client: SandboxClient) -> dict[str, str]:
    return {"Authorization": f"Bearer {await service_user_token(client)}"}


async def subscribe(
    client: SandboxClient,
    auth: dict[str, str],
    receiver: Receiver,
    filters: list[str],
    **extra: Any,
) -> dict[str, Any]:
    delivery_mode = {"transportType": "WebHook", "address": receiver.url}
    delivery_mode.update(extra.pop("delivery_mode", {}))
    response = await client.post(
        "/restapi/v1.0/subscription",
        json={"eventFilters": filters, "deliveryMode": delivery_mode, **extra},
        headers=auth,
    )
    body: dict[str, Any] = await response.json()
    assert response.status == 200, body
    return body
