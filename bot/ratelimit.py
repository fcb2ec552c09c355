"""Staying inside RingCentral's rate limits instead of bouncing off them.

RingCentral limits each user (here: each identity's token) per group of endpoints over a
sliding 60 s window (Light 50, Medium 40, Heavy 10, Auth 5 by default, API-FACTS G), and a
request sent during a 429 penalty restarts the penalty, so a client that retries blindly
can lock itself out. The governor therefore:

- paces requests per group so a window never holds more than the limit (the limit comes
  from the latest `X-Rate-Limit-Limit`/`-Window` headers, else the documented default);
- after a 429, sends nothing in that group until `Retry-After` has passed; when the header
  is missing, 30 s (as the docs advise) doubling with every further header-less 429 up to
  15 minutes, until an answer that is not a 429 arrives;
- keeps that penalty in the database (`PenaltyMemory`), so a restarted bot does not walk
  straight back into it: a request during the penalty would only restart it; and, once a
  window is half used, the times of its requests, so a restarted bot waits for room
  instead of meeting a 429 (and a whole penalty) with its first request;
- sends one request of a group at a time while it does not know where the group stands:
  after a start (the previous process may have used the whole window, or been penalised
  in a way nobody stored) and after a 429, until an answer sent since then is not a 429.
  Requests sent together into a penalty would all arrive inside it and each restart it;
  one at a time, only the probe meets it and the others wait out its `Retry-After`. Once
  an answer says where the window stands (`X-Rate-Limit-Remaining`), or our own count
  covers a whole window, requests go out side by side again, paced by the window.

Several replicas on one PostgreSQL database share one count per (identity, group): the
governor then reserves every request's place in the database (`SharedWindows`, one short
transaction on the group's row, times from the database's clock), so the replicas together
stay inside the window and none sends during a penalty another one met. More than that,
one request of a group is on the wire at a time across the replicas (`on_the_wire`, held
from before the reservation until the answer is written): RingCentral restarts a penalty
for every request arriving during it, and a request already on its way when another one
meets a 429 (an injected storm gives no warning, so serialising only "while at risk" is
not enough) costs a whole penalty; a request that waits for the previous one's answer
knows of it. It costs little: the limits are 5 to 50 a minute per group, which one
request at a time fills while a round trip takes under 1.2 s (a limit raised far above
that would be filled only up to one round trip at a time). A replica that dies mid-
request releases the group at once (its database session ends). The back-off after a 429
without `Retry-After` is counted in the row too (replicas double one count), and
`delay_for` reads the row. Without a reservation, no request: the database not answering
stops the sending, never the counting.

On SQLite (one process) requests of a group still go side by side once the window is
known, and one at a time after a start or a 429 (above): one process learns of a 429 the
moment it is answered, so only a request already in flight at that moment can arrive
inside a penalty; serialising every request there too would make one slow request (up to
30 s) hold up its whole group, subscription checks included, for the default install.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

log = logging.getLogger(__name__)

DEFAULT_LIMITS = {"light": 50, "medium": 40, "heavy": 10, "auth": 5}
# RingCX's own limits (API-FACTS F): per minute unless a window is given.
RINGCX_LIMITS = {
    "ringcx-auth": (5, 60.0),
    "ringcx-metadata-minute": (3, 60.0),
    "ringcx-metadata-quarter": (9, 900.0),
    "ringcx-transcript": (120, 60.0),
}
DEFAULT_WINDOW_S = 60.0
SHARED_TIMEOUT_S = 10.0
"""How long a replica waits for the shared window to answer before it gives up sending."""
SHARED_PROBE_POLL_S = 0.2
"""How long a replica waits before asking the shared window again when it refused a place
without saying for how long."""
RETRY_AFTER_MISSING_S = 30.0
MAX_BACKOFF_S = 900.0

# (method, path pattern, group): API-FACTS section G, from the spec's x-throttling-group.
_GROUPS: tuple[tuple[str, re.Pattern[str], str], ...] = tuple(
    (method, re.compile(pattern), group)
    for method, pattern, group in (
        ("*", r"^/restapi/oauth/", "auth"),
        ("*", r"^/ai/ringsense/", "light"),
        ("*", r"^/ai/", "heavy"),
        ("*", r"/call-log", "heavy"),
        ("*", r"/recording/", "heavy"),
        ("GET", r"^/restapi/v1\.0/subscription", "light"),
        ("POST", r"^/restapi/v1\.0/subscription/[^/]+/renew$", "light"),
        ("*", r"^/restapi/v1\.0/subscription", "medium"),
        ("GET", r"^/restapi/v1\.0/account/[^/]+/extension/[^/]+(/authz-profile/check)?$", "light"),
        ("GET", r"^/team-messaging/v1/chats/[^/]+$", "light"),
        ("GET", r"^/team-messaging/v1/chats/[^/]+/posts/[^/]+$", "light"),
        ("GET", r"^/team-messaging/v1/persons/", "light"),
        ("GET", r"^/team-messaging/v1/conversations/[^/]+$", "light"),
        ("*", r"^/team-messaging/", "medium"),
    )
)


def group_of(method: str, path: str) -> str:
    """The throttling group of an endpoint (lowercase); unknown endpoints count as Medium."""
    for rule_method, pattern, group in _GROUPS:
        if rule_method in ("*", method) and pattern.search(path):
            return group
    return "medium"


class RateObserver(Protocol):
    """Who counts answers and penalties (the metrics); optional."""

    def ringcentral_answer(self, group: str, status: int | None) -> None: ...

    def ringcentral_penalty(self, group: str, seconds: float) -> None: ...


class _Turns:
    """Whose turn it is to take a group's next place: keeping the subscriptions alive goes
    before everything else waiting (a check must not sit behind a minute of RingSense
    reads), then everyone in the order they came. One holder at a time, like a lock."""

    def __init__(self) -> None:
        self._held = False
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._others: deque[asyncio.Future[None]] = deque()

    @asynccontextmanager
    async def turn(self, *, urgent: bool = False) -> AsyncIterator[None]:
        if self._held or self._urgent or self._others:
            line = self._urgent if urgent else self._others
            handed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            line.append(handed)
            try:
                await handed
            except asyncio.CancelledError:
                if handed.done() and not handed.cancelled():
                    self._hand_over()  # the turn came with the cancellation: pass it on
                else:
                    line.remove(handed)
                raise
        else:
            self._held = True
        try:
            yield
        finally:
            self._hand_over()

    def _hand_over(self) -> None:
        for line in (self._urgent, self._others):
            while line:
                waiting = line.popleft()
                if not waiting.done():
                    waiting.set_result(None)  # the turn passes on: still held
                    return
        self._held = False


@dataclass
class _GroupState:
    limit: int
    window_s: float
    counting_since: float
    """When this process began counting the group's requests: once a whole window has
    passed, our own count is the window's."""
    sent: deque[float] = field(default_factory=deque)
    penalty_until: float = 0.0
    unexplained_429s: int = 0
    known: bool = False
    """Whether requests may go side by side: an answer since the start and since the last
    429 was not a 429, and the window's use is known. Until then, one at a time."""
    penalties: int = 0
    """429s so far: an answer counts for `known` only if its request left after the last."""
    in_flight: int = 0
    turns: _Turns = field(default_factory=_Turns)
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    """Set whenever a request of the group ends: a probe's waiters look again."""
    unshared_pause: float | None = None
    """With shared windows: a penalty met here and not yet written to the shared row."""


