"""A RingSense call becomes a digest in the owner's direct chat, through the sandbox."""

from __future__ import annotations

import copy
import json
from typing import Any

import aiohttp

from bot.cards import card_as_text
from tests.conftest import load_fixture
from tests.e2e import Stack, eventually, settle


async def opted_in_user(stack: Stack, name: str = "Alex Rivera") -> tuple[str, str]:
    user = await stack.control.user(name)
    chat = await stack.control.chat([user, stack.bot_id])
    await stack.control.say(chat, user, "optin")
    await settle(stack.bot)
    return user, chat


async def test_an_opted_in_owner_gets_the_digest_in_a_direct_message(stack: Stack) -> None:
    user, chat = await opted_in_user(stack)
    colleague = await stack.control.user("Sam Chen")
    call = await stack.control.call(
        "POST",
        "/calls",
        {
            "ownerExtensionId": user,
            "participants": [colleague, {"name": "Jordan Lee", "phoneNumber": "+16505550123"}],
            "direction": "Outbound",
            "durationSec": 754,
        },
    )
    await settle(stack.bot)

    [card_post] = await stack.control.cards(chat)
    text = card_as_text(card_post["card"])
    for expected in ("Alex Rivera", "Sam Chen", "Jordan Lee", "Outbound", "12 min 34 s"):
        assert expected in text, expected
    # The notification carries only some insights; the bot fetched the rest (score, bullets).
    assert "/10" in text
    requests = await stack.control.requests()
    fetched = [
        r
        for r in requests
        if r["method"] == "GET"
        and r["path"].endswith(f"/records/{call['sourceRecordId']}/insights")
    ]
    assert len(fetched) == 1 and fetched[0]["status"] == 200


async def test_no_digest_for_an_owner_who_has_not_opted_in(stack: Stack) -> None:
    user = await stack.control.user("Not Interested")
    chat = await stack.control.chat([user, stack.bot_id])
    await stack.control.call("POST", "/calls", {"ownerExtensionId": user})
    await settle(stack.bot)
    assert await stack.control.cards(chat) == []


async def test_after_optout_no_more_digests(stack: Stack) -> None:
    user, chat = await opted_in_user(stack)
    await stack.control.say(chat, user, "optout")
    await settle(stack.bot)
    await stack.control.call("POST", "/calls", {"ownerExtensionId": user})
    await settle(stack.bot)
    assert await stack.control.cards(chat) == []
    texts = await stack.control.texts(chat, stack.bot_id)
    assert any("no more digests" in t for t in texts)


async def test_the_real_pbx_event_becomes_a_digest(stack: Stack) -> None:
    event = load_fixture("ringsense-event-pbx.json")
    owner = event["body"]["ownerExtensionId"]
    await stack.control.user("John Smith", extensionId=owner)
    chat = await stack.control.chat([owner, stack.bot_id])
    await stack.control.say(chat, owner, "optin")
    await settle(stack.bot)
    await stack.control.call("POST", "/calls", {"event": event})
    await settle(stack.bot)
    [card_post] = await stack.control.cards(chat)
    text = card_as_text(card_post["card"])
    assert "Call from John Smith to Tracy Debolah" in text
    assert "Write a developer guide for the API." in text
    # the owner of that next step first, by name, in bold
    assert "Tracy Debolah · Write a developer guide for the API." in text
    [step] = [
        b["inlines"]
        for b in card_post["card"]["body"]
        if b["type"] == "RichTextBlock" and len(b["inlines"]) == 3
        and b["inlines"][2]["text"] == "Write a developer guide for the API."
    ]  # fmt: skip
    assert step[0] == {"type": "TextRun", "text": "Tracy Debolah", "weight": "Bolder"}
    assert "2 min 5 s" in text  # 125963 ms


async def test_a_later_event_for_the_same_call_updates_the_card_in_place(stack: Stack) -> None:
    event = load_fixture("ringsense-event-pbx.json")
    owner = event["body"]["ownerExtensionId"]
    await stack.control.user("John Smith", extensionId=owner)
    chat = await stack.control.chat([owner, stack.bot_id])
    await stack.control.say(chat, owner, "optin")
    await settle(stack.bot)
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

    cards = await stack.control.cards(chat)
    assert len(cards) == 1
    assert "Updated: the project plan was agreed." in card_as_text(cards[0]["card"])
    puts = [
        r
        for r in await stack.control.requests()
        if r["method"] == "PUT" and "/adaptive-cards/" in r["path"]
    ]
    assert len(puts) == 1


