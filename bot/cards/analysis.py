"""The AI API analysis card (pending, success, failed, expired) and its shared parts."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from bot.analysis import (
    ANALYSIS_STATES,
    STATE_EXPIRED,
    STATE_FAILED,
    STATE_PENDING,
    SUMMARY_EXTRACTIVE,
    AnalysisState,
    InteractionAnalysis,
    SpeakerStats,
    Utterance,
    contains_address_or_secret,
)
from bot.cards.formatting import format_offset, format_start_time, short_line
from bot.cards.render import CardError, CardRenderer, SubmitAction

ANALYSIS_TEMPLATE: Final = "analysis.card.json.j2"


#: "Show all utterances" on an analysis card; data: jobId. Answered with `utterances_card`.
ACTION_AI_UTTERANCES: Final = "ai.utterances"
#: "Check now" on a pending analysis card; data: jobId.
ACTION_AI_REFRESH: Final = "ai.refresh"


DATA_JOB_ID: Final = "jobId"


DEFAULT_ANALYSIS_UTTERANCES: Final = 15


ANALYSIS_TAKES: Final = "The result usually takes 5–10 minutes."
ANALYSIS_EXPIRED: Final = (
    "RingCentral no longer has the result of this job (results are kept for one week)."
)
ANALYSIS_NO_REASON: Final = "RingCentral could not analyse the recording and gave no reason."
ANALYSIS_NOTHING_FOUND: Final = "RingCentral found nothing to report in this recording."


# --- AI API analyses ----------------------------------------------------------------------

_NO_VALUE: Final = "–"
UNNAMED_SPEAKER: Final = "Speaker"
#: The one voice RingCentral did not recognise when it recognised the others: neutral, never
#: a guess at who it was (the customer, say, or a colleague whose voice is not enrolled).
OTHER_PARTY: Final = "Other party"
_SOURCE_LABEL_MAX: Final = 200
#: The speaker table's columns: a SpeakerStats field, its heading, how a value is shown.
_SPEAKER_METRICS: Final[tuple[tuple[str, str, Callable[[Any], str]], ...]] = (
    ("talk_to_listen_ratio", "Talk time", lambda share: f"{round(share * 100)}%"),
    ("pace_wpm", "Pace", lambda wpm: f"{round(wpm)} wpm"),
    ("energy", "Energy", lambda energy: f"{energy:.1f}".removesuffix(".0")),
    ("questions_asked", "Questions", str),
)


def analysis_view(
    *,
    source_label: str,
    job_id: str,
    state: AnalysisState,
    requested_at: datetime,
    tz: ZoneInfo,
    analysis: InteractionAnalysis | None = None,
    problem: str | None = None,
    max_utterances: int = DEFAULT_ANALYSIS_UTTERANCES,
    speaker_names: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The values `analysis.card.json.j2` needs; see `analysis_card`."""
    if state not in ANALYSIS_STATES:
        raise ValueError(f"state must be one of {ANALYSIS_STATES}, got {state!r}")
    if max_utterances < 0:
        raise ValueError(f"max_utterances must not be negative, got {max_utterances}")
    label = checked_source_label(source_label)
    if not job_id.strip():
        raise CardError("an analysis card needs the job id")
    requested = format_start_time(requested_at, tz)
    view: dict[str, Any] = {
        "state": state,
        "heading": ["Analysis of ", label],
        "meta": [f"Requested {requested}"],
        "notice": None,
        "problem": None,
        "job_id": job_id,
        "speakers": None,
        "sections": [],
        "utterances": [],
        "utterances_note": None,
        "empty_text": None,
        "actions": [],
        "fallback_text": f"Analysis of {short_line(label)}",
    }
    refresh = SubmitAction("Check now", ACTION_AI_REFRESH, {DATA_JOB_ID: job_id})
    if state == STATE_PENDING:
        view.update(
            heading=["Analysing ", label, "…"],
            meta=[f"Started {requested}"],
            notice=ANALYSIS_TAKES,
            actions=[refresh.as_view()],
            fallback_text=f"Analysing {short_line(label)}…",
        )
    elif state == STATE_FAILED:
        text = problem if problem is not None and problem.strip() else ANALYSIS_NO_REASON
        if contains_address_or_secret(text):
            raise CardError(
                "the problem text holds an address or a token; describe it with "
                "bot.analysis.describe_ai_error, which leaves them out"
            )
        view.update(
            heading=["Could not analyse ", label],
            problem=text,
            fallback_text=f"Could not analyse {short_line(label)}",
        )
    elif state == STATE_EXPIRED:
        view.update(
            notice=ANALYSIS_EXPIRED,
            fallback_text=f"Analysis of {short_line(label)}: no longer available",
        )
    else:
        if analysis is None:
            raise ValueError("a successful analysis card needs the analysis")
        labels = speaker_labels(analysis, speaker_names)
        view.update(_analysis_content(analysis, label, requested, max_utterances, job_id, labels))
    return view


