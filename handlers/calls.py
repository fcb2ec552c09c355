"""Asking for calls: `insights`, `last`, and the buttons on digest and list cards.

Every path that shows call data goes through `show_calls`, which applies the rules of
bot/access.py: only entitled people see a call, and a group chat where someone is not
entitled gets the answer in the asker's direct messages instead.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from zoneinfo import ZoneInfo

from bot.access import NOT_VISIBLE, Identity, everyone_may_see, may_see
from bot.cards import (
    ACTION_DIGEST_FEEDBACK,
    ACTION_DIGEST_OPEN,
    ACTION_DIGEST_TRANSCRIPT,
    DATA_CALL_KEY,
    DATA_VERDICT,
    FEEDBACK_VERDICTS,
    calls_card,
    feedback_dialog,
    feedback_result,
    message_dialog,
    render_digest,
    transcript_card,
)
from bot.cards.share import render_direct_digest
from bot.quoting import for_log, quote_for_chat
from bot.rc import RingCentralClient, RingCentralError, RingCentralNotFound
from bot.ringsense import CallInsights, InsightsFormatError
from bot.router import Context, Router, chat, direct
from bot.speakers import named_from_directory
from handlers.connect import ringsense_reader
from handlers.digests import call_key, remember_call

log = logging.getLogger(__name__)

router = Router("calls")

RINGSENSE_LINK = re.compile(r"^https://[A-Za-z0-9.-]*ringcentral\.com/\S*calls/[\w-]+/?$")
RECORDING_ID = re.compile(r"^\d{4,30}$")
SESSION_ID = re.compile(r"^s-[A-Za-z0-9-]{4,120}$")
LAST_DEFAULT, LAST_MAX = 5, 20


def timezone_for(ctx: Context) -> ZoneInfo:
    default = ctx.services.config.timezone
    return ctx.settings.zone(default) if ctx.settings else default


async def answer_where_all_may_see(
    ctx: Context, may_see_it: Callable[[Identity | None], bool]
) -> dict[str, str]:
    """The chat itself when every member may see the answer, else the asker's direct
    messages (and a word in the chat saying so).

    Each member is judged as (account, extension) confirmed with RingCentral; a member whose
    account cannot be confirmed as the install's (a guest, another company) is judged as
    nobody, so a chat shared with another account gets the answer by direct message."""
    chat_id = ctx.chat_id
    asker = ctx.actor_id
    assert asker is not None
    if chat_id is None:
        return direct(asker)
    if await ctx.services.is_direct_chat(ctx.bot, chat_id):
        return chat(chat_id)
    members = await ctx.services.chat_member_ids(ctx.bot, chat_id)
    people = [await ctx.services.identity_of(ctx.bot, member) for member in members]
    if all(may_see_it(person) for person in people):
        return chat(chat_id)
    if ctx.message is not None:
        await ctx.reply(
            "I sent my answer to you in a direct message: not everyone here may see it."
        )
    return direct(asker)


async def answer_where_everyone_may_see(
    ctx: Context, calls: Sequence[CallInsights]
) -> dict[str, str]:
    admins, home = ctx.services.config.admins, ctx.services.service_account_id
    return await answer_where_all_may_see(
        ctx, lambda person: everyone_may_see([person], calls, admins, home)
    )


async def show_calls(ctx: Context, calls: Sequence[tuple[str, CallInsights]]) -> None:
    """Post the digest of each call the asker may see; refuse politely when there is none."""
    admins, home = ctx.services.config.admins, ctx.services.service_account_id
    asker = await ctx.actor_identity()
    visible = [(key, c) for key, c in calls if may_see(asker, c, admins, home)]
    if not visible:
        await _refuse(ctx)
        return
    destination = await answer_where_everyone_may_see(ctx, [c for _, c in visible])
    sections = ctx.settings.sections if ctx.settings else None
    for key, insights in visible:
        insights = await _with_directory_names(ctx, insights)
        card = render_digest(
            ctx.services.cards, insights, timezone_for(ctx), sections, call_key=key
        )
        await ctx.send_card(destination, card)


async def _with_directory_names(ctx: Context, call: CallInsights) -> CallInsights:
    """Colleagues RingSense left unnamed, named from their account's directory."""
    services = ctx.services
    api = services.ringsense_api(call.account_id)
    return await named_from_directory(services.speaker_directory, api, call)


async def _refuse(ctx: Context) -> None:
    if ctx.submission is not None:
        ctx.response = message_dialog(ctx.services.cards, "Not available", NOT_VISIBLE)
    else:
        await ctx.reply(NOT_VISIBLE)


