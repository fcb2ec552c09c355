"""Commands as a person types them, through the sandbox."""

from __future__ import annotations

import logging

import aiohttp
import pytest

from tests.e2e import ADMIN_ID, Stack, settle


async def test_help_lists_the_commands(stack: Stack) -> None:
    user = await stack.control.user("Kim Park")
    chat = await stack.control.chat([user, stack.bot_id])
    await stack.control.say(chat, user, "HELP")
    await settle(stack.bot)
    [reply] = await stack.control.texts(chat, stack.bot_id)
    for command in ("help", "optin", "optout"):
        assert f"**{command}" in reply


async def test_optin_twice_says_so(stack: Stack) -> None:
    user = await stack.control.user("Kim Park")
    chat = await stack.control.chat([user, stack.bot_id])
    await stack.control.say(chat, user, "optin")
    await stack.control.say(chat, user, "opt-in")
    await settle(stack.bot)
    first, second = await stack.control.texts(chat, stack.bot_id)
    assert "You're in" in first
    assert "already opted in" in second


async def test_a_typo_gets_a_suggestion(stack: Stack) -> None:
    user = await stack.control.user("Kim Park")
    chat = await stack.control.chat([user, stack.bot_id])
    await stack.control.say(chat, user, "optn")
    await settle(stack.bot)
    [reply] = await stack.control.texts(chat, stack.bot_id)
    assert "Did you mean **optin**?" in reply
    assert "Here is what I can do" not in reply and "**optout" not in reply


async def test_a_word_that_is_nothing_like_a_command_gets_a_short_pointer(stack: Stack) -> None:
    user = await stack.control.user("Kim Park")
    chat = await stack.control.chat([user, stack.bot_id])
    await stack.control.say(chat, user, "xylophone")
    await settle(stack.bot)
    [reply] = await stack.control.texts(chat, stack.bot_id)
    assert 'I don\'t know "xylophone"' in reply and "Say **help**" in reply
    assert "**optout" not in reply


async def test_help_about_a_mistyped_command_suggests_it_alone(stack: Stack) -> None:
    user = await stack.control.user("Kim Park")
    chat = await stack.control.chat([user, stack.bot_id])
    await stack.control.say(chat, user, "help lsat")
    await settle(stack.bot)
    [reply] = await stack.control.texts(chat, stack.bot_id)
    assert "Did you mean **last**?" in reply and "**optout" not in reply


async def test_in_a_group_the_bot_answers_only_when_mentioned(stack: Stack) -> None:
    kim = await stack.control.user("Kim Park")
    sam = await stack.control.user("Sam Chen")
    group = await stack.control.chat([kim, sam, stack.bot_id], "Group", name="Sales")
    await stack.control.say(group, kim, "help")
    await settle(stack.bot)
    assert await stack.control.texts(group, stack.bot_id) == []
    await stack.control.say(group, kim, f"![:Person]({stack.bot_id}) help")
    await settle(stack.bot)
    [reply] = await stack.control.texts(group, stack.bot_id)
    assert "**optin" in reply


async def dm_with(stack: Stack, name: str = "Kim Park") -> tuple[str, str]:
    user = await stack.control.user(name)
    return user, await stack.control.chat([user, stack.bot_id])


async def last_reply(stack: Stack, chat: str, user: str, text: str) -> str:
    await stack.control.say(chat, user, text)
    await settle(stack.bot)
    return (await stack.control.texts(chat, stack.bot_id))[-1]


async def test_help_for_one_command(stack: Stack) -> None:
    user, dm = await dm_with(stack)
    reply = await last_reply(stack, dm, user, "help pause")
    assert "**pause <duration>**" in reply and "90 days" in reply


async def test_pause_and_resume(stack: Stack) -> None:
    user, dm = await dm_with(stack)
    await last_reply(stack, dm, user, "optin")
    assert "Paused until" in await last_reply(stack, dm, user, "pause 2 days")
    assert "paused until" in await last_reply(stack, dm, user, "status")
    await stack.control.call("POST", "/calls", {"ownerExtensionId": user})
    await settle(stack.bot)
    assert await stack.control.cards(dm) == []
    assert "on again" in await last_reply(stack, dm, user, "resume")
    await stack.control.call("POST", "/calls", {"ownerExtensionId": user})
    await settle(stack.bot)
    digests = [c for c in await stack.control.cards(dm) if "digest.feedback" in str(c["card"])]
    assert len(digests) == 1


async def test_pause_needs_a_sensible_duration(stack: Stack) -> None:
    user, dm = await dm_with(stack)
    await last_reply(stack, dm, user, "optin")
    assert "how long" in await last_reply(stack, dm, user, "pause forever")
    assert "at most 90 days" in await last_reply(stack, dm, user, "pause 100 days")


async def test_channel_add_needs_a_group_and_then_delivers_there(stack: Stack) -> None:
    user, dm = await dm_with(stack)
    await last_reply(stack, dm, user, "optin")
    assert "group chat" in await last_reply(stack, dm, user, "channel add")
    sam = await stack.control.user("Sam Chen")
    group = await stack.control.chat([user, sam, stack.bot_id], "Group", name="Deals")
    mention = f"![:Person]({stack.bot_id}) "
    assert "also come here" in await last_reply(stack, group, user, mention + "channel add")
    await stack.control.call("POST", "/calls", {"ownerExtensionId": user, "participants": [sam]})
    await settle(stack.bot)
    assert len([c for c in await stack.control.cards(group) if "Call from" in str(c)]) == 1
    assert "no longer" in await last_reply(stack, group, user, mention + "channel remove")


async def test_status_shows_the_connection(stack: Stack) -> None:
    user, dm = await dm_with(stack)
    reply = await last_reply(stack, dm, user, "status")
    assert "**Digests**: off" in reply and "healthy" in reply


