"""The daily rollup: once a day, at the time each person chose in their own time zone
(17:00 on weekdays unless they chose otherwise or turned it off), one card with the day's
analysed calls and their open next steps, each with a Done button.

Exactly once per (person, day), also across restarts and downtime: the card goes through
the outbox under the key `rollup:<account>:<person>:<day>` (queued twice, sent once), and
`rollup_days` remembers the last day handled. A tick finds each person's latest weekday
whose rollup time has passed; if that day is after the last one handled, its rollup is sent
now, so a rollup missed while the bot was down comes when it is back (only the latest day:
nobody gets a pile of old ones). A person seen for the first time (just opted in) gets
their first rollup at the next rollup time, never one for a day already over.
A day with no call and no open next step sends nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo

from bot.access import Identity, may_see
from bot.cards.formatting import UNTITLED_CALL, call_duration, short_line
from bot.cards.todo import LIST_ROLLUP, MAX_ITEMS, todo_card
from bot.ringsense import CallInsights, InsightsFormatError
from bot.settings import UserSettings

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)

ROLLUP_INTERVAL_S: Final = 60.0
ROLLUP_TIME = re.compile(r"^([01]?\d|2[0-3])[:.h]?([0-5]\d)$")
CALLS_LOOKED_AT: Final = 200
CALL_LINES_SHOWN: Final = 30
"""Call lines on one rollup; a busier day ends with a line counting the rest, so the card
stays inside RingCentral's size limit."""

_WEEKDAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS: Final = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)


def parse_rollup_time(text: str) -> str:
    """`17:00`, `9:30`, `1830` → `HH:MM`; ValueError with a helpful message."""
    match = ROLLUP_TIME.match(text.strip().lower())
    if not match:
        raise ValueError(
            "Tell me a time like **rollup 17:00** or **rollup 9:30**, or **rollup off**."
        )
    return f"{int(match.group(1)):02d}:{match.group(2)}"


def due_day(rollup_time: str, now: datetime, zone: ZoneInfo) -> date:
    """The latest weekday whose rollup time (in `zone`) is not after `now`."""
    local = now.astimezone(zone)
    hours, minutes = (int(part) for part in rollup_time.split(":"))
    day = local.date() if local.time() >= time(hours, minutes) else local.date() - timedelta(days=1)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day


def day_label(day: date) -> str:
    return f"{_WEEKDAYS[day.weekday()]} {day.day} {_MONTHS[day.month - 1]}"


async def rollup_card(
    services: Services, settings: UserSettings, day: date, *, notice: str | None = None
) -> dict[str, Any] | None:
    """The rollup of `day` for this person as it is now; None when there is nothing in it."""
    account = settings.account_id
    if account is None:
        return None
    zone = settings.zone(services.config.timezone)
    storage = services.storage
    reader = Identity(account, settings.extension_id)
    admins, home = services.config.admins, services.service_account_id
    lines = []
    for _, body in await storage.calls_of(account, settings.extension_id, CALLS_LOOKED_AT):
        try:
            call = CallInsights.from_api(body, account_id=account)
        except InsightsFormatError:
            continue
        if not may_see(reader, call, admins, home):
            continue  # like `last`: each call checked with the who-sees-what rules
        started = call.recording_start_time
        if started is None or started.astimezone(zone).date() != day:
            continue
        parts = [short_line(call.title) or UNTITLED_CALL, f"{started.astimezone(zone):%H:%M}"]
        duration = call_duration(call)
        if duration:
            parts.append(duration)
        lines.append(" · ".join(parts))
    items, total = await storage.open_next_steps(account, settings.extension_id, MAX_ITEMS)
    if not lines and not items and notice is None:
        return None
    shown_lines = lines[:CALL_LINES_SHOWN]
    if len(lines) > len(shown_lines):
        shown_lines.append(f"And {len(lines) - len(shown_lines)} more calls.")
    return todo_card(
        services.cards,
        items,
        zone,
        heading=f"Your day, {day_label(day)}",
        list_name=LIST_ROLLUP,
        total=total,
        notice=notice,
        calls=shown_lines or ["No analysed calls today."],
        calls_heading=f"Analysed calls ({len(lines)})",
        day=day.isoformat(),
    )


class DailyRollup:
    """Sends the rollups that are due, at start and then every `interval_s`."""

    def __init__(
        self,
        services: Services,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        interval_s: float = ROLLUP_INTERVAL_S,
    ) -> None:
        self._services = services
        self._clock = clock
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    async def run_once(self, now: datetime | None = None) -> int:
        """Queue every rollup due at `now`; returns how many were queued."""
        moment = now or self._clock()
        services = self._services
        queued = 0
        for settings in await services.storage.rollup_candidates():
            account = settings.account_id
            if account is None or settings.rollup_time is None:
                continue
            if services.install_for_account(account) is None:
                continue  # no bot in that account (uninstalled): nobody to send it
            zone = settings.zone(services.config.timezone)
            day = due_day(settings.rollup_time, moment, zone)
            last = await services.storage.last_rollup_day(account, settings.extension_id)
            if last is not None and last >= day.isoformat():
                continue
            # Someone seen for the first time gets their first rollup at the next rollup
            # time, not one for a day that was already over when they opted in.
            if last is not None and not settings.is_paused():
                queued += await self._send(settings, account, day)
            await services.storage.set_last_rollup_day(
                account, settings.extension_id, day.isoformat()
            )
        if queued:
            services.wake_outbox()
        return queued

    async def _send(self, settings: UserSettings, account: str, day: date) -> int:
        card = await rollup_card(self._services, settings, day)
        if card is None:
            return 0
        queued = await self._services.storage.enqueue(
            f"rollup:{account}:{settings.extension_id}:{day.isoformat()}",
            {"kind": "direct", "extensionId": settings.extension_id},
            {"kind": "card", "card": card},
            account_id=account,
        )
        return int(queued)

    def start(self) -> None:
        if self._task is None and self._interval_s > 0:
            self._task = asyncio.create_task(self._run(), name="daily-rollup")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("daily rollup failed; trying again at the next tick")
            await asyncio.sleep(self._interval_s)
