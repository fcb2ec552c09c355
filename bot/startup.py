"""Bringing the bot up: serve at once, sign in and subscribe in the background.

A bot that exits when its first login is refused with 429 is restarted by its supervisor,
logs in again inside the penalty, and so keeps the penalty alive for ever. So the HTTP
edge starts first (RingCentral's notifications go into the inbox while we are not signed
in yet), and the steps that talk to RingCentral are retried on every transient error:
a 429 waits out `Retry-After` (the governor holds every request of that group back, and
the penalty is kept in the database across restarts), other failures back off
exponentially. Only a refusal that no retry can change (a wrong JWT, a missing
permission) stops the bot, with a message that says what to check.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence

from bot.rc import (
    RingCentralAuthError,
    RingCentralError,
    RingCentralPermissionError,
    RingCentralRateLimited,
)
from bot.workers import backoff_delay

log = logging.getLogger(__name__)

RETRY_CAP_S = 300.0


class StartupFailed(Exception):
    """A configuration problem RingCentral will keep refusing; the message names it and
    holds no secret."""


Step = tuple[str, Callable[[], Awaitable[None]]]


class Startup:
    """Runs the start-up steps in order, each until it succeeds; then the `then` actions
    (an action may return an awaitable: it is awaited before the next).

    `ready` is set once every step is done; `failed` holds the reason when a step can
    never succeed.
    """

    def __init__(self, steps: Sequence[Step], then: Sequence[Callable[[], object]]) -> None:
        self._steps = tuple(steps)
        self._then = tuple(then)
        self.ready = asyncio.Event()
        self.failed: StartupFailed | None = None
        self._finished = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="startup")

    async def wait(self) -> None:
        """Return once the bot is ready; raise StartupFailed if it never can be."""
        self.start()
        await self._finished.wait()
        if self.failed is not None:
            raise self.failed

    async def finished(self) -> StartupFailed | None:
        """Wait until start-up succeeded (None) or failed for good (the reason)."""
        await self._finished.wait()
        return self.failed

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        try:
            for what, step in self._steps:
                await self._until_done(what, step)
            for action in self._then:
                started = action()
                if inspect.isawaitable(started):
                    await started  # e.g. the run-once jobs: started once they run
            self.ready.set()
            log.info("ready: signed in and subscribed")
        except StartupFailed as failure:
            self.failed = failure
            log.error("%s", failure)
        finally:
            self._finished.set()

    async def _until_done(self, what: str, step: Callable[[], Awaitable[None]]) -> None:
        attempt = 0
        while True:
            try:
                await step()
                return
            except RingCentralError as err:
                if not err.retryable:
                    raise StartupFailed(_final_problem(what, err)) from None
                attempt += 1
                delay = backoff_delay(attempt, cap_s=RETRY_CAP_S)
                if isinstance(err, RingCentralRateLimited):
                    # The governor holds the group back for Retry-After; wait at least that.
                    delay = max(delay, err.retry_after)
                log.warning("%s: %s; trying again in %.1f s", what, err, delay)
                await asyncio.sleep(delay)


def _final_problem(what: str, err: RingCentralError) -> str:
    answer = f"{err.status} {err.error_code or ''}".strip()
    if isinstance(err, RingCentralAuthError) and "login" in err.message:
        return (
            f"{what}: RingCentral refused the service user's sign-in ({answer}). Check "
            "RC_JWT (the service user's JWT credential), RC_CLIENT_ID and RC_CLIENT_SECRET, "
            "and RC_SERVER_URL."
        )
    if isinstance(err, RingCentralPermissionError):
        return f"{what}: RingCentral refused ({answer}): the app or user lacks a permission."
    return f"{what}: RingCentral refused ({answer}): {err.message}."
