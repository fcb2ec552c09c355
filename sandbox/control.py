"""The control API under `/_sandbox/`: how a test or the demo sets up people and chats,
makes things happen (a user posts, a call is analysed) and looks at what the bot did.

No auth and plain JSON. Calls that cause notifications answer only after the deliveries
were attempted, and report them, so a test never has to poll (except with the
`reorderNotifications` fault, which holds them back on purpose).

Accounts and bot installs live in `sandbox.installs`, card submits and dialogs in
`sandbox.interactive`, fault injection in `sandbox.fault_api`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

from sandbox import actions, jsonio
from sandbox.delivery import PlatformEvent
from sandbox.insights import ALL_INSIGHT_KEYS, NOTIFIED_BY_DEFAULT
from sandbox.jsonio import json_response
from sandbox.keys import NOTIFIER_KEY, WORLD_KEY
from sandbox.platform import base_url
from sandbox.render import card_info, chat_info, post_info, subscription_info
from sandbox.world import JSON, Delivery, Extension, World, iso

routes = web.RouteTableDef()

PREFIX = "/_sandbox"


class ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@web.middleware
async def control_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except ControlError as error:
        return json_response({"error": error.message}, status=error.status)


async def read_body(request: web.Request) -> dict[str, Any]:
    try:
        if request.charset in (None, "utf-8", "UTF-8"):
            body = jsonio.loads(await request.read())
        else:
            body = await request.json()
    except ValueError:
        raise ControlError(400, "the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ControlError(400, "the body must be a JSON object")
    return body


def world_in(request: web.Request) -> World:
    return request.app[WORLD_KEY]


def user_json(extension: Extension, *, jwt: str | None = None) -> JSON:
    """A person as the control API shows it; `jwt` only when one was just issued."""
    body: JSON = {
        "extensionId": extension.id,
        "accountId": extension.account_id,
        "name": extension.name,
        "firstName": extension.first_name,
        "lastName": extension.last_name,
        "email": extension.email,
        "type": extension.type,
        "admin": extension.admin,
        "permissions": sorted(extension.permissions),
    }
    if jwt is not None:
        body["jwt"] = jwt
    return body


def delivery_json(delivery: Delivery) -> JSON:
    return {
        "subscriptionId": delivery.subscription_id,
        "uuid": delivery.uuid,
        "event": delivery.event,
        "address": delivery.address,
        "time": iso(delivery.time),
        "status": delivery.status,
        "error": delivery.error,
        "ok": delivery.ok,
        "attempt": delivery.attempt,
        "copy": delivery.copy,
        "dropped": delivery.dropped,
        "payload": delivery.payload,
    }


async def publish_events(request: web.Request, events: list[PlatformEvent]) -> list[JSON]:
    """Deliver now, in order, and report every attempt (so a test never polls)."""
    notifier = request.app[NOTIFIER_KEY]
    results: list[JSON] = []
    for event in events:
        for delivery in await notifier.publish(event):
            results.append(delivery_json(delivery))
    return results


def extension_of(world: World, extension_id: Any, what: str) -> Extension:
    extension = world.extensions.get(str(extension_id))
    if extension is None:
        raise ControlError(400, f"{what}: no extension {extension_id!r}")
    return extension


@routes.get(PREFIX + "/bots")
async def list_bots(request: web.Request) -> web.StreamResponse:
    world = world_in(request)
    bots = []
    for bot in world.bots():
        session = world.permanent_session(bot.id)
        bots.append(
            {
                "extensionId": bot.id,
                "accountId": bot.account_id,
                "name": bot.name,
                "token": session.access_token if session else None,
            }
        )
    return json_response(bots)


@routes.get(PREFIX + "/users")
async def list_users(request: web.Request) -> web.StreamResponse:
    world = world_in(request)
    return json_response([user_json(ext) for ext in world.extensions.values()])


def _create_user(world: World, body: dict[str, Any]) -> Extension:
    """A user in `accountId` (default: the default account)."""
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ControlError(400, "name is required")
    extension_id = body.get("extensionId")
    if extension_id is not None and (not isinstance(extension_id, str) or not extension_id):
        raise ControlError(400, "extensionId must be a non-empty string")
    if extension_id in world.extensions:
        raise ControlError(409, f"extension {extension_id} already exists")
    email = body.get("email")
    if email is not None and (not isinstance(email, str) or "@" not in email):
        raise ControlError(400, "email must be an address")
    permissions = body.get("permissions")
    if permissions is not None and not (
        isinstance(permissions, list) and all(isinstance(p, str) for p in permissions)
    ):
        raise ControlError(400, "permissions must be a list of permission ids")
    account_id = body.get("accountId", world.account_id)
    if account_id not in world.accounts:
        raise ControlError(400, f"accountId: no account {account_id!r}")
    return world.add_user(
        name.strip(),
        admin=bool(body.get("admin", False)),
        extension_id=extension_id,
        email=email,
        permissions=set(permissions) if permissions is not None else None,
        account_id=str(account_id),
    )


@routes.post(PREFIX + "/users")
async def create_user(request: web.Request) -> web.StreamResponse:
    """Answers the user with a fresh `jwt` for the JWT grant, to act as that user."""
    world = world_in(request)
    extension = _create_user(world, await read_body(request))
    return json_response(user_json(extension, jwt=world.issue_jwt(extension.id)), status=201)


@routes.get(PREFIX + "/chats")
async def list_chats(request: web.Request) -> web.StreamResponse:
    return json_response([chat_info(chat) for chat in world_in(request).chats.values()])


@routes.post(PREFIX + "/chats")
async def create_chat(request: web.Request) -> web.StreamResponse:
    world = world_in(request)
    body = await read_body(request)
    type_ = body.get("type")
    if type_ not in ("Direct", "Group", "Team"):
        raise ControlError(400, "type must be Direct, Group or Team")
    members = body.get("members")
    if not isinstance(members, list) or not members:
        raise ControlError(400, "members must be a non-empty list of extension ids")
    member_ids = list(dict.fromkeys(extension_of(world, m, "members").id for m in members))
    if type_ == "Direct" and len(member_ids) != 2:
        raise ControlError(400, "a Direct chat has exactly two members")
    name = body.get("name")
    if type_ == "Team" and not (isinstance(name, str) and name.strip()):
        raise ControlError(400, "a Team needs a name")
    if type_ == "Direct" and world.find_conversation(set(member_ids)) is not None:
        raise ControlError(409, "that Direct chat already exists")
    chat, events = actions.create_chat(
        world, type_, member_ids, name=name if isinstance(name, str) else None
    )
    notifications = await publish_events(request, events)
    return json_response({**chat_info(chat), "notifications": notifications}, status=201)


def _member_ids(world: World, raw: Any, what: str) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ControlError(400, f"{what} must be a list of extension ids")
    return list(dict.fromkeys(extension_of(world, item, what).id for item in raw))


@routes.post(PREFIX + "/chats/{chatId}/members")
async def change_members(request: web.Request) -> web.StreamResponse:
    """People join or leave a Group or Team: `{"add": [ids], "remove": [ids]}`.

    Only the member who joins gets GroupJoined and only the one who leaves gets
    GroupLeft (API-FACTS D.2), both with the chat as it is afterwards. Everyone in the
    chat then gets a `PersonsAdded` post (its body UNCONFIRMED), posted by the first
    earlier member. Whether the remaining members get GroupChanged is UNCONFIRMED and not
    emulated.
    """
    world = world_in(request)
    chat = world.chats.get(request.match_info["chatId"])
    if chat is None:
        raise ControlError(404, "no such chat")
    if chat.type not in ("Group", "Team"):
        raise ControlError(400, f"the members of a {chat.type} chat cannot be changed")
    body = await read_body(request)
    added = [m for m in _member_ids(world, body.get("add"), "add") if m not in chat.members]
    removed = [m for m in _member_ids(world, body.get("remove"), "remove") if m in chat.members]
    if set(added) & set(removed):
        raise ControlError(400, "the same person cannot be added and removed at once")
    events: list[PlatformEvent] = []
    if removed:
        chat.members = [m for m in chat.members if m not in removed]
        chat.last_modified_time = world.now()
        events += actions.left_events(chat, removed)
    if added:
        earlier = list(chat.members)
        chat.members.extend(added)
        chat.last_modified_time = world.now()
        events += actions.joined_events(chat, added)
        adder = earlier[0] if earlier else added[0]
        events.append(actions.persons_added_event(world, chat, added, adder))
    notifications = await publish_events(request, events)
    return json_response({**chat_info(chat), "notifications": notifications})


@routes.get(PREFIX + "/chats/{chatId}/posts")
async def chat_posts(request: web.Request) -> web.StreamResponse:
    """Everything in the chat, oldest first, cards with their current content."""
    world = world_in(request)
    chat = world.chats.get(request.match_info["chatId"])
    if chat is None:
        raise ControlError(404, "no such chat")
    posts = sorted(world.posts_in(chat.id), key=lambda post: (post.creation_time, int(post.id)))
    result = []
    for post in posts:
        entry = post_info(post)
        if post.card_id is not None:
            card = world.cards.get(post.card_id)
            entry["cardId"] = post.card_id
            entry["card"] = card_info(card) if card else None
        result.append(entry)
    return json_response(result)


@routes.post(PREFIX + "/posts")
async def create_post(request: web.Request) -> web.StreamResponse:
    world = world_in(request)
    body = await read_body(request)
    chat = world.chats.get(str(body.get("chatId")))
    if chat is None:
        raise ControlError(400, f"chatId: no chat {body.get('chatId')!r}")
    creator = extension_of(world, body.get("creatorId"), "creatorId")
    if creator.id not in chat.members:
        raise ControlError(400, f"{creator.id} is not a member of chat {chat.id}")
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ControlError(400, "text is required")
    post, event = actions.post_text(world, chat, creator.id, text)
    notifications = await publish_events(request, [event])
    return json_response({**post_info(post), "notifications": notifications}, status=201)


def _participants(world: World, raw: Any) -> list[actions.Participant]:
    if raw is None:
        return [actions.ExternalParty("Alex Morgan", "+14155550123")]
    if not isinstance(raw, list):
        raise ControlError(400, "participants must be a list")
    result: list[actions.Participant] = []
    for item in raw:
        if isinstance(item, str):
            result.append(extension_of(world, item, "participants"))
        elif isinstance(item, dict) and isinstance(item.get("name"), str):
            phone = item.get("phoneNumber")
            result.append(
                actions.ExternalParty(item["name"], phone if isinstance(phone, str) else "")
            )
        else:
            raise ControlError(400, "a participant is an extension id or {name, phoneNumber}")
    return result


def _notify_keys(body: dict[str, Any], insights: dict[str, Any]) -> tuple[str, ...]:
    keys = body.get("notifyInsights")
    if keys is None:
        return NOTIFIED_BY_DEFAULT
    if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
        raise ControlError(400, "notifyInsights must be a list of insight keys")
    allowed = set(ALL_INSIGHT_KEYS) | set(insights)
    unknown = [key for key in keys if key not in allowed]
    if unknown:
        raise ControlError(400, f"unknown insight keys: {unknown}")
    return tuple(keys)


def _ensure_event_people(world: World, record: JSON) -> None:
    """Users named by a real RingSense event become extensions, with its ids and names."""
    speakers = [s for s in record.get("speakerInfo") or [] if isinstance(s, dict)]
    owner_id = str(record["ownerExtensionId"])
    named = {str(s["extensionId"]): s.get("name") for s in speakers if s.get("extensionId")}
    for extension_id, name in [(owner_id, named.get(owner_id)), *named.items()]:
        if extension_id not in world.extensions:
            world.add_user(
                name if isinstance(name, str) and name else f"User {extension_id}",
                extension_id=extension_id,
            )


RINGSENSE_DOMAINS = ("pbx", "rcv", "rcx", "ms-teams", "nice-incontact")
"""The documented RingSense domains (API-FACTS C.2); a simulated call may be in any."""


@routes.post(PREFIX + "/calls")
async def simulate_call(request: web.Request) -> web.StreamResponse:
    world = world_in(request)
    body = await read_body(request)
    if "event" in body:
        event = body["event"]
        record = event.get("body") if isinstance(event, dict) else None
        if not isinstance(record, dict) or not all(
            record.get(key) for key in ("sourceRecordId", "sourceSessionId", "ownerExtensionId")
        ):
            raise ControlError(
                400,
                "event must be a RingSense notification whose body has sourceRecordId, "
                "sourceSessionId and ownerExtensionId",
            )
        record = copy.deepcopy(record)
        _ensure_event_people(world, record)
        account_id = world.extensions[str(record["ownerExtensionId"])].account_id
        world.store_ringsense_record(record, account_id)
        entry = actions.record_event_call(world, record)
        notifications = await publish_events(
            request, [actions.ringsense_event(record, None, account_id)]
        )
        return json_response(
            {
                "sourceRecordId": str(record["sourceRecordId"]),
                "sourceSessionId": str(record["sourceSessionId"]),
                "callLogId": entry.id if entry else None,
                "notifications": notifications,
            },
            status=201,
        )

    owner = extension_of(world, body.get("ownerExtensionId"), "ownerExtensionId")
    participants = _participants(world, body.get("participants"))
    direction = body.get("direction", "Outbound")
    if direction not in ("Inbound", "Outbound"):
        raise ControlError(400, "direction must be Inbound or Outbound")
    call_direction: Literal["Inbound", "Outbound"] = direction
    duration = body.get("durationSec", 180)
    if isinstance(duration, bool) or not isinstance(duration, int) or duration < 1:
        raise ControlError(400, "durationSec must be a positive integer")
    overrides = body.get("insights") or {}
    if not isinstance(overrides, dict):
        raise ControlError(400, "insights must be an object of insight arrays")
    keys = _notify_keys(body, overrides)
    session_id = body.get("sourceSessionId")
    if session_id is not None and not isinstance(session_id, str):
        raise ControlError(400, "sourceSessionId must be a string")
    domain = body.get("domain", "pbx")
    if domain not in RINGSENSE_DOMAINS:
        raise ControlError(400, f"domain must be one of {', '.join(RINGSENSE_DOMAINS)}")
    call = actions.simulate_call(
        world,
        owner,
        participants,
        direction=call_direction,
        duration_sec=duration,
        insight_overrides=overrides,
        source_session_id=session_id,
        domain=str(domain),
    )
    ai_notes = body.get("aiNotes", False)
    if not isinstance(ai_notes, bool):
        raise ControlError(400, "aiNotes must be true or false")
    if ai_notes:
        events = actions.ai_notes_events(world, call.record, keys, owner.account_id)
    else:
        events = [actions.ringsense_event(call.record, keys, owner.account_id)]
    notifications = await publish_events(request, events)
    return json_response(
        {
            "sourceRecordId": call.record["sourceRecordId"],
            "sourceSessionId": call.record["sourceSessionId"],
            "callLogId": call.call_log.id if call.call_log else None,
            "notifications": notifications,
        },
        status=201,
    )


@routes.get(PREFIX + "/requests")
async def list_requests(request: web.Request) -> web.StreamResponse:
    """Every API request in arrival order: when it arrived (world clock as ISO and epoch
    seconds, and `time.monotonic()` for real elapsed time), its answer (`status` null
    for a dropped connection, `retryAfter` the seconds a 429 asked to wait) and any
    injected `fault`."""
    return json_response(
        [
            {
                "method": entry.method,
                "path": entry.path,
                "query": entry.query,
                "status": entry.status,
                "group": entry.group,
                "tokenOwner": entry.token_owner,
                "time": iso(entry.time),
                "arrivedAt": iso(entry.arrived_at),
                "arrivedEpoch": entry.arrived_at,
                "arrivedMonotonic": entry.arrived_monotonic,
                "fault": entry.fault,
                "latencyMs": entry.latency_ms,
                "retryAfter": entry.retry_after,
            }
            for entry in sorted(world_in(request).request_log, key=lambda e: e.arrived_monotonic)
        ]
    )


@routes.delete(PREFIX + "/requests")
async def clear_requests(request: web.Request) -> web.StreamResponse:
    world_in(request).request_log.clear()
    return web.Response(status=204)


@routes.get(PREFIX + "/subscriptions")
async def list_subscriptions(request: web.Request) -> web.StreamResponse:
    world = world_in(request)
    base = base_url(request)
    now = world.now()
    return json_response(
        [
            {**subscription_info(base, sub, now), "ownerId": sub.owner_id}
            for sub in world.live_subscriptions()
        ]
    )


@routes.get(PREFIX + "/deliveries")
async def list_deliveries(request: web.Request) -> web.StreamResponse:
    return json_response([delivery_json(d) for d in world_in(request).deliveries])


@routes.post(PREFIX + "/clock")
async def advance_clock(request: web.Request) -> web.StreamResponse:
    world = world_in(request)
    body = await read_body(request)
    seconds = body.get("advanceSeconds")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        raise ControlError(400, "advanceSeconds must be a non-negative number")
    world.advance(float(seconds))
    return json_response({"now": world.now_iso()})


@routes.post(PREFIX + "/auth-codes")
async def issue_authorization_code(request: web.Request) -> web.StreamResponse:
    """What a public bot's redirect URI would receive at install: a one-minute code."""
    world = world_in(request)
    body = await read_body(request)
    owner = extension_of(world, body.get("extensionId"), "extensionId")
    redirect_uri = body.get("redirectUri")
    if not isinstance(redirect_uri, str) or not redirect_uri:
        raise ControlError(400, "redirectUri is required")
    challenge = body.get("codeChallenge")
    method = body.get("codeChallengeMethod")
    code = world.issue_authorization_code(
        owner.id,
        redirect_uri,
        code_challenge=challenge if isinstance(challenge, str) else None,
        code_challenge_method=method if isinstance(method, str) else None,
    )
    return json_response({"code": code.code, "expiresIn": 60}, status=201)