def analysis_card(
    renderer: CardRenderer,
    *,
    source_label: str,
    job_id: str,
    state: AnalysisState,
    requested_at: datetime,
    tz: ZoneInfo,
    analysis: InteractionAnalysis | None = None,
    problem: str | None = None,
    max_utterances: int = DEFAULT_ANALYSIS_UTTERANCES,
    speaker_names: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """An AI API analysis of a recording, in one of four states.

    * "pending": "Analysing <label>…", when it started, that it takes 5 to 10 minutes, and a
      "Check now" button (`ai.refresh` with the jobId, which is never shown);
    * "success": the title (if any), a per-speaker table (talk time, pace, energy,
      questions), the summaries, key phrases, topics and tasks, then the first
      `max_utterances` utterances ("mm:ss Speaker A: text (Joy)"); with more, a "Show all
      utterances" button (`ai.utterances` with the jobId), answered with `utterances_card`;
    * "failed": `problem` (literal text; use `describe_ai_error`);
    * "expired": RingCentral keeps results one week; this one is gone.

    `source_label` names the recording for a person ("your call with Tracy Chen", a file
    name) and is shown literally. It must never be the media URL: a label that holds an
    address or a token is refused with `CardError`, and so is such a `problem`.

    `speaker_names` names the speaker ids RingCentral was asked to recognise (see
    `speaker_labels`).
    """
    return renderer.render(
        ANALYSIS_TEMPLATE,
        **analysis_view(
            source_label=source_label,
            job_id=job_id,
            state=state,
            requested_at=requested_at,
            tz=tz,
            analysis=analysis,
            problem=problem,
            max_utterances=max_utterances,
            speaker_names=speaker_names,
        ),
    )


def _analysis_content(
    analysis: InteractionAnalysis,
    label: str,
    requested: str,
    max_utterances: int,
    job_id: str,
    labels: Mapping[str, str],
) -> dict[str, Any]:
    """The success state's values."""
    count = analysis.speaker_count
    speakers = f" · {count} speaker{'' if count == 1 else 's'}" if count else ""
    total = len(analysis.utterances)
    more = total > max_utterances
    return {
        "heading": [analysis.title] if analysis.title else ["Analysis of ", label],
        "meta": (
            [label, f" · Requested {requested}{speakers}"]
            if analysis.title
            else [f"Requested {requested}{speakers}"]
        ),
        "speakers": _speaker_table(analysis.speakers, labels),
        "sections": _analysis_sections(analysis),
        "utterances": [utterance_line(u, labels) for u in analysis.utterances[:max_utterances]],
        "utterances_note": (
            f"Showing the first {max_utterances} of {total} utterances." if more else None
        ),
        "empty_text": ANALYSIS_NOTHING_FOUND if analysis.is_empty else None,
        "actions": (
            [
                SubmitAction(
                    "Show all utterances", ACTION_AI_UTTERANCES, {DATA_JOB_ID: job_id}
                ).as_view()
            ]
            if more
            else []
        ),
        "fallback_text": (
            f"Analysis of {short_line(label)}: {short_line(analysis.title)}"
            if analysis.title
            else f"Analysis of {short_line(label)}"
        ),
    }


def _speaker_table(
    speakers: Sequence[SpeakerStats], labels: Mapping[str, str]
) -> dict[str, Any] | None:
    """Column headings and one row per speaker, only with the metrics someone has."""
    metrics = [
        (name, heading, show)
        for name, heading, show in _SPEAKER_METRICS
        if any(getattr(s, name) is not None for s in speakers)
    ]
    if not metrics:
        return None
    return {
        "columns": [heading for _, heading, _ in metrics],
        "rows": [
            {
                "speaker": labels.get(speaker.speaker_id, UNNAMED_SPEAKER),
                "values": [
                    _NO_VALUE if getattr(speaker, name) is None else show(getattr(speaker, name))
                    for name, _, show in metrics
                ],
            }
            for speaker in speakers
        ],
    }


def _analysis_sections(analysis: InteractionAnalysis) -> list[dict[str, Any]]:
    """Summaries (a summary that repeats an earlier one is left out), key phrases, topics
    and tasks, each only with content. `style` is "paragraphs", "bullets" or "inline"."""
    sections: list[dict[str, Any]] = []
    shown: list[tuple[str, ...]] = []
    for summary in analysis.summaries:
        if summary.texts in shown:
            continue
        shown.append(summary.texts)
        style = "bullets" if summary.kind == SUMMARY_EXTRACTIVE else "paragraphs"
        sections.append({"heading": summary.label, "style": style, "items": list(summary.texts)})
    for heading, items, style in (
        ("Key phrases", analysis.key_phrases, "inline"),
        ("Topics", analysis.topics, "inline"),
        ("Tasks", analysis.tasks, "bullets"),
    ):
        if items:
            sections.append({"heading": heading, "style": style, "items": list(items)})
    return sections


def utterance_line(utterance: Utterance, labels: Mapping[str, str]) -> dict[str, Any]:
    return {
        "timestamp": format_offset(utterance.start) if utterance.start is not None else None,
        "speaker": labels.get(utterance.speaker_id, UNNAMED_SPEAKER)
        if utterance.speaker_id
        else None,
        "text": utterance.text,
        "emotion": utterance.emotion,
    }


def speaker_labels(
    analysis: InteractionAnalysis, speaker_names: Mapping[str, str] | None = None
) -> dict[str, str]:
    """What to call each speaker id of an analysis.

    A speaker id in `speaker_names` (the extension ids the bot asked RingCentral to
    recognise, see bot.speakers) is that person's name. The others are voices nobody
    identified: when some were named, a single remaining one is the "Other party" and
    several are "Unidentified speaker A", "B"...; when nobody was, "Speaker A", "B"... (the
    API's own ids, "0" and "1", mean nothing to a person). Never a name by guess.
    """
    # one line each, shortened: a name is a label beside someone's words, not a paragraph
    names = {k: short_line(v) for k, v in (speaker_names or {}).items() if v and v.strip()}
    ids = list(
        dict.fromkeys(
            [s.speaker_id for s in analysis.speakers]
            + [u.speaker_id for u in analysis.utterances if u.speaker_id]
        )
    )
    labels = {speaker_id: names[speaker_id] for speaker_id in ids if speaker_id in names}
    unnamed = [speaker_id for speaker_id in ids if speaker_id not in labels]
    if labels and len(unnamed) == 1:
        labels[unnamed[0]] = OTHER_PARTY
        return labels
    prefix = "Unidentified speaker" if labels else UNNAMED_SPEAKER
    for n, speaker_id in enumerate(unnamed):
        labels[speaker_id] = f"{prefix} {chr(ord('A') + n) if n < 26 else n + 1}"
    return labels


def checked_source_label(label: str) -> str:
    """The caller's name for a recording, refused when it is not a plain name. The label is
    left out of the error on purpose: it may hold a token."""
    if not label.strip():
        raise CardError("an analysis card needs a source label")
    if contains_address_or_secret(label):
        raise CardError(
            "the source label holds an address or a token; pass a plain name such as "
            "'recording <id>' or the media file's name, never its URL"
        )
    if len(label) > _SOURCE_LABEL_MAX:
        return label[: _SOURCE_LABEL_MAX - 1].rstrip() + "…"
    return label
