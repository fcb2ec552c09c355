"""The settings card: sent on request, saved by a signed button press, updated in place."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import aiohttp
import pytest

from bot.cards import card_as_text
from sandbox import defaults
from tests.e2e import Stack, settle


async def settings_card_in_dm(stack: Stack) -> tuple[str, str, dict[str, Any]]:
    user = await stack.control.user("Kim Park")
    dm = await stack.control.chat([user, stack.bot_id])
    await stack.control.say(dm, user, "settings")
    await settle(stack.bot)
    [card_post] = await stack.control.cards(dm)
    return user, dm, card_post


async def press_save(stack: Stack, card_id: str, user: str, **inputs: str) -> dict[str, Any]:
    answer: dict[str, Any] = await stack.control.call(
        "POST",
        f"/cards/{card_id}/submit",
        {"userId": user, "data": {"action": "settings.save", **inputs}},
    )
    await settle(stack.bot)
    return answer


async def status_of(stack: Stack, dm: str, user: str) -> str:
    await stack.control.say(dm, user, "status")
    await settle(stack.bot)
    return (await stack.control.texts(dm, stack.bot_id))[-1]


async def test_saving_valid_settings_stores_them_and_updates_the_card(stack: Stack) -> None:
    user, dm, card_post = await settings_card_in_dm(stack)
    answer = await press_save(
        stack,
        card_post["cardId"],
        user,
        optedIn="true",
        directMessages="true",
        sections="summary,next_steps",
        directions="Inbound",
        parties="internal,external",
        minDurationMinutes="2",
        minAiScore="6",
        timezone="Europe/Paris",
        externalToChannels="false",
    )
    assert answer["status"] == 200
    [updated] = await stack.control.cards(dm)
    assert updated["cardId"] == card_post["cardId"]
    assert "Saved" in card_as_text(updated["card"])
    status = await status_of(stack, dm, user)
    assert "**Digests**: on" in status
    assert "inbound calls" in status and "at least 2 min" in status
    assert "AI score at least 6" in status and "Europe/Paris" in status


async def test_invalid_settings_are_explained_on_the_card_and_nothing_changes(
    stack: Stack,
) -> None:
    user, dm, card_post = await settings_card_in_dm(stack)
    await press_save(
        stack, card_post["cardId"], user, optedIn="true", minAiScore="eleven", timezone="Mars/Base"
    )
    [updated] = await stack.control.cards(dm)
    text = card_as_text(updated["card"])
    assert "AI score" in text and "Mars/Base" in text
    assert "Saved" not in text
    assert "**Digests**: off" in await status_of(stack, dm, user)


async def test_settings_filters_decide_which_calls_get_a_digest(stack: Stack) -> None:
    user, dm, card_post = await settings_card_in_dm(stack)
    await press_save(stack, card_post["cardId"], user, optedIn="true", minDurationMinutes="10")
    await stack.control.call("POST", "/calls", {"ownerExtensionId": user, "durationSec": 120})
    await settle(stack.bot)
    assert len(await stack.control.cards(dm)) == 1  # only the settings card
    await stack.control.call("POST", "/calls", {"ownerExtensionId": user, "durationSec": 900})
    await settle(stack.bot)
    assert len(await stack.control.cards(dm)) == 2


@pytest.mark.parametrize(
    "signature",
    [None, "", "deadbeef", "sha1=deadbeef", "sha256=abc"],
)
async def test_a_forged_submit_is_refused_and_changes_nothing(
    stack: Stack, signature: str | None
) -> None:
    user, dm, card_post = await settings_card_in_dm(stack)
    body = json.dumps(
        {
            "uuid": "forged-1",
            "type": "button_submit",
            "user": {"id": user, "accountId": "1"},
            "conversation": {"id": dm},
            "card": {"id": card_post["cardId"]},
            "data": {"action": "settings.save", "optedIn": "true"},
        }
    ).encode()
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Glip-Signature"] = signature
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{stack.bot.url}/webhooks/interactive", data=body, headers=headers
        ) as response,
    ):
        assert response.status == 401
    await settle(stack.bot)
    assert "**Digests**: off" in await status_of(stack, dm, user)


@pytest.mark.parametrize("prefix", ["", "sha1="])
async def test_both_signature_forms_are_accepted(stack: Stack, prefix: str) -> None:
    user, dm, card_post = await settings_card_in_dm(stack)
    body = json.dumps(
        {
            "uuid": f"signed-{prefix}",
            "type": "button_submit",
            "user": {"id": user, "accountId": "809640001"},
            "conversation": {"id": dm},
            "card": {"id": card_post["cardId"]},
            "bot": {"id": stack.bot_id},
            "data": {"action": "settings.save", "optedIn": "true"},
        },
        separators=(",", ":"),
    ).encode()
    digest = hmac.new(defaults.SHARED_SECRET.encode(), body, hashlib.sha1).hexdigest()
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{stack.bot.url}/webhooks/interactive",
            data=body,
            headers={"Content-Type": "application/json", "X-Glip-Signature": prefix + digest},
        ) as response,
    ):
        assert response.status == 200
    await settle(stack.bot)
    assert "**Digests**: on" in await status_of(stack, dm, user)


async def test_settings_asked_in_a_group_arrive_in_a_direct_message(stack: Stack) -> None:
    kim = await stack.control.user("Kim Park")
    sam = await stack.control.user("Sam Chen")
    group = await stack.control.chat([kim, sam, stack.bot_id], "Group", name="Ops")
    await stack.control.say(group, kim, f"![:Person]({stack.bot_id}) settings")
    await settle(stack.bot)
    dm = await stack.control.chat([kim, stack.bot_id])
    assert [
        p
        for p in await stack.control.cards(group)
        if "settings" in str(p["card"]).lower() and "Save" in str(p["card"])
    ] == []
    assert any("Save" in str(p["card"]) for p in await stack.control.cards(dm))


async def test_saving_a_stale_card_does_not_undo_a_later_change(stack: Stack) -> None:
    user, dm, card_post = await settings_card_in_dm(stack)
    await stack.control.say(dm, user, "optin")  # a change after the card was sent
    await settle(stack.bot)
    save = next(
        a
        for a in json.loads(json.dumps(card_post["card"]))["actions"]
        if a.get("data", {}).get("action") == "settings.save"
    )
    await press_save(
        stack, card_post["cardId"], user, optedIn="false", revision=save["data"]["revision"]
    )
    [updated] = await stack.control.cards(dm)
    assert "changed after this card was sent" in card_as_text(updated["card"])
    assert "**Digests**: on" in await status_of(stack, dm, user)