@router.command(
    "insights",
    summary="the digest of one call",
    usage="insights <recording id | telephony session id | RingSense link>",
    aliases=("call", "show"),
    details=(
        "A recording id (digits) shows that recording's digest. A telephony session id "
        "(starts with `s-`) shows one digest per recorded leg of the call. A RingSense link "
        "works for calls I have already seen."
    ),
)
async def insights_command(ctx: Context) -> None:
    reference = ctx.args.strip().strip("<>")
    if not reference:
        await ctx.reply(
            "Which call? Say **insights** and a recording id, a telephony session id "
            "(it starts with `s-`) or a RingSense link."
        )
        return
    if await ctx.actor_identity() is None:
        # Not confirmed as a person of this install's account: nothing is read on their
        # behalf, and the answer is the one anybody gets for a call they may not see.
        await _refuse(ctx)
        return
    api = await ringsense_reader(ctx)
    if api is None:
        return
    try:
        calls = await find_calls(ctx, api, reference)
    except ValueError as err:
        await ctx.reply(str(err))
        return
    await show_calls(ctx, calls)


async def find_calls(
    ctx: Context, api: RingCentralClient, reference: str
) -> list[tuple[str, CallInsights]]:
    """The calls a reference names, of the account of the install the question came
    through only, read with `api`: that account's own RingSense reader."""
    services = ctx.services
    account = ctx.bot.account_id
    if RINGSENSE_LINK.match(reference):
        stored = await services.storage.call_by_ringsense_url(reference.rstrip("/"), account)
        if stored is None:
            stored = await services.storage.call_by_ringsense_url(reference, account)
        if stored is None:
            return []
        return [(stored[0], CallInsights.from_api(stored[1], account_id=account))]
    if not (SESSION_ID.match(reference) or RECORDING_ID.match(reference)):
        raise ValueError(
            f'"{quote_for_chat(reference[:80])}" does not look like a recording id (digits), '
            "a telephony session id (`s-…`) or a RingSense link."
        )
    domains = services.config.ringcentral.ringsense_domains
    if SESSION_ID.match(reference):
        for domain in domains:
            try:
                records = await api.get_session_insights(domain, reference)
            except RingCentralNotFound:
                continue
            found = [await remember_call(ctx, record, account_id=account) for record in records]
            return [(call_key(c), c) for c in found if c is not None]
        return []
    if RECORDING_ID.match(reference):
        for domain in domains:
            try:
                record = await api.get_record_insights(domain, reference)
            except RingCentralNotFound:
                continue
            found_call = await remember_call(ctx, record, account_id=account)
            return [(call_key(found_call), found_call)] if found_call else []
    return []


@router.command(
    "last",
    summary="my last analysed calls, newest first",
    usage="last [n]",
    aliases=("recent", "calls"),
    details=f"Shows up to {LAST_MAX} calls (default {LAST_DEFAULT}) you owned or took part in.",
)
async def last_command(ctx: Context) -> None:
    count = LAST_DEFAULT
    if ctx.args:
        if not ctx.args.isdigit() or not 1 <= int(ctx.args) <= LAST_MAX:
            await ctx.reply(f"Say **last** and a number from 1 to {LAST_MAX}, e.g. `last 5`.")
            return
        count = int(ctx.args)
    asker = await ctx.actor_identity()
    if asker is not None and await ringsense_reader(ctx) is None:
        return
    stored = (
        await ctx.services.storage.calls_of(asker.account_id, asker.extension_id, count)
        if asker is not None
        else []
    )
    calls: list[tuple[str, CallInsights]] = []
    for key, body in stored:
        try:
            calls.append((key, CallInsights.from_api(body, account_id=ctx.bot.account_id)))
        except InsightsFormatError:
            log.warning("stored call %s is unreadable", for_log(key))
    admins, home = ctx.services.config.admins, ctx.services.service_account_id
    calls = [(k, c) for k, c in calls if may_see(asker, c, admins, home)]
    if not calls:
        await ctx.reply(_no_calls_yet(ctx))
        return
    destination = await answer_where_everyone_may_see(ctx, [c for _, c in calls])
    heading = f"Your last {len(calls)} analysed call{'s' if len(calls) != 1 else ''}"
    card = calls_card(ctx.services.cards, calls, timezone_for(ctx), heading=heading)
    await ctx.send_card(destination, card)


def _no_calls_yet(ctx: Context) -> str:
    """An empty `last`: say why, and what to do about it, instead of an empty card."""
    if ctx.settings is not None and ctx.settings.opted_in:
        return (
            "There are no analysed calls of yours yet. Once RingSense analyses a recorded "
            "call you took part in, it shows up here and I send you its digest."
        )
    return (
        "There are no analysed calls of yours yet. Say **optin** and I'll send you a "
        "digest after each of your recorded calls that RingSense analyses."
    )


