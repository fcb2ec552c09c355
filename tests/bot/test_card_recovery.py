"""A card whose creation RingCentral carried out but whose answer never reached the bot
(a reset, a timeout, a crash in between) is found again by the marker the bot puts in
every card it posts, confirmed with GET adaptive-cards/{id}, and updated in place; when
nothing is found, the card is posted again (a rare duplicate beats a lost digest)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import pytest

from bot.app import SERVICES
from bot.cards import card_as_text
from bot.rc import RingCentralServerError, RingCentralUnavailable
from tests.e2e import Stack, eventually, settle

CreateCard = Callable[[str, Mapping[str, Any]], Awaitable[str]]


def lose_the_first_answer(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, wanted: str, *, created: bool
) -> list[str]:
    """The first card whose text holds `wanted`: RingCentral creates it (or not), and the
    answer is lost on the way back. Returns the ids RingCentral created that way."""
    install = next(iter(stack.bot.app[SERVICES].installs.values()))
    real_create: CreateCard = install.api.create_card
    lost: list[str] = []

    async def create_card(chat_id: str, card: Mapping[str, Any]) -> str:
        if not lost and wanted in card_as_text(card):
            lost.append(await real_create(chat_id, card) if created else "")
            if created:
                raise RingCentralUnavailable(None, None, "connection reset by peer")
            raise RingCentralServerError(502, None, "Bad Gateway")
        return await real_create(chat_id, card)

    monkeypatch.setattr(install.api, "create_card", create_card)
    return lost


async def wait_for_card(stack: Stack, chat_id: str, words: str) -> list[Mapping[str, Any]]:
    async def cards_with_words() -> list[Mapping[str, Any]] | None:
        await settle(stack.bot)
        cards = await stack.control.cards(chat_id)
        return cards if any(words in card_as_text(c["card"]) for c in cards) else None

    return await eventually(cards_with_words, within_s=60)


async def opted_in(stack: Stack) -> tuple[str, str]:
    user = await stack.control.user("Kim Park")
    dm = await stack.control.chat([user, stack.bot_id])
    await stack.control.say(dm, user, "optin")
    await settle(stack.bot)
    return user, dm


async def test_a_digest_created_but_unanswered_is_found_and_not_posted_twice(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    user, dm = await opted_in(stack)
    lost = lose_the_first_answer(stack, monkeypatch, "Next steps", created=True)
    await stack.control.call("POST", "/calls", {"ownerExtensionId": user})
    cards = await wait_for_card(stack, dm, "Next steps")
    await settle(stack.bot)
    cards = await stack.control.cards(dm)
    assert lost and [c["id"] for c in cards] == [c["id"] for c in cards[:1]]
    assert len(cards) == 1


async def test_a_card_without_a_call_key_is_found_by_the_marker_too(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The analysis card of `analyze` carries no call key; before the marker its lost
    creation always ended in a second card."""
    person = await stack.control.user("Kim Park")
    dm = await stack.control.chat([person, stack.bot_id])
    lost = lose_the_first_answer(stack, monkeypatch, "nalys", created=True)
    await stack.control.say(dm, person, "analyze https://media.example.com/calls/demo.mp3")
    await wait_for_card(stack, dm, "Speakers")
    await settle(stack.bot)
    analysis = [c for c in await stack.control.cards(dm) if "nalys" in card_as_text(c["card"])]
    assert lost
    assert len(analysis) == 1, [card_as_text(c["card"]) for c in analysis]
    assert "Speakers" in card_as_text(analysis[0]["card"])


async def test_when_no_card_was_created_it_is_posted_again(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    user, dm = await opted_in(stack)
    lost = lose_the_first_answer(stack, monkeypatch, "Next steps", created=False)
    await stack.control.call("POST", "/calls", {"ownerExtensionId": user})
    await wait_for_card(stack, dm, "Next steps")
    await settle(stack.bot)
    assert lost == [""]
    assert len(await stack.control.cards(dm)) == 1


async def test_the_marker_is_invisible_and_the_card_stays_valid(stack: Stack) -> None:
    user, dm = await opted_in(stack)
    await stack.control.call("POST", "/calls", {"ownerExtensionId": user})
    [card] = await wait_for_card(stack, dm, "Next steps")
    text = json.dumps(card["card"])
    assert '"id": "ringsense-digest-' in text
    assert "ringsense-digest-" not in card_as_text(card["card"])


@pytest.mark.parametrize("attachment_type", ["Card", "AdaptiveCard"])
async def test_both_ways_a_post_may_show_a_card_are_candidates(
    aiohttp_server: Any, attachment_type: str
) -> None:
    """Which attachment type a post holding an adaptive card has is UNCONFIRMED; both the
    spec's `Card` and the card's own `AdaptiveCard` must lead to the card."""
    import aiohttp
    from aiohttp import web

    from bot.rc import RingCentralClient, StaticToken

    async def posts(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "records": [
                    {
                        "id": "p1",
                        "creatorId": "999",
                        "creationTime": "2026-11-30T10:00:00Z",
                        "attachments": [{"id": "c1", "type": attachment_type}],
                    },
                    {
                        "id": "p2",
                        "creatorId": "123",
                        "creationTime": "2026-11-30T10:00:00Z",
                        "attachments": [{"id": "c2", "type": attachment_type}],
                    },
                    {
                        "id": "p3",
                        "creatorId": "999",
                        "creationTime": "2026-11-30T10:00:00Z",
                        "attachments": [{"id": "f1", "type": "File"}],
                    },
                ]
            }
        )

    app = web.Application()
    app.router.add_get("/team-messaging/v1/chats/{chat}/posts", posts)
    server = await aiohttp_server(app)
    async with aiohttp.ClientSession() as session:
        api = RingCentralClient(session, str(server.make_url("")), StaticToken("t"))
        ids = await api.recent_card_ids("42", creator_id="999", since=0.0)
    assert ids == ["c1"]


async def test_a_retried_older_version_never_replaces_a_newer_one(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first version of a card fails (RingCentral 502, nothing created) and waits for its
    retry; meanwhile the newer version is posted. The retry must not put the older text back
    over the newer one (an analysis showed "Analysing…" again after its result)."""
    person = await stack.control.user("Kim Park")
    dm = await stack.control.chat([person, stack.bot_id])
    services = stack.bot.app[SERVICES]
    lose_the_first_answer(stack, monkeypatch, "first version", created=False)

    def version(text: str) -> dict[str, Any]:
        return {
            "type": "AdaptiveCard",
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "version": "1.3",
            "body": [{"type": "TextBlock", "text": text, "wrap": True}],
        }

    destination = {"kind": "chat", "chatId": dm}
    account = next(iter(services.installs.values())).account_id
    for n, text in enumerate(["first version", "second version"], start=1):
        await services.storage.enqueue(
            f"test:versions:{n}",
            destination,
            {"kind": "card", "card": version(text)},
            card_key="test:versions",
            account_id=account,
        )
        services.wake_outbox()
        await asyncio.sleep(0.05)
    await wait_for_card(stack, dm, "second version")
    await asyncio.sleep(1.5)  # past the first version's retry (0.5 s)
    await settle(stack.bot)
    cards = await stack.control.cards(dm)
    assert [card_as_text(c["card"]).strip() for c in cards] == ["second version"]
