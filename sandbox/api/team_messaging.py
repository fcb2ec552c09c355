"""`/team-messaging/v1/...`: chats, conversations, posts, persons, adaptive cards
(API-FACTS D.4). Posts made here notify subscribers in the background, the way the
platform answers the POST before the webhook goes out."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from aiohttp import web

from sandbox import actions
from sandbox.cards import DEFAULT_VERSION, invalid_card_body
from sandbox.delivery import PlatformEvent
from sandbox.errors import PlatformError, api_error, invalid_parameter, not_found
from sandbox.faults import DAILY_LIMIT_MESSAGE
from sandbox.keys import BACKGROUND_KEY, CARD_VALIDATOR_KEY, NOTIFIER_KEY
from sandbox.multipart import multi_status
from sandbox.platform import (
    FAULT_KEY,
    base_url,
    caller_of,
    endpoint,
    json_body,
    json_response,
    world_of,
)
from sandbox.ratelimit import RateGroup
from sandbox.render import (
    card_info,
    card_short_info,
    chat_info,
    conversation_info,
    person_info,
    post_event_body,
    post_info,
)
from sandbox.world import JSON, AdaptiveCard, Chat, ChatType, Extension, Post, World

routes = web.RouteTableDef()

TM = "/team-messaging/v1"
TEAM_MESSAGING = "TeamMessaging"
MAX_TEXT = 10000
MAX_CONVERSATION_MEMBERS = 15
MAX_PERSON_IDS = 30
CHAT_TYPES = ("Everyone", "Team", "Group", "Direct", "Personal")


def forbidden(message: str) -> PlatformError:
    return api_error(403, "CMN-403", message)


def _check_daily_limit(request: web.Request, world: World, caller: Extension) -> tuple[str, str]:
    """The `dailyPostLimit` fault: over it, posts and cards answer 500 with the text DOCS
    `team-messaging/posting/index.md` quotes. The error code is UNCONFIRMED (no sample);
    CMN-203, the platform's generic 500 code, carries the quoted message."""
    key = (caller.id, world.now_iso()[:10])
    limit = world.faults.daily_post_limit
    if limit is not None and world.api_posts_per_day.get(key, 0) >= limit:
        request[FAULT_KEY] = "dailyPostLimit"
        raise api_error(500, "CMN-203", DAILY_LIMIT_MESSAGE)
    return key


def _count_post(world: World, key: tuple[str, str]) -> None:
    world.api_posts_per_day[key] = world.api_posts_per_day.get(key, 0) + 1


def _publish_later(request: web.Request, events: list[PlatformEvent]) -> None:
    notifier = request.app[NOTIFIER_KEY]
    background = request.app[BACKGROUND_KEY]
    for event in events:
        background.spawn(notifier.publish(event))


def _page(request: web.Request, records: list[JSON]) -> tuple[list[JSON], JSON]:
    """`recordCount` / `pageToken` paging with opaque tokens, newest page first."""
    raw_count = request.query.get("recordCount", "30")
    try:
        count = int(raw_count)
    except ValueError:
        raise invalid_parameter("recordCount", raw_count) from None
    if not 1 <= count <= 250:
        raise invalid_parameter("recordCount", raw_count)
    offset = 0
    token = request.query.get("pageToken")
    if token:
        try:
            offset = int(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("o:"))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise invalid_parameter("pageToken", token) from None
    navigation: JSON = {}
    if offset + count < len(records):
        navigation["nextPageToken"] = base64.urlsafe_b64encode(
            f"o:{offset + count}".encode()
        ).decode()
    if offset > 0:
        navigation["prevPageToken"] = base64.urlsafe_b64encode(
            f"o:{max(0, offset - count)}".encode()
        ).decode()
    return records[offset : offset + count], navigation


def _chat(world: World, chat_id: str, caller: Extension) -> Chat:
    """A chat the caller can see; `~` is the caller's personal chat."""
    chat = world.personal_chat(caller.id) if chat_id == "~" else world.chats.get(chat_id)
    if chat is None or caller.id not in chat.members:
        raise not_found("chatId", chat_id)
    return chat


