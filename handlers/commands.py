"""Chat commands: help, and opting in and out of digests."""

from __future__ import annotations

from bot.router import Context, Router

router = Router("commands")


@router.command("help", summary="what I can do", aliases=("?", "hi", "hello"))
async def show_help(ctx: Context) -> None:
    assert ctx.dispatcher is not None
    await ctx.reply(
        "I post a digest of your recorded calls once RingSense has analysed them: summary, "
        "next steps, highlights and AI score.\n\n" + ctx.dispatcher.help_text()
    )


@router.command(
    "optin", summary="send me a digest after each of my analysed calls", aliases=("opt-in", "start")
)
async def opt_in(ctx: Context) -> None:
    assert ctx.message is not None
    already = ctx.settings is not None and ctx.settings.opted_in
    await ctx.services.storage.set_opted_in(ctx.message.creator_id, True)
    if already:
        await ctx.reply("You are already opted in. Say **optout** to stop the digests.")
    else:
        await ctx.reply(
            "You're in. After each of your recorded calls that RingSense analyses, I'll send "
            "you its digest in a direct message. Say **optout** to stop."
        )


@router.command("optout", summary="stop sending me digests", aliases=("opt-out", "stop"))
async def opt_out(ctx: Context) -> None:
    assert ctx.message is not None
    await ctx.services.storage.set_opted_in(ctx.message.creator_id, False)
    await ctx.reply("Done: no more digests. Say **optin** whenever you want them back.")
