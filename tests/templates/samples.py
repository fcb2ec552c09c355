"""Real RingCentral payloads (from ../shared/fixtures) and variations of them, for card tests:
RingSense insights, AI API (Interaction Analytics) results and RingCX transcripts."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

from bot.analysis import InteractionAnalysis, JobResult
from bot.ringsense import CallInsights
from bot.settings import Channel, UserSettings
from tests.conftest import FIXTURES_DIR, load_fixture

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


# --- the AI API (Interaction Analytics) and RingCX ------------------------------------------

#: The docs' analyze-interaction result: `...` elisions and trailing commas, not JSON.
AI_DOCS_EXCERPT = FIXTURES_DIR / "ai-analyze-interaction-success.docs-excerpt.json"
AI_JOB_ID = "80800e1a-a663-11ee-b548-0050568ccd07"
RECORDING_LABEL = "recording 2728084995017"
#: When the sample job was asked for (its creationTime, to the second).
REQUESTED_AT = datetime(2023, 12, 29, 16, 1, 18, tzinfo=UTC)

_ELISION = re.compile(r"^\s*\.\.\.\s*,?\s*\n", re.MULTILINE)
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")


def clean_docs_excerpt(text: str) -> str:
    """The docs excerpt made JSON by hand-cleaning in code: drop the `...` lines (the
    elided items) and the commas left dangling before `}` or `]`. Nothing else changes."""
    return _TRAILING_COMMA.sub(r"\1", _ELISION.sub("", text))


def analyze_interaction_body() -> dict[str, Any]:
    """The docs' analyze-interaction job result (Success), as valid JSON."""
    body: dict[str, Any] = json.loads(
        clean_docs_excerpt(AI_DOCS_EXCERPT.read_text(encoding="utf-8"))
    )
    return body


#: One emotion per utterance of the docs excerpt (the 2022 docs' `insights` shape).
SAMPLE_EMOTIONS = ["Neutral", "Neutral", "Neutral", "Anticipation", "Neutral", "Trust", "Joy"]


def full_analysis_body() -> dict[str, Any]:
    """The docs excerpt plus what the 2022 docs show and the excerpt lacks: an emotion per
    utterance, the Energy speaker insight (one value a numeric string), an extractive
    summary, tasks and a title. Every part of the analysis card then has content."""
    body = analyze_interaction_body()
    response = body["response"]
    for utterance, emotion in zip(response["utteranceInsights"], SAMPLE_EMOTIONS, strict=True):
        utterance["insights"] = [{"name": "Emotion", "value": emotion, "confidence": 0.7}]
    response["speakerInsights"]["insights"].append(
        {
            "name": "Energy",
            "values": [{"speakerId": "0", "value": 86.64}, {"speakerId": "1", "value": "62.69"}],
        }
    )
    insights = {item["name"]: item for item in response["conversationalInsights"]}
    insights["ExtractiveSummary"]["values"] = [
        {"value": "I would like to know how to use this car.", "start": 9.8, "end": 11.16},
        {"sentence": "Yes, this is Meredith Blake.", "start": 21.36, "end": 23.58},
    ]
    response["conversationalInsights"] += [
        {"name": "Tasks", "values": [{"value": "Explain how to pair the headset.", "start": 9.8}]},
        {"name": "Titles", "values": [{"value": "Car bluetooth headset help", "start": 3.72}]},
    ]
    return body


def sample_analysis() -> InteractionAnalysis:
    """The full sample's analysis."""
    analysis = JobResult.from_api(full_analysis_body()).analysis
    assert analysis is not None
    return analysis


def analysis_of(response: dict[str, Any]) -> InteractionAnalysis:
    return InteractionAnalysis.from_api(response)


def utterances_of(count: int, text: str = "Line {n}.") -> list[dict[str, Any]]:
    """`count` utterances, alternating speakers "0" and "1", 7 seconds apart."""
    return [
        {
            "speakerId": str(i % 2),
            "text": text.format(n=i + 1),
            "start": 7.0 * i,
            "end": 7.0 * i + 5,
        }
        for i in range(count)
    ]


def ringcx_segments() -> list[dict[str, Any]]:
    """The real interaction-metadata answer (four segments: voice, messaging, email,
    messenger)."""
    items: list[dict[str, Any]] = load_fixture("ringcx-interaction-metadata-response.json")
    return items


def ringcx_voice_transcript() -> dict[str, Any]:
    """The real voice transcript answer (no names, no participant types)."""
    body: dict[str, Any] = load_fixture("ringcx-transcript-response-voice.json")
    return body


def ringcx_named_transcript() -> dict[str, Any]:
    """The spec's digital example with the names RingCX can send: an agent and a contact."""
    return {
        "channelClass": "DIGITAL",
        "errorCode": None,
        "errorMessage": None,
        "transcript": [
            {
                "participantId": "d-6555aa00cd0df30007872d38-6555aa00cd0df30007872d37",
                "rcUserId": None,
                "participantName": "Jordan Lee",
                "participantType": "contact",
                "timestamp": "1721651880000",
                "message": "I cannot transfer number porting",
            },
            {
                "participantId": "d-6555b45ccd0df30007872dd2-1700115548459-18bd6d7301135",
                "rcUserId": "665127314",
                "participantName": "Alex Rivera",
                "participantType": "agent",
                "timestamp": "1721651881000",
                "message": "Can you provide your RC account? And describe the steps you met?",
            },
        ],
    }