@routes.post(PREFIX + "/redirect-uris")
async def register_redirect_uri(request: web.Request) -> web.StreamResponse:
    """Add an OAuth redirect URI to the app, as a developer does in the console: the
    authorize page and the token endpoint accept only registered ones, exactly."""
    world = world_in(request)
    body = await read_body(request)
    uri = body.get("uri")
    if not isinstance(uri, str) or not uri.startswith(("http://", "https://")):
        raise ControlError(400, "uri must be an http(s) URL")
    if uri not in world.app_redirect_uris:
        world.app_redirect_uris.append(uri)
    return json_response({"redirectUris": world.app_redirect_uris})


SettingKind = Literal["bool", "number", "count", "url", "choice"]


@dataclass(frozen=True)
class Setting:
    attribute: str
    kind: SettingKind
    choices: tuple[str, ...] = ()


SETTINGS = {
    "enforceRateLimits": Setting("enforce_rate_limits", "bool"),
    "handshakeTimeout": Setting("handshake_timeout", "number"),
    "deliveryTimeout": Setting("delivery_timeout", "number"),
    "blacklistAfterFailures": Setting("blacklist_after_failures", "count"),
    "botReadyAfterSeconds": Setting("bot_ready_after_seconds", "number"),
    "oauthRedirectUri": Setting("oauth_redirect_uri", "url"),
    "interactiveMessagesUrl": Setting("interactive_messages_url", "url"),
    "signaturePrefix": Setting("signature_prefix", "bool"),
    "aiJobDelaySeconds": Setting("ai_job_delay_seconds", "number"),
    "aiJobLifetimeSeconds": Setting("ai_job_lifetime_seconds", "number"),
    "aiWebhookDelivery": Setting("ai_webhook_delivery", "choice", ("deliver", "never")),
    "ringcxEnforceRateLimits": Setting("ringcx_enforce_rate_limits", "bool"),
}
"""What a test may change: the platform's knobs and the app's console settings (OAuth
redirect URI, the Interactive Messages outbound webhook URL, the signature format), how
long AI jobs take and whether their webhooks are called, and RingCX's own limits."""