@dataclass(frozen=True)
class KeptWindow:
    """A group's window as kept across a restart."""

    limit: int
    window_s: float
    ages_s: list[float]
    """How many seconds ago each request in it was sent."""


@dataclass(frozen=True)
class SendTicket:
    """One request's place in its group, held from just before it is sent until its answer."""

    group: str
    after_penalties: int
    sent_at: float
    shared: SharedAnswer | None = None
    """With shared windows: what the answer told, reported to the database at the end."""


class PacingUnavailable(Exception):
    """The shared window could not be asked (the database does not answer): the request
    is not sent, since nobody could tell whether the window or a penalty allows it."""


@dataclass
class SharedAnswer:
    """What one request's answer said, gathered while it is handled and written to the
    shared window once the request is done (`SharedWindows.finish`)."""

    sent_at: float
    """The reservation's time on the database's clock."""
    probe: bool
    """The group's state was unknown when it left (every request of a group goes alone
    across replicas anyway: `SharedWindows.on_the_wire`)."""
    relieved: bool = False
    usage_told: bool = False
    limit: int | None = None
    remaining: int | None = None
    window_s: int | None = None


@dataclass(frozen=True)
class Reservation:
    """The shared window's answer to "may one more request go?"."""

    granted: bool
    wait_s: float
    """Not granted: how long until the penalty ends or the window has room."""
    sent_at: float
    """Granted: the request's place in the window, on the database's clock."""
    penalties: int
    limit: int
    window_s: float
    known: bool
    ages_s: tuple[float, ...]
    """How long ago each request in the window was sent (the window as it stands)."""
    penalty_left_s: float
    unexplained_429s: int = 0
    """429s without `Retry-After` since the last other answer, on every replica."""


