"""The typed model of one call's RingSense ("AI Conversation Expert") insights.

RingSense reaches the bot twice in different shapes that carry the same fields: the body of a
`/ai/ringsense/.../insights` notification and the REST record from
`GET .../records/{sourceRecordId}/insights`. Both are turned into one frozen `CallInsights`
here, so handlers, the digest card and the entitlement checks never touch raw JSON.

The API is a beta, and its samples and spec disagree (see API-FACTS.md C and the discrepancies
list), so parsing is strict only about the identity fields a digest cannot exist without and
tolerant about everything else: any insight key may be absent, unknown keys are ignored,
`Highlights`/`HighLights` are the same key, numbers may come as strings. Text from the call is
kept exactly as sent; it is the card's job to show it literally. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

from bot import payloads

TRANSCRIPT: Final = "Transcript"
SUMMARY: Final = "Summary"
HIGHLIGHTS: Final = "Highlights"
NEXT_STEPS: Final = "NextSteps"
BULLETED_SUMMARY: Final = "BulletedSummary"
AI_SCORE: Final = "AIScore"
SENTIMENT: Final = "Sentiment"
CALL_NOTES: Final = "CallNotes"

#: Our own key in a stored call's record: how many utterances its transcript has, the
#: transcript itself being stored apart (bot/storage.py) and read only to be shown.
TRANSCRIPT_STORED_APART: Final = "transcriptStoredApart"

#: Every insight key the model understands, spelled as the OpenAPI spec spells them.
INSIGHT_KEYS: Final[frozenset[str]] = frozenset(
    {TRANSCRIPT, SUMMARY, HIGHLIGHTS, NEXT_STEPS, BULLETED_SUMMARY, AI_SCORE, SENTIMENT, CALL_NOTES}
)

#: The insight keys a digest shows; when one is missing from a notification, the REST record
#: may have it.
DIGEST_INSIGHT_KEYS: Final[frozenset[str]] = frozenset(
    {SUMMARY, BULLETED_SUMMARY, NEXT_STEPS, HIGHLIGHTS, AI_SCORE, CALL_NOTES}
)

# Matched case-insensitively, which also covers the docs' "HighLights" spelling.
_CANONICAL_KEY: Final[dict[str, str]] = {key.lower(): key for key in INSIGHT_KEYS}

_T = TypeVar("_T")


class InsightsFormatError(ValueError):
    """A RingSense payload lacks what identifies the call, so no digest can be made of it."""


@dataclass(frozen=True, slots=True)
class Speaker:
    """One voice on the call, from `speakerInfo[]`. Null ids mean "not one of ours"."""

    speaker_id: str
    name: str
    extension_id: str | None
    account_id: str | None
    phone_number: str | None

    @property
    def display_name(self) -> str | None:
        """What to call this speaker in a card: the name, else the phone number."""
        if self.name.strip():
            return self.name
        if self.phone_number and self.phone_number.strip():
            return self.phone_number
        return None


@dataclass(frozen=True, slots=True)
class TimedText:
    """A piece of text anchored in the call: a transcript line, a next step, a highlight.

    `start`/`end` are seconds into the recording (for `Summary` the samples use paragraph
    indexes instead); `speaker_id` refers to `CallInsights.speakers`.
    """

    text: str
    start: float | None
    end: float | None
    speaker_id: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallInsights:
    """Everything RingSense said about one recording, as far as we know it so far.

    `insight_keys` records which insight keys arrived with usable content (a key present but
    empty, or an `AIScore` that is not a number, does not count), so that a later, fuller
    payload can fill exactly the gaps (`merged_with`, `missing_insight_keys`).
    """

    domain: str
    source_record_id: str
    source_session_id: str
    owner_extension_id: str
    title: str
    call_direction: str | None
    recording_start_time: datetime | None
    recording_duration_ms: int | None
    creation_time: datetime | None
    last_modified_time: datetime | None
    ringsense_url: str | None
    speakers: tuple[Speaker, ...]
    transcript: tuple[TimedText, ...]
    summary: tuple[TimedText, ...]
    next_steps: tuple[TimedText, ...]
    highlights: tuple[TimedText, ...]
    bulleted_summary: tuple[str, ...]
    call_notes: tuple[str, ...]
    ai_score: float | None
    sentiment: str | None
    insight_keys: frozenset[str]
    account_id: str | None = None
    """The account whose install or RingSense subscription brought this call (the payload
    never says it for sure); None until the bot knows, and then nobody may see the call."""
    transcript_stored_apart: int = 0
    """Utterances of a transcript that is stored but was not read with this record (a
    card needs to know it exists, for Show transcript, not what it says)."""

    @property
    def has_transcript(self) -> bool:
        return bool(self.transcript) or self.transcript_stored_apart > 0

    @classmethod
    def from_api(cls, body: Mapping[str, Any], *, account_id: str | None = None) -> CallInsights:
        """Parse a RingSense notification `body` or a REST insights record.

        `account_id` is the account the record was read through, not anything in the body.

        Raises `InsightsFormatError` when `domain`, `sourceRecordId` or `ownerExtensionId`
        is missing or not a non-empty string, or when `insights` is present but not an
        object. Everything else is optional and malformed parts are skipped.
        """
        if not isinstance(body, Mapping):
            raise InsightsFormatError(
                f"RingSense insights must be a JSON object, got {type(body).__name__}"
            )
        domain = _required_id(body, "domain")
        source_record_id = _required_id(body, "sourceRecordId")
        owner_extension_id = _required_id(body, "ownerExtensionId")
        raw_insights = body.get("insights", {})
        if not isinstance(raw_insights, Mapping):
            raise InsightsFormatError(
                "RingSense insights: 'insights' must be an object, "
                f"got {type(raw_insights).__name__}"
            )
        insights = _canonical_insights(raw_insights)

        transcript = _timed_texts(insights.get(TRANSCRIPT), text_keys=("text", "value"))
        summary = _timed_texts(insights.get(SUMMARY))
        next_steps = _timed_texts(insights.get(NEXT_STEPS))
        highlights = _timed_texts(insights.get(HIGHLIGHTS))
        bulleted_summary = tuple(_item_texts(insights.get(BULLETED_SUMMARY)))
        call_notes = tuple(_item_texts(insights.get(CALL_NOTES)))
        scores = map(payloads.number, _item_values(insights.get(AI_SCORE)))
        ai_score = next((s for s in scores if s is not None), None)
        sentiment = next(iter(_item_texts(insights.get(SENTIMENT))), None)

        content: dict[str, object] = {
            TRANSCRIPT: transcript,
            SUMMARY: summary,
            NEXT_STEPS: next_steps,
            HIGHLIGHTS: highlights,
            BULLETED_SUMMARY: bulleted_summary,
            CALL_NOTES: call_notes,
            AI_SCORE: ai_score,
            SENTIMENT: sentiment,
        }
        direction = payloads.text(body.get("callDirection"))
        duration = payloads.number(body.get("recordingDurationMs"))
        return cls(
            domain=domain,
            source_record_id=source_record_id,
            source_session_id=payloads.ident(body.get("sourceSessionId")) or "",
            owner_extension_id=owner_extension_id,
            title=body["title"] if isinstance(body.get("title"), str) else "",
            call_direction=direction.strip() if direction else None,
            recording_start_time=payloads.timestamp(body.get("recordingStartTime")),
            recording_duration_ms=(
                int(duration) if duration is not None and duration >= 0 else None
            ),
            creation_time=payloads.timestamp(body.get("creationTime")),
            last_modified_time=payloads.timestamp(body.get("lastModifiedTime")),
            ringsense_url=_web_url(body.get("rsRecordUri")),
            speakers=_speakers(body.get("speakerInfo")),
            transcript=transcript,
            summary=summary,
            next_steps=next_steps,
            highlights=highlights,
            bulleted_summary=bulleted_summary,
            call_notes=call_notes,
            ai_score=ai_score,
            sentiment=sentiment,
            insight_keys=frozenset(k for k, v in content.items() if v not in (None, ())),
            account_id=account_id,
            transcript_stored_apart=_count(body.get(TRANSCRIPT_STORED_APART)),
        )

    def merged_with(self, other: CallInsights) -> CallInsights:
        """This call's insights completed by `other`, a later or fuller payload of the same call.

        Each insight `other` has wins; the rest stay. Metadata `other` knows wins too, and
        speakers are united by speaker id. Used for "notification first, the REST record
        fills the gaps" and for the AI Notes event followed by the RingSense one. Refuses to
        mix two different recordings, which would leak one call's content into another's
        digest.
        """
        if (other.domain, other.source_record_id) != (self.domain, self.source_record_id):
            raise ValueError(
                "cannot merge insights of different recordings: "
                f"{self.domain}/{self.source_record_id} and "
                f"{other.domain}/{other.source_record_id}"
            )
        if None not in (self.account_id, other.account_id) and self.account_id != other.account_id:
            raise ValueError("cannot merge insights of the same record id from two accounts")
        theirs = other.insight_keys

        def pick(key: str, mine: _T, their: _T) -> _T:
            return their if key in theirs else mine

        return CallInsights(
            domain=self.domain,
            source_record_id=self.source_record_id,
            source_session_id=other.source_session_id or self.source_session_id,
            owner_extension_id=other.owner_extension_id or self.owner_extension_id,
            title=other.title if other.title.strip() else self.title,
            call_direction=other.call_direction or self.call_direction,
            recording_start_time=other.recording_start_time or self.recording_start_time,
            recording_duration_ms=_first_set(
                other.recording_duration_ms, self.recording_duration_ms
            ),
            creation_time=other.creation_time or self.creation_time,
            last_modified_time=other.last_modified_time or self.last_modified_time,
            ringsense_url=other.ringsense_url or self.ringsense_url,
            speakers=_merged_speakers(self.speakers, other.speakers),
            transcript=pick(TRANSCRIPT, self.transcript, other.transcript),
            summary=pick(SUMMARY, self.summary, other.summary),
            next_steps=pick(NEXT_STEPS, self.next_steps, other.next_steps),
            highlights=pick(HIGHLIGHTS, self.highlights, other.highlights),
            bulleted_summary=pick(BULLETED_SUMMARY, self.bulleted_summary, other.bulleted_summary),
            call_notes=pick(CALL_NOTES, self.call_notes, other.call_notes),
            ai_score=pick(AI_SCORE, self.ai_score, other.ai_score),
            sentiment=pick(SENTIMENT, self.sentiment, other.sentiment),
            insight_keys=self.insight_keys | other.insight_keys,
            account_id=self.account_id or other.account_id,
            transcript_stored_apart=(other.transcript_stored_apart or self.transcript_stored_apart),
        )

    def missing_insight_keys(self) -> frozenset[str]:
        """The digest's insight keys this payload did not bring: what a REST fetch could add."""
        return DIGEST_INSIGHT_KEYS - self.insight_keys

    @property
    def owner_account_id(self) -> str | None:
        """The owner's account, known only when the owner is among the speakers."""
        for speaker in self.speakers:
            if speaker.extension_id == self.owner_extension_id:
                return speaker.account_id
        return None

    def entitled_extension_ids(self) -> frozenset[str]:
        """Who of the call's account may see it: the owner and the colleagues who spoke on it.

        A speaker counts only when their `accountId` is the call's account; a missing
        `accountId` is not proof of anything. When the call's account is unknown, nobody.
        """
        if self.account_id is None:
            return frozenset()
        colleagues = (
            s.extension_id
            for s in self.speakers
            if s.extension_id is not None and s.account_id == self.account_id
        )
        return frozenset({self.owner_extension_id, *colleagues})

    def speaker(self, speaker_id: str | None) -> Speaker | None:
        """The speaker behind a `speakerId`, if the payload described them."""
        if speaker_id is None:
            return None
        return next((s for s in self.speakers if s.speaker_id == speaker_id), None)

    def speaker_name(self, speaker_id: str | None) -> str | None:
        """A displayable name for a `speakerId` (name, else phone number), or None."""
        found = self.speaker(speaker_id)
        return found.display_name if found else None

    def is_external_speaker(self, speaker: Speaker) -> bool:
        """True for someone outside the call's account (no extension, another account, or
        no account given while the call's account is known).

        When no account is known at all, a speaker with an extension is given the benefit
        of the doubt only if every extension on the call shares one account.
        """
        if speaker.extension_id is None:
            return True
        owner_account = self.account_id or self.owner_account_id
        if owner_account is not None:
            return speaker.account_id != owner_account
        accounts = {s.account_id for s in self.speakers if s.extension_id is not None}
        return len(accounts) > 1

    @property
    def is_external(self) -> bool:
        """True when anyone on the call is outside the owner's account (when in doubt: True)."""
        return any(self.is_external_speaker(s) for s in self.speakers)


