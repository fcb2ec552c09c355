"""The AI API model: real job results parse, the docs' quirks are tolerated, failures are
explained in plain words and never leak an address."""

from __future__ import annotations

import copy
import dataclasses
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.analysis import (
    ANALYZE_INTERACTION_API,
    AiError,
    AnalysisFormatError,
    InteractionAnalysis,
    JobResult,
    SpeakerStats,
    Summary,
    Utterance,
    contains_address_or_secret,
    describe_ai_error,
    describe_job_failure,
    parse_ai_errors,
)
from tests.conftest import load_fixture
from tests.templates.samples import (
    AI_DOCS_EXCERPT,
    AI_JOB_ID,
    analyze_interaction_body,
    clean_docs_excerpt,
    full_analysis_body,
)

SUMMARY_TEXT = (
    "First speaker helps second speaker use a car bluetooth headset from the store and asks "
    "speaker 1 to switch off the device with speaker's phone."
)


def response_with(**sections: Any) -> dict[str, Any]:
    """The docs excerpt's response with some sections replaced."""
    response: dict[str, Any] = copy.deepcopy(analyze_interaction_body()["response"])
    response.update(sections)
    return response


# --- the docs excerpt, cleaned ---------------------------------------------------------------


def test_cleaning_the_docs_excerpt_drops_only_the_elisions_and_dangling_commas() -> None:
    raw = AI_DOCS_EXCERPT.read_text(encoding="utf-8")
    cleaned = clean_docs_excerpt(raw)

    assert "..." in raw and "..." not in cleaned
    assert re.sub(r"[\s,]|\.\.\.", "", raw) == re.sub(r"[\s,]", "", cleaned)
    assert analyze_interaction_body()["jobId"] == AI_JOB_ID


def test_the_docs_analyze_interaction_result_parses() -> None:
    result = JobResult.from_api(analyze_interaction_body())

    assert result.job_id == AI_JOB_ID
    assert result.api == ANALYZE_INTERACTION_API
    assert result.status == "Success"
    assert result.state == "success"
    assert result.creation_time == datetime(2023, 12, 29, 16, 1, 18, 558000, tzinfo=UTC)
    assert result.completion_time == datetime(2023, 12, 29, 16, 1, 29, 217000, tzinfo=UTC)
    assert result.expiration_time == datetime(2024, 1, 5, 16, 1, 18, 558000, tzinfo=UTC)
    assert result.errors == ()
    analysis = result.analysis
    assert analysis is not None
    assert analysis.speaker_count == 2
    assert analysis.speakers == (
        SpeakerStats("0", talk_to_listen_ratio=0.58, pace_wpm=152.9, energy=None,
                     questions_asked=5),
        SpeakerStats("1", talk_to_listen_ratio=0.42, pace_wpm=196.9, energy=None,
                     questions_asked=3),
    )  # fmt: skip
    assert analysis.title is None
    assert analysis.summaries == (
        Summary("AbstractiveSummaryShort", "Short summary", (SUMMARY_TEXT,)),
        Summary("AbstractiveSummaryLong", "Detailed summary", (SUMMARY_TEXT,)),
    )
    # "headset" is said three times; it is one key phrase
    assert analysis.key_phrases == ("headset", "store", "phone", "iphone")
    assert analysis.topics == ("car bluetooth headset",)
    assert analysis.tasks == ()
    assert len(analysis.utterances) == 7
    assert analysis.utterances[0] == Utterance(
        speaker_id="0",
        start=3.72,
        end=7.56,
        text="Good evening, thank you for calling electronics or this is Rachel.",
        emotion=None,
        confidence=0.85,
    )
    assert analysis.utterances[-1].text == "Yes, this is Meredith Blake."
    assert not analysis.is_empty


def test_the_2022_docs_parts_parse_too() -> None:
    """Emotion per utterance, Energy per speaker, Tasks, Titles, ExtractiveSummary with
    `value` or `sentence`: in the docs, not in the spec."""
    analysis = JobResult.from_api(full_analysis_body()).analysis
    assert analysis is not None

    assert [u.emotion for u in analysis.utterances][-3:] == ["Neutral", "Trust", "Joy"]
    assert [s.energy for s in analysis.speakers] == [86.64, 62.69]
    assert analysis.tasks == ("Explain how to pair the headset.",)
    assert analysis.title == "Car bluetooth headset help"
    assert analysis.summaries[-1] == Summary(
        "ExtractiveSummary",
        "Key sentences",
        ("I would like to know how to use this car.", "Yes, this is Meredith Blake."),
    )


# --- the other fixtures ----------------------------------------------------------------------


