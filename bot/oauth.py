"""The bot's OAuth redirect URI: where RingCentral hands over the bot's token at install.

Private bot: a POST whose body (form-encoded or JSON) holds `access_token`. Public bot: a
GET with `?code=` to exchange. The token is trusted only after RingCentral accepts it
and says it belongs to a bot extension; the body's other fields are informational.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from bot.installs import InstallError, Installs

log = logging.getLogger(__name__)

REDIRECT_PATH = "/oauth/redirect"


class OAuthRedirectEndpoint:
    def __init__(self, installs: Installs, client_id: str, redirect_uri: str) -> None:
        self._installs = installs
        self._client_id = client_id
        self._redirect_uri = redirect_uri

    async def handle_post(self, request: web.Request) -> web.Response:
        """Private bot: the token arrives in the body."""
        fields = await _fields(request)
        token = fields.get("access_token")
        if not token:
            return _answer(400, "access_token is missing")
        if not self._client_matches(fields.get("client_id")):
            return _answer(400, "this install is for another app")
        try:
            install = await self._installs.install_with_token(
                token, fields.get("creator_extension_id"), "private"
            )
        except InstallError as err:
            return _answer(400, str(err))
        return _answer(200, f"installed in account {install.account_id}")

    async def handle_get(self, request: web.Request) -> web.Response:
        """Public bot: exchange the authorisation code for the token."""
        if request.query.get("error"):
            return _answer(400, f"RingCentral reported: {request.query.get('error')}")
        code = request.query.get("code")
        if not code:
            return _answer(400, "code is missing")
        if not self._client_matches(request.query.get("client_id")):
            return _answer(400, "this install is for another app")
        try:
            token = await self._installs.exchange_code(code, self._redirect_uri)
            install = await self._installs.install_with_token(
                token, request.query.get("creator_extension_id"), "public"
            )
        except InstallError as err:
            log.warning("public install failed: %s", err)
            return _answer(400, str(err))
        return _answer(200, f"installed in account {install.account_id}")

    def _client_matches(self, client_id: str | None) -> bool:
        if client_id is None:
            return True
        return hmac.compare_digest(client_id.encode(), self._client_id.encode())


async def _fields(request: web.Request) -> dict[str, str]:
    if request.content_type == "application/json":
        try:
            raw: Any = json.loads(await request.read())
        except ValueError:
            return {}
        if not isinstance(raw, Mapping):
            return {}
        return {str(k): str(v) for k, v in raw.items() if v is not None}
    form = await request.post()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _answer(status: int, text: str) -> web.Response:
    return web.json_response(
        {"status": "ok" if status == 200 else "error", "message": text}, status=status
    )
