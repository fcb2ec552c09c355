"""The typed model of an AI API ("Interaction Analytics") job and its result.

The bot asks RingCentral's AI API to analyse a recording (`POST /ai/insights/v1/async/
analyze-interaction?webhook=...`); the answer arrives later, either POSTed to the webhook or
from `GET /ai/status/v1/jobs/{jobId}`. Both bodies have one shape (API-FACTS.md E), parsed
here into a frozen `JobResult`; a successful job's `response` becomes an
`InteractionAnalysis`: per-speaker statistics, the conversation's summaries, key phrases,
topics and tasks, and the utterances with their emotions.

The API is deprecated and its spec, docs and samples disagree (the spec knows no `Energy`,
`Emotion`, `Tasks` or `Titles`; the 2022 docs and the docs sample have them; `ExtractiveSummary`
values carry `value` in the samples and `sentence` in the docs tables), so parsing follows
`bot.ringsense`: strict only about what identifies a result (`status`) and about sections
that are there but of the wrong kind, tolerant about the rest. Unknown insight names and keys
are ignored, missing sections are empty, numbers may come as strings. Text is kept exactly as
sent; the cards show it literally. Nothing here does I/O.

The meanings of the error codes CAI-102 to CAI-110 are not documented anywhere we could find
(API-FACTS.md, "Not found / UNCONFIRMED"), so `describe_ai_error` never guesses them: it
passes RingCentral's own message on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from bot import payloads

#: The `api` of an Interaction Analytics job.
ANALYZE_INTERACTION_API: Final = "/ai/insights/v1/async/analyze-interaction"

JobStatus = Literal["Success", "Fail", "InProgress"]
JOB_SUCCESS: Final = "Success"
JOB_FAIL: Final = "Fail"
JOB_IN_PROGRESS: Final = "InProgress"
JOB_STATUSES: Final[tuple[JobStatus, ...]] = ("Success", "Fail", "InProgress")

#: How long RingCentral keeps a job and its result (`expirationTime` = creation + 7 days).
RESULT_RETENTION: Final = timedelta(days=7)

#: What the bot's cards say about a job: still running, done, failed, or no longer kept.
AnalysisState = Literal["pending", "success", "failed", "expired"]
STATE_PENDING: Final = "pending"
STATE_SUCCESS: Final = "success"
STATE_FAILED: Final = "failed"
STATE_EXPIRED: Final = "expired"
ANALYSIS_STATES: Final[tuple[AnalysisState, ...]] = ("pending", "success", "failed", "expired")

# conversationalInsights names (matched case-insensitively).
SUMMARY_SHORT: Final = "AbstractiveSummaryShort"
SUMMARY_LONG: Final = "AbstractiveSummaryLong"
SUMMARY_EXTRACTIVE: Final = "ExtractiveSummary"
KEY_PHRASES: Final = "KeyPhrases"
TOPICS: Final = "Topics"
TASKS: Final = "Tasks"

#: The summaries in the order a reader wants them, with what the cards call them.
SUMMARY_LABELS: Final[Mapping[str, str]] = {
    SUMMARY_SHORT: "Short summary",
    SUMMARY_LONG: "Detailed summary",
    SUMMARY_EXTRACTIVE: "Key sentences",
}

# speakerInsights names (matched case-insensitively).
PACE: Final = "Pace"
TALK_TO_LISTEN_RATIO: Final = "TalkToListenRatio"
QUESTIONS_ASKED: Final = "QuestionsAsked"
ENERGY: Final = "Energy"

_EMOTION: Final = "emotion"
_TITLE_NAMES: Final = frozenset({"title", "titles"})
_SUMMARY_KINDS: Final[Mapping[str, str]] = {kind.lower(): kind for kind in SUMMARY_LABELS}
_RATIO: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*[:/]\s*(\d+(?:\.\d+)?)\s*$")
_PARAMETER_IN_MESSAGE: Final = re.compile(r"Parameter \[([^\]]+)\]")
#: Addresses and credentials that must never reach a chat: a recording's content URI carries
#: the access token in its query (`?access_token=...`).
_ADDRESS_OR_SECRET: Final = re.compile(
    r"[a-z][a-z0-9+.-]*://\S*|\S*(?:access_token|token|jwt|signature|api_?key)=\S*",
    re.IGNORECASE,
)
_REMOVED: Final = "(address removed)"


class AnalysisFormatError(ValueError):
    """An AI API payload is not the shape of a job result, so nothing can be made of it."""


@dataclass(frozen=True, slots=True)
class SpeakerStats:
    """One speaker's statistics from `speakerInsights`.

    `talk_to_listen_ratio` is the share of the time this speaker talked, 0 to 1 (RingCentral
    sends "58:42", meaning 58 talking to 42 listening: 0.58). `pace_wpm` is words per
    minute, `energy` RingCentral's energy score as sent, `questions_asked` a count. Any of
    them is None when RingCentral did not say.
    """

    speaker_id: str
    talk_to_listen_ratio: float | None
    pace_wpm: float | None
    energy: float | None
    questions_asked: int | None


@dataclass(frozen=True, slots=True)
class Utterance:
    """One stretch of speech: seconds into the recording, who, what, and its emotion
    (Anger, Anticipation, Disgust, Fear, Joy, Sadness, Surprise, Trust or Neutral, per the
    docs; kept as sent). `confidence` is the transcription's."""

    speaker_id: str | None
    start: float | None
    end: float | None
    text: str
    emotion: str | None
    confidence: float | None


