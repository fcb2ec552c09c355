from __future__ import annotations

import pytest

from bot import events
from bot.events import ChatMessage, MalformedNotification, Notification
from tests.conftest import load_fixture


@pytest.mark.parametrize(
    ("fixture", "kind"),
    [
        ("ringsense-event-pbx.json", events.RINGSENSE_INSIGHTS),
        ("webhook-post-added.json", events.POST_ADDED),
        ("webhook-post-changed.json", events.POST_CHANGED),
        ("webhook-post-removed.json", events.POST_REMOVED),
        ("webhook-chat-group-joined.json", events.CHAT_JOINED),
        ("webhook-chat-group-left.json", events.CHAT_LEFT),
        ("webhook-chat-group-renamed.json", events.CHAT_CHANGED),
        ("webhook-extension-info-update.json", events.EXTENSION_UPDATED),
    ],
)
def test_real_notifications_are_classified(fixture: str, kind: str) -> None:
    notification = Notification.parse(load_fixture(fixture))
    assert notification.kind == kind
    assert Notification.parse(notification.to_payload()) == notification


@pytest.mark.parametrize(
    "payload",
    [
        [],
        "text",
        {"uuid": "", "event": "/x", "body": {}},
        {"uuid": "1", "body": {}},
        {"uuid": "1", "event": "/x", "body": []},
        {"uuid": 5, "event": "/x", "body": {}},
    ],
)
def test_malformed_envelopes_are_refused(payload: object) -> None:
    with pytest.raises(MalformedNotification):
        Notification.parse(payload)


def test_extension_delete_and_renewal_reminder() -> None:
    delete = Notification.parse(
        {
            "uuid": "1",
            "event": "/restapi/v1.0/account/1/extension/2",
            "body": {"extensionId": "2", "eventType": "Delete"},
        }
    )
    assert delete.kind == events.EXTENSION_DELETED
    reminder = Notification.parse(
        {"uuid": "2", "event": "/restapi/v1.0/subscription/~?threshold=60&interval=15", "body": {}}
    )
    assert reminder.kind == events.SUBSCRIPTION_RENEWAL


def test_a_mention_of_the_bot_is_stripped_and_others_kept() -> None:
    body = dict(load_fixture("webhook-post-added.json")["body"])
    body.update(
        text="![:Person](900) insights ![:Person](42)  now",
        mentions=[
            {"id": "900", "type": "Person", "name": "Bot"},
            {"id": "42", "type": "Person", "name": "Kim"},
        ],
    )
    message = ChatMessage.from_post(body)
    assert message is not None
    assert message.mentioned_ids == {"900", "42"}
    assert message.text_without_mention_of("900") == "insights ![:Person](42) now"


def test_non_text_posts_are_not_messages() -> None:
    body = dict(load_fixture("webhook-post-added.json")["body"])
    body["type"] = "PersonJoined"
    assert ChatMessage.from_post(body) is None
