"""Platform behaviour shared by the REST API and the control API: posting, creating
chats, simulating a RingSense-analysed call. Each returns the state it created and
the `PlatformEvent`s it causes; the caller decides whether to wait for delivery."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from sandbox import insights as insight_builder
from sandbox.delivery import PlatformEvent
from sandbox.render import chat_event_body, post_event_body
from sandbox.world import (
    JSON,
    CallLogEntry,
    Chat,
    ChatType,
    Extension,
    Post,
    World,
    iso,
    parse_iso,
)

MENTION = re.compile(r"!\[:(Person|Team)\]\(([^)\s]+)\)")


def mentions_in(world: World, text: str) -> list[JSON] | None:
    """`![:Person](id)` / `![:Team](id)` in a post's text, as the platform lists them."""
    found: list[JSON] = []
    for kind, target in MENTION.findall(text):
        if kind == "Person":
            person = world.extensions.get(target)
            name = person.name if person else target
        else:
            chat = world.chats.get(target)
            name = (chat.name if chat else None) or target
        entry = {"id": target, "type": kind, "name": name}
        if entry not in found:
            found.append(entry)
    return found or None


def post_text(world: World, chat: Chat, creator_id: str, text: str) -> tuple[Post, PlatformEvent]:
    post = world.add_post(chat, creator_id, text=text, mentions=mentions_in(world, text))
    event = PlatformEvent(
        kind="post",
        body=post_event_body(post, "PostAdded"),
        audience=frozenset(chat.members),
    )
    return post, event


def joined_events(chat: Chat, joining: list[str]) -> list[PlatformEvent]:
    """GroupJoined goes only to the member who joined (API-FACTS D.2)."""
    return [
        PlatformEvent(
            kind="chat",
            body=chat_event_body(chat, "GroupJoined"),
            audience=frozenset({member}),
        )
        for member in joining
    ]


def persons_added_event(world: World, chat: Chat, added: list[str], by: str) -> PlatformEvent:
    """A `PersonsAdded` post in the chat, seen by every member (API-FACTS D.2 lists the
    post type; its exact body is UNCONFIRMED: no text, `addedPersonIds`)."""
    post = world.add_post(chat, by, text=None, type_="PersonsAdded", added_person_ids=added)
    return PlatformEvent(
        kind="post",
        body=post_event_body(post, "PostAdded"),
        audience=frozenset(chat.members),
    )


def card_posted_event(chat: Chat, post: Post) -> PlatformEvent:
    """The PostAdded every member gets for a card post, its author (the bot) included."""
    return PlatformEvent(
        kind="post",
        body=post_event_body(post, "PostAdded"),
        audience=frozenset(chat.members),
    )


def left_events(chat: Chat, leaving: list[str]) -> list[PlatformEvent]:
    """GroupLeft goes only to the member who left, with the members who remain."""
    return [
        PlatformEvent(
            kind="chat",
            body=chat_event_body(chat, "GroupLeft"),
            audience=frozenset({member}),
        )
        for member in leaving
    ]


def create_chat(
    world: World, type_: ChatType, members: list[str], *, name: str | None = None
) -> tuple[Chat, list[PlatformEvent]]:
    chat = world.add_chat(type_, members, name=name, public=False if type_ == "Team" else None)
    return chat, joined_events(chat, chat.members)


@dataclass(frozen=True)
class ExternalParty:
    name: str
    phone_number: str


Participant = Extension | ExternalParty


@dataclass(frozen=True)
class SimulatedCall:
    record: JSON
    call_log: CallLogEntry | None


def _party(participant: Participant) -> JSON:
    if isinstance(participant, Extension):
        return {
            "phoneNumber": participant.phone_number,
            "extensionNumber": participant.extension_number,
            "extensionId": participant.id,
            "name": participant.name,
        }
    return {"phoneNumber": participant.phone_number, "name": participant.name}


def _speaker(world: World, participant: Participant) -> insight_builder.Speaker:
    if isinstance(participant, Extension):
        return insight_builder.Speaker(
            participant.name, participant.id, participant.account_id, None
        )
    return insight_builder.Speaker(participant.name, None, None, participant.phone_number)


def simulate_call(
    world: World,
    owner: Extension,
    participants: list[Participant],
    *,
    direction: Literal["Inbound", "Outbound"],
    duration_sec: int,
    insight_overrides: dict[str, Any] | None = None,
    source_session_id: str | None = None,
    domain: str = "pbx",
) -> SimulatedCall:
    """A finished, recorded, analysed call: call-log entry plus RingSense record."""
    now = world.now()
    session_id = source_session_id or world.new_telephony_session_id()
    recording_id = world.random_digits(13)
    start = now - duration_sec - 120
    record = insight_builder.build_recording_insights(
        world.random,
        owner=_speaker(world, owner),
        participants=[_speaker(world, p) for p in participants],
        direction=direction,
        duration_sec=duration_sec,
        source_session_id=session_id,
        source_record_id=recording_id,
        recording_start_time=iso(start),
        creation_time=iso(now),
        domain=domain,
    )
    for key, value in (insight_overrides or {}).items():
        if value is None:
            record["insights"].pop(key, None)
        else:
            record["insights"][key] = value
    world.store_ringsense_record(record, owner.account_id)
    counterpart = (
        _party(participants[0])
        if participants
        else {"phoneNumber": "+14155550100", "name": "Unknown"}
    )
    own = _party(owner)
    entry = _log_call(
        world,
        owner=(owner.id, owner.account_id),
        others=[(p.id, p.account_id) for p in participants if isinstance(p, Extension)],
        session_id=session_id,
        start=start,
        duration_ms=duration_sec * 1000,
        direction=direction,
        from_party=own if direction == "Outbound" else counterpart,
        to_party=counterpart if direction == "Outbound" else own,
        recording_id=recording_id,
    )
    return SimulatedCall(record, entry)