def _first_set(preferred: _T | None, fallback: _T | None) -> _T | None:
    return preferred if preferred is not None else fallback


def _required_id(body: Mapping[str, Any], field: str) -> str:
    if field not in body or body[field] is None:
        hint = " (pass the notification's 'body', not the envelope)" if "body" in body else ""
        raise InsightsFormatError(f"RingSense insights: '{field}' is missing{hint}")
    value = body[field]
    if not isinstance(value, str):
        raise InsightsFormatError(
            f"RingSense insights: '{field}' must be a string, got {type(value).__name__}"
        )
    if not value.strip():
        raise InsightsFormatError(f"RingSense insights: '{field}' is empty")
    return value


def _count(raw: object) -> int:
    return raw if isinstance(raw, int) and not isinstance(raw, bool) and raw > 0 else 0


def _canonical_insights(raw: Mapping[Any, Any]) -> dict[str, Any]:
    """Insight lists by canonical key; of two spellings of one key, the first with items wins."""
    insights: dict[str, Any] = {}
    for key, value in raw.items():
        canonical = _CANONICAL_KEY.get(key.lower()) if isinstance(key, str) else None
        if canonical is not None and not insights.get(canonical):
            insights[canonical] = value
    return insights


def _items(raw: object) -> Iterator[Mapping[str, Any]]:
    """The object items of an insight list; anything else in it is skipped."""
    if isinstance(raw, list):
        for item in raw:
            if isinstance(item, Mapping):
                yield item


