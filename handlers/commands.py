"""Chat commands about the person's own digests: help, opting in and out, pausing,
channels and status."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bot.access import is_admin
from bot.cards import SECTION_LABELS, calls_card, format_start_time
from bot.quoting import quote_for_chat
from bot.rc import RingCentralError
from bot.ringsense import CallInsights, InsightsFormatError
from bot.router import Context, Router, direct, require_confirmed_author
from bot.settings import SCOPE_ALL, SCOPE_OWNED, UserSettings
from handlers.connect import ringsense_status_line

router = Router("commands")

RINGSENSE_DOMAIN_IN_FILTER = re.compile(r"^/ai/ringsense/v1/public/accounts/[^/]+/domains/([^/]+)/")

MAX_PAUSE = timedelta(days=90)
_DURATION = re.compile(
    r"^(?:for\s+)?(\d{1,4})\s*(m|min|mins|minutes?|h|hrs?|hours?|d|days?|w|wks?|weeks?)$"
)
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """`30m`, `2h`, `3 days`, `1 week` → a timedelta; ValueError with a helpful message."""
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise ValueError(
            "Tell me how long, e.g. **pause 2h**, **pause 3 days** or **pause 1 week**."
        )
    amount = int(match.group(1))
    duration = timedelta(seconds=amount * _UNIT_SECONDS[match.group(2)[0]])
    if duration <= timedelta(0):
        raise ValueError("The pause must be longer than that.")
    if duration > MAX_PAUSE:
        raise ValueError("I can pause for at most 90 days. Say **optout** to stop for good.")
    return duration


async def _save(ctx: Context, settings: UserSettings) -> UserSettings:
    """Store what this command changed (only that: another command of the same person may
    be changing other settings at the same moment)."""
    if settings.account_id is None and ctx.install is not None:
        settings = replace(settings, account_id=ctx.install.account_id)
    await ctx.services.storage.save_settings(settings, before=ctx.settings)
    ctx.settings = settings
    return settings


def _settings(ctx: Context) -> UserSettings:
    assert ctx.settings is not None, "load_actor_settings middleware runs first"
    return ctx.settings


@router.command(
    "help",
    summary="what I can do",
    usage="help [command]",
    aliases=("?", "hi", "hello", "commands"),
)
async def show_help(ctx: Context) -> None:
    dispatcher = ctx.dispatcher
    assert dispatcher is not None
    if ctx.args:
        word = ctx.args.split()[0]
        spec = dispatcher.command(word)
        if spec is None:
            await ctx.reply(dispatcher.unknown_command_reply(word))
            return
        lines = [f"**{spec.usage}**: {spec.summary}."]
        if spec.details:
            lines.append(spec.details)
        if spec.aliases:
            lines.append("Also: " + ", ".join(f"**{a}**" for a in spec.aliases))
        await ctx.reply("\n\n".join(lines))
        return
    await ctx.reply(
        "I post a digest of your recorded calls once RingSense has analysed them: summary, "
        "next steps, highlights and AI score.\n\n" + dispatcher.help_text()
    )


_SCOPE_WORDS = {
    "all": SCOPE_ALL,
    "any": SCOPE_ALL,
    "every": SCOPE_ALL,
    "participant": SCOPE_ALL,
    "mine": SCOPE_OWNED,
    "own": SCOPE_OWNED,
    "owned": SCOPE_OWNED,
}
_SCOPE_TEXT = {
    SCOPE_OWNED: "calls you own",
    SCOPE_ALL: "calls you own or take part in",
}


@router.command(
    "optin",
    summary="send me a digest after each of my analysed calls",
    usage="optin [all | mine]",
    aliases=("opt-in", "start", "subscribe"),
    details=(
        "**optin all**: also a copy of a colleague's call you took part in. "
        "**optin mine**: only the calls you own (the default)."
    ),
)
async def opt_in(ctx: Context) -> None:
    settings = _settings(ctx)
    word = ctx.args.strip().lower()
    scope = _SCOPE_WORDS.get(word, settings.digest_scope) if word else settings.digest_scope
    if word and word not in _SCOPE_WORDS:
        await ctx.reply(
            "Say **optin all** for the calls you own or take part in, or **optin mine** for "
            "the calls you own."
        )
        return
    already = settings.opted_in and not settings.is_paused()
    if already and scope == settings.digest_scope:
        await ctx.reply(
            f"You are already opted in ({_SCOPE_TEXT[scope]}). Say **optout** to stop the digests."
        )
        return
    await _save(ctx, replace(settings, opted_in=True, paused_until=None, digest_scope=scope))
    if already:
        await ctx.reply(f"Done: you now get digests of {_SCOPE_TEXT[scope]}.")
        return
    await ctx.reply(
        f"You're in. After each of the {_SCOPE_TEXT[scope]} that RingSense analyses, I'll "
        "send you its digest in a direct message. Say **optout** to stop."
    )


@router.command(
    "optout", summary="stop sending me digests", aliases=("opt-out", "stop", "unsubscribe")
)
async def opt_out(ctx: Context) -> None:
    await require_confirmed_author(ctx)
    await _save(ctx, replace(_settings(ctx), opted_in=False))
    await ctx.reply("Done: no more digests. Say **optin** whenever you want them back.")


@router.command(
    "pause",
    summary="no digests for a while",
    usage="pause <duration>",
    aliases=("snooze", "mute"),
    details="For example `pause 2h`, `pause 3 days`, `pause 1 week` (at most 90 days).",
)
async def pause(ctx: Context) -> None:
    settings = _settings(ctx)
    if not settings.opted_in:
        await ctx.reply(
            "You are not getting digests, so there is nothing to pause. Say **optin** to start."
        )
        return
    try:
        duration = parse_duration(ctx.args)
    except ValueError as err:
        await ctx.reply(str(err))
        return
    until = datetime.now(UTC) + duration
    settings = await _save(ctx, replace(settings, paused_until=until))
    shown = format_start_time(until, settings.zone(ctx.services.config.timezone))
    await ctx.reply(f"Paused until {shown}. Say **resume** to start again sooner.")


@router.command("resume", summary="end a pause", aliases=("unpause", "unmute"))
async def resume(ctx: Context) -> None:
    """End the pause, say how many digests it held back and offer those calls (each with
    its Open button, which shows the digest only to someone who may see it)."""
    settings = _settings(ctx)
    if not settings.is_paused():
        await ctx.reply("Your digests are not paused.")
        return
    settings = await _save(ctx, replace(settings, paused_until=None))
    asker = await ctx.actor_identity()
    skipped = (
        await ctx.services.storage.take_skipped_digests(asker.account_id, asker.extension_id)
        if asker is not None
        else []
    )
    calls = []
    for key, body in skipped:
        try:
            calls.append(
                (key, CallInsights.from_api(body, account_id=asker.account_id if asker else None))
            )
        except InsightsFormatError:
            continue
    if not calls:
        await ctx.reply("Welcome back: your digests are on again.")
        return
    count = f"{len(calls)} call{'' if len(calls) == 1 else 's'}"
    await ctx.reply(
        f"Welcome back: your digests are on again. While you were paused I skipped {count}: "
        "here they are, open any of them for its digest."
    )
    assert ctx.actor_id is not None
    card = calls_card(
        ctx.services.cards,
        calls,
        settings.zone(ctx.services.config.timezone),
        heading=f"Skipped while you were paused: {count}",
    )
    await ctx.send_card(direct(ctx.actor_id), card)


@router.command(
    "channel",
    summary="also deliver my digests to this group chat or team",
    usage="channel add | channel remove",
    aliases=("channels",),
    details=(
        "Use it in a group chat or team, mentioning me. Only your own calls are posted, and "
        "calls with people outside the company only if you allow it in **settings**."
    ),
)
async def channel(ctx: Context) -> None:
    settings = _settings(ctx)
    chat_id = ctx.chat_id
    assert chat_id is not None
    action = ctx.args.lower().split()[0] if ctx.args else ""
    if action not in ("add", "remove"):
        listed = ", ".join(quote_for_chat(c.name) for c in settings.channels) or "none yet"
        await ctx.reply(
            f"Your digest channels: {listed}. In a group chat, mention me with "
            "**channel add** or **channel remove**."
        )
        return
    if await ctx.services.is_direct_chat(ctx.bot, chat_id):
        await ctx.reply(
            f"That works in a group chat or team: mention me there with **channel {action}**."
        )
        return
    await require_confirmed_author(ctx)
    if action == "add":
        info = await ctx.services.chat_info(ctx.bot, chat_id)
        name = str(info.get("name") or "this chat")
        outsiders = await _people_outside_the_account(ctx, chat_id)
        if outsiders:
            await ctx.reply(
                "I can't post your digests here: this chat has "
                f"{outsiders} {'person' if outsiders == 1 else 'people'} from outside your "
                "company, and a call is shown only to colleagues. Add a chat where everyone "
                "is from your company."
            )
            return
        await _save(ctx, settings.with_channel(chat_id, name))
        note = "" if settings.opted_in else " You are not opted in yet: say **optin** to me."
        await ctx.reply(f"Your digests will also come here.{note}")
    else:
        if all(c.chat_id != chat_id for c in settings.channels):
            await ctx.reply("Your digests do not come here.")
            return
        await _save(ctx, settings.without_channel(chat_id))
        await ctx.reply("Your digests will no longer come here.")


async def _people_outside_the_account(ctx: Context, chat_id: str) -> int:
    """How many people in the chat are not confirmed colleagues of the install's account
    (another company, a guest, anyone RingCentral can't place): digests never go there."""
    services = ctx.services
    members = await services.chat_member_ids(ctx.bot, chat_id)
    return sum([await services.identity_of(ctx.bot, member) is None for member in members])


@router.command("status", summary="my settings at a glance", aliases=("me", "whoami"))
async def status(ctx: Context) -> None:
    settings = _settings(ctx)
    zone = settings.zone(ctx.services.config.timezone)
    if not settings.opted_in:
        state = "off (say **optin** to start)"
    elif settings.is_paused() and settings.paused_until is not None:
        state = f"paused until {format_start_time(settings.paused_until, zone)}"
    else:
        state = "on"
    if settings.opted_in:
        state += f", for {_SCOPE_TEXT.get(settings.digest_scope, _SCOPE_TEXT[SCOPE_OWNED])}"
    places = (["direct message"] if settings.direct_messages else []) + [
        quote_for_chat(c.name) for c in settings.enabled_channels()
    ]
    filters = [
        " and ".join(d.lower() for d in sorted(settings.directions)) + " calls",
        {
            (True, True): "internal and external",
            (True, False): "internal only",
            (False, True): "external only",
            (False, False): "none",
        }[(settings.internal_calls, settings.external_calls)],
    ]
    if settings.min_duration_s:
        filters.append(f"at least {settings.min_duration_s // 60} min")
    if settings.min_ai_score is not None:
        filters.append(f"AI score at least {settings.min_ai_score:g}")
    destinations = [f"direct:{settings.extension_id}"] + [
        f"chat:{c.chat_id}" for c in settings.channels
    ]
    failed = await ctx.services.storage.failed_deliveries(destinations)
    health = ctx.services.subscription_health()
    unhealthy = [name for name, state_ in health.items() if not state_.get("healthy")]
    lines = [
        f"**Digests**: {state}",
        f"**Delivered to**: {', '.join(places) or 'nowhere (turn on a destination in settings)'}",
        f"**Sections**: {', '.join(SECTION_LABELS.get(s, s) for s in settings.sections)}",
        f"**Calls**: {' · '.join(filters)}",
        f"**Dates in**: {zone.key}",
        "**Daily rollup**: "
        + (f"weekdays at {settings.rollup_time}" if settings.rollup_time else "off"),
        "**Calls with external people in channels**: "
        + ("allowed" if settings.external_to_channels else "not allowed"),
        f"**Failed deliveries**: {failed}",
        "**My connection to RingCentral**: "
        + ("healthy" if not unhealthy else "having trouble (" + ", ".join(unhealthy) + ")"),
    ]
    admins, home = ctx.services.config.admins, ctx.services.service_account_id
    if is_admin(await ctx.actor_identity(), admins, home) and await _in_direct_chat(ctx):
        # Administrators' details (connections, errors, what RingCentral refused) stay out of
        # group chats.
        lines.append(ringsense_status_line(ctx))
        if ctx.services.ringcx_health is not None:
            ringcx = await ctx.services.ringcx_health()
            lines.append(
                f"**RingCX**: token {ringcx['token']}; read up to {ringcx['position']}; "
                f"last error: {ringcx['last_error']}"
            )
        refused = refused_ringsense_domains(health)
        if refused:
            lines.append(
                "**RingSense domains refused**: "
                + "; ".join(f"{domain} ({reason})" for domain, reason in refused.items())
            )
    await ctx.reply("\n".join(lines))


async def _in_direct_chat(ctx: Context) -> bool:
    if ctx.message is None or ctx.bot is None:
        return False
    try:
        return await ctx.services.is_direct_chat(ctx.bot, ctx.message.chat_id)
    except RingCentralError:
        return False


def refused_ringsense_domains(
    health: Mapping[str, Mapping[str, object]],
) -> dict[str, str]:
    """RingSense domains RingCentral disabled on our subscriptions, with its reason."""
    refused: dict[str, str] = {}
    for state_ in health.values():
        disabled = state_.get("disabledFilters")
        if not isinstance(disabled, Mapping):
            continue
        for event_filter, reason in disabled.items():
            found = RINGSENSE_DOMAIN_IN_FILTER.search(str(event_filter))
            if found:
                refused[found.group(1)] = str(reason)
    return refused


@router.command(
    "resend",
    summary="try my failed deliveries again",
    usage="resend [all]",
    aliases=("retry",),
    details=(
        "Deliveries that RingCentral kept refusing are marked failed (see **status**); this "
        "puts yours back in the queue. Administrators can say **resend all**."
    ),
)
async def resend(ctx: Context) -> None:
    settings = _settings(ctx)
    storage = ctx.services.storage
    if ctx.args.strip().lower() == "all":
        services = ctx.services
        if not is_admin(
            await ctx.actor_identity(), services.config.admins, services.service_account_id
        ):
            await ctx.reply("Only administrators can resend everyone's deliveries.")
            return
        await require_confirmed_author(ctx)
        count = await storage.requeue_failed(None, account_id=ctx.bot.account_id)
    else:
        destinations = [f"direct:{settings.extension_id}"] + [
            f"chat:{c.chat_id}" for c in settings.channels
        ]
        count = await storage.requeue_failed(destinations)
    ctx.services.wake_outbox()
    if count:
        await ctx.reply(f"Trying {count} failed deliver{'y' if count == 1 else 'ies'} again.")
    else:
        await ctx.reply("Nothing has failed: there is nothing to resend.")
