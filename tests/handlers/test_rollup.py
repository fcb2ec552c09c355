"""The daily rollup: at each person's chosen time in their time zone (17:00 on weekdays by
default), one card with the day's analysed calls and the open next steps, Done buttons
included; once per day, also across a restart, and a day missed while the bot was down
comes when it is back.

The call is the real PBX event, moved to Wed 4 Sep 2030, 16:44 New York time (the tests'
default zone); the rollup's clock is given to `DailyRollup.run_once`. The days are in the
future so that the bot's own ticks on the real clock (at start) never find them due."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.app import ROLLUP
from bot.cards import card_as_text
from tests.conftest import load_fixture
from tests.e2e import Stack, settle

NEW_YORK = ZoneInfo("America/New_York")
TITLE = "Call from John Smith to Tracy Debolah"


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment in September 2030, New York time (4 Sep is a Wednesday)."""
    return datetime(2030, 9, day, hour, minute, tzinfo=NEW_YORK)


async def owner_with_a_call(stack: Stack) -> str:
    """The call's owner, opted in and first seen by the rollup on Wed 4 Sep 2030 at 10:00
    (someone's first rollup comes at the next rollup time after they are first seen)."""
    event = load_fixture("ringsense-event-pbx.json")
    event["body"]["recordingStartTime"] = "2030-09-04T20:44:16.390Z"
    owner = str(event["body"]["ownerExtensionId"])
    await stack.control.user("John Smith", extensionId=owner)
    await say(stack, owner, "optin")
    await stack.control.call("POST", "/calls", {"event": event})
    await settle(stack.bot)
    await tick(stack, at(4, 10))
    return owner


async def say(stack: Stack, person: str, text: str) -> str:
    dm = await stack.control.chat([person, stack.bot_id])
    await stack.control.say(dm, person, text)
    await settle(stack.bot)
    return (await stack.control.texts(dm, stack.bot_id))[-1]


async def tick(stack: Stack, moment: datetime) -> None:
    await stack.bot.app[ROLLUP].run_once(moment)
    await settle(stack.bot)


async def rollups(stack: Stack, person: str) -> list[dict[str, Any]]:
    dm = await stack.control.chat([person, stack.bot_id])
    return [
        dict(p)
        for p in await stack.control.cards(dm)
        if card_as_text(p["card"]).startswith("Your day")
    ]


def done_buttons(card: Any) -> list[dict[str, Any]]:
    if isinstance(card, dict):
        own = [card] if card.get("type") == "Action.Submit" and card.get("title") == "Done" else []
        return own + [b for value in card.values() for b in done_buttons(value)]
    if isinstance(card, list):
        return [b for value in card for b in done_buttons(value)]
    return []


async def test_the_rollup_comes_once_at_the_chosen_time(stack: Stack) -> None:
    owner = await owner_with_a_call(stack)
    await tick(stack, at(4, 16, 59))
    assert await rollups(stack, owner) == []
    await tick(stack, at(4, 17, 5))
    [rollup] = await rollups(stack, owner)
    text = card_as_text(rollup["card"])
    assert "Wed 4 Sep" in text and TITLE in text and "16:44" in text
    assert len(done_buttons(rollup["card"])) == 3
    await tick(stack, at(4, 17, 30))
    await tick(stack, at(4, 23, 59))
    assert len(await rollups(stack, owner)) == 1


async def test_no_second_rollup_after_a_restart(stack: Stack) -> None:
    owner = await owner_with_a_call(stack)
    await tick(stack, at(4, 17, 5))
    await stack.restart_bot()
    await tick(stack, at(4, 17, 10))
    assert len(await rollups(stack, owner)) == 1


async def test_the_first_rollup_comes_at_the_next_rollup_time(stack: Stack) -> None:
    event = load_fixture("ringsense-event-pbx.json")
    owner = str(event["body"]["ownerExtensionId"])
    await stack.control.user("John Smith", extensionId=owner)
    await say(stack, owner, "optin")
    await stack.control.call("POST", "/calls", {"event": event})
    await settle(stack.bot)
    await tick(stack, at(4, 19))  # opted in after Wednesday's time: nothing for Wednesday
    assert await rollups(stack, owner) == []
    await tick(stack, at(5, 17, 1))
    [thursday] = await rollups(stack, owner)
    assert "Thu 5 Sep" in card_as_text(thursday["card"])


async def test_a_day_missed_while_down_comes_when_the_bot_is_back(stack: Stack) -> None:
    owner = await owner_with_a_call(stack)
    await tick(stack, at(5, 9))  # Thursday morning: Wednesday's 17:00 passed while down
    [wednesday] = await rollups(stack, owner)
    assert "Wed 4 Sep" in card_as_text(wednesday["card"])
    assert "Analysed calls (1)" in card_as_text(wednesday["card"])
    await tick(stack, at(5, 9, 30))
    assert len(await rollups(stack, owner)) == 1
    # Down from Thursday morning to Saturday: Friday's comes (only the latest missed
    # day, not a pile), and Saturday has none of its own.
    await tick(stack, at(7, 17, 5))
    await tick(stack, at(7, 19))
    assert len(await rollups(stack, owner)) == 2
    friday = (await rollups(stack, owner))[-1]
    assert "Fri 6 Sep" in card_as_text(friday["card"])
    assert "No analysed calls today" in card_as_text(friday["card"])


async def test_a_chosen_time_or_off_is_respected(stack: Stack) -> None:
    owner = await owner_with_a_call(stack)
    assert "18:30" in await say(stack, owner, "rollup 18:30")
    await tick(stack, at(4, 17, 5))
    assert await rollups(stack, owner) == []
    await tick(stack, at(4, 18, 31))
    assert len(await rollups(stack, owner)) == 1
    assert "no daily rollup" in await say(stack, owner, "rollup off")
    await tick(stack, at(5, 18, 31))
    assert len(await rollups(stack, owner)) == 1
    assert "rollup 17:00" in await say(stack, owner, "rollup 25:99")


async def test_done_on_the_rollup_updates_it_in_place(stack: Stack) -> None:
    owner = await owner_with_a_call(stack)
    await tick(stack, at(4, 17, 5))
    [rollup] = await rollups(stack, owner)
    first = done_buttons(rollup["card"])[0]
    answer = await stack.control.call(
        "POST", f"/cards/{rollup['cardId']}/submit", {"userId": owner, "data": first["data"]}
    )
    await settle(stack.bot)
    assert answer["status"] == 200
    [updated] = await rollups(stack, owner)
    assert updated["cardId"] == rollup["cardId"]
    assert "Marked done" in card_as_text(updated["card"])
    assert TITLE in card_as_text(updated["card"])
    assert len(done_buttons(updated["card"])) == 2


async def test_no_rollup_while_paused_or_not_opted_in(stack: Stack) -> None:
    owner = await owner_with_a_call(stack)
    await say(stack, owner, "pause 2 days")
    await tick(stack, at(4, 17, 5))
    assert await rollups(stack, owner) == []
    await say(stack, owner, "resume")
    await say(stack, owner, "optout")
    await tick(stack, at(5, 17, 5))
    assert await rollups(stack, owner) == []


async def test_rollup_now_and_the_setting_in_status(stack: Stack) -> None:
    owner = await owner_with_a_call(stack)
    assert "on weekdays at 17:00 (America/New_York)" in await say(stack, owner, "rollup")
    await say(stack, owner, "rollup now")
    [rollup] = await rollups(stack, owner)
    assert len(done_buttons(rollup["card"])) == 3
    assert "**Daily rollup**: weekdays at 17:00" in await say(stack, owner, "status")