@dataclass(frozen=True, slots=True)
class Summary:
    """One kind of summary (`kind` is one of `SUMMARY_LABELS`, `label` what cards call it)
    and its paragraphs or sentences, in RingCentral's order."""

    kind: str
    label: str
    texts: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class InteractionAnalysis:
    """The `response` of a successful Interaction Analytics job.

    `summaries` come in the order of `SUMMARY_LABELS`, only those with text. Key phrases and
    topics are listed once each (the API repeats a phrase at every place it was said), in
    the order first said; tasks as sent.
    """

    speakers: tuple[SpeakerStats, ...]
    speaker_count: int | None
    title: str | None
    summaries: tuple[Summary, ...]
    key_phrases: tuple[str, ...]
    topics: tuple[str, ...]
    tasks: tuple[str, ...]
    utterances: tuple[Utterance, ...]

    @classmethod
    def from_api(cls, response: Mapping[str, Any]) -> InteractionAnalysis:
        """Parse the `response` object of a Success result.

        Raises `AnalysisFormatError` when `response` is not an object, or when
        `utteranceInsights` or `conversationalInsights` is present but not a list, or
        `speakerInsights` present but not an object. Malformed items are skipped.
        """
        if not isinstance(response, Mapping):
            raise AnalysisFormatError(
                f"AI analysis: 'response' must be an object, got {type(response).__name__}"
            )
        utterances = _section(response, "utteranceInsights", list)
        speaker_insights = _section(response, "speakerInsights", Mapping)
        conversational = _section(response, "conversationalInsights", list)

        insights = _section(speaker_insights, "insights", list, where="speakerInsights.insights")
        count = payloads.number(speaker_insights.get("speakerCount"))

        values: dict[str, list[str]] = {}
        for item in _items(conversational):
            name = item.get("name")
            if isinstance(name, str):
                texts = values.setdefault(name.strip().lower(), [])
                texts.extend(_value_texts(item.get("values")))
        summaries = tuple(
            Summary(kind, SUMMARY_LABELS[kind], tuple(values[kind.lower()]))
            for kind in SUMMARY_LABELS
            if values.get(kind.lower())
        )
        title = next((t for name in _TITLE_NAMES for t in values.get(name, ())), None)
        return cls(
            speakers=_speaker_stats(insights),
            speaker_count=int(count) if count is not None and count >= 0 else None,
            title=title,
            summaries=summaries,
            key_phrases=_distinct(values.get(KEY_PHRASES.lower(), ())),
            topics=_distinct(values.get(TOPICS.lower(), ())),
            tasks=tuple(values.get(TASKS.lower(), ())),
            utterances=tuple(u for u in map(_utterance, _items(utterances)) if u is not None),
        )

    @property
    def is_empty(self) -> bool:
        """True when RingCentral found nothing at all to report."""
        return not (
            self.speakers
            or self.title
            or self.summaries
            or self.key_phrases
            or self.topics
            or self.tasks
            or self.utterances
        )


