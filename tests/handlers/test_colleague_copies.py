"""Every colleague on the call: a person who chose "calls I own or take part in" gets
their own copy of the digest of a colleague's call, in their own direct chat, once."""

from __future__ import annotations

import copy

from bot.cards import card_as_text
from tests.conftest import load_fixture
from tests.e2e import Stack, settle

TITLE = "Call from Olivia Owner to Paul Participant"


async def say(stack: Stack, person: str, text: str) -> str:
    dm = await stack.control.chat([person, stack.bot_id])
    await stack.control.say(dm, person, text)
    await settle(stack.bot)
    return (await stack.control.texts(dm, stack.bot_id))[-1]


async def digests(stack: Stack, person: str) -> list[str]:
    dm = await stack.control.chat([person, stack.bot_id])
    texts = [card_as_text(p["card"]) for p in await stack.control.cards(dm)]
    return [t for t in texts if TITLE in t]


async def test_optin_all_brings_a_copy_of_calls_i_take_part_in(stack: Stack) -> None:
    owner = await stack.control.user("Olivia Owner")
    participant = await stack.control.user("Paul Participant")
    assert "take part in" in await say(stack, participant, "optin all")
    call = {"ownerExtensionId": owner, "participants": [participant]}
    await stack.control.call("POST", "/calls", call)
    await settle(stack.bot)
    assert len(await digests(stack, participant)) == 1
    # The owner did not opt in: the owner gets nothing.
    assert await digests(stack, owner) == []


async def test_a_copy_comes_once_per_call_and_is_updated_in_place(stack: Stack) -> None:
    event = load_fixture("ringsense-event-pbx.json")
    owner = event["body"]["ownerExtensionId"]
    await stack.control.user("John Smith", extensionId=owner)
    paul = await stack.control.call("POST", "/users", {"name": "Paul Participant"})
    participant = str(paul["extensionId"])
    event["body"]["speakerInfo"].append(
        {
            "speakerId": "9",
            "name": "Paul Participant",
            "extensionId": participant,
            "accountId": paul["accountId"],
        }
    )
    await say(stack, participant, "optin all")
    await stack.control.call("POST", "/calls", {"event": event})
    await settle(stack.bot)
    later = copy.deepcopy(event)
    later["uuid"] = "later-" + event["uuid"]
    later["body"]["lastModifiedTime"] = "2024-09-04T21:20:00.000Z"
    later["body"]["insights"]["Summary"] = [
        {"start": 0, "end": 1, "value": "Updated: the project plan was agreed."}
    ]
    await stack.control.call("POST", "/calls", {"event": later})
    await settle(stack.bot)
    dm = await stack.control.chat([participant, stack.bot_id])
    [card] = await stack.control.cards(dm)
    assert "Updated: the project plan was agreed." in card_as_text(card["card"])


async def test_a_colleagues_feedback_stays_on_their_copy_when_the_call_is_updated(
    stack: Stack,
) -> None:
    event = load_fixture("ringsense-event-pbx.json")
    owner = event["body"]["ownerExtensionId"]
    await stack.control.user("John Smith", extensionId=owner)
    paul = await stack.control.call("POST", "/users", {"name": "Paul Participant"})
    participant = str(paul["extensionId"])
    event["body"]["speakerInfo"].append(
        {
            "speakerId": "9",
            "name": "Paul Participant",
            "extensionId": participant,
            "accountId": paul["accountId"],
        }
    )
    await say(stack, participant, "optin all")
    await stack.control.call("POST", "/calls", {"event": event})
    await settle(stack.bot)
    dm = await stack.control.chat([participant, stack.bot_id])
    [copy_of_call] = await stack.control.cards(dm)
    helpful = next(
        a["data"]
        for a in copy_of_call["card"]["actions"][-1]["card"]["actions"]
        if a["data"].get("verdict") == "helpful"
    )
    await stack.control.call(
        "POST",
        f"/cards/{copy_of_call['cardId']}/submit",
        {"userId": participant, "data": helpful},
    )
    await settle(stack.bot)
    later = copy.deepcopy(event)
    later["uuid"] = "later-" + event["uuid"]
    later["body"]["lastModifiedTime"] = "2024-09-04T21:20:00.000Z"
    later["body"]["insights"]["Summary"] = [{"start": 0, "end": 1, "value": "Updated."}]
    await stack.control.call("POST", "/calls", {"event": later})
    await settle(stack.bot)
    [card] = await stack.control.cards(dm)
    text = card_as_text(card["card"])
    assert "Updated." in text
    assert "You found this helpful" in text
    assert "Share to…" in str(card["card"])