async def _call_from_button(
    ctx: Context, *, with_transcript: bool = False
) -> tuple[str, CallInsights] | None:
    assert ctx.submission is not None
    key = ctx.submission.data.get(DATA_CALL_KEY, "")
    account = ctx.bot.account_id
    storage = ctx.services.storage
    body = (
        await storage.call_of_account(key, account, with_transcript=with_transcript)
        if key
        else None
    )
    if body is None:
        return None
    return key, CallInsights.from_api(body, account_id=account)


async def _visible_call_from_button(
    ctx: Context, *, with_transcript: bool = False
) -> tuple[str, CallInsights] | None:
    """The call a button names, if the person who pressed it may see it (with its
    transcript, stored apart, only when asked)."""
    found = await _call_from_button(ctx, with_transcript=with_transcript)
    if found is None:
        return None
    services = ctx.services
    presser = await ctx.actor_identity()
    if not may_see(presser, found[1], services.config.admins, services.service_account_id):
        return None
    return found


@router.card_action(ACTION_DIGEST_OPEN)
async def open_digest(ctx: Context) -> None:
    found = await _call_from_button(ctx)
    await show_calls(ctx, [found] if found else [])


@router.card_action(ACTION_DIGEST_TRANSCRIPT)
async def send_transcript(ctx: Context) -> None:
    """The transcript goes to the person who pressed, and only if they may see the call."""
    found = await _visible_call_from_button(ctx, with_transcript=True)
    presser = ctx.actor_id
    assert presser is not None
    if found is None:
        await _refuse(ctx)
        return
    call = await _with_directory_names(ctx, found[1])
    card = transcript_card(ctx.services.cards, call, timezone_for(ctx))
    await ctx.send_card(direct(presser), card)
    ctx.response = message_dialog(
        ctx.services.cards, "Transcript sent", "The transcript is in your direct messages with me."
    )


@router.card_action(ACTION_DIGEST_FEEDBACK)
async def record_feedback(ctx: Context) -> None:
    """Only someone who may see the call may judge it; anyone else is refused like Open.

    The verdict then shows on the pressed card itself, updated in place through the
    outbox: "You found this helpful" where only the presser reads the card (their direct
    chat), a count that names nobody where a chat shares it. When the card cannot be
    confirmed as this call's digest, the person is thanked in a dialog instead."""
    assert ctx.submission is not None and ctx.actor_id is not None
    key = ctx.submission.data.get(DATA_CALL_KEY, "")
    verdict = ctx.submission.data.get(DATA_VERDICT, "")
    if not key or verdict not in FEEDBACK_VERDICTS:
        ctx.response = message_dialog(
            ctx.services.cards, "Not recorded", "That button did not say what you thought."
        )
        return
    found = await _visible_call_from_button(ctx)
    if found is None:
        await _refuse(ctx)
        return
    await ctx.services.storage.save_feedback(key, ctx.actor_id, verdict)
    if not await _show_feedback_on_the_card(ctx, *found):
        ctx.response = feedback_dialog(ctx.services.cards, verdict)


async def _show_feedback_on_the_card(ctx: Context, key: str, insights: CallInsights) -> bool:
    """Re-render the pressed digest with its feedback line and queue the update; False when
    the card is not known to be this call's digest (then nothing is changed)."""
    assert ctx.submission is not None and ctx.actor_id is not None
    card_id, chat_id = ctx.submission.card_id, ctx.chat_id
    if not card_id or not chat_id:
        return False
    try:
        pressed = await ctx.bot.api.get_card(card_id)
    except RingCentralError as err:
        log.info("feedback: card %s not readable (%s)", for_log(card_id), err.status)
        return False
    if not _carries_call_key(pressed, key):
        log.warning("feedback: card %s is not the digest of %s", for_log(card_id), for_log(key))
        return False
    services = ctx.services
    try:
        personal = await services.is_direct_chat(ctx.bot, chat_id)
    except RingCentralError:
        personal = False  # when in doubt, the card is read by a whole chat
    verdicts = await services.storage.feedback_for(key)
    if personal:
        settings = ctx.settings
    else:
        settings = await services.storage.user_settings(insights.owner_extension_id)
    # In the presser's direct chat the card stays their own copy, with "Share to…".
    draw = render_direct_digest if personal else render_digest
    card = draw(
        services.cards,
        insights,
        settings.zone(services.config.timezone) if settings else services.config.timezone,
        settings.sections if settings else None,
        call_key=key,
        feedback=feedback_result(verdicts, reader=ctx.actor_id if personal else None),
    )
    await ctx.update_card(card_id, card)
    return True


def _carries_call_key(node: object, key: str) -> bool:
    """Whether a card holds a button for this call (digests carry the key in their data)."""
    if isinstance(node, Mapping):
        if node.get(DATA_CALL_KEY) == key:
            return True
        return any(_carries_call_key(value, key) for value in node.values())
    if isinstance(node, list):
        return any(_carries_call_key(value, key) for value in node)
    return False
