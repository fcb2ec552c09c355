"""`todo`: my open next steps, each with a Done button that redraws the card in place;
`todo all` for an account's administrators."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from bot.access import Identity, is_admin, may_see
from bot.cards import message_dialog
from bot.cards.todo import (
    ACTION_TODO_DONE,
    DATA_DAY,
    DATA_ITEM,
    DATA_LIST,
    LIST_ALL,
    LIST_MINE,
    LIST_ROLLUP,
    MAX_ITEMS,
    done_notice,
    todo_card,
)
from bot.ringsense import CallInsights, InsightsFormatError
from bot.rollup import day_label, due_day, parse_rollup_time, rollup_card
from bot.router import Context, Router, direct
from bot.settings import DEFAULT_ROLLUP_TIME
from bot.storage import NextStepItem

router = Router("todo")

NOT_YOURS = "That next step is not yours to close, or it no longer exists."


def _zone(ctx: Context) -> ZoneInfo:
    default = ctx.services.config.timezone
    return ctx.settings.zone(default) if ctx.settings else default


def _is_admin(ctx: Context, person: Identity | None) -> bool:
    return is_admin(person, ctx.services.config.admins, ctx.services.service_account_id)


async def todo_list_card(
    ctx: Context, person: Identity, list_name: str, *, notice: str | None = None
) -> dict[str, object]:
    """The card of one list as `person` may see it: their own items, or (administrators)
    everyone's of their account."""
    everyone = list_name == LIST_ALL and _is_admin(ctx, person)
    items, total = await ctx.services.storage.open_next_steps(
        person.account_id, None if everyone else person.extension_id, MAX_ITEMS
    )
    return todo_card(
        ctx.services.cards,
        items,
        _zone(ctx),
        heading="Everyone's open next steps" if everyone else "My open next steps",
        list_name=LIST_ALL if everyone else LIST_MINE,
        total=total,
        show_owner=everyone,
        notice=notice,
    )


@router.command(
    "todo",
    summary="my open next steps, with a Done button each",
    usage="todo [all]",
    aliases=("todos", "tasks", "nextsteps", "next-steps"),
    details="Administrators can say **todo all** for everyone's in the account.",
)
async def show_todo(ctx: Context) -> None:
    asker = await ctx.actor_identity()
    word = ctx.args.strip().lower()
    if word not in ("", "all", "mine"):
        await ctx.reply("Say **todo** for your open next steps, or **todo all** (administrators).")
        return
    if asker is None:
        await ctx.reply("You have no open next steps.")
        return
    if word == "all" and not _is_admin(ctx, asker):
        await ctx.reply(
            "Only administrators can see everyone's next steps. Say **todo** for yours."
        )
        return
    items, _ = await ctx.services.storage.open_next_steps(
        asker.account_id, None if word == "all" else asker.extension_id, 1
    )
    if not items:
        await ctx.reply("You have no open next steps. They come from the calls RingSense analyses.")
        return
    card = await todo_list_card(ctx, asker, LIST_ALL if word == "all" else LIST_MINE)
    # Next steps are people's call words: always to the asker alone.
    assert ctx.actor_id is not None
    if ctx.chat_id is not None and await ctx.services.is_direct_chat(ctx.bot, ctx.chat_id):
        await ctx.reply_card(card)
        return
    await ctx.send_card(direct(ctx.actor_id), card)
    await ctx.reply("Your next steps are personal: I sent them to you in a direct message.")


async def _redrawn_rollup(ctx: Context, notice: str) -> dict[str, object] | None:
    """The rollup a Done was pressed on, redrawn for its day (None: not a usable day)."""
    assert ctx.submission is not None and ctx.settings is not None
    try:
        day = date.fromisoformat(ctx.submission.data.get(DATA_DAY, ""))
    except ValueError:
        return None
    settings = ctx.settings
    if settings.account_id is None and ctx.install is not None:
        settings = replace(settings, account_id=ctx.install.account_id)
    return await rollup_card(ctx.services, settings, day, notice=notice)


