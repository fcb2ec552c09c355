"""The welcome card: what the bot does and how to start, in a direct chat and in a group."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from bot.cards import CardRenderer, card_as_text, welcome_card
from bot.quoting import quote_for_chat
from tests.templates.adaptive_cards import (
    assert_matches_golden,
    assert_valid_card,
    markdown_texts,
    submit_actions,
    text_runs,
)
from tests.templates.samples import NASTY, call_text


@cache
def renderer() -> CardRenderer:
    return CardRenderer()


def welcome(chat_kind: str, bot_name: str = "Digest Bot") -> dict[str, Any]:
    return welcome_card(renderer(), bot_name=bot_name, chat_kind=chat_kind)


@pytest.mark.parametrize("chat_kind", ["direct", "group"])
def test_welcome_matches_the_golden_file(chat_kind: str) -> None:
    card = welcome(chat_kind)
    assert_valid_card(card)
    assert_matches_golden(card, f"welcome-{chat_kind}.card.json")


def test_in_a_direct_chat_it_explains_the_digest_and_says_how_to_start() -> None:
    lines = card_as_text(welcome("direct")).splitlines()

    assert lines[0] == "Hi, I'm Digest Bot"
    assert lines[1].startswith("After each of your recorded calls that RingSense analyses")
    for part in ("summary", "next steps", "highlights", "AI score"):
        assert part in lines[1]
    assert "To start, say optin. Your digests come here, in this chat with me." in lines
    assert (
        "Say settings to choose which calls and sections you get, and help for all my commands."
    ) in lines
    assert "channel add" not in card_as_text(welcome("direct"))


def test_in_a_group_it_says_how_to_get_digests_here_and_what_is_posted() -> None:
    text = card_as_text(welcome("group"))

    assert "mention me with channel add: @Digest Bot channel add." in text
    assert "Only calls you own are posted here" in text
    assert "calls with people outside your company only if you allow it" in text
    assert "@Digest Bot help" in text
    assert "say optin" not in text


def test_the_welcome_has_no_buttons() -> None:
    for kind in ("direct", "group"):
        assert submit_actions(welcome(kind)) == []
        assert "actions" not in welcome(kind)


def test_an_unknown_chat_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="chat_kind"):
        welcome("team")


def test_a_bot_without_a_name_still_greets() -> None:
    assert card_as_text(welcome("direct", "  ")).splitlines()[0] == "Hi, I'm the digest bot"


def assert_bot_name_literal(name: str) -> None:
    for kind in ("direct", "group"):
        card = welcome(kind, name)
        assert_valid_card(card)
        assert quote_for_chat(name) in text_runs(card)
        assert markdown_texts(card) == markdown_texts(welcome(kind, "Plain words"))


@pytest.mark.parametrize("name", NASTY)
def test_the_bot_name_is_shown_exactly(name: str) -> None:
    assert_bot_name_literal(name)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=call_text)
def test_any_bot_name_survives(name: str) -> None:
    assert_bot_name_literal(name)
