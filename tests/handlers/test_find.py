"""`find <words>`: the calls I may see whose title, summary, key points, next steps or
transcript hold the words, each with the matching line and its time; `find <words> in
<call>` searches one call's transcript. Nobody finds a call they may not see."""

from __future__ import annotations

from typing import Any

from bot.cards import card_as_text
from tests.e2e import ADMIN_ID, Stack, settle


async def say(stack: Stack, person: str, text: str) -> None:
    dm = await stack.control.chat([person, stack.bot_id])
    await stack.control.say(dm, person, text)
    await settle(stack.bot)


async def last_text(stack: Stack, person: str) -> str:
    dm = await stack.control.chat([person, stack.bot_id])
    return (await stack.control.texts(dm, stack.bot_id))[-1]


async def found_cards(stack: Stack, person: str) -> list[str]:
    dm = await stack.control.chat([person, stack.bot_id])
    texts = [card_as_text(p["card"]) for p in await stack.control.cards(dm)]
    return [t for t in texts if t.startswith("Found")]


async def make_call(
    stack: Stack, owner: str, others: list[str], session: str, transcript: list[str]
) -> dict[str, Any]:
    lines = [
        {
            "speakerId": f"p-{session}-{1 + n % 2}",
            "text": text,
            "start": 30.0 * n + 5,
            "end": 30.0 * n + 20,
        }
        for n, text in enumerate(transcript)
    ]
    made: dict[str, Any] = await stack.control.call(
        "POST",
        "/calls",
        {
            "ownerExtensionId": owner,
            "participants": others,
            "sourceSessionId": f"s-{session}",
            "insights": {"Transcript": lines},
        },
    )
    await settle(stack.bot)
    return made


async def test_find_shows_the_matching_line_and_its_time(stack: Stack) -> None:
    owner = await stack.control.user("Olivia Owner")
    paul = await stack.control.user("Paul Participant")
    await make_call(
        stack,
        owner,
        [paul],
        "find1",
        ["Hello there", "We talked about the pricing", "The warranty covers three years"],
    )
    await make_call(stack, owner, [paul], "find2", ["Nothing about that here"])
    await say(stack, owner, "find warranty")
    [card] = await found_cards(stack, owner)
    assert "The warranty covers three years" in card
    assert "01:05" in card  # the line starts 65 s into the call
    assert "Nothing about that here" not in card
    assert card.count("[Open]") == 1


async def test_find_lists_newest_calls_first_and_at_most_ten(stack: Stack) -> None:
    owner = await stack.control.user("Olivia Owner")
    paul = await stack.control.user("Paul Participant")
    for n in range(12):
        await make_call(stack, owner, [paul], f"many{n}", [f"Renewal talk number {n}"])
        await stack.control.call("POST", "/clock", {"advanceSeconds": 600})
    await say(stack, owner, "find renewal")
    [card] = await found_cards(stack, owner)
    assert card.count("[Open]") == 10
    assert card.index("number 11") < card.index("number 10")


async def test_nobody_finds_a_call_they_may_not_see(stack: Stack) -> None:
    owner = await stack.control.user("Olivia Owner")
    paul = await stack.control.user("Paul Participant")
    other = await stack.control.user("Omar Other")
    admin = await stack.control.user("Ada Admin", extensionId=ADMIN_ID)
    await make_call(stack, owner, [paul], "secret1", ["The merger codename is bluebird"])
    await say(stack, other, "find bluebird")
    assert await found_cards(stack, other) == []
    assert "Nothing found" in await last_text(stack, other)
    await say(stack, paul, "find bluebird")
    assert len(await found_cards(stack, paul)) == 1
    await say(stack, admin, "find bluebird")
    assert len(await found_cards(stack, admin)) == 1


async def test_find_in_one_call_searches_its_transcript(stack: Stack) -> None:
    owner = await stack.control.user("Olivia Owner")
    paul = await stack.control.user("Paul Participant")
    first = await make_call(
        stack, owner, [paul], "one1", ["Budget is tight", "The budget review is Friday"]
    )
    await make_call(stack, owner, [paul], "one2", ["Our budget doubled"])
    await say(stack, owner, f"find budget in {first['sourceRecordId']}")
    [card] = await found_cards(stack, owner)
    assert "Budget is tight" in card and "The budget review is Friday" in card
    assert "Our budget doubled" not in card
    other = await stack.control.user("Omar Other")
    await say(stack, other, f"find budget in {first['sourceRecordId']}")
    assert await found_cards(stack, other) == []


async def test_find_without_words_explains_itself(stack: Stack) -> None:
    owner = await stack.control.user("Olivia Owner")
    await say(stack, owner, "find")
    assert "**find <words>**" in await last_text(stack, owner)
    await say(stack, owner, 'find "" * ^')
    assert "**find <words>**" in await last_text(stack, owner)
    # FTS5 syntax is searched as words, never run as a query.
    await say(stack, owner, 'find "" OR NEAR(x y) col:*')
    reply = await last_text(stack, owner)
    assert reply.startswith("Nothing found") and "NEAR" not in reply
