"""Share after review: "Share to…" on a digest in a direct chat lists the group chats and
teams where the bot and the presser both are and everyone may see the call; a press on one
posts the digest there (after a confirmation for a call with people from outside)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from bot.access import NOT_VISIBLE, Identity, everyone_may_see, is_admin, may_see
from bot.cards import DATA_CALL_KEY, feedback_result, message_dialog, render_digest
from bot.cards.share import (
    ACTION_SHARE,
    ACTION_SHARE_TO,
    CONFIRMED,
    DATA_CHAT_ID,
    DATA_CONFIRMED,
    share_card,
)
from bot.quoting import for_log
from bot.rc import RingCentralNotFound, RingCentralPermissionError
from bot.ringsense import CallInsights, InsightsFormatError
from bot.router import Context, Router, chat, direct, require_confirmed_author
from handlers.calls import timezone_for

log = logging.getLogger(__name__)

router = Router("share")

SHARE_CHAT_TYPES = ("Group", "Team")
MAX_CHATS = 10
"""Chats listed on one share card (the most recently active first)."""


async def _visible_call(ctx: Context) -> tuple[str, CallInsights, Identity] | None:
    """The call a button names, with the presser, if the presser may see it."""
    assert ctx.submission is not None
    key = ctx.submission.data.get(DATA_CALL_KEY, "")
    account = ctx.bot.account_id
    body = await ctx.services.storage.call_of_account(key, account) if key else None
    presser = await ctx.actor_identity()
    if body is None or presser is None:
        return None
    try:
        call = CallInsights.from_api(body, account_id=account)
    except InsightsFormatError:
        return None
    services = ctx.services
    if not may_see(presser, call, services.config.admins, services.service_account_id):
        return None
    return key, call, presser


def _member_ids(info: Mapping[str, Any], bot_id: str) -> set[str]:
    members = info.get("members")
    ids = {
        str(m.get("id") if isinstance(m, Mapping) else m)
        for m in (members if isinstance(members, list) else [])
    }
    ids.discard(bot_id)
    ids.discard("None")
    return ids


async def _everyone_may_see(ctx: Context, member_ids: set[str], call: CallInsights) -> bool:
    """Every member confirmed as a person of the install's account and entitled to the
    call; anyone RingCentral can't place counts as nobody, so the answer is no.

    A member who could not be entitled even as a confirmed colleague (not on the call, not
    an administrator) settles it at once, before anyone is looked up: each lookup spends
    the account's rate limit, and most chats have such a member."""
    services = ctx.services
    admins, home = services.config.admins, services.service_account_id
    if not member_ids:
        return False
    entitled = call.entitled_extension_ids()
    for member in member_ids:
        as_colleague = Identity(ctx.bot.account_id, member)
        if member not in entitled and not is_admin(as_colleague, admins, home):
            return False
    for member in sorted(member_ids):
        person = await services.identity_of(ctx.bot, member)
        if not everyone_may_see([person], [call], admins, home):
            return False
    return True


async def _shareable_chats(
    ctx: Context, presser: Identity, call: CallInsights
) -> tuple[list[tuple[str, str]], int]:
    """`(chat id, name)` of the group chats and teams of the bot that the presser is in and
    where everyone may see the call (most recently active first, at most `MAX_CHATS`), and
    how many chats with the presser were left out because someone there may not."""
    fits: list[tuple[str, str]] = []
    skipped = 0
    for chat_type in SHARE_CHAT_TYPES:
        for info in await ctx.bot.api.list_chats(chat_type):
            members = _member_ids(info, ctx.bot.extension_id)
            if presser.extension_id not in members:
                continue
            if len(fits) < MAX_CHATS and await _everyone_may_see(ctx, members, call):
                fits.append((str(info.get("id")), str(info.get("name") or "")))
            else:
                skipped += 1
    return fits, skipped


@router.card_action(ACTION_SHARE)
async def offer_chats(ctx: Context) -> None:
    """Send the presser a card listing where the digest can go."""
    found = await _visible_call(ctx)
    if found is None:
        ctx.response = message_dialog(ctx.services.cards, "Not available", NOT_VISIBLE)
        return
    key, call, presser = found
    chats, skipped = await _shareable_chats(ctx, presser, call)
    card = share_card(ctx.services.cards, call, key, chats, skipped=skipped)
    await ctx.send_card(direct(presser.extension_id), card)
    ctx.response = message_dialog(
        ctx.services.cards,
        "Share to…",
        "I sent you the chats where you can share this call, in our direct messages.",
    )


@router.card_action(ACTION_SHARE_TO)
async def share_to_chat(ctx: Context) -> None:
    """Post the digest to the chosen chat after checking again, now, that the presser and
    the bot are there and everyone there may see the call; ask first when the call had
    people from outside the company. The card pressed is redrawn with the result."""
    assert ctx.submission is not None
    found = await _visible_call(ctx)
    if found is None:
        ctx.response = message_dialog(ctx.services.cards, "Not available", NOT_VISIBLE)
        return
    await require_confirmed_author(ctx)
    key, call, presser = found
    chat_id = ctx.submission.data.get(DATA_CHAT_ID, "")
    try:
        info = await ctx.services.chat_info(ctx.bot, chat_id) if chat_id else {}
    except (RingCentralNotFound, RingCentralPermissionError):
        info = {}
    members = _member_ids(info, ctx.bot.extension_id)
    name = str(info.get("name") or "that chat")
    problem = None
    if not info or str(info.get("type")) not in SHARE_CHAT_TYPES:
        problem = "Not shared: I am not in that chat (or it is not a group chat or team)."
    elif presser.extension_id not in members:
        problem = "Not shared: you are not in that chat."
    elif not await _everyone_may_see(ctx, members, call):
        problem = (
            f"Not shared to {name}: not everyone there may see this call (only its owner, "
            "the colleagues on it and administrators)."
        )
    if problem is not None:
        log.info("share of %s to chat %s refused", for_log(key), for_log(chat_id))
        await _redraw(ctx, call, key, presser, notice=problem)
        return
    if call.is_external and ctx.submission.data.get(DATA_CONFIRMED) != CONFIRMED:
        await _redraw(
            ctx,
            call,
            key,
            presser,
            warning=(f"This call had people from outside your company. Share it to {name} anyway?"),
            confirm_chat=(chat_id, name),
        )
        return
    sections = ctx.settings.sections if ctx.settings else None
    verdicts = await ctx.services.storage.feedback_for(key)
    card = render_digest(
        ctx.services.cards,
        call,
        timezone_for(ctx),
        sections,
        call_key=key,
        feedback=feedback_result(verdicts, reader=None),
    )
    await ctx.send_card(chat(chat_id), card, card_key=key)
    await _redraw(ctx, call, key, presser, notice=f"Shared to {name}.")


async def _redraw(
    ctx: Context, call: CallInsights, key: str, presser: Identity, **options: Any
) -> None:
    assert ctx.submission is not None
    chats, skipped = await _shareable_chats(ctx, presser, call)
    card = share_card(ctx.services.cards, call, key, chats, skipped=skipped, **options)
    if ctx.submission.card_id:
        await ctx.update_card(ctx.submission.card_id, card)
    else:
        await ctx.send_card(direct(presser.extension_id), card)
