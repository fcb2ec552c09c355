"""Who may see a call: {owner, participant, other employee, admin, someone from another
account} x {direct chat, group chat} x {insights, last, show transcript, digest delivery}.

The call in every test is internal: its owner and one colleague took part.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from bot.access import NOT_VISIBLE
from bot.cards import card_as_text
from tests.e2e import ADMIN_ID, Stack, settle

ROLES = ("owner", "participant", "other", "admin", "outsider")
ENTITLED = {"owner", "participant", "admin"}


@dataclass
class World:
    people: dict[str, str]
    call: dict[str, Any]
    title: str


async def make_world(stack: Stack) -> World:
    control = stack.control
    owner = await control.user("Olivia Owner")
    participant = await control.user("Paul Participant")
    other = await control.user("Omar Other")
    admin = await control.user("Ada Admin", extensionId=ADMIN_ID)
    account = await control.call("POST", "/accounts", {"name": "Elsewhere Inc"})
    outsider = await control.user("Xavier Outsider", accountId=account["accountId"])
    call = await control.call(
        "POST",
        "/calls",
        {"ownerExtensionId": owner, "participants": [participant], "durationSec": 300},
    )
    await settle(stack.bot)
    people = {
        "owner": owner,
        "participant": participant,
        "other": other,
        "admin": admin,
        "outsider": outsider,
    }
    return World(people, call, "Call from Olivia Owner to Paul Participant")


async def direct_chat(stack: Stack, person: str) -> str:
    return await stack.control.chat([person, stack.bot_id])


async def ask(stack: Stack, chat_id: str, person: str, text: str, *, mention: bool) -> None:
    prefix = f"![:Person]({stack.bot_id}) " if mention else ""
    await stack.control.say(chat_id, person, prefix + text)
    await settle(stack.bot)


async def card_texts(stack: Stack, chat_id: str) -> list[str]:
    """The cards in a chat, apart from the welcome the bot posts when it joins a group."""
    texts = [card_as_text(p["card"]) for p in await stack.control.cards(chat_id)]
    return [t for t in texts if not t.startswith("Hi, I'm")]


@pytest.mark.parametrize("role", ROLES)
async def test_insights_in_a_direct_chat(stack: Stack, role: str) -> None:
    world = await make_world(stack)
    person = world.people[role]
    dm = await direct_chat(stack, person)
    await ask(stack, dm, person, f"insights {world.call['sourceRecordId']}", mention=False)
    cards = await card_texts(stack, dm)
    replies = await stack.control.texts(dm, stack.bot_id)
    if role in ENTITLED:
        assert len(cards) == 1 and world.title in cards[0]
        assert NOT_VISIBLE not in replies
    else:
        assert cards == []
        assert replies == [NOT_VISIBLE]


@pytest.mark.parametrize("role", ROLES)
async def test_insights_by_session_id_in_a_direct_chat(stack: Stack, role: str) -> None:
    world = await make_world(stack)
    person = world.people[role]
    dm = await direct_chat(stack, person)
    await ask(stack, dm, person, f"insights {world.call['sourceSessionId']}", mention=False)
    assert (len(await card_texts(stack, dm)) == 1) == (role in ENTITLED)


async def test_an_unknown_call_gets_the_same_answer_as_a_forbidden_one(stack: Stack) -> None:
    world = await make_world(stack)
    other = world.people["other"]
    dm = await direct_chat(stack, other)
    await ask(stack, dm, other, "insights 99999999999", mention=False)
    await ask(stack, dm, other, f"insights {world.call['sourceRecordId']}", mention=False)
    first, second = await stack.control.texts(dm, stack.bot_id)
    assert first == second == NOT_VISIBLE


@pytest.mark.parametrize("role", ROLES)
async def test_insights_in_a_group_where_everyone_took_part(stack: Stack, role: str) -> None:
    """The group holds the asker and the two people on the call."""
    world = await make_world(stack)
    person = world.people[role]
    members = sorted({person, world.people["owner"], world.people["participant"], stack.bot_id})
    group = await stack.control.chat(members, "Group", name="Deal room")
    await ask(stack, group, person, f"insights {world.call['sourceRecordId']}", mention=True)
    dm = await direct_chat(stack, person)
    if role in ENTITLED:
        assert len(await card_texts(stack, group)) == 1
        assert await card_texts(stack, dm) == []
    else:
        assert await card_texts(stack, group) == []
        assert await card_texts(stack, dm) == []
        assert await stack.control.texts(group, stack.bot_id) == [NOT_VISIBLE]


@pytest.mark.parametrize("role", ["owner", "participant", "admin"])
async def test_insights_in_a_group_with_outsiders_goes_to_a_direct_message(
    stack: Stack, role: str
) -> None:
    world = await make_world(stack)
    person = world.people[role]
    members = sorted({person, world.people["other"], world.people["outsider"], stack.bot_id})
    group = await stack.control.chat(members, "Group", name="Everyone-ish")
    await ask(stack, group, person, f"insights {world.call['sourceRecordId']}", mention=True)
    assert await card_texts(stack, group) == []
    [note] = await stack.control.texts(group, stack.bot_id)
    assert "direct message" in note and world.title not in note
    dm = await direct_chat(stack, person)
    assert world.title in (await card_texts(stack, dm))[0]


@pytest.mark.parametrize("role", ROLES)
async def test_last_lists_only_calls_the_person_was_on(stack: Stack, role: str) -> None:
    world = await make_world(stack)
    person = world.people[role]
    dm = await direct_chat(stack, person)
    await ask(stack, dm, person, "last", mention=False)
    # Admins may open any call, but "my last calls" are the calls they were on.
    if role in {"owner", "participant"}:
        [listing] = await card_texts(stack, dm)
        assert world.title in listing
    else:
        assert await card_texts(stack, dm) == []
        [reply] = await stack.control.texts(dm, stack.bot_id)
        assert world.title not in reply and "**optin**" in reply


async def test_an_empty_last_says_how_to_opt_in(stack: Stack) -> None:
    person = await stack.control.user("Nina New")
    dm = await direct_chat(stack, person)
    await ask(stack, dm, person, "last", mention=False)
    assert await card_texts(stack, dm) == []
    [reply] = await stack.control.texts(dm, stack.bot_id)
    assert "no analysed calls" in reply and "Say **optin**" in reply
    await ask(stack, dm, person, "optin", mention=False)
    await ask(stack, dm, person, "last", mention=False)
    reply = (await stack.control.texts(dm, stack.bot_id))[-1]
    assert "no analysed calls" in reply and "Say **optin**" not in reply


async def test_last_in_a_group_with_others_goes_to_a_direct_message(stack: Stack) -> None:
    world = await make_world(stack)
    owner = world.people["owner"]
    members = sorted({owner, world.people["other"], stack.bot_id})
    group = await stack.control.chat(members, "Group", name="Team")
    await ask(stack, group, owner, "last 3", mention=True)
    assert await card_texts(stack, group) == []
    dm = await direct_chat(stack, owner)
    assert world.title in (await card_texts(stack, dm))[0]


async def owner_digest_channel(stack: Stack, world: World, members: list[str]) -> str:
    """A group chat where the owner asked for their digests, and the digest posted there."""
    owner = world.people["owner"]
    group = await stack.control.chat(
        sorted({*members, owner, stack.bot_id}), "Group", name="Sales floor"
    )
    dm = await direct_chat(stack, owner)
    await ask(stack, dm, owner, "optin", mention=False)
    await ask(stack, group, owner, "channel add", mention=True)
    await stack.control.call(
        "POST",
        "/calls",
        {"ownerExtensionId": owner, "participants": [world.people["participant"]]},
    )
    await settle(stack.bot)
    return group


@pytest.mark.parametrize("role", [r for r in ROLES if r != "outsider"])
async def test_show_transcript_goes_only_to_entitled_people(stack: Stack, role: str) -> None:
    """(A person of another account is never in a chat the digest goes to: see
    tests/handlers/test_accounts.py for what they get when they press anyway.)"""
    world = await make_world(stack)
    person = world.people[role]
    colleagues = [p for r, p in world.people.items() if r != "outsider"]
    group = await owner_digest_channel(stack, world, colleagues)
    digest = [p for p in await stack.control.cards(group) if "digest.transcript" in str(p)][-1]
    data = next(
        a["data"]
        for a in _actions(digest["card"])
        if a.get("data", {}).get("action") == "digest.transcript"
    )
    answer = await stack.control.call(
        "POST", f"/cards/{digest['cardId']}/submit", {"userId": person, "data": data}
    )
    await settle(stack.bot)
    assert answer["status"] == 200
    dm = await direct_chat(stack, person)
    transcripts = [t for t in await card_texts(stack, dm) if "Transcript" in t]
    if role in ENTITLED:
        assert len(transcripts) == 1
    else:
        assert transcripts == []
        assert NOT_VISIBLE in str(answer["body"])


@pytest.mark.parametrize("role", ROLES)
async def test_digest_delivery_reaches_only_the_owner(stack: Stack, role: str) -> None:
    world = await make_world(stack)
    person = world.people[role]
    dm = await direct_chat(stack, person)
    await ask(stack, dm, person, "optin", mention=False)
    await stack.control.call(
        "POST",
        "/calls",
        {"ownerExtensionId": world.people["owner"], "participants": [world.people["participant"]]},
    )
    await settle(stack.bot)
    assert (len(await card_texts(stack, dm)) == 1) == (role == "owner")


async def test_a_call_with_external_people_stays_out_of_channels_unless_allowed(
    stack: Stack,
) -> None:
    world = await make_world(stack)
    owner = world.people["owner"]
    group = await owner_digest_channel(stack, world, [world.people["other"]])
    assert len(await card_texts(stack, group)) == 1
    external = {
        "ownerExtensionId": owner,
        "participants": [{"name": "Cara Customer", "phoneNumber": "+14155550100"}],
    }
    await stack.control.call("POST", "/calls", external)
    await settle(stack.bot)
    assert len(await card_texts(stack, group)) == 1
    dm = await direct_chat(stack, owner)
    assert any("Cara Customer" in t for t in await card_texts(stack, dm))


def _actions(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if str(node.get("type", "")).startswith("Action."):
            found.append(node)
        for value in node.values():
            found.extend(_actions(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_actions(value))
    return found


async def test_a_session_with_two_recorded_legs_gives_two_digests(stack: Stack) -> None:
    world = await make_world(stack)
    owner = world.people["owner"]
    await stack.control.call(
        "POST",
        "/calls",
        {
            "ownerExtensionId": owner,
            "participants": [world.people["participant"]],
            "sourceSessionId": world.call["sourceSessionId"],
        },
    )
    await settle(stack.bot)
    dm = await direct_chat(stack, owner)
    await ask(stack, dm, owner, f"insights {world.call['sourceSessionId']}", mention=False)
    assert len(await card_texts(stack, dm)) == 2


async def test_feedback_is_stored(stack: Stack) -> None:
    world = await make_world(stack)
    owner = world.people["owner"]
    dm = await direct_chat(stack, owner)
    await ask(stack, dm, owner, f"insights {world.call['sourceRecordId']}", mention=False)
    [digest] = [p for p in await stack.control.cards(dm) if "digest.feedback" in str(p)]
    data = next(
        a["data"] for a in _actions(digest["card"]) if a.get("data", {}).get("verdict") == "helpful"
    )
    answer = await stack.control.call(
        "POST", f"/cards/{digest['cardId']}/submit", {"userId": owner, "data": data}
    )
    assert answer["status"] == 200
    assert answer["body"] is None, "the answer shows on the card itself, not in a dialog"
    from bot.app import SERVICES

    stored = await stack.bot.app[SERVICES].storage.feedback_for(data["callKey"])
    assert stored == {owner: "helpful"}


async def press_feedback(stack: Stack, card: dict[str, Any], person: str, verdict: str) -> Any:
    data = next(
        a["data"] for a in _actions(card["card"]) if a.get("data", {}).get("verdict") == verdict
    )
    answer = await stack.control.call(
        "POST", f"/cards/{card['cardId']}/submit", {"userId": person, "data": data}
    )
    await settle(stack.bot)
    return answer


async def test_feedback_in_a_direct_chat_shows_on_the_card_in_place(stack: Stack) -> None:
    world = await make_world(stack)
    owner = world.people["owner"]
    dm = await direct_chat(stack, owner)
    await ask(stack, dm, owner, f"insights {world.call['sourceRecordId']}", mention=False)
    [digest] = [p for p in await stack.control.cards(dm) if "digest.feedback" in str(p)]
    assert "found this" not in card_as_text(digest["card"])

    answer = await press_feedback(stack, digest, owner, "helpful")
    assert answer["status"] == 200
    [updated] = [p for p in await stack.control.cards(dm) if "digest.feedback" in str(p)]
    assert updated["cardId"] == digest["cardId"], "the same card, updated, not a new post"
    text = card_as_text(updated["card"])
    assert "✓ You found this helpful" in text
    assert "Change your answer" in str(updated["card"])
    assert text.index(world.title) < text.index("✓ You found this helpful")

    await press_feedback(stack, updated, owner, "not_helpful")
    [changed] = [p for p in await stack.control.cards(dm) if "digest.feedback" in str(p)]
    assert "✓ You found this not helpful" in card_as_text(changed["card"])
    assert len(await card_texts(stack, dm)) == 1


async def test_feedback_on_a_shared_digest_counts_people_and_names_nobody(stack: Stack) -> None:
    world = await make_world(stack)
    owner, participant = world.people["owner"], world.people["participant"]
    group = await owner_digest_channel(stack, world, [participant])
    [digest] = [p for p in await stack.control.cards(group) if "digest.feedback" in str(p)]

    await press_feedback(stack, digest, participant, "helpful")
    await press_feedback(stack, digest, owner, "not_helpful")

    [updated] = [p for p in await stack.control.cards(group) if "digest.feedback" in str(p)]
    text = card_as_text(updated["card"])
    assert "✓ 1 person found this helpful · 1 did not" in text
    assert "You found" not in text, "a card a whole chat reads never says whose answer it is"


async def test_feedback_refused_leaves_the_card_as_it_was(stack: Stack) -> None:
    world = await make_world(stack)
    other = world.people["other"]
    group = await owner_digest_channel(stack, world, [other])
    [digest] = [p for p in await stack.control.cards(group) if "digest.feedback" in str(p)]

    answer = await press_feedback(stack, digest, other, "helpful")

    assert answer["body"]["dialog"]["title"] == "Not available"
    [after] = [p for p in await stack.control.cards(group) if "digest.feedback" in str(p)]
    assert after["card"] == digest["card"]
