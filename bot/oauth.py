"""The bot's OAuth redirect URI: where RingCentral hands over the bot's token at install.

Private bot: a POST whose body (form-encoded or JSON) holds `access_token`. Public bot: a
GET with `?code=` to exchange. The token is trusted only after RingCentral accepts it
and says it belongs to a bot extension; the body's other fields are informational.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from bot.installs import InstallError, Installs
from bot.quoting import for_log
from bot.webhooks import parse_json_body

log = logging.getLogger(__name__)

REDIRECT_PATH = "/oauth/redirect"


class OAuthRedirectEndpoint:
    def __init__(self, installs: Installs, client_id: str, redirect_uri: str) -> None:
        self._installs = installs
        self._client_id = client_id
        self._redirect_uri = redirect_uri

    async def handle_post(self, request: web.Request) -> web.Response:
        """Private bot: the token arrives in the body."""
        try:
            fields = await _fields(request)
        except ValueError:
            return _answer(400, "the body is neither a form nor a JSON object")
        token = fields.get("access_token")
        if not token:
            return _answer(400, "access_token is missing")
        if not _TOKEN_SHAPE.fullmatch(token):
            return _answer(400, "access_token is not a token")
        creator = fields.get("creator_extension_id") or None
        if creator is not None and not _EXTENSION_ID_SHAPE.fullmatch(creator):
            return _answer(400, "creator_extension_id is not an extension id")
        if not self._client_matches(fields.get("client_id")):
            return _answer(400, "this install is for another app")
        try:
            install = await self._installs.install_with_token(token, creator, "private")
        except InstallError as err:
            return _answer(400, str(err))
        return _answer(200, f"installed in account {install.account_id}")

    async def handle_get(self, request: web.Request) -> web.Response:
        """Public bot: exchange the authorisation code for the token."""
        error = request.query.get("error")
        if error:
            # OAuth error codes are short words; anything else is not repeated back.
            shown = error if _ERROR_CODE_SHAPE.fullmatch(error) else "an error"
            return _answer(400, f"RingCentral reported: {shown}")
        code = request.query.get("code")
        if not code:
            return _answer(400, "code is missing")
        if not _TOKEN_SHAPE.fullmatch(code):
            return _answer(400, "code is not an authorisation code")
        creator = request.query.get("creator_extension_id") or None
        if creator is not None and not _EXTENSION_ID_SHAPE.fullmatch(creator):
            return _answer(400, "creator_extension_id is not an extension id")
        if not self._client_matches(request.query.get("client_id")):
            return _answer(400, "this install is for another app")
        try:
            token = await self._installs.exchange_code(code, self._redirect_uri)
            if not _TOKEN_SHAPE.fullmatch(token):
                raise InstallError("RingCentral answered the code exchange with a broken token")
            install = await self._installs.install_with_token(token, creator, "public")
        except InstallError as err:
            log.warning("public install failed: %s", for_log(err))
            return _answer(400, str(err))
        return _answer(200, f"installed in account {install.account_id}")

    def _client_matches(self, client_id: str | None) -> bool:
        if client_id is None:
            return True
        try:
            received = client_id.encode("utf-8")
        except UnicodeEncodeError:  # bytes that were not UTF-8
            return False
        return hmac.compare_digest(received, self._client_id.encode())


# A bearer token or an authorisation code goes into an HTTP header or a form: printable
# ASCII without spaces, of a sane length. Anything else (CR, LF, NUL, spaces, non-ASCII)
# is refused here rather than failing later as a 500 inside the HTTP client.
_TOKEN_SHAPE = re.compile(r"[\x21-\x7e]{1,4096}")
_EXTENSION_ID_SHAPE = re.compile(r"[0-9]{1,20}")
_ERROR_CODE_SHAPE = re.compile(r"[a-z_]{1,64}")


async def _fields(request: web.Request) -> dict[str, str]:
    """The POST's fields as strings (ValueError when the body is neither form nor JSON).
    Only string (and number) values count: a nested object is no token."""
    if request.content_type == "application/json":
        raw: Any = parse_json_body(await request.read())
        if not isinstance(raw, Mapping):
            raise ValueError("not a JSON object")
        return {
            str(k): str(v)
            for k, v in raw.items()
            if isinstance(v, str | int) and not isinstance(v, bool)
        }
    try:
        form = await request.post()
    except UnicodeDecodeError as err:
        raise ValueError("the form is not UTF-8") from err
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _answer(status: int, text: str) -> web.Response:
    return web.json_response(
        {"status": "ok" if status == 200 else "error", "message": text}, status=status
    )
