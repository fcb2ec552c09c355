"""The recent calls card: one compact row per call with an Open button."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from bot.cards import CardRenderer, calls_card, card_as_text
from bot.quoting import quote_for_chat
from bot.ringsense import CallInsights
from tests.templates.adaptive_cards import (
    assert_matches_golden,
    assert_valid_card,
    markdown_texts,
    submit_actions,
    text_runs,
)
from tests.templates.samples import (
    NASTY,
    NEW_YORK,
    call_text,
    event_body,
    insights_with,
    merged_insights,
)


@cache
def renderer() -> CardRenderer:
    return CardRenderer()


def two_calls() -> list[tuple[str, CallInsights]]:
    later = insights_with(
        title="Renewal with Acme",
        recordingStartTime="2024-09-05T14:00:00Z",
        recordingDurationMs=754000,
        insights={"AIScore": [{"value": "6.5"}]},
    )
    return [("pbx:2", later), ("pbx:1", CallInsights.from_api(event_body()))]


def calls(rows: list[tuple[str, CallInsights]], heading: str = "Your recent calls") -> Any:
    return calls_card(renderer(), rows, NEW_YORK, heading=heading)


def test_calls_match_the_golden_file() -> None:
    card = calls(two_calls())
    assert_valid_card(card)
    assert_matches_golden(card, "calls.card.json")


def test_one_row_per_call_in_the_order_given() -> None:
    card = calls(two_calls())

    assert card_as_text(card).splitlines() == [
        "Your recent calls",
        "",
        "Renewal with Acme",
        "Thu 5 Sep 2024, 10:00 EDT · 12 min 34 s · AI score 6.5/10",
        "[Open]",
        "",
        "Call from John Smith to Tracy Debolah",
        "Wed 4 Sep 2024, 16:44 EDT · 2 min 5 s",
        "[Open]",
    ]
    assert card["fallbackText"] == "Your recent calls: 2 calls"


def test_open_sends_the_call_key() -> None:
    assert [(a["title"], a["data"]) for a in submit_actions(calls(two_calls()))] == [
        ("Open", {"action": "digest.open", "callKey": "pbx:2"}),
        ("Open", {"action": "digest.open", "callKey": "pbx:1"}),
    ]


def test_a_call_known_only_by_its_ids_still_gets_a_row() -> None:
    bare = CallInsights.from_api({"domain": "pbx", "sourceRecordId": "r", "ownerExtensionId": "e"})
    card = calls([("pbx:r", bare)], heading="Recent")

    assert_valid_card(card)
    assert card_as_text(card).splitlines() == ["Recent", "", "RingSense call  [Open]"]
    assert card["fallbackText"] == "Recent: 1 call"


def test_no_calls_is_said_kindly() -> None:
    card = calls([])

    assert_valid_card(card)
    assert card_as_text(card).splitlines() == ["Your recent calls", "No analysed calls yet."]
    assert submit_actions(card) == []


def assert_titles_literal(text: str) -> None:
    rows = [("pbx:1", insights_with(title=text)), ("pbx:2", merged_insights())]
    card = calls(rows, heading=text)
    assert_valid_card(card)
    # the heading and the title, shown as written, never as markup
    assert text_runs(card).count(quote_for_chat(text)) == 2
    plain = calls([("pbx:1", insights_with(title="Plain")), ("pbx:2", merged_insights())])
    assert markdown_texts(card) == markdown_texts(plain)


@pytest.mark.parametrize("text", NASTY)
def test_titles_and_heading_are_shown_exactly(text: str) -> None:
    assert_titles_literal(text)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=call_text)
def test_any_title_survives(text: str) -> None:
    assert_titles_literal(text)
