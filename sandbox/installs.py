"""Customer accounts, and installing and removing the bot in them (API-FACTS A.4, D.2).

Installing creates the bot extension (or reuses the account's existing one), issues its
permanent token and hands it to the app's OAuth redirect URI the way the platform does:
a private bot gets an HTTP POST carrying the token, a public bot an HTTP GET with a
one-time code it exchanges at `/restapi/oauth/token`. The bot usually calls back into
the sandbox while that request is open (reads `/extension/~`, subscribes), so the call
is made like any other outbound request and simply awaited.

Removing sends the extension `Delete` event to the bot's own subscriptions first, then
deletes the extension: its token answers OAU-232 and its subscriptions are gone.
"""

from __future__ import annotations

from typing import Any, Literal

import aiohttp
from aiohttp import web

from sandbox.control import (
    PREFIX,
    ControlError,
    extension_of,
    publish_events,
    read_body,
    user_json,
    world_in,
)
from sandbox.delivery import PlatformEvent
from sandbox.keys import HTTP_CLIENT_KEY
from sandbox.world import JSON, Account, Extension, World, iso

routes = web.RouteTableDef()

InstallMode = Literal["private", "public"]

REDIRECT_TIMEOUT_SECONDS = 30.0
"""How long the platform waits for the redirect URI. UNCONFIRMED: not documented; long
enough for a bot that reads its extension and subscribes before answering."""

DELETE_HINTS = ("ExtensionInfo",)
"""`hints` of the extension Delete event. UNCONFIRMED: the docs show `hints` only for
Create/Update (`ExtensionInfo`, fixture webhook-extension-info-update.json)."""


def _account_json(world: World, account: Account) -> JSON:
    return {
        "accountId": account.id,
        "name": account.name,
        "everyoneChatId": account.everyone_chat_id,
        "creationTime": iso(account.creation_time),
        "extensionIds": [e.id for e in world.extensions.values() if e.account_id == account.id],
    }


@routes.get(PREFIX + "/accounts")
async def list_accounts(request: web.Request) -> web.StreamResponse:
    world = world_in(request)
    return web.json_response([_account_json(world, a) for a in world.accounts.values()])


@routes.post(PREFIX + "/accounts")
async def create_account(request: web.Request) -> web.StreamResponse:
    """A new customer account with an admin user (answered with a `jwt` to log in as it)."""
    world = world_in(request)
    body = await read_body(request) if request.can_read_body else {}
    name = body.get("name", f"Customer {len(world.accounts) + 1}")
    if not isinstance(name, str) or not name.strip():
        raise ControlError(400, "name must be a non-empty string")
    account_id = body.get("accountId")
    if account_id is not None and not (isinstance(account_id, str) and account_id.isdigit()):
        raise ControlError(400, "accountId must be a string of digits")
    try:
        account, admin = world.add_account(
            name.strip(), account_id=account_id, admin_name=f"{name.strip()} Admin"
        )
    except ValueError as err:
        raise ControlError(409, str(err)) from None
    return web.json_response(
        {**_account_json(world, account), "admin": user_json(admin, jwt=world.issue_jwt(admin.id))},
        status=201,
    )


def _install_target(world: World, body: dict[str, Any]) -> tuple[str, InstallMode, Extension]:
    account_id = body.get("accountId", world.account_id)
    if not isinstance(account_id, str) or account_id not in world.accounts:
        raise ControlError(400, f"accountId: no account {account_id!r}")
    mode = body.get("mode", "private")
    if mode not in ("private", "public"):
        raise ControlError(400, "mode must be private or public")
    creator_id = body.get("creatorExtensionId")
    if creator_id is None:
        creator = world.admin_of(account_id)
        if creator is None:
            raise ControlError(400, f"account {account_id} has no admin to install the bot")
    else:
        creator = extension_of(world, creator_id, "creatorExtensionId")
        if creator.account_id != account_id:
            raise ControlError(400, "creatorExtensionId must be a user of that account")
    install_mode: InstallMode = "public" if mode == "public" else "private"
    return account_id, install_mode, creator


