"""Issue 8 items 1-4: who may see a call holds across accounts, chats and forged input.

Two accounts have the bot installed: the home account (the service user's, whose RingSense
the bot reads) and "Globex". The call in most tests is a home-account call whose RingSense
record names a Globex person as a speaker *without* an accountId, the shape that used to
entitle them.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from bot.access import NOT_VISIBLE
from bot.app import SERVICES
from bot.cards import card_as_text
from handlers.connect import NOT_CONNECTED
from sandbox import defaults
from tests.conftest import load_fixture
from tests.e2e import Stack, settle

HOME_ACCOUNT = defaults.ACCOUNT_ID


@dataclass
class TwoAccounts:
    owner: str
    colleague: str
    globex_bot: str
    globex_account: str
    globex_user: str
    call: dict[str, Any]
    title: str


async def two_accounts(stack: Stack) -> TwoAccounts:
    control = stack.control
    account = await control.call("POST", "/accounts", {"name": "Globex"})
    installed = await control.install_bot(account["accountId"])
    owner = await control.user("Olivia Owner")
    colleague = await control.user("Paul Participant")
    globex_user = await control.user("Gus Globex", accountId=account["accountId"])
    event = copy.deepcopy(load_fixture("ringsense-event-pbx.json"))
    body = event["body"]
    body["ownerExtensionId"] = owner
    body["title"] = "Call from Olivia Owner to Gus Globex"
    body["speakerInfo"] = [
        {
            "speakerId": "p-1",
            "name": "Olivia Owner",
            "accountId": HOME_ACCOUNT,
            "extensionId": owner,
        },
        # RingSense did not say which account this extension is in
        {"speakerId": "p-2", "name": "Gus Globex", "accountId": None, "extensionId": globex_user},
        {"speakerId": "p-3", "name": "Paul", "accountId": HOME_ACCOUNT, "extensionId": colleague},
    ]
    for line in body["insights"]["Transcript"]:
        line["speakerId"] = "p-1"
    for step in body["insights"]["NextSteps"]:
        step["speakerId"] = "p-1"
    body["sourceRecordId"] = "2728084990001"
    body["sourceSessionId"] = "s-two-accounts-1"
    event["uuid"] = str(uuid.uuid4())
    call = await control.call("POST", "/calls", {"event": event})
    await settle(stack.bot)
    return TwoAccounts(
        owner,
        colleague,
        str(installed["extensionId"]),
        str(account["accountId"]),
        globex_user,
        call,
        body["title"],
    )


async def ask(stack: Stack, chat_id: str, person: str, text: str, *, mention: str = "") -> None:
    prefix = f"![:Person]({mention}) " if mention else ""
    await stack.control.say(chat_id, person, prefix + text)
    await settle(stack.bot)


async def card_texts(stack: Stack, chat_id: str) -> list[str]:
    texts = [card_as_text(p["card"]) for p in await stack.control.cards(chat_id)]
    return [t for t in texts if not t.startswith("Hi, I'm")]


async def press(
    stack: Stack,
    *,
    user: str,
    account: str,
    chat_id: str,
    data: dict[str, str],
    card_id: str = "1",
) -> dict[str, Any]:
    """A button press as RingCentral delivers it (signed with the app's shared secret)."""
    body = json.dumps(
        {
            "uuid": str(uuid.uuid4()),
            "type": "button_submit",
            "user": {"id": user, "extId": user, "accountId": account},
            "conversation": {"id": chat_id, "type": "Direct"},
            "card": {"id": card_id},
            "bot": {"id": stack.bot_id},
            "data": data,
        },
        separators=(",", ":"),
    ).encode()
    signature = hmac.new(defaults.SHARED_SECRET.encode(), body, hashlib.sha1).hexdigest()
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{stack.bot.url}/webhooks/interactive",
            data=body,
            headers={"Content-Type": "application/json", "X-Glip-Signature": signature},
        ) as response,
    ):
        assert response.status == 200
        answer: dict[str, Any] = json.loads(await response.read() or b"{}")
    await settle(stack.bot)
    return answer


async def notify(stack: Stack, event: str, body: dict[str, Any], owner_id: str) -> None:
    """A notification sent straight to the bot with the right Verification-Token, as anyone
    who learned the token could."""
    payload = {
        "uuid": str(uuid.uuid4()),
        "event": event,
        "timestamp": "2026-11-30T12:00:00.000Z",
        "subscriptionId": "forged",
        "ownerId": owner_id,
        "body": body,
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            stack.config.webhook_address,
            json=payload,
            headers={"Verification-Token": stack.config.verification_token},
        ) as response,
    ):
        assert response.status == 200
    await settle(stack.bot)


