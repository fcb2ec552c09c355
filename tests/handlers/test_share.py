"""Share after review: a digest in my direct chat has "Share to…", which lists the group
chats and teams where the bot and I both are and everyone may see the call; sharing posts
the digest there, after a confirmation when the call had people from outside."""

from __future__ import annotations

from typing import Any

from bot.cards import card_as_text
from sandbox import defaults
from tests.e2e import Stack, settle
from tests.handlers.test_accounts import press as signed_press

TITLE = "Call from Olivia Owner to Paul Participant"


async def say(stack: Stack, person: str, text: str) -> None:
    dm = await stack.control.chat([person, stack.bot_id])
    await stack.control.say(dm, person, text)
    await settle(stack.bot)


def buttons(card: Any, title: str | None = None) -> list[dict[str, Any]]:
    if isinstance(card, dict):
        own = (
            [card]
            if card.get("type") == "Action.Submit" and title in (None, card.get("title"))
            else []
        )
        return own + [b for value in card.values() for b in buttons(value, title)]
    if isinstance(card, list):
        return [b for value in card for b in buttons(value, title)]
    return []


async def press(stack: Stack, card_id: str, user: str, data: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = await stack.control.call(
        "POST", f"/cards/{card_id}/submit", {"userId": user, "data": data}
    )
    await settle(stack.bot)
    return answer


async def digest_in_dm(stack: Stack, owner: str, participants: list[Any]) -> dict[str, Any]:
    await say(stack, owner, "optin")
    await stack.control.call(
        "POST", "/calls", {"ownerExtensionId": owner, "participants": participants}
    )
    await settle(stack.bot)
    dm = await stack.control.chat([owner, stack.bot_id])
    [digest] = [dict(c) for c in await stack.control.cards(dm) if "Call from" in str(c["card"])]
    return digest


async def picker(stack: Stack, owner: str) -> dict[str, Any]:
    dm = await stack.control.chat([owner, stack.bot_id])
    [card] = [
        dict(c)
        for c in await stack.control.cards(dm)
        if card_as_text(c["card"]).startswith("Share")
    ]
    return card


async def digests_in(stack: Stack, chat_id: str) -> list[str]:
    return [
        card_as_text(c["card"])
        for c in await stack.control.cards(chat_id)
        if "Call from" in str(c["card"])
    ]


async def test_share_lists_chats_where_everyone_may_see_and_posts_there(stack: Stack) -> None:
    owner = await stack.control.user("Olivia Owner")
    paul = await stack.control.user("Paul Participant")
    omar = await stack.control.user("Omar Other")
    deal_room = await stack.control.chat([owner, paul, stack.bot_id], "Group", name="Deal room")
    everyone = await stack.control.chat([owner, paul, omar, stack.bot_id], "Team", name="All sales")
    without_me = await stack.control.chat([paul, stack.bot_id], "Team", name="Paul only")
    await settle(stack.bot)
    digest = await digest_in_dm(stack, owner, [paul])
    [share] = buttons(digest["card"], "Share to…")
    await press(stack, digest["cardId"], owner, share["data"])
    card = await picker(stack, owner)
    text = card_as_text(card["card"])
    assert "Deal room" in text
    assert "All sales" not in text and "Paul only" not in text
    [to_deal_room] = buttons(card["card"], "Deal room")
    await press(stack, card["cardId"], owner, to_deal_room["data"])
    [posted] = await digests_in(stack, deal_room)
    assert TITLE in posted
    assert await digests_in(stack, everyone) == []
    assert await digests_in(stack, without_me) == []
    updated = await picker(stack, owner)
    assert updated["cardId"] == card["cardId"]
    assert "Shared to Deal room" in card_as_text(updated["card"])


async def test_a_call_with_external_people_is_shared_only_after_confirming(stack: Stack) -> None:
    owner = await stack.control.user("Olivia Owner")
    paul = await stack.control.user("Paul Participant")
    room = await stack.control.chat([owner, paul, stack.bot_id], "Group", name="Deal room")
    await settle(stack.bot)
    digest = await digest_in_dm(
        stack, owner, [paul, {"name": "Alex Morgan", "phoneNumber": "+14155550123"}]
    )
    [share] = buttons(digest["card"], "Share to…")
    await press(stack, digest["cardId"], owner, share["data"])
    card = await picker(stack, owner)
    [to_room] = buttons(card["card"], "Deal room")
    await press(stack, card["cardId"], owner, to_room["data"])
    assert await digests_in(stack, room) == []
    asking = await picker(stack, owner)
    assert "outside your company" in card_as_text(asking["card"])
    [anyway] = buttons(asking["card"], "Share anyway")
    await press(stack, asking["cardId"], owner, anyway["data"])
    assert len(await digests_in(stack, room)) == 1


async def test_a_forged_share_to_a_chat_where_not_everyone_may_see_is_refused(
    stack: Stack,
) -> None:
    owner = await stack.control.user("Olivia Owner")
    paul = await stack.control.user("Paul Participant")
    omar = await stack.control.user("Omar Other")
    everyone = await stack.control.chat([owner, paul, omar, stack.bot_id], "Team", name="All sales")
    await settle(stack.bot)
    digest = await digest_in_dm(stack, owner, [paul])
    [share] = buttons(digest["card"], "Share to…")
    dm = await stack.control.chat([owner, stack.bot_id])
    forged = {**share["data"], "action": "digest.share.to", "chatId": everyone, "confirmed": "yes"}
    await signed_press(
        stack,
        user=owner,
        account=defaults.ACCOUNT_ID,
        chat_id=dm,
        data=forged,
        card_id=digest["cardId"],
    )
    await settle(stack.bot)
    assert await digests_in(stack, everyone) == []


async def test_someone_who_may_not_see_the_call_gets_no_chat_list(stack: Stack) -> None:
    owner = await stack.control.user("Olivia Owner")
    paul = await stack.control.user("Paul Participant")
    omar = await stack.control.user("Omar Other")
    await stack.control.chat([omar, stack.bot_id, owner, paul], "Group", name="Room")
    await settle(stack.bot)
    digest = await digest_in_dm(stack, owner, [paul])
    [share] = buttons(digest["card"], "Share to…")
    omar_dm = await stack.control.chat([omar, stack.bot_id])
    await signed_press(
        stack,
        user=omar,
        account=defaults.ACCOUNT_ID,
        chat_id=omar_dm,
        data=share["data"],
        card_id=digest["cardId"],
    )
    await settle(stack.bot)
    assert await stack.control.cards(omar_dm) == []


async def test_group_digests_have_no_share_button(stack: Stack) -> None:
    owner = await stack.control.user("Olivia Owner")
    paul = await stack.control.user("Paul Participant")
    group = await stack.control.chat([owner, paul, stack.bot_id], "Group", name="Deals")
    await say(stack, owner, "optin")
    await stack.control.say(group, owner, f"![:Person]({stack.bot_id}) channel add")
    await settle(stack.bot)
    await stack.control.call("POST", "/calls", {"ownerExtensionId": owner, "participants": [paul]})
    await settle(stack.bot)
    [in_group] = [c for c in await stack.control.cards(group) if "Call from" in str(c["card"])]
    assert buttons(in_group["card"], "Share to…") == []


async def test_feedback_on_my_direct_digest_keeps_its_share_button(stack: Stack) -> None:
    """Helpful redraws the digest in place; in my direct chat it stays my copy, with
    "Share to…", and a share afterwards carries the count a chat may read."""
    owner = await stack.control.user("Olivia Owner")
    paul = await stack.control.user("Paul Participant")
    room = await stack.control.chat([owner, paul, stack.bot_id], "Group", name="Deal room")
    await settle(stack.bot)
    digest = await digest_in_dm(stack, owner, [paul])
    [helpful] = buttons(digest["card"], "Helpful")
    await press(stack, digest["cardId"], owner, helpful["data"])
    dm = await stack.control.chat([owner, stack.bot_id])
    [updated] = [c for c in await stack.control.cards(dm) if "Call from" in str(c["card"])]
    assert updated["cardId"] == digest["cardId"]
    assert "You found this helpful" in card_as_text(updated["card"])
    [share] = buttons(updated["card"], "Share to…")
    await press(stack, updated["cardId"], owner, share["data"])
    [to_room] = buttons((await picker(stack, owner))["card"], "Deal room")
    await press(stack, (await picker(stack, owner))["cardId"], owner, to_room["data"])
    [shared] = await digests_in(stack, room)
    assert "1 person found this helpful" in shared
    assert "You found" not in shared


async def test_share_looks_up_nobody_in_a_chat_where_someone_plainly_may_not_see(
    stack: Stack,
) -> None:
    """A big team with colleagues who were not on the call is left out without asking
    RingCentral about each of its members (every lookup spends the account's rate limit)."""
    owner = await stack.control.user("Olivia Owner")
    paul = await stack.control.user("Paul Participant")
    others = [await stack.control.user(f"Colleague {n}") for n in range(6)]
    await stack.control.chat([owner, *others, stack.bot_id], "Team", name="All hands")
    await settle(stack.bot)
    digest = await digest_in_dm(stack, owner, [paul])
    [share] = buttons(digest["card"], "Share to…")
    await press(stack, digest["cardId"], owner, share["data"])
    assert "1 other chat not listed" in card_as_text((await picker(stack, owner))["card"])
    looked_up = {
        r["path"].rsplit("/", 1)[-1]
        for r in await stack.control.requests()
        if r["path"].startswith("/team-messaging/v1/persons/")
    }
    assert looked_up.isdisjoint(others)
