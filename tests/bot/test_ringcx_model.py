"""The RingCX model: the real metadata and transcript answers parse, the `*TimeMs` and
epoch-ms quirks are handled, the ids a transcript needs are enforced."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.ringcx_model import (
    RingCXFormatError,
    Segment,
    SegmentEvent,
    Transcript,
    TranscriptLine,
    segments_from_api,
)
from tests.templates.samples import (
    ringcx_named_transcript,
    ringcx_segments,
    ringcx_voice_transcript,
)


def segment_with(**changes: Any) -> dict[str, Any]:
    item = copy.deepcopy(ringcx_segments()[0])
    item.update(changes)
    return item


def test_the_real_interaction_metadata_parses() -> None:
    segments = segments_from_api(ringcx_segments())

    assert [s.channel_type for s in segments] == ["VOICE", "ENGAGE_MESSAGING", "EMAIL", "MESSENGER"]
    voice = segments[0]
    assert voice == Segment(
        dialog_id="s-v-93bd0e6f0f0a479ea8025fe8f8ec3e1d-1721690897808",
        segment_id="p-v-93bd0e6f0f0a479ea8025fe8f8ec3e1d-1721690897808-190dcc63d90ab",
        sub_account_id="99999999",
        interaction_id="202407221928172035020000000572",
        channel_id="2013770791",
        channel_type="VOICE",
        channel_class="VOICE",
        channel_endpoint_address="7312066731",
        contact_endpoint_address="2013770791",
        direction="INBOUND",
        dialog_start=datetime(2024, 7, 22, 11, 24, 40, tzinfo=UTC),
        dialog_end=datetime(2024, 7, 22, 11, 24, 47, tzinfo=UTC),
        dialog_duration_ms=7000,
        segment_type="AGENT",
        participant_id="449438",
        agent_extension_id="985901004",
        start=datetime(2024, 7, 22, 11, 24, 40, tzinfo=UTC),
        end=datetime(2024, 7, 22, 11, 24, 47, tzinfo=UTC),
        duration_ms=7000,
        agent_group_id="76873",
        system_disposition="ANSWER",
        agent_disposition="Success",
        agent_notes="requeue to others",
        has_recording=True,
        has_transcript=True,
        events=(
            SegmentEvent("REC_START", datetime(2024, 7, 22, 11, 24, 40, tzinfo=UTC)),
            SegmentEvent("REC_STOP", datetime(2024, 7, 22, 11, 24, 47, tzinfo=UTC)),
        ),
    )
    assert voice.is_voice
    messaging = segments[1]
    assert not messaging.is_voice
    assert messaging.channel_class == "DIGITAL"
    assert messaging.system_disposition is None
    assert messaging.has_recording is False and messaging.has_transcript is True
    assert messaging.events == ()
    assert messaging.dialog_start == datetime(2024, 7, 23, 2, 28, 25, 14000, tzinfo=UTC)
    assert messaging.agent_notes == "Engage Messaging Notes"


def test_a_segment_tolerates_strings_numbers_and_nulls() -> None:
    segment = Segment.from_api(
        segment_with(
            segmentDurationMs="7000",
            dialogDurationMs=-5,
            segmentParticipantRcExtensionId=985901004,
            segmentAgentGroupId=None,
            segmentStartTimeMs="2024-07-22T11:24:40",
            segmentEndTimeMs="not a time",
            hasTranscript="true",
            hasRecording="no",
            agentNotes="   ",
            segmentEvents=[{"eventType": "REC_START"}, {"eventTimeMs": "x"}, "junk"],
            somethingNew={"a": 1},
        )
    )

    assert segment.duration_ms == 7000
    assert segment.dialog_duration_ms is None
    assert segment.agent_extension_id == "985901004"
    assert segment.agent_group_id is None
    assert segment.start == datetime(2024, 7, 22, 11, 24, 40, tzinfo=UTC)
    assert segment.end is None
    assert (segment.has_transcript, segment.has_recording) == (True, False)
    assert segment.agent_notes is None
    assert segment.events == (SegmentEvent("REC_START", None),)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"dialogId": None}, "'dialogId' is missing"),
        ({"segmentId": None}, "'segmentId' is missing"),
        ({"segmentId": 12}, "'segmentId' must be a string, got int"),
        ({"dialogId": "  "}, "'dialogId' is empty"),
    ],
)
def test_a_segment_without_its_ids_is_refused_naming_the_field(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(RingCXFormatError, match=re.escape(message)):
        Segment.from_api(segment_with(**changes))


def test_one_broken_segment_does_not_hold_back_the_others() -> None:
    items = ringcx_segments()
    del items[1]["segmentId"]
    items.append("junk")  # type: ignore[arg-type]

    assert [s.channel_type for s in segments_from_api(items)] == ["VOICE", "EMAIL", "MESSENGER"]
    assert segments_from_api([]) == ()
    with pytest.raises(RingCXFormatError, match="JSON array, got dict"):
        segments_from_api({"segments": items})
    with pytest.raises(RingCXFormatError, match="JSON object"):
        Segment.from_api(["dialogId"])  # type: ignore[arg-type]


def test_the_real_voice_transcript_parses() -> None:
    transcript = Transcript.from_api(ringcx_voice_transcript())

    assert transcript.channel_class == "VOICE"
    assert (transcript.error_code, transcript.error_message) == (None, None)
    assert transcript.lines == (
        TranscriptLine(
            participant_id="d-6555aa00cd0df30007872d38-6555aa00cd0df30007872d37",
            rc_user_id=None,
            participant_name=None,
            participant_type=None,
            timestamp=datetime(2024, 7, 22, 12, 38, 0, tzinfo=UTC),
            message="yes sir",
        ),
        TranscriptLine(
            participant_id="d-6555b45ccd0df30007872dd2-1700115548459-18bd6d7301135",
            rc_user_id=None,
            participant_name=None,
            participant_type=None,
            timestamp=datetime(2024, 7, 22, 12, 38, 1, tzinfo=UTC),
            message="ok",
        ),
    )
    assert transcript.agent_name is None


def test_a_transcript_with_names_knows_its_agent() -> None:
    transcript = Transcript.from_api(ringcx_named_transcript())

    assert [(line.participant_type, line.participant_name) for line in transcript.lines] == [
        ("contact", "Jordan Lee"),
        ("agent", "Alex Rivera"),
    ]
    assert transcript.lines[1].rc_user_id == "665127314"
    assert transcript.agent_name == "Alex Rivera"


def test_transcript_lines_are_tolerant() -> None:
    body = {
        "channelClass": "DIGITAL",
        "errorCode": "TRANSCRIPT_PARTIAL",
        "errorMessage": "Part of the transcript is missing",
        "surprise": True,
        "transcript": [
            {"participantType": "AGENT", "timestamp": 1721651880000, "message": "Hello"},
            {"participantType": "bot", "timestamp": "2024-07-22T12:38:05Z", "message": "Beep"},
            {"participantType": "contact", "timestamp": "soon", "message": "Hi"},
            {"participantType": "contact", "timestamp": "-5", "message": "Early"},
            {"participantType": "agent", "message": "   "},
            {"participantType": "agent"},
            "junk",
        ],
    }
    transcript = Transcript.from_api(body)

    assert [(line.participant_type, line.timestamp, line.message) for line in transcript.lines] == [
        ("agent", datetime(2024, 7, 22, 12, 38, 0, tzinfo=UTC), "Hello"),
        (None, datetime(2024, 7, 22, 12, 38, 5, tzinfo=UTC), "Beep"),
        ("contact", None, "Hi"),
        ("contact", None, "Early"),
    ]
    assert transcript.error_code == "TRANSCRIPT_PARTIAL"
    assert transcript.error_message == "Part of the transcript is missing"
    assert Transcript.from_api({}).lines == ()
    assert Transcript.from_api({"transcript": None}).lines == ()


def test_a_malformed_transcript_is_refused_naming_the_field() -> None:
    with pytest.raises(RingCXFormatError, match="'transcript' must be a list, got dict"):
        Transcript.from_api({"transcript": {"message": "hi"}})
    with pytest.raises(RingCXFormatError, match="JSON object"):
        Transcript.from_api([])  # type: ignore[arg-type]