def test_a_job_in_progress() -> None:
    result = JobResult.from_api(load_fixture("ai-job-status-in-progress.json"))

    assert (result.job_id, result.status, result.state) == (AI_JOB_ID, "InProgress", "pending")
    assert result.completion_time is None
    assert result.expiration_time == datetime(2024, 1, 5, 16, 1, 18, 558000, tzinfo=UTC)
    assert result.analysis is None
    assert result.errors == ()


def test_a_successful_job_with_an_empty_response_has_an_empty_analysis() -> None:
    result = JobResult.from_api(load_fixture("ai-job-status-success.json"))

    assert result.status == "Success"
    assert result.analysis == InteractionAnalysis.from_api({})
    assert result.analysis is not None and result.analysis.is_empty
    assert result.analysis.speakers == () and result.analysis.speaker_count is None


def test_the_failure_webhook_names_the_parameter() -> None:
    result = JobResult.from_api(load_fixture("ai-webhook-fail-CAI-101.json"))

    assert (result.status, result.state) == ("Fail", "failed")
    assert result.job_id is None  # the docs' sample has none
    assert result.analysis is None
    assert result.errors == (
        AiError(
            error_code="CAI-101",
            message="Parameter [contentUri] is invalid. It should be a valid uri",
            parameter_name="contentUri",
        ),
    )
    assert describe_job_failure(result) == (
        "RingCentral could not use the recording: the media address (contentUri) is not valid "
        "or not reachable."
    )


def test_the_caller_can_supply_the_job_id_but_not_a_different_one() -> None:
    failed = load_fixture("ai-webhook-fail-CAI-101.json")
    assert JobResult.from_api(failed, job_id="job-7").job_id == "job-7"

    body = load_fixture("ai-job-status-in-progress.json")
    assert JobResult.from_api(body, job_id=AI_JOB_ID).job_id == AI_JOB_ID
    with pytest.raises(AnalysisFormatError, match="'jobId'"):
        JobResult.from_api(body, job_id="someone-elses-job")


def test_another_apis_result_is_not_taken_for_an_analysis() -> None:
    result = JobResult.from_api(load_fixture("ai-webhook-speech-to-text-success.json"))

    assert result.status == "Success"
    assert result.api == "/ai/audio/v1/async/speech-to-text"
    assert result.analysis is None


def test_a_result_is_expired_a_week_after_it_was_created() -> None:
    result = JobResult.from_api(load_fixture("ai-job-status-in-progress.json"))
    expires = datetime(2024, 1, 5, 16, 1, 18, 558000, tzinfo=UTC)

    assert not result.is_expired(expires - timedelta(seconds=1))
    assert result.is_expired(expires)

    body = load_fixture("ai-job-status-in-progress.json")
    del body["expirationTime"]
    created = JobResult.from_api(body)
    assert not created.is_expired(expires - timedelta(seconds=1))
    assert created.is_expired(expires)
    assert not JobResult.from_api({"status": "InProgress"}).is_expired(expires)


def test_the_model_is_immutable() -> None:
    result = JobResult.from_api(analyze_interaction_body())
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.status = "Fail"  # type: ignore[misc]
    assert result.analysis is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.analysis.speakers[0].pace_wpm = 1.0  # type: ignore[misc]


# --- tolerance -------------------------------------------------------------------------------


def test_numbers_may_come_as_strings() -> None:
    response = response_with(
        utteranceInsights=[{"speakerId": 3, "text": "Hi.", "start": "1.5", "end": "2",
                            "confidence": "0.9"}],
        speakerInsights={
            "speakerCount": "1",
            "insights": [
                {"name": "Pace", "values": [{"speakerId": 3, "value": "fast", "wpm": "180.5"}]},
                {"name": "QuestionsAsked", "values": [{"speakerId": "3", "value": "4"}]},
                {"name": "Energy", "values": [{"speakerId": "3", "value": "70"}]},
            ],
        },
    )  # fmt: skip
    analysis = InteractionAnalysis.from_api(response)

    assert analysis.utterances == (Utterance("3", 1.5, 2.0, "Hi.", None, 0.9),)
    assert analysis.speaker_count == 1
    assert analysis.speakers == (SpeakerStats("3", None, 180.5, 70.0, 4),)


