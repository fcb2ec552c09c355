"""Dialogs answering a button: RingCentral's dialog shape around a small notice card."""

from __future__ import annotations

from functools import cache

import pytest

from bot.cards import CardError, CardRenderer, card_as_text, feedback_dialog, message_dialog
from bot.quoting import quote_for_chat
from tests.conftest import load_fixture
from tests.templates.adaptive_cards import (
    assert_valid_card,
    markdown_texts,
    submit_actions,
    text_runs,
)
from tests.templates.samples import NASTY


@cache
def renderer() -> CardRenderer:
    return CardRenderer()


def test_a_dialog_has_the_shape_ringcentral_documents() -> None:
    documented = load_fixture("interactive-message-dialog-response-card.json")
    dialog = message_dialog(renderer(), "Transcript", "The transcript is in your direct messages.")

    assert dialog["type"] == documented["type"] == "dialog"
    assert set(dialog["dialog"]) <= set(documented["dialog"])
    assert dialog["dialog"]["title"] == "Transcript"
    assert dialog["dialog"]["size"] == "small"
    card = dialog["dialog"]["card"]
    assert_valid_card(card)
    assert card["$schema"] == documented["dialog"]["card"]["$schema"]
    assert card_as_text(card) == "The transcript is in your direct messages.\n"
    assert submit_actions(card) == []


@pytest.mark.parametrize(
    ("verdict", "thanks"),
    [
        ("helpful", "Glad the digest helped. Thanks for letting us know.\n"),
        ("not_helpful", "Sorry it missed the mark. Thanks for telling us; it helps us improve.\n"),
    ],
)
def test_feedback_is_thanked(verdict: str, thanks: str) -> None:
    dialog = feedback_dialog(renderer(), verdict)

    assert dialog["dialog"]["title"] == "Thanks for your feedback"
    assert dialog["dialog"]["size"] == "small"
    assert_valid_card(dialog["dialog"]["card"])
    assert card_as_text(dialog["dialog"]["card"]) == thanks


def test_an_unknown_verdict_is_refused() -> None:
    with pytest.raises(ValueError, match="verdict"):
        feedback_dialog(renderer(), "meh")


def test_a_notice_needs_text() -> None:
    with pytest.raises(CardError, match="text"):
        message_dialog(renderer(), "Oops", "  ")


@pytest.mark.parametrize("text", NASTY)
def test_notice_text_is_shown_exactly(text: str) -> None:
    card = message_dialog(renderer(), "Notice", text)["dialog"]["card"]

    assert_valid_card(card)
    assert text_runs(card) == [quote_for_chat(text)]
    assert markdown_texts(card) == []
    assert "\n" not in card["fallbackText"]