def _setting_value(key: str, setting: Setting, value: Any) -> Any:
    if setting.kind == "bool":
        if not isinstance(value, bool):
            raise ControlError(400, f"{key} must be true or false")
        return value
    if setting.kind == "choice":
        if value not in setting.choices:
            raise ControlError(400, f"{key} must be one of {', '.join(setting.choices)}")
        return value
    if setting.kind == "url":
        if value is None:
            return None
        if not isinstance(value, str) or not value.startswith(("http://", "https://")):
            raise ControlError(400, f"{key} must be an http(s) URL or null")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ControlError(400, f"{key} must be a non-negative number")
    if setting.kind == "count":
        if not isinstance(value, int):
            raise ControlError(400, f"{key} must be a whole number")
        return value
    return float(value)


def _settings_json(world: World) -> JSON:
    return {key: getattr(world, setting.attribute) for key, setting in SETTINGS.items()}


@routes.get(PREFIX + "/settings")
async def read_settings(request: web.Request) -> web.StreamResponse:
    return json_response(_settings_json(world_in(request)))


@routes.post(PREFIX + "/settings")
async def change_settings(request: web.Request) -> web.StreamResponse:
    """Changes only the keys given; all are checked before any is applied."""
    world = world_in(request)
    body = await read_body(request)
    changes: dict[str, Any] = {}
    for key, value in body.items():
        setting = SETTINGS.get(key)
        if setting is None:
            raise ControlError(400, f"unknown setting {key!r}; known: {sorted(SETTINGS)}")
        changes[setting.attribute] = _setting_value(key, setting, value)
    for attribute, value in changes.items():
        setattr(world, attribute, value)
    redirect_uri = world.oauth_redirect_uri
    if redirect_uri is not None and redirect_uri not in world.app_redirect_uris:
        world.app_redirect_uris.append(redirect_uri)
    return json_response(_settings_json(world))


