"""`connect` / `disconnect`: an account's administrator gives the bot its own RingSense reader.

The link `connect` answers with is a credential for a few minutes (whoever opens it first
starts the consent for that account), so it is given only in the admin's direct chat with
the bot. bot/connections.py does the OAuth part; this module decides who may ask.
"""

from __future__ import annotations

import logging

from bot.access import is_admin
from bot.connections import CONNECT_LINK_TTL_S, ConnectRefused
from bot.rc import RingCentralClient
from bot.router import Context, Router

log = logging.getLogger(__name__)

router = Router("connect")

NOT_CONNECTED = (
    "RingSense is not connected for your company yet; an administrator can connect it "
    "with `connect`."
)
ADMINS_ONLY = "Only an administrator of your company can connect or disconnect RingSense."


async def ringsense_reader(ctx: Context) -> RingCentralClient | None:
    """The identity that reads RingSense for the asker's account; when there is none, the
    asker is told so plainly and None comes back (nothing is read through another
    account's identity)."""
    api = ctx.services.ringsense_api(ctx.bot.account_id)
    if api is None:
        await ctx.reply(NOT_CONNECTED)
    return api


async def is_account_admin(ctx: Context) -> bool:
    """An administrator of this install's account, confirmed with RingCentral (see
    `bot.access.is_admin`: administrators are administrators of their own account only)."""
    return is_admin(
        await ctx.actor_identity(), ctx.services.config.admins, ctx.services.service_account_id
    )


@router.command(
    "connect",
    summary="(administrators) connect RingSense for your company",
    usage="connect",
    details=(
        "In a direct message with me, I answer with a one-time link (10 minutes). Open it "
        "and sign in as a user of your company who holds the "
        '"AI Conversation Expert - Access Insights" permission: I then read your '
        "company's analysed calls as that user."
    ),
)
async def connect(ctx: Context) -> None:
    services = ctx.services
    chat_id = ctx.chat_id
    if chat_id is None or not await services.is_direct_chat(ctx.bot, chat_id):
        await ctx.reply(
            "Please send me **connect** in a direct message: the link I answer with is "
            "for you alone."
        )
        return
    if not await is_account_admin(ctx):
        await ctx.reply(ADMINS_ONLY)
        return
    account_id = ctx.bot.account_id
    if account_id == services.service_account_id:
        await ctx.reply(
            "RingSense is already connected for your company through my service user; "
            "there is nothing to do."
        )
        return
    connector = services.connector
    if connector is None or not connector.can_connect:
        await ctx.reply(
            "I can't keep a RingSense connection safely yet: whoever runs me must set "
            "`BOT_SECRET_KEY` first."
        )
        return
    actor = ctx.actor_id
    assert actor is not None
    try:
        link = await connector.create_link(account_id, actor)
    except ConnectRefused as refused:
        await ctx.reply(f"I can't connect RingSense: {refused}.")
        return
    minutes = CONNECT_LINK_TTL_S // 60
    already = (
        " (this replaces the current connection)"
        if account_id in (services.ringsense_readers)
        else ""
    )
    await ctx.reply(
        f"Open this link within {minutes} minutes to connect RingSense for your company"
        f"{already}. It works once. Sign in as a user who holds the "
        '"AI Conversation Expert - Access Insights" permission.\n\n'
        f"{link}"
    )


@router.command(
    "disconnect",
    summary="(administrators) stop reading RingSense for your company",
    usage="disconnect",
    details="Revokes the sign-in `connect` gave me and stops the RingSense subscription.",
)
async def disconnect(ctx: Context) -> None:
    services = ctx.services
    if not await is_account_admin(ctx):
        await ctx.reply(ADMINS_ONLY)
        return
    account_id = ctx.bot.account_id
    if account_id == services.service_account_id:
        await ctx.reply(
            "Your company's RingSense is read by my service user, which is set up by "
            "whoever runs me, not with `connect`; there is nothing to disconnect."
        )
        return
    connector = services.connector
    if connector is None or not await connector.disconnect(account_id):
        await ctx.reply("RingSense is not connected for your company; nothing to disconnect.")
        return
    log.info("account %s: RingSense disconnected by %s", account_id, ctx.actor_id)
    await ctx.reply(
        "RingSense is disconnected for your company: I revoked my sign-in and stopped "
        "reading your calls. Say **connect** to connect it again."
    )


def ringsense_status_line(ctx: Context) -> str:
    """For administrators' `status`: whether this account's RingSense is connected."""
    services = ctx.services
    account_id = ctx.bot.account_id
    if account_id == services.service_account_id:
        state = "connected (my service user)"
    elif account_id in services.ringsense_readers:
        reader = services.ringsense_readers[account_id]
        state = f"connected (as extension {reader.owner_extension_id})"
    else:
        state = "not connected (say **connect** in a direct message)"
    return f"**RingSense for your company**: {state}"