async def may_close(ctx: Context, person: Identity | None, item: NextStepItem) -> bool:
    """The person the item is on, or an administrator of its account, and only someone
    who may see its call (fail closed when the call is unreadable)."""
    if person is None or person.account_id != item.account_id:
        return False
    if person.extension_id != item.assignee_extension_id and not _is_admin(ctx, person):
        return False
    body = await ctx.services.storage.call_of_account(item.call_key, item.account_id)
    if body is None:
        return False
    try:
        call = CallInsights.from_api(body, account_id=item.account_id)
    except InsightsFormatError:
        return False
    return may_see(person, call, ctx.services.config.admins, ctx.services.service_account_id)


@router.card_action(ACTION_TODO_DONE)
async def mark_done(ctx: Context) -> None:
    """Close the item, then redraw the card it was pressed on (the same list, as the
    presser may see it) with a line saying what was closed."""
    assert ctx.submission is not None
    presser = await ctx.actor_identity()
    raw_id = ctx.submission.data.get(DATA_ITEM, "")
    item = (
        await ctx.services.storage.next_step(int(raw_id), presser.account_id)
        if presser is not None and raw_id.isdigit() and len(raw_id) < 19
        else None
    )
    if presser is None or item is None or not await may_close(ctx, presser, item):
        ctx.response = message_dialog(ctx.services.cards, "Not done", NOT_YOURS)
        return
    await ctx.services.storage.mark_next_step_done(
        item.item_id, item.account_id, presser.extension_id
    )
    notice = done_notice(item)
    list_name = ctx.submission.data.get(DATA_LIST, LIST_MINE)
    card = await _redrawn_rollup(ctx, notice) if list_name == LIST_ROLLUP else None
    if card is None:
        card = await todo_list_card(ctx, presser, list_name, notice=notice)
    if ctx.submission.card_id:
        await ctx.update_card(ctx.submission.card_id, card)
    else:
        await ctx.send_card(direct(presser.extension_id), card)


@router.command(
    "rollup",
    summary="my daily list of calls and open next steps",
    usage="rollup [HH:MM | off | now]",
    aliases=("daily", "digest-time"),
    details=(
        f"On weekdays at {DEFAULT_ROLLUP_TIME} in your time zone unless you choose another "
        "time, e.g. **rollup 18:30**; **rollup off** stops it; **rollup now** shows today's."
    ),
)
async def rollup_command(ctx: Context) -> None:
    assert ctx.settings is not None
    settings = ctx.settings
    if settings.account_id is None and ctx.install is not None:
        settings = replace(settings, account_id=ctx.install.account_id)
    word = ctx.args.strip().lower()
    zone = settings.zone(ctx.services.config.timezone)
    if not word:
        when = (
            f"on weekdays at {settings.rollup_time} ({zone.key})" if settings.rollup_time else "off"
        )
        note = "" if settings.opted_in else " It comes once you **optin**."
        await ctx.reply(
            f"Your daily rollup: {when}. Say **rollup 18:30** to move it or **rollup off**." + note
        )
        return
    if word == "now":
        today = due_day("23:59", datetime.now(UTC), zone)
        card = await rollup_card(ctx.services, settings, today)
        if card is None:
            await ctx.reply(f"Nothing for {day_label(today)}: no analysed call, no open next step.")
            return
        assert ctx.actor_id is not None
        await ctx.send_card(direct(ctx.actor_id), card)
        return
    if word in ("off", "stop", "none"):
        new_time: str | None = None
    else:
        try:
            new_time = parse_rollup_time(word)
        except ValueError as err:
            await ctx.reply(str(err))
            return
    await ctx.services.storage.save_settings(
        replace(settings, rollup_time=new_time), before=ctx.settings
    )
    if new_time is None:
        await ctx.reply("Done: no daily rollup. Say **rollup 17:00** to have it back.")
    else:
        await ctx.reply(f"Done: your daily rollup comes on weekdays at {new_time} ({zone.key}).")
