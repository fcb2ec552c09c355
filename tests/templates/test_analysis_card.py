"""The AI API cards: an analysis in each of its states, all its utterances, a person's jobs.
What a reader sees, the buttons, text from RingCentral kept literal, and no URL or token
ever shown."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from bot.analysis import InteractionAnalysis, JobSummary
from bot.cards import (
    ACTION_AI_REFRESH,
    ACTION_AI_UTTERANCES,
    CARD_BYTE_BUDGET,
    CardError,
    CardRenderer,
    analysis_card,
    analysis_view,
    card_as_text,
    jobs_card,
    utterances_card,
)
from bot.quoting import quote_for_chat
from tests.templates.adaptive_cards import (
    assert_matches_golden,
    assert_valid_card,
    headings,
    markdown_texts,
    submit_actions,
    text_runs,
)
from tests.templates.samples import (
    AI_JOB_ID,
    NASTY,
    NEW_YORK,
    RECORDING_LABEL,
    REQUESTED_AT,
    analysis_of,
    analyze_interaction_body,
    call_text,
    full_analysis_body,
    sample_analysis,
    utterances_of,
)

CONTENT_URI_PROBLEM = (
    "RingCentral could not use the recording: the media address (contentUri) is not valid or "
    "not reachable."
)
TOKEN_URL = (
    "https://media.ringcentral.com/restapi/v1.0/account/~/recording/2728084995017/content"
    "?access_token=U0VDUkVULVRPS0VO"
)


@cache
def renderer() -> CardRenderer:
    return CardRenderer()


def card(state: str, **options: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "source_label": RECORDING_LABEL,
        "job_id": AI_JOB_ID,
        "state": state,
        "requested_at": REQUESTED_AT,
        "tz": NEW_YORK,
    }
    if state == "success":
        values["analysis"] = sample_analysis()
    values.update(options)
    return analysis_card(renderer(), **values)


def lines_of(card: dict[str, Any]) -> list[str]:
    return card_as_text(card).splitlines()


# --- golden files ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "options"),
    [
        ("pending", {}),
        ("success", {"max_utterances": 5}),
        ("failed", {"problem": CONTENT_URI_PROBLEM}),
        ("expired", {}),
    ],
)
def test_each_state_matches_its_golden_file(state: str, options: dict[str, Any]) -> None:
    shown = card(state, **options)
    assert_valid_card(shown)
    assert_matches_golden(shown, f"analysis-{state}.card.json")


# --- pending ---------------------------------------------------------------------------------


def test_pending_says_what_is_happening_and_offers_check_now() -> None:
    pending = card("pending")

    assert lines_of(pending) == [
        "Analysing recording 2728084995017…",
        "Started Fri 29 Dec 2023, 11:01 EST",
        "The result usually takes 5–10 minutes.",
        "",
        "[Check now]",
    ]
    assert [(a["title"], a["data"]) for a in submit_actions(pending)] == [
        ("Check now", {"action": ACTION_AI_REFRESH, "jobId": AI_JOB_ID})
    ]
    assert pending["fallbackText"] == "Analysing recording 2728084995017…"
    # the job's id is the button's business, never something a person reads
    assert AI_JOB_ID not in card_as_text(pending)
    assert AI_JOB_ID not in json.dumps(pending["body"])


# --- success ---------------------------------------------------------------------------------


def test_success_shows_speakers_summaries_phrases_topics_tasks_and_utterances() -> None:
    shown = card("success")

    assert lines_of(shown) == [
        "Car bluetooth headset help",
        "recording 2728084995017 · Requested Fri 29 Dec 2023, 11:01 EST · 2 speakers",
        "",
        "Speakers",
        "Speaker    Talk time  Pace     Energy  Questions",
        "Speaker A  58%        153 wpm  86.6    5",
        "Speaker B  42%        197 wpm  62.7    3",
        "",
        "Short summary",
        "First speaker helps second speaker use a car bluetooth headset from the store and asks "
        "speaker 1 to switch off the device with speaker's phone.",
        "",
        "Key sentences",
        "• I would like to know how to use this car.",
        "• Yes, this is Meredith Blake.",
        "",
        "Key phrases",
        "headset · store · phone · iphone",
        "",
        "Topics",
        "car bluetooth headset",
        "",
        "Tasks",
        "• Explain how to pair the headset.",
        "",
        "What was said",
        "00:03 Speaker A: Good evening, thank you for calling electronics or this is Rachel. "
        "(Neutral)",
        "00:07 Speaker A: How may I assist you? (Neutral)",
        "00:08 Speaker B: Hi, Rachel. (Neutral)",
        "00:09 Speaker B: I would like to know how to use this car. (Anticipation)",
        "00:11 Speaker B: Bluetooth headset I recently purchased from your store. (Neutral)",
        "00:14 Speaker A: Sure, ma'am, I can help you out with that, but before anything else, I "
        "have your name so that I can address you properly. (Trust)",
        "00:21 Speaker B: Yes, this is Meredith Blake. (Joy)",
    ]
    assert (
        shown["fallbackText"] == "Analysis of recording 2728084995017: Car bluetooth headset help"
    )
    assert submit_actions(shown) == []


def _three_voices() -> InteractionAnalysis:
    """A call where RingCentral recognised one enrolled voice (extension 62288330001) and
    reported two others by number, plus an extension id nobody asked it to listen for."""
    return analysis_of(
        {
            "utteranceInsights": [
                {"speakerId": "62288330001", "text": "Hello, Olivia here.", "start": 1, "end": 2},
                {"speakerId": "1", "text": "Hi, it is me.", "start": 3, "end": 4},
                {"speakerId": "62288339999", "text": "And me.", "start": 5, "end": 6},
            ]
        }
    )


def test_only_voices_the_bot_asked_to_recognise_are_named() -> None:
    """A name goes only on a speaker id the bot passed as `speakerIds` (with the name it
    knows for it); any other id, even one that looks like an extension, stays unnamed."""
    shown = card("success", analysis=_three_voices(), speaker_names={"62288330001": "Olivia Owner"})
    said = [line for line in lines_of(shown) if line[:2].isdigit()]
    assert said == [
        "00:01 Olivia Owner: Hello, Olivia here.",
        "00:03 Unidentified speaker A: Hi, it is me.",
        "00:05 Unidentified speaker B: And me.",
    ]
    assert "62288339999" not in card_as_text(shown)


def test_a_name_is_one_short_line() -> None:
    shown = card(
        "success",
        analysis=_three_voices(),
        speaker_names={"62288330001": "Olivia\nOwner " + "x" * 500},
    )
    [first] = [line for line in lines_of(shown) if line.startswith("00:01 ")]
    name = first.removeprefix("00:01 ").split(":")[0]
    assert name.startswith("Olivia Owner x") and name.endswith("…") and len(name) <= 120


def test_the_one_voice_not_recognised_is_the_other_party() -> None:
    analysis = analysis_of(
        {
            "utteranceInsights": [
                {"speakerId": "1", "text": "Hi, who is this?", "start": 1, "end": 2},
                {"speakerId": "62288330001", "text": "Olivia here.", "start": 3, "end": 4},
            ]
        }
    )
    names = {"62288330001": "Olivia Owner", "62288330002": "Paul Participant"}
    for shown in (
        card("success", analysis=analysis, speaker_names=names),
        utterances_card(
            renderer(), source_label=RECORDING_LABEL, analysis=analysis, speaker_names=names
        ),
    ):
        said = [line for line in lines_of(shown) if line[:2].isdigit()]
        # Paul was asked for but not recognised: the other voice is not called Paul
        assert said == ["00:01 Other party: Hi, who is this?", "00:03 Olivia Owner: Olivia here."]


def test_the_detailed_summary_is_left_out_when_it_repeats_the_short_one() -> None:
    body = full_analysis_body()
    for item in body["response"]["conversationalInsights"]:
        if item["name"] == "AbstractiveSummaryLong":
            item["values"] = [{"value": "The customer needs help with a headset."},
                              {"value": "The agent explains pairing."}]  # fmt: skip
    shown = card("success", analysis=analysis_of(body["response"]))

    assert headings(shown)[:3] == ["Speakers", "Short summary", "Detailed summary"]
    text = lines_of(shown)
    detailed = text.index("Detailed summary")
    assert text[detailed + 1 : detailed + 3] == [
        "The customer needs help with a headset.",
        "The agent explains pairing.",
    ]
    assert headings(card("success"))[:3] == ["Speakers", "Short summary", "Key sentences"]


def test_more_utterances_than_shown_offer_show_all() -> None:
    shown = card("success", max_utterances=5)
    text = lines_of(shown)

    assert sum(line.startswith(("00:", "01:")) for line in text) == 5
    assert text[-3:] == ["Showing the first 5 of 7 utterances.", "", "[Show all utterances]"]
    assert [(a["title"], a["data"]) for a in submit_actions(shown)] == [
        ("Show all utterances", {"action": ACTION_AI_UTTERANCES, "jobId": AI_JOB_ID})
    ]
    exactly = card("success", max_utterances=7)
    assert submit_actions(exactly) == []
    assert "Showing the first" not in card_as_text(exactly)


def test_the_default_shows_fifteen_utterances() -> None:
    analysis = analysis_of({"utteranceInsights": utterances_of(40)})
    text = lines_of(card("success", analysis=analysis))

    assert "00:00 Speaker A: Line 1." in text
    assert "01:38 Speaker A: Line 15." in text
    assert "01:45 Speaker B: Line 16." not in text
    assert "Showing the first 15 of 40 utterances." in text


def test_a_sparse_analysis_shows_only_what_it_has() -> None:
    """The docs excerpt: no energy, no title, no tasks; its long summary repeats the short."""
    analysis = analysis_of(analyze_interaction_body()["response"])
    shown = card("success", analysis=analysis, max_utterances=0)
    text = lines_of(shown)

    assert text[:2] == [
        "Analysis of recording 2728084995017",
        "Requested Fri 29 Dec 2023, 11:01 EST · 2 speakers",
    ]
    assert "Speaker    Talk time  Pace     Questions" in text
    assert headings(shown) == ["Speakers", "Short summary", "Key phrases", "Topics"]
    assert "Energy" not in card_as_text(shown)
    assert text[-3:] == ["Showing the first 0 of 7 utterances.", "", "[Show all utterances]"]
    assert_valid_card(shown)


def test_a_speaker_without_a_value_shows_a_dash() -> None:
    response = {
        "speakerInsights": {
            "insights": [
                {"name": "Pace", "values": [{"speakerId": "0", "wpm": 120}]},
                {"name": "Energy", "values": [{"speakerId": "1", "value": 50}]},
            ]
        }
    }
    text = lines_of(card("success", analysis=analysis_of(response)))
    assert text[3:7] == [
        "Speakers",
        "Speaker    Pace     Energy",
        "Speaker A  120 wpm  –",
        "Speaker B  –        50",
    ]


def test_an_analysis_with_nothing_in_it_says_so() -> None:
    shown = card("success", analysis=InteractionAnalysis.from_api({}))

    assert_valid_card(shown)
    assert lines_of(shown) == [
        "Analysis of recording 2728084995017",
        "Requested Fri 29 Dec 2023, 11:01 EST",
        "RingCentral found nothing to report in this recording.",
    ]


# --- failed and expired ----------------------------------------------------------------------


def test_failed_shows_the_problem_literally_and_the_job() -> None:
    problem = 'RingCentral said: "**Bad** [audio](x)" (CAI-105).'
    shown = card("failed", problem=problem)
    quoted = quote_for_chat(problem)
    assert (
        quoted == 'RingCentral said: "\u2217\u2217Bad\u2217\u2217 \uff3baudio\uff3d(x)" (CAI-105).'
    )

    assert lines_of(shown) == [
        "Could not analyse recording 2728084995017",
        "Requested Fri 29 Dec 2023, 11:01 EST",
        quoted,
    ]
    assert quoted in text_runs(shown)
    assert quoted not in markdown_texts(shown)
    assert shown["fallbackText"] == "Could not analyse recording 2728084995017"
    assert submit_actions(shown) == []


def test_failed_without_a_problem_says_no_reason_was_given() -> None:
    assert lines_of(card("failed"))[2] == (
        "RingCentral could not analyse the recording and gave no reason."
    )


def test_expired_says_results_are_kept_a_week() -> None:
    shown = card("expired")
    assert lines_of(shown) == [
        "Analysis of recording 2728084995017",
        "Requested Fri 29 Dec 2023, 11:01 EST",
        "RingCentral no longer has the result of this job (results are kept for one week).",
    ]
    assert submit_actions(shown) == []


# --- what the view refuses -------------------------------------------------------------------


@pytest.mark.parametrize(
    "label",
    [
        TOKEN_URL,
        "recording 2728084995017?access_token=U0VDUkVULVRPS0VO",
        "call.mp3 access_token=U0VDUkVULVRPS0VO",
        "media.ringcentral.com/x?token=U0VDUkVULVRPS0VO",
        "ftp://files.example.com/U0VDUkVULVRPS0VO.wav",
    ],
)
@pytest.mark.parametrize("state", ["pending", "success", "failed", "expired"])
def test_a_label_with_an_address_or_token_is_refused_without_repeating_it(
    state: str, label: str
) -> None:
    with pytest.raises(CardError, match="source label") as refused:
        card(state, source_label=label)
    assert "U0VDUkVULVRPS0VO" not in str(refused.value)


def test_every_card_with_a_source_label_refuses_a_url() -> None:
    with pytest.raises(CardError, match="source label"):
        utterances_card(renderer(), source_label=TOKEN_URL, analysis=sample_analysis())
    job = JobSummary("j", TOKEN_URL, "pending", REQUESTED_AT, None)
    with pytest.raises(CardError, match="source label"):
        jobs_card(renderer(), [job], NEW_YORK)


def test_a_problem_with_an_address_or_token_is_refused() -> None:
    with pytest.raises(CardError, match="problem") as refused:
        card("failed", problem=f"Could not download {TOKEN_URL}")
    assert "U0VDUkVULVRPS0VO" not in str(refused.value)


def test_a_plain_label_with_dots_and_slashes_is_fine() -> None:
    label = "Q3 review 2024/09/04 (final).mp3"
    assert lines_of(card("pending", source_label=label))[0] == f"Analysing {label}…"


def test_the_view_refuses_what_makes_no_card() -> None:
    with pytest.raises(ValueError, match="state must be one of"):
        card("done")
    with pytest.raises(ValueError, match="needs the analysis"):
        card("success", analysis=None)
    with pytest.raises(CardError, match="job id"):
        card("pending", job_id=" ")
    with pytest.raises(CardError, match="source label"):
        card("pending", source_label="  ")
    with pytest.raises(ValueError, match="max_utterances"):
        card("success", max_utterances=-1)


def test_a_very_long_label_is_shortened() -> None:
    view = analysis_view(
        source_label="x" * 500,
        job_id="j",
        state="pending",
        requested_at=REQUESTED_AT,
        tz=NEW_YORK,
    )
    assert len(view["heading"][1]) == 200 and view["heading"][1].endswith("…")
    assert len(view["fallback_text"]) < 140


# --- all utterances --------------------------------------------------------------------------


def test_all_utterances_match_the_golden_file() -> None:
    shown = utterances_card(renderer(), source_label=RECORDING_LABEL, analysis=sample_analysis())
    assert_valid_card(shown)
    assert_matches_golden(shown, "utterances.card.json")


def test_all_utterances_are_one_line_each() -> None:
    shown = utterances_card(renderer(), source_label="call.mp3", analysis=sample_analysis())
    text = lines_of(shown)

    assert text[:4] == [
        "What was said in call.mp3",
        "7 utterances · 2 speakers",
        "",
        "00:03 Speaker A: Good evening, thank you for calling electronics or this is Rachel. "
        "(Neutral)",
    ]
    assert text[-1] == "00:21 Speaker B: Yes, this is Meredith Blake. (Joy)"
    assert shown["fallbackText"] == "What was said in call.mp3"
    assert "actions" not in shown


def test_all_utterances_are_capped_at_300() -> None:
    analysis = analysis_of({"utteranceInsights": utterances_of(305)})
    shown = utterances_card(renderer(), source_label=RECORDING_LABEL, analysis=analysis)
    text = lines_of(shown)

    said = [line for line in text if ": Line " in line]
    assert 0 < len(said) <= 300  # fewer when 300 would not fit a card
    assert said[-1].endswith(f"Line {len(said)}.")
    assert all(re.fullmatch(r"\d\d:\d\d Speaker [AB]: Line \d+\.", line) for line in said)
    assert text[-1] == f"Showing the first {len(said)} of 305 utterances."
    small = utterances_card(
        renderer(), source_label=RECORDING_LABEL, analysis=analysis, max_utterances=20
    )
    assert lines_of(small)[-1] == "Showing the first 20 of 305 utterances."
    assert_valid_card(shown)


def test_an_utterance_without_time_or_speaker_is_just_its_text() -> None:
    analysis = analysis_of({"utteranceInsights": [{"text": "Who said this?"}]})
    shown = utterances_card(renderer(), source_label="call.mp3", analysis=analysis)
    assert lines_of(shown)[-1] == "Who said this?"
    assert lines_of(shown)[1] == "1 utterance"


def test_no_utterances_is_said_kindly() -> None:
    shown = utterances_card(
        renderer(), source_label="call.mp3", analysis=InteractionAnalysis.from_api({})
    )
    assert_valid_card(shown)
    assert lines_of(shown)[-1] == "RingCentral returned no utterances for this recording."


# --- jobs ------------------------------------------------------------------------------------


def two_jobs() -> list[JobSummary]:
    return [
        JobSummary("job-2", "call with Acme.mp3", "pending", REQUESTED_AT + timedelta(hours=1),
                   None),
        JobSummary(AI_JOB_ID, RECORDING_LABEL, "success", REQUESTED_AT,
                   REQUESTED_AT + timedelta(minutes=8)),
        JobSummary("job-0", "recording 1", "failed", datetime(2023, 12, 28, 23, 50, tzinfo=UTC),
                   datetime(2023, 12, 29, 5, 10, tzinfo=UTC)),
        JobSummary("job-old", "recording 0", "expired", datetime(2023, 12, 1, 9, 0, tzinfo=UTC),
                   None),
    ]  # fmt: skip


def test_jobs_match_the_golden_files() -> None:
    shown = jobs_card(renderer(), two_jobs(), NEW_YORK)
    assert_valid_card(shown)
    assert_matches_golden(shown, "jobs.card.json")
    empty = jobs_card(renderer(), [], NEW_YORK)
    assert_valid_card(empty)
    assert_matches_golden(empty, "jobs-empty.card.json")


def test_each_job_is_a_row_with_its_state_and_times() -> None:
    shown = jobs_card(renderer(), two_jobs(), NEW_YORK)

    assert lines_of(shown) == [
        "Your analysis jobs",
        "",
        "call with Acme.mp3",
        "In progress · requested Fri 29 Dec 2023, 12:01 EST",
        "",
        "recording 2728084995017",
        "Done · requested Fri 29 Dec 2023, 11:01 EST · finished 11:09",
        "",
        "recording 1",
        "Failed · requested Thu 28 Dec 2023, 18:50 EST · finished Fri 29 Dec 2023, 00:10 EST",
        "",
        "recording 0",
        "Expired · requested Fri 1 Dec 2023, 04:00 EST",
    ]
    assert shown["fallbackText"] == "Your analysis jobs: 4 jobs"
    assert submit_actions(shown) == []


def test_no_jobs_is_said_kindly() -> None:
    shown = jobs_card(renderer(), [], NEW_YORK)
    assert lines_of(shown) == ["Your analysis jobs", "No analysis jobs yet."]
    assert shown["fallbackText"] == "Your analysis jobs: No analysis jobs yet."


def test_a_job_in_an_unknown_state_is_refused() -> None:
    job = JobSummary("j", "x", "done", REQUESTED_AT, None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="job state"):
        jobs_card(renderer(), [job], NEW_YORK)


# --- text from RingCentral stays literal -----------------------------------------------------


def analysis_with_text(text: str) -> InteractionAnalysis:
    """The full sample with `text` as an utterance, a speaker id, a key phrase, a topic, a
    task, a summary and the title."""
    body = copy.deepcopy(full_analysis_body())
    response = body["response"]
    response["utteranceInsights"][0]["text"] = text
    response["utteranceInsights"][1]["speakerId"] = text
    response["speakerInsights"]["insights"][0]["values"][0]["speakerId"] = text
    names = {item["name"]: item for item in response["conversationalInsights"]}
    names["KeyPhrases"]["values"].insert(0, {"value": text})
    names["Topics"]["values"] = [{"value": text}]
    names["Tasks"]["values"] = [{"value": text}]
    names["AbstractiveSummaryShort"]["values"] = [{"value": text}]
    names["Titles"]["values"] = [{"value": text}]
    return analysis_of(response)


@cache
def plain_markdown_texts() -> list[str]:
    return markdown_texts(card("success", analysis=analysis_with_text("Plain words")))


def assert_analysis_text_literal(text: str) -> None:
    shown = card("success", analysis=analysis_with_text(text))
    assert_valid_card(shown)
    runs = text_runs(shown)
    quoted = quote_for_chat(text)  # shown as written, never as markup
    # title, key phrase, topic, task, summary, utterance
    assert runs.count(quoted) >= 6, runs
    # a speaker id is never shown: the speaker is a letter, the same in the table and on
    # an utterance
    assert f"Speaker {quoted}" not in runs
    assert runs.count("Speaker A") >= 2, runs
    assert markdown_texts(shown) == plain_markdown_texts()
    everything = utterances_card(
        renderer(), source_label="call.mp3", analysis=analysis_with_text(text)
    )
    assert quoted in text_runs(everything) and "Speaker A" in text_runs(everything)
    assert json.loads(json.dumps(shown)) == shown


@pytest.mark.parametrize("text", NASTY)
def test_text_from_ringcentral_is_shown_exactly(text: str) -> None:
    assert_analysis_text_literal(text)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# "0" and "1" are the sample's own speaker ids: as a speaker id they merge two speakers.
@given(text=call_text.filter(lambda text: text not in ("0", "1")))
def test_any_utterance_speaker_id_or_key_phrase_survives(text: str) -> None:
    assert_analysis_text_literal(text)


@pytest.mark.parametrize("label", [t for t in NASTY if "://" not in t])
def test_labels_are_shown_exactly(label: str) -> None:
    shown = card("pending", source_label=label)
    quoted = quote_for_chat(label)
    assert quoted in text_runs(shown)
    jobs = jobs_card(renderer(), [JobSummary("j", label, "pending", REQUESTED_AT, None)], NEW_YORK)
    assert quoted in text_runs(jobs)
    assert quoted not in markdown_texts(shown) + markdown_texts(jobs)


def test_all_utterances_fit_a_card_ringcentral_accepts() -> None:
    """Cards have a size limit (UNCONFIRMED, the sandbox takes 40,000 bytes): 300 long
    utterances do not fit, so fewer are shown and the note says how many."""
    sentence = "This is a fairly ordinary sentence somebody said on the phone, number {n}."
    analysis = analysis_of({"utteranceInsights": utterances_of(300, text=sentence)})
    shown = utterances_card(renderer(), source_label=RECORDING_LABEL, analysis=analysis)
    size = len(json.dumps(shown, separators=(",", ":"), ensure_ascii=False).encode())
    assert size <= CARD_BYTE_BUDGET
    text = lines_of(shown)
    said = [line for line in text if "ordinary sentence" in line]
    assert 50 < len(said) < 300
    assert text[-1] == f"Showing the first {len(said)} of 300 utterances."
    assert_valid_card(shown)
