"""The bot's two public pages of the RingSense connect flow (bot/connections.py).

`START_PATH` turns a one-time link into a redirect to RingCentral's authorize page;
`CALLBACK_PATH` takes RingCentral's answer. Both answer a person's browser with a short
page, never cached, and tell the admin the outcome in their direct chat with the bot.
"""

from __future__ import annotations

import html
import secrets

from aiohttp import web

from bot.connections import ConnectRefused, RingSenseConnections
from bot.services import Services
from bot.storage import ConnectLink


class ConnectEndpoint:
    """The bot's two public pages of the flow: the one-time start link and the callback."""

    def __init__(self, connections: RingSenseConnections, services: Services) -> None:
        self._connections = connections
        self._services = services

    async def handle_start(self, request: web.Request) -> web.Response:
        state = request.query.get("state", "")
        url = await self._connections.authorize_url(state) if _plausible(state) else None
        if url is None:
            return _page(
                400,
                "This link does not work any more",
                "Connect links work once, for 10 minutes. Say connect to me in a direct "
                "message for a new one.",
            )
        raise web.HTTPFound(url, headers=_NO_STORE)

    async def handle_callback(self, request: web.Request) -> web.Response:
        state = request.query.get("state", "")
        link = await self._connections.take_link(state) if _plausible(state) else None
        if link is None:
            return _page(
                400,
                "This sign-in cannot be used",
                "It expired, was already used, or did not start from a link I sent. "
                "Say connect to me in a direct message for a new one.",
            )
        error = request.query.get("error")
        code = request.query.get("code", "")
        if error or not code:
            reason = "you cancelled the sign-in" if error == "access_denied" else "it failed"
            await self._tell_admin(
                link, f"RingSense was not connected: {reason}. Say **connect** to try again."
            )
            return _page(400, "RingSense was not connected", f"RingCentral said {reason}.")
        try:
            reader = await self._connections.complete(link, code)
        except ConnectRefused as refused:
            await self._tell_admin(link, f"RingSense was not connected: {refused}")
            return _page(400, "RingSense was not connected", str(refused).replace("**", ""))
        await self._tell_admin(
            link,
            "RingSense is connected for your company. Your colleagues' analysed calls will "
            f"be read as extension {reader.owner_extension_id}. Say **disconnect** to stop.",
        )
        return _page(200, "RingSense is connected", "You can close this page.")

    async def _tell_admin(self, link: ConnectLink, text: str) -> None:
        await self._services.storage.enqueue(
            f"ringsense-connect:{secrets.token_hex(8)}",
            {"kind": "direct", "extensionId": link.admin_extension_id},
            {"kind": "text", "text": text},
            account_id=link.account_id,
        )
        self._services.wake_outbox()


_NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def _plausible(state: str) -> bool:
    return 20 <= len(state) <= 200 and state.isascii() and state.isprintable()


def _page(status: int, title: str, text: str) -> web.Response:
    return web.Response(
        status=status,
        content_type="text/html",
        text=(
            f"<!doctype html><html><head><title>{html.escape(title)}</title></head>"
            f"<body><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p></body></html>"
        ),
        headers=_NO_STORE,
    )
