"""OAuth against the sandbox: the official SDK's JWT login and refresh, token rules."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from typing import Any

import pytest
from ringcentral import SDK  # type: ignore[import-untyped]
from ringcentral.http.api_exception import ApiException  # type: ignore[import-untyped]

from sandbox import defaults
from sandbox.runner import start_sandbox
from tests.conftest import load_fixture
from tests.sandbox.conftest import BASIC, SandboxClient, service_user_token

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
EXTENSION = "/restapi/v1.0/account/~/extension/~"


def _sdk_login_refresh_and_reuse(url: str) -> dict[str, Any]:
    """What a bot does with the SDK, synchronously (it uses `requests`)."""
    platform = SDK(defaults.CLIENT_ID, defaults.CLIENT_SECRET, url).platform()
    platform.login(jwt=defaults.SERVICE_USER_JWT)
    first = platform.auth().data()
    me = platform.get(EXTENSION).json_dict()
    platform.refresh()
    second = platform.auth().data()
    me_again = platform.get(EXTENSION).json_dict()
    platform.auth().set_data({"access_token": first["access_token"]})
    try:
        platform.get(EXTENSION)
        old_token_status = 200
    except ApiException as error:
        old_token_status = error.api_response().response().status_code
    return {
        "first": first,
        "second": second,
        "me": me,
        "me_again": me_again,
        "old_token_status": old_token_status,
    }


async def test_official_sdk_logs_in_with_jwt_refreshes_and_old_token_dies() -> None:
    sandbox = await start_sandbox()
    try:
        result = await asyncio.to_thread(_sdk_login_refresh_and_reuse, sandbox.url)
    finally:
        await sandbox.close()
    first, second = result["first"], result["second"]
    assert first["owner_id"] == defaults.SERVICE_USER_EXTENSION_ID
    assert first["token_type"] == "bearer"
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    assert result["me"]["id"] == int(defaults.SERVICE_USER_EXTENSION_ID)
    assert result["me_again"]["name"] == "Service User"
    assert result["old_token_status"] == 401


async def test_token_response_has_the_real_fields(client: SandboxClient) -> None:
    response = await client.post(
        "/restapi/oauth/token",
        data={"grant_type": JWT_GRANT, "assertion": defaults.SERVICE_USER_JWT},
        headers={"Authorization": BASIC},
    )
    body = await response.json()
    real = load_fixture("oauth-token-response.json")
    assert set(real) <= set(body)
    assert body["expires_in"] == 3600
    assert body["refresh_token_expires_in"] == 604800
    assert isinstance(body["owner_id"], str)
    assert body["session_id"]
    assert "RingSense" in body["scope"].split()
    assert response.headers["X-Rate-Limit-Group"] == "Auth"
    assert response.headers["X-Rate-Limit-Limit"] == "5"


@pytest.mark.parametrize(("asked", "granted"), [("60", 600), ("1800", 1800), ("99999", 3600)])
async def test_access_token_ttl_is_clamped(client: SandboxClient, asked: str, granted: int) -> None:
    response = await client.post(
        "/restapi/oauth/token",
        data={
            "grant_type": JWT_GRANT,
            "assertion": defaults.SERVICE_USER_JWT,
            "access_token_ttl": asked,
        },
        headers={"Authorization": BASIC},
    )
    assert (await response.json())["expires_in"] == granted


async def test_refresh_token_is_single_use(client: SandboxClient) -> None:
    login = await client.post(
        "/restapi/oauth/token",
        data={"grant_type": JWT_GRANT, "assertion": defaults.SERVICE_USER_JWT},
        headers={"Authorization": BASIC},
    )
    refresh_token = (await login.json())["refresh_token"]
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    first = await client.post("/restapi/oauth/token", data=form, headers={"Authorization": BASIC})
    assert first.status == 200
    again = await client.post("/restapi/oauth/token", data=form, headers={"Authorization": BASIC})
    body = await again.json()
    assert again.status == 400
    assert body["error"] == "invalid_grant"


async def test_expired_refresh_token_gives_oau_210(client: SandboxClient, world: Any) -> None:
    login = await client.post(
        "/restapi/oauth/token",
        data={"grant_type": JWT_GRANT, "assertion": defaults.SERVICE_USER_JWT},
        headers={"Authorization": BASIC},
    )
    refresh_token = (await login.json())["refresh_token"]
    world.advance(604800 + 1)
    response = await client.post(
        "/restapi/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        headers={"Authorization": BASIC},
    )
    assert response.status == 400
    assert await response.json() == load_fixture("oauth-error-token-expired-OAU-210.json")


async def test_missing_client_authentication_is_oau_123(client: SandboxClient) -> None:
    response = await client.post(
        "/restapi/oauth/token",
        data={"grant_type": JWT_GRANT, "assertion": defaults.SERVICE_USER_JWT},
    )
    assert response.status == 400
    assert await response.json() == load_fixture("oauth-error-invalid-client-OAU-123.json")


async def test_unknown_jwt_is_refused(client: SandboxClient) -> None:
    response = await client.post(
        "/restapi/oauth/token",
        data={"grant_type": JWT_GRANT, "assertion": "not-a-known-jwt"},
        headers={"Authorization": BASIC},
    )
    body = await response.json()
    assert response.status == 400
    assert body["error"] == "invalid_grant"
    assert body["errors"][0]["errorCode"].startswith("OAU-")


async def test_revoke_ends_the_session(client: SandboxClient) -> None:
    token = await service_user_token(client)
    revoke = await client.post(
        "/restapi/oauth/revoke", data={"token": token}, headers={"Authorization": BASIC}
    )
    assert revoke.status == 200
    after = await client.get(EXTENSION, headers={"Authorization": f"Bearer {token}"})
    assert after.status == 401


async def test_authorization_code_exchange_needs_the_exact_redirect_uri(
    client: SandboxClient,
) -> None:
    issued = await client.post(
        "/_sandbox/auth-codes",
        json={"extensionId": defaults.BOT_EXTENSION_ID, "redirectUri": "https://bot.example/oauth"},
    )
    code = (await issued.json())["code"]
    wrong = await client.post(
        "/restapi/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": "https://bot.example/oauth/",
        },
        headers={"Authorization": BASIC},
    )
    assert await wrong.json() == load_fixture("oauth-error-redirect-mismatch-OAU-109.json")
    right = await client.post(
        "/restapi/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": "https://bot.example/oauth",
        },
        headers={"Authorization": BASIC},
    )
    body = await right.json()
    assert right.status == 200
    # A bot's token is permanent: no refresh token, and it works.
    assert body["owner_id"] == defaults.BOT_EXTENSION_ID
    assert "refresh_token" not in body
    me = await client.get(EXTENSION, headers={"Authorization": f"Bearer {body['access_token']}"})
    assert (await me.json())["type"] == "Bot"
    reused = await client.post(
        "/restapi/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": "https://bot.example/oauth",
        },
        headers={"Authorization": BASIC},
    )
    assert reused.status == 400


async def test_pkce_verifier_is_checked(client: SandboxClient) -> None:
    verifier = "a-long-random-code-verifier-for-the-sandbox-test-1234567890"
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    issued = await client.post(
        "/_sandbox/auth-codes",
        json={
            "extensionId": defaults.SERVICE_USER_EXTENSION_ID,
            "redirectUri": "http://localhost/cb",
            "codeChallenge": challenge,
            "codeChallengeMethod": "S256",
        },
    )
    code = (await issued.json())["code"]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": "http://localhost/cb",
        "client_id": defaults.CLIENT_ID,
    }
    bad = await client.post("/restapi/oauth/token", data={**form, "code_verifier": "nope"})
    assert bad.status == 400
    good = await client.post("/restapi/oauth/token", data={**form, "code_verifier": verifier})
    assert good.status == 200
    assert (await good.json())["refresh_token"]


async def test_a_sixth_parallel_session_ends_the_oldest(client: SandboxClient, world: Any) -> None:
    """At most 5 parallel sessions per user and app: a client that logs in again and again
    (one login per job, say) finds its older tokens dead, as on the platform."""
    # Six logins at once would first meet the Auth group's 5 a minute (tested in
    # test_faults.py); the rate limits are off here so this checks the session cap alone.
    world.enforce_rate_limits = False
    tokens = [await service_user_token(client) for _ in range(6)]
    statuses = []
    for token in tokens:
        answer = await client.get(EXTENSION, headers={"Authorization": f"Bearer {token}"})
        statuses.append(answer.status)
    assert statuses == [401, 200, 200, 200, 200, 200]