def forged_post(
    chat_id: str, creator: str, text: str, post_id: str = "999999001"
) -> dict[str, Any]:
    return {
        "id": post_id,
        "groupId": chat_id,
        "type": "TextMessage",
        "text": text,
        "creatorId": creator,
        "mentions": None,
        "eventType": "PostAdded",
    }


# -- 1. across accounts -------------------------------------------------------------------


@pytest.mark.parametrize("reference", ["record", "session"])
async def test_a_person_of_another_account_gets_nothing_through_their_own_bot(
    stack: Stack, reference: str
) -> None:
    world = await two_accounts(stack)
    dm = await stack.control.chat([world.globex_user, world.globex_bot])
    ref = world.call["sourceRecordId"] if reference == "record" else world.call["sourceSessionId"]
    await ask(stack, dm, world.globex_user, f"insights {ref}")
    await ask(stack, dm, world.globex_user, "insights 2728084999999")  # no such call
    await ask(stack, dm, world.globex_user, "last")
    texts = await card_texts(stack, dm)
    assert not any(world.title in t for t in texts)
    replies = await stack.control.texts(dm, world.globex_bot)
    # Globex has not connected its own RingSense reader: its people hear so, the same
    # whether the call exists or not, and nothing is read through the home account.
    assert replies[:3] == [NOT_CONNECTED, NOT_CONNECTED, NOT_CONNECTED]


async def test_a_person_of_another_account_gets_nothing_through_the_home_bot(
    stack: Stack,
) -> None:
    """A guest from Globex in a chat with the home account's bot."""
    world = await two_accounts(stack)
    group = await stack.control.chat(
        sorted([world.globex_user, world.owner, stack.bot_id]), "Group", name="Partners"
    )
    await ask(stack, group, world.globex_user, "last", mention=stack.bot_id)
    await ask(
        stack,
        group,
        world.globex_user,
        f"insights {world.call['sourceRecordId']}",
        mention=stack.bot_id,
    )
    everywhere = [
        *await card_texts(stack, group),
        *await card_texts(stack, await stack.control.chat([world.globex_user, stack.bot_id])),
    ]
    assert not any(world.title in t for t in everywhere)
    assert NOT_VISIBLE in await stack.control.texts(group, stack.bot_id)


async def test_in_a_chat_with_both_accounts_the_owner_gets_the_answer_privately(
    stack: Stack,
) -> None:
    world = await two_accounts(stack)
    group = await stack.control.chat(
        sorted([world.globex_user, world.owner, stack.bot_id]), "Group", name="Partners"
    )
    await ask(
        stack, group, world.owner, f"insights {world.call['sourceRecordId']}", mention=stack.bot_id
    )
    await ask(stack, group, world.owner, "last", mention=stack.bot_id)
    assert await card_texts(stack, group) == []
    dm = await stack.control.chat([world.owner, stack.bot_id])
    assert sum(world.title in t for t in await card_texts(stack, dm)) == 2


async def test_a_colleague_of_the_same_account_on_the_call_still_sees_it(stack: Stack) -> None:
    world = await two_accounts(stack)
    dm = await stack.control.chat([world.colleague, stack.bot_id])
    await ask(stack, dm, world.colleague, f"insights {world.call['sourceRecordId']}")
    assert world.title in (await card_texts(stack, dm))[0]


async def test_buttons_pressed_by_a_person_of_another_account_are_refused(
    stack: Stack,
) -> None:
    world = await two_accounts(stack)
    key = f"pbx:{world.call['sourceRecordId']}"
    dm = await stack.control.chat([world.globex_user, world.globex_bot])
    for data in (
        {"action": "digest.open", "callKey": key},
        {"action": "digest.transcript", "callKey": key},
        {"action": "digest.feedback", "callKey": key, "verdict": "helpful"},
    ):
        answer = await press(
            stack, user=world.globex_user, account=world.globex_account, chat_id=dm, data=data
        )
        assert NOT_VISIBLE in json.dumps(answer), data
    assert await card_texts(stack, dm) == []
    assert await stack.bot.app[SERVICES].storage.feedback_for(key) == {}


# -- 4. feedback ----------------------------------------------------------------------------


async def test_feedback_from_a_colleague_who_was_not_on_the_call_is_refused(
    stack: Stack,
) -> None:
    world = await two_accounts(stack)
    bystander = await stack.control.user("Betty Bystander")
    dm = await stack.control.chat([bystander, stack.bot_id])
    key = f"pbx:{world.call['sourceRecordId']}"
    answer = await press(
        stack,
        user=bystander,
        account=HOME_ACCOUNT,
        chat_id=dm,
        data={"action": "digest.feedback", "callKey": key, "verdict": "not_helpful"},
    )
    assert NOT_VISIBLE in json.dumps(answer)
    # exactly as for a call that does not exist
    unknown = await press(
        stack,
        user=bystander,
        account=HOME_ACCOUNT,
        chat_id=dm,
        data={"action": "digest.feedback", "callKey": "pbx:1", "verdict": "not_helpful"},
    )
    assert json.dumps(unknown) == json.dumps(answer)
    assert await stack.bot.app[SERVICES].storage.feedback_for(key) == {}


