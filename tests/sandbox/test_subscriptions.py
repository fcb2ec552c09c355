"""Subscriptions: the validation handshake, delivery headers, expiry and blacklisting."""

from __future__ import annotations

from sandbox import defaults
from sandbox.world import World
from tests.conftest import load_fixture
from tests.sandbox.conftest import (
    BASIC,
    BOT_AUTH,
    Receiver,
    SandboxClient,
    settle,
    subscribe,
)

POSTS = "/team-messaging/v1/posts"
RINGSENSE = "/ai/ringsense/v1/public/accounts/~/domains/pbx/insights"


async def _everyone_chat(client: SandboxClient) -> str:
    chats = await (await client.get("/_sandbox/chats")).json()
    return str(next(chat["id"] for chat in chats if chat["type"] == "Everyone"))


async def _user_posts(client: SandboxClient, text: str) -> dict[str, object]:
    response = await client.post(
        "/_sandbox/posts",
        json={
            "chatId": await _everyone_chat(client),
            "creatorId": defaults.SERVICE_USER_EXTENSION_ID,
            "text": text,
        },
    )
    body: dict[str, object] = await response.json()
    return body


async def test_handshake_echo_creates_an_active_subscription(
    client: SandboxClient, receiver: Receiver
) -> None:
    body = await subscribe(
        client,
        BOT_AUTH,
        receiver,
        [POSTS, "/restapi/v1.0/account/~/extension/~"],
        delivery_mode={"verificationToken": "bot-chosen-secret"},
    )
    handshake = receiver.requests[0]
    assert handshake["json"] is None
    assert handshake["headers"]["Validation-Token"]
    assert handshake["headers"]["Verification-Token"] == "bot-chosen-secret"
    assert body["status"] == "Active"
    assert body["expiresIn"] == 604800
    assert body["deliveryMode"] == {
        "transportType": "WebHook",
        "encryption": False,
        "address": receiver.url,
    }
    assert "verificationToken" not in body["deliveryMode"]
    assert body["eventFilters"] == [
        POSTS,
        f"/restapi/v1.0/account/{defaults.ACCOUNT_ID}/extension/{defaults.BOT_EXTENSION_ID}",
    ]
    assert set(load_fixture("subscription-create-response.json")) <= set(body)


async def test_receiver_that_does_not_echo_is_refused(
    client: SandboxClient, receiver: Receiver
) -> None:
    receiver.mode = "no-echo"
    response = await client.post(
        "/restapi/v1.0/subscription",
        json={
            "eventFilters": [POSTS],
            "deliveryMode": {"transportType": "WebHook", "address": receiver.url},
        },
        headers=BOT_AUTH,
    )
    body = await response.json()
    assert response.status == 400
    assert body["message"] == "Parameter [deliveryMode.address] value is invalid"
    assert body["errors"][0] == {
        "errorCode": "CMN-101",
        "message": "Parameter [deliveryMode.address] value is invalid",
        "parameterName": "deliveryMode.address",
    }
    listed = await (await client.get("/restapi/v1.0/subscription", headers=BOT_AUTH)).json()
    assert listed["records"] == []


async def test_slow_receiver_is_refused(
    client: SandboxClient, receiver: Receiver, world: World
) -> None:
    world.handshake_timeout = 0.2
    receiver.mode = "slow"
    response = await client.post(
        "/restapi/v1.0/subscription",
        json={
            "eventFilters": [POSTS],
            "deliveryMode": {"transportType": "WebHook", "address": receiver.url},
        },
        headers=BOT_AUTH,
    )
    assert response.status == 400
    assert (await response.json())["parameterName"] == "deliveryMode.address"


async def test_oversized_handshake_answer_is_sub_525(
    client: SandboxClient, receiver: Receiver
) -> None:
    receiver.mode = "big"
    response = await client.post(
        "/restapi/v1.0/subscription",
        json={
            "eventFilters": [POSTS],
            "deliveryMode": {"transportType": "WebHook", "address": receiver.url},
        },
        headers=BOT_AUTH,
    )
    body = await response.json()
    assert response.status == 400
    assert body["errorCode"] == "SUB-525"
    assert body["message"] == "WebHook server response is invalid"


