"""`/restapi/v1.0/subscription` (API-FACTS B.1, B.2, B.4): WebHook subscriptions only.

Creation runs the validation handshake against the address first, as the platform
does, so a bot whose webhook edge does not echo `Validation-Token` fails here too.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from aiohttp import web

from sandbox import actions
from sandbox.delivery import PlatformEvent, expand_filter, is_known_filter, reminder_problem
from sandbox.errors import PlatformError, api_error, invalid_parameter, not_found
from sandbox.keys import BACKGROUND_KEY, NOTIFIER_KEY
from sandbox.platform import (
    base_url,
    caller_of,
    endpoint,
    json_body,
    json_response,
    session_of,
    world_of,
)
from sandbox.ratelimit import RateGroup
from sandbox.render import subscription_info
from sandbox.world import JSON, Extension, OAuthSession, Subscription, World

routes = web.RouteTableDef()

DEFAULT_EXPIRES_IN = 604800
MAX_EXPIRES_IN = 315360000
RINGSENSE_PERMISSION = "ReadRingSenseInsights"
ACCOUNT_IN_FILTER = re.compile(
    r"^(?:/restapi/v1\.0/account|/ai/ringsense/v1/public/accounts)/([^/?]+)"
    r"(?:/extension/([^/?]+))?"
)


def _expires_in(body: dict[str, Any]) -> int:
    if "expiresIn" not in body or body["expiresIn"] is None:
        return DEFAULT_EXPIRES_IN
    value = body["expiresIn"]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise invalid_parameter("expiresIn", str(value))
    return min(value, MAX_EXPIRES_IN)


def _lifetime(world: World, expires_in: int) -> int:
    """The `subscriptionTtlSeconds` fault caps every lifetime, so expiry is testable."""
    cap = world.faults.subscription_ttl_seconds
    return expires_in if cap is None else min(expires_in, cap)


#: The app permission an event filter needs (SPEC; API-FACTS discrepancy 9: RingSense is
#: the app scope, ReadRingSenseInsights the user permission). A token without it gets the
#: filter disabled, like a missing user permission (UNCONFIRMED which of disabled or
#: refused the platform does; either way no events arrive, and disabled says so).
FILTER_APP_SCOPES: tuple[tuple[str, str], ...] = (
    ("/ai/ringsense/", "RingSense"),
    ("/team-messaging/", "TeamMessaging"),
)


def _scope_missing(item: str, scope: tuple[str, ...]) -> str | None:
    for prefix, needed in FILTER_APP_SCOPES:
        if item.startswith(prefix) and needed not in scope:
            return needed
    return None


def _event_filters(
    world: World, owner: Extension, raw: Any, scope: tuple[str, ...], expires_in: int
) -> tuple[list[str], list[JSON]]:
    """Validated, `~`-expanded filters plus those disabled for lack of permission (the
    user's, or the app's in the token's scope).

    An expiry-reminder filter whose threshold or interval is out of the documented range
    for this lifetime (API-FACTS B.5) is refused like an invalid filter: SUB-508 naming it.
    Which error the platform really answers is UNCONFIRMED; refusing is the safe guess.
    """
    if not isinstance(raw, list) or not raw:
        raise invalid_parameter("eventFilters")
    if not all(isinstance(item, str) and item for item in raw):
        raise invalid_parameter("eventFilters")
    unknown = [item for item in raw if not is_known_filter(item)]
    if unknown:
        message = f"Invalid event filters: [{', '.join(unknown)}]"
        raise api_error(400, "SUB-508", message)
    for item in raw:
        problem = reminder_problem(item, expires_in)
        if problem is not None:
            raise api_error(400, "SUB-508", f"Invalid event filters: [{item}] ({problem})")
    expanded = [expand_filter(item, account_id=owner.account_id, owner_id=owner.id) for item in raw]
    for item in expanded:
        if _other_account(world, owner, item):
            raise other_account_refused()
    disabled: list[JSON] = []
    for item in expanded:
        needed = _scope_missing(item, scope)
        if needed is not None:
            disabled.append(
                {
                    "filter": item,
                    "reason": "PermissionDenied",
                    "message": f"Application needs to have [{needed}] permission",
                }
            )
            continue
        if item.startswith("/ai/ringsense/") and RINGSENSE_PERMISSION not in owner.permissions:
            disabled.append(
                {
                    "filter": item,
                    "reason": "PermissionDenied",
                    "message": f"User needs to have [{RINGSENSE_PERMISSION}] permission",
                }
            )
    return list(dict.fromkeys(expanded)), disabled


def other_account_refused() -> PlatformError:
    """SUB-406 (DOCS errors.md): the text the platform also answers a just-installed bot
    with, while its extension is not ready yet (API-FACTS A.4)."""
    return api_error(
        403, "SUB-406", "Not allowed subscribe for events to extensions of other account"
    )


def _other_account(world: World, owner: Extension, event_filter: str) -> bool:
    """A filter naming another account, or an extension of another account."""
    found = ACCOUNT_IN_FILTER.match(event_filter)
    if found is None:
        return False
    if found.group(1) != owner.account_id:
        return True
    extension_id = found.group(2)
    if extension_id is None:
        return False
    extension = world.extensions.get(extension_id)
    return extension is not None and extension.account_id != owner.account_id


def _bot_not_ready(world: World, owner: Extension) -> bool:
    """The `botReadyAfterSeconds` knob: a bot installed moments ago cannot subscribe yet.

    The real delay is UNCONFIRMED; RingCentral's frameworks retry every 10 s (CHATBOT-JS)
    or after about 50 s (CHATBOT-PY). The default is 3 s, so a bot that does not retry
    finds out here; the bot extension the sandbox starts with is ready at once.
    """
    if owner.type != "Bot" or owner.installed_at is None:
        return False
    return world.now() < owner.installed_at + world.bot_ready_after_seconds


def _own_subscription(request: web.Request) -> Subscription:
    world = world_of(request)
    subscription_id = request.match_info["subscriptionId"]
    subscription = world.live_subscription(subscription_id)
    session = session_of(request)
    if subscription is None:
        expired = world.expired_subscriptions.get(subscription_id)
        if expired is not None and _owned_by(expired, session):
            raise api_error(
                404,
                "SUB-507",
                f"Subscription with key [{subscription_id}] and assigned session "
                f"[{session.id}] was expired",
            )
    if subscription is None or not _owned_by(subscription, session):
        raise not_found("subscriptionId", subscription_id)
    return subscription


def _owned_by(subscription: Subscription, session: OAuthSession) -> bool:
    return subscription.owner_id == session.owner_id and subscription.client_id == (
        session.client_id
    )


def _refuse_blacklisted(subscription: Subscription) -> None:
    """A blacklisted subscription is not renewed back to life: the docs' remedy is to
    delete it and create a new one. The answer is UNCONFIRMED (no sample): a 400 in the
    platform's error shape, so a client that renews blindly finds out."""
    if subscription.status == "Blacklisted":
        raise api_error(
            400,
            "CMN-101",
            f"Subscription [{subscription.id}] is blacklisted: it cannot be renewed; "
            "delete it and create a new one",
            top_code="InvalidParameter",
            parameterName="subscriptionId",
        )


@routes.post("/restapi/v1.0/subscription")
@endpoint(RateGroup.MEDIUM)
async def create_subscription(request: web.Request) -> web.StreamResponse:
    world = world_of(request)
    owner = caller_of(request)
    session = session_of(request)
    body = await json_body(request)
    if _bot_not_ready(world, owner):
        raise other_account_refused()
    requested_lifetime = _expires_in(body)
    filters, disabled = _event_filters(
        world, owner, body.get("eventFilters"), session_of(request).scope, requested_lifetime
    )
    delivery_mode = body.get("deliveryMode")
    if not isinstance(delivery_mode, dict):
        raise invalid_parameter("deliveryMode")
    if delivery_mode.get("transportType") != "WebHook":
        raise invalid_parameter("deliveryMode.transportType")
    address = delivery_mode.get("address")
    if not isinstance(address, str) or not address.startswith(("http://", "https://")):
        raise invalid_parameter("deliveryMode.address")
    verification_token = delivery_mode.get("verificationToken")
    if verification_token is not None and not isinstance(verification_token, str):
        raise invalid_parameter("deliveryMode.verificationToken")
    expires_in = _lifetime(world, requested_lifetime)
    mine = [
        sub
        for sub in world.live_subscriptions()
        if sub.owner_id == owner.id and sub.client_id == session.client_id
    ]
    if len(mine) >= world.max_subscriptions_per_owner:
        raise api_error(403, "SUB-505", "Subscriptions limit exceeded")

    handshake = await request.app[NOTIFIER_KEY].handshake(address, verification_token)
    if handshake.outcome == "too_large":
        raise api_error(400, "SUB-525", "WebHook server response is invalid")
    if handshake.outcome != "ok":
        raise invalid_parameter("deliveryMode.address")

    now = world.now()
    subscription = Subscription(
        id=str(uuid.UUID(int=world.random.getrandbits(128), version=4)),
        owner_id=owner.id,
        client_id=session.client_id,
        event_filters=filters,
        disabled_filters=disabled,
        address=address,
        verification_token=verification_token or None,
        expires_in=expires_in,
        creation_time=now,
        expiration_time=now + expires_in,
    )
    world.subscriptions[subscription.id] = subscription
    if owner.install_events_due:
        owner.install_events_due = False
        background = request.app[BACKGROUND_KEY]
        for event in install_events(world, owner):
            background.spawn(request.app[NOTIFIER_KEY].publish(event))
    return json_response(subscription_info(base_url(request), subscription, now))


def install_events(world: World, bot: Extension) -> list[PlatformEvent]:
    """What a newly installed bot hears once it has subscribed: its extension's `Create`
    (hints as the documented Update's) and GroupJoined for its personal chat. When the
    platform sends them relative to the install is UNCONFIRMED; here, after the first
    subscription, so a bot must cope with both arriving at once."""
    events = [
        PlatformEvent(
            kind="extension",
            body={"extensionId": bot.id, "eventType": "Create", "hints": ["ExtensionInfo"]},
            extension_id=bot.id,
            account_id=bot.account_id,
        )
    ]
    personal = world.personal_chat(bot.id)
    if personal is not None:
        events += actions.joined_events(personal, [bot.id])
    return events


@routes.get("/restapi/v1.0/subscription")
@endpoint(RateGroup.LIGHT)
async def list_subscriptions(request: web.Request) -> web.StreamResponse:
    world = world_of(request)
    session = session_of(request)
    base = base_url(request)
    now = world.now()
    records = [
        subscription_info(base, sub, now)
        for sub in world.live_subscriptions()
        if sub.owner_id == session.owner_id and sub.client_id == session.client_id
    ]
    return json_response({"uri": f"{base}/restapi/v1.0/subscription", "records": records})


@routes.get("/restapi/v1.0/subscription/{subscriptionId}")
@endpoint(RateGroup.LIGHT)
async def read_subscription(request: web.Request) -> web.StreamResponse:
    subscription = _own_subscription(request)
    return json_response(
        subscription_info(base_url(request), subscription, world_of(request).now())
    )


def _renew(world: World, subscription: Subscription) -> None:
    subscription.expires_in = _lifetime(world, subscription.expires_in)
    subscription.expiration_time = world.now() + subscription.expires_in
    subscription.last_reminded_at = None


@routes.post("/restapi/v1.0/subscription/{subscriptionId}/renew")
@endpoint(RateGroup.LIGHT)
async def renew_subscription(request: web.Request) -> web.StreamResponse:
    world = world_of(request)
    subscription = _own_subscription(request)
    _refuse_blacklisted(subscription)
    _renew(world, subscription)
    return json_response(subscription_info(base_url(request), subscription, world.now()))


@routes.put("/restapi/v1.0/subscription/{subscriptionId}")
@endpoint(RateGroup.MEDIUM)
async def update_subscription(request: web.Request) -> web.StreamResponse:
    """Changes filters and/or lifetime; every PUT, even an empty one, also renews."""
    world = world_of(request)
    subscription = _own_subscription(request)
    _refuse_blacklisted(subscription)
    body = await json_body(request, required=False)
    expires_in = _expires_in(body) if "expiresIn" in body else subscription.expires_in
    raw_filters = body.get("eventFilters", subscription.event_filters)
    filters, disabled = _event_filters(
        world, caller_of(request), raw_filters, session_of(request).scope, expires_in
    )
    if "eventFilters" in body:
        subscription.event_filters = filters
        subscription.disabled_filters = disabled
    subscription.expires_in = expires_in
    _renew(world, subscription)
    return json_response(subscription_info(base_url(request), subscription, world.now()))


@routes.delete("/restapi/v1.0/subscription/{subscriptionId}")
@endpoint(RateGroup.MEDIUM)
async def delete_subscription(request: web.Request) -> web.StreamResponse:
    subscription = _own_subscription(request)
    del world_of(request).subscriptions[subscription.id]
    return web.Response(status=204)
