"""Team messaging as a bot sees it: chats, DMs, posts, persons and adaptive cards."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from sandbox import defaults
from sandbox.app import create_sandbox_app
from tests.conftest import load_fixture
from tests.sandbox.conftest import BOT_AUTH, Receiver, SandboxClient, settle, subscribe

TM = "/team-messaging/v1"


async def _user(client: SandboxClient, name: str, **extra: Any) -> str:
    response = await client.post("/_sandbox/users", json={"name": name, **extra})
    assert response.status == 201
    return str((await response.json())["extensionId"])


async def _group_with_bot(client: SandboxClient, *members: str) -> str:
    response = await client.post(
        "/_sandbox/chats",
        json={"type": "Group", "members": [defaults.BOT_EXTENSION_ID, *members]},
    )
    return str((await response.json())["id"])


def _card() -> dict[str, Any]:
    card: dict[str, Any] = load_fixture("adaptive-card-request-form-submit.json")
    return card


async def test_bot_lists_its_chats_with_rest_types(client: SandboxClient) -> None:
    alice = await _user(client, "Alice Able")
    group_id = await _group_with_bot(client, alice, defaults.SERVICE_USER_EXTENSION_ID)
    response = await client.get(TM + "/chats", headers=BOT_AUTH)
    body = await response.json()
    assert response.status == 200
    types = {chat["type"] for chat in body["records"]}
    assert {"Everyone", "Personal", "Group"} <= types
    group = next(chat for chat in body["records"] if chat["id"] == group_id)
    assert {"id": alice} in group["members"]
    assert response.headers["X-Rate-Limit-Group"] == "Medium"
    only_groups = await (await client.get(TM + "/chats?type=Group", headers=BOT_AUTH)).json()
    assert [chat["id"] for chat in only_groups["records"]] == [group_id]


async def test_chat_paging(client: SandboxClient) -> None:
    alice = await _user(client, "Alice Able")
    for _ in range(3):
        await client.post(
            "/_sandbox/chats",
            json={"type": "Team", "name": "T", "members": [defaults.BOT_EXTENSION_ID, alice]},
        )
    ids: list[str] = []
    query = "?recordCount=2"
    while True:
        page = await (await client.get(TM + "/chats" + query, headers=BOT_AUTH)).json()
        assert len(page["records"]) <= 2
        ids += [chat["id"] for chat in page["records"]]
        token = page["navigation"].get("nextPageToken")
        if token is None:
            break
        query = f"?recordCount=2&pageToken={token}"
    assert len(ids) == len(set(ids)) == 5  # 3 teams, Everyone, Personal


async def test_personal_chat_via_tilde(client: SandboxClient) -> None:
    body = await (await client.get(TM + "/chats/~", headers=BOT_AUTH)).json()
    assert body["type"] == "Personal"
    assert body["members"] == [{"id": defaults.BOT_EXTENSION_ID}]


async def test_direct_conversation_is_201_then_200(client: SandboxClient) -> None:
    alice = await _user(client, "Alice Able", email="alice@example.com")
    created = await client.post(
        TM + "/conversations", json={"members": [{"id": alice}]}, headers=BOT_AUTH
    )
    assert created.status == 201
    chat = await created.json()
    assert chat["type"] == "Direct"
    assert {m["id"] for m in chat["members"]} == {alice, defaults.BOT_EXTENSION_ID}
    again = await client.post(
        TM + "/conversations", json={"members": [{"email": "alice@example.com"}]}, headers=BOT_AUTH
    )
    assert again.status == 200
    assert (await again.json())["id"] == chat["id"]
    read = await client.get(TM + f"/conversations/{chat['id']}", headers=BOT_AUTH)
    assert (await read.json())["id"] == chat["id"]


async def test_conversation_with_unknown_person_is_400(client: SandboxClient) -> None:
    response = await client.post(
        TM + "/conversations", json={"members": [{"id": "404404"}]}, headers=BOT_AUTH
    )
    assert response.status == 400
    assert (await response.json())["errors"][0]["errorCode"] == "CMN-101"


async def test_new_dm_tells_the_bot_group_joined(client: SandboxClient, receiver: Receiver) -> None:
    await subscribe(client, BOT_AUTH, receiver, ["/team-messaging/v1/chats"])
    alice = await _user(client, "Alice Able")
    await client.post(TM + "/conversations", json={"members": [{"id": alice}]}, headers=BOT_AUTH)
    await settle(client)
    [joined] = receiver.notifications()
    assert joined["body"]["eventType"] == "GroupJoined"
    assert joined["body"]["type"] == "PrivateChat"


async def test_bot_posts_text(client: SandboxClient) -> None:
    alice = await _user(client, "Alice Able")
    chat_id = await _group_with_bot(client, alice)
    response = await client.post(
        TM + f"/chats/{chat_id}/posts",
        json={"text": f"Hi ![:Person]({alice})"},
        headers=BOT_AUTH,
    )
    post = await response.json()
    assert response.status == 201
    assert post["groupId"] == chat_id
    assert post["type"] == "TextMessage"
    assert post["creatorId"] == defaults.BOT_EXTENSION_ID
    assert post["mentions"] == [{"id": alice, "type": "Person", "name": "Alice Able"}]
    listed = await (await client.get(TM + f"/chats/{chat_id}/posts", headers=BOT_AUTH)).json()
    assert listed["records"][0]["id"] == post["id"]
    single = await client.get(TM + f"/chats/{chat_id}/posts/{post['id']}", headers=BOT_AUTH)
    assert (await single.json())["text"] == f"Hi ![:Person]({alice})"


async def test_posting_rules(client: SandboxClient) -> None:
    alice = await _user(client, "Alice Able")
    bob = await _user(client, "Bob Baker")
    foreign = await (
        await client.post("/_sandbox/chats", json={"type": "Direct", "members": [alice, bob]})
    ).json()
    not_member = await client.post(
        TM + f"/chats/{foreign['id']}/posts", json={"text": "hi"}, headers=BOT_AUTH
    )
    assert not_member.status == 403
    unknown = await client.post(TM + "/chats/999/posts", json={"text": "hi"}, headers=BOT_AUTH)
    assert unknown.status == 404
    assert (await unknown.json())["errors"][0]["errorCode"] == "CMN-102"
    chat_id = await _group_with_bot(client, alice)
    too_long = await client.post(
        TM + f"/chats/{chat_id}/posts", json={"text": "x" * 10001}, headers=BOT_AUTH
    )
    assert too_long.status == 400
    assert (await too_long.json())["parameterName"] == "text"
    longest = await client.post(
        TM + f"/chats/{chat_id}/posts", json={"text": "x" * 10000}, headers=BOT_AUTH
    )
    assert longest.status == 201


async def test_persons_single_and_batch(client: SandboxClient) -> None:
    alice = await _user(client, "Alice Able")
    single = await client.get(TM + f"/persons/{alice}", headers=BOT_AUTH)
    person = await single.json()
    assert single.status == 200
    assert (person["firstName"], person["lastName"]) == ("Alice", "Able")
    batch = await client.get(
        TM + f"/persons/{alice},{defaults.BOT_EXTENSION_ID},1", headers=BOT_AUTH
    )
    assert batch.status == 207
    assert batch.content_type == "multipart/mixed"
    text = await batch.text()
    assert '"status": 404' in text
    assert text.count('"status": 200') == 2
    missing = await client.get(TM + "/persons/1", headers=BOT_AUTH)
    assert missing.status == 404


async def test_card_create_get_update_delete(client: SandboxClient) -> None:
    alice = await _user(client, "Alice Able")
    chat_id = await _group_with_bot(client, alice)
    card = _card()
    del card["version"]
    created = await client.post(
        TM + f"/chats/{chat_id}/adaptive-cards", json=card, headers=BOT_AUTH
    )
    short = await created.json()
    assert created.status == 201
    assert set(short) >= {"id", "creationTime", "lastModifiedTime", "type", "version", "creator"}
    assert short["version"] == "1.3"
    assert short["creator"] == {"id": defaults.BOT_EXTENSION_ID}
    assert short["chatIds"] == [chat_id]

    full = await (await client.get(TM + f"/adaptive-cards/{short['id']}", headers=BOT_AUTH)).json()
    assert full["body"] == card["body"]
    assert set(load_fixture("adaptive-card-get-response.json")) - {"fallbackText"} <= set(full)

    replacement = {
        "type": "AdaptiveCard",
        "version": "1.3",
        "body": [{"type": "TextBlock", "text": "updated"}],
    }
    updated = await client.put(
        TM + f"/adaptive-cards/{short['id']}", json=replacement, headers=BOT_AUTH
    )
    assert updated.status == 200
    stored = await (await client.get(f"/_sandbox/chats/{chat_id}/posts")).json()
    assert stored[-1]["type"] == "Card"
    assert stored[-1]["cardId"] == short["id"]
    assert stored[-1]["card"]["body"] == replacement["body"]
    assert "actions" not in stored[-1]["card"]  # PUT replaces, it does not merge

    deleted = await client.delete(TM + f"/adaptive-cards/{short['id']}", headers=BOT_AUTH)
    assert deleted.status == 204
    gone = await client.get(TM + f"/adaptive-cards/{short['id']}", headers=BOT_AUTH)
    assert gone.status == 404


async def test_invalid_card_is_refused_with_the_real_shape(client: SandboxClient) -> None:
    chat_id = await _group_with_bot(client, defaults.SERVICE_USER_EXTENSION_ID)
    real = load_fixture("adaptive-card-error-invalid-payload.json")
    bad_cards = [
        {"type": "NotACard", "body": []},
        {"type": "AdaptiveCard", "body": [{"type": "Blink", "text": "x"}]},
        {"type": "AdaptiveCard", "body": [], "actions": [{"type": "Action.Execute"}]},
        {"type": "AdaptiveCard", "body": [{"type": "TextBlock", "text": "x", "size": "huge"}]},
    ]
    for bad in bad_cards:
        response = await client.post(
            TM + f"/chats/{chat_id}/adaptive-cards", json=bad, headers=BOT_AUTH
        )
        body = await response.json()
        assert response.status == 400, bad
        assert set(real) <= set(body)  # the documented troubleshooting body...
        assert body["error"] == real["error"]
        assert body["validation"], bad
        # ...and the platform's error shape every client reads (API-FACTS A.5)
        assert body["errorCode"] == "CMN-101"
        assert body["errors"] and all(e["errorCode"] == "CMN-101" for e in body["errors"])
        assert [e["message"] for e in body["errors"]] == body["validation"]
    stored = await (await client.get(f"/_sandbox/chats/{chat_id}/posts")).json()
    assert stored == []


async def _everyone_chat(client: Any) -> str:
    return str(
        next(
            c["id"]
            for c in await (await client.get("/_sandbox/chats")).json()
            if c["type"] == "Everyone"
        )
    )


async def test_the_official_schema_is_loaded_by_default(aiohttp_client: Any) -> None:
    client = await aiohttp_client(create_sandbox_app())
    chat_id = await _everyone_chat(client)
    # Structurally fine; only the 1.3 schema knows "huge" is no TextBlock size.
    bad = {"type": "AdaptiveCard", "body": [{"type": "TextBlock", "text": "x", "size": "huge"}]}
    response = await client.post(
        TM + f"/chats/{chat_id}/adaptive-cards", json=bad, headers=BOT_AUTH
    )
    assert response.status == 400


@pytest.mark.parametrize(
    ("version", "status"), [("1.0", 201), ("1.2", 201), ("1.3", 201), ("1.4", 400), ("1.5", 400)]
)
async def test_versions_above_1_3_are_refused(
    client: SandboxClient, version: str, status: int
) -> None:
    chat_id = await _group_with_bot(client, defaults.SERVICE_USER_EXTENSION_ID)
    card = {**_card(), "version": version}
    response = await client.post(
        TM + f"/chats/{chat_id}/adaptive-cards", json=card, headers=BOT_AUTH
    )
    assert response.status == status
    if status == 400:
        assert "version" in json.dumps(await response.json())


async def test_an_oversized_card_is_a_400_with_the_platform_body_not_a_plain_413(
    client: SandboxClient,
) -> None:
    chat_id = await _group_with_bot(client, defaults.SERVICE_USER_EXTENSION_ID)
    big = {
        "type": "AdaptiveCard",
        "version": "1.3",
        "body": [{"type": "TextBlock", "text": "x" * 2000, "wrap": True}] * 1000,
    }
    for attempt in ("create", "update"):
        if attempt == "create":
            response = await client.post(
                TM + f"/chats/{chat_id}/adaptive-cards", json=big, headers=BOT_AUTH
            )
        else:
            made = await client.post(
                TM + f"/chats/{chat_id}/adaptive-cards", json=_card(), headers=BOT_AUTH
            )
            card_id = (await made.json())["id"]
            response = await client.put(
                TM + f"/adaptive-cards/{card_id}", json=big, headers=BOT_AUTH
            )
        assert response.status == 400, attempt
        assert response.content_type == "application/json"
        body = await response.json()
        assert body["errorCode"] == "CMN-101"
        assert "too large" in body["errors"][0]["message"]


async def test_cards_are_checked_structurally_without_the_schema(
    aiohttp_client: Any, tmp_path: Any
) -> None:
    client = await aiohttp_client(create_sandbox_app(adaptive_card_schema=tmp_path / "none.json"))
    chat_id = next(
        c["id"]
        for c in await (await client.get("/_sandbox/chats")).json()
        if c["type"] == "Everyone"
    )
    bad = {"type": "AdaptiveCard", "body": [{"type": "Blink"}]}
    response = await client.post(
        TM + f"/chats/{chat_id}/adaptive-cards", json=bad, headers=BOT_AUTH
    )
    assert response.status == 400
    assert (await response.json())["validation"] == ["payload.body[0] does not match any schema"]
    good = copy.deepcopy(_card())
    response = await client.post(
        TM + f"/chats/{chat_id}/adaptive-cards", json=good, headers=BOT_AUTH
    )
    assert response.status == 201


async def test_only_the_creator_updates_a_card(
    client: SandboxClient, service_auth: dict[str, str]
) -> None:
    chat_id = await _group_with_bot(client, defaults.SERVICE_USER_EXTENSION_ID)
    created = await client.post(
        TM + f"/chats/{chat_id}/adaptive-cards", json=_card(), headers=BOT_AUTH
    )
    card_id = (await created.json())["id"]
    response = await client.put(
        TM + f"/adaptive-cards/{card_id}", json=_card(), headers=service_auth
    )
    assert response.status == 403