def test_unknown_names_keys_and_malformed_items_are_skipped() -> None:
    response = response_with(
        futureInsights=[{"name": "Whatever"}],
        utteranceInsights=[
            {"speakerId": "0", "text": "Kept.", "start": 1, "mood": "sunny",
             "insights": [{"name": "Sarcasm", "value": "high"}, "junk",
                          {"name": "emotion", "value": " Joy "}]},
            {"speakerId": "0", "text": "   "},
            {"speakerId": "0"},
            "not an utterance",
        ],
        speakerInsights={
            "insights": [
                {"name": "Charisma", "values": [{"speakerId": "0", "value": 11}]},
                {"name": "talktolistenratio", "values": [{"speakerId": "0", "value": "1:3"},
                                                         {"value": "50:50"}, 7]},
                {"name": "Pace", "values": "fast"},
                "junk",
            ]
        },
        conversationalInsights=[
            {"name": "OverallSentiment", "values": [{"value": "Positive"}]},
            {"name": "keyphrases", "values": [{"value": "Store"}, {"value": " store "},
                                              {"value": ""}, {"start": 1}]},
            {"values": [{"value": "nameless"}]},
            "junk",
        ],
    )  # fmt: skip
    analysis = InteractionAnalysis.from_api(response)

    assert analysis.utterances == (Utterance("0", 1.0, None, "Kept.", "Joy", None),)
    assert analysis.speakers == (SpeakerStats("0", 0.25, None, None, None),)
    assert analysis.key_phrases == ("Store",)
    assert analysis.summaries == () and analysis.topics == ()


def test_missing_and_null_sections_are_empty() -> None:
    for response in ({}, {"utteranceInsights": None, "speakerInsights": None,
                          "conversationalInsights": None},
                     {"speakerInsights": {"speakerCount": 2}}):  # fmt: skip
        analysis = InteractionAnalysis.from_api(response)
        assert analysis.utterances == () and analysis.speakers == ()
        assert analysis.summaries == () and analysis.title is None


@pytest.mark.parametrize(
    ("value", "share"),
    [("58:42", 0.58), ("1:3", 0.25), (" 100 : 0 ", 1.0), ("0:0", None), ("talkative", None),
     (0.58, None), (None, None)],
)  # fmt: skip
def test_talk_to_listen_ratio_is_the_share_of_talking(value: object, share: float | None) -> None:
    response = {
        "speakerInsights": {
            "insights": [
                {"name": "TalkToListenRatio", "values": [{"speakerId": "0", "value": value}]}
            ]
        }
    }
    (speaker,) = InteractionAnalysis.from_api(response).speakers
    assert speaker.talk_to_listen_ratio == share


def test_questions_asked_falls_back_to_counting_the_questions() -> None:
    response = {
        "speakerInsights": {
            "insights": [
                {
                    "name": "QuestionsAsked",
                    "values": [
                        {"speakerId": "0", "questions": [{"text": "Why?"}, {"text": "How?"}]}
                    ],
                }
            ]
        }
    }
    assert InteractionAnalysis.from_api(response).speakers[0].questions_asked == 2


def test_a_title_comes_from_title_or_titles() -> None:
    for name in ("Title", "Titles"):
        response = {"conversationalInsights": [{"name": name, "values": [{"value": "Renewal"}]}]}
        assert InteractionAnalysis.from_api(response).title == "Renewal"


def test_status_is_matched_whatever_its_case() -> None:
    assert JobResult.from_api({"status": "inprogress"}).status == "InProgress"
    assert JobResult.from_api({"status": " SUCCESS "}).status == "Success"


# --- what is refused, naming the field -------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"jobId": "j"}, "'status' is missing"),
        ({"status": "Done"}, "'status' must be one of Success, Fail, InProgress"),
        ({"status": 1}, "'status'"),
        ({"status": "Success", "response": []}, "'response' must be an object"),
        ({"status": "Success", "response": {"utteranceInsights": {}}}, "'utteranceInsights'"),
        ({"status": "Success", "response": {"speakerInsights": []}}, "'speakerInsights'"),
        (
            {"status": "Success", "response": {"speakerInsights": {"insights": {}}}},
            "'speakerInsights.insights'",
        ),
        ({"status": "Success", "response": {"conversationalInsights": "x"}},
         "'conversationalInsights' must be a list, got str"),
    ],
)  # fmt: skip
def test_a_malformed_result_is_refused_naming_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(AnalysisFormatError, match=re.escape(field)):
        JobResult.from_api(body)


def test_a_body_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(AnalysisFormatError, match="JSON object"):
        JobResult.from_api([])  # type: ignore[arg-type]
    with pytest.raises(AnalysisFormatError, match="'response'"):
        InteractionAnalysis.from_api("nope")  # type: ignore[arg-type]


# --- errors in plain words -------------------------------------------------------------------


