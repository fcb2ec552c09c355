"""bot.settings_card: reading a Save submission back into settings, and the card's values
making the round trip."""

from __future__ import annotations

from dataclasses import replace
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.cards import DIGEST_SECTIONS, CardRenderer
from bot.settings import DIRECTIONS, Channel, UserSettings
from bot.settings_card import (
    ACTION_SETTINGS_SAVE,
    parse_settings_submission,
    settings_card,
)
from tests.templates.adaptive_cards import submission
from tests.templates.samples import call_text, customised_settings

SAVE = {"action": ACTION_SETTINGS_SAVE}


@cache
def renderer() -> CardRenderer:
    return CardRenderer()


def saved_from_card(stored: UserSettings, current: UserSettings) -> UserSettings:
    """Render `stored`, press Save without changing anything, parse it against `current`."""
    card = settings_card(renderer(), stored, default_timezone="America/New_York")
    new, problems = parse_settings_submission(submission(card, "Save"), current)
    assert problems == []
    return new


def parse_ok(data: dict[str, Any], current: UserSettings | None = None) -> UserSettings:
    new, problems = parse_settings_submission(data, current or customised_settings())
    assert problems == []
    return new


def parse_refused(data: dict[str, Any]) -> list[str]:
    current = customised_settings()
    new, problems = parse_settings_submission(data, current)
    assert new is current, "a refused submission changes nothing"
    return problems


# --- the round trip -------------------------------------------------------------------------


def flipped(settings_: UserSettings) -> UserSettings:
    """Default settings for the same person and channels, every channel switched over."""
    return UserSettings(
        settings_.extension_id,
        account_id=settings_.account_id,
        channels=tuple(replace(c, enabled=not c.enabled) for c in settings_.channels),
    )


def test_a_full_submission_restores_the_settings_the_card_showed() -> None:
    stored = customised_settings()
    assert stored != flipped(stored)

    assert saved_from_card(stored, flipped(stored)) == stored


def test_a_submission_of_the_defaults_restores_the_defaults() -> None:
    defaults = UserSettings("62288330001", channels=customised_settings().channels)
    assert saved_from_card(defaults, customised_settings()) == replace(
        customised_settings(),
        opted_in=False,
        direct_messages=True,
        # the sections already chosen keep their order, the others follow in ours
        sections=("summary", "next_steps", "bulleted_summary", "highlights", "call_notes"),
        directions=frozenset(DIRECTIONS),
        internal_calls=True,
        external_calls=True,
        min_duration_s=0,
        min_ai_score=None,
        timezone=None,
        external_to_channels=False,
    )


def test_saving_unchanged_keeps_a_custom_section_order_and_odd_durations() -> None:
    stored = replace(
        customised_settings(),
        sections=("next_steps", "highlights", "summary"),
        min_duration_s=90,
        min_ai_score=7.25,
    )
    assert saved_from_card(stored, stored) == stored


sections_strategy = st.sets(st.sampled_from(DIGEST_SECTIONS), min_size=1).map(
    lambda chosen: tuple(s for s in DIGEST_SECTIONS if s in chosen)
)
channels_strategy = st.lists(
    st.builds(
        Channel,
        chat_id=st.text("0123456789", min_size=1, max_size=13),
        name=call_text,
        enabled=st.booleans(),
    ),
    max_size=4,
    unique_by=lambda channel: channel.chat_id,
).map(tuple)


@st.composite
def user_settings(draw: st.DrawFn) -> UserSettings:
    internal, external = draw(st.sampled_from([(True, True), (True, False), (False, True)]))
    return UserSettings(
        extension_id="62288330001",
        opted_in=draw(st.booleans()),
        direct_messages=draw(st.booleans()),
        channels=draw(channels_strategy),
        sections=draw(sections_strategy),
        directions=frozenset(draw(st.sets(st.sampled_from(DIRECTIONS), min_size=1))),
        internal_calls=internal,
        external_calls=external,
        min_duration_s=60 * draw(st.integers(0, 600)),
        min_ai_score=draw(st.none() | st.integers(0, 100).map(lambda tenths: tenths / 10)),
        timezone=draw(st.none() | st.sampled_from(["Europe/Oslo", "Asia/Kolkata", "UTC"])),
        external_to_channels=draw(st.booleans()),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stored=user_settings())
def test_any_settings_survive_the_card_and_back(stored: UserSettings) -> None:
    assert saved_from_card(stored, flipped(stored)) == stored


# --- each field -----------------------------------------------------------------------------


def test_toggles_turn_things_off_and_on() -> None:
    new = parse_ok(
        {
            **SAVE,
            "optedIn": "false",
            "directMessages": "true",
            "externalToChannels": "false",
            "channel.1055879168001": "false",
            "channel.1055879168002": "true",
        }
    )
    assert (new.opted_in, new.direct_messages, new.external_to_channels) == (False, True, False)
    assert [(c.name, c.enabled) for c in new.channels] == [("Sales team", False), ("Ops", True)]


def test_the_card_can_never_add_a_channel() -> None:
    new = parse_ok({**SAVE, "channel.999": "true", "channel.": "true", "channel": "true"})
    assert new.channels == customised_settings().channels
    assert [c.chat_id for c in new.enabled_channels()] == ["1055879168001"]


def test_missing_keys_leave_everything_as_it_is() -> None:
    current = customised_settings()
    assert parse_settings_submission({}, current) == (current, [])
    assert parse_settings_submission(SAVE, current) == (current, [])
    new = parse_ok({**SAVE, "minAiScore": None, "optedIn": None, "timezone": None})
    assert new == current