SUBSCRIPTION_MISHAPS = ("delete", "expire", "blacklist")


@routes.post(PREFIX + "/subscriptions/{subscriptionId}/mishap")
async def subscription_mishap(request: web.Request) -> web.StreamResponse:
    """What can happen to a subscription behind its owner's back, for chaos tests:
    `{"mishap": "delete"}` (someone else deleted it), `"expire"` (its time ran out now),
    `"blacklist"` (the platform gave up on the address, API-FACTS B.6)."""
    world = world_in(request)
    body = await read_body(request)
    mishap = body.get("mishap")
    if mishap not in SUBSCRIPTION_MISHAPS:
        raise ControlError(400, f"mishap must be one of {', '.join(SUBSCRIPTION_MISHAPS)}")
    subscription_id = request.match_info["subscriptionId"]
    subscription = world.live_subscription(subscription_id)
    if subscription is None:
        raise ControlError(404, f"no live subscription {subscription_id}")
    if mishap == "delete":
        del world.subscriptions[subscription_id]
    elif mishap == "expire":
        subscription.expiration_time = world.now()
    else:
        subscription.status = "Blacklisted"
        subscription.blacklisted_at = world.now()
        subscription.blacklist_reason = "I/O operation is failed. Details: [Read timed out]"
    return json_response({"id": subscription_id, "mishap": mishap})
