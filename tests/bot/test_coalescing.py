"""Which stored notifications one read of a call may serve (issue 12): only RingSense
notifications of the same call through the same event path, subscription and owner, both
from RingCentral or both found by catch-up, and never one that could stop before reading
the call back (the end-to-end proof is in tests/handlers/test_digests.py)."""

from __future__ import annotations

import copy
from typing import Any

from bot.workers import coalescing_key
from tests.conftest import load_fixture


def _event(**body_changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = copy.deepcopy(load_fixture("ringsense-event-pbx.json"))
    event["body"].update(body_changes)
    return event


def test_updates_of_one_call_are_the_same_work() -> None:
    first, later = _event(), _event(lastModifiedTime="2024-09-04T21:20:00.000Z")
    later["uuid"] = "later-" + first["uuid"]
    later["body"]["insights"] = {"Summary": [{"start": 0, "end": 1, "value": "Updated."}]}
    assert coalescing_key(first) is not None
    assert coalescing_key(first) == coalescing_key(later)


def test_another_call_account_subscription_owner_or_origin_is_other_work() -> None:
    key = coalescing_key(_event())
    other_call = _event(sourceRecordId="999999")
    other_account = _event()
    other_account["event"] = other_account["event"].replace("/accounts/", "/accounts/7")
    other_subscription = _event()
    other_subscription["subscriptionId"] = "another-subscription"
    other_owner = _event()
    other_owner["ownerId"] = "424242"
    caught_up = _event()
    caught_up["uuid"] = "catch-up:pbx:" + caught_up["body"]["sourceRecordId"]
    for other in (other_call, other_account, other_subscription, other_owner, caught_up):
        assert coalescing_key(other) not in (None, key)


def test_a_notification_that_could_stop_before_reading_the_call_serves_nothing() -> None:
    no_owner = _event()
    del no_owner["body"]["ownerExtensionId"]
    not_an_object = _event(insights=["not", "an", "object"])
    no_uuid = _event()
    del no_uuid["uuid"]
    chat_message = {
        "uuid": "m-1",
        "event": "/team-messaging/v1/posts",
        "timestamp": "2024-09-04T21:20:00.000Z",
        "subscriptionId": "s-1",
        "ownerId": "1",
        "body": {"eventType": "PostAdded", "groupId": "g-1", "text": "hi"},
    }
    for payload in (no_owner, not_an_object, no_uuid, chat_message):
        assert coalescing_key(payload) is None