def test_a_400_answer_has_its_errors_read_too() -> None:
    body = {"errors": [{"errorCode": "CAI-104", "message": "Bad\n  thing", "parameterName": ""},
                       {"unrelated": True}, "junk"]}  # fmt: skip
    assert parse_ai_errors(body) == (AiError("CAI-104", "Bad thing", None),)


@pytest.mark.parametrize(
    ("parameter", "sentence"),
    [
        ("contentUri", "RingCentral could not use the recording: the media address (contentUri) "
                       "is not valid or not reachable."),
        ("encoding", "RingCentral could not use the recording: the media format (encoding) is "
                     "not valid."),
        ("languageCode", "RingCentral could not analyse the recording: the language "
                         "(languageCode) is not valid."),
        ("audioType", "RingCentral could not analyse the recording: the kind of recording "
                      "(audioType) is not valid."),
        ("speakerCount", "RingCentral could not analyse the recording: the number of speakers "
                         "(speakerCount) is not valid."),
        ("insights", "RingCentral could not analyse the recording: the list of insights asked "
                     "for (insights) is not valid."),
        ("webhook", "RingCentral could not analyse the recording: the bot's address for the "
                    "result (webhook) is not valid."),
        ("volume", "RingCentral could not analyse the recording: the parameter volume is not "
                   "valid."),
    ],
)  # fmt: skip
def test_cai_101_says_which_parameter_in_plain_words(parameter: str, sentence: str) -> None:
    error = AiError("CAI-101", f"Parameter [{parameter}] is invalid", parameter)
    assert describe_ai_error(error) == sentence


def test_cai_101_without_a_parameter_name_reads_it_from_the_message() -> None:
    error = AiError("CAI-101", "Parameter [contentUri] is invalid. It should be a valid uri", None)
    assert "the media address (contentUri) is not valid" in describe_ai_error(error)


def test_an_undocumented_code_passes_ringcentrals_message_on_and_names_the_parameter() -> None:
    error = AiError("CAI-105", "Language is not supported for this audio type", "languageCode")

    assert describe_ai_error(error) == (
        "RingCentral could not analyse the recording because of the language (languageCode). "
        'RingCentral said: "Language is not supported for this audio type" (CAI-105).'
    )


def test_an_undocumented_code_without_parameter_or_message() -> None:
    assert describe_ai_error(AiError("CAI-108", "Too long", None)) == (
        'RingCentral could not analyse the recording. RingCentral said: "Too long" (CAI-108).'
    )
    assert describe_ai_error(AiError("CAI-110", None, "contentUri")) == (
        "RingCentral could not use the recording because of the media address (contentUri) "
        "(CAI-110) and gave no reason."
    )
    assert describe_job_failure(JobResult.from_api({"status": "Fail"})) == (
        "RingCentral could not analyse the recording and gave no reason."
    )


def test_an_address_or_token_in_ringcentrals_message_is_never_repeated() -> None:
    uri = "https://media.ringcentral.com/restapi/v1.0/account/~/recording/1/content?access_token=U0VDUkVU"
    error = AiError("CAI-102", f"Could not download {uri} (403)", "contentUri")
    sentence = describe_ai_error(error)

    assert "U0VDUkVU" not in sentence and "media.ringcentral.com" not in sentence
    assert sentence == (
        "RingCentral could not use the recording because of the media address (contentUri). "
        'RingCentral said: "Could not download (address removed) (403)" (CAI-102).'
    )
    assert not contains_address_or_secret(sentence)
    bare = describe_ai_error(AiError("CAI-103", "bad token=abc123 given", None))
    assert "abc123" not in bare


def test_the_same_problem_twice_is_said_once() -> None:
    error = {"errorCode": "CAI-101", "message": "Parameter [encoding] is invalid",
             "parameterName": "encoding"}  # fmt: skip
    result = JobResult.from_api({"status": "Fail", "response": {"errors": [error, error]}})
    assert describe_job_failure(result) == (
        "RingCentral could not use the recording: the media format (encoding) is not valid."
    )


def test_errors_beside_the_status_are_read_as_well_as_those_in_the_response() -> None:
    outer = {"errorCode": "CAI-109", "message": "Outer"}
    inner = {"errorCode": "CAI-101", "message": "Parameter [encoding] is invalid"}
    result = JobResult.from_api(
        {"status": "Fail", "errors": [outer], "response": {"errors": [inner]}}
    )

    assert [e.error_code for e in result.errors] == ["CAI-109", "CAI-101"]
    assert result.errors[1].parameter_name is None
    assert describe_job_failure(result) == (
        'RingCentral could not analyse the recording. RingCentral said: "Outer" (CAI-109). '
        "RingCentral could not use the recording: the media format (encoding) is not valid."
    )