@dataclass(frozen=True)
class WindowView:
    """A group's shared window as it stands, read without taking a place."""

    limit: int
    window_s: float
    ages_s: tuple[float, ...]
    penalty_left_s: float


class SharedWindows(Protocol):
    """Where replicas keep their windows and penalties together (PostgreSQL's
    `rate_limits`: see bot/store/postgres/shared.py). Times are the backend's own clock."""

    async def reserve(
        self,
        identity: str,
        group: str,
        *,
        default_limit: int,
        default_window_s: float,
        starting: bool,
    ) -> Reservation: ...

    def on_the_wire(self, identity: str, group: str) -> AbstractAsyncContextManager[None]:
        """Held while one request of (identity, group) is reserved, sent and answered: no
        other replica's request of the group is out meanwhile. Released at once if this
        replica dies."""
        ...

    async def standing(self, identity: str, group: str) -> WindowView | None: ...

    async def penalise(
        self,
        identity: str,
        group: str,
        pause_s: float,
        *,
        default_limit: int,
        default_window_s: float,
        unexplained_429s: int = 0,
    ) -> None: ...

    async def finish(
        self, identity: str, group: str, answer: SharedAnswer, after_penalties: int
    ) -> None: ...

    async def forget(self, identity: str) -> None:
        """Delete every window and penalty of `identity` (a token RingCentral refused:
        nobody sends with it again, and anyone can make the bot try one)."""
        ...


