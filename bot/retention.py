"""Retention: people's words are kept only as long as the configuration allows.

An hourly task (its first round a minute after start) prunes finished inbox and outbox
rows after `retention.messages_days` and stored calls (insights, transcripts) after
`retention.calls_days` (see `Storage.prune` for exactly what).

Dedupe survives pruning: the bare key of a finished notification (its `uuid`, no payload)
is kept for `DEDUPE_KEEP_DAYS`, or longer when the catch-up window is longer, because
RingCentral's redelivery schedule is not documented (API-FACTS B.6, UNCONFIRMED) and
catch-up rebuilds notifications with the same key for calls inside its window. Guessing
long is the safe side: the kept row holds no words. Past that, a stray redelivery of a
call's event still finds the call's posted card (kept as long as the call) and updates it
in place rather than posting a second one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from bot.config import Config
from bot.storage import StorageInterface

log = logging.getLogger(__name__)

PRUNE_INTERVAL_S = 3600.0
FIRST_PRUNE_AFTER_S = 60.0
"""The first round waits this long after start, so start-up never competes with it (a bot
that was down for days may have a lot to prune); then one round every interval."""
DEDUPE_KEEP_DAYS = 30.0


def dedupe_days(config: Config) -> float:
    """How long the bare dedupe keys of finished work are kept."""
    return max(DEDUPE_KEEP_DAYS, config.catch_up_max_hours / 24 + 1)


class RetentionPruner:
    """Prunes shortly after start and then every `interval_s`; `clock` is injectable for
    tests. Each round works in small batches (see `Storage.prune`)."""

    def __init__(
        self,
        storage: StorageInterface,
        config: Config,
        *,
        clock: Callable[[], float] = time.time,
        interval_s: float = PRUNE_INTERVAL_S,
    ) -> None:
        self._storage = storage
        self._config = config
        self._clock = clock
        self._interval_s = interval_s
        self._first_after_s = min(FIRST_PRUNE_AFTER_S, interval_s)
        self._task: asyncio.Task[None] | None = None

    async def prune_once(self) -> dict[str, int]:
        retention = self._config.retention
        pruned = await self._storage.prune(
            now=self._clock(),
            messages_days=retention.messages_days,
            calls_days=retention.calls_days,
            dedupe_days=dedupe_days(self._config),
        )
        if pruned:
            log.info(
                "retention: pruned %s",
                ", ".join(f"{table} {count}" for table, count in sorted(pruned.items())),
            )
        return pruned

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="retention-pruner")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        await asyncio.sleep(self._first_after_s)
        while True:
            try:
                await self.prune_once()
            except Exception:
                # A failed round (a locked database, a disk hiccup) is tried again next hour;
                # the words it should have removed are still covered by the next round.
                log.exception("retention: pruning failed; trying again in an hour")
            await asyncio.sleep(self._interval_s)