def _log_call(
    world: World,
    *,
    owner: tuple[str, str],
    others: list[tuple[str, str]],
    session_id: str,
    start: float,
    duration_ms: int,
    direction: Literal["Inbound", "Outbound"],
    from_party: JSON,
    to_party: JSON,
    recording_id: str,
) -> CallLogEntry:
    """One call-log record per extension on the call: the owner's (returned) and one for
    each other extension, which saw the call in the opposite direction. `from`/`to` name
    the caller and the callee, so they are the same on every record."""
    opposite: Literal["Inbound", "Outbound"] = "Inbound" if direction == "Outbound" else "Outbound"
    party_prefix = f"p-{session_id.removeprefix('s-')}"
    legs = world.legs_in_session(session_id)
    entries = []
    seen: set[str] = set()
    for index, (extension_id, account_id) in enumerate([owner, *others]):
        if extension_id in seen:
            continue
        seen.add(extension_id)
        entry = CallLogEntry(
            id=world.new_call_log_id(),
            owner_id=extension_id,
            account_id=account_id,
            session_id=world.random_digits(11),
            telephony_session_id=session_id,
            party_id=f"{party_prefix}-{legs + index + 1}",
            start_time=start,
            duration_ms=duration_ms,
            direction=direction if index == 0 else opposite,
            from_party=dict(from_party),
            to_party=dict(to_party),
            recording_id=recording_id,
            recording_type="Automatic",
            last_modified_time=world.now(),
        )
        world.log_call_leg(entry)
        entries.append(entry)
    return entries[0]


def record_event_call(world: World, record: JSON) -> CallLogEntry | None:
    """The call-log entry behind a given (pbx) RingSense event body."""
    if record.get("domain", "pbx") != "pbx":
        return None
    owner_id = str(record.get("ownerExtensionId"))
    parties: list[tuple[str | None, JSON]] = []
    for speaker in record.get("speakerInfo") or []:
        if not isinstance(speaker, dict):
            continue
        party: JSON = {"name": speaker.get("name") or "Unknown"}
        if speaker.get("phoneNumber"):
            party["phoneNumber"] = speaker["phoneNumber"]
        extension_id = speaker.get("extensionId")
        if extension_id:
            party["extensionId"] = str(extension_id)
        parties.append((str(extension_id) if extension_id else None, party))
    owner = world.extensions.get(owner_id)
    owner_party = next(
        (party for ext_id, party in parties if ext_id == owner_id), {"extensionId": owner_id}
    )
    if owner is not None:
        owner_party = _party(owner)
    other_party = next(
        (party for ext_id, party in parties if ext_id != owner_id), {"name": "Unknown"}
    )
    direction: Literal["Inbound", "Outbound"] = (
        "Inbound" if record.get("callDirection") == "Inbound" else "Outbound"
    )
    duration_ms = int(record.get("recordingDurationMs") or 0)
    try:
        start = parse_iso(str(record.get("recordingStartTime")))
    except ValueError:
        start = world.now() - duration_ms / 1000
    others = [
        (ext_id, world.extensions[ext_id].account_id)
        for ext_id, _ in parties
        if ext_id is not None and ext_id != owner_id and ext_id in world.extensions
    ]
    return _log_call(
        world,
        owner=(owner_id, owner.account_id if owner else world.account_id),
        others=others,
        session_id=str(record.get("sourceSessionId")),
        start=start,
        duration_ms=duration_ms,
        direction=direction,
        from_party=owner_party if direction == "Outbound" else other_party,
        to_party=other_party if direction == "Outbound" else owner_party,
        recording_id=str(record.get("sourceRecordId")),
    )


AI_NOTES_INSIGHTS = ("CallNotes", "Summary")
"""What the AI Notes event of a RingEX call carries (UNCONFIRMED beyond its existence)."""


def ai_notes_events(
    world: World, record: JSON, keys: list[str] | tuple[str, ...], account_id: str
) -> list[PlatformEvent]:
    """A RingEX call with AI Notes brings two events: AI Notes first (`eventType` Create,
    call notes and a summary), RingSense later (`eventType` Update, the other insights);
    both with the record's `rsRecordUri`. `Update` is UNCONFIRMED (API-FACTS C.2 knows only
    Create). The stored record gets the link too, so REST reads agree with the events."""
    call_uuid = uuid.UUID(int=world.random.getrandbits(128), version=4)
    record["rsRecordUri"] = f"https://ringsense.ringcentral.com/calls/{call_uuid}"
    first = {**insight_builder.only_insights(record, AI_NOTES_INSIGHTS), "eventType": "Create"}
    later = {**insight_builder.only_insights(record, keys), "eventType": "Update"}
    return [
        PlatformEvent(
            kind="ringsense",
            body=body,
            domain=str(record.get("domain", "pbx")),
            account_id=account_id,
        )
        for body in (first, later)
    ]


def ringsense_event(
    record: JSON, keys: list[str] | tuple[str, ...] | None, account_id: str
) -> PlatformEvent:
    """A RingSense notification; only subscribers of `account_id` hear of it."""
    body = record if keys is None else insight_builder.only_insights(record, keys)
    return PlatformEvent(
        kind="ringsense",
        body=body,
        domain=str(record.get("domain", "pbx")),
        account_id=account_id,
    )
