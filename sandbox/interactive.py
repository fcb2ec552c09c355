"""A person presses an Action.Submit button: the platform's "Interactive Messages"
outbound webhook to the app (API-FACTS D.6), and the dialog a bot may answer with.

The payload has the documented fields plus those RingCentral's own apps rely on
(`card`, `bot`, `user.extId`, `user.accountId`). It is sent as compact JSON and signed
with `X-Glip-Signature`: hex HMAC-SHA1 of the exact body bytes keyed by the app's shared
secret, bare as every RingCentral code sample compares it, or `sha1=`-prefixed as the
docs describe it (the `signaturePrefix` setting). One attempt, 5 s to answer, no
redelivery: what the unpublished docs draft says, UNCONFIRMED.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from typing import Any

import aiohttp
from aiohttp import web

from sandbox.control import PREFIX, ControlError, extension_of, read_body, world_in
from sandbox.keys import HTTP_CLIENT_KEY
from sandbox.world import JSON, AdaptiveCard, Chat, Extension, World, iso

routes = web.RouteTableDef()

SUBMIT_TIMEOUT_SECONDS = 5.0


def flat_strings(data: dict[str, Any]) -> dict[str, str]:
    """The `data` map as the client sends it: every value a string.

    Input values already are strings; toggles become "true"/"false" and numbers their
    JSON text. A nested object or list in Action.Submit data becomes its compact JSON
    (UNCONFIRMED: the docs only say the map is flat).
    """
    flat: dict[str, str] = {}
    for key, value in data.items():
        if isinstance(value, str):
            flat[key] = value
        elif value is None:
            flat[key] = ""
        else:
            flat[key] = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return flat


def signature(secret: str, raw_body: bytes, *, prefixed: bool) -> str:
    digest = hmac.new(secret.encode(), raw_body, hashlib.sha1).hexdigest()
    return f"sha1={digest}" if prefixed else digest


def _submit_chat(world: World, card: AdaptiveCard, user: Extension) -> Chat | None:
    for chat_id in card.chat_ids:
        chat = world.chats.get(chat_id)
        if chat is not None and user.id in chat.members:
            return chat
    return None


def button_submit_payload(
    world: World, card: AdaptiveCard, chat: Chat, user: Extension, data: dict[str, str]
) -> JSON:
    post = world.posts.get(card.post_id)
    created = post.creation_time if post else card.creation_time
    modified = post.last_modified_time if post else card.last_modified_time
    return {
        "uuid": str(uuid.UUID(int=world.random.getrandbits(128), version=4)),
        "timestamp": world.now_iso(),
        "type": "button_submit",
        "appId": world.app_client_id,
        "user": {
            "id": user.id,
            "firstName": user.first_name,
            "lastName": user.last_name,
            "accountId": user.account_id,
            "extId": user.id,
        },
        "conversation": {
            "id": chat.id,
            "type": chat.type,
            "public": bool(chat.public),
            "name": chat.name,
        },
        "post": {
            "id": card.post_id,
            "creationTime": iso(created),
            "lastModifiedTime": iso(modified),
        },
        "card": {"id": card.id},
        "bot": {"id": card.creator_id},
        "data": data,
    }


@routes.post(PREFIX + "/cards/{cardId}/submit")
async def submit_card(request: web.Request) -> web.StreamResponse:
    """`{"userId", "data"}`: that person presses a Submit button of the card.

    Answers `{"status", "body"}` with the app's HTTP status and its body (parsed JSON,
    else text, else null); `status` is null and `error` says why when the app could not
    be reached. A dialog answer is remembered as the user's open dialog.
    """
    world = world_in(request)
    card = world.cards.get(request.match_info["cardId"])
    if card is None:
        raise ControlError(404, "no such card")
    body = await read_body(request)
    user = extension_of(world, body.get("userId"), "userId")
    data = body.get("data", {})
    if not isinstance(data, dict):
        raise ControlError(400, "data must be an object (Action.Submit data and input values)")
    chat = _submit_chat(world, card, user)
    if chat is None:
        raise ControlError(403, f"{user.id} is not a member of a chat card {card.id} is in")
    url = world.interactive_messages_url
    if url is None:
        raise ControlError(
            409,
            "the app has no Interactive Messages URL: set interactiveMessagesUrl with "
            "POST /_sandbox/settings first",
        )
    payload = button_submit_payload(world, card, chat, user, flat_strings(data))
    raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Glip-Signature": signature(
            world.app_shared_secret, raw, prefixed=world.signature_prefix
        ),
    }
    try:
        async with request.app[HTTP_CLIENT_KEY].post(
            url,
            data=raw,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=SUBMIT_TIMEOUT_SECONDS),
            allow_redirects=False,
        ) as response:
            status = response.status
            answer = _parsed(await response.read())
    except (TimeoutError, aiohttp.ClientError, ValueError) as failure:
        return web.json_response(
            {"status": None, "body": None, "error": f"{failure.__class__.__name__}: {failure}"}
        )
    if status == 200 and _is_dialog(answer):
        world.dialogs[user.id] = {
            "userId": user.id,
            "cardId": card.id,
            "chatId": chat.id,
            "dialog": answer["dialog"],
            "shownAt": world.now_iso(),
        }
    return web.json_response({"status": status, "body": answer})


def _parsed(raw: bytes) -> Any:
    if not raw.strip():
        return None
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def _is_dialog(answer: Any) -> bool:
    """`{"type": "dialog", "dialog": {...}}` (fixtures interactive-message-dialog-*)."""
    return (
        isinstance(answer, dict)
        and answer.get("type") == "dialog"
        and isinstance(answer.get("dialog"), dict)
    )


@routes.get(PREFIX + "/dialogs")
async def list_dialogs(request: web.Request) -> web.StreamResponse:
    """The dialog each user has open (the last one a bot answered a submit with)."""
    return web.json_response(list(world_in(request).dialogs.values()))
