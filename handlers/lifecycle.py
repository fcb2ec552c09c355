"""The bot's own life: removed from an account, added to or removed from a chat."""

from __future__ import annotations

import logging

from bot import events
from bot.cards import welcome_card
from bot.rc import (
    TOKEN_REVOKED_CODES,
    RingCentralAuthError,
    RingCentralError,
    RingCentralNotFound,
    RingCentralPermissionError,
)
from bot.router import Context, Ignored, Router, chat

log = logging.getLogger(__name__)

router = Router("lifecycle")

GROUP_CHAT_TYPES = frozenset({"Group", "Team"})


@router.event(events.EXTENSION_DELETED)
async def forget_removed_bot(ctx: Context) -> None:
    """Uninstalled: RingCentral deletes the bot extension and tells it one last time."""
    assert ctx.notification is not None
    deleted = str(ctx.notification.body.get("extensionId", ""))
    if deleted != ctx.bot.extension_id:
        raise Ignored("another extension was deleted")
    if not await _removal_confirmed(ctx):
        if ctx.last_attempt:
            raise Ignored("RingCentral does not confirm the bot's removal")
        raise RemovalNotConfirmedYet(
            None, None, "the bot's extension still answers", method="GET", path="extension/~"
        )
    if ctx.services.remove_install is None:
        raise RuntimeError("install removal is not wired")
    await ctx.services.remove_install(deleted)


class RemovalNotConfirmedYet(RingCentralError):
    """A Delete event while the bot's extension still works: forged, or early (the platform
    may tell before it deletes). Tried again a little later; never wipes data by itself."""

    retryable = True


async def _removal_confirmed(ctx: Context) -> bool:
    """Read the bot's own extension back: a deleted bot's token gets 401 OAU-232/CMN-405
    (API-FACTS A.5), or the extension is not found."""
    try:
        extension = await ctx.bot.api.get_own_extension()
    except RingCentralAuthError as err:
        return err.error_code in TOKEN_REVOKED_CODES
    except RingCentralNotFound:
        return True
    return str(extension.get("status", "")) == "Deleted"


@router.event(events.CHAT_JOINED)
async def welcome(ctx: Context) -> None:
    """Added to a group chat or team: say what the bot does and how to start."""
    assert ctx.notification is not None
    body = ctx.notification.body
    chat_id = str(body.get("id", ""))
    chat_type = str(body.get("type", ""))
    if chat_id:
        ctx.services.remember_chat_type(chat_id, chat_type)
    if not chat_id or chat_type not in GROUP_CHAT_TYPES:
        raise Ignored(f"no welcome in a {chat_type or 'unknown'} chat")
    card = welcome_card(
        ctx.services.cards, bot_name=ctx.bot.name or "RingSense Digest", chat_kind="group"
    )
    await ctx.send_card(chat(chat_id), card)


@router.event(events.CHAT_LEFT)
async def stop_delivering_to_a_chat_we_left(ctx: Context) -> None:
    """Nobody's digests go to a chat the bot is no longer in: once RingCentral confirms it
    (a forged GroupLeft must not strip people's channels)."""
    assert ctx.notification is not None
    chat_id = str(ctx.notification.body.get("id", ""))
    if chat_id:
        try:
            info = await ctx.services.chat_info(ctx.bot, chat_id)
        except (RingCentralNotFound, RingCentralPermissionError):
            pass  # the bot can no longer see the chat: it really left
        else:
            members = info.get("members")
            ids = {
                str(m.get("id") if isinstance(m, dict) else m)
                for m in (members if isinstance(members, list) else [])
            }
            if ctx.bot.extension_id in ids:
                raise Ignored("the bot is still in that chat")
        removed = await ctx.services.storage.remove_channel_everywhere(chat_id)
        log.info("left chat %s; removed it from %d people's digest channels", chat_id, removed)
