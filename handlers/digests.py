"""RingSense insights in, digest cards out.

A call can be announced more than once (AI Notes first, RingSense second, or an update),
and a notification may not carry every insight. Each event is merged into what we already
know of the call, the gaps are filled from the REST record, and each destination's card
for that call is posted once and updated in place after that.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from bot import events, payloads
from bot.cards import feedback_result, render_digest
from bot.cards.share import render_direct_digest
from bot.catchup import last_event_state
from bot.logs import bind_log_context
from bot.metrics import notification_arrived_at
from bot.quoting import for_log
from bot.rc import RingCentralClient, RingCentralNotFound, RingCentralPermissionError
from bot.ringsense import CallInsights, InsightsFormatError
from bot.router import Context, Ignored, Router, chat, direct
from bot.search import search_lines
from bot.settings import Channel, UserSettings
from bot.speakers import named_from_directory
from bot.storage import SearchLine, StoredCall, split_transcript
from bot.todo import next_step_assignments

log = logging.getLogger(__name__)

RINGSENSE_EVENT_PATH = re.compile(
    r"^/ai/ringsense/v1/public/accounts/([^/]+)/domains/([^/]+)/insights$"
)

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


async def merge_with_stored(
    ctx: Context, body: Mapping[str, Any], *, account_id: str
) -> tuple[CallInsights, StoredCall, dict[str, str]] | None:
    """What RingSense just said of a call (read through `account_id`'s own reader), merged
    into what we knew: the call as cards show it, and as it is to be stored, with what
    people said of it by the feedback buttons (read in the same trip; every card of the
    call shows its reader's). Nothing is written yet.

    The transcript is taken out first and travels apart: it is stored once, and neither
    merging nor the card needs its words. None when the body is not a usable RingSense
    record, or when the same record id is already stored for another account (the two are
    never mixed).
    """
    record, transcript = split_transcript(body)
    try:
        insights = CallInsights.from_api(record, account_id=account_id)
    except InsightsFormatError as err:
        log.warning("unusable RingSense record: %s", err)
        return None
    key = call_key(insights)
    stored, verdicts = await ctx.services.storage.call_with_account_and_feedback(key)
    if stored is not None:
        stored_account, known = stored
        if stored_account != account_id:
            log.warning("call %s is stored for another account; not mixing them", key)
            return None
        record = merge_call_bodies(*_in_time_order(known, record))
        merged = CallInsights.from_api(record, account_id=account_id)
    else:
        merged = insights  # nothing to merge with: the record as read
    modified = body.get("lastModifiedTime")
    stored_call = StoredCall(
        key,
        domain=merged.domain,
        source_record_id=merged.source_record_id,
        source_session_id=merged.source_session_id,
        owner_extension_id=merged.owner_extension_id,
        recording_start_time=payloads.text(record.get("recordingStartTime")),
        insights=record,
        participant_ids=tuple(sorted(merged.entitled_extension_ids())),
        account_id=account_id,
        ringsense_url=merged.ringsense_url,
        transcript=transcript,
        transcript_modified=modified if isinstance(modified, str) else None,
    )
    return merged, stored_call, verdicts


async def remember_call(
    ctx: Context, body: Mapping[str, Any], *, account_id: str
) -> CallInsights | None:
    """Merge what RingSense just said of a call into what we knew, store it as that
    account's call with its next steps and search words (one transaction), and return the
    result (see `merge_with_stored`)."""
    found = await merge_with_stored(ctx, body, account_id=account_id)
    if found is None:
        return None
    merged, stored, _ = found
    await ctx.services.storage.record_digest(
        stored,
        (),
        next_steps=next_step_assignments(merged),
        search_lines=_search_lines(merged, stored),
    )
    return merged


def _search_lines(merged: CallInsights, stored: StoredCall) -> list[SearchLine]:
    """What `find` may match in the call, its transcript taken from the one in memory:
    the storage indexes those transcript lines only if that transcript is the one kept
    (else the lines of the one kept stay indexed)."""
    if stored.transcript is not None and not merged.transcript:
        return search_lines(merged, transcript=stored.transcript)
    return search_lines(merged)


async def read_back_insights(
    api: RingCentralClient, announced: Mapping[str, Any]
) -> Mapping[str, Any]:
    """The REST record of the call a RingSense notification announces, read through the
    account's own RingSense reader: a notification body proves nothing (only the
    Verification-Token guards it), so what a digest shows comes from the API. Not readable:
    the event is ignored."""
    try:
        # Only which call it names counts here: its transcript is not even parsed.
        claimed = CallInsights.from_api(split_transcript(announced)[0])
    except InsightsFormatError as err:
        raise Ignored(f"not a usable RingSense notification: {err}") from None
    try:
        return await api.get_record_insights(claimed.domain, claimed.source_record_id)
    except (RingCentralNotFound, RingCentralPermissionError) as err:
        raise Ignored(
            f"RingSense does not confirm {call_key(claimed)} ({err.error_code or err.status})"
        ) from None


def _not_subscribed(ctx: Context) -> str | None:
    """Why an event is not one we subscribed to (another account, another domain), or None.

    The platform should never send them; a bot that acted on one would post data from a
    domain or account its owner never connected, so they are refused, not trusted."""
    assert ctx.notification is not None
    found = RINGSENSE_EVENT_PATH.match(ctx.notification.event)
    domains = ctx.services.config.ringcentral.ringsense_domains
    body_domain = ctx.notification.body.get("domain")
    if found is not None:
        account, domain = found.group(1), found.group(2)
        # `~` is our own account: the catch-up's work, made here, is addressed that way.
        ours = account in ("~", ctx.services.service_account_id) or (
            ctx.services.install_for_account(account) is not None
        )
        if not ours:
            return f"account {account[:40]!r} is not subscribed"
        if domain not in domains:
            return f"domain {domain[:40]!r} is not subscribed"
    if isinstance(body_domain, str) and body_domain not in domains:
        return f"domain {body_domain[:40]!r} is not subscribed"
    return None


@router.event(events.RINGSENSE_INSIGHTS)
async def deliver_digest(ctx: Context) -> None:
    """The owner's digest, to every destination the owner chose, if the call passes their
    filters, then each colleague's own copy (`optin all`), each card with the feedback
    line it already showed. Channels get calls with external participants only when the
    owner allows it, and only while the owner is still in the chat and nobody there is of
    another account."""
    assert ctx.notification is not None
    refusal = _not_subscribed(ctx)
    if refusal is not None:
        log.info("RingSense event %s ignored: %s", for_log(ctx.event_id), refusal)
        raise Ignored(refusal)
    services = ctx.services
    account = ctx.bot.account_id
    api = services.ringsense_api(account)
    if api is None:
        raise Ignored("nobody may read this account's RingSense: it is not connected")
    record = await read_back_insights(api, ctx.notification.body)
    caught_up = ctx.event_id.startswith("catch-up:")
    # When RingSense notifications last arrived (for catch-up): written with the digest.
    states = {} if caught_up else last_event_state()
    found = await merge_with_stored(ctx, record, account_id=account)
    if found is None:
        await services.storage.record_digest(None, (), states, finished_inbox_id=ctx.inbox_id)
        ctx.inbox_row_finished = ctx.inbox_id is not None
        raise Ignored("not a usable RingSense record")
    merged, stored, verdicts = found
    merged = await named_from_directory(services.speaker_directory, api, merged)
    # The call with its next steps and search words, every delivery of its digest, the
    # note above and the notification marked done go into the database in one
    # transaction, at the end. When a channel check fails half-way, the call and what was
    # queued by then are kept (as if written one by one) and the notification is retried.
    ctx.hold_deliveries()
    try:
        await _queue_digests(ctx, merged, verdicts, caught_up=caught_up)
    except BaseException:
        queued = await services.storage.record_digest(stored, ctx.release_deliveries(), states)
        if queued and not services.storage.record_digest_hands_over:
            services.wake_outbox()
        raise
    newly_queued = await services.storage.record_digest(
        stored,
        ctx.release_deliveries(),
        states,
        next_steps=next_step_assignments(merged),
        search_lines=_search_lines(merged, stored),
        finished_inbox_id=ctx.inbox_id,
    )
    ctx.inbox_row_finished = ctx.inbox_id is not None
    if newly_queued and not services.storage.record_digest_hands_over:
        services.wake_outbox()


async def _queue_digests(
    ctx: Context, merged: CallInsights, verdicts: Mapping[str, str], *, caught_up: bool
) -> None:
    key = call_key(merged)
    bind_log_context(call=key)
    timing = digest_timing(merged, caught_up=caught_up)
    await _deliver_to_owner(ctx, merged, key, verdicts, timing)
    await _deliver_to_colleagues_on_the_call(ctx, merged, key, verdicts, timing)


async def _deliver_to_owner(
    ctx: Context,
    merged: CallInsights,
    key: str,
    verdicts: Mapping[str, str],
    timing: Mapping[str, float],
) -> None:
    services = ctx.services
    settings = await services.storage.user_settings(merged.owner_extension_id)
    reason = settings.exclusion_reason(merged)
    if reason is not None:
        log.debug("no digest for %s: %s", for_log(key), reason)
        await _note_if_skipped_by_pause(ctx, settings, merged, key, as_owner=True)
        return

    def digest_for(reader: str | None) -> dict[str, Any]:
        """The card, with what its reader (None: a whole chat) said of it after a press,
        so an update of the call keeps the answer the card showed."""
        return render_digest(
            services.cards,
            merged,
            settings.zone(services.config.timezone),
            settings.sections,
            call_key=key,
            feedback=feedback_result(verdicts, reader=reader),
        )

    if settings.direct_messages:
        await _send_direct_copy(
            ctx, merged, key, settings, merged.owner_extension_id, verdicts, timing
        )
    card: dict[str, Any] | None = None  # rendered once, for the first channel that gets it
    for channel in settings.enabled_channels():
        if merged.is_external and not settings.external_to_channels:
            log.debug(
                "%s has external participants; not posted to chat %s",
                for_log(key),
                for_log(channel.chat_id),
            )
            continue
        if await _channel_still_fits(ctx, settings, channel):
            card = card or digest_for(None)
            await ctx.send_card(
                chat(channel.chat_id), card, card_key=key, digest=True, timing=timing
            )


def digest_timing(call: CallInsights, *, caught_up: bool) -> dict[str, float]:
    """When the notification arrived (not for calls catch-up found: nothing arrived) and
    when the recording ended, for the call-to-card latency metric."""
    timing: dict[str, float] = {}
    arrived_at = None if caught_up else notification_arrived_at.get()
    if arrived_at:
        timing["arrivedAt"] = arrived_at
    if call.recording_start_time is not None and call.recording_duration_ms is not None:
        ended = call.recording_start_time.timestamp() + call.recording_duration_ms / 1000
        timing["recordingEndedAt"] = ended
    return timing


async def _deliver_to_colleagues_on_the_call(
    ctx: Context,
    merged: CallInsights,
    key: str,
    verdicts: Mapping[str, str],
    timing: Mapping[str, float],
) -> None:
    """Each colleague of the call's account who spoke on it and chose "calls I own or take
    part in" gets their own copy in their own direct chat, drawn with their own settings.
    The card key makes it one card per (call, person), updated in place when the call is
    announced again. Only direct chats: a participant's copy never goes to a channel."""
    services = ctx.services
    for extension_id in sorted(merged.entitled_extension_ids() - {merged.owner_extension_id}):
        settings = await services.storage.user_settings(extension_id)
        if not settings.wants_copy_as_participant(merged):
            await _note_if_skipped_by_pause(ctx, settings, merged, key, as_owner=False)
            continue
        await _send_direct_copy(ctx, merged, key, settings, extension_id, verdicts, timing)


async def _send_direct_copy(
    ctx: Context,
    merged: CallInsights,
    key: str,
    settings: UserSettings,
    reader: str,
    verdicts: Mapping[str, str],
    timing: Mapping[str, float],
) -> None:
    """`reader`'s own copy of the digest in their direct chat, drawn with their settings
    and the feedback line they already saw; one card per (call, person)."""
    services = ctx.services
    card = render_direct_digest(
        services.cards,
        merged,
        settings.zone(services.config.timezone),
        settings.sections,
        call_key=key,
        feedback=feedback_result(verdicts, reader=reader),
    )
    await ctx.send_card(direct(reader), card, card_key=key, digest=True, timing=timing)


async def _note_if_skipped_by_pause(
    ctx: Context, settings: UserSettings, merged: CallInsights, key: str, *, as_owner: bool
) -> None:
    """Remember a digest the person would have got but for their pause, so `resume` can
    say how many there were and offer them."""
    if not settings.is_paused() or merged.account_id is None:
        return
    unpaused = replace(settings, paused_until=None)
    would_get = (
        unpaused.exclusion_reason(merged) is None
        if as_owner
        else unpaused.wants_copy_as_participant(merged)
    )
    if would_get:
        await ctx.services.storage.note_skipped_digest(
            merged.account_id, settings.extension_id, key
        )


async def _channel_still_fits(ctx: Context, settings: UserSettings, channel: Channel) -> bool:
    """Before a channel delivery: the owner must still be in the chat (else the channel is
    dropped from their settings and they are told once), and everyone there must be of the
    call's account (else this call is not posted there)."""
    services, owner = ctx.services, settings.extension_id
    try:
        members = await services.recent_chat_member_ids(ctx.bot, channel.chat_id)
    except (RingCentralNotFound, RingCentralPermissionError):
        members = frozenset()
    if owner not in members:
        current = await services.storage.user_settings(owner)
        if any(c.chat_id == channel.chat_id for c in current.channels):
            await services.storage.save_settings(current.without_channel(channel.chat_id))
            await ctx.send_text(
                direct(owner),
                "You left a group chat where I posted your digests, so I stopped posting them "
                "there. Say **status** to see where they go now; mention me with "
                "**channel add** in a chat to add it again.",
            )
        log.info("owner %s left chat %s; channel dropped", for_log(owner), for_log(channel.chat_id))
        return False
    for member in members:
        if await services.identity_of(ctx.bot, member) is None:
            log.info(
                "chat %s has people of another account; call not posted", for_log(channel.chat_id)
            )
            return False
    return True
