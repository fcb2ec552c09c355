"""Which posts become commands, and what an unknown command gets back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.cards import CardRenderer
from bot.config import load_config
from bot.events import Notification
from bot.rc import RingCentralNotFound
from bot.router import Context, Dispatcher, Router
from bot.services import BotInstall, Services
from bot.storage import Storage
from tests.bot.test_config import GOOD_ENV
from tests.conftest import PROJECT_ROOT, load_fixture

BOT_ID = "900"
DIRECT_CHAT = "111"
GROUP_CHAT = "222"


class PostedMessages:
    """What RingCentral would answer for `GET` of a post: the posts people really wrote.
    The dispatcher reads a message back before acting on it."""

    def __init__(self) -> None:
        self.posts: dict[str, dict[str, str]] = {}

    async def get_post(self, chat_id: str, post_id: str) -> dict[str, str]:
        post = self.posts.get(post_id)
        if post is None or post["groupId"] != chat_id:
            raise RingCentralNotFound(
                404, "CMN-102", "Resource for parameter [postId] is not found"
            )
        return post


PLATFORM = PostedMessages()


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    config = load_config(PROJECT_ROOT / "bot.config.yaml", environ=GOOD_ENV)
    storage = await Storage.open(tmp_path / "bot.sqlite3")
    services = Services(config, storage, None, CardRenderer(), config.token_cipher())  # type: ignore[arg-type]
    services.installs[BOT_ID] = BotInstall(BOT_ID, "1", PLATFORM)  # type: ignore[arg-type]
    services.remember_chat_type(DIRECT_CHAT, "Direct")
    services.remember_chat_type(GROUP_CHAT, "Group")
    yield services
    await storage.close()


def post(
    text: str,
    *,
    chat: str = DIRECT_CHAT,
    creator: str = "42",
    mentions: list[dict[str, str]] | None = None,
    uuid: str = "u1",
    forged: bool = False,
) -> Notification:
    """A PostAdded notification; unless `forged`, the post also exists at RingCentral."""
    payload: dict[str, Any] = load_fixture("webhook-post-added.json")
    payload["uuid"] = uuid
    payload["ownerId"] = BOT_ID
    post_id = f"post-{uuid}"
    payload["body"].update(
        id=post_id, text=text, groupId=chat, creatorId=creator, mentions=mentions
    )
    if not forged:
        PLATFORM.posts[post_id] = {"id": post_id, "groupId": chat, "creatorId": creator}
    return Notification.parse(payload)


def make_dispatcher(calls: list[tuple[str, str]]) -> Dispatcher:
    router = Router("test")

    @router.command("insights", summary="show a call", aliases=("call",))
    async def insights(ctx: Context) -> None:
        calls.append(("insights", ctx.args))

    @router.command("optin", summary="opt in")
    async def optin(ctx: Context) -> None:
        calls.append(("optin", ctx.args))

    return Dispatcher([router])


async def replies(services: Services) -> list[str]:
    return [item.message["text"] for item in await services.storage.due_outbox(100)]


async def test_in_a_direct_chat_every_message_is_a_command(services: Services) -> None:
    calls: list[tuple[str, str]] = []
    await make_dispatcher(calls).dispatch(services, post("INSIGHTS  2728084995017 "))
    await make_dispatcher(calls).dispatch(services, post("call s-abc", uuid="u2"))
    assert calls == [("insights", "2728084995017"), ("insights", "s-abc")]


async def test_a_message_ringcentral_does_not_know_gets_no_answer(services: Services) -> None:
    """A forged PostAdded (right Verification-Token, no such post) changes and says nothing."""
    calls: list[tuple[str, str]] = []
    dispatcher = make_dispatcher(calls)
    await dispatcher.dispatch(services, post("optin", uuid="forged-1", forged=True))
    await dispatcher.dispatch(services, post("helo", uuid="forged-2", forged=True))
    assert calls == [] and await replies(services) == []


async def test_in_a_group_only_mentions_of_the_bot_count(services: Services) -> None:
    calls: list[tuple[str, str]] = []
    dispatcher = make_dispatcher(calls)
    await dispatcher.dispatch(services, post("optin", chat=GROUP_CHAT))
    await dispatcher.dispatch(
        services,
        post(
            "![:Person](7) optin",
            chat=GROUP_CHAT,
            uuid="u2",
            mentions=[{"id": "7", "type": "Person", "name": "K"}],
        ),
    )
    assert calls == []
    await dispatcher.dispatch(
        services,
        post(
            f"![:Person]({BOT_ID}) optin",
            chat=GROUP_CHAT,
            uuid="u3",
            mentions=[{"id": BOT_ID, "type": "Person", "name": "Bot"}],
        ),
    )
    assert calls == [("optin", "")]


async def test_the_bots_own_posts_are_ignored(services: Services) -> None:
    calls: list[tuple[str, str]] = []
    await make_dispatcher(calls).dispatch(services, post("optin", creator=BOT_ID))
    assert calls == []
    assert await replies(services) == []


async def test_a_typo_gets_the_closest_match_alone(services: Services) -> None:
    calls: list[tuple[str, str]] = []
    await make_dispatcher(calls).dispatch(services, post("insigts 123"))
    [text] = await replies(services)
    assert calls == []
    assert text == 'I don\'t know "insigts". Did you mean **insights**?'


async def test_a_bare_word_far_from_any_command_points_to_help(services: Services) -> None:
    await make_dispatcher([]).dispatch(services, post("zebra"))
    [text] = await replies(services)
    assert text == 'I don\'t know "zebra". Say **help** to see what I can do.'


async def test_replies_to_a_redelivered_post_are_queued_once(services: Services) -> None:
    dispatcher = make_dispatcher([])
    for _ in range(3):
        await dispatcher.dispatch(services, post("hello there"))
    assert len(await replies(services)) == 1


async def test_a_command_word_registered_twice_is_refused() -> None:
    first, second = Router("a"), Router("b")

    async def handler(ctx: Context) -> None:
        return None

    first.command("status", summary="x")(handler)
    second.command("stat", summary="y", aliases=("status",))(handler)
    with pytest.raises(ValueError, match="status"):
        Dispatcher([first, second])
    with pytest.raises(ValueError, match=r"(?i)again"):
        first.command("again", summary="z", aliases=("AGAIN",))(handler)
