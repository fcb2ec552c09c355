"""RingCX transcripts in chat: delivered as they are found, and on demand with `transcript`.

Who may see a transcript follows the rules for calls: the agent on the segment and the
configured administrators; queue chats get the transcripts of their agent group because
an administrator configured them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from bot import events
from bot.access import NOT_VISIBLE, Identity, is_admin
from bot.cards import ringcx_transcript_card
from bot.quoting import for_log
from bot.rc import RingCentralNotFound
from bot.ringcx import segment_ahead_of_poller
from bot.ringcx_model import RingCXFormatError, Segment, Transcript
from bot.router import Context, Ignored, Router, chat, direct
from handlers.calls import answer_where_all_may_see, timezone_for

log = logging.getLogger(__name__)

router = Router("ringcx")


async def _agent_name(ctx: Context, segment: Segment) -> str | None:
    """The agent's name from the directory (voice transcripts carry none), cached; None when
    the lookup fails: the card then names no agent (an extension id means nothing to a
    reader)."""
    if not segment.agent_extension_id:
        return None
    services = ctx.services
    return await services.speaker_directory.extension_name(
        services.service_api, services.service_account_id, segment.agent_extension_id
    )


async def _card(ctx: Context, segment: Segment, transcript: Transcript) -> dict[str, Any]:
    # The config knows a queue only by its agent group number, which is no name for a
    # person: the card names the queue only when RingCX does.
    agent = None if transcript.agent_name else await _agent_name(ctx, segment)
    return ringcx_transcript_card(
        ctx.services.cards,
        segment=segment,
        transcript=transcript,
        tz=timezone_for(ctx),
        agent_label=agent,
    )


@router.event(events.RINGCX_TRANSCRIPT)
async def deliver_transcript(ctx: Context) -> None:
    """To the agent if they opted in, and to their agent group's chat if one is configured."""
    assert ctx.notification is not None
    body = ctx.notification.body
    try:
        segment = Segment.from_api(_mapping(body.get("segment")))
        transcript = Transcript.from_api(_mapping(body.get("transcript")))
    except RingCXFormatError as err:
        raise Ignored(f"unusable RingCX transcript: {err}") from None
    config = ctx.services.config.ringcx
    destinations: list[dict[str, str]] = []
    agent = segment.agent_extension_id
    if config.agents_dm and agent:
        settings = await ctx.services.storage.user_settings(agent)
        ctx.settings = settings
        if settings.opted_in and not settings.is_paused():
            destinations.append(direct(agent))
    for group_id, chat_id in config.queue_chats:
        if group_id == segment.agent_group_id:
            destinations.append(chat(chat_id))
    if not destinations:
        log.debug("RingCX segment %s: nobody opted in", for_log(segment.segment_id))
        return
    card = await _card(ctx, segment, transcript)
    for destination in destinations:
        await ctx.send_card(destination, card)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


@router.command(
    "transcript",
    summary="a RingCX contact-center transcript",
    usage="transcript <dialogId> <segmentId>",
    details="Shown to the agent on that segment and to administrators.",
)
async def transcript_command(ctx: Context) -> None:
    parts = ctx.args.split()
    if len(parts) != 2:
        await ctx.reply(
            "Say **transcript** with the dialog id and the segment id, e.g. "
            "`transcript s-v-123-456 p-v-789`."
        )
        return
    if ctx.services.ringcx is None:
        await ctx.reply("RingCX transcripts are not turned on for this bot.")
        return
    dialog_id, segment_id = parts
    admins, home = ctx.services.config.admins, ctx.services.service_account_id
    metadata = await ctx.services.storage.ringcx_segment(dialog_id, segment_id)
    if metadata is None:
        # Not stored yet (the poller trails real time): look it up now, same rules after.
        metadata = await segment_ahead_of_poller(
            ctx.services, ctx.services.ringcx, dialog_id, segment_id
        )
    if metadata is None:
        await ctx.reply(NOT_VISIBLE)
        return
    segment = Segment.from_api(metadata)

    def entitled(person: Identity | None) -> bool:
        """The agent or an administrator, of the account whose RingCX the bot reads."""
        if person is None or person.account_id != home:
            return False
        return person.extension_id == segment.agent_extension_id or is_admin(person, admins, home)

    if not entitled(await ctx.actor_identity()):
        await ctx.reply(NOT_VISIBLE)
        return
    try:
        body = await ctx.services.ringcx.transcript(dialog_id, segment_id)
    except RingCentralNotFound:
        await ctx.reply(
            "RingCX does not have that transcript yet: it is usually ready about "
            "5 minutes after the call ends."
        )
        return
    transcript = Transcript.from_api(body)
    destination = await answer_where_all_may_see(ctx, entitled)
    await ctx.send_card(destination, await _card(ctx, segment, transcript))
