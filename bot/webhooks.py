"""The HTTP edge for RingCentral subscription notifications: verify, parse, store, answer.

Nothing slow happens before the answer: RingCentral wants 200 within 3 s and blacklists
webhooks that fail. A notification is in SQLite (unique on its uuid) before the 200, so a
crash right after answering loses nothing and a redelivery changes nothing.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from bot import events
from bot.events import Notification
from bot.logs import log_context
from bot.metrics import BotMetrics
from bot.quoting import for_log
from bot.storage import StorageInterface

log = logging.getLogger(__name__)

VALIDATION_TOKEN_HEADER = "Validation-Token"  # noqa: S105 - a header name
VERIFICATION_TOKEN_HEADER = "Verification-Token"  # noqa: S105 - a header name


def tokens_match(received: str | None, expected: str) -> bool:
    """Constant-time comparison, so response timing does not leak the token. A header that
    is not UTF-8 (aiohttp hands its bytes over as lone surrogates) simply does not match."""
    if received is None:
        return False
    try:
        received_bytes = received.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(received_bytes, expected.encode("utf-8"))


class NotificationEndpoint:
    """`POST /webhooks/ringcentral`: every subscription of both identities delivers here."""

    def __init__(
        self,
        storage: StorageInterface,
        verification_token: str,
        max_body_bytes: int,
        on_stored: Callable[[], None] | None = None,
        metrics: BotMetrics | None = None,
    ) -> None:
        self._metrics = metrics or BotMetrics()
        self._storage = storage
        self._verification_token = verification_token
        self._max_body_bytes = max_body_bytes
        self._on_stored = on_stored

    async def handle(self, request: web.Request) -> web.Response:
        received_token = request.headers.get(VERIFICATION_TOKEN_HEADER)
        validation_token = request.headers.get(VALIDATION_TOKEN_HEADER)
        if validation_token is not None:
            return self._handshake(validation_token, received_token)
        metrics = self._metrics
        metrics.notifications_received.inc()
        if not tokens_match(received_token, self._verification_token):
            log.warning("refused a notification with a missing or wrong Verification-Token")
            metrics.notifications_refused.labels("verification_token").inc()
            return refuse(403, "missing or wrong Verification-Token")
        try:
            raw = await read_body(request, self._max_body_bytes)
        except BodyTooLarge:
            metrics.notifications_refused.labels("too_large").inc()
            return refuse(413, "body too large")
        except (OSError, ValueError):
            metrics.notifications_refused.labels("unreadable").inc()
            return refuse(400, "could not read the body")
        try:
            # Parsed once (the workers get this very document); the body is stored as
            # received, never re-encoded (it is valid UTF-8 once parsed).
            payload = parse_json_body(raw)
            notification = Notification.parse(payload)
            text = raw.decode("utf-8")
        except ValueError as err:  # MalformedNotification says what is wrong, too
            metrics.notifications_refused.labels("malformed").inc()
            return refuse(400, str(err))
        if is_own_post(notification):
            # The bot's own cards and replies come back as posts; nothing would be done
            # with them (the worker ignores them), so they cost neither a row nor a task.
            return _accepted()
        storage = self._storage
        stored = await storage.add_to_inbox(
            notification.uuid,
            notification.kind,
            payload,
            storage.account_of_owner(notification.owner_id),
            raw=text,
        )
        if stored:
            if self._on_stored is not None:
                self._on_stored()
        else:
            metrics.notifications_deduplicated.inc()
            with log_context(notification=notification.uuid):
                log.info("duplicate notification %s ignored", for_log(notification.uuid))
        return _accepted()

    def _handshake(self, validation_token: str, received_token: str | None) -> web.Response:
        # RingCentral checks the address while creating a subscription. The request carries
        # our verification token when one was set; a different one means someone else is
        # trying to point a subscription at us.
        if received_token is not None and not tokens_match(
            received_token, self._verification_token
        ):
            return refuse(403, "verification token does not match")
        if not _VALIDATION_TOKEN_SHAPE.fullmatch(validation_token):
            # Echoed in a header: printable ASCII only, so it cannot break the answer.
            return refuse(400, "validation token must be up to 512 printable ASCII characters")
        return web.Response(
            status=200,
            headers={VALIDATION_TOKEN_HEADER: validation_token},
            content_type="application/json",
        )


class BodyTooLarge(Exception):
    pass


_VALIDATION_TOKEN_SHAPE = re.compile(r"[\x21-\x7e]{1,512}")
_ESCAPED_SURROGATE = re.compile(rb"\\u[dD][89abcdefABCDEF]")


def is_own_post(notification: Notification) -> bool:
    """A post the bot itself made, announced to the bot's own subscription (`ownerId`, the
    bot's extension, is its author): never a command, whatever it says."""
    return (
        notification.kind == events.POST_ADDED
        and notification.owner_id is not None
        and str(notification.body.get("creatorId")) == notification.owner_id
    )


def parse_json_body(raw: bytes) -> Any:
    """A request body as JSON, or ValueError when it is not JSON or not valid Unicode.

    orjson refuses what would fail later wherever the text is encoded (SQLite, logs,
    RingCentral): bytes that are not UTF-8, a lone surrogate escape (`\\ud800`; a proper
    pair, an escaped emoji, passes), NaN, and nesting deeper than 1,024 levels.
    """
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        if _ESCAPED_SURROGATE.search(raw) and "surrogate" in str(err):
            raise ValueError("body holds text that is not valid Unicode") from err
        if "depth" in str(err) or "recursion" in str(err):
            raise ValueError("body is nested too deeply") from err
        raise ValueError("body is not JSON") from err


def _accepted() -> web.Response:
    """The 200 a stored (or deliberately ignored) notification gets: an empty JSON answer."""
    return web.Response(status=200, content_type="application/json")


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, or BodyTooLarge past `limit` bytes. With a Content-Length (what
    RingCentral sends) it is read in one go, else chunk by chunk (`read_limited`)."""
    length = request.content_length
    if length is None:
        return await read_limited(request, limit)
    if length > limit:
        raise BodyTooLarge
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as err:  # past the application's own limit
        raise BodyTooLarge from err
    if len(raw) > limit:
        raise BodyTooLarge
    return raw


async def read_limited(request: web.Request, limit: int) -> bytes:
    """The whole body, refusing (BodyTooLarge) as soon as it passes `limit` bytes."""
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(65_536):
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def refuse(status: int, reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=status)
