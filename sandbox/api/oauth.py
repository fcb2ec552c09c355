"""`/restapi/oauth/token` and `/restapi/oauth/revoke` (API-FACTS A.1, A.2).

Good enough for the official `ringcentral` SDK: it posts form data with Basic client
auth and trusts `expires_in` / `refresh_token_expires_in` to decide when to refresh.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from sandbox.errors import PlatformError, oauth_error
from sandbox.platform import LOG_OWNER_KEY, endpoint, json_response, world_of
from sandbox.ratelimit import RateGroup
from sandbox.world import PERMANENT_TOKEN_LIFETIME, OAuthSession, World

routes = web.RouteTableDef()

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
DEFAULT_ACCESS_TTL = 3600
MIN_ACCESS_TTL = 600
DEFAULT_REFRESH_TTL = 604800

Form = MultiDictProxy[Any]


def _client_auth_required() -> PlatformError:
    return oauth_error(400, "invalid_client", "OAU-123", "Client authentication is required")


def _invalid_client() -> PlatformError:
    return oauth_error(401, "invalid_client", "OAU-146", "Invalid client credentials")


def _authenticate_client(
    request: web.Request, world: World, form: Form, *, public_allowed: bool
) -> str:
    """The app's client id, from Basic auth or (public clients) from the body."""
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() == "basic":
        try:
            client_id, _, secret = (
                base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
            )
        except (binascii.Error, UnicodeDecodeError):
            raise _invalid_client() from None
        if not (
            hmac.compare_digest(client_id, world.app_client_id)
            and hmac.compare_digest(secret, world.app_client_secret)
        ):
            raise _invalid_client()
        return client_id
    body_client_id = form.get("client_id")
    if public_allowed and isinstance(body_client_id, str) and body_client_id:
        if body_client_id != world.app_client_id:
            raise _invalid_client()
        return body_client_id
    raise _client_auth_required()


def _ttl(form: Form, name: str, default: int, minimum: int) -> int:
    """Requested lifetimes are clamped into range rather than refused (DOCS)."""
    raw = form.get(name)
    if not isinstance(raw, str) or not raw.strip():
        return default
    try:
        value = int(raw)
    except ValueError:
        raise oauth_error(
            400, "invalid_request", "OAU-101", f"Parameter [{name}] is invalid"
        ) from None
    return max(minimum, min(default, value))


def _scope(world: World, form: Form) -> tuple[str, ...]:
    requested = form.get("scope")
    if not isinstance(requested, str) or not requested.strip():
        return world.app_scopes
    wanted = set(requested.split())
    narrowed = tuple(scope for scope in world.app_scopes if scope in wanted)
    if not narrowed:
        raise oauth_error(400, "invalid_scope", "OAU-151", "Invalid scope")
    return narrowed


def _token_response(session: OAuthSession, world: World) -> dict[str, Any]:
    now = world.now()
    body: dict[str, Any] = {"access_token": session.access_token, "token_type": "bearer"}
    if session.access_expires_at is None:
        body["expires_in"] = PERMANENT_TOKEN_LIFETIME
    else:
        body["expires_in"] = max(0, round(session.access_expires_at - now))
    if session.refresh_token is not None and session.refresh_expires_at is not None:
        body["refresh_token"] = session.refresh_token
        body["refresh_token_expires_in"] = max(0, round(session.refresh_expires_at - now))
    body.update(
        {
            "scope": " ".join(session.scope),
            "owner_id": session.owner_id,
            "endpoint_id": session.endpoint_id,
            "session_id": session.id,
        }
    )
    return body


def _pkce_ok(challenge: str, method: str | None, verifier: str | None) -> bool:
    if not verifier:
        return False
    if (method or "plain") == "S256":
        digest = hashlib.sha256(verifier.encode()).digest()
        computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        return hmac.compare_digest(computed, challenge)
    return hmac.compare_digest(verifier, challenge)