@dataclass(frozen=True, slots=True)
class AiError:
    """One entry of an AI API `errors` list: `CAI-1xx`, RingCentral's message, and the
    request parameter at fault when RingCentral named it."""

    error_code: str | None
    message: str | None
    parameter_name: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class JobResult:
    """A job's status and result, from the webhook body or `GET /ai/status/v1/jobs/{id}`.

    `analysis` is set for a successful Interaction Analytics job (and for a successful job
    whose `api` is not given); `errors` for a failed one. `job_id` is None only when neither
    the body nor the caller knew it (the docs' failure sample has no `jobId`).
    """

    job_id: str | None
    api: str | None
    status: JobStatus
    creation_time: datetime | None
    completion_time: datetime | None
    expiration_time: datetime | None
    analysis: InteractionAnalysis | None
    errors: tuple[AiError, ...]

    @classmethod
    def from_api(cls, body: Mapping[str, Any], *, job_id: str | None = None) -> JobResult:
        """Parse a job status or webhook body.

        `job_id` is the id the caller asked about (or put in the webhook address); it fills
        in a body without `jobId` and must agree with one that has it. Raises
        `AnalysisFormatError` when `status` is missing or unknown, when the ids disagree, or
        when a successful result's `response` is malformed.
        """
        if not isinstance(body, Mapping):
            raise AnalysisFormatError(
                f"AI job result must be a JSON object, got {type(body).__name__}"
            )
        status = _status(body)
        body_job_id = payloads.ident(body.get("jobId"))
        if body_job_id is not None and job_id is not None and body_job_id != job_id:
            raise AnalysisFormatError(
                f"AI job result: 'jobId' is {body_job_id!r}, expected {job_id!r}"
            )
        api = payloads.text(body.get("api"))
        response = body.get("response")
        if response is not None and not isinstance(response, Mapping):
            raise AnalysisFormatError(
                f"AI job result: 'response' must be an object, got {type(response).__name__}"
            )
        analysis = None
        if status == JOB_SUCCESS and (api is None or api.strip() == ANALYZE_INTERACTION_API):
            analysis = InteractionAnalysis.from_api(response or {})
        errors = parse_ai_errors(body)
        if response is not None:
            errors += parse_ai_errors(response)
        return cls(
            job_id=body_job_id or job_id,
            api=api.strip() if api else None,
            status=status,
            creation_time=payloads.timestamp(body.get("creationTime")),
            completion_time=payloads.timestamp(body.get("completionTime")),
            expiration_time=payloads.timestamp(body.get("expirationTime")),
            analysis=analysis,
            errors=errors,
        )

    @property
    def state(self) -> AnalysisState:
        """What a card says about this result: pending, success or failed."""
        if self.status == JOB_SUCCESS:
            return STATE_SUCCESS
        if self.status == JOB_FAIL:
            return STATE_FAILED
        return STATE_PENDING

    def is_expired(self, now: datetime) -> bool:
        """True once RingCentral no longer keeps the job (after `expirationTime`, or a week
        after `creationTime` when that is all we know)."""
        expires = self.expiration_time
        if expires is None and self.creation_time is not None:
            expires = self.creation_time + RESULT_RETENTION
        return expires is not None and now >= expires


@dataclass(frozen=True, slots=True)
class JobSummary:
    """One line of "my pending and recent jobs": which recording (a safe label, never a
    URL), the job's state and when it was asked for and finished."""

    job_id: str
    source_label: str
    state: AnalysisState
    requested_at: datetime
    finished_at: datetime | None


def parse_ai_errors(body: Mapping[str, Any]) -> tuple[AiError, ...]:
    """The `errors` of an AI API body (a 400/404 answer, or a failed job's `response`);
    entries without any of code, message or parameter are skipped."""
    errors = []
    for item in _items(body.get("errors") if isinstance(body, Mapping) else None):
        error = AiError(
            error_code=_one_line(item.get("errorCode")),
            message=_one_line(item.get("message")),
            parameter_name=_one_line(item.get("parameterName")),
        )
        if error != AiError(None, None, None):
            errors.append(error)
    return tuple(errors)


# --- errors in plain words ----------------------------------------------------------------

