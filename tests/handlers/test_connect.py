"""Connecting RingSense for another account: `connect` → one-time link → RingCentral's
authorize page (PKCE) → callback → that account's own reader and subscription; refusals,
replays, no cross-account read before connecting, and `disconnect`. Through the sandbox."""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
import pytest

from bot.app import INSTALLS
from handlers.connect import ADMINS_ONLY, NOT_CONNECTED
from tests.e2e import ADMIN_ID, Control, Stack, eventually, running_stack, settle

GLOBEX = "809640077"
"""The second customer's account id; `bot.admins` names its administrator by it."""

LINK = re.compile(r"(http://\S+/oauth/ringsense/start\?state=[\w\-]+)")


@pytest.fixture
async def stack(e2e_database: str) -> AsyncIterator[Stack]:
    """The usual stack (on each backend), with the second customer's administrator named
    by account and the RingSense callback registered as a redirect URI."""
    admins = {"bot": {"admins": [ADMIN_ID, f"{GLOBEX}:{ADMIN_ID}"]}}
    async with running_stack(e2e_database, overrides=admins) as running:
        await running.control.call(
            "POST",
            "/redirect-uris",
            {"uri": f"{running.config.public_url}/oauth/ringsense/callback"},
        )
        yield running


@dataclass
class OtherAccount:
    account_id: str
    bot_id: str
    admin: str
    admin_chat: str
    user: str
    user_chat: str


async def other_account(stack: Stack) -> OtherAccount:
    """A second customer with the bot installed: its admin (named in `bot.admins`) and a user,
    each in a direct chat with that account's bot."""
    control = stack.control
    account = await control.call("POST", "/accounts", {"name": "Globex", "accountId": GLOBEX})
    account_id = str(account["accountId"])
    installed = await control.install_bot(account_id)
    bot_id = str(installed["extensionId"])
    admin = await control.user("Gina Admin", accountId=account_id, extensionId=ADMIN_ID, admin=True)
    user = await control.user("Bea Other", accountId=account_id)
    return OtherAccount(
        account_id,
        bot_id,
        admin,
        await control.chat([admin, bot_id]),
        user,
        await control.chat([user, bot_id]),
    )


async def ask(stack: Stack, chat: str, person: str, bot_id: str, text: str) -> str:
    """Say something; the bot's newest text answer in that chat."""
    before = len(await stack.control.texts(chat, bot_id))
    await stack.control.say(chat, person, text)
    await settle(stack.bot)
    texts = await stack.control.texts(chat, bot_id)
    assert len(texts) > before, f"no answer to {text!r}"
    return texts[-1]


async def connect_link(stack: Stack, other: OtherAccount) -> str:
    answer = await ask(stack, other.admin_chat, other.admin, other.bot_id, "connect")
    found = LINK.search(answer)
    assert found, answer
    return found.group(1)


async def follow_to_authorize_page(http: aiohttp.ClientSession, link: str) -> tuple[str, str]:
    """Open the link like a browser: (the authorize URL it redirected to, the form's id)."""
    async with http.get(link, allow_redirects=False) as start:
        assert start.status == 302, await start.text()
        authorize_url = start.headers["Location"]
    return authorize_url, await open_authorize_page(http, authorize_url)


async def open_authorize_page(http: aiohttp.ClientSession, authorize_url: str) -> str:
    async with http.get(authorize_url) as page:
        html = await page.text()
        assert page.status == 200, html
    marker = 'name="request_id" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


async def approve(
    http: aiohttp.ClientSession, sandbox_url: str, request_id: str, login: str
) -> str:
    """Sign in and approve on the sandbox's page: the callback URL it redirects to."""
    async with http.post(
        f"{sandbox_url}/restapi/oauth/authorize",
        data={"request_id": request_id, "login": login, "decision": "approve"},
        allow_redirects=False,
    ) as response:
        assert response.status == 302, await response.text()
        return response.headers["Location"]


