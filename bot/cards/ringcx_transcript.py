"""A RingCX segment's transcript card."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final
from zoneinfo import ZoneInfo

from bot.cards.formatting import direction_label, format_duration, format_start_time, plain_label
from bot.cards.render import CardRenderer
from bot.ringcx_model import (
    PARTICIPANT_AGENT,
    PARTICIPANT_CONTACT,
    Segment,
    Transcript,
    TranscriptLine,
)

RINGCX_TRANSCRIPT_TEMPLATE: Final = "ringcx_transcript.card.json.j2"


DEFAULT_RINGCX_LINES: Final = 80


RINGCX_HEADING: Final = "Contact center transcript"
RINGCX_EMPTY: Final = "RingCX returned an empty transcript."


# --- RingCX transcripts -------------------------------------------------------------------

_CHANNEL_LABELS: Final[Mapping[str, str]] = {
    "VOICE": "Voice",
    "ENGAGE_MESSAGING": "Messaging",
    "EMAIL": "Email",
    "MESSENGER": "Messenger",
}


def ringcx_transcript_view(
    *,
    segment: Segment,
    transcript: Transcript,
    tz: ZoneInfo,
    max_lines: int = DEFAULT_RINGCX_LINES,
    queue_label: str | None = None,
) -> dict[str, Any]:
    """The values `ringcx_transcript.card.json.j2` needs; see `ringcx_transcript_card`."""
    if max_lines < 1:
        raise ValueError(f"max_lines must be at least 1, got {max_lines}")
    facts = []
    direction = direction_label(segment.direction)
    if direction != "Call":
        facts.append({"title": "Direction", "value": direction.removesuffix(" call")})
    channel = _channel_label(segment.channel_type)
    if channel:
        facts.append({"title": "Channel", "value": channel})
    start = segment.start or segment.dialog_start
    if start is not None:
        facts.append({"title": "Start", "value": format_start_time(start, tz)})
    if segment.duration_ms is not None:
        facts.append({"title": "Duration", "value": format_duration(segment.duration_ms / 1000)})

    people = []
    agent = transcript.agent_name
    if agent:
        people.append({"title": "Agent: ", "value": agent})
    # An extension id or an agent group number means nothing to a reader: a line without
    # a name is left out rather than filled with the number.
    queue = queue_label if queue_label and queue_label.strip() else None
    if queue:
        people.append({"title": "Queue: ", "value": queue})

    problem = None
    if transcript.error_code or transcript.error_message:
        said = transcript.error_message or "no details"
        code = f" ({transcript.error_code})" if transcript.error_code else ""
        problem = f"RingCX reported a problem with this transcript: {said}{code}"

    total = len(transcript.lines)
    names = _ringcx_speakers(transcript.lines)
    return {
        "heading": RINGCX_HEADING,
        "facts": facts,
        "people": people,
        "problem": problem,
        "lines": [
            {
                "timestamp": (
                    f"{line.timestamp.astimezone(tz):%H:%M:%S}" if line.timestamp else None
                ),
                "speaker": names[index],
                "text": line.message,
            }
            for index, line in enumerate(transcript.lines[:max_lines])
        ],
        "empty_text": RINGCX_EMPTY,
        "truncated": (
            f"Showing the first {max_lines} of {total} lines." if total > max_lines else None
        ),
        "fallback_text": ", ".join(
            [RINGCX_HEADING, *(f["value"] for f in facts if f["title"] in ("Start", "Duration"))]
        ),
    }


def ringcx_transcript_card(
    renderer: CardRenderer,
    *,
    segment: Segment,
    transcript: Transcript,
    tz: ZoneInfo,
    max_lines: int = DEFAULT_RINGCX_LINES,
    queue_label: str | None = None,
) -> dict[str, Any]:
    """A RingCX segment's transcript: "Contact center transcript", its direction, channel,
    start and duration, the agent (the transcript's agent name) and the queue
    (`queue_label`), each only when named, then one line per message
    ("hh:mm:ss Name: message", the time in `tz`), at most `max_lines` with a note. A speaker
    without a name is "Agent" or "Contact", or "Speaker 1", "Speaker 2"... when RingCX
    does not say which (its voice transcripts do not)."""
    return renderer.render(
        RINGCX_TRANSCRIPT_TEMPLATE,
        **ringcx_transcript_view(
            segment=segment,
            transcript=transcript,
            tz=tz,
            max_lines=max_lines,
            queue_label=queue_label,
        ),
    )


def _channel_label(channel_type: str | None) -> str | None:
    if channel_type is None:
        return None
    known = _CHANNEL_LABELS.get(channel_type.upper())
    if known:
        return known
    words = channel_type.replace("_", " ").strip()
    return plain_label(words.capitalize()) if words else None


def _ringcx_speakers(lines: Sequence[TranscriptLine]) -> list[str]:
    """Each line's speaker: the name, else "Agent" / "Contact", else "Speaker n" numbered
    by participant in order of appearance."""
    unknown: dict[str | None, str] = {}
    names = []
    for line in lines:
        if line.participant_name:
            names.append(line.participant_name)
        elif line.participant_type == PARTICIPANT_AGENT:
            names.append("Agent")
        elif line.participant_type == PARTICIPANT_CONTACT:
            names.append("Contact")
        else:
            key = line.participant_id
            names.append(unknown.setdefault(key, f"Speaker {len(unknown) + 1}"))
    return names
