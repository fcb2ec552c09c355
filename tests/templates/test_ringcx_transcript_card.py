"""The RingCX transcript card: the segment's facts, who said what when, cut short politely,
and names and messages from RingCX kept literal."""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings

from bot.cards import (
    CARD_BYTE_BUDGET,
    CardRenderer,
    card_as_text,
    card_bytes,
    ringcx_transcript_card,
)
from bot.quoting import quote_for_chat
from bot.ringcx_model import Segment, Transcript
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
    ringcx_named_transcript,
    ringcx_segments,
    ringcx_voice_transcript,
)


@cache
def renderer() -> CardRenderer:
    return CardRenderer()


def voice_segment(**changes: Any) -> Segment:
    item = copy.deepcopy(ringcx_segments()[0])
    item.update(changes)
    return Segment.from_api(item)


def shown(
    transcript: dict[str, Any], segment: Segment | None = None, **options: Any
) -> dict[str, Any]:
    return ringcx_transcript_card(
        renderer(),
        segment=segment or voice_segment(),
        transcript=Transcript.from_api(transcript),
        tz=options.pop("tz", NEW_YORK),
        **options,
    )


def lines_of(card: dict[str, Any]) -> list[str]:
    return card_as_text(card).splitlines()


def messages(count: int) -> dict[str, Any]:
    """A transcript of `count` messages, contact and agent in turn, one second apart."""
    return {
        "channelClass": "VOICE",
        "transcript": [
            {
                "participantId": ("c", "a")[i % 2],
                "participantType": ("contact", "agent")[i % 2],
                "timestamp": str(1721651880000 + 1000 * i),
                "message": f"Message {i + 1}.",
            }
            for i in range(count)
        ],
    }


def test_the_real_payloads_match_the_golden_file() -> None:
    card = shown(ringcx_voice_transcript(), queue_label="Tier 2 support")
    assert_valid_card(card)
    assert_matches_golden(card, "ringcx-transcript.card.json")


def test_the_real_voice_transcript_reads_well() -> None:
    card = shown(ringcx_voice_transcript())
    shown_text = json.dumps(card["body"])
    assert "985901004" not in shown_text and "76873" not in shown_text, "no raw numbers"

    assert lines_of(card) == [
        "Contact center transcript",
        "Direction: Inbound",
        "Channel: Voice",
        "Start: Mon 22 Jul 2024, 07:24 EDT",
        "Duration: 7 s",
        "",
        # Neither participant id is the segment's agent (the real sample): nobody is
        # numbered "Speaker 1" as if order of appearance said who the customer was.
        "08:38:00 Unidentified speaker A: yes sir",
        "08:38:01 Unidentified speaker B: ok",
    ]
    assert card["fallbackText"] == "Contact center transcript, Mon 22 Jul 2024, 07:24 EDT, 7 s"
    assert submit_actions(card) == []


def test_the_agent_is_named_from_the_transcript_and_the_queue_by_the_caller() -> None:
    card = shown(ringcx_named_transcript(), queue_label="Tier 2 support", tz=ZoneInfo("UTC"))
    text = lines_of(card)

    assert "Agent: Alex Rivera" in text
    assert "Queue: Tier 2 support" in text
    assert text[-2:] == [
        "12:38:00 Jordan Lee: I cannot transfer number porting",
        "12:38:01 Alex Rivera: Can you provide your RC account? And describe the steps you met?",
    ]
    # names are RingCX's text: TextRuns, never fact values (which render markdown)
    assert "Alex Rivera" in text_runs(card)
    assert "Alex Rivera" not in markdown_texts(card)


def test_unnamed_agents_and_contacts_are_called_so() -> None:
    body = ringcx_named_transcript()
    for line in body["transcript"]:
        line["participantName"] = None
    text = lines_of(shown(body, tz=ZoneInfo("UTC")))

    assert text[-2:] == [
        "12:38:00 Contact: I cannot transfer number porting",
        "12:38:01 Agent: Can you provide your RC account? And describe the steps you met?",
    ]
    # with no name anywhere, no agent line: an extension number is nobody's name
    assert not [line for line in text if "985901004" in line or line.startswith("Agent: ")]


