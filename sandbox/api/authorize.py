"""`/restapi/oauth/authorize`: the authorization-code flow's browser step (API-FACTS A.1).

A person's browser arrives here with `response_type=code`, `client_id`, `redirect_uri`,
`state` and (PKCE) `code_challenge` / `code_challenge_method`. The real platform shows a
login and consent page; the sandbox shows a small form whose `login` field names the
user who signs in (extension id or email), so a test can "approve" as anyone it chose.
Approving redirects to `redirect_uri` with a one-time `code` (60 s) bound to the client,
that exact redirect URI and the code challenge; the token endpoint checks all three.

Strict where the real platform is: an unknown client or a redirect URI that is not
registered for the app is refused on the spot (never redirected to), with the OAuth error
bodies of the token endpoint (OAU-109 "Redirect URIs do not match").
"""

from __future__ import annotations

import html
import re
from urllib.parse import urlencode

from aiohttp import web

from sandbox.errors import oauth_error
from sandbox.platform import endpoint, world_of
from sandbox.ratelimit import RateGroup
from sandbox.world import AuthorizationRequest, Extension, World

routes = web.RouteTableDef()

AUTHORIZE_PATH = "/restapi/oauth/authorize"
REQUEST_TTL_S = 600
CODE_CHALLENGE_METHODS = ("S256", "plain")
# RFC 7636 4.2: 43 to 128 characters of [A-Za-z0-9-._~].
CODE_CHALLENGE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


def _query_value(request: web.Request, name: str) -> str | None:
    values = request.query.getall(name, [])
    if len(values) > 1:
        raise oauth_error(400, "invalid_request", "OAU-101", f"Parameter [{name}] is invalid")
    return values[0] if values else None


def _registered(world: World, redirect_uri: str) -> bool:
    return redirect_uri == world.oauth_redirect_uri or redirect_uri in world.app_redirect_uris


def _page(title: str, body: str, status: int = 200) -> web.Response:
    return web.Response(
        status=status,
        content_type="text/html",
        text=(
            f"<!doctype html><html><head><title>{html.escape(title)}</title></head>"
            f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
        ),
        headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"},
    )


def _redirect(redirect_uri: str, fields: dict[str, str]) -> web.Response:
    separator = "&" if "?" in redirect_uri else "?"
    return web.Response(
        status=302,
        headers={"Location": redirect_uri + separator + urlencode(fields)},
    )


@routes.get(AUTHORIZE_PATH)
@endpoint(RateGroup.LIGHT, authenticated=False)
async def authorize_page(request: web.Request) -> web.StreamResponse:
    """Check the request, then show the sign-in form (nothing is issued yet)."""
    world = world_of(request)
    client_id = _query_value(request, "client_id")
    if not client_id or client_id != world.app_client_id:
        raise oauth_error(400, "invalid_client", "OAU-146", "Invalid client credentials")
    redirect_uri = _query_value(request, "redirect_uri")
    if not redirect_uri or not _registered(world, redirect_uri):
        raise oauth_error(403, "invalid_grant", "OAU-109", "Redirect URIs do not match")
    state = _query_value(request, "state")
    if _query_value(request, "response_type") != "code":
        fields = {"error": "unsupported_response_type", "error_description": "Unsupported"}
        return _redirect(redirect_uri, {**fields, **({"state": state} if state else {})})
    challenge = _query_value(request, "code_challenge")
    method = _query_value(request, "code_challenge_method")
    if challenge is None and method is not None:
        raise oauth_error(
            400, "invalid_request", "OAU-101", "Parameter [code_challenge] is invalid"
        )
    if challenge is not None:
        method = method or "plain"
        if method not in CODE_CHALLENGE_METHODS:
            raise oauth_error(
                400, "invalid_request", "OAU-101", "Parameter [code_challenge_method] is invalid"
            )
        if not CODE_CHALLENGE.match(challenge):
            raise oauth_error(
                400, "invalid_request", "OAU-101", "Parameter [code_challenge] is invalid"
            )
    pending = AuthorizationRequest(
        id=world.new_token("sbx-authz"),
        client_id=client_id,
        redirect_uri=redirect_uri,
        state=state,
        code_challenge=challenge,
        code_challenge_method=method if challenge is not None else None,
        expires_at=world.now() + REQUEST_TTL_S,
    )
    world.authorization_requests[pending.id] = pending
    form = (
        f'<form method="post" action="{AUTHORIZE_PATH}">'
        f'<input type="hidden" name="request_id" value="{html.escape(pending.id)}">'
        '<label>Sign in as (extension id or email) <input name="login"></label>'
        '<button name="decision" value="approve">Authorize</button>'
        '<button name="decision" value="deny">Cancel</button>'
        "</form>"
    )
    return _page("Sign in to RingCentral", form)


def _signed_in_user(world: World, login: str) -> Extension | None:
    login = login.strip()
    found = world.extensions.get(login) or world.find_by_email(login)
    if found is None or found.type != "User" or found.status != "Enabled":
        return None
    return found


@routes.post(AUTHORIZE_PATH)
@endpoint(RateGroup.LIGHT, authenticated=False)
async def authorize_decision(request: web.Request) -> web.StreamResponse:
    """The sign-in form sent back: approve (a code) or deny (`access_denied`), once."""
    world = world_of(request)
    if request.content_type != "application/x-www-form-urlencoded":
        raise oauth_error(415, "invalid_request", "OAU-250", "Unsupported Media Type")
    form = await request.post()
    request_id = form.get("request_id")
    pending = (
        world.authorization_requests.pop(request_id, None) if isinstance(request_id, str) else None
    )
    if pending is None or pending.expires_at <= world.now():
        return _page(
            "This sign-in has expired",
            "<p>Start again from the application.</p>",
            status=400,
        )
    state = {"state": pending.state} if pending.state else {}
    if form.get("decision") != "approve":
        return _redirect(
            pending.redirect_uri,
            {"error": "access_denied", "error_description": "The user denied access", **state},
        )
    login = form.get("login")
    user = _signed_in_user(world, login) if isinstance(login, str) else None
    if user is None:
        return _page(
            "Sign-in failed",
            "<p>Unknown user. Start again from the application.</p>",
            status=401,
        )
    code = world.issue_authorization_code(
        user.id,
        pending.redirect_uri,
        client_id=pending.client_id,
        code_challenge=pending.code_challenge,
        code_challenge_method=pending.code_challenge_method,
    )
    return _redirect(pending.redirect_uri, {"code": code.code, **state})
