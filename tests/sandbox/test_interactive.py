"""Card button presses: the signed Interactive Messages webhook, who may press, and the
dialogs a bot answers with. Also chat membership changes and their events."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from sandbox import defaults
from tests.conftest import load_fixture
from tests.sandbox.conftest import BOT_AUTH, Receiver, SandboxClient, subscribe
from tests.sandbox.fake_app import FakeApp

CARD = {
    "type": "AdaptiveCard",
    "version": "1.3",
    "body": [
        {"type": "TextBlock", "text": "Digest settings"},
        {"type": "Input.Text", "id": "note"},
        {"type": "Input.Toggle", "id": "notify", "title": "Notify me"},
    ],
    "actions": [{"type": "Action.Submit", "title": "Save", "data": {"action": "settings.save"}}],
}


async def _user(client: SandboxClient, name: str) -> str:
    response = await client.post("/_sandbox/users", json={"name": name})
    return str((await response.json())["extensionId"])


async def _chat(client: SandboxClient, type_: str, members: list[str], **extra: Any) -> str:
    response = await client.post(
        "/_sandbox/chats", json={"type": type_, "members": members, **extra}
    )
    body = await response.json()
    assert response.status == 201, body
    return str(body["id"])


async def _card_in_group(client: SandboxClient, alice: str) -> tuple[str, str]:
    chat_id = await _chat(client, "Group", [alice, defaults.BOT_EXTENSION_ID])
    response = await client.post(
        f"/team-messaging/v1/chats/{chat_id}/adaptive-cards", json=CARD, headers=BOT_AUTH
    )
    body = await response.json()
    assert response.status == 201, body
    return chat_id, str(body["id"])


async def _submit(client: SandboxClient, card_id: str, **body: Any) -> tuple[int, Any]:
    response = await client.post(f"/_sandbox/cards/{card_id}/submit", json=body)
    return response.status, await response.json()


async def test_submit_posts_a_signed_compact_button_submit(
    client: SandboxClient, fake_app: FakeApp
) -> None:
    await client.post(
        "/_sandbox/settings", json={"interactiveMessagesUrl": fake_app.interactive_url}
    )
    alice = await _user(client, "Alice Able")
    chat_id, card_id = await _card_in_group(client, alice)
    status, answer = await _submit(
        client,
        card_id,
        userId=alice,
        data={"action": "settings.save", "note": "weekly", "notify": True, "count": 3},
    )
    assert status == 200
    assert answer == {"status": 200, "body": None}

    [submit] = fake_app.submits
    assert submit.signature_ok
    header = submit.headers["X-Glip-Signature"]
    assert header == hmac.new(defaults.SHARED_SECRET.encode(), submit.raw, hashlib.sha1).hexdigest()
    assert submit.headers["Content-Type"] == "application/json"
    payload = json.loads(submit.raw)
    assert submit.raw == json.dumps(payload, separators=(",", ":")).encode()
    posts = await (await client.get(f"/_sandbox/chats/{chat_id}/posts")).json()
    [card_post] = [post for post in posts if post.get("cardId") == card_id]
    assert payload["type"] == "button_submit"
    assert payload["appId"] == defaults.CLIENT_ID
    assert payload["uuid"]
    assert payload["timestamp"].endswith("Z")
    assert payload["user"] == {
        "id": alice,
        "firstName": "Alice",
        "lastName": "Able",
        "accountId": defaults.ACCOUNT_ID,
        "extId": alice,
    }
    assert payload["conversation"] == {
        "id": chat_id,
        "type": "Group",
        "public": False,
        "name": None,
    }
    assert payload["post"] == {
        "id": card_post["id"],
        "creationTime": card_post["creationTime"],
        "lastModifiedTime": card_post["lastModifiedTime"],
    }
    assert payload["card"] == {"id": card_id}
    assert payload["bot"] == {"id": defaults.BOT_EXTENSION_ID}
    assert payload["data"] == {
        "action": "settings.save",
        "note": "weekly",
        "notify": "true",
        "count": "3",
    }


async def test_signature_prefix_setting_adds_sha1(client: SandboxClient, fake_app: FakeApp) -> None:
    await client.post(
        "/_sandbox/settings",
        json={"interactiveMessagesUrl": fake_app.interactive_url, "signaturePrefix": True},
    )
    alice = await _user(client, "Alice Able")
    _, card_id = await _card_in_group(client, alice)
    await _submit(client, card_id, userId=alice, data={"action": "x"})
    [submit] = fake_app.submits
    assert submit.headers["X-Glip-Signature"].startswith("sha1=")
    assert submit.signature_ok


async def test_only_members_of_the_cards_chat_may_press(
    client: SandboxClient, fake_app: FakeApp
) -> None:
    await client.post(
        "/_sandbox/settings", json={"interactiveMessagesUrl": fake_app.interactive_url}
    )
    alice = await _user(client, "Alice Able")
    mallory = await _user(client, "Mallory Mole")
    _, card_id = await _card_in_group(client, alice)
    status, answer = await _submit(client, card_id, userId=mallory, data={})
    assert status == 403
    assert mallory in answer["error"]
    assert fake_app.submits == []


async def test_submit_without_an_interactive_messages_url_is_409(client: SandboxClient) -> None:
    alice = await _user(client, "Alice Able")
    _, card_id = await _card_in_group(client, alice)
    status, answer = await _submit(client, card_id, userId=alice, data={})
    assert status == 409
    assert "interactiveMessagesUrl" in answer["error"]


async def test_a_dialog_answer_is_shown_to_that_user(
    client: SandboxClient, fake_app: FakeApp
) -> None:
    await client.post(
        "/_sandbox/settings", json={"interactiveMessagesUrl": fake_app.interactive_url}
    )
    dialog = load_fixture("interactive-message-dialog-response-card.json")
    fake_app.submit_body = json.dumps(dialog).encode()
    alice = await _user(client, "Alice Able")
    _, card_id = await _card_in_group(client, alice)
    assert await (await client.get("/_sandbox/dialogs")).json() == []
    status, answer = await _submit(client, card_id, userId=alice, data={"action": "open"})
    assert status == 200
    assert answer == {"status": 200, "body": dialog}
    [shown] = await (await client.get("/_sandbox/dialogs")).json()
    assert shown["userId"] == alice
    assert shown["cardId"] == card_id
    assert shown["dialog"] == dialog["dialog"]


async def test_a_text_answer_and_its_status_come_back_as_they_are(
    client: SandboxClient, fake_app: FakeApp
) -> None:
    await client.post(
        "/_sandbox/settings", json={"interactiveMessagesUrl": fake_app.interactive_url}
    )
    fake_app.submit_status = 500
    fake_app.submit_body = b"boom"
    fake_app.submit_content_type = "text/plain"
    alice = await _user(client, "Alice Able")
    _, card_id = await _card_in_group(client, alice)
    status, answer = await _submit(client, card_id, userId=alice, data={})
    assert status == 200
    assert answer == {"status": 500, "body": "boom"}
    assert await (await client.get("/_sandbox/dialogs")).json() == []


async def test_adding_and_removing_the_bot_sends_joined_and_left_to_it_only(
    client: SandboxClient, receiver: Receiver
) -> None:
    await subscribe(client, BOT_AUTH, receiver, ["/team-messaging/v1/chats"])
    alice = await _user(client, "Alice Able")
    bob = await _user(client, "Bob Baker")
    chat_id = await _chat(client, "Team", [alice, bob], name="Sales")
    assert receiver.notifications() == []

    response = await client.post(
        f"/_sandbox/chats/{chat_id}/members", json={"add": [defaults.BOT_EXTENSION_ID]}
    )
    added = await response.json()
    assert response.status == 200, added
    assert added["members"] == [{"id": alice}, {"id": bob}, {"id": defaults.BOT_EXTENSION_ID}]
    [joined] = receiver.notifications()
    assert joined["body"]["eventType"] == "GroupJoined"
    assert joined["body"]["id"] == chat_id
    assert joined["body"]["members"] == [alice, bob, defaults.BOT_EXTENSION_ID]
    assert set(joined["body"]) == set(load_fixture("webhook-chat-group-joined.json")["body"])
    chat = await client.get(f"/team-messaging/v1/chats/{chat_id}", headers=BOT_AUTH)
    assert {"id": defaults.BOT_EXTENSION_ID} in (await chat.json())["members"]

    carol = await _user(client, "Carol Cole")
    await client.post(f"/_sandbox/chats/{chat_id}/members", json={"add": [carol]})
    assert len(receiver.notifications()) == 1  # someone else joining is not the bot's event

    await client.post(
        f"/_sandbox/chats/{chat_id}/members", json={"remove": [defaults.BOT_EXTENSION_ID]}
    )
    left = receiver.notifications()[-1]
    assert left["body"]["eventType"] == "GroupLeft"
    assert left["body"]["members"] == [alice, bob, carol]
    assert set(left["body"]) == set(load_fixture("webhook-chat-group-left.json")["body"])
    gone = await client.get(f"/team-messaging/v1/chats/{chat_id}", headers=BOT_AUTH)
    assert gone.status == 404


async def test_members_of_a_direct_chat_cannot_change(client: SandboxClient) -> None:
    alice = await _user(client, "Alice Able")
    chat_id = await _chat(client, "Direct", [alice, defaults.BOT_EXTENSION_ID])
    response = await client.post(f"/_sandbox/chats/{chat_id}/members", json={"add": [alice]})
    assert response.status == 400