def test_unknown_keys_are_ignored() -> None:
    assert parse_ok({**SAVE, "colour": "blue", "extensionId": "999"}) == customised_settings()


def test_empty_minimum_score_and_time_zone_mean_none() -> None:
    new = parse_ok({**SAVE, "minAiScore": "", "timezone": "  "})
    assert new.min_ai_score is None
    assert new.timezone is None


def test_empty_minimum_duration_means_every_call() -> None:
    assert parse_ok({**SAVE, "minDurationMinutes": ""}).min_duration_s == 0


@pytest.mark.parametrize(
    ("minutes", "seconds"), [("0", 0), ("1", 60), (" 45 ", 2700), ("600", 36000), ("7.0", 420)]
)
def test_minimum_duration_is_stored_in_seconds(minutes: str, seconds: int) -> None:
    assert parse_ok({"minDurationMinutes": minutes}).min_duration_s == seconds


@pytest.mark.parametrize(("score", "stored"), [("0", 0.0), ("10", 10.0), ("6.5", 6.5)])
def test_minimum_score_from_0_to_10(score: str, stored: float) -> None:
    assert parse_ok({"minAiScore": score}).min_ai_score == stored


def test_sections_directions_and_parties() -> None:
    new = parse_ok(
        {
            "sections": "call_notes,summary,highlights",
            "directions": "Outbound",
            "parties": "internal",
        }
    )
    # summary keeps its place (the person's order); new ones follow in the digest's order
    assert new.sections == ("summary", "highlights", "call_notes")
    assert new.directions == frozenset({"Outbound"})
    assert (new.internal_calls, new.external_calls) == (True, False)


def test_a_known_time_zone_is_stored_with_its_proper_spelling() -> None:
    assert parse_ok({"timezone": "america/new_york"}).timezone == "America/New_York"
    assert parse_ok({"timezone": " Asia/Kolkata "}).timezone == "Asia/Kolkata"


def test_values_that_are_not_strings_are_understood() -> None:
    new = parse_ok(
        {
            "optedIn": False,
            "directMessages": True,
            "minDurationMinutes": 10,
            "minAiScore": 7.5,
            "sections": ["summary", "highlights"],
            "directions": ("Inbound", "Outbound"),
            "channel.1055879168002": True,
        }
    )
    assert (new.opted_in, new.direct_messages) == (False, True)
    assert (new.min_duration_s, new.min_ai_score) == (600, 7.5)
    assert new.sections == ("summary", "highlights")
    assert new.directions == frozenset(DIRECTIONS)
    assert all(c.enabled for c in new.channels)


# --- problems -------------------------------------------------------------------------------

SCORE = "Minimum AI score must be a number from 0 to 10"
DURATION = "Minimum duration must be a whole number of minutes from 0 to 600"


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"minAiScore": "11"}, SCORE),
        ({"minAiScore": "-0.5"}, SCORE),
        ({"minAiScore": "six"}, SCORE),
        ({"minAiScore": "nan"}, SCORE),
        ({"minAiScore": "inf"}, SCORE),
        ({"minDurationMinutes": "1.5"}, DURATION),
        ({"minDurationMinutes": "601"}, DURATION),
        ({"minDurationMinutes": "-1"}, DURATION),
        ({"minDurationMinutes": "ten"}, DURATION),
        (
            {"timezone": "Mars/Base"},
            'Time zone "Mars/Base" is not a known time zone, e.g. America/New_York',
        ),
        (
            {"timezone": "../../etc/passwd"},
            'Time zone "../../etc/passwd" is not a known time zone, e.g. America/New_York',
        ),
        ({"sections": ""}, "Choose at least one section"),
        ({"sections": " , "}, "Choose at least one section"),
        ({"directions": ""}, "Choose at least one call direction"),
        ({"parties": ""}, "Choose internal calls, external calls, or both"),
        ({"sections": "summary,transcript"}, 'Section "transcript" is not one of'),
        ({"directions": "Sideways"}, 'Call direction "Sideways" is not one of Inbound, Outbound'),
        ({"parties": "everyone"}, 'Call kind "everyone" is not one of internal, external'),
        ({"optedIn": "maybe"}, 'Opted in must be on or off, not "maybe"'),
        ({"channel.1055879168002": "perhaps"}, 'Channel Ops must be on or off, not "perhaps"'),
    ],
)
def test_each_bad_field_is_named_and_nothing_changes(data: dict[str, Any], problem: str) -> None:
    problems = parse_refused({**SAVE, "optedIn": "false", **data})
    assert len(problems) == 1
    assert problems[0].startswith(problem), problems


def test_every_problem_is_reported_at_once() -> None:
    problems = parse_refused(
        {
            **SAVE,
            "sections": "",
            "directions": "",
            "parties": "",
            "minDurationMinutes": "0.5",
            "minAiScore": "12",
            "timezone": "Mars/Base",
        }
    )
    assert problems == [
        "Choose at least one section",
        "Choose at least one call direction",
        "Choose internal calls, external calls, or both",
        DURATION,
        SCORE,
        'Time zone "Mars/Base" is not a known time zone, e.g. America/New_York',
    ]


def test_a_long_bad_value_is_quoted_short_and_on_one_line() -> None:
    (problem,) = parse_refused({"timezone": "Mars/" + "x" * 200 + "\nsecond line"})
    assert "\n" not in problem
    assert len(problem) < 120