async def test_the_default_is_calls_i_own(stack: Stack) -> None:
    owner = await stack.control.user("Olivia Owner")
    participant = await stack.control.user("Paul Participant")
    await say(stack, participant, "optin")
    await stack.control.call(
        "POST", "/calls", {"ownerExtensionId": owner, "participants": [participant]}
    )
    await settle(stack.bot)
    assert await digests(stack, participant) == []
    assert "calls you own" in await say(stack, participant, "status")


async def test_optin_mine_goes_back_to_calls_i_own(stack: Stack) -> None:
    owner = await stack.control.user("Olivia Owner")
    participant = await stack.control.user("Paul Participant")
    await say(stack, participant, "optin all")
    assert "calls you own" in await say(stack, participant, "optin mine")
    await stack.control.call(
        "POST", "/calls", {"ownerExtensionId": owner, "participants": [participant]}
    )
    await settle(stack.bot)
    assert await digests(stack, participant) == []


async def test_an_unknown_optin_choice_is_explained(stack: Stack) -> None:
    person = await stack.control.user("Paul Participant")
    reply = await say(stack, person, "optin everybody")
    assert "**optin all**" in reply and "**optin mine**" in reply
    assert "**Digests**: off" in await say(stack, person, "status")


async def test_someone_of_another_account_never_gets_a_copy(stack: Stack) -> None:
    owner = await stack.control.user("Olivia Owner")
    other_account = await stack.control.call("POST", "/accounts", {"name": "Elsewhere Inc"})
    outsider = await stack.control.user("Paul Participant", accountId=other_account["accountId"])
    await say(stack, outsider, "optin all")
    await stack.control.call(
        "POST", "/calls", {"ownerExtensionId": owner, "participants": [outsider]}
    )
    await settle(stack.bot)
    assert await digests(stack, outsider) == []


async def test_a_colleague_who_did_not_take_part_gets_no_copy(stack: Stack) -> None:
    owner = await stack.control.user("Olivia Owner")
    participant = await stack.control.user("Paul Participant")
    bystander = await stack.control.user("Omar Other")
    await say(stack, bystander, "optin all")
    await stack.control.call(
        "POST", "/calls", {"ownerExtensionId": owner, "participants": [participant]}
    )
    await settle(stack.bot)
    dm = await stack.control.chat([bystander, stack.bot_id])
    assert await stack.control.cards(dm) == []


async def test_a_participant_copy_follows_the_participants_own_filters(stack: Stack) -> None:
    owner = await stack.control.user("Olivia Owner")
    participant = await stack.control.user("Paul Participant")
    await say(stack, participant, "optin all")
    await say(stack, participant, "pause 2h")
    await stack.control.call(
        "POST", "/calls", {"ownerExtensionId": owner, "participants": [participant]}
    )
    await settle(stack.bot)
    assert await digests(stack, participant) == []


async def test_the_settings_card_offers_calls_i_take_part_in(stack: Stack) -> None:
    owner = await stack.control.user("Olivia Owner")
    participant = await stack.control.user("Paul Participant")
    dm = await stack.control.chat([participant, stack.bot_id])
    await stack.control.say(dm, participant, "settings")
    await settle(stack.bot)
    [card_post] = await stack.control.cards(dm)
    assert "Calls I own or take part in" in card_as_text(card_post["card"])
    answer = await stack.control.call(
        "POST",
        f"/cards/{card_post['cardId']}/submit",
        {
            "userId": participant,
            "data": {"action": "settings.save", "optedIn": "true", "digestScope": "all"},
        },
    )
    await settle(stack.bot)
    assert answer["status"] == 200
    assert "take part in" in await say(stack, participant, "status")
    await stack.control.call(
        "POST", "/calls", {"ownerExtensionId": owner, "participants": [participant]}
    )
    await settle(stack.bot)
    assert len(await digests(stack, participant)) == 1


async def test_a_made_up_scope_on_the_settings_card_is_refused(stack: Stack) -> None:
    participant = await stack.control.user("Paul Participant")
    dm = await stack.control.chat([participant, stack.bot_id])
    await stack.control.say(dm, participant, "settings")
    await settle(stack.bot)
    [card_post] = await stack.control.cards(dm)
    await stack.control.call(
        "POST",
        f"/cards/{card_post['cardId']}/submit",
        {
            "userId": participant,
            "data": {"action": "settings.save", "optedIn": "true", "digestScope": "everyone"},
        },
    )
    await settle(stack.bot)
    [updated] = await stack.control.cards(dm)
    assert "Not saved" in card_as_text(updated["card"])
    assert "**Digests**: off" in await say(stack, participant, "status")