@routes.post("/restapi/oauth/token")
@endpoint(RateGroup.AUTH, authenticated=False)
async def get_token(request: web.Request) -> web.StreamResponse:
    world = world_of(request)
    if request.content_type != "application/x-www-form-urlencoded":
        raise oauth_error(415, "invalid_request", "OAU-250", "Unsupported Media Type")
    form = await request.post()
    grant = form.get("grant_type")
    if not isinstance(grant, str) or not grant:
        raise oauth_error(400, "invalid_request", "OAU-101", "Parameter [grant_type] is invalid")
    public_allowed = grant in ("refresh_token", "authorization_code")
    client_id = _authenticate_client(request, world, form, public_allowed=public_allowed)

    if grant == JWT_GRANT:
        assertion = form.get("assertion")
        owner_id = world.jwts.get(assertion) if isinstance(assertion, str) else None
        if owner_id is None or owner_id not in world.extensions:
            raise oauth_error(400, "invalid_grant", "OAU-140", "Invalid resource owner credentials")
        session = world.issue_session(
            owner_id,
            client_id=client_id,
            scope=_scope(world, form),
            access_ttl=_ttl(form, "access_token_ttl", DEFAULT_ACCESS_TTL, MIN_ACCESS_TTL),
            refresh_ttl=_ttl(form, "refresh_token_ttl", DEFAULT_REFRESH_TTL, 1),
        )
    elif grant == "refresh_token":
        refresh_token = form.get("refresh_token")
        found = world.refresh_tokens.get(refresh_token) if isinstance(refresh_token, str) else None
        if found is None or found.client_id != client_id:
            raise oauth_error(400, "invalid_grant", "OAU-211", "Token is revoked")
        if found.refresh_expires_at is not None and found.refresh_expires_at <= world.now():
            world.revoke_session(found)
            raise oauth_error(400, "invalid_grant", "OAU-210", "Token expired")
        found.access_ttl = _ttl(form, "access_token_ttl", DEFAULT_ACCESS_TTL, MIN_ACCESS_TTL)
        found.refresh_ttl = _ttl(form, "refresh_token_ttl", DEFAULT_REFRESH_TTL, 1)
        session = world.rotate_session(found)
    elif grant == "authorization_code":
        code_value = form.get("code")
        code = world.authorization_codes.get(code_value) if isinstance(code_value, str) else None
        if code is None or code.expires_at <= world.now() or code.client_id != client_id:
            raise oauth_error(400, "invalid_grant", "OAU-113", "Authorization code is invalid")
        if form.get("redirect_uri") != code.redirect_uri:
            raise oauth_error(403, "invalid_grant", "OAU-109", "Redirect URIs do not match")
        if code.code_challenge is not None:
            verifier = form.get("code_verifier")
            if not _pkce_ok(
                code.code_challenge,
                code.code_challenge_method,
                verifier if isinstance(verifier, str) else None,
            ):
                raise oauth_error(400, "invalid_grant", "OAU-113", "Code verifier is invalid")
        del world.authorization_codes[code.code]
        owner = world.extensions.get(code.owner_id)
        if owner is None:
            raise oauth_error(400, "invalid_grant", "OAU-113", "Authorization code is invalid")
        if owner.type == "Bot":
            # A public bot's install: the code stands for the bot's one permanent token.
            existing = world.permanent_session(owner.id)
            session = existing or world.issue_permanent_token(owner.id)
        else:
            session = world.issue_session(
                owner.id,
                client_id=client_id,
                scope=_scope(world, form),
                access_ttl=_ttl(form, "access_token_ttl", DEFAULT_ACCESS_TTL, MIN_ACCESS_TTL),
                refresh_ttl=_ttl(form, "refresh_token_ttl", DEFAULT_REFRESH_TTL, 1),
            )
    else:
        raise oauth_error(
            400, "unsupported_grant_type", "OAU-121", f"Unsupported grant type [{grant}]"
        )
    request[LOG_OWNER_KEY] = session.owner_id
    return json_response(_token_response(session, world))


@routes.post("/restapi/oauth/revoke")
@endpoint(RateGroup.AUTH, authenticated=False)
async def revoke_token(request: web.Request) -> web.StreamResponse:
    """Revokes the whole session the token belongs to; unknown tokens are not an error."""
    world = world_of(request)
    form = await request.post()
    _authenticate_client(request, world, form, public_allowed=True)
    token = form.get("token") or request.query.get("token")
    if isinstance(token, str) and token:
        session = world.access_tokens.get(token) or world.refresh_tokens.get(token)
        if session is not None:
            request[LOG_OWNER_KEY] = session.owner_id
            world.revoke_session(session)
    return web.Response(status=200)
