"""What every platform API request goes through: authentication, rate limiting with the
real headers, app-permission checks, error rendering and the request log.

Endpoints declare their throttling group and app permission with `@endpoint(...)`
(values from the spec's `x-throttling-group` / `x-app-permission`); the middleware does
the rest, so each handler only implements its own behaviour.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from sandbox import jsonio
from sandbox.ai_jobs import mask_access_token
from sandbox.errors import (
    PlatformError,
    app_permission_missing,
    authorization_missing,
    extension_deleted,
    invalid_parameter,
    invalid_uri,
    not_found,
    rate_exceeded,
    token_expired,
    token_invalid,
    user_permission_missing,
)
from sandbox.faults import FAULT_HEADER, FaultConfigError, Injection, server_error_body
from sandbox.keys import RATE_LIMITER_KEY, WORLD_KEY
from sandbox.ratelimit import LimitPolicy, RateDecision, RateGroup
from sandbox.world import Exchange, Extension, OAuthSession, RequestLogEntry, World

log = logging.getLogger("sandbox")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CONTROL_PREFIX = "/_sandbox"

SESSION_KEY = web.RequestKey("sandbox_session", OAuthSession)
LOG_OWNER_KEY = web.RequestKey("sandbox_log_owner", str)


@dataclass(frozen=True)
class Endpoint:
    group: RateGroup
    authenticated: bool = True
    app_permission: str | None = None


_ENDPOINTS: dict[Any, Endpoint] = {}


def endpoint(
    group: RateGroup, *, authenticated: bool = True, app_permission: str | None = None
) -> Callable[[Handler], Handler]:
    """Declare a handler a platform endpoint with its throttling group and app permission."""

    def register(handler: Handler) -> Handler:
        _ENDPOINTS[handler] = Endpoint(group, authenticated, app_permission)
        return handler

    return register


_SELF_SERVED: set[Any] = set()
REQUEST_ID_HEADER = "RCRequestId"


def self_served(handler: Handler) -> Handler:
    """Mark a handler of another service on the sandbox host (RingCX) that does its own
    authentication, limits, errors and request logging: the middleware leaves it alone."""
    _SELF_SERVED.add(handler)
    return handler


SECRET_PARAMETERS = frozenset({"access_token", "rcAccessToken", "refresh_token"})


def masked_query(request: web.Request) -> str:
    """The query string for the request log, with credentials (`access_token` and the
    like, also inside a URL-valued parameter such as `webhook`) masked: the log is shown
    by the control API."""
    secret = SECRET_PARAMETERS.intersection(request.query)
    nested = any("access_token" in value for value in request.query.values())
    if not secret and not nested:
        return request.query_string
    return urlencode(
        [
            (k, "***" if k in SECRET_PARAMETERS else mask_access_token(v))
            for k, v in request.query.items()
        ],
        safe="*",
    )


def world_of(request: web.Request) -> World:
    return request.app[WORLD_KEY]


def session_of(request: web.Request) -> OAuthSession:
    return request[SESSION_KEY]


def caller_of(request: web.Request) -> Extension:
    """The extension that owns the request's access token."""
    world = world_of(request)
    extension = world.extensions.get(session_of(request).owner_id)
    if extension is None:
        raise token_invalid()
    return extension


