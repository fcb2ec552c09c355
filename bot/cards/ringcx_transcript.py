"""A RingCX segment's transcript card."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final
from zoneinfo import ZoneInfo

from bot.cards.formatting import direction_label, format_duration, format_start_time, plain_label
from bot.cards.render import CardRenderer, fitting_card
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
    agent_label: str | None = None,
) -> dict[str, Any]:
    """The values `ringcx_transcript.card.json.j2` needs; see `ringcx_transcript_card`.
    `agent_label` is the agent's name from the directory, for transcripts without one."""
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
    agent = transcript.agent_name or (agent_label.strip() if agent_label else None)
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
    agent_ids = {i for i in (segment.segment_id, segment.participant_id) if i}
    names = _ringcx_speakers(transcript.lines, agent_ids, agent)
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
    agent_label: str | None = None,
) -> dict[str, Any]:
    """A RingCX segment's transcript: "Contact center transcript", its direction, channel,
    start and duration, the agent (the transcript's agent name, else `agent_label` from the
    directory) and the queue (`queue_label`), each only when named, then one line per
    message ("hh:mm:ss Name: message", the time in `tz`), at most `max_lines` with a note
    (fewer when `max_lines` would not fit a card). A speaker without a name is the agent
    (by name when known) or "Contact" / "Customer", else "Unidentified speaker A", "B"...
    when RingCX does not say who (its voice transcripts do not); never an id."""
    if max_lines < 1:
        raise ValueError(f"max_lines must be at least 1, got {max_lines}")
    return fitting_card(
        lambda shown: renderer.render(
            RINGCX_TRANSCRIPT_TEMPLATE,
            **ringcx_transcript_view(
                segment=segment,
                transcript=transcript,
                tz=tz,
                max_lines=shown,
                queue_label=queue_label,
                agent_label=agent_label,
            ),
        ),
        min(max_lines, max(1, len(transcript.lines))),
    )


def _channel_label(channel_type: str | None) -> str | None:
    if channel_type is None:
        return None
    known = _CHANNEL_LABELS.get(channel_type.upper())
    if known:
        return known
    words = channel_type.replace("_", " ").strip()
    return plain_label(words.capitalize()) if words else None


def _ringcx_speakers(
    lines: Sequence[TranscriptLine], agent_ids: set[str], agent_name: str | None
) -> list[str]:
    """Each line's speaker: the name RingCX gives, else the agent (a line of type agent, or
    whose participant id is the segment's or its agent's) by name, else "Contact" /
    "Customer". Participants nothing identifies are "Unidentified speaker A", "B"...: order
    of appearance says nothing about who is the customer (voice transcripts carry no types
    or names, and their ids need not match the segment's)."""
    agent = agent_name or "Agent"
    agent_found = any(
        line.participant_type == PARTICIPANT_AGENT or line.participant_id in agent_ids
        for line in lines
    )
    unknown: dict[str | None, str] = {}
    names = []
    for line in lines:
        if line.participant_name:
            names.append(line.participant_name)
        elif line.participant_type == PARTICIPANT_AGENT or line.participant_id in agent_ids:
            names.append(agent)
        elif line.participant_type == PARTICIPANT_CONTACT:
            names.append("Contact")
        elif agent_found:
            names.append("Customer")
        else:
            key = line.participant_id
            letter = chr(ord("A") + len(unknown) % 26) if key not in unknown else ""
            names.append(unknown.setdefault(key, f"Unidentified speaker {letter}"))
    return names
