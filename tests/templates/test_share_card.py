"""The "Share to…" card as a person reads it: the call, a button per chat where everyone
may see it, a count of chats left out, and for a call with external people a question
with its "Share anyway" button."""

from __future__ import annotations

from bot.cards import CardRenderer, card_as_text
from bot.cards.share import share_card
from tests.templates.adaptive_cards import assert_matches_golden, submit_actions
from tests.templates.samples import merged_insights


def test_the_share_card_matches_the_golden_file() -> None:
    call = merged_insights()
    card = share_card(
        CardRenderer(), call, "pbx:1", [("11", "Deal room"), ("12", "All sales")], skipped=1
    )
    assert_matches_golden(card, "share.card.json")
    text = card_as_text(card)
    assert call.title in text
    assert "1 other chat not listed" in text
    assert [a["data"] for a in submit_actions(card)] == [
        {"action": "digest.share.to", "callKey": "pbx:1", "chatId": "11"},
        {"action": "digest.share.to", "callKey": "pbx:1", "chatId": "12"},
    ]


def test_the_question_for_a_call_with_external_people() -> None:
    card = share_card(
        CardRenderer(),
        merged_insights(),
        "pbx:1",
        [("11", "Deal room")],
        warning="This call had people from outside your company. Share it to Deal room anyway?",
        confirm_chat=("11", "Deal room"),
    )
    assert_matches_golden(card, "share-confirm.card.json")
    assert "outside your company" in card_as_text(card)
    anyway = [a for a in submit_actions(card) if a["title"] == "Share anyway"]
    assert [a["data"] for a in anyway] == [
        {"action": "digest.share.to", "callKey": "pbx:1", "chatId": "11", "confirmed": "yes"}
    ]


def test_no_chat_says_what_to_do() -> None:
    card = share_card(CardRenderer(), merged_insights(), "pbx:1", [])
    assert "Add me to one with the people who were on it" in card_as_text(card)
    assert submit_actions(card) == []
