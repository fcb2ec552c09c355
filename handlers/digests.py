"""RingSense insights in, digest cards out.

A call can be announced more than once (AI Notes first, RingSense second, or an update),
and a notification may not carry every insight. Each event is merged into what we already
know of the call, the gaps are filled from the REST record, and the owner's card for that
call is posted once and updated in place after that.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot import events
from bot.cards import render_digest
from bot.rc import RingCentralNotFound, RingCentralPermissionError
from bot.ringsense import CallInsights, InsightsFormatError
from bot.router import Context, Ignored, Router

log = logging.getLogger(__name__)

router = Router("digests")


def call_key(insights: CallInsights) -> str:
    return f"{insights.domain}:{insights.source_record_id}"


def merge_call_bodies(older: Mapping[str, Any], newer: Mapping[str, Any]) -> dict[str, Any]:
    """Newer fields win; insight lists are merged per key so nothing already known is lost."""
    merged = {**older, **{k: v for k, v in newer.items() if k != "insights"}}
    older_insights = older.get("insights") if isinstance(older.get("insights"), Mapping) else {}
    newer_insights = newer.get("insights") if isinstance(newer.get("insights"), Mapping) else {}
    merged["insights"] = {**(older_insights or {}), **(newer_insights or {})}
    return merged


def _in_time_order(
    first: Mapping[str, Any], second: Mapping[str, Any]
) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """(older, newer) by `lastModifiedTime`; on a tie or when missing, `second` is newer."""
    a, b = first.get("lastModifiedTime"), second.get("lastModifiedTime")
    if isinstance(a, str) and isinstance(b, str) and a > b:
        return second, first
    return first, second


@router.event(events.RINGSENSE_INSIGHTS)
async def deliver_digest(ctx: Context) -> None:
    services = ctx.services
    event_body = ctx.notification.body
    try:
        insights = CallInsights.from_api(event_body)
    except InsightsFormatError as err:
        log.warning("RingSense notification %s unusable: %s", ctx.notification.uuid, err)
        raise Ignored(str(err)) from None
    key = call_key(insights)

    body: Mapping[str, Any] = dict(event_body)
    known = await services.storage.call_insights(key)
    if known is not None:
        body = merge_call_bodies(*_in_time_order(known, body))
    if CallInsights.from_api(body).missing_insight_keys():
        body = await _fill_from_record(ctx, insights, body)
    merged = CallInsights.from_api(body)
    await services.storage.save_call(
        key,
        domain=merged.domain,
        source_record_id=merged.source_record_id,
        source_session_id=merged.source_session_id,
        owner_extension_id=merged.owner_extension_id,
        recording_start_time=_iso(body.get("recordingStartTime")),
        insights=body,
    )

    settings = await services.storage.user_settings(merged.owner_extension_id)
    if not settings.opted_in:
        log.debug("owner of %s has not opted in; no digest", key)
        return
    card = render_digest(services.cards, merged, _timezone(settings.timezone, ctx))
    await ctx.send_card(
        {"kind": "direct", "extensionId": merged.owner_extension_id}, card, card_key=key
    )


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


def _timezone(name: str | None, ctx: Context) -> ZoneInfo:
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            log.warning("stored time zone %r is unknown; using the default", name)
    return ctx.services.config.timezone


def _iso(value: Any) -> str | None:
    return value if isinstance(value, str) else None
