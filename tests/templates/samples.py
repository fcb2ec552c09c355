"""Real RingSense payloads (from ../shared/fixtures) and variations of them, for card tests."""

from __future__ import annotations

import copy
from typing import Any
from zoneinfo import ZoneInfo

from bot.ringsense import CallInsights
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