# -- 2. a chat the owner left ---------------------------------------------------------------


async def test_a_chat_the_owner_left_gets_no_more_digests_and_the_owner_is_told_once(
    stack: Stack,
) -> None:
    control = stack.control
    owner = await control.user("Olivia Owner")
    mate = await control.user("Mo Mate")
    group = await control.chat([owner, mate, stack.bot_id], "Group", name="Sales floor")
    dm = await control.chat([owner, stack.bot_id])
    await ask(stack, dm, owner, "optin")
    await ask(stack, group, owner, "channel add", mention=stack.bot_id)
    assert any("also come here" in t for t in await control.texts(group, stack.bot_id))
    await control.call("POST", f"/chats/{group}/members", {"remove": [owner]})
    internal_call = {"ownerExtensionId": owner, "participants": [mate]}
    await control.call("POST", "/calls", internal_call)
    await settle(stack.bot)
    await control.call("POST", "/calls", internal_call)
    await settle(stack.bot)

    assert await card_texts(stack, group) == []
    assert len(await card_texts(stack, dm)) == 2  # the direct messages still come
    texts = await control.texts(dm, stack.bot_id)
    notices = [t for t in texts if "You left a group chat" in t]
    assert len(notices) == 1, texts
    settings = await stack.bot.app[SERVICES].storage.user_settings(owner)
    assert settings.channels == ()


@pytest.mark.parametrize("with_globex", [True, False])
async def test_a_channel_with_people_of_another_account_gets_no_digest(
    stack: Stack, with_globex: bool
) -> None:
    world = await two_accounts(stack)
    members = [world.owner, world.colleague, stack.bot_id]
    if with_globex:
        members.append(world.globex_user)
    group = await stack.control.chat(sorted(members), "Group", name="Partners")
    dm = await stack.control.chat([world.owner, stack.bot_id])
    await ask(stack, dm, world.owner, "optin")
    await ask(stack, group, world.owner, "channel add", mention=stack.bot_id)
    internal_call = {"ownerExtensionId": world.owner, "participants": [world.colleague]}
    await stack.control.call("POST", "/calls", internal_call)
    await settle(stack.bot)
    assert len(await card_texts(stack, dm)) == 1
    assert len(await card_texts(stack, group)) == (0 if with_globex else 1)


# -- 3. forged notifications ------------------------------------------------------------------


async def test_a_forged_channel_add_changes_nothing_and_posts_nothing(stack: Stack) -> None:
    """Someone with the Verification-Token makes Olivia 'say' channel add in a chat she is
    not in: her digests must not go there."""
    control = stack.control
    owner = await control.user("Olivia Owner")
    mallory = await control.user("Mallory")
    dm = await control.chat([owner, stack.bot_id])
    await ask(stack, dm, owner, "optin")
    spy_room = await control.chat([mallory, stack.bot_id, await control.user("Eve")], "Group")
    text = f"![:Person]({stack.bot_id}) channel add"
    post = forged_post(spy_room, owner, text)
    post["mentions"] = [{"id": stack.bot_id, "type": "Person", "name": "bot"}]
    await notify(stack, "/team-messaging/v1/posts", post, stack.bot_id)
    await control.call("POST", "/calls", {"ownerExtensionId": owner})
    await settle(stack.bot)

    settings = await stack.bot.app[SERVICES].storage.user_settings(owner)
    assert settings.channels == ()
    assert await card_texts(stack, spy_room) == []  # the welcome card aside
    assert await control.texts(spy_room, stack.bot_id) == []
    assert len(await card_texts(stack, dm)) == 1


async def test_a_forged_optout_in_a_real_direct_chat_is_ignored(stack: Stack) -> None:
    control = stack.control
    owner = await control.user("Olivia Owner")
    dm = await control.chat([owner, stack.bot_id])
    await ask(stack, dm, owner, "optin")
    await notify(stack, "/team-messaging/v1/posts", forged_post(dm, owner, "optout"), stack.bot_id)
    settings = await stack.bot.app[SERVICES].storage.user_settings(owner)
    assert settings.opted_in
    assert not any("no more digests" in t for t in await control.texts(dm, stack.bot_id))