#: Request parameters about the media itself: RingCentral "could not use the recording".
_MEDIA_PARAMETERS: Final[Mapping[str, str]] = {
    "contenturi": "the media address (contentUri)",
    "content": "the media content (content)",
    "encoding": "the media format (encoding)",
    "samplerate": "the sample rate (sampleRate)",
    "source": "the media source (source)",
}
#: The other parameters of an analysis request.
_REQUEST_PARAMETERS: Final[Mapping[str, str]] = {
    "languagecode": "the language (languageCode)",
    "audiotype": "the kind of recording (audioType)",
    "speakercount": "the number of speakers (speakerCount)",
    "speakerids": "the speakers to recognise (speakerIds)",
    "separatespeakerperchannel": "the one-speaker-per-channel setting (separateSpeakerPerChannel)",
    "enablevoiceactivitydetection": (
        "the voice activity detection setting (enableVoiceActivityDetection)"
    ),
    "insights": "the list of insights asked for (insights)",
    "speechcontexts": "the phrases to listen for (speechContexts)",
    "webhook": "the bot's address for the result (webhook)",
    "jobid": "the job id (jobId)",
}


def describe_ai_error(error: AiError) -> str:
    """One sentence a person understands, naming the parameter at fault.

    CAI-101 is documented as "Parameter [x] is invalid", so it is said in plain words, e.g.
    "RingCentral could not use the recording: the media address (contentUri) is not valid
    or not reachable." Other codes' meanings are undocumented, so their sentence carries
    RingCentral's own message (addresses and tokens removed) and names the parameter.
    """
    parameter = error.parameter_name
    if parameter is None and error.message:
        found = _PARAMETER_IN_MESSAGE.search(error.message)
        parameter = found.group(1).strip() if found else None
    what = _parameter_words(parameter) if parameter else None
    opening = (
        "RingCentral could not use the recording"
        if parameter and parameter.lower() in _MEDIA_PARAMETERS
        else "RingCentral could not analyse the recording"
    )
    if error.error_code == "CAI-101" and what:
        unreachable = " or not reachable" if parameter and parameter.lower() == "contenturi" else ""
        return f"{opening}: {what} is not valid{unreachable}."
    code = f" ({error.error_code})" if error.error_code else ""
    about = f" because of {what}" if what else ""
    message = _redacted(error.message) if error.message else None
    if message:
        return f'{opening}{about}. RingCentral said: "{message}"{code}.'
    return f"{opening}{about}{code} and gave no reason."


def describe_job_failure(result: JobResult) -> str:
    """Why a job failed, one sentence per error, or a sentence saying no reason was given."""
    if not result.errors:
        return "RingCentral could not analyse the recording and gave no reason."
    return " ".join(dict.fromkeys(describe_ai_error(e) for e in result.errors))


def _parameter_words(parameter: str) -> str:
    key = parameter.lower()
    known = _MEDIA_PARAMETERS.get(key) or _REQUEST_PARAMETERS.get(key)
    return known or f"the parameter {_redacted(parameter)}"


def _redacted(text: str) -> str:
    """`text` with anything that looks like an address or a credential replaced."""
    return _ADDRESS_OR_SECRET.sub(_REMOVED, text)


def contains_address_or_secret(text: str) -> bool:
    """True when `text` holds a URL or something like `access_token=...`: text that must not
    be shown in a chat (a recording's content URI carries the token)."""
    return _ADDRESS_OR_SECRET.search(text) is not None


# --- parsing helpers ----------------------------------------------------------------------


def _status(body: Mapping[str, Any]) -> JobStatus:
    raw = body.get("status")
    if raw is None:
        raise AnalysisFormatError("AI job result: 'status' is missing")
    if isinstance(raw, str):
        for status in JOB_STATUSES:
            if raw.strip().lower() == status.lower():
                return status
    raise AnalysisFormatError(
        f"AI job result: 'status' must be one of {', '.join(JOB_STATUSES)}, got {raw!r}"
    )


def _section(body: Mapping[str, Any], key: str, kind: type, *, where: str | None = None) -> Any:
    """`body[key]` when it is a `kind` (absent or null: an empty one); `where` names it in
    the error."""
    value = body.get(key)
    if value is None:
        return kind() if kind is list else {}
    if not isinstance(value, kind):
        wanted = "a list" if kind is list else "an object"
        raise AnalysisFormatError(
            f"AI analysis: '{where or key}' must be {wanted}, got {type(value).__name__}"
        )
    return value


def _items(raw: object) -> Iterator[Mapping[str, Any]]:
    if isinstance(raw, list):
        for item in raw:
            if isinstance(item, Mapping):
                yield item


def _value_texts(raw: object) -> Iterator[str]:
    for item in _items(raw):
        text = next(
            (t for t in (payloads.text(item.get(k)) for k in ("value", "sentence", "text")) if t),
            None,
        )
        if text is not None:
            yield text