def _member_chat(world: World, chat_id: str, caller: Extension) -> Chat:
    """A chat the caller may write to: unknown is 404, not a member is 403."""
    chat = world.personal_chat(caller.id) if chat_id == "~" else world.chats.get(chat_id)
    if chat is None:
        raise not_found("chatId", chat_id)
    if caller.id not in chat.members:
        raise forbidden(f"Person [{caller.id}] is not a member of chat [{chat.id}]")
    return chat


@routes.get(TM + "/chats")
@endpoint(RateGroup.MEDIUM, app_permission=TEAM_MESSAGING)
async def list_chats(request: web.Request) -> web.StreamResponse:
    world = world_of(request)
    caller = caller_of(request)
    wanted: set[str] = set()
    for value in request.query.getall("type", []):
        for item in value.split(","):
            if item not in CHAT_TYPES:
                raise invalid_parameter("type", item)
            wanted.add(item)
    chats = [chat for chat in world.chats_of(caller.id) if not wanted or chat.type in wanted]
    chats.sort(key=lambda chat: (chat.last_modified_time, int(chat.id)), reverse=True)
    records, navigation = _page(request, [chat_info(chat) for chat in chats])
    return json_response({"records": records, "navigation": navigation})


@routes.get(TM + "/chats/{chatId}")
@endpoint(RateGroup.LIGHT, app_permission=TEAM_MESSAGING)
async def read_chat(request: web.Request) -> web.StreamResponse:
    chat = _chat(world_of(request), request.match_info["chatId"], caller_of(request))
    return json_response(chat_info(chat))


@routes.get(TM + "/conversations")
@endpoint(RateGroup.MEDIUM, app_permission=TEAM_MESSAGING)
async def list_conversations(request: web.Request) -> web.StreamResponse:
    world = world_of(request)
    caller = caller_of(request)
    chats = [
        chat for chat in world.chats_of(caller.id) if chat.type in ("Direct", "Personal", "Group")
    ]
    chats.sort(key=lambda chat: (chat.last_modified_time, int(chat.id)), reverse=True)
    records, navigation = _page(request, [conversation_info(chat) for chat in chats])
    return json_response({"records": records, "navigation": navigation})


@routes.post(TM + "/conversations")
@endpoint(RateGroup.MEDIUM, app_permission=TEAM_MESSAGING)
async def create_conversation(request: web.Request) -> web.StreamResponse:
    """Open (or find) the Direct/Group chat with these people: 200 found, 201 created."""
    world = world_of(request)
    caller = caller_of(request)
    body = await json_body(request)
    members = body.get("members")
    if not isinstance(members, list) or not members:
        raise invalid_parameter("members")
    if len(members) > MAX_CONVERSATION_MEMBERS:
        raise invalid_parameter("members")
    ids: list[str] = []
    for index, member in enumerate(members):
        if not isinstance(member, dict):
            raise invalid_parameter(f"members[{index}]")
        if isinstance(member.get("id"), str | int) and str(member["id"]):
            person = world.extensions.get(str(member["id"]))
            if person is None or not world.can_see(caller, person):
                raise invalid_parameter(f"members[{index}].id", str(member["id"]))
        elif isinstance(member.get("email"), str):
            # By email anyone may be invited, guests of other accounts included.
            person = world.find_by_email(member["email"])
            if person is None:
                raise invalid_parameter(f"members[{index}].email", member["email"])
        else:
            raise invalid_parameter(f"members[{index}]")
        ids.append(person.id)
    wanted = {caller.id, *ids}
    existing = world.find_conversation(wanted)
    if existing is not None:
        return json_response(conversation_info(existing), status=200)
    type_: ChatType = "Direct" if len(wanted) == 2 else "Group"
    ordered = [caller.id, *[member for member in dict.fromkeys(ids) if member != caller.id]]
    chat, events = actions.create_chat(world, type_, ordered)
    _publish_later(request, events)
    return json_response(conversation_info(chat), status=201)


@routes.get(TM + "/conversations/{chatId}")
@endpoint(RateGroup.LIGHT, app_permission=TEAM_MESSAGING)
async def read_conversation(request: web.Request) -> web.StreamResponse:
    chat_id = request.match_info["chatId"]
    chat = _chat(world_of(request), chat_id, caller_of(request))
    if chat.type not in ("Direct", "Personal", "Group"):
        raise not_found("chatId", chat_id)
    return json_response(conversation_info(chat))