async def test_invalid_expires_in_is_the_real_cmn_101(
    client: SandboxClient, receiver: Receiver
) -> None:
    response = await client.post(
        "/restapi/v1.0/subscription",
        json={
            "eventFilters": [POSTS],
            "deliveryMode": {"transportType": "WebHook", "address": receiver.url},
            "expiresIn": 0,
        },
        headers=BOT_AUTH,
    )
    body = await response.json()
    real = load_fixture("error-400-CMN-101-invalid-parameter.json")
    assert response.status == 400
    assert {k: body[k] for k in real} == real
    assert receiver.requests == []


async def test_huge_expires_in_is_clamped_to_ten_years(
    client: SandboxClient, receiver: Receiver
) -> None:
    body = await subscribe(client, BOT_AUTH, receiver, [POSTS], expiresIn=500000000)
    assert body["expiresIn"] == 315360000


async def test_notifications_carry_the_real_headers_and_envelope(
    client: SandboxClient, receiver: Receiver
) -> None:
    subscription = await subscribe(
        client, BOT_AUTH, receiver, [POSTS], delivery_mode={"verificationToken": "vt-123"}
    )
    await _user_posts(client, "hello bot")
    notification = receiver.requests[-1]
    headers = notification["headers"]
    assert headers["Content-Type"] == "application/json; charset=UTF-8"
    assert headers["User-Agent"] == "RingCentral-Webhook/8.3"
    assert headers["Accept"] == "application/json"
    assert headers["Verification-Token"] == "vt-123"
    envelope = notification["json"]
    assert set(envelope) == set(load_fixture("webhook-post-added.json"))
    assert envelope["subscriptionId"] == subscription["id"]
    assert envelope["ownerId"] == defaults.BOT_EXTENSION_ID
    assert envelope["event"] == POSTS


async def test_each_notification_has_a_fresh_uuid_and_keeps_order(
    client: SandboxClient, receiver: Receiver
) -> None:
    await subscribe(client, BOT_AUTH, receiver, [POSTS])
    for number in range(5):
        await _user_posts(client, f"message {number}")
    texts = [n["body"]["text"] for n in receiver.notifications()]
    assert texts == [f"message {number}" for number in range(5)]
    recorded = await (await client.get("/_sandbox/deliveries")).json()
    assert [d["payload"] for d in recorded] == receiver.notifications()
    assert len({n["uuid"] for n in receiver.notifications()}) == 5


async def test_expired_subscription_stops_delivering_and_is_gone(
    client: SandboxClient, receiver: Receiver, world: World
) -> None:
    subscription = await subscribe(client, BOT_AUTH, receiver, [POSTS], expiresIn=60)
    world.advance(61)
    await _user_posts(client, "too late")
    assert receiver.notifications() == []
    response = await client.get(
        f"/restapi/v1.0/subscription/{subscription['id']}", headers=BOT_AUTH
    )
    assert response.status == 404
    # API-FACTS B.4: an expired subscription is SUB-507, not an unknown one's CMN-102.
    body = await response.json()
    assert body["errorCode"] == "SUB-507"
    assert body["errors"][0]["errorCode"] == "SUB-507"
    assert body["message"].startswith(f"Subscription with key [{subscription['id']}]")
    assert body["message"].endswith("was expired")
    renew = await client.post(
        f"/restapi/v1.0/subscription/{subscription['id']}/renew", headers=BOT_AUTH
    )
    assert renew.status == 404
    assert (await renew.json())["errorCode"] == "SUB-507"
    unknown = await client.get("/restapi/v1.0/subscription/nope", headers=BOT_AUTH)
    assert (await unknown.json())["errorCode"] == "CMN-102"


async def test_renew_extends_the_lifetime(
    client: SandboxClient, receiver: Receiver, world: World
) -> None:
    subscription = await subscribe(client, BOT_AUTH, receiver, [POSTS], expiresIn=100)
    world.advance(90)
    renewed = await client.post(
        f"/restapi/v1.0/subscription/{subscription['id']}/renew", headers=BOT_AUTH
    )
    assert renewed.status == 200
    world.advance(90)
    await _user_posts(client, "still here")
    assert [n["body"]["text"] for n in receiver.notifications()] == ["still here"]