async def get(http: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with http.get(url, allow_redirects=False) as response:
        return response.status, await response.text()


async def connect_as(stack: Stack, other: OtherAccount, login: str) -> tuple[int, str, str]:
    """The whole browser part; (callback status, callback page, the link)."""
    link = await connect_link(stack, other)
    http = stack.control.session
    _, request_id = await follow_to_authorize_page(http, link)
    callback = await approve(http, stack.sandbox.url, request_id, login)
    status, page = await get(http, callback)
    await settle(stack.bot)
    return status, page, link


async def ringsense_subscriptions(control: Control, owner: str) -> list[Mapping[str, Any]]:
    subscriptions = await control.call("GET", "/subscriptions")
    return [
        s
        for s in subscriptions
        if str(s["ownerId"]) == owner and any("/ai/ringsense/" in f for f in s["eventFilters"])
    ]


async def sessions_of(stack: Stack, extension_id: str) -> int:
    world = stack.sandbox.world
    return sum(1 for s in world.sessions.values() if s.owner_id == extension_id)


async def test_an_admin_connects_their_account_and_its_calls_are_read_as_their_user(
    stack: Stack,
) -> None:
    other = await other_account(stack)
    control = stack.control
    await ask(stack, other.user_chat, other.user, other.bot_id, "optin")

    # Before: plain words, no digest, and nothing of theirs read with another identity.
    await control.call("DELETE", "/requests")
    early = await control.call("POST", "/calls", {"ownerExtensionId": other.user})
    await settle(stack.bot)
    assert await control.cards(other.user_chat) == []
    reply = await ask(
        stack, other.user_chat, other.user, other.bot_id, f"insights {early['sourceRecordId']}"
    )
    assert reply == NOT_CONNECTED
    assert await ask(stack, other.user_chat, other.user, other.bot_id, "last") == NOT_CONNECTED
    ringsense_reads = [r for r in await control.requests() if "/ai/ringsense/" in r["path"]]
    assert ringsense_reads == []

    status, page, link = await connect_as(stack, other, other.admin)
    assert status == 200, page
    assert "RingSense is connected" in page
    told = await control.texts(other.admin_chat, other.bot_id)
    assert "RingSense is connected for your company" in told[-1]
    # the link and the callback work once
    assert (await get(control.session, link))[0] == 400

    await eventually(lambda: ringsense_subscriptions(control, other.admin))
    call = await control.call("POST", "/calls", {"ownerExtensionId": other.user})
    await settle(stack.bot)
    [digest] = await control.cards(other.user_chat)
    assert digest["card"]["type"] == "AdaptiveCard"
    reads = [r for r in await control.requests() if "/ai/ringsense/" in r["path"]]
    assert reads and {r["tokenOwner"] for r in reads} == {other.admin}

    await control.say(other.user_chat, other.user, f"insights {call['sourceRecordId']}")
    await settle(stack.bot)
    assert len(await control.cards(other.user_chat)) == 2
    status_text = await ask(stack, other.admin_chat, other.admin, other.bot_id, "status")
    assert f"connected (as extension {other.admin})" in status_text


async def test_disconnect_revokes_forgets_and_unsubscribes(stack: Stack) -> None:
    other = await other_account(stack)
    control = stack.control
    status, page, _ = await connect_as(stack, other, other.admin)
    assert status == 200, page
    await eventually(lambda: ringsense_subscriptions(control, other.admin))
    assert await sessions_of(stack, other.admin) == 1

    reply = await ask(stack, other.user_chat, other.user, other.bot_id, "disconnect")
    assert reply == ADMINS_ONLY
    reply = await ask(stack, other.admin_chat, other.admin, other.bot_id, "disconnect")
    assert "RingSense is disconnected" in reply
    assert await ringsense_subscriptions(control, other.admin) == []
    assert await sessions_of(stack, other.admin) == 0
    await ask(stack, other.user_chat, other.user, other.bot_id, "optin")
    await control.call("POST", "/calls", {"ownerExtensionId": other.user})
    await settle(stack.bot)
    assert await control.cards(other.user_chat) == []
    assert await ask(stack, other.user_chat, other.user, other.bot_id, "last") == NOT_CONNECTED
    status_text = await ask(stack, other.admin_chat, other.admin, other.bot_id, "status")
    assert "not connected" in status_text


async def test_only_an_admin_in_a_direct_chat_gets_a_link(stack: Stack) -> None:
    other = await other_account(stack)
    control = stack.control
    assert await ask(stack, other.user_chat, other.user, other.bot_id, "connect") == ADMINS_ONLY
    group = await control.chat([other.admin, other.user, other.bot_id], "Group", name="Ops")
    reply = await ask(
        stack, group, other.admin, other.bot_id, f"![:Person]({other.bot_id}) connect"
    )
    assert "direct message" in reply
    assert not LINK.search(reply)
    # a home-account user who is not an administrator
    home_admin = await control.user("Hal Home")
    home_chat = await control.chat([home_admin, stack.bot_id])
    reply = await ask(stack, home_chat, home_admin, stack.bot_id, "connect")
    assert reply == ADMINS_ONLY


async def test_a_user_without_the_ringsense_permission_is_refused_and_revoked(
    stack: Stack,
) -> None:
    other = await other_account(stack)
    plain = await stack.control.user(
        "Pat Plain", accountId=other.account_id, permissions=["ReadCallLog"]
    )
    status, page, _ = await connect_as(stack, other, plain)
    assert status == 400
    assert "does not hold" in page
    told = (await stack.control.texts(other.admin_chat, other.bot_id))[-1]
    assert "RingSense was not connected" in told and "ReadRingSenseInsights" in told
    assert await sessions_of(stack, plain) == 0
    assert await ringsense_subscriptions(stack.control, plain) == []
    reply = await ask(stack, other.user_chat, other.user, other.bot_id, "insights 12345678")
    assert reply == NOT_CONNECTED


async def test_a_user_of_another_account_is_refused(stack: Stack) -> None:
    other = await other_account(stack)
    from sandbox import defaults

    status, page, _ = await connect_as(stack, other, defaults.SERVICE_USER_EXTENSION_ID)
    assert status == 400
    assert "another RingCentral account" in page
    assert await ringsense_subscriptions(stack.control, defaults.SERVICE_USER_EXTENSION_ID) != []
    # (that one is the home account's own subscription; nothing was added for Globex)
    reply = await ask(stack, other.user_chat, other.user, other.bot_id, "insights 12345678")
    assert reply == NOT_CONNECTED


async def test_a_forged_state_and_a_code_bound_to_another_challenge_are_refused(
    stack: Stack,
) -> None:
    other = await other_account(stack)
    http = stack.control.session
    base = stack.config.public_url
    # a state the bot never issued
    status, _ = await get(
        http, f"{base}/oauth/ringsense/callback?" + urlencode({"code": "x", "state": "s" * 43})
    )
    assert status == 400
    # a callback before its link was opened is refused too
    link = await connect_link(stack, other)
    state = parse_qs(urlsplit(link).query)["state"][0]
    status, _ = await get(
        http, f"{base}/oauth/ringsense/callback?" + urlencode({"code": "x", "state": state})
    )
    assert status == 400
    # An attacker who learns a live state but not the verifier: their own challenge.
    link = await connect_link(stack, other)
    authorize_url, _ = await follow_to_authorize_page(http, link)
    query = parse_qs(urlsplit(authorize_url).query)
    forged = {k: v[0] for k, v in query.items()}
    forged["code_challenge"] = secrets.token_urlsafe(40)[:43]
    request_id = await open_authorize_page(
        http, authorize_url.split("?", 1)[0] + "?" + urlencode(forged)
    )
    callback = await approve(http, stack.sandbox.url, request_id, other.admin)
    status, page = await get(http, callback)
    await settle(stack.bot)
    assert status == 400
    assert "did not accept" in page
    assert await ringsense_subscriptions(stack.control, other.admin) == []
    # the callback cannot be replayed either
    assert (await get(http, callback))[0] == 400


async def test_the_refresh_token_is_kept_encrypted_refreshed_once_and_survives_a_restart(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    import asyncio
    import logging

    from bot.app import SERVICES

    caplog.set_level(logging.DEBUG)
    other = await other_account(stack)
    control = stack.control
    status, page, _ = await connect_as(stack, other, other.admin)
    assert status == 200, page
    await eventually(lambda: ringsense_subscriptions(control, other.admin))
    world = stack.sandbox.world

    def refresh_tokens() -> list[str]:
        return [str(s.refresh_token) for s in world.sessions.values() if s.owner_id == other.admin]

    [first] = refresh_tokens()
    # RingCentral's clock passes the access token's hour: the next reads get 401 at once.
    world.advance(3700)
    await control.call("DELETE", "/requests")
    call = await control.call("POST", "/calls", {"ownerExtensionId": other.admin})
    reader = stack.bot.app[SERVICES].ringsense_readers[other.account_id].api
    records = await asyncio.gather(
        *(reader.get_record_insights("pbx", str(call["sourceRecordId"])) for _ in range(3))
    )
    assert {r["sourceRecordId"] for r in records} == {call["sourceRecordId"]}
    refreshes = [r for r in await control.requests() if r["path"] == "/restapi/oauth/token"]
    assert len(refreshes) == 1
    [second] = refresh_tokens()
    assert second != first

    await stack.restart_bot()
    await eventually(lambda: ringsense_subscriptions(control, other.admin))
    await ask(stack, other.user_chat, other.user, other.bot_id, "optin")
    await control.call("POST", "/calls", {"ownerExtensionId": other.user})
    await settle(stack.bot)
    assert len(await control.cards(other.user_chat)) == 1
    [current] = refresh_tokens()
    stored = await stack.everything_stored()
    assert "ringsense_connections" in stored
    for token in {first, second, current}:
        assert token not in stored
        assert token not in caplog.text
    assert len(await ringsense_subscriptions(control, other.admin)) == 1


async def test_a_refresh_token_ringcentral_refuses_drops_the_connection(stack: Stack) -> None:
    other = await other_account(stack)
    control = stack.control
    status, page, _ = await connect_as(stack, other, other.admin)
    assert status == 200, page
    await eventually(lambda: ringsense_subscriptions(control, other.admin))
    world = stack.sandbox.world
    # Someone revokes the sign-in at RingCentral (the whole session: API-FACTS A.2).
    for session in [s for s in world.sessions.values() if s.owner_id == other.admin]:
        world.revoke_session(session)
    reply = await ask(stack, other.user_chat, other.user, other.bot_id, "insights 12345678")
    assert "Sorry" in reply
    assert await ask(stack, other.user_chat, other.user, other.bot_id, "last") == NOT_CONNECTED
    status_text = await ask(stack, other.admin_chat, other.admin, other.bot_id, "status")
    assert "not connected" in status_text


async def connected_then_uninstalled(stack: Stack) -> OtherAccount:
    """Another account whose admin connected RingSense, then removed the bot."""
    other = await other_account(stack)
    status, page, _ = await connect_as(stack, other, other.admin)
    assert status == 200, page
    await eventually(lambda: ringsense_subscriptions(stack.control, other.admin))
    await stack.control.call("DELETE", f"/bots/{other.bot_id}")
    return other


async def test_uninstalling_the_bot_disconnects_that_accounts_ringsense(stack: Stack) -> None:
    other = await connected_then_uninstalled(stack)
    control = stack.control

    async def gone() -> bool:
        await settle(stack.bot)
        return (
            await ringsense_subscriptions(control, other.admin) == []
            and await sessions_of(stack, other.admin) == 0
        )

    await eventually(gone)


async def test_a_bot_removed_twice_at_once_still_deletes_its_ringsense_subscription(
    stack: Stack,
) -> None:
    """The uninstall event and a 401 on the bot's own token both remove the bot, often at
    the same moment: the second must not revoke the RingSense token while the first is
    still deleting the subscription with it (the subscription would be left behind)."""
    other = await connected_then_uninstalled(stack)
    installs = stack.bot.app[INSTALLS]
    await asyncio.gather(*(installs.remove(other.bot_id) for _ in range(3)))
    await settle(stack.bot)
    assert await ringsense_subscriptions(stack.control, other.admin) == []
    assert await sessions_of(stack, other.admin) == 0
