"""A tiny stand-in for the bot's web app, on a loopback port: it takes the install
redirect (private POST or public GET, exchanging the code for real), subscribes the
way a bot does, and records webhook notifications and Interactive Messages submits."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from sandbox import defaults

BOT_FILTERS = [
    "/team-messaging/v1/posts",
    "/team-messaging/v1/chats",
    "/restapi/v1.0/account/~/extension/~",
]
BASIC = (
    "Basic " + base64.b64encode(f"{defaults.CLIENT_ID}:{defaults.CLIENT_SECRET}".encode()).decode()
)


@dataclass
class Install:
    """What one install redirect brought and what the app did with it."""

    method: str
    content_type: str
    fields: dict[str, str]
    token: str | None = None
    me: dict[str, Any] | None = None
    subscription_status: int | None = None
    subscription: dict[str, Any] | None = None


@dataclass
class Submit:
    raw: bytes
    headers: dict[str, str]
    signature_ok: bool


@dataclass
class FakeApp:
    sandbox_url: str
    http: aiohttp.ClientSession
    url: str = ""
    installs: list[Install] = field(default_factory=list)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    submits: list[Submit] = field(default_factory=list)
    submit_status: int = 200
    submit_body: bytes = b""
    submit_content_type: str = "application/json"
    redirect_status: int = 200
    subscribe: bool = True
    token_status_at_delete: list[int] = field(default_factory=list)
    """What `GET /extension/~` with the bot's token answered while the Delete event was
    being delivered."""

    @property
    def redirect_uri(self) -> str:
        return self.url + "/oauth"

    @property
    def interactive_url(self) -> str:
        return self.url + "/interactive"

    def web_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/oauth", self.private_install)
        app.router.add_get("/oauth", self.public_install)
        app.router.add_post("/hook", self.hook)
        app.router.add_post("/interactive", self.interactive)
        return app

    async def private_install(self, request: web.Request) -> web.Response:
        form = await request.post()
        fields = {key: str(value) for key, value in form.items()}
        install = Install("POST", request.content_type, fields, token=fields.get("access_token"))
        self.installs.append(install)
        await self._set_up(install)
        return web.Response(status=self.redirect_status)

    async def public_install(self, request: web.Request) -> web.Response:
        fields = dict(request.query)
        install = Install("GET", request.content_type, fields)
        self.installs.append(install)
        async with self.http.post(
            self.sandbox_url + "/restapi/oauth/token",
            data={
                "grant_type": "authorization_code",
                "code": fields.get("code", ""),
                "redirect_uri": self.redirect_uri,
            },
            headers={"Authorization": BASIC},
        ) as response:
            body = await response.json()
        install.token = body.get("access_token")
        await self._set_up(install)
        return web.Response(status=self.redirect_status)

    async def _set_up(self, install: Install) -> None:
        """What a bot does with a fresh token: learn its id, then subscribe."""
        if install.token is None:
            return
        auth = {"Authorization": f"Bearer {install.token}"}
        async with self.http.get(
            self.sandbox_url + "/restapi/v1.0/account/~/extension/~", headers=auth
        ) as response:
            install.me = await response.json()
        if not self.subscribe:
            return
        async with self.http.post(
            self.sandbox_url + "/restapi/v1.0/subscription",
            json={
                "eventFilters": BOT_FILTERS,
                "deliveryMode": {"transportType": "WebHook", "address": self.url + "/hook"},
            },
            headers=auth,
        ) as response:
            install.subscription_status = response.status
            install.subscription = await response.json()

    async def hook(self, request: web.Request) -> web.Response:
        validation_token = request.headers.get("Validation-Token")
        if validation_token:
            return web.Response(status=200, headers={"Validation-Token": validation_token})
        notification = await request.json()
        self.notifications.append(notification)
        if notification["body"].get("eventType") == "Delete" and self.installs:
            token = self.installs[-1].token
            async with self.http.get(
                self.sandbox_url + "/restapi/v1.0/account/~/extension/~",
                headers={"Authorization": f"Bearer {token}"},
            ) as response:
                self.token_status_at_delete.append(response.status)
        return web.Response(status=200)

    async def interactive(self, request: web.Request) -> web.Response:
        raw = await request.read()
        expected = hmac.new(defaults.SHARED_SECRET.encode(), raw, hashlib.sha1).hexdigest()
        header = request.headers.get("X-Glip-Signature", "")
        self.submits.append(
            Submit(
                raw=raw,
                headers=dict(request.headers),
                signature_ok=hmac.compare_digest(header.removeprefix("sha1="), expected),
            )
        )
        return web.Response(
            status=self.submit_status,
            body=self.submit_body,
            headers={"Content-Type": self.submit_content_type},
        )
