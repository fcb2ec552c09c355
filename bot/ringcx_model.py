"""The typed model of RingCX (contact center) interaction segments and their transcripts.

RingCX lists an account's interaction segments with `POST .../interaction-metadata` (a bare
JSON array) and serves a segment's transcript with `GET .../transcripts/dialogs/{dialogId}/
segments/{segmentId}` (API-FACTS.md F; EVSPEC `WEMDialogSegmentMetaData`,
`RCInteractionTranscriptData`). Both become frozen dataclasses here.

The quirks: the `*TimeMs` fields are ISO 8601 strings despite their names, while a transcript
line's `timestamp` is epoch milliseconds as a string; `participantType` and
`participantName` are null in the voice sample. Parsing is strict only about the ids a
transcript cannot be fetched without (`dialogId`, `segmentId`) and about sections of the
wrong kind; everything else is optional and malformed parts are skipped. Text (names,
messages, notes) is kept exactly as sent; the cards show it literally. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

from bot import payloads

ParticipantType = Literal["agent", "contact"]
PARTICIPANT_AGENT: Final = "agent"
PARTICIPANT_CONTACT: Final = "contact"

CHANNEL_CLASS_VOICE: Final = "VOICE"
CHANNEL_CLASS_DIGITAL: Final = "DIGITAL"

#: Epoch milliseconds beyond this (year 9999) are not timestamps.
_MAX_EPOCH_MS: Final = 253402300799999


class RingCXFormatError(ValueError):
    """A RingCX payload lacks what identifies a segment, or a part has the wrong shape."""


@dataclass(frozen=True, slots=True)
class SegmentEvent:
    """A recording event of a segment (`REC_START`, `REC_STOP`, ...)."""

    event_type: str
    time: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Segment:
    """One item of the interaction-metadata answer: one agent's (or bot's, or IVR's) part of
    a dialog. `direction` is `dialogOrigination` (INBOUND / OUTBOUND) as sent; durations
    are milliseconds; `agent_extension_id` is the RingEX extension of the agent
    (`segmentParticipantRcExtensionId`)."""

    dialog_id: str
    segment_id: str
    sub_account_id: str | None
    interaction_id: str | None
    channel_id: str | None
    channel_type: str | None
    channel_class: str | None
    channel_endpoint_address: str | None
    contact_endpoint_address: str | None
    direction: str | None
    dialog_start: datetime | None
    dialog_end: datetime | None
    dialog_duration_ms: int | None
    segment_type: str | None
    participant_id: str | None
    agent_extension_id: str | None
    start: datetime | None
    end: datetime | None
    duration_ms: int | None
    agent_group_id: str | None
    system_disposition: str | None
    agent_disposition: str | None
    agent_notes: str | None
    has_recording: bool
    has_transcript: bool
    events: tuple[SegmentEvent, ...]

    @classmethod
    def from_api(cls, item: Mapping[str, Any]) -> Segment:
        """Parse one interaction-metadata item.

        Raises `RingCXFormatError` when `dialogId` or `segmentId` is missing or not a
        non-empty string. Everything else is optional; `hasTranscript` and `hasRecording`
        are True only when RingCX says `true` (or "true").
        """
        if not isinstance(item, Mapping):
            raise RingCXFormatError(
                f"RingCX segment must be a JSON object, got {type(item).__name__}"
            )
        return cls(
            dialog_id=_required_id(item, "dialogId"),
            segment_id=_required_id(item, "segmentId"),
            sub_account_id=payloads.ident(item.get("subAccountId")),
            interaction_id=payloads.ident(item.get("interactionId")),
            channel_id=payloads.ident(item.get("channelId")),
            channel_type=_word(item.get("channelType")),
            channel_class=_word(item.get("channelClass")),
            channel_endpoint_address=payloads.ident(item.get("channelEndpointAddress")),
            contact_endpoint_address=payloads.ident(item.get("contactEndpointAddress")),
            direction=_word(item.get("dialogOrigination")),
            dialog_start=payloads.timestamp(item.get("dialogStartTimeMs")),
            dialog_end=payloads.timestamp(item.get("dialogEndTimeMs")),
            dialog_duration_ms=_duration(item.get("dialogDurationMs")),
            segment_type=_word(item.get("segmentType")),
            participant_id=payloads.ident(item.get("segmentParticipantId")),
            agent_extension_id=payloads.ident(item.get("segmentParticipantRcExtensionId")),
            start=payloads.timestamp(item.get("segmentStartTimeMs")),
            end=payloads.timestamp(item.get("segmentEndTimeMs")),
            duration_ms=_duration(item.get("segmentDurationMs")),
            agent_group_id=payloads.ident(item.get("segmentAgentGroupId")),
            system_disposition=payloads.text(item.get("systemDisposition")),
            agent_disposition=payloads.text(item.get("agentDisposition")),
            agent_notes=payloads.text(item.get("agentNotes")),
            has_recording=_flag(item.get("hasRecording")),
            has_transcript=_flag(item.get("hasTranscript")),
            events=tuple(
                SegmentEvent(event_type, payloads.timestamp(event.get("eventTimeMs")))
                for event in _items(item.get("segmentEvents"))
                if (event_type := _word(event.get("eventType"))) is not None
            ),
        )

    @property
    def is_voice(self) -> bool:
        return (self.channel_class or "").upper() == CHANNEL_CLASS_VOICE


def segments_from_api(body: object) -> tuple[Segment, ...]:
    """The segments of an interaction-metadata answer (a bare JSON array).

    Raises `RingCXFormatError` when the answer is not a list. An item without its ids is
    skipped, so one broken segment does not hold back the others.
    """
    if not isinstance(body, list):
        raise RingCXFormatError(
            f"RingCX interaction metadata must be a JSON array, got {type(body).__name__}"
        )
    segments = []
    for item in body:
        try:
            segments.append(Segment.from_api(item))
        except RingCXFormatError:
            continue
    return tuple(segments)


@dataclass(frozen=True, slots=True)
class TranscriptLine:
    """One message of a transcript. `participant_type` is "agent", "contact" or None (the
    voice sample has None); `timestamp` comes from epoch milliseconds."""

    participant_id: str | None
    rc_user_id: str | None
    participant_name: str | None
    participant_type: ParticipantType | None
    timestamp: datetime | None
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Transcript:
    """A segment's transcript. `error_code` / `error_message` are RingCX's, when it set them."""

    channel_class: str | None
    error_code: str | None
    error_message: str | None
    lines: tuple[TranscriptLine, ...]

    @classmethod
    def from_api(cls, body: Mapping[str, Any]) -> Transcript:
        """Parse a transcript answer.

        Raises `RingCXFormatError` when the body is not an object or `transcript` is present
        but not a list. Lines without a message are skipped.
        """
        if not isinstance(body, Mapping):
            raise RingCXFormatError(
                f"RingCX transcript must be a JSON object, got {type(body).__name__}"
            )
        raw_lines = body.get("transcript")
        if raw_lines is not None and not isinstance(raw_lines, list):
            raise RingCXFormatError(
                f"RingCX transcript: 'transcript' must be a list, got {type(raw_lines).__name__}"
            )
        return cls(
            channel_class=_word(body.get("channelClass")),
            error_code=payloads.text(body.get("errorCode")),
            error_message=payloads.text(body.get("errorMessage")),
            lines=tuple(line for line in map(_line, _items(raw_lines)) if line is not None),
        )

    @property
    def agent_name(self) -> str | None:
        """The name of the first agent line that has one."""
        return next(
            (
                line.participant_name
                for line in self.lines
                if line.participant_type == PARTICIPANT_AGENT and line.participant_name
            ),
            None,
        )


def _line(item: Mapping[str, Any]) -> TranscriptLine | None:
    message = payloads.text(item.get("message"))
    if message is None:
        return None
    kind = item.get("participantType")
    kind = kind.strip().lower() if isinstance(kind, str) else None
    return TranscriptLine(
        participant_id=payloads.ident(item.get("participantId")),
        rc_user_id=payloads.ident(item.get("rcUserId")),
        participant_name=payloads.text(item.get("participantName")),
        participant_type=(
            PARTICIPANT_AGENT
            if kind == PARTICIPANT_AGENT
            else PARTICIPANT_CONTACT
            if kind == PARTICIPANT_CONTACT
            else None
        ),
        timestamp=_epoch_ms(item.get("timestamp")),
        message=message,
    )


def _required_id(item: Mapping[str, Any], field: str) -> str:
    value = item.get(field)
    if value is None:
        raise RingCXFormatError(f"RingCX segment: '{field}' is missing")
    if not isinstance(value, str):
        raise RingCXFormatError(
            f"RingCX segment: '{field}' must be a string, got {type(value).__name__}"
        )
    if not value.strip():
        raise RingCXFormatError(f"RingCX segment: '{field}' is empty")
    return value


def _items(raw: object) -> Iterator[Mapping[str, Any]]:
    if isinstance(raw, list):
        for item in raw:
            if isinstance(item, Mapping):
                yield item


def _word(value: object) -> str | None:
    """An enum-like value (VOICE, INBOUND), trimmed."""
    text = payloads.text(value)
    return text.strip() if text is not None else None


def _flag(value: object) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _duration(value: object) -> int | None:
    number = payloads.number(value)
    return int(number) if number is not None and number >= 0 else None


def _epoch_ms(value: object) -> datetime | None:
    """Epoch milliseconds ("1721651880000" or a number) as an aware UTC datetime; an ISO
    string is tolerated too."""
    number = payloads.number(value)
    if number is None:
        return payloads.timestamp(value)
    if not 0 <= number <= _MAX_EPOCH_MS:
        return None
    return datetime.fromtimestamp(number / 1000, tz=UTC)


__all__ = [
    "CHANNEL_CLASS_DIGITAL",
    "CHANNEL_CLASS_VOICE",
    "PARTICIPANT_AGENT",
    "PARTICIPANT_CONTACT",
    "ParticipantType",
    "RingCXFormatError",
    "Segment",
    "SegmentEvent",
    "Transcript",
    "TranscriptLine",
    "segments_from_api",
]