async def test_when_ringcentral_fails_the_person_hears_it_at_once(stack: Stack) -> None:
    user, dm = await dm_with(stack)
    await stack.control.call(
        "POST", "/faults", {"errorRate": 1.0, "paths": ["/ai/ringsense/"], "methods": ["GET"]}
    )
    await stack.control.say(dm, user, "insights 123456789")
    await settle(stack.bot)
    [reply] = await stack.control.texts(dm, stack.bot_id)
    assert "not answering right now" in reply and "as soon as it works" in reply


async def test_the_bots_own_card_posts_and_persons_added_posts_are_ignored_quietly(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    """RingCentral sends PostAdded for the bot's own card posts and a `PersonsAdded` post
    when people join a chat: neither is a command, neither gets an answer or an error."""
    caplog.set_level(logging.WARNING)
    ann = await stack.control.user("Ann Adams")
    ben = await stack.control.user("Ben Brown")
    dm = await stack.control.chat([ann, stack.bot_id])
    group = await stack.control.chat([ann, stack.bot_id], "Group", name="Team room")
    await settle(stack.bot)
    await stack.control.say(dm, ann, "settings")  # the bot answers with a card
    await settle(stack.bot)
    before_dm = await stack.control.posts(dm)
    before_group = await stack.control.posts(group)
    await stack.control.call("POST", f"/chats/{group}/members", {"add": [ben]})
    await settle(stack.bot)
    await settle(stack.bot)
    after_group = await stack.control.posts(group)
    # only the platform's PersonsAdded post was added, nothing from the bot
    new = [p for p in after_group if p not in before_group]
    assert [p["type"] for p in new] == ["PersonsAdded"]
    assert await stack.control.posts(dm) == before_dm
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_ringsense_domain_the_platform_refuses_is_reported_not_fatal(
    stack: Stack,
) -> None:
    """The bot subscribes to every RingSense domain by default; one the platform disables
    (here: the app lost its RingSense permission) is shown to administrators in `status`,
    and the rest of the bot keeps working."""
    world = stack.sandbox.world
    world.app_scopes = tuple(s for s in world.app_scopes if s != "RingSense")
    await stack.bot.stop()
    for subscription_id in list(world.subscriptions):
        if world.subscriptions[subscription_id].owner_id != stack.bot_id:
            del world.subscriptions[subscription_id]
    await stack.restart_bot(already_stopped=True)
    admin = await stack.control.user("Ada Admin", extensionId=ADMIN_ID)
    dm = await stack.control.chat([admin, stack.bot_id])
    await stack.control.say(dm, admin, "status")
    await settle(stack.bot)
    [reply] = await stack.control.texts(dm, stack.bot_id)
    assert "RingSense domains refused" in reply
    for domain in ("pbx", "rcv", "rcx", "ms-teams", "nice-incontact"):
        assert domain in reply
    assert "RingSense permission" in reply or "[RingSense]" in reply


async def test_events_for_a_domain_or_account_not_subscribed_are_ignored_and_logged(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    owner = await stack.control.user("Olivia Owner")
    dm = await stack.control.chat([owner, stack.bot_id])
    await stack.control.say(dm, owner, "optin")
    await settle(stack.bot)
    call = await stack.control.call("POST", "/calls", {"ownerExtensionId": owner})
    await settle(stack.bot)
    [digest] = await stack.control.cards(dm)
    record = stack.sandbox.world.ringsense_record("809640001", "pbx", str(call["sourceRecordId"]))
    forged_uuid = 0
    async with aiohttp.ClientSession() as session:
        for account, domain in (("999999999", "pbx"), ("809640001", "zoom")):
            forged_uuid += 1
            body = {**record, "domain": domain, "sourceRecordId": f"99{forged_uuid}"}
            payload = {
                "uuid": f"not-ours-{forged_uuid}",
                "event": f"/ai/ringsense/v1/public/accounts/{account}/domains/{domain}/insights",
                "timestamp": "2026-11-30T12:00:00.000Z",
                "subscriptionId": "x",
                "ownerId": "62288320001",
                "body": body,
            }
            async with session.post(
                f"{stack.config.public_url}/webhooks/ringcentral",
                json=payload,
                headers={"Verification-Token": stack.config.verification_token},
            ) as response:
                assert response.status == 200
    await settle(stack.bot)
    assert len(await stack.control.cards(dm)) == 1
    assert digest["cardId"] == (await stack.control.cards(dm))[0]["cardId"]
    assert "not subscribed" in caplog.text


async def test_resume_says_how_many_calls_were_skipped_and_offers_them(stack: Stack) -> None:
    user, dm = await dm_with(stack)
    sam = await stack.control.user("Sam Chen")
    await last_reply(stack, dm, user, "optin")
    await last_reply(stack, dm, user, "pause 2 days")
    for _ in range(2):
        await stack.control.call(
            "POST", "/calls", {"ownerExtensionId": user, "participants": [sam]}
        )
    await settle(stack.bot)
    assert await stack.control.cards(dm) == []
    reply = await last_reply(stack, dm, user, "resume")
    assert "on again" in reply and "2 calls" in reply
    [offer] = await stack.control.cards(dm)
    assert str(offer["card"]).count("digest.open") == 2
    assert "not paused" in await last_reply(stack, dm, user, "resume")
    assert len(await stack.control.cards(dm)) == 1


async def test_resume_after_a_quiet_pause_skips_nothing(stack: Stack) -> None:
    user, dm = await dm_with(stack)
    await last_reply(stack, dm, user, "optin")
    await last_reply(stack, dm, user, "pause 2h")
    reply = await last_reply(stack, dm, user, "resume")
    assert "on again" in reply and "skipped" not in reply
    assert await stack.control.cards(dm) == []