class RateGovernor:
    """One identity's view of its rate limits. Safe to share between concurrent tasks."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        *,
        memory: PenaltyMemory | None = None,
        identity: str = "",
        observer: RateObserver | None = None,
        shared: SharedWindows | None = None,
    ) -> None:
        self.observer = observer
        self._clock = clock
        self._sleep = sleep
        self._groups: dict[str, _GroupState] = {}
        self._memory = memory
        self._identity = identity
        self._shared = shared
        self._shared_started: set[str] = set()
        self.waited_s = 0.0

    def _state(self, group: str) -> _GroupState:
        state = self._groups.get(group)
        if state is None:
            limit, window = RINGCX_LIMITS.get(group, (DEFAULT_LIMITS.get(group, 40), 60.0))
            state = _GroupState(limit, window, counting_since=self._clock())
            self._groups[group] = state
        return state

    @asynccontextmanager
    async def sending(self, group: str, *, urgent: bool = False) -> AsyncIterator[SendTicket]:
        """Hold one request's place in `group` while it is sent and answered.

        Waits until the window has room and no penalty runs, and, while the group's state
        is unknown, until no other request of the group is out. Report the answer with
        `relieve` (not a 429, with the ticket) or `penalise` before leaving the block.
        `urgent` (subscription upkeep) takes the next place before the others waiting.
        """
        state = self._state(group)
        if self._shared is not None:
            async with self._sending_shared(group, state, self._shared, urgent) as ticket:
                yield ticket
            return
        ticket = await self._acquire(group, state, urgent)
        try:
            yield ticket
        finally:
            state.in_flight -= 1
            self._counted_by_now(state, ticket.sent_at)
            state.answered.set()

    def _counted_by_now(self, state: _GroupState, sent_at: float) -> None:
        """Move a request's place in the window from when it was sent to when it was
        answered, once the window is half used. RingCentral counts it from its arrival,
        somewhere in between; on a loaded machine the gap can pass the window's margin,
        and the count by send times would then let one request too many go."""
        if 2 * len(state.sent) < state.limit:
            return
        try:
            state.sent.remove(sent_at)
        except ValueError:
            return  # it has left the window already
        state.sent.append(self._clock())  # the latest time yet: the order holds
        self._keep_window(state)

    async def _acquire(self, group: str, state: _GroupState, urgent: bool = False) -> SendTicket:
        async with state.turns.turn(urgent=urgent):
            # A request is counted by RingCentral when it arrives, a little after we send
            # it; letting our window run slightly longer keeps us from crossing the line.
            while True:
                window = state.window_s + min(1.0, 0.02 * state.window_s)
                now = self._clock()
                while state.sent and state.sent[0] <= now - window:
                    state.sent.popleft()
                wait = state.penalty_until - now
                if wait <= 0 and len(state.sent) >= state.limit:
                    wait = state.sent[0] + window - now
                if wait > 0:
                    self.waited_s += wait
                    await self._sleep(wait)
                    continue
                if not state.known and state.in_flight > 0:
                    # A probe is out: its answer says whether the rest may follow. The
                    # penalty or window it brings back is checked again above.
                    state.answered.clear()
                    await state.answered.wait()
                    continue
                state.sent.append(now)
                state.in_flight += 1
                self._keep_window(state)
                return SendTicket(group, state.penalties, now)

    @asynccontextmanager
    async def _sending_shared(
        self, group: str, state: _GroupState, shared: SharedWindows, urgent: bool = False
    ) -> AsyncIterator[SendTicket]:
        """A place reserved in the shared window, and the group's wire held across the
        replicas until the answer is written. This replica's requests of a group take
        their turns (urgent ones first) and hold them for the whole request; the wire is
        let go while a penalty or a full window is waited out."""
        async with state.turns.turn(urgent=urgent):
            while True:
                async with contextlib.AsyncExitStack() as holding:
                    await self._hold_wire(group, shared, holding)
                    reservation = await self._reserve_shared(group, state, shared)
                    if reservation.granted:
                        state.in_flight += 1
                        answer = SharedAnswer(reservation.sent_at, probe=not reservation.known)
                        ticket = SendTicket(group, reservation.penalties, self._clock(), answer)
                        try:
                            yield ticket
                        finally:
                            state.in_flight -= 1
                            await self._finish_shared(group, ticket, answer, shared)
                            state.answered.set()
                        return
                wait = reservation.wait_s if reservation.wait_s > 0 else SHARED_PROBE_POLL_S
                self.waited_s += wait
                await self._sleep(wait)

    async def _hold_wire(
        self, group: str, shared: SharedWindows, holding: contextlib.AsyncExitStack
    ) -> None:
        """Hold the group's wire until `holding` closes; a database that does not answer
        sends nothing."""
        try:
            await holding.enter_async_context(shared.on_the_wire(self._identity, group))
        except Exception as err:
            log.warning(
                "no %s request sent: its turn among the replicas was not had "
                "(the database did not answer, or another replica's request is stuck): %s",
                group,
                type(err).__name__,
            )
            raise PacingUnavailable(group) from None

    async def _reserve_shared(
        self, group: str, state: _GroupState, shared: SharedWindows
    ) -> Reservation:
        try:
            reservation = await asyncio.wait_for(
                shared.reserve(
                    self._identity,
                    group,
                    default_limit=state.limit,
                    default_window_s=state.window_s,
                    starting=group not in self._shared_started,
                ),
                SHARED_TIMEOUT_S,
            )
        except (Exception, TimeoutError) as err:
            log.warning(
                "no %s request sent: the shared rate-limit window did not answer (%s)",
                group,
                type(err).__name__,
            )
            raise PacingUnavailable(group) from None
        self._shared_started.add(group)
        self._mirror(state, reservation)
        return reservation

    def _mirror(self, state: _GroupState, reservation: Reservation) -> None:
        """This replica's view of the shared window, for `delay_for`, `probing` and
        `penalty_left` (which answer at once, without the database)."""
        state.known = reservation.known
        state.penalties = reservation.penalties
        state.unexplained_429s = reservation.unexplained_429s
        self._mirror_window(state, reservation)
        if reservation.granted:
            state.sent.append(self._clock())

    def _mirror_window(self, state: _GroupState, view: Reservation | WindowView) -> None:
        now = self._clock()
        state.limit, state.window_s = view.limit, view.window_s
        state.penalty_until = now + view.penalty_left_s
        state.sent = deque(now - age for age in sorted(view.ages_s, reverse=True))

    async def _share_penalty(self, group: str, shared: SharedWindows) -> None:
        """Write a penalty met here into the group's shared row (GREATEST of both ends)."""
        state = self._state(group)
        pause, state.unshared_pause = state.unshared_pause, None
        if pause is None:
            return
        try:
            await asyncio.wait_for(
                asyncio.shield(
                    shared.penalise(
                        self._identity,
                        group,
                        pause,
                        default_limit=state.limit,
                        default_window_s=state.window_s,
                        unexplained_429s=state.unexplained_429s,
                    )
                ),
                SHARED_TIMEOUT_S,
            )
        except (Exception, TimeoutError) as err:
            # This replica keeps the penalty; the others cannot send while the database
            # does not answer (no reservation), or meet the 429 themselves.
            log.warning("a %s penalty was not shared (%s)", group, type(err).__name__)

    async def _finish_shared(
        self, group: str, ticket: SendTicket, answer: SharedAnswer, shared: SharedWindows
    ) -> None:
        """Write what the answer said to the shared window (before the wire is let go, so
        the next request of any replica reads it): a penalty met, the real limit and use,
        whether the group is known. A lost write leaves the row more careful, or the
        replicas meet the 429 again one request at a time."""
        await self._share_penalty(group, shared)
        try:
            await asyncio.wait_for(
                asyncio.shield(
                    shared.finish(self._identity, group, answer, ticket.after_penalties)
                ),
                SHARED_TIMEOUT_S,
            )
        except (Exception, TimeoutError) as err:
            log.warning(
                "the answer of a %s request was not written to the shared window (%s)",
                group,
                type(err).__name__,
            )

    def _keep_window(self, state: _GroupState) -> None:
        """Have the memory keep the window's use once it is half used: below that, a
        restarted bot's first answer tells it the rest in time."""
        if self._memory is not None and 2 * len(state.sent) >= state.limit:
            self._memory.keep_window(self._identity, self)

    def kept_windows(self) -> dict[str, KeptWindow]:
        """The groups whose windows are at least half used, as the memory keeps them."""
        now = self._clock()
        return {
            group: KeptWindow(state.limit, state.window_s, [now - sent for sent in state.sent])
            for group, state in self._groups.items()
            if 2 * len(state.sent) >= state.limit
        }

    async def delay_for(self, group: str, *, keep_share: float = 0.0) -> float:
        """Seconds before one more request in `group` could go out while leaving
        `keep_share` of the window's places unused (for more important requests); 0 when it
        could go now. Nothing is counted: `sending` still has to be entered. With shared
        windows, judged on the group's row (every replica's requests); if the database does
        not answer, on this replica's last view of it (the request itself is refused then)."""
        state = self._state(group)
        if self._shared is not None:
            try:
                view = await asyncio.wait_for(
                    self._shared.standing(self._identity, group), SHARED_TIMEOUT_S
                )
            except (Exception, TimeoutError) as err:
                log.warning("the shared %s window was not read (%s)", group, type(err).__name__)
            else:
                if view is not None:
                    self._mirror_window(state, view)
        keep_free = math.ceil(state.limit * keep_share)
        window = state.window_s + min(1.0, 0.02 * state.window_s)
        now = self._clock()
        wait = state.penalty_until - now
        usable = max(1, state.limit - keep_free)
        recent = [sent for sent in state.sent if sent > now - window]
        if len(recent) >= usable:
            wait = max(wait, recent[len(recent) - usable] + window - now)
        return max(0.0, wait)

    def observe(
        self,
        group: str,
        limit: int | None,
        remaining: int | None,
        window_s: int | None,
        ticket: SendTicket | None = None,
    ) -> None:
        """Learn the real numbers from an answer's `X-Rate-Limit-*` headers (the answer to
        `ticket`'s request: with shared windows, they are written when it ends)."""
        if ticket is not None and ticket.shared is not None:
            ticket.shared.limit, ticket.shared.remaining = limit, remaining
            ticket.shared.window_s = window_s
        state = self._state(group)
        if limit is not None and limit > 0:
            state.limit = limit
        if window_s is not None and window_s > 0:
            state.window_s = float(window_s)
        if remaining is not None and limit is not None:
            # The server counted more than we did (another process with the same token, or
            # requests before a restart): fill our window so we do not overshoot.
            used = limit - remaining
            now = self._clock()
            if len(state.sent) < used:
                while len(state.sent) < used:
                    state.sent.appendleft(now)
                self._keep_window(state)

    def answered(self, group: str, status: int | None) -> None:
        """An answer came (its HTTP status), or none did (None): for the metrics."""
        if self.observer is not None:
            self.observer.ringcentral_answer(group, status)

    def penalise(self, group: str, retry_after_s: float | None) -> float:
        """Pause the group after a 429; the pause in seconds."""
        state = self._state(group)
        if retry_after_s is None:
            state.unexplained_429s += 1
            doublings = min(state.unexplained_429s - 1, 10)
            pause = min(RETRY_AFTER_MISSING_S * float(2**doublings), MAX_BACKOFF_S)
        else:
            pause = max(0.0, retry_after_s)
        if self.observer is not None:
            self.observer.ringcentral_penalty(group, pause)
        state.penalty_until = max(state.penalty_until, self._clock() + pause)
        state.penalties += 1
        state.known = False
        if self._shared is not None:
            # Written by `remember_penalty`, or at the latest when the request ends.
            state.unshared_pause = max(state.unshared_pause or 0.0, pause)
        return pause

    def relieve(
        self, group: str, ticket: SendTicket | None = None, *, usage_told: bool = False
    ) -> None:
        """An answer that is not a 429: the next header-less 429 starts the backoff again.

        With the request's `ticket`, it may also end the one-at-a-time probing: if the
        request left after the last 429 and the window's use is known, because the answer
        said it (`usage_told`: `X-Rate-Limit-Remaining`, given to `observe`) or because
        we have counted every request of the group for a whole window ourselves.
        """
        state = self._state(group)
        state.unexplained_429s = 0
        if ticket is not None and ticket.shared is not None:
            # Whether the group becomes known is the shared window's to decide (its own
            # count of 429s and of the time it has counted), when the request ends.
            ticket.shared.relieved = True
            ticket.shared.usage_told = usage_told
            return
        if ticket is None or ticket.after_penalties != state.penalties or state.known:
            return
        counted_a_window = self._clock() - state.counting_since >= state.window_s
        if usage_told or counted_a_window:
            state.known = True
            state.answered.set()

    def probing(self, group: str) -> bool:
        """Whether requests of `group` go one at a time (its state is not known)."""
        return not self._state(group).known

    def penalty_left(self, group: str) -> float:
        return max(0.0, self._state(group).penalty_until - self._clock())

    def restore_window(self, group: str, kept: KeptWindow) -> None:
        """The window as a previous process left it: its limit and length as RingCentral
        last told them, and its requests (they still count on RingCentral's side)."""
        state = self._state(group)
        state.limit, state.window_s = kept.limit, kept.window_s
        now = self._clock()
        window = state.window_s + min(1.0, 0.02 * state.window_s)
        earlier = sorted(now - age for age in kept.ages_s if 0 <= age < window)
        state.sent = deque(sorted([*earlier, *state.sent]))

    def restore_penalty(self, group: str, seconds_left: float) -> None:
        """A penalty learned before a restart: nothing in `group` for this long."""
        if seconds_left > 0:
            state = self._state(group)
            state.penalty_until = max(state.penalty_until, self._clock() + seconds_left)

    async def remember_penalty(self, group: str) -> None:
        """Store the group's current penalty, if there is a memory to keep it in; with
        shared windows, in the group's row, where every replica's next request sees it."""
        if self._shared is not None:
            await self._share_penalty(group, self._shared)
            return
        if self._memory is not None:
            await self._memory.save(self._identity, group, self.penalty_left(group))


