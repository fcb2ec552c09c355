"""RingSense insights in, digest cards out.

A call can be announced more than once (AI Notes first, RingSense second, or an update),
and a notification may not carry every insight. Each event is merged into what we already
know of the call, the gaps are filled from the REST record, and each destination's card
for that call is posted once and updated in place after that.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from bot import events, payloads
from bot.cards import render_digest
from bot.catchup import note_ringsense_event
from bot.rc import RingCentralNotFound, RingCentralPermissionError
from bot.ringsense import CallInsights, InsightsFormatError
from bot.router import Context, Ignored, Router, chat, direct

log = logging.getLogger(__name__)

router = Router("digests")


def call_key(insights: CallInsights) -> str:
    return f"{insights.domain}:{insights.source_record_id}"


def merge_call_bodies(older: Mapping[str, Any], newer: Mapping[str, Any]) -> dict[str, Any]:
    """Newer fields win; insight lists are merged per key so nothing already known is lost."""
    merged = {**older, **{k: v for k, v in newer.items() if k != "insights"}}
    older_insights = older.get("insights")
    newer_insights = newer.get("insights")
    merged["insights"] = {
        **(older_insights if isinstance(older_insights, Mapping) else {}),
        **(newer_insights if isinstance(newer_insights, Mapping) else {}),
    }
    return merged


def _in_time_order(
    first: Mapping[str, Any], second: Mapping[str, Any]
) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """(older, newer) by `lastModifiedTime`; on a tie or when missing, `second` is newer."""
    a, b = first.get("lastModifiedTime"), second.get("lastModifiedTime")
    if isinstance(a, str) and isinstance(b, str) and a > b:
        return second, first
    return first, second


async def remember_call(
    ctx: Context, body: Mapping[str, Any], *, fill_gaps: bool = False
) -> CallInsights | None:
    """Merge what we just learned of a call into what we knew, store it, return the result.

    With `fill_gaps`, insights missing after the merge are fetched from the REST record.
    None when the body is not a usable RingSense record.
    """
    try:
        insights = CallInsights.from_api(body)
    except InsightsFormatError as err:
        log.warning("unusable RingSense record: %s", err)
        return None
    key = call_key(insights)
    storage = ctx.services.storage
    known = await storage.call_insights(key)
    if known is not None:
        body = merge_call_bodies(*_in_time_order(known, body))
    if fill_gaps and CallInsights.from_api(body).missing_insight_keys():
        body = await _fill_from_record(ctx, insights, body)
    merged = CallInsights.from_api(body)
    await storage.save_call(
        key,
        domain=merged.domain,
        source_record_id=merged.source_record_id,
        source_session_id=merged.source_session_id,
        owner_extension_id=merged.owner_extension_id,
        recording_start_time=payloads.text(body.get("recordingStartTime")),
        insights=body,
        participant_ids=sorted(merged.entitled_extension_ids()),
        account_id=ctx.services.service_account_id or None,
        ringsense_url=merged.ringsense_url,
    )
    return merged


@router.event(events.RINGSENSE_INSIGHTS)
async def deliver_digest(ctx: Context) -> None:
    """The owner's digest, to every destination the owner chose, if the call passes their
    filters. Channels get calls with external participants only when the owner allows it."""
    assert ctx.notification is not None
    if not ctx.event_id.startswith("catch-up:"):
        await note_ringsense_event(ctx.services)
    merged = await remember_call(ctx, ctx.notification.body, fill_gaps=True)
    if merged is None:
        raise Ignored("not a usable RingSense notification")
    key = call_key(merged)
    settings = await ctx.services.storage.user_settings(merged.owner_extension_id)
    reason = settings.exclusion_reason(merged)
    if reason is not None:
        log.debug("no digest for %s: %s", key, reason)
        return
    card = render_digest(
        ctx.services.cards,
        merged,
        settings.zone(ctx.services.config.timezone),
        settings.sections,
        call_key=key,
    )
    if settings.direct_messages:
        await ctx.send_card(direct(merged.owner_extension_id), card, card_key=key, digest=True)
    for channel in settings.enabled_channels():
        if merged.is_external and not settings.external_to_channels:
            log.debug("%s has external participants; not posted to chat %s", key, channel.chat_id)
            continue
        await ctx.send_card(chat(channel.chat_id), card, card_key=key, digest=True)


async def _fill_from_record(
    ctx: Context, insights: CallInsights, body: Mapping[str, Any]
) -> Mapping[str, Any]:
    try:
        record = await ctx.services.service_api.get_record_insights(
            insights.domain, insights.source_record_id
        )
    except (RingCentralNotFound, RingCentralPermissionError) as err:
        log.info(
            "insights record for %s not readable (%s); using the notification",
            call_key(insights),
            err,
        )
        return body
    return merge_call_bodies(*_in_time_order(record, body))