def base_url(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def require_user_permission(extension: Extension, permission: str) -> None:
    if permission not in extension.permissions:
        raise user_permission_missing(permission)


def resolve_account(request: web.Request) -> str:
    """The `{accountId}` path parameter: `~` or the caller's own account id; another
    account's id is not found, as nothing of it is visible to this caller."""
    own = caller_of(request).account_id
    account_id = request.match_info.get("accountId", "~")
    if account_id not in ("~", own):
        raise not_found("accountId", account_id)
    return own


def resolve_extension(request: web.Request) -> Extension:
    """The `{extensionId}` path parameter, `~` meaning the caller; only the caller's
    account's extensions exist here."""
    account_id = resolve_account(request)
    world = world_of(request)
    extension_id = request.match_info.get("extensionId", "~")
    if extension_id == "~":
        return caller_of(request)
    extension = world.extensions.get(extension_id)
    if extension is None or extension.account_id != account_id:
        raise not_found("extensionId", extension_id)
    return extension


async def json_body(request: web.Request, *, required: bool = True) -> dict[str, Any]:
    """The request's JSON object; anything else is the platform's 400."""
    raw = await request.read()
    if not raw.strip():
        if required:
            raise invalid_parameter("body")
        return {}
    try:
        body = jsonio.loads(raw)
    except ValueError:  # json.JSONDecodeError and UnicodeDecodeError
        raise invalid_parameter("body") from None
    if not isinstance(body, dict):
        raise invalid_parameter("body")
    return body


def json_response(body: Any, status: int = 200) -> web.Response:
    return jsonio.json_response(body, status=status)


def _bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise token_invalid()
        return token.strip()
    return request.query.get("access_token")


def authenticate(request: web.Request, world: World) -> OAuthSession:
    token = _bearer_token(request)
    if token is None:
        raise authorization_missing()
    session = world.access_tokens.get(token)
    if session is None and token in world.deleted_tokens:
        raise extension_deleted()
    if session is None or session.owner_id not in world.extensions:
        raise token_invalid()
    if session.access_expires_at is not None and session.access_expires_at <= world.now():
        raise token_expired()
    return session


def basic_client_id(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0]


FAULT_KEY = web.RequestKey("sandbox_fault", str)
"""Set by a handler that refused a request because of a fault (the daily post limit)."""


def _injected_error(
    injection: Injection, group: RateGroup | None, policy: LimitPolicy | None
) -> PlatformError:
    if injection.kind == "storm":
        error = rate_exceeded(injection.retry_after or 60)
        if group is not None and policy is not None:
            error.headers.update(RateDecision(group, policy, 0, injection.retry_after).headers())
        return error
    error = PlatformError(injection.status, server_error_body(injection.status))
    if injection.retry_after is not None:
        error.headers["Retry-After"] = str(injection.retry_after)
    return error


async def _capture(world: World, request: web.Request, response: web.Response) -> None:
    """Keep the exchange for a spec check (bodies, no credentials)."""
    header = request.headers.get("Authorization")
    body = response.body if isinstance(response.body, bytes) else b""
    world.exchanges.append(
        Exchange(
            method=request.method,
            path=request.path,
            query={k: v for k, v in request.query.items() if k != "access_token"},
            authorization=header.split(" ", 1)[0] if header else None,
            request_content_type=request.content_type,
            request_body=await request.read() if request.body_exists else b"",
            status=response.status,
            response_content_type=response.content_type,
            response_body=body,
        )
    )


@web.middleware
async def platform_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path == CONTROL_PREFIX or request.path.startswith(CONTROL_PREFIX + "/"):
        return await handler(request)
    if request.match_info.handler in _SELF_SERVED:
        return await handler(request)
    world = request.app[WORLD_KEY]
    arrived_at = world.now()
    arrived_monotonic = time.monotonic()
    spec = _ENDPOINTS.get(request.match_info.handler)
    owner: str | None = None
    rate_headers: dict[str, str] = {}
    status: int | None = 500
    fault: str | None = None
    latency_ms: float | None = None
    retry_after: float | None = None
    try:
        try:
            try:
                injection = world.faults.inject(
                    request.method, request.path, request.headers.get(FAULT_HEADER), arrived_at
                )
            except FaultConfigError as error:
                status = 400
                return web.json_response({"error": str(error)}, status=400)
            if injection.latency_ms:
                latency_ms = injection.latency_ms
                fault = "latency"
                await asyncio.sleep(injection.latency_ms / 1000)
            if injection.kind == "reset":
                fault, status = "reset", None
                if request.transport is not None:
                    request.transport.abort()
                return web.Response(status=204)
            if injection.kind is not None:
                fault = injection.kind
                group = spec.group if spec else None
                policy = world.faults.limit_for(group) if group else None
                raise _injected_error(injection, group, policy)
            if spec is None:
                raise invalid_uri()
            session: OAuthSession | None = None
            refusal: PlatformError | None = None
            counter_key = "client:" + (basic_client_id(request) or str(request.remote))
            if spec.authenticated:
                try:
                    session = authenticate(request, world)
                except PlatformError as error:
                    # Still counted and still answered with the group's headers.
                    refusal = error
                    counter_key = f"anonymous:{request.remote}"
                else:
                    request[SESSION_KEY] = session
                    owner = session.owner_id
                    counter_key = owner
            decision = request.app[RATE_LIMITER_KEY].check(
                counter_key,
                spec.group,
                world.now(),
                enforce=world.enforce_rate_limits,
                policy=world.faults.limit_for(spec.group),
            )
            rate_headers = decision.headers()
            if decision.retry_after is not None:
                fault = "rateLimit"
                raise rate_exceeded(decision.retry_after)
            if refusal is not None:
                raise refusal
            if session is not None and spec.app_permission:
                if spec.app_permission not in session.scope:
                    raise app_permission_missing(spec.app_permission)
            response = await handler(request)
        except PlatformError as error:
            response = web.json_response(error.body, status=error.status, headers=error.headers)
        if world.capture_exchanges and isinstance(response, web.Response):
            await _capture(world, request, response)
        response.headers.update(rate_headers)
        # Every platform answer names its request (a uuid, as in real answers), the
        # errors above all: it is what RingCentral support asks for.
        response.headers.setdefault(REQUEST_ID_HEADER, str(uuid.uuid4()))
        status = response.status
        retry_after = _seconds_or_none(response.headers.get("Retry-After"))
        return response
    finally:
        world.request_log.append(
            RequestLogEntry(
                method=request.method,
                path=request.path,
                query=masked_query(request),
                status=status,
                group=spec.group.label if spec else None,
                token_owner=owner or request.get(LOG_OWNER_KEY),
                time=world.now(),
                arrived_at=arrived_at,
                arrived_monotonic=arrived_monotonic,
                fault=request.get(FAULT_KEY) or fault,
                latency_ms=latency_ms,
                retry_after=retry_after,
            )
        )


def _seconds_or_none(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
