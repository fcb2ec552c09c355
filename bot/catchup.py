"""Finding the digests missed while notifications could not reach us.

RingCentral does not redeliver a notification that failed, and a blacklisted or expired
subscription delivers nothing. So whenever the bot (re)starts or has to recreate the
RingSense subscription, it reads the company call log and, for each recorded call whose
RingSense notification never reached the digest handler, whose digest has not been queued
for every destination its owner chose, and whose insights exist, puts a
notification-shaped item into the inbox. (A call handled while its owner was not opted in
got no digest by choice; opting in later does not send it.)

The call log filters on when a call STARTED, while RingSense announces a call after it
ended and was analysed; so the search starts `catch_up_call_window_minutes` (the longest
call worth recovering plus the analysis delay) before the last event seen. What counts
is what was delivered, not whether the call is known: a call someone looked up with
`insights` is stored, yet its owner has had no digest. The inbox is unique on the item's
id (`catch-up:pbx:<recording id>`) and the outbox keeps one card per call and
destination, so a call found twice, or found and then notified late, still gets exactly
one digest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.events import Notification
from bot.rc import RingCentralError, RingCentralNotFound
from bot.ringsense import CallInsights, InsightsFormatError
from bot.services import Services

log = logging.getLogger(__name__)

LAST_EVENT_KEY = "ringsense.last_event_at"
CALL_LOG_PAGE = 250
# Only RingEX calls (pbx) can be found from the call log: recording id = sourceRecordId.
CATCH_UP_DOMAIN = "pbx"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def last_event_state(when: datetime | None = None) -> dict[str, str]:
    """The named value saying RingSense notifications were arriving at this time (the
    digest handler writes it with the digest, in the same transaction)."""
    return {LAST_EVENT_KEY: _iso(when or datetime.now(UTC))}


async def note_ringsense_event(services: Services, when: datetime | None = None) -> None:
    """Remember that RingSense notifications were arriving at this time."""
    await services.storage.set_state(LAST_EVENT_KEY, _iso(when or datetime.now(UTC)))


class CatchUp:
    def __init__(self, services: Services, wake_inbox: Callable[[], None]) -> None:
        self._services = services
        self._wake_inbox = wake_inbox
        self._running: asyncio.Task[int] | None = None
        self._again = False
        self.last_found = 0

    def trigger(self) -> asyncio.Task[int]:
        """Run in the background. Asked while a run is going, one more run follows it (never
        two at once): the run going may have read the call log before what this trigger is
        about (a subscription recreated meanwhile), so folding the two would lose calls."""
        if self._running is None or self._running.done():
            self._again = False
            self._running = asyncio.create_task(self._runs(), name="catch-up")
        else:
            self._again = True
        return self._running

    async def _runs(self) -> int:
        found = await self._run_safely()
        while self._again:
            self._again = False
            found += await self._run_safely()
        return found

    async def stop(self) -> None:
        """Stop a run in progress (another replica took the `catch-up` lease over; it
        starts its own run, and the inbox deduplicates what both found)."""
        running, self._running = self._running, None
        if running is not None and not running.done():
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running

    async def _run_safely(self) -> int:
        try:
            return await self.run()
        except RingCentralError as err:
            log.warning("catch-up could not finish: %s; it runs again on the next trigger", err)
            return 0

    async def run(self) -> int:
        services = self._services
        if CATCH_UP_DOMAIN not in services.config.ringcentral.ringsense_domains:
            return 0
        storage = services.storage
        started = datetime.now(UTC)
        last_seen = await storage.state(LAST_EVENT_KEY)
        if last_seen is None:
            # First start ever: there is nothing we could have missed.
            await storage.set_state(LAST_EVENT_KEY, _iso(started))
            return 0
        last_event = datetime.fromisoformat(last_seen.replace("Z", "+00:00"))
        # The downtime we cover is capped; the window for long calls comes on top of it.
        last_event = max(last_event, started - timedelta(hours=services.config.catch_up_max_hours))
        since = last_event - timedelta(minutes=services.config.catch_up_call_window_minutes)
        found = 0
        page = 1
        while True:
            records, has_more = await services.service_api.company_call_log(
                date_from=_iso(since), page=page, per_page=CALL_LOG_PAGE
            )
            for record in records:
                found += await self._consider(record)
            if not has_more:
                break
            page += 1
        await storage.set_state(LAST_EVENT_KEY, _iso(started))
        self.last_found = found
        if found:
            log.info("catch-up found %d analysed call(s) missed since %s", found, _iso(since))
            self._wake_inbox()
        return found

    async def _consider(self, record: Any) -> int:
        recording = record.get("recording") if isinstance(record, dict) else None
        if not isinstance(recording, dict) or recording.get("id") is None:
            return 0
        recording_id = str(recording["id"])
        key = f"{CATCH_UP_DOMAIN}:{recording_id}"
        storage = self._services.storage
        if await storage.ringsense_notification_handled(recording_id):
            return 0  # its digest was decided (sent or not) when the notification came
        known = await storage.call_insights(key)
        if known is not None and await self._digest_queued(key, known):
            return 0
        try:
            body = await self._services.service_api.get_record_insights(
                CATCH_UP_DOMAIN, recording_id
            )
        except RingCentralNotFound:
            return 0  # not analysed (yet); its notification will come when it is
        notification = Notification.made_here(
            f"catch-up:{key}",
            f"/ai/ringsense/v1/public/accounts/~/domains/{CATCH_UP_DOMAIN}/insights",
            body,
            owner_id=self._services.service_extension_id,
        )
        return 1 if await storage.add_notification(notification) else 0

    async def _digest_queued(self, key: str, body: Mapping[str, Any]) -> bool:
        """True when the call needs nothing more: its digest was queued for every
        destination its owner's settings name (or it gets none)."""
        try:
            insights = CallInsights.from_api(body)
        except InsightsFormatError:
            return False  # what we stored is unusable: ask RingSense again
        storage = self._services.storage
        settings = await storage.user_settings(insights.owner_extension_id)
        wanted = set(settings.digest_destination_keys(insights))
        return wanted <= await storage.card_destinations(key)