async def test_a_real_optout_still_works(stack: Stack) -> None:
    control = stack.control
    owner = await control.user("Olivia Owner")
    dm = await control.chat([owner, stack.bot_id])
    await ask(stack, dm, owner, "optin")
    await ask(stack, dm, owner, "optout")
    assert not (await stack.bot.app[SERVICES].storage.user_settings(owner)).opted_in


async def test_a_settings_save_from_outside_the_cards_chat_is_ignored(stack: Stack) -> None:
    control = stack.control
    owner = await control.user("Olivia Owner")
    mallory = await control.user("Mallory")
    dm = await control.chat([owner, stack.bot_id])
    await ask(stack, dm, owner, "optin")
    mallory_dm = await control.chat([mallory, stack.bot_id])
    # a press claiming to be Olivia's, in a chat she is not in
    await press(
        stack,
        user=owner,
        account=HOME_ACCOUNT,
        chat_id=mallory_dm,
        data={"action": "settings.save", "optedIn": "false", "directMessages": "false"},
    )
    settings = await stack.bot.app[SERVICES].storage.user_settings(owner)
    assert settings.opted_in and settings.direct_messages


async def test_a_forged_ringsense_event_posts_nothing(stack: Stack) -> None:
    control = stack.control
    owner = await control.user("Olivia Owner")
    dm = await control.chat([owner, stack.bot_id])
    await ask(stack, dm, owner, "optin")
    body = copy.deepcopy(load_fixture("ringsense-event-pbx.json")["body"])
    body["ownerExtensionId"] = owner
    body["sourceRecordId"] = "2728084999123"  # RingSense has no such record
    body["title"] = "Click here: totally real call"
    await notify(
        stack,
        f"/ai/ringsense/v1/public/accounts/{HOME_ACCOUNT}/domains/pbx/insights",
        body,
        defaults.SERVICE_USER_EXTENSION_ID,
    )
    assert await card_texts(stack, dm) == []


async def test_a_ringsense_event_shows_what_the_api_says_not_what_the_body_says(
    stack: Stack,
) -> None:
    control = stack.control
    owner = await control.user("Olivia Owner")
    dm = await control.chat([owner, stack.bot_id])
    await ask(stack, dm, owner, "optin")
    real = await control.call("POST", "/calls", {"ownerExtensionId": owner})
    await settle(stack.bot)
    forged = copy.deepcopy(load_fixture("ringsense-event-pbx.json")["body"])
    forged.update(
        ownerExtensionId=owner,
        sourceRecordId=real["sourceRecordId"],
        sourceSessionId=real["sourceSessionId"],
        lastModifiedTime="2030-01-01T00:00:00.000Z",
    )
    forged["insights"]["Summary"] = [{"value": "Forged: wire the money today.", "start": 0}]
    await notify(
        stack,
        f"/ai/ringsense/v1/public/accounts/{HOME_ACCOUNT}/domains/pbx/insights",
        forged,
        defaults.SERVICE_USER_EXTENSION_ID,
    )
    texts = await card_texts(stack, dm)
    assert texts and not any("Forged" in t for t in texts)


async def test_a_forged_extension_delete_wipes_nothing(stack: Stack) -> None:
    control = stack.control
    owner = await control.user("Olivia Owner")
    dm = await control.chat([owner, stack.bot_id])
    await ask(stack, dm, owner, "optin")
    await notify(
        stack,
        f"/restapi/v1.0/account/{HOME_ACCOUNT}/extension/{stack.bot_id}",
        {"extensionId": stack.bot_id, "eventType": "Delete", "hints": ["ExtensionInfo"]},
        stack.bot_id,
    )
    services = stack.bot.app[SERVICES]
    assert stack.bot_id in services.installs
    assert (await services.storage.user_settings(owner)).opted_in
    await control.call("POST", "/calls", {"ownerExtensionId": owner})
    await settle(stack.bot)
    assert len(await card_texts(stack, dm)) == 1


async def test_a_forged_group_left_keeps_everyones_channels(stack: Stack) -> None:
    control = stack.control
    owner = await control.user("Olivia Owner")
    mate = await control.user("Mo Mate")
    group = await control.chat([owner, mate, stack.bot_id], "Group", name="Sales floor")
    await ask(stack, group, owner, "channel add", mention=stack.bot_id)
    body = {"id": group, "type": "Group", "members": [owner, mate], "eventType": "GroupLeft"}
    await notify(stack, "/team-messaging/v1/chats", body, stack.bot_id)
    settings = await stack.bot.app[SERVICES].storage.user_settings(owner)
    assert [c.chat_id for c in settings.channels] == [group]
    # and when the bot really leaves, the channel goes
    await control.call("POST", f"/chats/{group}/members", {"remove": [stack.bot_id]})
    await settle(stack.bot)
    assert (await stack.bot.app[SERVICES].storage.user_settings(owner)).channels == ()