def _item_values(raw: object) -> Iterator[object]:
    for item in _items(raw):
        yield item.get("value")


def _item_texts(raw: object) -> Iterator[str]:
    for value in _item_values(raw):
        text = payloads.text(value)
        if text is not None:
            yield text


def _timed_texts(
    raw: object, text_keys: tuple[str, ...] = ("value", "text")
) -> tuple[TimedText, ...]:
    timed: list[TimedText] = []
    for item in _items(raw):
        text = next(
            (t for t in (payloads.text(item.get(k)) for k in text_keys) if t is not None), None
        )
        if text is None:
            continue
        timed.append(
            TimedText(
                text=text,
                start=payloads.number(item.get("start")),
                end=payloads.number(item.get("end")),
                speaker_id=payloads.ident(item.get("speakerId")),
            )
        )
    return tuple(timed)


def _speakers(raw: object) -> tuple[Speaker, ...]:
    speakers: dict[str, Speaker] = {}
    for item in _items(raw):
        speaker_id = payloads.ident(item.get("speakerId"))
        if speaker_id is None or speaker_id in speakers:
            continue
        name = item.get("name")
        phone = item.get("phoneNumber")
        speakers[speaker_id] = Speaker(
            speaker_id=speaker_id,
            name=name if isinstance(name, str) else "",
            extension_id=payloads.ident(item.get("extensionId")),
            account_id=payloads.ident(item.get("accountId")),
            phone_number=phone if isinstance(phone, str) and phone.strip() else None,
        )
    return tuple(speakers.values())


def _merged_speakers(mine: tuple[Speaker, ...], theirs: tuple[Speaker, ...]) -> tuple[Speaker, ...]:
    merged = {s.speaker_id: s for s in mine}
    for new in theirs:
        old = merged.get(new.speaker_id)
        if old is None:
            merged[new.speaker_id] = new
            continue
        merged[new.speaker_id] = Speaker(
            speaker_id=new.speaker_id,
            name=new.name if new.name.strip() else old.name,
            extension_id=_first_set(new.extension_id, old.extension_id),
            account_id=_first_set(new.account_id, old.account_id),
            phone_number=_first_set(new.phone_number, old.phone_number),
        )
    return tuple(merged.values())


def _web_url(value: object) -> str | None:
    """`rsRecordUri` when it is a plain http(s) URL; anything else (javascript:...) is dropped."""
    if not isinstance(value, str):
        return None
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return value
