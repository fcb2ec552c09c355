"""Who spoke: the names the bot may put on a speaker, and only names it knows for sure.

The AI API knows voices only as diarization numbers ("0", "1") unless it is told which
enrolled speakers to listen for (`speakerIds`, DOCS `docs/ai/speaker-enrollment.md`,
`docs/ai/interaction-analytics.md`): RingCentral recommends enrolling each user under their
extension id and passing the extension ids of a recording's call-log parties; a voice it
recognises then comes back under that id. So a speaker is named only when:

* the AI API reported them under an extension id the bot itself asked it to listen for,
  named from the call-log party of that extension, else from the extension directory; or
* RingSense's `speakerInfo` names them, or places them in the call's account with an
  extension the directory names (`named_from_directory`).

Nothing is inferred from order of appearance, talk time or who is "probably" the caller: a
wrong name on someone's words is worse than none. The lookups (extension, enrollment) are
cached, because enrollment checks are in the Heavy group (10 a minute) and names rarely
change.

UNCONFIRMED (nothing documents it): the error of an unknown enrollment id (taken as any
4xx), and whether the AI API answers an enrolled id it did not recognise in the audio as a
number (assumed: it does, so an unrecognised voice is never named).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final, Protocol, TypeVar

from bot.rc import RingCentralError
from bot.ringsense import CallInsights

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How long a name or an enrollment answer is trusted.
DIRECTORY_TTL_S: Final = 600.0
#: How long a failed lookup (rate limit, outage) is remembered, so a burst doesn't retry it.
FAILED_LOOKUP_TTL_S: Final = 60.0
#: At most this many extensions of one recording are checked for enrollment: each check is
#: a Heavy request, and a phone call has two or three parties.
MAX_VOICES_TO_RECOGNISE: Final = 6


class DirectoryApi(Protocol):
    """What the directory needs of a RingCentral client."""

    async def extension(self, extension_id: str) -> Mapping[str, object]: ...

    async def ai_enrollment(self, enrollment_id: str) -> Mapping[str, object]: ...


@dataclass
class SpeakerDirectory:
    """Cached answers to "what is extension X called" and "is X's voice enrolled", per
    account (the same id asked through another account's identity is another question).
    Questions asked while the same one is on its way wait for its answer instead of asking
    again: the workers handle several digests or transcripts of one person at once (on
    PostgreSQL each call is a line of its own), and each request counts against limits
    that all of the bot's work shares."""

    clock: Callable[[], float] = time.monotonic
    _names: dict[tuple[str, str], tuple[float, str | None]] = field(default_factory=dict)
    _enrolled: dict[tuple[str, str], tuple[float, bool]] = field(default_factory=dict)
    _asking: dict[tuple[str, str, str], asyncio.Future[Any]] = field(default_factory=dict)

    async def extension_name(
        self, api: DirectoryApi, account_id: str, extension_id: str
    ) -> str | None:
        """The extension's name in the directory of `account_id` (read through `api`, that
        account's identity), or None when it has none or cannot be read."""
        key = (account_id, extension_id)
        cached = self._names.get(key)
        if cached is not None and self.clock() < cached[0]:
            return cached[1]
        name: str | None = await self._once(
            ("name", account_id, extension_id), self._read_name(api, key)
        )
        return name

    async def _read_name(self, api: DirectoryApi, key: tuple[str, str]) -> str | None:
        extension_id = key[1]
        try:
            extension = await api.extension(extension_id)
        except RingCentralError as err:
            log.info("extension %s not named: %s", extension_id, err)
            self._names[key] = (self.clock() + FAILED_LOOKUP_TTL_S, None)
            return None
        raw = extension.get("name")
        same = str(extension.get("id", extension_id)) == extension_id
        name = raw.strip() if isinstance(raw, str) and raw.strip() and same else None
        self._names[key] = (self.clock() + DIRECTORY_TTL_S, name)
        return name

    async def is_enrolled(self, api: DirectoryApi, account_id: str, speaker_id: str) -> bool:
        """True only when RingCentral confirms a complete voice enrollment under this id:
        `speakerIds` must name existing enrollments, or the analysis fails."""
        key = (account_id, speaker_id)
        cached = self._enrolled.get(key)
        if cached is not None and self.clock() < cached[0]:
            return cached[1]
        enrolled: bool = await self._once(
            ("enrolled", account_id, speaker_id), self._read_enrollment(api, key)
        )
        return enrolled

    async def _read_enrollment(self, api: DirectoryApi, key: tuple[str, str]) -> bool:
        try:
            enrollment = await api.ai_enrollment(key[1])
        except RingCentralError as err:
            # Unknown (404), no AI permission, rate limited: not enrolled, as far as we know.
            ttl = DIRECTORY_TTL_S if err.status in (403, 404) else FAILED_LOOKUP_TTL_S
            self._enrolled[key] = (self.clock() + ttl, False)
            return False
        complete = enrollment.get("enrollmentComplete") is True
        self._enrolled[key] = (self.clock() + DIRECTORY_TTL_S, complete)
        return complete

    async def _once(self, question: tuple[str, str, str], asking: Coroutine[Any, Any, T]) -> T:
        """The answer of `asking`, or of the same question already on its way (then
        `asking` is dropped unsent). A caller that gives up does not cancel the question
        for the others waiting on it."""
        running = self._asking.get(question)
        if running is None:
            running = asyncio.ensure_future(asking)
            self._asking[question] = running
            running.add_done_callback(lambda _done: self._asking.pop(question, None))
        else:
            asking.close()
        answer: T = await asyncio.shield(running)
        return answer

    def forget_enrollments(self, account_id: str) -> None:
        """RingCentral refused ids we thought enrolled: ask again next time."""
        for key in [k for k in self._enrolled if k[0] == account_id]:
            del self._enrolled[key]


def party_names(records: list[Mapping[str, object]]) -> dict[str, str]:
    """Extension id -> name of every call-log party (`from`/`to`) that has both."""
    names: dict[str, str] = {}
    for record in records:
        for side in ("from", "to"):
            party = record.get(side)
            if not isinstance(party, Mapping):
                continue
            extension_id, name = party.get("extensionId"), party.get("name")
            if extension_id is not None and isinstance(name, str) and name.strip():
                names.setdefault(str(extension_id), name.strip())
    return names


async def voices_to_recognise(
    directory: SpeakerDirectory,
    api: DirectoryApi,
    account_id: str,
    extension_ids: set[str],
    known_names: Mapping[str, str],
) -> dict[str, str]:
    """The extensions of a recording worth passing as `speakerIds`, with the name to show
    for each: enrolled (complete) and with a name (the call log's, else the directory's).
    An extension without a name is left out: recognising a voice we cannot name helps
    nobody, and costs the analysis if the enrollment has just gone."""
    chosen: dict[str, str] = {}
    for extension_id in sorted(extension_ids)[:MAX_VOICES_TO_RECOGNISE]:
        if not await directory.is_enrolled(api, account_id, extension_id):
            continue
        name = known_names.get(extension_id) or await directory.extension_name(
            api, account_id, extension_id
        )
        if name:
            chosen[extension_id] = name
    return chosen


async def named_from_directory(
    directory: SpeakerDirectory, api: DirectoryApi | None, call: CallInsights
) -> CallInsights:
    """The call with a name for each speaker RingSense left unnamed but placed in the call's
    own account with an extension (`speakerInfo[].accountId` equal to the call's account):
    the name of that extension in the account's directory, read through `api`, the account's
    own identity. A speaker whose account RingSense does not confirm keeps no name: the same
    extension id in our directory would prove nothing about whose voice it was."""
    if api is None or call.account_id is None:
        return call
    speakers = []
    for speaker in call.speakers:
        if (
            not speaker.name.strip()
            and speaker.extension_id is not None
            and speaker.account_id == call.account_id
        ):
            name = await directory.extension_name(api, call.account_id, speaker.extension_id)
            if name:
                speaker = replace(speaker, name=name)
        speakers.append(speaker)
    return replace(call, speakers=tuple(speakers))


__all__ = [
    "DIRECTORY_TTL_S",
    "MAX_VOICES_TO_RECOGNISE",
    "DirectoryApi",
    "SpeakerDirectory",
    "named_from_directory",
    "party_names",
    "voices_to_recognise",
]