def _post_text(body: dict[str, Any]) -> str:
    attachments = body.get("attachments")
    if attachments:
        # Only files/events/notes/tasks can be attached, and cards never (DOCS posting).
        raise invalid_parameter("attachments")
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise invalid_parameter("text")
    if len(text) > MAX_TEXT:
        raise invalid_parameter("text")
    return text


@routes.post(TM + "/chats/{chatId}/posts")
@endpoint(RateGroup.MEDIUM, app_permission=TEAM_MESSAGING)
async def create_post(request: web.Request) -> web.StreamResponse:
    world = world_of(request)
    caller = caller_of(request)
    chat = _member_chat(world, request.match_info["chatId"], caller)
    day_key = _check_daily_limit(request, world, caller)
    text = _post_text(await json_body(request))
    post, event = actions.post_text(world, chat, caller.id, text)
    _count_post(world, day_key)
    _publish_later(request, [event])
    return json_response(post_info(post), status=201)


@routes.get(TM + "/chats/{chatId}/posts")
@endpoint(RateGroup.MEDIUM, app_permission=TEAM_MESSAGING)
async def list_posts(request: web.Request) -> web.StreamResponse:
    world = world_of(request)
    chat = _member_chat(world, request.match_info["chatId"], caller_of(request))
    posts = sorted(
        world.posts_in(chat.id), key=lambda post: (post.creation_time, int(post.id)), reverse=True
    )
    records, navigation = _page(request, [post_info(post) for post in posts])
    return json_response({"records": records, "navigation": navigation})


def _post(request: web.Request, *, writing: bool) -> tuple[Chat, Post]:
    world = world_of(request)
    caller = caller_of(request)
    chat = _member_chat(world, request.match_info["chatId"], caller)
    post_id = request.match_info["postId"]
    post = world.posts.get(post_id)
    if post is None or post.chat_id != chat.id:
        raise not_found("postId", post_id)
    if writing and post.creator_id != caller.id:
        raise forbidden(f"Person [{caller.id}] is not the author of post [{post.id}]")
    return chat, post


@routes.get(TM + "/chats/{chatId}/posts/{postId}")
@endpoint(RateGroup.LIGHT, app_permission=TEAM_MESSAGING)
async def read_post(request: web.Request) -> web.StreamResponse:
    _, post = _post(request, writing=False)
    return json_response(post_info(post))


@routes.patch(TM + "/chats/{chatId}/posts/{postId}")
@endpoint(RateGroup.MEDIUM, app_permission=TEAM_MESSAGING)
async def update_post(request: web.Request) -> web.StreamResponse:
    world = world_of(request)
    chat, post = _post(request, writing=True)
    if post.type != "TextMessage":
        raise invalid_parameter("postId", post.id)
    post.text = _post_text(await json_body(request))
    post.mentions = actions.mentions_in(world, post.text)
    post.last_modified_time = world.now()
    event = PlatformEvent(
        kind="post", body=post_event_body(post, "PostChanged"), audience=frozenset(chat.members)
    )
    _publish_later(request, [event])
    return json_response(post_info(post))


@routes.delete(TM + "/chats/{chatId}/posts/{postId}")
@endpoint(RateGroup.MEDIUM, app_permission=TEAM_MESSAGING)
async def delete_post(request: web.Request) -> web.StreamResponse:
    world = world_of(request)
    chat, post = _post(request, writing=True)
    del world.posts[post.id]
    if post.card_id:
        world.cards.pop(post.card_id, None)
    event = PlatformEvent(
        kind="post", body=post_event_body(post, "PostRemoved"), audience=frozenset(chat.members)
    )
    _publish_later(request, [event])
    return web.Response(status=204)


@routes.get(TM + "/persons/{personId}")
@endpoint(RateGroup.LIGHT, app_permission=TEAM_MESSAGING)
async def read_persons(request: web.Request) -> web.StreamResponse:
    """People of the caller's account, and guests it shares a chat with; anyone else
    is not found, so one account's directory does not leak into another's."""
    world = world_of(request)
    caller = caller_of(request)
    raw = request.match_info["personId"]
    ids = [item for item in raw.split(",") if item]
    if not ids or len(ids) > MAX_PERSON_IDS:
        raise invalid_parameter("personId", raw)

    def visible(person_id: str) -> Extension | None:
        person = world.extensions.get(person_id)
        return person if person is not None and world.can_see(caller, person) else None

    if len(ids) == 1:
        person = visible(ids[0])
        if person is None:
            raise not_found("personId", ids[0])
        return json_response(person_info(person))
    base = base_url(request)
    parts: list[tuple[str, int, JSON]] = []
    for person_id in ids:
        href = f"{base}{TM}/persons/{person_id}"
        person = visible(person_id)
        if person is None:
            parts.append((href, 404, not_found("personId", person_id).body))
        else:
            parts.append((href, 200, person_info(person)))
    return multi_status(parts)