async def test_update_and_delete(client: SandboxClient, receiver: Receiver) -> None:
    subscription = await subscribe(client, BOT_AUTH, receiver, [POSTS])
    path = f"/restapi/v1.0/subscription/{subscription['id']}"
    updated = await client.put(
        path, json={"eventFilters": ["/team-messaging/v1/chats"]}, headers=BOT_AUTH
    )
    assert (await updated.json())["eventFilters"] == ["/team-messaging/v1/chats"]
    await _user_posts(client, "not for chats filter")
    assert receiver.notifications() == []
    deleted = await client.delete(path, headers=BOT_AUTH)
    assert deleted.status == 204
    assert (await client.get(path, headers=BOT_AUTH)).status == 404


async def test_failing_receiver_gets_blacklisted_after_ten_failures(
    client: SandboxClient, receiver: Receiver
) -> None:
    subscription = await subscribe(client, BOT_AUTH, receiver, [POSTS])
    receiver.mode = "error"
    for number in range(12):
        await _user_posts(client, f"message {number}")
    attempts = [d for d in await (await client.get("/_sandbox/deliveries")).json()]
    assert len(attempts) == 10
    assert all(a["status"] == 500 and not a["ok"] for a in attempts)
    listed = await (await client.get("/restapi/v1.0/subscription", headers=BOT_AUTH)).json()
    record = listed["records"][0]
    assert record["id"] == subscription["id"]
    assert record["status"] == "Blacklisted"
    assert record["blacklistedData"]["reason"] == (
        "Webhook responses with code: [500], reason: [Internal Server Error]"
    )
    assert record["blacklistedData"]["blacklistedAt"].endswith("Z")
    # A blacklisted subscription cannot be renewed back to life (the docs: delete it and
    # create a new one); neither by renew nor by PUT.
    path = f"/restapi/v1.0/subscription/{subscription['id']}"
    renew = await client.post(path + "/renew", headers=BOT_AUTH)
    assert renew.status == 400
    assert "blacklisted" in (await renew.json())["message"].lower()
    put = await client.put(path, json={}, headers=BOT_AUTH)
    assert put.status == 400
    listed = await (await client.get("/restapi/v1.0/subscription", headers=BOT_AUTH)).json()
    assert listed["records"][0]["status"] == "Blacklisted"


async def test_timeouts_count_as_failures(
    client: SandboxClient, receiver: Receiver, world: World
) -> None:
    await subscribe(client, BOT_AUTH, receiver, [POSTS])
    world.delivery_timeout = 0.05
    world.blacklist_after_failures = 2
    receiver.mode = "slow"
    receiver.slow_seconds = 0.3
    await _user_posts(client, "one")
    await _user_posts(client, "two")
    listed = await (await client.get("/_sandbox/subscriptions")).json()
    assert listed[0]["blacklistedData"]["reason"] == (
        "I/O operation is failed. Details: [Read timed out]"
    )


async def test_failures_spread_over_more_than_ten_minutes_do_not_blacklist(
    client: SandboxClient, receiver: Receiver, world: World
) -> None:
    await subscribe(client, BOT_AUTH, receiver, [POSTS])
    receiver.mode = "error"
    for number in range(12):
        await _user_posts(client, f"message {number}")
        world.advance(120)
    listed = await (await client.get("/_sandbox/subscriptions")).json()
    assert listed[0]["status"] == "Active"


async def test_ringsense_filter_is_disabled_for_the_bot(
    client: SandboxClient, receiver: Receiver
) -> None:
    body = await subscribe(client, BOT_AUTH, receiver, [RINGSENSE])
    expanded = f"/ai/ringsense/v1/public/accounts/{defaults.ACCOUNT_ID}/domains/pbx/insights"
    assert body["eventFilters"] == [expanded]
    assert body["disabledFilters"][0]["filter"] == expanded


