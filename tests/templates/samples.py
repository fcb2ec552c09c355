"""Real RingSense payloads (from ../shared/fixtures) and variations of them, for card tests."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

from bot.ringsense import CallInsights
from bot.settings import Channel, UserSettings
from tests.conftest import load_fixture

NEW_YORK = ZoneInfo("America/New_York")

JOHN = "p-a0e7b361acc0az191bec7e275z7cae070000-1"
TRACY = "p-a0e7b361acc0az191bec7e275z7cae070000-2"

#: Highlights no real sample has yet (API-FACTS C.2); shaped as the spec describes them.
SAMPLE_HIGHLIGHTS = [
    {"speakerId": TRACY, "value": "The guide ships after review.", "start": 75.3, "end": 80.1},
    {"speakerId": JOHN, "value": "Test first, then publish.", "start": 3725.0, "end": 3730.0},
    {"value": "Nobody said who said this.", "start": 9.0},
]

RINGSENSE_URL = "https://ringsense.ringcentral.com/calls/0b8f7c1e-4d59-4ad6-9d53-8f7c1e4d59aa"


def event_body() -> dict[str, Any]:
    """The body of the real pbx notification (Transcript, Summary, Sentiment, NextSteps)."""
    body: dict[str, Any] = load_fixture("ringsense-event-pbx.json")["body"]
    return body


def record_body() -> dict[str, Any]:
    """The real REST insights record of the same call (adds AIScore, BulletedSummary, ...)."""
    record: dict[str, Any] = load_fixture("ringsense-insights-record-pbx.json")
    return record


def merged_insights() -> CallInsights:
    """What the bot knows after the notification and the REST fetch."""
    return CallInsights.from_api(event_body()).merged_with(CallInsights.from_api(record_body()))


def full_body() -> dict[str, Any]:
    """The record with highlights and a RingSense link: every digest section filled."""
    body = copy.deepcopy(record_body())
    body["insights"]["Highlights"] = copy.deepcopy(SAMPLE_HIGHLIGHTS)
    body["rsRecordUri"] = RINGSENSE_URL
    return body


def insights_with(**changes: Any) -> CallInsights:
    """The full record (every section, a link) with some top-level fields replaced."""
    body = full_body()
    body.update(changes)
    return CallInsights.from_api(body)


def transcript_of(lines: int) -> list[dict[str, Any]]:
    """A transcript of `lines` utterances, alternating John and Tracy, 7 seconds apart."""
    return [
        {"speakerId": (JOHN, TRACY)[i % 2], "text": f"Line {i + 1}.", "start": 7.0 * i}
        for i in range(lines)
    ]


def customised_settings() -> UserSettings:
    """Settings where every editable field differs from the default, with two channels."""
    return UserSettings(
        extension_id="62288330001",
        account_id="809646016",
        opted_in=True,
        direct_messages=False,
        channels=(Channel("1055879168001", "Sales team"), Channel("1055879168002", "Ops", False)),
        sections=("summary", "next_steps"),
        directions=frozenset({"Inbound"}),
        internal_calls=False,
        external_calls=True,
        min_duration_s=300,
        min_ai_score=6.5,
        timezone="Europe/Oslo",
        external_to_channels=True,
    )


#: A moment far enough ahead that settings paused until then are paused when tests run.
FAR_FUTURE = datetime(2099, 3, 1, 15, 30, tzinfo=UTC)

#: Text from a call (or a person) that must survive into a card unchanged.
NASTY = [
    'He said "stop" \\ then left',
    "line one\nline two\r\nline three\ttab",
    "{{ title }} {% if x %}{% endif %} {# c #} ${x} $(y)",
    "**bold** _it_ [link](javascript:alert(1)) `code` # heading\n- item\n1. one",
    "<b>html</b> <script>alert('x')</script> &amp; &lt;",
    "emoji 😀👩‍💻🇳🇴 and ünïcödé 中文 עברית",
    "\u2028\u2029 separators \u202e reversed",
    '}]}, {"type": "Action.ShowCard"',
]


call_text = (
    st.lists(
        st.one_of(
            st.sampled_from(["\"", "\\", "\n", "{{", "}}", "{%", "%}", "${x}", "**md**",
                             "<b>html</b>", "😀", "'", "&", "\t", "`", "#", "-", "\u2028"]),
            st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00")),
        ),
        min_size=1,
        max_size=8,
    )
    .map("".join)
    .filter(lambda text: bool(text.strip()))
)  # fmt: skip
