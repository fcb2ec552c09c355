"""The settings card as a person sees it: stored values, problems, confirmations, and the
names people give their chats kept literal."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from bot.cards import CardRenderer, card_as_text
from bot.quoting import quote_for_chat
from bot.settings import Channel, UserSettings, settings_revision
from bot.settings_card import parse_settings_submission, settings_card
from tests.templates.adaptive_cards import (
    assert_matches_golden,
    assert_valid_card,
    elements,
    inputs,
    markdown_texts,
    submission,
    submit_actions,
    text_runs,
)
from tests.templates.samples import FAR_FUTURE, NASTY, call_text, customised_settings

OWNER = "62288330001"

#: What someone might send after mistyping three fields.
BAD_SUBMISSION = {
    "action": "settings.save",
    "optedIn": "true",
    "directMessages": "true",
    "sections": "",
    "directions": "Inbound,Outbound",
    "parties": "internal,external",
    "minDurationMinutes": "5",
    "minAiScore": "11",
    "timezone": "Mars/Base",
    "externalToChannels": "false",
}


@cache
def shared_renderer() -> CardRenderer:
    return CardRenderer()


@pytest.fixture(scope="module")
def renderer() -> CardRenderer:
    return CardRenderer()


def lines_of(card: dict[str, Any]) -> list[str]:
    return card_as_text(card).splitlines()


# --- golden files ---------------------------------------------------------------------------


def test_default_settings_match_the_golden_file(renderer: CardRenderer) -> None:
    card = settings_card(renderer, UserSettings(OWNER), default_timezone="America/New_York")

    assert_valid_card(card)
    assert_matches_golden(card, "settings.card.json")


def test_settings_with_errors_match_the_golden_file(renderer: CardRenderer) -> None:
    current = UserSettings(OWNER, channels=(Channel("1055879168001", "Sales team"),))
    unchanged, problems = parse_settings_submission(BAD_SUBMISSION, current)
    assert unchanged is current
    card = settings_card(
        renderer,
        current,
        default_timezone="America/New_York",
        errors=problems,
        submitted=BAD_SUBMISSION,
    )

    assert_valid_card(card)
    assert_matches_golden(card, "settings-errors.card.json")


# --- what the person sees -------------------------------------------------------------------


def test_the_card_shows_every_stored_setting(renderer: CardRenderer) -> None:
    lines = lines_of(settings_card(renderer, customised_settings(), default_timezone="UTC"))

    assert lines[0] == "Digest settings"
    assert "[x] Opted in: send me digests of my analysed calls" in lines
    send_to = lines.index("Send my digests to")
    assert lines[send_to + 1 : send_to + 5] == [
        "[ ] Direct message",
        "[x] Sales team",
        "[ ] Ops",
        "[x] Post calls with external participants to group chats too",
    ]
    assert "Call directions: Inbound (choose: Inbound, Outbound)" in lines
    assert (
        "Internal and external calls: Calls with external participants "
        "(choose: Internal calls, Calls with external participants)"
    ) in lines
    assert "Minimum duration (minutes): 5" in lines
    assert "Minimum AI score (0 to 10): 6.5" in lines
    assert (
        "Sections: Summary, Next steps "
        "(choose: Summary, Key points, Next steps, Highlights, Call notes)"
    ) in lines
    assert "Time zone: Europe/Oslo" in lines
    assert "Dates and times are shown in this time zone. Empty: the default, UTC." in lines
    assert lines[-1] == "[Save]"


def test_default_settings_say_which_time_zone_applies(renderer: CardRenderer) -> None:
    lines = lines_of(
        settings_card(renderer, UserSettings(OWNER), default_timezone="America/Chicago")
    )

    assert "[ ] Opted in: send me digests of my analysed calls" in lines
    assert "[x] Direct message" in lines
    assert 'To add a group chat, mention me there with "channel add".' in lines
    assert "[ ] Post calls with external participants to group chats too" in lines
    assert "Minimum duration (minutes): 0" in lines
    assert "Minimum AI score (0 to 10): (empty; No minimum)" in lines
    assert "Time zone: (empty; e.g. America/New_York)" in lines
    assert "Dates and times are shown in this time zone. Empty: the default, America/Chicago." in (
        lines
    )
    assert not any(line.startswith(("Paused", "Saved", "Not saved")) for line in lines)


def test_save_is_the_only_button(renderer: CardRenderer) -> None:
    settings = customised_settings()
    card = settings_card(renderer, settings, default_timezone="UTC")

    assert [(a["title"], a["data"]) for a in submit_actions(card)] == [
        ("Save", {"action": "settings.save", "revision": settings_revision(settings)})
    ]
    assert card["actions"] == submit_actions(card)


def test_inputs_have_the_documented_ids(renderer: CardRenderer) -> None:
    card = settings_card(renderer, customised_settings(), default_timezone="UTC")

    assert set(inputs(card)) == {
        "optedIn",
        "digestScope",
        "directMessages",
        "channel.1055879168001",
        "channel.1055879168002",
        "externalToChannels",
        "directions",
        "parties",
        "minDurationMinutes",
        "minAiScore",
        "sections",
        "timezone",
    }
    number = inputs(card)["minAiScore"]
    assert (number["type"], number["min"], number["max"], number["value"]) == (
        "Input.Number",
        0,
        10,
        6.5,
    )
    duration = inputs(card)["minDurationMinutes"]
    assert (duration["min"], duration["max"], duration["value"]) == (0, 600, 5)
    assert inputs(card)["sections"]["isMultiSelect"] is True


def test_a_paused_person_sees_until_when_in_their_time_zone(renderer: CardRenderer) -> None:
    paused = replace(customised_settings(), paused_until=FAR_FUTURE)  # Europe/Oslo
    lines = lines_of(settings_card(renderer, paused, default_timezone="UTC"))
    assert (
        "Paused until Sun 1 Mar 2099, 16:30 CET. Say resume to get digests again before then."
    ) in lines

    default_zone = replace(paused, timezone=None)
    lines = lines_of(settings_card(renderer, default_zone, default_timezone="America/New_York"))
    assert any(line.startswith("Paused until Sun 1 Mar 2099, 10:30 EST.") for line in lines)

    was_paused = replace(paused, paused_until=datetime(2020, 1, 1, tzinfo=UTC))
    lines = lines_of(settings_card(renderer, was_paused, default_timezone="UTC"))
    assert not any(line.startswith("Paused") for line in lines)


def test_errors_come_first_and_the_inputs_keep_what_was_typed(renderer: CardRenderer) -> None:
    current = customised_settings()
    _, problems = parse_settings_submission(BAD_SUBMISSION, current)
    card = settings_card(
        renderer, current, default_timezone="UTC", errors=problems, submitted=BAD_SUBMISSION
    )
    lines = lines_of(card)

    assert lines[1:5] == [
        "Not saved. Please fix this and save again:",
        "Choose at least one section",
        "Minimum AI score must be a number from 0 to 10",
        'Time zone "Mars/Base" is not a known time zone, e.g. America/New_York',
    ]
    (box,) = [e for e in card["body"] if e["type"] == "Container"]
    assert box["style"] == "attention"
    assert "Sections: (none) (choose: Summary, Key points, Next steps, Highlights, Call notes)" in (
        lines
    )
    assert "Minimum AI score (0 to 10): 11" in lines
    assert "Time zone: Mars/Base" in lines
    assert "[x] Direct message" in lines  # typed, though the stored value is off
    assert "Call directions: Inbound, Outbound (choose: Inbound, Outbound)" in lines
    # what was not submitted keeps its stored value
    assert "[x] Sales team" in lines and "[ ] Ops" in lines
    assert not any(line.startswith("Saved") for line in lines)

    # pressing Save again without touching anything sends the same values back
    again = submission(card, "Save")
    assert {key: again[key] for key in BAD_SUBMISSION} == BAD_SUBMISSION


def test_a_typed_number_that_is_not_one_leaves_the_input_empty(renderer: CardRenderer) -> None:
    card = settings_card(
        renderer,
        customised_settings(),
        default_timezone="UTC",
        errors=["Minimum AI score must be a number from 0 to 10"],
        submitted={"minAiScore": "eleven"},
    )

    assert_valid_card(card)
    assert "value" not in inputs(card)["minAiScore"]


def test_saved_confirms_and_shows_the_stored_values(renderer: CardRenderer) -> None:
    card = settings_card(
        renderer,
        customised_settings(),
        default_timezone="UTC",
        saved=True,
        submitted={"minAiScore": "3"},
    )
    lines = lines_of(card)

    assert lines[1] == "Saved. Your digests follow these settings from the next call."
    assert "Minimum AI score (0 to 10): 6.5" in lines
    assert not any(line.startswith("Not saved") for line in lines)


# --- text people chose stays literal --------------------------------------------------------


def channel_card(name: str, *, default_timezone: str = "UTC") -> dict[str, Any]:
    settings_ = UserSettings(
        OWNER, channels=(Channel("1", name), Channel("2", "Plain words", False))
    )
    return settings_card(shared_renderer(), settings_, default_timezone=default_timezone)


def assert_channel_name_literal(name: str) -> None:
    card = channel_card(name)
    assert_valid_card(card)
    assert inputs(card)["channel.1"]["title"] == quote_for_chat(name)
    # nothing but our own labels reaches markdown
    assert markdown_texts(card) == markdown_texts(channel_card("Plain words"))


@pytest.mark.parametrize("name", NASTY)
def test_channel_names_are_shown_exactly(name: str) -> None:
    assert_channel_name_literal(name)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=call_text)
def test_any_channel_name_survives(name: str) -> None:
    assert_channel_name_literal(name)


def test_a_channel_without_a_name_is_called_by_its_id(renderer: CardRenderer) -> None:
    lines = lines_of(channel_card("  "))
    assert "[x] Chat 1" in lines


@pytest.mark.parametrize("text", NASTY)
def test_problems_and_typed_values_are_shown_exactly(renderer: CardRenderer, text: str) -> None:
    _, problems = parse_settings_submission({"timezone": text}, UserSettings(OWNER))
    card = settings_card(
        renderer,
        UserSettings(OWNER),
        default_timezone="Etc/GMT+5",
        errors=[*problems, text],
        submitted={"timezone": text},
    )

    assert_valid_card(card)
    assert quote_for_chat(text) in text_runs(card)
    assert inputs(card)["timezone"]["value"] == text  # what was typed, unchanged
    assert "Etc/GMT+5" in text_runs(card)
    plain = settings_card(renderer, UserSettings(OWNER), default_timezone="UTC", errors=["x"])
    assert markdown_texts(card) == markdown_texts(plain)


def test_the_form_is_made_of_inputs_and_plain_text_elements(renderer: CardRenderer) -> None:
    card = settings_card(renderer, customised_settings(), default_timezone="UTC")
    kinds = {e["type"] for e in elements(card["body"])}
    assert kinds <= {
        "TextBlock",
        "RichTextBlock",
        "TextRun",
        "Container",
        "Input.Toggle",
        "Input.ChoiceSet",
        "Input.Number",
        "Input.Text",
    }
