"""The to-do card as a person reads it: each open next step with its call and a Done
button; call text stays literal; a count when more are open than shown."""

from __future__ import annotations

from bot.cards import CardRenderer, card_as_text
from bot.cards.todo import todo_card
from bot.storage import NextStepItem
from tests.templates.adaptive_cards import assert_matches_golden, submit_actions, text_runs
from tests.templates.samples import NEW_YORK


def _item(item_id: int, text: str) -> NextStepItem:
    return NextStepItem(
        item_id=item_id,
        account_id="1",
        call_key="pbx:1",
        assignee_extension_id="101",
        owner_name="Alex Rivera",
        text=text,
        state="open",
        call_title="Call from Alex Rivera to ACME",
        call_start="2024-09-04T20:44:00.000Z",
    )


def test_the_todo_card_matches_the_golden_file() -> None:
    card = todo_card(
        CardRenderer(),
        [_item(1, "Send the updated quote"), _item(2, "**Book** the [demo](https://x.example)")],
        NEW_YORK,
        heading="Everyone's open next steps",
        list_name="all",
        total=3,
        show_owner=True,
    )
    assert_matches_golden(card, "todo.card.json")
    text = card_as_text(card)
    assert "Alex Rivera · Send the updated quote" in text
    assert "Call from Alex Rivera to ACME · Wed 4 Sep 2024, 16:44 EDT" in text
    # Call text never becomes bold or a link: it is shown with look-alike characters.
    runs = text_runs(card)
    assert any("Book" in r and "demo" in r for r in runs)
    assert not any("**" in r or "[demo]" in r for r in runs)
    assert "And 1 more" in text
    assert [a.get("data") for a in submit_actions(card)] == [
        {"action": "todo.done", "item": "1", "list": "all"},
        {"action": "todo.done", "item": "2", "list": "all"},
    ]


def test_the_daily_rollup_card_matches_the_golden_file() -> None:
    """The rollup is the to-do card with the day's calls first; its Done buttons carry the
    day so a press redraws that day's rollup."""
    card = todo_card(
        CardRenderer(),
        [_item(1, "Send the updated quote")],
        NEW_YORK,
        heading="Your day, Wed 4 Sep",
        list_name="rollup",
        calls=["Call from Alex Rivera to ACME · 16:44 · 12 min 34 s"],
        calls_heading="Analysed calls (1)",
        day="2024-09-04",
    )
    assert_matches_golden(card, "rollup.card.json")
    text = card_as_text(card)
    assert text.index("Analysed calls (1)") < text.index("Send the updated quote")
    assert [a.get("data") for a in submit_actions(card)] == [
        {"action": "todo.done", "item": "1", "list": "rollup", "day": "2024-09-04"},
    ]