def test_the_agents_lines_are_known_by_the_segments_ids_and_the_rest_is_the_customer() -> None:
    body = ringcx_voice_transcript()
    segment = voice_segment()
    body["transcript"][1]["participantId"] = segment.participant_id
    text = lines_of(shown(body, segment=segment, agent_label="Alex Rivera"))
    assert text[-2:] == ["08:38:00 Customer: yes sir", "08:38:01 Alex Rivera: ok"]
    assert "Agent: Alex Rivera" in text


def test_a_segment_with_little_known_shows_only_that() -> None:
    segment = Segment.from_api({"dialogId": "d-1", "segmentId": "s-1"})
    card = shown({"transcript": [{"message": "hello"}]}, segment=segment)

    assert_valid_card(card)
    assert lines_of(card) == ["Contact center transcript", "", "Unidentified speaker A: hello"]
    assert card["fallbackText"] == "Contact center transcript"


def test_an_unknown_channel_is_named_plainly_or_left_out() -> None:
    text = lines_of(shown(messages(1), voice_segment(channelType="WHATS_APP")))
    assert "Channel: Whats app" in text
    text = lines_of(shown(messages(1), voice_segment(channelType="**x**")))
    assert not any(line.startswith("Channel:") for line in text)


def test_an_empty_transcript_says_so() -> None:
    card = shown({"channelClass": "VOICE", "errorCode": None, "transcript": []})

    assert_valid_card(card)
    assert lines_of(card)[-1] == "RingCX returned an empty transcript."


def test_ringcxs_own_problem_is_shown() -> None:
    body = messages(1)
    body.update(errorCode="PARTIAL", errorMessage="Part of the audio could not be transcribed")
    text = lines_of(shown(body))

    assert (
        "RingCX reported a problem with this transcript: "
        "Part of the audio could not be transcribed (PARTIAL)"
    ) in text


def test_a_long_transcript_shows_the_first_lines_and_says_so() -> None:
    card = shown(messages(85))
    text = lines_of(card)

    said = [line for line in text if re.match(r"\d\d:\d\d:\d\d ", line)]
    assert len(said) == 80
    assert said[0] == "08:38:00 Contact: Message 1."
    assert said[-1] == "08:39:19 Agent: Message 80."
    assert text[-1] == "Showing the first 80 of 85 lines."
    assert_valid_card(card)


def test_max_lines_is_the_callers_choice() -> None:
    assert "Showing the first" not in card_as_text(shown(messages(3), max_lines=3))
    assert lines_of(shown(messages(3), max_lines=2))[-1] == "Showing the first 2 of 3 lines."
    with pytest.raises(ValueError, match="max_lines"):
        shown(messages(3), max_lines=0)


def assert_ringcx_text_literal(text: str) -> None:
    body = ringcx_named_transcript()
    body["transcript"][0]["message"] = text
    body["transcript"][1]["participantName"] = text
    card = shown(body, queue_label=text)
    assert_valid_card(card)
    runs = text_runs(card)
    # the message, the agent (fact and line), the queue: as written, never as markup
    assert runs.count(quote_for_chat(text)) >= 4, runs
    plain = ringcx_named_transcript()
    plain["transcript"][0]["message"] = "Plain"
    plain["transcript"][1]["participantName"] = "Plain"
    assert markdown_texts(card) == markdown_texts(shown(plain, queue_label="Plain"))


@pytest.mark.parametrize("text", NASTY)
def test_messages_and_names_are_shown_exactly(text: str) -> None:
    assert_ringcx_text_literal(text)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=call_text)
def test_any_message_or_name_survives(text: str) -> None:
    assert_ringcx_text_literal(text)


def test_a_transcript_of_long_messages_fits_a_card_ringcentral_accepts() -> None:
    body = messages(85)
    for line in body["transcript"]:
        line["message"] += " and then we talked about the contract" * 10
    card = shown(body)
    assert card_bytes(card) <= CARD_BYTE_BUDGET
    text = lines_of(card)
    said = [line for line in text if re.match(r"\d\d:\d\d:\d\d ", line)]
    assert 10 < len(said) < 80
    assert text[-1] == f"Showing the first {len(said)} of 85 lines."
    assert_valid_card(card)
