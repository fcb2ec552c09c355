"""The authorization-code flow's browser step: the authorize page, approving as a chosen
user, and the code's bindings (client, exact redirect URI, PKCE) at the token endpoint."""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlsplit

from sandbox import defaults
from sandbox.world import World
from tests.conftest import load_fixture
from tests.sandbox.conftest import BASIC, SandboxClient

REDIRECT = "https://bot.example.com/oauth/ringsense/callback"


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def _register(client: SandboxClient, uri: str = REDIRECT) -> None:
    response = await client.post("/_sandbox/redirect-uris", json={"uri": uri})
    assert response.status == 200


async def _authorize(
    client: SandboxClient, verifier: str, state: str = "st-1", **overrides: str
) -> str:
    """Open the authorize page; the pending request id from its form."""
    params = {
        "response_type": "code",
        "client_id": defaults.CLIENT_ID,
        "redirect_uri": REDIRECT,
        "state": state,
        "code_challenge": _challenge(verifier),
        "code_challenge_method": "S256",
        **overrides,
    }
    response = await client.get("/restapi/oauth/authorize", params=params)
    page = await response.text()
    assert response.status == 200, page
    assert response.content_type == "text/html"
    marker = 'name="request_id" value="'
    start = page.index(marker) + len(marker)
    return page[start : page.index('"', start)]


async def _approve(client: SandboxClient, request_id: str, login: str) -> dict[str, list[str]]:
    response = await client.post(
        "/restapi/oauth/authorize",
        data={"request_id": request_id, "login": login, "decision": "approve"},
        allow_redirects=False,
    )
    assert response.status == 302, await response.text()
    location = response.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    return parse_qs(urlsplit(location).query)


async def _exchange(
    client: SandboxClient, code: str, verifier: str
) -> tuple[int, dict[str, object]]:
    response = await client.post(
        "/restapi/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
        headers={"Authorization": BASIC},
    )
    return response.status, await response.json()


async def test_approving_as_a_user_gives_a_code_that_pkce_turns_into_their_tokens(
    client: SandboxClient, world: World
) -> None:
    _, admin = world.add_account("Other Co")
    await _register(client)
    verifier = secrets.token_urlsafe(48)
    query = await _approve(client, await _authorize(client, verifier), admin.email)
    assert query["state"] == ["st-1"]
    status, token = await _exchange(client, query["code"][0], verifier)
    assert status == 200, token
    assert token["owner_id"] == admin.id
    assert token["refresh_token"]
    me = await client.get(
        "/restapi/v1.0/account/~/extension/~",
        headers={"Authorization": f"Bearer {token['access_token']}"},
    )
    assert (await me.json())["account"]["id"] == admin.account_id


async def test_a_wrong_verifier_is_refused_and_a_used_code_cannot_be_replayed(
    client: SandboxClient, world: World
) -> None:
    await _register(client)
    verifier = secrets.token_urlsafe(48)
    query = await _approve(
        client, await _authorize(client, verifier), defaults.SERVICE_USER_EXTENSION_ID
    )
    code = query["code"][0]
    status, body = await _exchange(client, code, secrets.token_urlsafe(48))
    assert status == 400
    assert body["error"] == "invalid_grant"
    # the right verifier works, once
    assert (await _exchange(client, code, verifier))[0] == 200
    status, body = await _exchange(client, code, verifier)
    assert status == 400
    assert body["error"] == "invalid_grant"


async def test_an_unregistered_redirect_uri_is_refused_with_oau_109_not_redirected(
    client: SandboxClient,
) -> None:
    response = await client.get(
        "/restapi/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": defaults.CLIENT_ID,
            "redirect_uri": REDIRECT,
            "state": "x",
        },
        allow_redirects=False,
    )
    assert response.status == 403
    assert await response.json() == load_fixture("oauth-error-redirect-mismatch-OAU-109.json")


async def test_an_unknown_client_and_a_bad_challenge_method_are_refused(
    client: SandboxClient,
) -> None:
    await _register(client)
    base = {"response_type": "code", "redirect_uri": REDIRECT, "state": "x"}
    unknown = await client.get(
        "/restapi/oauth/authorize", params={**base, "client_id": "someone-else"}
    )
    assert unknown.status == 400
    assert (await unknown.json())["error"] == "invalid_client"
    bad_method = await client.get(
        "/restapi/oauth/authorize",
        params={
            **base,
            "client_id": defaults.CLIENT_ID,
            "code_challenge": _challenge("v" * 50),
            "code_challenge_method": "MD5",
        },
    )
    assert bad_method.status == 400
    assert (await bad_method.json())["error"] == "invalid_request"


async def test_the_sign_in_form_works_once_and_deny_redirects_with_access_denied(
    client: SandboxClient,
) -> None:
    await _register(client)
    request_id = await _authorize(client, secrets.token_urlsafe(48), state="s-deny")
    denied = await client.post(
        "/restapi/oauth/authorize",
        data={"request_id": request_id, "login": "", "decision": "deny"},
        allow_redirects=False,
    )
    assert denied.status == 302
    query = parse_qs(urlsplit(denied.headers["Location"]).query)
    assert query["error"] == ["access_denied"]
    assert query["state"] == ["s-deny"]
    again = await client.post(
        "/restapi/oauth/authorize",
        data={
            "request_id": request_id,
            "login": defaults.SERVICE_USER_EXTENSION_ID,
            "decision": "approve",
        },
        allow_redirects=False,
    )
    assert again.status == 400


async def test_a_refresh_token_from_the_code_works_once(
    client: SandboxClient, world: World
) -> None:
    await _register(client)
    verifier = secrets.token_urlsafe(48)
    query = await _approve(
        client, await _authorize(client, verifier), defaults.SERVICE_USER_EXTENSION_ID
    )
    _, token = await _exchange(client, query["code"][0], verifier)
    form = {"grant_type": "refresh_token", "refresh_token": str(token["refresh_token"])}
    first = await client.post("/restapi/oauth/token", data=form, headers={"Authorization": BASIC})
    assert first.status == 200
    second = await client.post("/restapi/oauth/token", data=form, headers={"Authorization": BASIC})
    assert second.status == 400
    assert (await second.json())["error"] == "invalid_grant"