async def test_updates_of_one_call_waiting_together_cost_one_read_and_one_card_edit(
    stack: Stack,
) -> None:
    """RingSense announces a call again as insights arrive. Notifications of one call
    that wait together are served by one read of the call and one edit of its card, which
    shows the newest insights (issue 12): here the first update's read is slowed down,
    and three more updates arrive while it runs."""
    event = load_fixture("ringsense-event-pbx.json")
    owner = event["body"]["ownerExtensionId"]
    await stack.control.user("John Smith", extensionId=owner)
    chat = await stack.control.chat([owner, stack.bot_id])
    await stack.control.say(chat, owner, "optin")
    await settle(stack.bot)
    await stack.control.call("POST", "/calls", {"event": event})
    await settle(stack.bot)
    seen_before = len(await stack.control.requests())

    await stack.control.call(
        "POST", "/faults", {"latencyMs": 700, "paths": ["/records/[^/]+/insights$"]}
    )
    for n in range(1, 5):
        later = copy.deepcopy(event)
        later["uuid"] = f"update-{n}-" + event["uuid"]
        later["body"]["lastModifiedTime"] = f"2024-09-04T21:2{n}:00.000Z"
        later["body"]["insights"]["Summary"] = [
            {"start": 0, "end": 1, "value": f"Update {n}: the project plan was agreed."}
        ]
        await stack.control.call("POST", "/calls", {"event": later})
    await settle(stack.bot)
    await stack.control.call("DELETE", "/faults")

    [card] = await stack.control.cards(chat)
    assert "Update 4: the project plan was agreed." in card_as_text(card["card"])
    since = (await stack.control.requests())[seen_before:]
    reads = [r for r in since if r["method"] == "GET" and r["path"].endswith("/insights")]
    edits = [r for r in since if r["method"] == "PUT" and "/adaptive-cards/" in r["path"]]
    # The first update's own read and edit, then one of each for the three that waited
    # (one by one: four of each).
    assert len(reads) <= 2, [r["path"] for r in reads]
    assert 1 <= len(edits) <= 2


async def test_feedback_stays_on_the_card_when_a_later_event_updates_it(stack: Stack) -> None:
    event = load_fixture("ringsense-event-pbx.json")
    owner = event["body"]["ownerExtensionId"]
    await stack.control.user("John Smith", extensionId=owner)
    chat = await stack.control.chat([owner, stack.bot_id])
    await stack.control.say(chat, owner, "optin")
    await settle(stack.bot)
    await stack.control.call("POST", "/calls", {"event": event})
    await settle(stack.bot)
    [digest] = await stack.control.cards(chat)
    helpful = next(
        a["data"]
        for a in digest["card"]["actions"][-1]["card"]["actions"]
        if a["data"].get("verdict") == "helpful"
    )
    await stack.control.call(
        "POST", f"/cards/{digest['cardId']}/submit", {"userId": owner, "data": helpful}
    )
    await settle(stack.bot)

    later = copy.deepcopy(event)
    later["uuid"] = "later-" + event["uuid"]
    later["body"]["lastModifiedTime"] = "2024-09-04T21:20:00.000Z"
    later["body"]["insights"]["Summary"] = [{"start": 0, "end": 1, "value": "Updated."}]
    await stack.control.call("POST", "/calls", {"event": later})
    await settle(stack.bot)

    [card] = await stack.control.cards(chat)
    text = card_as_text(card["card"])
    assert "Updated." in text
    assert "✓ You found this helpful" in text


def json_walk(node: Any) -> list[dict[str, Any]]:
    """Every object in a card, depth first."""
    if isinstance(node, dict):
        return [node, *(o for value in node.values() for o in json_walk(value))]
    if isinstance(node, list):
        return [o for value in node for o in json_walk(value)]
    return []