async def test_unknown_filter_is_sub_508(client: SandboxClient, receiver: Receiver) -> None:
    response = await client.post(
        "/restapi/v1.0/subscription",
        json={
            "eventFilters": ["/nonsense"],
            "deliveryMode": {"transportType": "WebHook", "address": receiver.url},
        },
        headers=BOT_AUTH,
    )
    assert response.status == 400
    assert (await response.json())["errors"][0]["errorCode"] == "SUB-508"


async def test_bot_rest_posts_reach_the_bot_too(client: SandboxClient, receiver: Receiver) -> None:
    """Real bots receive their own posts and must ignore them themselves."""
    await subscribe(client, BOT_AUTH, receiver, [POSTS])
    chat_id = await _everyone_chat(client)
    response = await client.post(
        f"/team-messaging/v1/chats/{chat_id}/posts", json={"text": "from bot"}, headers=BOT_AUTH
    )
    assert response.status == 201
    await settle(client)
    [notification] = receiver.notifications()
    assert notification["body"]["creatorId"] == notification["ownerId"]


async def test_the_bots_card_posts_reach_it_as_post_added_too(
    client: SandboxClient, receiver: Receiver
) -> None:
    """A card post is a post: subscribers get PostAdded for it (type Card, no text)."""
    await subscribe(client, BOT_AUTH, receiver, [POSTS])
    chat_id = await _everyone_chat(client)
    card = {"type": "AdaptiveCard", "version": "1.3", "body": [{"type": "TextBlock", "text": "x"}]}
    response = await client.post(
        f"/team-messaging/v1/chats/{chat_id}/adaptive-cards", json=card, headers=BOT_AUTH
    )
    assert response.status == 201
    await settle(client)
    [notification] = receiver.notifications()
    body = notification["body"]
    assert body["eventType"] == "PostAdded"
    assert body["type"] == "Card"
    assert body["creatorId"] == notification["ownerId"]
    assert body["groupId"] == chat_id


async def test_members_joining_a_group_get_a_persons_added_post(
    client: SandboxClient, receiver: Receiver
) -> None:
    await subscribe(client, BOT_AUTH, receiver, [POSTS])
    people = [
        (await (await client.post("/_sandbox/users", json={"name": n})).json())["extensionId"]
        for n in ("Ann", "Ben")
    ]
    made = await client.post(
        "/_sandbox/chats",
        json={"type": "Group", "members": [people[0], defaults.BOT_EXTENSION_ID]},
    )
    chat_id = (await made.json())["id"]
    await client.post(f"/_sandbox/chats/{chat_id}/members", json={"add": [people[1]]})
    await settle(client)
    [notification] = [
        n for n in receiver.notifications() if n["body"].get("type") == "PersonsAdded"
    ]
    body = notification["body"]
    assert body["eventType"] == "PostAdded"
    assert body["addedPersonIds"] == [people[1]]
    assert body["groupId"] == chat_id
    assert body["text"] is None


async def test_filters_the_tokens_app_scopes_do_not_cover_are_disabled(
    client: SandboxClient, receiver: Receiver
) -> None:
    """A token without the RingSense (or TeamMessaging) app permission gets no events of
    those kinds: the filter is listed in `disabledFilters`, as a user permission would be."""
    response = await client.post(
        "/restapi/oauth/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": defaults.SERVICE_USER_JWT,
            "scope": "ReadAccounts SubscriptionWebhook",
        },
        headers={"Authorization": BASIC},
    )
    assert response.status == 200
    auth = {"Authorization": f"Bearer {(await response.json())['access_token']}"}
    body = await subscribe(client, auth, receiver, [RINGSENSE, POSTS])
    disabled = {entry["filter"]: entry for entry in body["disabledFilters"]}
    assert len(disabled) == 2
    assert all(entry["reason"] == "PermissionDenied" for entry in disabled.values())
    assert any("[RingSense]" in entry["message"] for entry in disabled.values())
    assert any("[TeamMessaging]" in entry["message"] for entry in disabled.values())
    await _user_posts(client, "not for a token without TeamMessaging")
    assert receiver.notifications() == []