def _distinct(texts: Iterable[str]) -> tuple[str, ...]:
    """Each text once (ignoring case and surrounding space), first spelling kept."""
    seen: dict[str, str] = {}
    for text in texts:
        seen.setdefault(" ".join(text.split()).casefold(), text)
    return tuple(seen.values())


def _speaker_stats(insights: list[Any]) -> tuple[SpeakerStats, ...]:
    stats: dict[str, dict[str, Any]] = {}
    for insight in _items(insights):
        name = insight.get("name")
        name = name.strip().lower() if isinstance(name, str) else ""
        for item in _items(insight.get("values")):
            speaker_id = payloads.ident(item.get("speakerId"))
            if speaker_id is None:
                continue
            known = stats.setdefault(speaker_id, {})
            value = item.get("value")
            if name == TALK_TO_LISTEN_RATIO.lower():
                known.setdefault("talk_to_listen_ratio", _talk_share(value))
            elif name == PACE.lower():
                wpm = payloads.number(item.get("wpm"))
                known.setdefault("pace_wpm", wpm if wpm is not None else payloads.number(value))
            elif name == ENERGY.lower():
                known.setdefault("energy", payloads.number(value))
            elif name == QUESTIONS_ASKED.lower():
                known.setdefault("questions_asked", _count(value, item.get("questions")))
    return tuple(
        SpeakerStats(
            speaker_id=speaker_id,
            talk_to_listen_ratio=known.get("talk_to_listen_ratio"),
            pace_wpm=_non_negative(known.get("pace_wpm")),
            energy=known.get("energy"),
            questions_asked=known.get("questions_asked"),
        )
        for speaker_id, known in stats.items()
    )


def _talk_share(value: object) -> float | None:
    """A ratio like "58:42" (talking to listening) as 0.58; anything else is not guessed."""
    if not isinstance(value, str):
        return None
    found = _RATIO.match(value)
    if found is None:
        return None
    talk, listen = float(found.group(1)), float(found.group(2))
    return talk / (talk + listen) if talk + listen > 0 else None


def _count(value: object, questions: object) -> int | None:
    number = payloads.number(value)
    if number is not None and number >= 0 and number.is_integer():
        return int(number)
    return len(questions) if isinstance(questions, list) else None


def _non_negative(value: float | None) -> float | None:
    return value if value is not None and value >= 0 else None


def _utterance(item: Mapping[str, Any]) -> Utterance | None:
    text = payloads.text(item.get("text"))
    if text is None:
        return None
    emotion = next(
        (
            payloads.text(insight.get("value"))
            for insight in _items(item.get("insights"))
            if isinstance(insight.get("name"), str)
            and insight["name"].strip().lower() == _EMOTION
            and payloads.text(insight.get("value"))
        ),
        None,
    )
    return Utterance(
        speaker_id=payloads.ident(item.get("speakerId")),
        start=payloads.number(item.get("start")),
        end=payloads.number(item.get("end")),
        text=text,
        emotion=emotion.strip() if emotion else None,
        confidence=payloads.number(item.get("confidence")),
    )


def _one_line(value: object) -> str | None:
    text = payloads.text(value)
    return " ".join(text.split()) if text is not None else None


__all__ = [
    "ANALYSIS_STATES",
    "ANALYZE_INTERACTION_API",
    "ENERGY",
    "JOB_FAIL",
    "JOB_IN_PROGRESS",
    "JOB_STATUSES",
    "JOB_SUCCESS",
    "KEY_PHRASES",
    "PACE",
    "QUESTIONS_ASKED",
    "RESULT_RETENTION",
    "STATE_EXPIRED",
    "STATE_FAILED",
    "STATE_PENDING",
    "STATE_SUCCESS",
    "SUMMARY_EXTRACTIVE",
    "SUMMARY_LABELS",
    "SUMMARY_LONG",
    "SUMMARY_SHORT",
    "TALK_TO_LISTEN_RATIO",
    "TASKS",
    "TOPICS",
    "AiError",
    "AnalysisFormatError",
    "AnalysisState",
    "InteractionAnalysis",
    "JobResult",
    "JobStatus",
    "JobSummary",
    "SpeakerStats",
    "Summary",
    "Utterance",
    "contains_address_or_secret",
    "describe_ai_error",
    "describe_job_failure",
    "parse_ai_errors",
]
