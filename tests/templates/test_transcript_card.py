"""The transcript card: who said what when, cut short politely, kept literal."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from bot.cards import CARD_BYTE_BUDGET, CardRenderer, card_as_text, card_bytes, transcript_card
from bot.quoting import quote_for_chat
from bot.ringsense import CallInsights
from tests.templates.adaptive_cards import (
    actions_of_type,
    assert_matches_golden,
    assert_valid_card,
    markdown_texts,
    text_runs,
)
from tests.templates.samples import (
    JOHN,
    NASTY,
    NEW_YORK,
    RINGSENSE_URL,
    call_text,
    insights_with,
    merged_insights,
    transcript_of,
)


@cache
def renderer() -> CardRenderer:
    return CardRenderer()


def transcript(insights: CallInsights, **options: Any) -> dict[str, Any]:
    return transcript_card(renderer(), insights, NEW_YORK, **options)


def with_transcript(lines: list[dict[str, Any]], **changes: Any) -> CallInsights:
    return insights_with(insights={"Transcript": lines}, **changes)


def test_transcript_matches_the_golden_file() -> None:
    card = transcript(merged_insights())
    assert_valid_card(card)
    assert_matches_golden(card, "transcript.card.json")


def test_each_utterance_is_a_line_with_time_speaker_and_text() -> None:
    lines = card_as_text(transcript(merged_insights())).splitlines()

    assert lines[:4] == [
        "Call from John Smith to Tracy Debolah",
        "Transcript · Wed 4 Sep 2024, 16:44 EDT · 2 min 5 s",
        "",
        "00:02 John Smith: Okay, I record this meeting so we will have the RingSense meeting "
        "insights.",
    ]
    assert lines[-1] == "02:05 John Smith: Goodbye."
    assert "actions" not in transcript(merged_insights())


def test_an_utterance_without_time_or_speaker_is_just_its_text() -> None:
    card = transcript(
        with_transcript(
            [{"text": "Who said this?"}, {"text": "Me.", "speakerId": JOHN, "start": 3725}]
        )
    )
    assert card_as_text(card).splitlines()[-4:] == [
        "Who said this?",
        "1:02:05 John Smith: Me.",
        "",
        f"[Open in RingSense] {RINGSENSE_URL}",
    ]


def test_a_long_transcript_shows_the_first_lines_and_says_so() -> None:
    card = transcript(with_transcript(transcript_of(212)))
    lines = card_as_text(card).splitlines()

    shown = [line for line in lines if re.match(r"\d\d:\d\d ", line)]
    assert len(shown) == 80
    assert shown[0] == "00:00 John Smith: Line 1."
    assert shown[-1] == "09:13 Tracy Debolah: Line 80."
    assert lines[-3:] == [
        "Showing the first 80 of 212 lines. Open the call in RingSense for the rest.",
        "",
        f"[Open in RingSense] {RINGSENSE_URL}",
    ]
    assert_valid_card(card)


def test_max_lines_is_the_callers_choice() -> None:
    exact = transcript(with_transcript(transcript_of(3)), max_lines=3)
    assert "Showing the first" not in card_as_text(exact)

    cut = transcript(with_transcript(transcript_of(3), rsRecordUri=None), max_lines=2)
    text = card_as_text(cut)
    assert "Showing the first 2 of 3 lines." in text
    assert "Line 3." not in text
    assert actions_of_type(cut, "Action.OpenUrl") == []

    with pytest.raises(ValueError, match="max_lines"):
        transcript(merged_insights(), max_lines=0)


def test_a_call_without_a_transcript_says_so() -> None:
    card = transcript(with_transcript([]))

    assert_valid_card(card)
    assert card_as_text(card).splitlines() == [
        "Call from John Smith to Tracy Debolah",
        "Transcript · Wed 4 Sep 2024, 16:44 EDT · 2 min 5 s",
        "",
        "RingSense has no transcript for this call.",
        "",
        f"[Open in RingSense] {RINGSENSE_URL}",
    ]


def assert_utterance_literal(text: str) -> None:
    card = transcript(
        with_transcript([{"text": text, "speakerId": JOHN, "start": 1.0}], title=text)
    )
    assert_valid_card(card)
    # the title and the utterance, as written, never as markup
    assert text_runs(card).count(quote_for_chat(text)) == 2
    plain = transcript(
        with_transcript([{"text": "Plain", "speakerId": JOHN, "start": 1.0}], title="Plain")
    )
    assert markdown_texts(card) == markdown_texts(plain)


@pytest.mark.parametrize("text", NASTY)
def test_what_was_said_is_shown_exactly(text: str) -> None:
    assert_utterance_literal(text)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=call_text)
def test_anything_said_survives(text: str) -> None:
    assert_utterance_literal(text)


def test_a_transcript_of_long_utterances_fits_a_card_ringcentral_accepts() -> None:
    """Cards have a size limit (UNCONFIRMED; the sandbox takes 40,000 bytes): 80 long
    utterances do not fit, so fewer are shown and the note says how many."""
    long_lines = [
        {**line, "text": f"Line {i + 1}. " + "and then we talked about the contract " * 8}
        for i, line in enumerate(transcript_of(120))
    ]
    card = transcript(with_transcript(long_lines))
    assert card_bytes(card) <= CARD_BYTE_BUDGET
    lines = card_as_text(card).splitlines()
    shown = [line for line in lines if re.match(r"\d\d:\d\d ", line)]
    assert 10 < len(shown) < 80
    assert (
        f"Showing the first {len(shown)} of 120 lines. Open the call in RingSense for the rest."
        in lines
    )
    assert_valid_card(card)
