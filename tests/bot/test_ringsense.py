"""The RingSense model: real payloads parse, quirks are tolerated, identity is enforced."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.ringsense import (
    AI_SCORE,
    BULLETED_SUMMARY,
    CALL_NOTES,
    HIGHLIGHTS,
    NEXT_STEPS,
    SENTIMENT,
    SUMMARY,
    TRANSCRIPT,
    CallInsights,
    InsightsFormatError,
    Speaker,
    TimedText,
)
from tests.templates.samples import (
    JOHN,
    SAMPLE_HIGHLIGHTS,
    TRACY,
    event_body,
    merged_insights,
    record_body,
)


def with_insights(body: dict[str, Any], **insights: Any) -> dict[str, Any]:
    """A copy of `body` whose insights are exactly `insights`."""
    changed = copy.deepcopy(body)
    changed["insights"] = insights
    return changed


def test_the_real_notification_body_parses() -> None:
    call = CallInsights.from_api(event_body())

    assert call.domain == "pbx"
    assert call.source_record_id == "2728084995017"
    assert call.source_session_id == "s-a0e7b361acc0az191bec7e275z7cae070000"
    assert call.owner_extension_id == "6228832XXXX"
    assert call.title == "Call from John Smith to Tracy Debolah"
    assert call.call_direction == "Outbound"
    assert call.recording_start_time == datetime(2024, 9, 4, 20, 44, 16, 390000, tzinfo=UTC)
    assert call.recording_duration_ms == 125963
    assert call.creation_time == datetime(2024, 9, 4, 21, 15, 43, 597000, tzinfo=UTC)
    assert call.ringsense_url is None
    assert call.speakers == (
        Speaker(JOHN, "John Smith", "6228832XXXX", "809646XXX", None),
        Speaker(TRACY, "Tracy Debolah", None, None, None),
    )
    assert [t.text for t in call.transcript][-1] == "Goodbye."
    assert call.transcript[0] == TimedText(
        "Okay, I record this meeting so we will have the RingSense meeting insights.",
        2.2,
        14.52,
        JOHN,
    )
    assert [s.text for s in call.summary] == [
        "The call is about discussing the tasks and timeline for completing a project."
    ]
    assert call.next_steps[1] == TimedText(
        "Write a developer guide for the API.", 56.04, 64.92, TRACY
    )
    assert call.sentiment == "Positive"
    assert call.ai_score is None
    assert call.bulleted_summary == ()
    assert call.call_notes == ()
    assert call.insight_keys == {TRANSCRIPT, SUMMARY, SENTIMENT, NEXT_STEPS}


def test_the_real_rest_record_parses() -> None:
    call = CallInsights.from_api(record_body())

    assert call.source_record_id == "2728084995017"
    assert call.ai_score == 8.0
    assert call.bulleted_summary == (
        "Agent confirmed they were recording the call for sentiment analysis purposes.",
    )
    assert call.call_notes == (
        "Call notes.\nAgent expressed frustration over internal communication issues and ...",
    )
    assert len(call.next_steps) == 3
    assert call.missing_insight_keys() == {HIGHLIGHTS}


@pytest.mark.parametrize("spelling", ["Highlights", "HighLights"])
def test_both_spellings_of_highlights_are_read(spelling: str) -> None:
    call = CallInsights.from_api(
        with_insights(event_body(), **{spelling: copy.deepcopy(SAMPLE_HIGHLIGHTS)})
    )

    assert [h.text for h in call.highlights] == [h["value"] for h in SAMPLE_HIGHLIGHTS]
    assert call.highlights[0] == TimedText("The guide ships after review.", 75.3, 80.1, TRACY)
    assert HIGHLIGHTS in call.insight_keys


@pytest.mark.parametrize(
    ("raw_score", "expected"),
    [("7", 7.0), (" 7.5 ", 7.5), (9, 9.0), (6.5, 6.5), ("high", None), ("", None),
     (None, None), (True, None), ("NaN", None), ({"v": 1}, None)],
)  # fmt: skip
def test_ai_score_is_a_number_whatever_its_json_type(
    raw_score: Any, expected: float | None
) -> None:
    call = CallInsights.from_api(with_insights(event_body(), AIScore=[{"value": raw_score}]))

    assert call.ai_score == expected
    assert (AI_SCORE in call.insight_keys) is (expected is not None)


def test_unknown_keys_and_malformed_items_are_tolerated() -> None:
    body = with_insights(
        event_body(),
        QnA=[{"value": "Q?", "start": 1, "end": 2, "speakerId": JOHN}],
        NextSteps=[
            "not an object",
            None,
            {"value": "   "},
            {"start": 3.0},
            {"value": "Send the quote", "start": "42.5", "end": "oops", "speakerId": 5},
        ],
        Summary={"value": "not a list"},
    )
    body["somethingNew"] = {"nested": True}
    body["speakerInfo"].append("garbage")

    call = CallInsights.from_api(body)

    assert call.next_steps == (TimedText("Send the quote", 42.5, None, "5"),)
    assert call.summary == ()
    assert SUMMARY not in call.insight_keys
    assert len(call.speakers) == 2


def test_only_http_links_to_ringsense_are_kept() -> None:
    body = event_body()
    body["rsRecordUri"] = "https://ringsense.ringcentral.com/calls/abc"
    assert (
        CallInsights.from_api(body).ringsense_url == "https://ringsense.ringcentral.com/calls/abc"
    )

    for hostile in ["javascript:alert(1)", "JAVASCRIPT:alert(1)", "data:text/html,hi",
                    "//evil.example/x", "https://", "https://a b/", "ftp://x/y", 42]:  # fmt: skip
        body["rsRecordUri"] = hostile
        assert CallInsights.from_api(body).ringsense_url is None, hostile


@pytest.mark.parametrize("field", ["sourceRecordId", "ownerExtensionId", "domain"])
def test_a_payload_without_identity_is_refused_by_name(field: str) -> None:
    body = event_body()
    del body[field]
    with pytest.raises(InsightsFormatError, match=f"'{field}' is missing"):
        CallInsights.from_api(body)

    body[field] = 2728084995017
    with pytest.raises(InsightsFormatError, match=f"'{field}' must be a string"):
        CallInsights.from_api(body)


def test_insights_that_are_not_an_object_are_refused() -> None:
    body = event_body()
    body["insights"] = [{"Summary": []}]
    with pytest.raises(InsightsFormatError, match="'insights' must be an object"):
        CallInsights.from_api(body)


def test_the_envelope_instead_of_the_body_gets_a_hint() -> None:
    from tests.conftest import load_fixture

    with pytest.raises(InsightsFormatError, match="pass the notification's 'body'"):
        CallInsights.from_api(load_fixture("ringsense-event-pbx.json"))


def test_insights_format_error_is_a_value_error() -> None:
    assert issubclass(InsightsFormatError, ValueError)


def test_the_rest_record_fills_what_the_notification_lacked() -> None:
    notification = CallInsights.from_api(event_body())
    assert notification.missing_insight_keys() == {
        AI_SCORE,
        BULLETED_SUMMARY,
        CALL_NOTES,
        HIGHLIGHTS,
    }

    merged = merged_insights()

    assert merged.ai_score == 8.0
    assert merged.bulleted_summary == CallInsights.from_api(record_body()).bulleted_summary
    assert merged.call_notes[0].startswith("Call notes.\n")
    assert merged.summary == notification.summary
    assert merged.missing_insight_keys() == {HIGHLIGHTS}
    assert merged.speakers == notification.speakers


def test_the_later_payload_wins_for_the_keys_it_has_and_keeps_the_rest() -> None:
    first = CallInsights.from_api(
        with_insights(
            event_body(),
            Summary=[{"value": "AI Notes summary"}],
            CallNotes=[{"value": "AI Notes call notes"}],
        )
    )
    second_body = with_insights(
        event_body(),
        Summary=[{"value": "RingSense summary"}],
        NextSteps=[],
        AIScore=[{"value": "n/a"}],
    )
    second_body["title"] = ""
    second_body["speakerInfo"][1]["name"] = "Tracy D."
    second_body["speakerInfo"].append({"speakerId": "p-3", "name": "Ann", "extensionId": "77"})
    second = CallInsights.from_api(second_body)

    merged = first.merged_with(second)

    assert [s.text for s in merged.summary] == ["RingSense summary"]
    assert merged.call_notes == ("AI Notes call notes",)
    assert merged.title == "Call from John Smith to Tracy Debolah"
    assert merged.ai_score is None
    assert [s.name for s in merged.speakers] == ["John Smith", "Tracy D.", "Ann"]
    assert merged.insight_keys == {SUMMARY, CALL_NOTES}


def test_insights_of_two_recordings_are_never_merged() -> None:
    other = event_body()
    other["sourceRecordId"] = "999"
    with pytest.raises(ValueError, match="different recordings"):
        CallInsights.from_api(event_body()).merged_with(CallInsights.from_api(other))


ACCOUNT = "809646XXX"


def test_owner_and_colleagues_of_the_calls_account_are_entitled() -> None:
    body = event_body()
    body["speakerInfo"] += [
        {"speakerId": "p-3", "name": "Colleague", "accountId": ACCOUNT, "extensionId": "101"},
        {"speakerId": "p-4", "name": "Other firm", "accountId": "555", "extensionId": "202"},
    ]
    call = CallInsights.from_api(body, account_id=ACCOUNT)

    assert CallInsights.from_api(event_body(), account_id=ACCOUNT).entitled_extension_ids() == {
        "6228832XXXX"
    }
    assert call.entitled_extension_ids() == {"6228832XXXX", "101"}


def test_a_speaker_without_an_account_id_is_not_entitled() -> None:
    """Issue 8 item 1: a missing accountId used to count as "ours"."""
    body = event_body()
    body["speakerInfo"] += [
        {"speakerId": "p-3", "name": "Unknown", "accountId": None, "extensionId": "303"},
        {"speakerId": "p-5", "name": "No field", "extensionId": "404"},
    ]
    call = CallInsights.from_api(body, account_id=ACCOUNT)
    assert "303" not in call.entitled_extension_ids()
    assert "404" not in call.entitled_extension_ids()


def test_a_call_of_no_known_account_entitles_nobody() -> None:
    """Issue 8 item 1: an unknown owner account used to entitle every speaker."""
    body = event_body()
    body["ownerExtensionId"] = "42"  # not among the speakers: the owner's account is unknown
    body["speakerInfo"][1].update(accountId=None, extensionId="101")
    assert CallInsights.from_api(body).entitled_extension_ids() == frozenset()
    assert CallInsights.from_api(body, account_id=ACCOUNT).entitled_extension_ids() == {
        "42",
        "6228832XXXX",
    }


def test_the_owner_is_entitled_even_when_not_among_the_speakers() -> None:
    body = event_body()
    body["ownerExtensionId"] = "42"
    assert CallInsights.from_api(body, account_id=ACCOUNT).entitled_extension_ids() == {
        "42",
        "6228832XXXX",
    }


def test_calls_of_two_accounts_are_never_merged() -> None:
    mine = CallInsights.from_api(event_body(), account_id=ACCOUNT)
    theirs = CallInsights.from_api(record_body(), account_id="555")
    with pytest.raises(ValueError, match="two accounts"):
        mine.merged_with(theirs)


def test_speaker_names_by_speaker_id() -> None:
    call = CallInsights.from_api(event_body())

    assert call.speaker_name(TRACY) == "Tracy Debolah"
    assert call.speaker_name("p-unknown") is None
    assert call.speaker_name(None) is None


def test_a_speaker_without_a_name_is_called_by_phone_number() -> None:
    body = event_body()
    body["speakerInfo"][1].update(name="", phoneNumber="+16505550100")
    assert CallInsights.from_api(body).speaker_name(TRACY) == "+16505550100"


def test_a_call_with_someone_outside_the_account_is_external() -> None:
    assert CallInsights.from_api(event_body()).is_external

    internal = event_body()
    internal["speakerInfo"][1].update(accountId="809646XXX", extensionId="101")
    assert not CallInsights.from_api(internal).is_external

    other_account = copy.deepcopy(internal)
    other_account["speakerInfo"][1]["accountId"] = "555"
    assert CallInsights.from_api(other_account).is_external


def test_timestamps_without_zone_are_utc_and_bad_ones_are_dropped() -> None:
    body = event_body()
    body["recordingStartTime"] = "2024-09-04T20:44:16"
    body["creationTime"] = "yesterday"
    body["recordingDurationMs"] = "125963"
    call = CallInsights.from_api(body)

    assert call.recording_start_time == datetime(2024, 9, 4, 20, 44, 16, tzinfo=UTC)
    assert call.creation_time is None
    assert call.recording_duration_ms == 125963


def test_a_bare_minimum_payload_is_a_call_with_nothing_known() -> None:
    call = CallInsights.from_api(
        {"domain": "rcv", "sourceRecordId": "r1", "ownerExtensionId": "e1"}
    )

    assert call.title == ""
    assert call.speakers == ()
    assert call.insight_keys == frozenset()
    assert call.missing_insight_keys() == {
        SUMMARY,
        BULLETED_SUMMARY,
        NEXT_STEPS,
        HIGHLIGHTS,
        AI_SCORE,
        CALL_NOTES,
    }
    assert not call.is_external


def test_the_model_is_immutable() -> None:
    call = CallInsights.from_api(event_body())
    with pytest.raises(AttributeError):
        call.title = "changed"  # type: ignore[misc]
