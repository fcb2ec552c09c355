"""The deprecated AI API's asynchronous jobs (API-FACTS E): the request check, the job
record, and the Interaction Analytics result.

Field names follow the docs sample (fixture ai-analyze-interaction-success.docs-excerpt.json)
and the spec's `InteractionInput` / `InteractionObject`. Where the two disagree the docs
sample wins, because it is real output: `QuestionsAsked` values carry an integer `value`
and a `questions` list, and `Pace` values a numeric `wpm` (the spec types every speaker
insight value as a string).

Which insights (seed 004): the union of the documented lists is accepted and produced, and
any other name is refused with the platform's 400 (CAI-101 on `insights`). Sources:

* DOCS `docs/ai/interaction-analytics-api.md` (commit 8f3232f2, the 2022 API page): request
  `insights` may be `All, KeyPhrases, Emotion, AbstractiveSummaryLong,
  AbstractiveSummaryShort, ExtractiveSummary, TalkToListenRatio, Energy, Pace,
  QuestionsAsked, Title, Tasks`; conversational results are named `Tasks` and `Titles`;
  speaker insights `Energy` (a number per speaker), `Pace`, `TalkToListenRatio`; utterance
  insights `Emotion` with the values Anger, Anticipation, Disgust, Fear, Joy, Sadness,
  Surprise, Trust, Neutral.
* DOCS `docs/ai/interaction-analytics.md` (current guide) adds `Topics` and the docs sample's
  `Pace` (`value` slow/medium/fast and `wpm`) and `QuestionsAsked` (`value`, `questions`).
* SPEC `InsightsEnum` has only All, KeyPhrases, the three summaries, Topics,
  TalkToListenRatio, Pace and QuestionsAsked; RingCentral.Net's generated `InteractionInput`
  (an older spec) also has Emotion and Energy. The spec is the narrower, later reading of a
  deprecated API: accepting the documented names is what the platform did when the docs were
  written, and a bot that asks for them must cope with them.

Speaker identification (DOCS `docs/ai/speaker-enrollment.md`, `interaction-analytics.md`):
`speakerIds` lists previously enrolled speakers ("make sure that all the speaker ids in the
array exist. Otherwise, the API call will fail"); RingCentral recommends enrolling a user
under their extension id and passing the call-log parties' extension ids. A voice the
service recognises is reported under its enrolled id instead of a diarization number.

Choices where nothing authoritative was found (UNCONFIRMED):

* `insights` omitted means every insight, like `["All"]`; `All` brings every documented
  insight but `Title` (neither docs sample of an `All` analysis has a title; the 2022 one has
  `Energy` and `Tasks`, the later one `Pace`). `Title` comes only when asked for by name.
* `Title` is asked for as `Title` and answered as `Titles` (the 2022 page's two tables).
* `Emotion` is on every utterance when asked for (or `All`), else utterances have no
  `insights` (the guide lists per-utterance emotion recognition; the current spec does not
  have the field and does not forbid it).
* An unknown or incomplete enrolled id in `speakerIds` is refused at once with a 400 CAI-101
  on `speakerIds` (the docs say only that the call fails).
* The service recognises an enrolled speaker only when that person is on the recording:
  for a sandbox recording, the call's owner is the first voice ("0") and an extension on
  the other end of a two-speaker call the second ("1"). Any other voice keeps its number.
* `encoding` and `languageCode` are required, as the spec's `AudioInput` says (API-FACTS
  mentions a default en-US for `languageCode`; the stricter reading keeps a bot honest).
  `contentUri` is required too: nothing can be analysed without it.
* Every invalid field is reported, each as its own CAI-101 entry.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sandbox.conversations import AGENT, Conversation, conversation

JSON = dict[str, Any]

ANALYZE_INTERACTION = "/ai/insights/v1/async/analyze-interaction"
JOB_LIFETIME_SECONDS = 7 * 24 * 3600
"""Job ids expire a week after creation (API-FACTS E)."""
WEBHOOK_TIMEOUT_SECONDS = 10.0

ENCODINGS = ("Mpeg", "Mp4", "Wav", "Webm", "Webp", "Aac", "Avi", "Ogg")
AUDIO_TYPES = (
    "CallCenter",
    "Meeting",
    "EarningsCalls",
    "Interview",
    "PressConference",
    "Voicemail",
)
INSIGHTS = (
    "All",
    "KeyPhrases",
    "Emotion",
    "AbstractiveSummaryLong",
    "AbstractiveSummaryShort",
    "ExtractiveSummary",
    "Topics",
    "TalkToListenRatio",
    "Energy",
    "Pace",
    "QuestionsAsked",
    "Title",
    "Tasks",
)
"""Every name the docs allow in `insights` (see the module docstring for the sources)."""
SPEAKER_INSIGHTS = ("Energy", "Pace", "TalkToListenRatio", "QuestionsAsked")
CONVERSATIONAL_INSIGHTS = (
    "KeyPhrases",
    "ExtractiveSummary",
    "Topics",
    "Tasks",
    "Titles",
    "AbstractiveSummaryLong",
    "AbstractiveSummaryShort",
)
ALL_MEANS = frozenset(INSIGHTS) - {"All", "Title"}
"""What `insights: ["All"]` brings (UNCONFIRMED for Title, see the module docstring)."""
#: The name a result carries -> the name it is asked for by, where they differ.
REQUESTED_AS = {"Titles": "Title"}
EMOTIONS = ("Anger", "Anticipation", "Disgust", "Fear", "Joy", "Sadness", "Surprise", "Trust")
"""The documented utterance emotions, besides Neutral."""
MAX_SPEECH_CONTEXTS = 50
LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}-[A-Z]{2}$")

JobStatus = Literal["InProgress", "Success", "Fail"]


def cai_error(parameter: str, reason: str) -> JSON:
    """One entry of a CAI error list, worded like the documented CAI-101 sample."""
    return {
        "errorCode": "CAI-101",
        "message": f"Parameter [{parameter}] is invalid. {reason}",
        "parameterName": parameter,
    }


CONTENT_URI_INVALID = cai_error("contentUri", "It should be a valid uri")
"""The documented failure (fixture ai-webhook-fail-CAI-101.json)."""


def _is_http_uri(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc) and " " not in value


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def validate_interaction_input(body: JSON) -> list[JSON]:
    """CAI-101 entries for every field of `InteractionInput` that is missing or wrong."""
    errors: list[JSON] = []
    if not _is_http_uri(body.get("contentUri")):
        errors.append(CONTENT_URI_INVALID)
    if "content" in body:
        # Media inline (`content`, seed 002) and by address (`contentUri`) at once leave the
        # service to guess which one is meant; refusing is the stricter reading
        # (UNCONFIRMED: the spec's ContentInput has only `contentUri`).
        errors.append(cai_error("content", "It cannot be given together with contentUri"))
    if body.get("encoding") not in ENCODINGS:
        errors.append(cai_error("encoding", f"It should be one of {', '.join(ENCODINGS)}"))
    language = body.get("languageCode")
    if not isinstance(language, str) or not LANGUAGE_CODE.match(language):
        errors.append(cai_error("languageCode", "It should be a language code like en-US"))
    if "source" in body and not isinstance(body["source"], str):
        errors.append(cai_error("source", "It should be a string"))
    if "audioType" in body and body["audioType"] not in AUDIO_TYPES:
        errors.append(cai_error("audioType", f"It should be one of {', '.join(AUDIO_TYPES)}"))
    for flag in ("separateSpeakerPerChannel", "enableVoiceActivityDetection"):
        if flag in body and not _is_bool(body[flag]):
            errors.append(cai_error(flag, "It should be a boolean"))
    if "speakerCount" in body:
        count = body["speakerCount"]
        if _is_bool(count) or not isinstance(count, int) or not 1 <= count <= 2**31 - 1:
            errors.append(cai_error("speakerCount", "It should be a positive integer"))
    if "insights" in body:
        insights = body["insights"]
        if not isinstance(insights, list) or not all(item in INSIGHTS for item in insights):
            errors.append(cai_error("insights", f"It should be a list of {', '.join(INSIGHTS)}"))
    if "speakerIds" in body:
        speaker_ids = body["speakerIds"]
        if not isinstance(speaker_ids, list) or not all(
            isinstance(item, str) and item for item in speaker_ids
        ):
            errors.append(cai_error("speakerIds", "It should be a list of enrolled speaker ids"))
    if "speechContexts" in body:
        contexts = body["speechContexts"]
        valid = (
            isinstance(contexts, list)
            and len(contexts) <= MAX_SPEECH_CONTEXTS
            and all(
                isinstance(item, dict)
                and isinstance(item.get("phrases"), list)
                and all(isinstance(phrase, str) for phrase in item["phrases"])
                for item in contexts
            )
        )
        if not valid:
            errors.append(
                cai_error(
                    "speechContexts",
                    f"It should be at most {MAX_SPEECH_CONTEXTS} objects with phrases",
                )
            )
    return errors


def mask_access_token(url: str) -> str:
    """The URL with any `access_token` query value replaced: never echo a credential."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "access_token" not in parts.query:
        return url
    query = [
        (name, "***" if name == "access_token" else value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*")))


@dataclass
class WebhookAttempt:
    """One POST of a job's result to its `webhook` URL."""

    job_id: str
    url: str
    time: float
    status: int | None
    error: str | None
    payload: JSON

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class AiJob:
    id: str
    api: str
    owner_id: str
    account_id: str
    webhook: str
    request_body: JSON
    creation_time: float
    status: JobStatus = "InProgress"
    completion_time: float | None = None
    response: JSON | None = None
    forced_by_control: bool = False
    deliveries: list[WebhookAttempt] = field(default_factory=list)
    lifetime_seconds: float = JOB_LIFETIME_SECONDS

    @property
    def expiration_time(self) -> float:
        return self.creation_time + self.lifetime_seconds

    @property
    def content_uri(self) -> str:
        return str(self.request_body.get("contentUri", ""))


def _round(value: float) -> float:
    return round(value, 2)


def interaction_response(
    job_id: str, body: JSON, *, recognised: Mapping[str, str] | None = None
) -> JSON:
    """The `response` of a successful analyze-interaction job, the same for the same id.

    `recognised` maps a diarized voice ("0", "1") to the enrolled speaker id the service
    recognised in it; such a voice is reported under that id everywhere.
    """
    talk = conversation(job_id)
    requested = body.get("insights") or ["All"]
    wanted = set(requested) | (ALL_MEANS if "All" in requested else set())
    speaker_count = body.get("speakerCount")
    speakers = speaker_count if isinstance(speaker_count, int) and speaker_count > 0 else 2
    voices = recognised or {}
    speaker_of = [voices.get(voice, voice) for voice in _speaker_ids(talk, speakers)]
    utterances: list[JSON] = []
    for index, unit in enumerate(talk.utterances):
        utterance: JSON = {
            "start": unit.start,
            "end": unit.end,
            "text": unit.text,
            "confidence": unit.confidence,
            "speakerId": speaker_of[index],
        }
        if "Emotion" in wanted:
            emotion = _documented_emotion(unit.emotion, unit.text)
            utterance["insights"] = [
                {"name": "Emotion", "value": emotion, "confidence": unit.confidence}
            ]
        utterances.append(utterance)
    speaker_insights = [
        insight
        for insight in _speaker_insights(utterances, list(dict.fromkeys(speaker_of)))
        if insight["name"] in wanted
    ]
    conversational = [
        insight
        for insight in _conversational_insights(talk, utterances)
        if REQUESTED_AS.get(insight["name"], insight["name"]) in wanted
    ]
    return {
        "utteranceInsights": utterances,
        "speakerInsights": {"speakerCount": len(set(speaker_of)), "insights": speaker_insights},
        "conversationalInsights": conversational,
    }


def _documented_emotion(tone: str, text: str) -> str:
    """The scripts tag lines Positive/Neutral/Negative; the API answers with the documented
    emotions: a worried question is Fear, other negative lines Anger, thanks Trust, other
    positive lines Joy."""
    if tone == "Negative":
        return "Fear" if text.rstrip().endswith("?") else "Anger"
    if tone == "Positive":
        return "Trust" if "thank" in text.lower() or "appreciate" in text.lower() else "Joy"
    return "Neutral"


def _speaker_ids(talk: Conversation, speakers: int) -> list[str]:
    """Speaker "0" is the agent; customer lines go to "1".."n-1" in turn (one speaker:
    everything is "0")."""
    ids = []
    turn = 0
    for unit in talk.utterances:
        if speakers == 1 or unit.speaker == AGENT:
            ids.append("0")
        else:
            ids.append(str(1 + turn % (speakers - 1)))
            turn += 1
    return ids


def _speaker_insights(utterances: list[JSON], speaker_ids: list[str]) -> list[JSON]:
    talk_time = {sid: 0.0 for sid in speaker_ids}
    words = {sid: 0 for sid in speaker_ids}
    questions: dict[str, list[JSON]] = {sid: [] for sid in speaker_ids}
    for unit in utterances:
        sid = unit["speakerId"]
        talk_time[sid] += unit["end"] - unit["start"]
        words[sid] += len(unit["text"].split())
        if unit["text"].rstrip().endswith("?"):
            questions[sid].append(
                {"text": unit["text"], "start": unit["start"], "end": unit["end"]}
            )
    total = sum(talk_time.values()) or 1.0
    pace = []
    ratio = []
    energy = []
    for sid in speaker_ids:
        # Energy: a number per speaker, like the docs sample's 86.64 and 62.69 (its scale is
        # undocumented); here it grows with how much of the call the speaker carried.
        energy.append({"speakerId": sid, "value": _round(40 + 55 * talk_time[sid] / total)})
        wpm = _round(words[sid] / (talk_time[sid] / 60)) if talk_time[sid] else 0.0
        label = "slow" if wpm < 130 else "medium" if wpm <= 170 else "fast"
        pace.append({"speakerId": sid, "value": label, "wpm": wpm})
        share = round(100 * talk_time[sid] / total)
        ratio.append({"speakerId": sid, "value": f"{share}:{100 - share}"})
    asked = [
        {"speakerId": sid, "value": len(questions[sid]), "questions": questions[sid]}
        for sid in speaker_ids
    ]
    return [
        {"name": "Energy", "values": energy},
        {"name": "Pace", "values": pace},
        {"name": "TalkToListenRatio", "values": ratio},
        {"name": "QuestionsAsked", "values": asked},
    ]


def _conversational_insights(talk: Conversation, utterances: list[JSON]) -> list[JSON]:
    first, last = utterances[0], utterances[-1]
    key_phrases = []
    for unit in utterances:
        tokens = unit["text"].split()
        per_word = (unit["end"] - unit["start"]) / max(1, len(tokens))
        for position, token in enumerate(tokens):
            word = token.strip(".,?!").lower()
            if word in talk.script.key_phrases:
                start = unit["start"] + position * per_word
                key_phrases.append(
                    {
                        "start": _round(start),
                        "end": _round(start + per_word),
                        "value": word,
                        "confidence": round(0.85 + (position % 10) / 100, 2),
                    }
                )
    extractive = [
        {
            "value": unit["text"],
            "start": unit["start"],
            "end": unit["end"],
            "confidence": unit["confidence"],
            "speakerId": unit["speakerId"],
        }
        for unit in utterances[2:4]
    ]
    span = {"start": first["start"], "end": last["end"]}
    topics = [
        {
            "value": topic,
            "start": first["start"],
            "end": last["end"],
            "confidence": round(0.9 - i / 10, 2),
        }
        for i, topic in enumerate(talk.script.topics)
    ]
    return [
        {"name": "KeyPhrases", "values": key_phrases},
        {"name": "ExtractiveSummary", "values": extractive},
        {"name": "Topics", "values": topics},
        {
            "name": "Tasks",
            "values": [
                {"value": talk.fill(task), **span, "confidence": round(0.8 - i / 20, 2)}
                for i, task in enumerate(talk.script.tasks)
            ],
        },
        {
            "name": "Titles",
            "values": [
                {"value": talk.script.subject.capitalize(), **span, "confidence": 0.74},
            ],
        },
        {
            "name": "AbstractiveSummaryLong",
            "values": [
                {
                    "value": talk.fill(talk.script.long_summary),
                    **span,
                    "confidence": 0.62,
                    "groupId": "0",
                }
            ],
        },
        {
            "name": "AbstractiveSummaryShort",
            "values": [{"value": talk.fill(talk.script.short_summary), **span, "confidence": 0.58}],
        },
    ]