@routes.post(PREFIX + "/bots")
async def install_bot(request: web.Request) -> web.StreamResponse:
    """Install the app's bot in an account and call the app's OAuth redirect URI.

    An account that already has the bot gets the install handshake again with the same
    extension and token (a reinstall); otherwise a new bot extension is created, a
    member of the account's "All Employees" chat with its own personal chat. Those
    joins are not replayed to subscriptions the bot makes afterwards.
    """
    world = world_in(request)
    body = await read_body(request) if request.can_read_body else {}
    account_id, mode, creator = _install_target(world, body)
    redirect_uri = world.oauth_redirect_uri
    if redirect_uri is None:
        raise ControlError(
            409,
            "the app has no OAuth redirect URI: set oauthRedirectUri with "
            "POST /_sandbox/settings first (the install hands the bot its token there)",
        )
    existing = world.bots(account_id)
    if existing:
        bot = existing[0]
        bot.installed_at = world.now()
    else:
        bot = world.add_bot(account_id)
    session = world.permanent_session(bot.id) or world.issue_permanent_token(bot.id)
    status, error = await _call_redirect(
        request.app[HTTP_CLIENT_KEY], world, redirect_uri, mode, bot, creator, session.access_token
    )
    return web.json_response(
        {
            "extensionId": bot.id,
            "accountId": account_id,
            "token": session.access_token,
            "mode": mode,
            "creatorExtensionId": creator.id,
            "reinstalled": bool(existing),
            "redirectStatus": status,
            "redirectError": error,
        },
        status=200 if existing else 201,
    )


async def _call_redirect(
    http: aiohttp.ClientSession,
    world: World,
    redirect_uri: str,
    mode: InstallMode,
    bot: Extension,
    creator: Extension,
    token: str,
) -> tuple[int | None, str | None]:
    """The bot's answer status, or None and why the redirect URI could not be reached.

    Private: a form-encoded POST of `access_token, creator_extension_id,
    creator_account_id, client_id` (CHATBOT-JS documents the fields; the content type is
    UNCONFIRMED and follows CHATBOT-PY, which parses the body as a form). Public: a GET
    with `code, client_id, creator_account_id, creator_extension_id` (CHATBOT-JS,
    TRELLO), the code valid once, for 60 s, with exactly this redirect URI.
    """
    timeout = aiohttp.ClientTimeout(total=REDIRECT_TIMEOUT_SECONDS)
    creator_fields = {
        "creator_extension_id": creator.id,
        "creator_account_id": creator.account_id,
        "client_id": world.app_client_id,
    }
    try:
        if mode == "private":
            async with http.post(
                redirect_uri,
                data={"access_token": token, **creator_fields},
                timeout=timeout,
                allow_redirects=False,
            ) as response:
                await response.read()
                return response.status, None
        code = world.issue_authorization_code(bot.id, redirect_uri)
        async with http.get(
            redirect_uri,
            params={"code": code.code, **creator_fields},
            timeout=timeout,
            allow_redirects=False,
        ) as response:
            await response.read()
            return response.status, None
    except (TimeoutError, aiohttp.ClientError, ValueError) as failure:
        return None, f"{failure.__class__.__name__}: {failure}"


@routes.delete(PREFIX + "/bots/{extensionId}")
async def remove_bot(request: web.Request) -> web.StreamResponse:
    """Uninstall: the Delete event reaches the bot's subscriptions before anything else
    changes, then the extension, its token and its subscriptions are gone."""
    world = world_in(request)
    bot = world.extensions.get(request.match_info["extensionId"])
    if bot is None or bot.type != "Bot":
        raise ControlError(404, "no such bot")
    event = PlatformEvent(
        kind="extension",
        body={"extensionId": bot.id, "eventType": "Delete", "hints": list(DELETE_HINTS)},
        extension_id=bot.id,
        account_id=bot.account_id,
    )
    notifications = await publish_events(request, [event])
    world.delete_extension(bot.id)
    return web.json_response(
        {"extensionId": bot.id, "accountId": bot.account_id, "notifications": notifications}
    )