async def test_markdown_call_notes_arrive_as_structure_not_syntax(stack: Stack) -> None:
    """RingSense's notes ("## …", "**Attendees:**", lists) as the owner sees them: bold
    lines and lists, no markdown syntax, a link in them still plain text."""
    event = load_fixture("ringsense-event-pbx.json")
    owner = event["body"]["ownerExtensionId"]
    notes = "## Call notes\n**Attendees:** Tracy\n\n### Follow-up\n"
    notes += "- Send [the quote](https://x.example)\n1. Sign"
    event["body"]["insights"]["CallNotes"] = [{"value": notes}]
    await stack.control.user("John Smith", extensionId=owner)
    chat = await stack.control.chat([owner, stack.bot_id])
    await stack.control.say(chat, owner, "optin")
    await settle(stack.bot)
    await stack.control.call("POST", "/calls", {"event": event})
    await settle(stack.bot)

    [card_post] = await stack.control.cards(chat)
    card = card_post["card"]
    lines = card_as_text(card).splitlines()
    notes = lines.index("Call notes")
    assert lines[notes + 1 : notes + 5] == [
        "Attendees: Tracy",
        "Follow-up",
        "• Send ［the quote］(https://x.example)",
        "1. Sign",
    ]
    runs = [
        run
        for block in card["body"]
        if block["type"] == "RichTextBlock"
        for run in block["inlines"]
    ]
    bold = {run["text"] for run in runs if run.get("weight") == "Bolder"}
    assert {"Attendees:", "Follow-up"} <= bold
    assert "##" not in json.dumps(card) and "**" not in json.dumps(card)
    links = [e.get("url", "") for e in json_walk(card) if e.get("type") == "Action.OpenUrl"]
    assert not [url for url in links if "x.example" in url], "a link in the notes is no button"


async def test_a_redelivered_notification_posts_nothing_more(stack: Stack) -> None:
    user, chat = await opted_in_user(stack)
    await stack.control.call("POST", "/calls", {"ownerExtensionId": user})
    await settle(stack.bot)
    deliveries = await stack.control.call("GET", "/deliveries")
    records = deliveries["records"] if isinstance(deliveries, dict) else deliveries
    ringsense = [d for d in records if "ringsense" in json.dumps(d)]
    assert ringsense, "the sandbox should have delivered the RingSense notification"
    payload: Any = ringsense[-1].get("payload") or ringsense[-1].get("body")
    assert payload is not None
    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            async with session.post(
                stack.config.webhook_address,
                json=payload,
                headers={"Verification-Token": stack.config.verification_token},
            ) as response:
                assert response.status == 200
    await settle(stack.bot)
    assert len(await stack.control.cards(chat)) == 1
    posts = [
        r
        for r in await stack.control.requests()
        if r["method"] in ("POST", "PUT") and "adaptive-cards" in r["path"]
    ]
    assert len(posts) == 1


async def test_a_notification_without_a_verification_token_is_refused(stack: Stack) -> None:
    user, chat = await opted_in_user(stack)
    event = load_fixture("ringsense-event-pbx.json")
    event["body"]["ownerExtensionId"] = user
    async with aiohttp.ClientSession() as session:
        async with session.post(
            stack.config.webhook_address, json=event, headers={"Verification-Token": "guess"}
        ) as response:
            assert response.status == 403
    await settle(stack.bot)
    assert await stack.control.cards(chat) == []


async def test_eventually_helper_sees_the_reply(stack: Stack) -> None:
    user = await stack.control.user("Quick Check")
    chat = await stack.control.chat([user, stack.bot_id])
    await stack.control.say(chat, user, "help")
    texts = await eventually(lambda: stack.control.texts(chat, stack.bot_id))
    assert "optin" in texts[0]


async def test_a_call_with_ai_notes_gets_one_digest_completed_by_the_later_ringsense_event(
    stack: Stack,
) -> None:
    """RingEX calls with AI Notes bring two events per call: AI Notes first (call notes and
    a summary), RingSense later (the rest, `rsRecordUri`). One card, updated in place."""
    user, chat = await opted_in_user(stack)
    made = await stack.control.call("POST", "/calls", {"ownerExtensionId": user, "aiNotes": True})
    assert len(made["notifications"]) == 2
    await settle(stack.bot)
    await settle(stack.bot)
    cards = await stack.control.cards(chat)
    assert len(cards) == 1
    text = card_as_text(cards[0]["card"])
    assert "Call notes" in text and "AI score" in text
    assert "https://ringsense.ringcentral.com/calls/" in json.dumps(cards[0]["card"])
