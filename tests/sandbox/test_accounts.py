"""Extension info, the permission check, and how requests without a valid token fail."""

from __future__ import annotations

from sandbox import defaults
from sandbox.world import World
from tests.conftest import load_fixture
from tests.sandbox.conftest import BOT_AUTH, SandboxClient

EXTENSION = "/restapi/v1.0/account/~/extension/~"
CHECK = EXTENSION + "/authz-profile/check?permissionId=ReadRingSenseInsights"


async def test_bot_reads_its_own_extension(client: SandboxClient) -> None:
    response = await client.get(EXTENSION, headers=BOT_AUTH)
    body = await response.json()
    assert response.status == 200
    assert body["id"] == int(defaults.BOT_EXTENSION_ID)
    assert body["type"] == "Bot"
    assert body["name"] == "RingSense Digest"
    assert body["status"] == "Enabled"
    assert body["account"]["id"] == defaults.ACCOUNT_ID
    assert body["uri"].endswith(f"/account/{defaults.ACCOUNT_ID}/extension/{body['id']}")
    assert response.headers["X-Rate-Limit-Group"] == "Light"


async def test_explicit_ids_work_like_tilde(
    client: SandboxClient, service_auth: dict[str, str]
) -> None:
    path = f"/restapi/v1.0/account/{defaults.ACCOUNT_ID}/extension/{defaults.BOT_EXTENSION_ID}"
    response = await client.get(path, headers=service_auth)
    body = await response.json()
    assert body["type"] == "Bot"
    assert body["contact"]["firstName"] == "RingSense"


async def test_unknown_extension_is_cmn_102(
    client: SandboxClient, service_auth: dict[str, str]
) -> None:
    response = await client.get("/restapi/v1.0/account/~/extension/1", headers=service_auth)
    body = await response.json()
    assert response.status == 404
    assert body["errors"][0]["errorCode"] == "CMN-102"


async def test_no_authorization_header_is_agw_401(client: SandboxClient) -> None:
    response = await client.get(EXTENSION)
    assert response.status == 401
    assert response.headers["X-Rate-Limit-Group"] == "Light"
    assert await response.json() == load_fixture(
        "error-401-missing-authorization-AGW-401.third-party-report.json"
    )


async def test_unknown_token_is_token_invalid(client: SandboxClient) -> None:
    response = await client.get(EXTENSION, headers={"Authorization": "Bearer made-up"})
    assert response.status == 401
    assert await response.json() == load_fixture(
        "error-401-token-invalid-OAU-149.third-party-report.json"
    )


async def test_expired_access_token_is_oau_128(
    client: SandboxClient, service_auth: dict[str, str], world: World
) -> None:
    world.advance(3601)
    response = await client.get(EXTENSION, headers=service_auth)
    body = await response.json()
    assert response.status == 401
    assert body["errors"][0]["errorCode"] == "OAU-128"


async def test_bot_token_never_expires(client: SandboxClient, world: World) -> None:
    world.advance(10 * 365 * 86400)
    response = await client.get(EXTENSION, headers=BOT_AUTH)
    assert response.status == 200


async def test_permission_check_matches_the_real_shape(
    client: SandboxClient, service_auth: dict[str, str]
) -> None:
    response = await client.get(CHECK, headers=service_auth)
    body = await response.json()
    real = load_fixture("authz-profile-check-ReadRingSenseInsights.json")
    assert body["successful"] is True
    assert set(body) == set(real)
    assert set(body["details"]) == set(real["details"])
    assert body["details"]["permission"]["id"] == "ReadRingSenseInsights"


async def test_bot_lacks_ringsense_permission(client: SandboxClient) -> None:
    body = await (await client.get(CHECK, headers=BOT_AUTH)).json()
    assert body["successful"] is False


async def test_bot_can_rename_itself(client: SandboxClient) -> None:
    response = await client.put(
        EXTENSION, json={"contact": {"firstName": "Digest"}}, headers=BOT_AUTH
    )
    assert response.status == 200
    me = await (await client.get(EXTENSION, headers=BOT_AUTH)).json()
    assert me["contact"]["firstName"] == "Digest"
