"""Open next steps: each next step of an analysed call becomes an item; `todo` lists mine
(newest calls first) with a Done button each, Done updates the card in place, and
`todo all` lists everyone's of the account, for its administrators only."""

from __future__ import annotations

from typing import Any

from bot.cards import card_as_text
from sandbox import defaults
from tests.e2e import ADMIN_ID, Stack, settle
from tests.handlers.test_accounts import press as signed_press


async def say(stack: Stack, person: str, text: str) -> None:
    dm = await stack.control.chat([person, stack.bot_id])
    await stack.control.say(dm, person, text)
    await settle(stack.bot)


async def last_text(stack: Stack, person: str) -> str:
    dm = await stack.control.chat([person, stack.bot_id])
    return (await stack.control.texts(dm, stack.bot_id))[-1]


async def todo_cards(stack: Stack, person: str) -> list[dict[str, Any]]:
    dm = await stack.control.chat([person, stack.bot_id])
    return [
        dict(p) for p in await stack.control.cards(dm) if "next steps" in str(p["card"]).lower()
    ]


async def make_call(
    stack: Stack, owner: str, participant: str, session: str, steps: list[tuple[str, int]]
) -> dict[str, Any]:
    """A call whose next steps are `(text, speaker)`: speaker 1 is the owner, 2 the
    participant (the sandbox numbers speakers in that order)."""
    next_steps = [
        {
            "start": 10.0 * (n + 1),
            "end": 10.0 * (n + 1) + 5,
            "value": text,
            "speakerId": f"p-{session}-{who}",
        }
        for n, (text, who) in enumerate(steps)
    ]
    made: dict[str, Any] = await stack.control.call(
        "POST",
        "/calls",
        {
            "ownerExtensionId": owner,
            "participants": [participant],
            "sourceSessionId": f"s-{session}",
            "insights": {"NextSteps": next_steps},
        },
    )
    await settle(stack.bot)
    return made


def done_buttons(card: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("type") == "Action.Submit" and node.get("title") == "Done":
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(card)
    return found


async def press(stack: Stack, card_id: str, user: str, data: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = await stack.control.call(
        "POST", f"/cards/{card_id}/submit", {"userId": user, "data": data}
    )
    await settle(stack.bot)
    return answer


async def people(stack: Stack) -> tuple[str, str]:
    owner = await stack.control.user("Olivia Owner")
    participant = await stack.control.user("Paul Participant")
    return owner, participant


async def test_todo_lists_my_open_next_steps_newest_call_first(stack: Stack) -> None:
    owner, participant = await people(stack)
    await make_call(stack, owner, participant, "older1", [("Send the quote", 1), ("Sign it", 2)])
    await stack.control.call("POST", "/clock", {"advanceSeconds": 3600})
    await make_call(stack, owner, participant, "newer1", [("Book the demo", 1)])
    await say(stack, owner, "todo")
    [card] = await todo_cards(stack, owner)
    text = card_as_text(card["card"])
    assert "Book the demo" in text and "Send the quote" in text
    assert text.index("Book the demo") < text.index("Send the quote")
    assert "Sign it" not in text  # the participant's, not mine
    assert len(done_buttons(card["card"])) == 2
    await say(stack, participant, "todo")
    [theirs] = await todo_cards(stack, participant)
    assert "Sign it" in card_as_text(theirs["card"])
    assert "Send the quote" not in card_as_text(theirs["card"])


async def test_done_updates_the_card_in_place_and_the_item_stays_done(stack: Stack) -> None:
    owner, participant = await people(stack)
    await make_call(stack, owner, participant, "done1", [("Send the quote", 1), ("Call back", 1)])
    await say(stack, owner, "todo")
    [card] = await todo_cards(stack, owner)
    first = done_buttons(card["card"])[0]
    answer = await press(stack, card["cardId"], owner, first["data"])
    assert answer["status"] == 200
    [updated] = await todo_cards(stack, owner)
    assert updated["cardId"] == card["cardId"]
    text = card_as_text(updated["card"])
    assert len(done_buttons(updated["card"])) == 1
    assert "Marked done" in text
    await say(stack, owner, "todo")
    latest = (await todo_cards(stack, owner))[-1]
    assert len(done_buttons(latest["card"])) == 1


async def test_someone_else_cannot_mark_my_item_done(stack: Stack) -> None:
    owner, participant = await people(stack)
    stranger = await stack.control.user("Omar Other")
    await make_call(stack, owner, participant, "steal1", [("Send the quote", 1)])
    await say(stack, owner, "todo")
    [card] = await todo_cards(stack, owner)
    [button] = done_buttons(card["card"])
    stranger_dm = await stack.control.chat([stranger, stack.bot_id])
    await signed_press(
        stack,
        user=stranger,
        account=defaults.ACCOUNT_ID,
        chat_id=stranger_dm,
        data=button["data"],
        card_id=card["cardId"],
    )
    await settle(stack.bot)
    await say(stack, owner, "todo")
    latest = (await todo_cards(stack, owner))[-1]
    assert len(done_buttons(latest["card"])) == 1


async def test_an_empty_todo_says_so(stack: Stack) -> None:
    owner, _ = await people(stack)
    await say(stack, owner, "todo")
    assert "no open next steps" in (await last_text(stack, owner)).lower()


async def test_todo_all_is_for_administrators_of_the_account(stack: Stack) -> None:
    owner, participant = await people(stack)
    admin = await stack.control.user("Ada Admin", extensionId=ADMIN_ID)
    await make_call(stack, owner, participant, "all1", [("Send the quote", 1), ("Sign it", 2)])
    await say(stack, participant, "todo all")
    assert "administrators" in await last_text(stack, participant)
    await say(stack, admin, "todo all")
    [card] = await todo_cards(stack, admin)
    text = card_as_text(card["card"])
    assert "Send the quote" in text and "Sign it" in text
    assert "Olivia Owner" in text and "Paul Participant" in text


async def test_todo_with_many_long_next_steps_still_arrives_and_says_how_many_more(
    stack: Stack,
) -> None:
    """RingCentral refuses an oversized card (the sandbox: over 40,000 bytes); a long list
    of wordy next steps shows as many as fit and counts the rest, instead of nothing."""
    owner, participant = await people(stack)
    steps = [(f"Step {n}: " + "follow up on the quote " * 90, 1) for n in range(25)]
    await make_call(stack, owner, participant, "long1", steps)
    await say(stack, owner, "todo")
    [card] = await todo_cards(stack, owner)
    shown = len(done_buttons(card["card"]))
    assert 1 <= shown < 25
    assert f"And {25 - shown} more" in card_as_text(card["card"])
