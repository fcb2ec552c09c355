"""The settings card: sent on `settings`, saved by its Save button (a signed card submit)."""

from __future__ import annotations

from dataclasses import replace

from bot.router import Context, Router, direct, require_confirmed_author
from bot.settings import settings_revision
from bot.settings_card import (
    ACTION_SETTINGS_SAVE,
    DATA_REVISION,
    STALE_CARD,
    parse_settings_submission,
    settings_card,
)

router = Router("settings")


@router.command(
    "settings",
    summary="choose what my digests show and where they go",
    aliases=("preferences", "prefs", "config"),
)
async def send_settings_card(ctx: Context) -> None:
    assert ctx.settings is not None and ctx.actor_id is not None
    card = settings_card(
        ctx.services.cards, ctx.settings, default_timezone=ctx.services.config.default_timezone
    )
    if ctx.chat_id is not None and await ctx.services.is_direct_chat(ctx.bot, ctx.chat_id):
        await ctx.reply_card(card)
        return
    await ctx.send_card(direct(ctx.actor_id), card)
    await ctx.reply("Your settings are personal: I sent them to you in a direct message.")


@router.card_action(ACTION_SETTINGS_SAVE)
async def save_settings(ctx: Context) -> None:
    """Validate and store; the card is updated in place to show what was saved, or the
    problems next to the values as typed."""
    assert ctx.submission is not None and ctx.settings is not None
    await require_confirmed_author(ctx)
    current = ctx.settings
    if current.account_id is None and ctx.install is not None:
        current = replace(current, account_id=ctx.install.account_id)
    default_tz = ctx.services.config.default_timezone
    revision = ctx.submission.data.get(DATA_REVISION)
    if revision and revision != settings_revision(current):
        card = settings_card(
            ctx.services.cards, current, default_timezone=default_tz, errors=[STALE_CARD]
        )
        if ctx.submission.card_id:
            await ctx.update_card(ctx.submission.card_id, card)
        return
    new_settings, problems = parse_settings_submission(ctx.submission.data, current)
    if problems:
        card = settings_card(
            ctx.services.cards,
            current,
            default_timezone=default_tz,
            errors=problems,
            submitted=ctx.submission.data,
        )
    else:
        # Only what the card changed: a `pause` meanwhile must survive the Save.
        await ctx.services.storage.save_settings(new_settings, before=ctx.settings)
        card = settings_card(
            ctx.services.cards, new_settings, default_timezone=default_tz, saved=True
        )
    if ctx.submission.card_id:
        await ctx.update_card(ctx.submission.card_id, card)
    else:
        await ctx.send_card(direct(ctx.submission.user_id), card)
