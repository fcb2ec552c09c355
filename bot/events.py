"""Typed views of what RingCentral sends: the notification envelope and its kinds.

The edge parses a body into a `Notification` before storing it, so a malformed body is
refused with a 400 at the door and everything behind the inbox can trust the shape.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Kinds a notification is dispatched by (the router's `@router.event(kind)`).
RINGSENSE_INSIGHTS = "ringsense.insights"
POST_ADDED = "post.added"
POST_CHANGED = "post.changed"
POST_REMOVED = "post.removed"
CHAT_JOINED = "chat.joined"
CHAT_LEFT = "chat.left"
CHAT_CHANGED = "chat.changed"
EXTENSION_CREATED = "extension.created"
EXTENSION_DELETED = "extension.deleted"
EXTENSION_UPDATED = "extension.updated"
SUBSCRIPTION_RENEWAL = "subscription.renewal"
AI_RESULT = "ai.result"
AI_RESULT_EVENT = "/ai/status/v1/jobs"
RINGCX_TRANSCRIPT = "ringcx.transcript"
RINGCX_TRANSCRIPT_EVENT = "/voice/api/cx/integration/v1/transcripts"
OTHER = "other"

_RINGSENSE_EVENT = re.compile(r"^/ai/ringsense/v1/public/accounts/[^/]+/domains/[^/]+/insights$")
_POSTS_EVENTS = ("/team-messaging/v1/posts", "/restapi/v1.0/glip/posts")
_CHATS_EVENTS = (
    "/team-messaging/v1/chats",
    "/team-messaging/v1/groups",
    "/restapi/v1.0/glip/groups",
)
_EXTENSION_EVENT = re.compile(r"^/restapi/v1\.0/account/[^/]+/extension/[^/?]+$")
_SUBSCRIPTION_EVENT = re.compile(r"^/restapi/v1\.0/subscription/")

_POST_KINDS = {"PostAdded": POST_ADDED, "PostChanged": POST_CHANGED, "PostRemoved": POST_REMOVED}
_CHAT_KINDS = {"GroupJoined": CHAT_JOINED, "GroupLeft": CHAT_LEFT}
_EXTENSION_KINDS = {
    "Create": EXTENSION_CREATED,
    "Delete": EXTENSION_DELETED,
    "Update": EXTENSION_UPDATED,
}


class MalformedNotification(ValueError):
    """The body is not a RingCentral notification; the message says what is wrong."""


@dataclass(frozen=True)
class Notification:
    uuid: str
    event: str
    timestamp: str | None
    subscription_id: str | None
    owner_id: str | None
    body: Mapping[str, Any]
    kind: str

    @classmethod
    def parse(cls, payload: Any) -> Notification:
        if not isinstance(payload, Mapping):
            raise MalformedNotification("the body must be a JSON object")
        uuid = payload.get("uuid")
        event = payload.get("event")
        body = payload.get("body")
        if not isinstance(uuid, str) or not uuid or len(uuid) > 200:
            raise MalformedNotification("uuid must be a non-empty string")
        if not isinstance(event, str) or not event:
            raise MalformedNotification("event must be a non-empty string")
        if not isinstance(body, Mapping):
            raise MalformedNotification("body must be an object")
        _expect(payload, "timestamp", (str, int, float), "the envelope")
        _expect(payload, "subscriptionId", _ID_TYPES, "the envelope")
        _expect(payload, "ownerId", _ID_TYPES, "the envelope")
        _expect(body, "eventType", (str,), "body")
        kind = classify(event, body)
        for name, types in _BODY_FIELD_TYPES.get(_family(kind), ()):
            _expect(body, name, types, "body")
        return cls(
            uuid=uuid,
            event=event,
            timestamp=_optional_str(payload.get("timestamp")),
            subscription_id=_optional_str(payload.get("subscriptionId")),
            owner_id=_optional_str(payload.get("ownerId")),
            body=body,
            kind=kind,
        )

    @classmethod
    def made_here(
        cls, uuid: str, event: str, body: Mapping[str, Any], owner_id: str | None = None
    ) -> Notification:
        """Work the bot finds itself (catch-up, AI results, RingCX transcripts), shaped like
        a notification so it travels through the inbox with the same guarantees."""
        return cls(uuid, event, None, None, owner_id, body, classify(event, body))

    def to_payload(self) -> dict[str, Any]:
        """The envelope as RingCentral sent it (what the inbox stores)."""
        return {
            "uuid": self.uuid,
            "event": self.event,
            "timestamp": self.timestamp,
            "subscriptionId": self.subscription_id,
            "ownerId": self.owner_id,
            "body": dict(self.body),
        }


def classify(event: str, body: Mapping[str, Any]) -> str:
    """The dispatch kind of a notification, from its event path and `eventType`."""
    path = event.split("?", 1)[0]
    event_type = body.get("eventType")
    if _RINGSENSE_EVENT.match(path):
        return RINGSENSE_INSIGHTS
    if path == AI_RESULT_EVENT:
        return AI_RESULT
    if path == RINGCX_TRANSCRIPT_EVENT:
        return RINGCX_TRANSCRIPT
    if path in _POSTS_EVENTS:
        return _POST_KINDS.get(str(event_type), OTHER)
    if path in _CHATS_EVENTS:
        return _CHAT_KINDS.get(str(event_type), CHAT_CHANGED)
    if _SUBSCRIPTION_EVENT.match(event):
        return SUBSCRIPTION_RENEWAL
    if _EXTENSION_EVENT.match(path):
        return _EXTENSION_KINDS.get(str(event_type), OTHER)
    return OTHER


# What the fields the handlers read must be, per family of notification, when present
# (API-FACTS D.2: ids are strings; numbers are tolerated in case RingCentral sends them).
# Anything else is refused at the door with a 400 instead of surprising a handler later.
_ID_TYPES: tuple[type, ...] = (str, int)
_BODY_FIELD_TYPES: Mapping[str, tuple[tuple[str, tuple[type, ...]], ...]] = {
    "post": (
        ("id", _ID_TYPES),
        ("groupId", _ID_TYPES),
        ("creatorId", _ID_TYPES),
        ("type", (str,)),
        ("text", (str,)),
        ("mentions", (list,)),
    ),
    "chat": (("id", _ID_TYPES), ("name", (str,)), ("type", (str,)), ("members", (list,))),
    "extension": (("extensionId", _ID_TYPES),),
}


def _family(kind: str) -> str:
    if kind in (POST_ADDED, POST_CHANGED, POST_REMOVED):
        return "post"
    if kind in (CHAT_JOINED, CHAT_LEFT, CHAT_CHANGED):
        return "chat"
    if kind in (EXTENSION_CREATED, EXTENSION_DELETED, EXTENSION_UPDATED):
        return "extension"
    return kind


def _expect(container: Mapping[str, Any], name: str, types: tuple[type, ...], where: str) -> None:
    """Refuse a field of the wrong JSON type (null counts as absent; a bool is no number)."""
    value = container.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, types):
        raise MalformedNotification(f"{name} in {where} has the wrong type")


def _optional_str(value: Any) -> str | None:
    if value is None:
        return None
    return str(value)


# -- team messaging posts -------------------------------------------------------------

_MENTION = re.compile(r"!\[:(?:Person|Team)\]\(([^)\s]+)\)")


@dataclass(frozen=True)
class ChatMessage:
    """A PostAdded body, reduced to what command handling needs."""

    post_id: str
    chat_id: str
    creator_id: str
    text: str
    mentioned_ids: frozenset[str]

    @classmethod
    def from_post(cls, body: Mapping[str, Any]) -> ChatMessage | None:
        """None for posts that carry no text to act on (joins, cards, files)."""
        if body.get("type", "TextMessage") != "TextMessage":
            return None
        text = body.get("text")
        chat_id = body.get("groupId")
        creator = body.get("creatorId")
        post_id = body.get("id")
        if not isinstance(text, str) or chat_id is None or creator is None or post_id is None:
            return None
        mentions = body.get("mentions") or []
        mentioned = frozenset(
            str(m["id"])
            for m in mentions
            if isinstance(m, Mapping) and m.get("type") == "Person" and m.get("id") is not None
        )
        return cls(str(post_id), str(chat_id), str(creator), text, mentioned)

    def text_without_mention_of(self, extension_id: str) -> str:
        """The message with `![:Person](botId)` removed, whitespace collapsed."""
        stripped = _MENTION.sub(
            lambda m: "" if m.group(1) == extension_id else m.group(0), self.text
        )
        return " ".join(stripped.split())


# -- card button presses ----------------------------------------------------------------


@dataclass(frozen=True)
class CardSubmission:
    """A `button_submit` from the Interactive Messages webhook (an Action.Submit press)."""

    uuid: str
    action: str
    data: Mapping[str, str]
    user_id: str
    user_account_id: str | None
    user_name: str
    chat_id: str | None
    chat_type: str | None
    card_id: str | None
    bot_id: str | None

    @classmethod
    def parse(cls, payload: Any) -> CardSubmission:
        if not isinstance(payload, Mapping):
            raise MalformedNotification("the body must be a JSON object")
        if payload.get("type") != "button_submit":
            raise MalformedNotification("type must be button_submit")
        uuid = payload.get("uuid")
        if not isinstance(uuid, str) or not uuid or len(uuid) > 200:
            raise MalformedNotification("uuid must be a non-empty string")
        user = payload.get("user")
        if not isinstance(user, Mapping) or (user.get("id") is None and user.get("extId") is None):
            raise MalformedNotification("user.id is missing")
        raw_data = payload.get("data")
        if not isinstance(raw_data, Mapping):
            raise MalformedNotification("data must be an object")
        data = {str(k): v if isinstance(v, str) else _flat(v) for k, v in raw_data.items()}
        # A press on a card that is not ours (no action id) is well formed; it is simply
        # not for any handler.
        action = data.get("action", "")
        conversation = payload.get("conversation")
        conversation = conversation if isinstance(conversation, Mapping) else {}
        card = payload.get("card")
        bot = payload.get("bot")
        name = " ".join(str(part) for part in (user.get("firstName"), user.get("lastName")) if part)
        return cls(
            uuid=uuid,
            action=action,
            data=data,
            user_id=str(user.get("extId") or user.get("id")),
            user_account_id=_optional_str(user.get("accountId")),
            user_name=name,
            chat_id=_optional_str(conversation.get("id")),
            chat_type=_optional_str(conversation.get("type")),
            card_id=_optional_str(card.get("id")) if isinstance(card, Mapping) else None,
            bot_id=_optional_str(bot.get("id")) if isinstance(bot, Mapping) else None,
        )


def _flat(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
