"""The Interactive Messages webhook: card button presses (`button_submit`).

RingCentral signs each press with `X-Glip-Signature`, an HMAC-SHA1 of the request body
keyed by the app's shared secret. The docs show `sha1=<hex>`, RingCentral's own apps
compare the bare hex; both are accepted, always over the raw bytes and in constant time.
Anything unsigned or wrongly signed is refused and changes nothing. A press is handled at
once (RingCentral wants the answer within seconds and may show a dialog from it); a
redelivered press (same uuid) is answered without being handled twice.
"""

from __future__ import annotations

import hashlib
import hmac
import logging

from aiohttp import web

from bot.events import CardSubmission
from bot.quoting import for_log
from bot.router import Dispatcher
from bot.services import Services
from bot.webhooks import BodyTooLarge, parse_json_body, read_limited, refuse

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Glip-Signature"
MAX_SUBMIT_BYTES = 256 * 1024


def signature_is_valid(body: bytes, header: str | None, shared_secret: str) -> bool:
    if not header or not shared_secret:
        return False
    received = header.strip()
    if received.lower().startswith("sha1="):
        received = received[5:]
    expected = hmac.new(shared_secret.encode("utf-8"), body, hashlib.sha1).hexdigest()
    return hmac.compare_digest(received.lower().encode("ascii", "replace"), expected.encode())


class InteractiveEndpoint:
    """`POST /webhooks/interactive`."""

    def __init__(self, services: Services, dispatcher: Dispatcher) -> None:
        self._services = services
        self._dispatcher = dispatcher

    async def handle(self, request: web.Request) -> web.Response:
        try:
            body = await read_limited(request, MAX_SUBMIT_BYTES)
        except BodyTooLarge:
            return refuse(413, "body too large")
        except (OSError, ValueError):
            return refuse(400, "could not read the body")
        if not signature_is_valid(
            body, request.headers.get(SIGNATURE_HEADER), self._services.config.shared_secret
        ):
            log.warning("refused a card submit with a missing or wrong X-Glip-Signature")
            return refuse(401, "missing or wrong X-Glip-Signature")
        try:
            submission = CardSubmission.parse(parse_json_body(body))
        except ValueError as err:  # MalformedNotification says what is wrong, too
            return refuse(400, str(err))
        install = self._services.install_for_bot(submission.bot_id)
        account_id = install.account_id if install else None
        if not await self._services.storage.first_time_seen(submission.uuid, account_id):
            log.info("card submit %s seen before; not handled again", for_log(submission.uuid))
            return web.Response(status=200)
        handled, response = await self._dispatcher.dispatch_submission(self._services, submission)
        if not handled:
            log.warning("card submit with unknown action %s", for_log(submission.action))
        if response is not None:
            return web.json_response(response)
        return web.Response(status=200)
