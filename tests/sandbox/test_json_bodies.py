"""The sandbox reads and writes JSON with orjson (sandbox/jsonio.py) and means the same as
with the standard library: values come back as they went in, what only the standard library
reads is still read, and what neither reads is still the platform's 400."""

from __future__ import annotations

import json

from sandbox import defaults
from tests.sandbox.conftest import BOT_AUTH, SandboxClient

TM = "/team-messaging/v1"


async def _group_with_bot(client: SandboxClient) -> str:
    response = await client.post(
        "/_sandbox/chats",
        json={
            "type": "Group",
            "members": [defaults.BOT_EXTENSION_ID, defaults.SERVICE_USER_EXTENSION_ID],
        },
    )
    return str((await response.json())["id"])


def _card(data: object) -> dict[str, object]:
    return {
        "type": "AdaptiveCard",
        "version": "1.3",
        "body": [{"type": "TextBlock", "text": "Zoë’s call — 📞 résumé", "wrap": True}],
        "actions": [{"type": "Action.Submit", "title": "Go", "data": data}],
    }


async def test_text_outside_ascii_and_big_numbers_come_back_as_they_went_in(
    client: SandboxClient,
) -> None:
    chat_id = await _group_with_bot(client)
    # 2**70 is more than orjson holds: the standard library reads and writes it, as before.
    card = _card({"n": 2**70, "ratio": 0.1, "name": "Zoë"})
    created = await client.post(
        TM + f"/chats/{chat_id}/adaptive-cards",
        data=json.dumps(card),
        headers={**BOT_AUTH, "Content-Type": "application/json"},
    )
    assert created.status == 201
    card_id = (await created.json())["id"]
    read = await client.get(TM + f"/adaptive-cards/{card_id}", headers=BOT_AUTH)
    assert read.status == 200
    assert read.headers["Content-Type"] == "application/json; charset=utf-8"
    answer = json.loads(await read.read())
    assert answer["body"] == card["body"]
    assert answer["actions"] == card["actions"]
    posts = await (await client.get(f"/_sandbox/chats/{chat_id}/posts")).json()
    assert posts[-1]["card"]["actions"][0]["data"] == {"n": 2**70, "ratio": 0.1, "name": "Zoë"}


async def test_a_body_that_is_not_json_is_still_the_platforms_400(client: SandboxClient) -> None:
    chat_id = await _group_with_bot(client)
    for raw in (b"{not json", b'{"type": "AdaptiveCard", "body": [}', b"\xff\xfe{}", b"[]"):
        response = await client.post(
            TM + f"/chats/{chat_id}/adaptive-cards",
            data=raw,
            headers={**BOT_AUTH, "Content-Type": "application/json"},
        )
        assert response.status == 400, raw
        body = await response.json()
        assert body["errorCode"] == "InvalidParameter", raw
        assert body["errors"] == [
            {
                "errorCode": "CMN-101",
                "message": "Parameter [body] value is invalid",
                "parameterName": "body",
            }
        ], raw
    posts = await (await client.get(f"/_sandbox/chats/{chat_id}/posts")).json()
    assert posts == []


async def test_the_control_api_reads_what_it_read_before(client: SandboxClient) -> None:
    made = await client.post(
        "/_sandbox/users", data=json.dumps({"name": "Zoë Ünal"}).encode("utf-8")
    )
    assert made.status == 201
    user = await made.json()
    assert user["name"] == "Zoë Ünal"
    refused = await client.post("/_sandbox/users", data=b"{oops")
    assert refused.status == 400
    assert await refused.json() == {"error": "the body must be a JSON object"}