class PenaltyStore(Protocol):
    """Where penalties are kept (the bot's `bot_state` table)."""

    async def set_state(self, key: str, value: str) -> None: ...

    async def states_with_prefix(self, prefix: str) -> Mapping[str, str]: ...


PENALTY_KEY_PREFIX = "ratelimit.penalty."
WINDOW_KEY_PREFIX = "ratelimit.window."
KEEP_WINDOWS_EVERY_S = 0.25
"""How long window changes are gathered before they are written: a bot killed within
this much of a send may forget it (its successor's probe then meets the 429 at worst)."""


class PenaltyMemory:
    """429 penalties per (identity, group), kept as wall-clock ends so they outlive the
    process (with `shared` windows, in their table instead: see `SharedWindows`).
    RingCentral restarts a penalty on every request made during it, so a bot
    that forgot it on restart (a supervisor restarting a crashed bot) would keep itself
    locked out. Identities are names (`service`) or token fingerprints, never tokens.

    It keeps the use of busy windows too (the wall-clock times of the requests in it), so
    a restarted bot does not meet a 429 because its predecessor used the window up. Those
    are written in the background, the latest state only, never holding a request up; a
    bot killed within `KEEP_WINDOWS_EVERY_S` of a send may lose it, and then its
    successor's first request, sent alone, meets the 429 at worst.
    """

    def __init__(
        self,
        store: PenaltyStore,
        wall_clock: Callable[[], float] = time.time,
        observer: RateObserver | None = None,
        shared: SharedWindows | None = None,
    ) -> None:
        self._store = store
        self._shared = shared
        self._observer = observer
        self._wall_clock = wall_clock
        self._ends: dict[tuple[str, str], float] = {}
        self._windows: dict[tuple[str, str], tuple[int, float, list[float]]] = {}
        self._unsaved_windows: dict[str, RateGovernor] = {}
        self._window_saver: asyncio.Task[None] | None = None
        self._governors: dict[str, RateGovernor] = {}

    async def load(self) -> None:
        """Read the penalties and window uses stored before this start (ended ones are
        ignored). Nothing to read with shared windows: their rows are the memory."""
        if self._shared is not None:
            return
        for key, value in (await self._store.states_with_prefix(PENALTY_KEY_PREFIX)).items():
            identity, _, group = key.removeprefix(PENALTY_KEY_PREFIX).rpartition(".")
            try:
                self._ends[(identity, group)] = float(value)
            except ValueError:
                continue
        for key, value in (await self._store.states_with_prefix(WINDOW_KEY_PREFIX)).items():
            identity, _, group = key.removeprefix(WINDOW_KEY_PREFIX).rpartition(".")
            try:
                kept = json.loads(value)
                limit, window_s = int(kept["limit"]), float(kept["windowSeconds"])
                times = [float(t) for t in kept["sent"]]
            except (ValueError, TypeError, KeyError):
                continue
            if limit > 0 and window_s > 0:
                self._windows[(identity, group)] = (limit, window_s, times)

    def governor(self, identity: str) -> RateGovernor:
        """The governor of this identity, started with its stored penalties and windows.
        One per identity: RingCentral counts per user, so two clients with the same token
        must share one count (and one probe)."""
        existing = self._governors.get(identity)
        if existing is not None:
            return existing
        if self._shared is not None:
            # The shared windows keep penalties and use themselves, across restarts too.
            governor = RateGovernor(identity=identity, observer=self._observer, shared=self._shared)
            self._governors[identity] = governor
            return governor
        governor = RateGovernor(memory=self, identity=identity, observer=self._observer)
        self._governors[identity] = governor
        now = self._wall_clock()
        for (owner, group), ends in self._ends.items():
            if owner == identity:
                governor.restore_penalty(group, ends - now)
        for (owner, group), (limit, window_s, times) in self._windows.items():
            if owner == identity:
                governor.restore_window(
                    group, KeptWindow(limit, window_s, [now - sent for sent in times])
                )
        return governor

    async def forget(self, identity: str) -> None:
        """Drop an identity whose token RingCentral refused: its governor, its windows and
        penalties here, and its rows in the shared windows. A stranger can make the bot try
        any number of made-up tokens (the install address); none may leave state behind."""
        self._governors.pop(identity, None)
        self._unsaved_windows.pop(identity, None)
        for key in [key for key in self._ends if key[0] == identity]:
            del self._ends[key]
        for key in [key for key in self._windows if key[0] == identity]:
            del self._windows[key]
        if self._shared is not None:
            await self._shared.forget(identity)

    def keep_window(self, identity: str, governor: RateGovernor) -> None:
        """Keep this identity's busy windows soon: their limit, length and use (the
        wall-clock times of their requests). Writes are gathered for `KEEP_WINDOWS_EVERY_S`,
        so a busy group costs a few small writes a second, not one per request."""
        self._unsaved_windows[identity] = governor
        if self._window_saver is None or self._window_saver.done():
            self._window_saver = asyncio.get_running_loop().create_task(self._save_windows())

    async def _save_windows(self) -> None:
        await asyncio.sleep(KEEP_WINDOWS_EVERY_S)
        while self._unsaved_windows:
            identity, governor = self._unsaved_windows.popitem()
            now = self._wall_clock()
            for group, window in governor.kept_windows().items():
                kept = {
                    "limit": window.limit,
                    "windowSeconds": window.window_s,
                    "sent": [round(now - age, 3) for age in window.ages_s],
                }
                try:
                    await self._store.set_state(
                        f"{WINDOW_KEY_PREFIX}{identity}.{group}", json.dumps(kept)
                    )
                except Exception as err:  # the database is closing; a later start probes
                    log.debug("the %s window's use was not kept: %s", group, type(err).__name__)
                    self._unsaved_windows.clear()
                    return

    async def flush(self) -> None:
        """Write what is still unsaved (before the database closes)."""
        if self._window_saver is not None:
            await self._window_saver

    async def save(self, identity: str, group: str, seconds_left: float) -> None:
        ends = self._wall_clock() + seconds_left
        if ends <= self._ends.get((identity, group), 0.0):
            return
        self._ends[(identity, group)] = ends
        await self._store.set_state(f"{PENALTY_KEY_PREFIX}{identity}.{group}", repr(ends))
