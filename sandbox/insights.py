"""Plausible RingSense RecordingInsights for a simulated call.

The shape follows the docs' pbx sample (fixture ringsense-insights-record-pbx.json):
speaker ids `p-<session>-<n>`, transcript times in seconds, `AIScore` as a string,
summary paragraphs indexed 0→1, 1→2. The words are picked from a small bank of
business-call topics with the world's seeded random, so runs are reproducible.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Literal

ALL_INSIGHT_KEYS = (
    "Transcript",
    "Summary",
    "BulletedSummary",
    "NextSteps",
    "Highlights",
    "AIScore",
    "Sentiment",
    "CallNotes",
)
NOTIFIED_BY_DEFAULT = ("Transcript", "Summary", "Sentiment", "NextSteps")
"""What the real pbx event sample carries; REST serves every insight."""


@dataclass(frozen=True)
class Speaker:
    name: str
    extension_id: str | None
    account_id: str | None
    phone_number: str | None


@dataclass(frozen=True)
class _Topic:
    subject: str
    lines: tuple[str, ...]
    steps: tuple[str, ...]
    bullets: tuple[str, ...]
    highlight: str


_TOPICS = (
    _Topic(
        subject="the renewal of the annual support contract",
        lines=(
            "Thanks for making the time, I wanted to go over the renewal before month end.",
            "Sure. We looked at the usage numbers and the team is happy with the service.",
            "Good to hear. The new price includes the premium support tier.",
            "Could you send the updated quote so finance can review it?",
            "Absolutely, I will also include the onboarding plan for the two new offices.",
            "Great, then we can sign by Friday if legal has no objections.",
        ),
        steps=(
            "Send the updated quote with the premium support tier.",
            "Review the quote with finance and legal.",
            "Schedule the onboarding for the two new offices.",
        ),
        bullets=(
            "The customer is satisfied with the service and plans to renew.",
            "The new price includes premium support.",
            "Signature is expected by Friday pending legal review.",
        ),
        highlight="The customer agreed to renew if legal approves by Friday.",
    ),
    _Topic(
        subject="an outage of the billing integration",
        lines=(
            "Hi, since this morning invoices are not being synced to our accounting system.",
            "I am sorry about that. Can you tell me when you noticed the first failure?",
            "Around eight o'clock, right after the scheduled export.",
            "I see errors from the connector on our side, it looks like an expired credential.",
            "Can you fix it today? Our month-end close starts tomorrow.",
            "Yes, I will rotate the credential and re-run the export within the hour.",
        ),
        steps=(
            "Rotate the connector credential and re-run the export.",
            "Confirm that yesterday's invoices arrived in the accounting system.",
            "Add monitoring for credential expiry.",
        ),
        bullets=(
            "Invoice sync failed since the morning export.",
            "Root cause is an expired connector credential.",
            "A fix was promised within the hour, before month-end close.",
        ),
        highlight="The sync failure is caused by an expired connector credential.",
    ),
    _Topic(
        subject="planning the product demo for the regional sales team",
        lines=(
            "Let's plan the demo for the regional sales team next Tuesday.",
            "Sounds good. Should we show the new analytics dashboard?",
            "Yes, and the mobile app, they keep asking about it.",
            "I can prepare a short script and a sandbox account with sample data.",
            "Perfect. I will book the room and send the invitation.",
            "Let's do a dry run on Monday afternoon.",
        ),
        steps=(
            "Prepare the demo script and a sandbox account with sample data.",
            "Book the room and send the invitation for Tuesday.",
            "Run a dry run on Monday afternoon.",
        ),
        bullets=(
            "Demo for the regional sales team is planned for Tuesday.",
            "It will cover the analytics dashboard and the mobile app.",
            "A dry run is scheduled for Monday.",
        ),
        highlight="The demo will show the new analytics dashboard and the mobile app.",
    ),
)


def speaker_id(source_session_id: str, index: int) -> str:
    return f"p-{source_session_id.removeprefix('s-')}-{index}"


def build_recording_insights(
    rng: random.Random,
    *,
    owner: Speaker,
    participants: list[Speaker],
    direction: Literal["Inbound", "Outbound"],
    duration_sec: int,
    source_session_id: str,
    source_record_id: str,
    recording_start_time: str,
    creation_time: str,
    domain: str = "pbx",
) -> dict[str, Any]:
    """A full RecordingInsights body for one recorded call leg."""
    speakers = [owner, *participants]
    speaker_ids = [speaker_id(source_session_id, n) for n in range(1, len(speakers) + 1)]
    counterpart = participants[0].name if participants else "Unknown"
    caller, callee = (
        (owner.name, counterpart) if direction == "Outbound" else (counterpart, owner.name)
    )
    topic = rng.choice(_TOPICS)

    transcript: list[dict[str, Any]] = []
    cursor = round(rng.uniform(1.0, 3.0), 2)
    slot = max(2.0, duration_sec / (len(topic.lines) + 1))
    for index, line in enumerate(topic.lines):
        start = cursor
        end = round(min(duration_sec - 0.1, start + rng.uniform(0.6, 0.9) * slot), 2)
        transcript.append(
            {
                "speakerId": speaker_ids[index % len(speaker_ids)],
                "text": line,
                "start": start,
                "end": max(end, round(start + 0.5, 2)),
            }
        )
        cursor = round(start + slot, 2)

    def moment(line_index: int) -> tuple[float, float]:
        unit = transcript[min(line_index, len(transcript) - 1)]
        return float(unit["start"]), float(unit["end"])

    next_steps = []
    for index, step in enumerate(topic.steps):
        start, end = moment(2 * index + 1)
        next_steps.append(
            {
                "start": start,
                "end": end,
                "value": step,
                "speakerId": speaker_ids[index % len(speaker_ids)],
            }
        )
    highlight_start, highlight_end = moment(3)
    score = rng.randint(5, 9)
    sentiment = rng.choice(("Positive", "Positive", "Neutral", "Negative"))

    return {
        "title": f"Call from {caller} to {callee}",
        "domain": domain,
        "sourceSessionId": source_session_id,
        "sourceRecordId": source_record_id,
        "callDirection": direction,
        "ownerExtensionId": owner.extension_id,
        "recordingDurationMs": duration_sec * 1000 + rng.randint(0, 999),
        "recordingStartTime": recording_start_time,
        "creationTime": creation_time,
        "lastModifiedTime": creation_time,
        "speakerInfo": [
            _speaker_info(speaker, speaker_ids[index]) for index, speaker in enumerate(speakers)
        ],
        "insights": {
            "Transcript": transcript,
            "Summary": [
                {
                    "start": 0,
                    "end": 1,
                    "value": f"The call is about {topic.subject}.",
                },
                {
                    "start": 1,
                    "end": 2,
                    "value": f"{caller} and {callee} agreed on the next steps.",
                },
            ],
            "BulletedSummary": [{"value": bullet} for bullet in topic.bullets],
            "NextSteps": next_steps,
            "Highlights": [
                {
                    "start": highlight_start,
                    "end": highlight_end,
                    "value": topic.highlight,
                    "speakerId": speaker_ids[min(1, len(speaker_ids) - 1)],
                }
            ],
            "AIScore": [{"value": str(score)}],
            "Sentiment": [{"value": sentiment}],
            "CallNotes": [{"value": "Call notes.\n" + "\n".join(f"- {b}" for b in topic.bullets)}],
        },
    }


def _speaker_info(speaker: Speaker, speaker_id_value: str) -> dict[str, Any]:
    info: dict[str, Any] = {
        "speakerId": speaker_id_value,
        "name": speaker.name,
        "accountId": speaker.account_id,
        "extensionId": speaker.extension_id,
    }
    if speaker.phone_number:
        info["phoneNumber"] = speaker.phone_number
    return info


def only_insights(record: dict[str, Any], keys: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """The record with just the given insight keys (those it has)."""
    insights = record.get("insights") or {}
    return {
        **record,
        "insights": {key: insights[key] for key in keys if key in insights},
    }