def _validated_card(request: web.Request, body: dict[str, Any]) -> JSON:
    problems = request.app[CARD_VALIDATOR_KEY].problems(body)
    if problems:
        raise PlatformError(400, invalid_card_body(problems))
    content = dict(body)
    content.setdefault("version", DEFAULT_VERSION)
    for server_field in ("id", "creationTime", "lastModifiedTime", "creator", "chatIds"):
        content.pop(server_field, None)
    return content


@routes.post(TM + "/chats/{chatId}/adaptive-cards")
@endpoint(RateGroup.MEDIUM, app_permission=TEAM_MESSAGING)
async def create_card(request: web.Request) -> web.StreamResponse:
    world = world_of(request)
    caller = caller_of(request)
    chat = _member_chat(world, request.match_info["chatId"], caller)
    day_key = _check_daily_limit(request, world, caller)
    content = _validated_card(request, await json_body(request))
    _count_post(world, day_key)
    now = world.now()
    card_id = world.next_id("card", 48201000)
    post = world.add_post(chat, caller.id, text=None, type_="Card", card_id=card_id)
    _publish_later(request, [actions.card_posted_event(chat, post)])
    card = AdaptiveCard(
        id=card_id,
        creator_id=caller.id,
        chat_ids=[chat.id],
        content=content,
        creation_time=now,
        last_modified_time=now,
        post_id=post.id,
    )
    world.cards[card.id] = card
    return json_response(card_short_info(card), status=201)


def _card(request: web.Request, card_id: str, *, writing: bool) -> AdaptiveCard:
    world = world_of(request)
    caller = caller_of(request)
    card = world.cards.get(card_id)
    if card is None:
        raise not_found("cardId", card_id)
    if writing and card.creator_id != caller.id:
        raise forbidden(f"Person [{caller.id}] is not the creator of card [{card.id}]")
    if not writing and not any(
        caller.id in world.chats[chat_id].members
        for chat_id in card.chat_ids
        if chat_id in world.chats
    ):
        raise not_found("cardId", card_id)
    return card


@routes.get(TM + "/adaptive-cards/{cardId}")
@endpoint(RateGroup.MEDIUM, app_permission=TEAM_MESSAGING)
async def read_card(request: web.Request) -> web.StreamResponse:
    ids = [item for item in request.match_info["cardId"].split(",") if item]
    if len(ids) == 1:
        return json_response(card_info(_card(request, ids[0], writing=False)))
    base = base_url(request)
    parts: list[tuple[str, int, JSON]] = []
    for card_id in ids:
        href = f"{base}{TM}/adaptive-cards/{card_id}"
        try:
            parts.append((href, 200, card_info(_card(request, card_id, writing=False))))
        except PlatformError as error:
            parts.append((href, error.status, error.body))
    return multi_status(parts)


@routes.put(TM + "/adaptive-cards/{cardId}")
@endpoint(RateGroup.MEDIUM, app_permission=TEAM_MESSAGING)
async def update_card(request: web.Request) -> web.StreamResponse:
    """Replaces the whole card (not a merge), as the platform does."""
    world = world_of(request)
    card = _card(request, request.match_info["cardId"], writing=True)
    card.content = _validated_card(request, await json_body(request))
    card.last_modified_time = world.now()
    post = world.posts.get(card.post_id)
    if post is not None:
        post.last_modified_time = card.last_modified_time
    return json_response(card_short_info(card))


@routes.delete(TM + "/adaptive-cards/{cardId}")
@endpoint(RateGroup.MEDIUM, app_permission=TEAM_MESSAGING)
async def delete_card(request: web.Request) -> web.StreamResponse:
    world = world_of(request)
    card = _card(request, request.match_info["cardId"], writing=True)
    del world.cards[card.id]
    world.posts.pop(card.post_id, None)
    return web.Response(status=204)
