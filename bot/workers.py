"""Background workers that drain a SQLite queue with bounded concurrency.

The inbox worker dispatches stored notifications; the delivery worker (bot/outbox.py)
sends queued cards and messages. Both share this loop: take due rows, run each in a
tracked task, sleep until woken or until the next retry is due, and on shutdown stop
taking work and let what is in flight finish within a bound. Rows that were in flight
when the process died are still `pending` in SQLite, so a restart simply picks them up.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import random
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any, Generic, TypeVar

from bot import events
from bot.events import MalformedNotification, Notification
from bot.logs import log_context
from bot.metrics import notification_arrived_at
from bot.rc import RingCentralError, RingCentralRateLimited
from bot.ringsense import CallInsights, InsightsFormatError
from bot.router import Dispatched, Dispatcher
from bot.services import Services
from bot.storage import InboxItem, split_transcript
from bot.store.interface import PendingLines, SharedQueue

log = logging.getLogger(__name__)

Item = TypeVar("Item")

MAX_HELD = 100
"""Items a worker keeps in memory with their content; beyond, it keeps their ids."""

DATABASE_RETRY_S = 5.0
"""How soon a worker reads the database again after it failed to answer."""


def backoff_delay(attempt: int, base_s: float = 1.0, cap_s: float = 300.0) -> float:
    """Exponential backoff with full jitter: attempt 1 waits up to base, then doubling."""
    ceiling = min(cap_s, base_s * (2 ** max(0, attempt - 1)))
    return random.uniform(ceiling / 2, ceiling)


class KeyedLock:
    """One FIFO lock per key, forgotten when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class QueueWorker(ABC, Generic[Item]):
    """Runs queued items with bounded concurrency, handed over in memory.

    Whoever commits a row hands it over (`hand_over`) with everything needed to run it, so
    the worker never polls the database for new work. It reads the database only when it
    must: at start (rows an earlier process left, e.g. after a crash), when a retry it
    scheduled falls due (`retry_at`), and when told something was stored that was not
    handed over (`wake`). Items handed over while the worker holds `MAX_HELD` already
    are kept as their id and read back when their turn comes, so memory stays bounded.
    """

    name = "worker"

    def __init__(self, concurrency: int, storage: object = None) -> None:
        self._concurrency = concurrency
        # Replicas sharing the queue: rows are claimed before they start (see `_claim`).
        self._shared = storage if isinstance(storage, SharedQueue) else None
        self._keeping_claims: asyncio.Task[None] | None = None
        self._last_stored_read = 0.0
        self._wake = asyncio.Event()
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        self._running: dict[int, Item] = {}  # the items of `_in_flight`
        # Handed over, not yet started: per priority (lowest first), the item or its id.
        self._ready: dict[int, collections.deque[Item | int]] = {}
        self._held = 0
        self._claimed: set[int] = set()  # ids ready or in flight
        self._read_stored = True  # at start: what an earlier process left
        self._retry_at: float | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = False

    def hand_over(self, item: Item) -> None:
        """A committed row to run (called right after its commit, in commit order)."""
        item_id = self._item_id(item)
        if self._stopping or item_id in self._claimed:
            return  # stored: the next start reads it; or it is here already
        self._claimed.add(item_id)
        queue = self._ready.setdefault(self._priority(item), collections.deque())
        if self._held < MAX_HELD:
            queue.append(item)
            self._held += 1
        else:
            queue.append(item_id)
        self._wake.set()

    def wake(self) -> None:
        """Something was stored that was not handed over (a resend, a row written by
        other code): read the database once."""
        self._read_stored = True
        self._wake.set()

    def retry_at(self, due_at: float) -> None:
        """An item was rescheduled for `due_at` (epoch seconds): read it back then."""
        if self._retry_at is None or due_at < self._retry_at:
            self._retry_at = due_at
        self._wake.set()

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._run(), name=self.name)
        if self._shared is not None:
            self._keeping_claims = asyncio.create_task(
                self._keep_claims(self._shared), name=f"{self.name}-claims"
            )

    async def stop(self, drain_timeout_s: float = 10.0) -> None:
        """Stop taking work; give in-flight items `drain_timeout_s` to finish."""
        self._stopping = True
        self._wake.set()
        if self._loop_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        not_started = [self._item_id_of(entry) for q in self._ready.values() for entry in q]
        cut_off: list[int] = []
        if self._in_flight:
            _, pending = await asyncio.wait(list(self._in_flight.values()), timeout=drain_timeout_s)
            cut_off = [item_id for item_id, task in self._in_flight.items() if task in pending]
            for task in pending:
                task.cancel()
            if pending:
                log.warning(
                    "%s: %d items cut off at shutdown; they stay queued", self.name, len(pending)
                )
                await asyncio.gather(*pending, return_exceptions=True)
        if self._shared is not None:
            await self._stop_sharing(self._shared, [*not_started, *cut_off])

    def _item_id_of(self, entry: Item | int) -> int:
        return entry if isinstance(entry, int) else self._item_id(entry)

    async def _stop_sharing(self, shared: SharedQueue, held: list[int]) -> None:
        """Let the other replicas have at once what this one held but will not finish."""
        if self._keeping_claims is not None:
            self._keeping_claims.cancel()
            await asyncio.gather(self._keeping_claims, return_exceptions=True)
        try:
            await shared.release_claims(self.name, held)
        except Exception:
            log.warning(
                "%s: could not release %d claims; they wait out their lease", self.name, len(held)
            )

    async def idle(self) -> None:
        """Wait until nothing is due or in flight (tests and the demo use this)."""
        while True:
            if (
                not self._in_flight
                and not self._claimed
                and not self._read_stored
                and not await self._has_due()
            ):
                return
            await asyncio.sleep(0.02)

    @abstractmethod
    async def _fetch_stored(self, limit: int, exclude: list[int]) -> list[Item]:
        """Due items the database holds that may not have been handed over."""

    @abstractmethod
    async def _load(self, ids: list[int]) -> list[Item]:
        """These items, read back (those still queued)."""

    @abstractmethod
    def _item_id(self, item: Item) -> int: ...

    def _priority(self, item: Item) -> int:
        return 0

    @abstractmethod
    async def _process(self, item: Item) -> None: ...

    @abstractmethod
    async def _next_stored_due_at(self, after: float) -> float | None:
        """When the next item `_fetch_stored` would find becomes due, after `after`."""

    @abstractmethod
    async def _next_due_at(self) -> float | None:
        """When the next queued item of any kind is due (for `idle`)."""

    async def _has_due(self) -> bool:
        due_at = await self._next_due_at()
        return due_at is not None and due_at <= time.time()

    async def _run(self) -> None:
        while not self._stopping:
            free = self._concurrency - len(self._in_flight)
            items: list[Item] = []
            if free > 0:
                try:
                    items = await self._take(free)
                except Exception:
                    log.exception("%s: could not read the queue", self.name)
                    self.retry_at(time.time() + DATABASE_RETRY_S)
            for item in items:
                item_id = self._item_id(item)
                self._claimed.add(item_id)
                task = asyncio.create_task(self._guarded(item))
                self._in_flight[item_id] = task
                self._running[item_id] = item
                task.add_done_callback(functools.partial(self._finished, item_id))
            if items and len(self._in_flight) < self._concurrency:
                continue
            await self._sleep_until_work()

    async def _take(self, limit: int) -> list[Item]:
        """Up to `limit` items: from the database when it must be read, else from memory."""
        items: list[Item] = []
        if self._retry_at is not None and self._retry_at <= time.time():
            self._retry_at = None
            self._read_stored = True
        if self._read_stored:
            now = time.time()
            self._last_stored_read = now
            stored = await self._fetch_stored(limit, sorted(self._claimed))
            items = [item for item in stored if self._item_id(item) not in self._claimed]
            if len(stored) < limit:
                # Everything due is taken: until a retry falls due, memory has the rest.
                self._read_stored = False
                next_due = await self._next_stored_due_at(now)
                if next_due is not None:
                    self.retry_at(next_due)
        from_memory: list[Item] = []
        while len(items) + len(from_memory) < limit and self._ready:
            priority = min(self._ready)
            queue = self._ready[priority]
            entry = queue.popleft()
            if not queue:
                del self._ready[priority]
            if isinstance(entry, int):
                loaded = await self._load([entry])
                if not loaded:
                    self._claimed.discard(entry)  # finished meanwhile, or gone
                    self._forget(entry)
                    continue
                from_memory.extend(loaded)
            else:
                self._held -= 1
                from_memory.append(entry)
        return items + await self._claim(from_memory)

    async def _claim(self, items: list[Item]) -> list[Item]:
        """Of items handed over in memory, those this worker may start. Alone on its
        database (SQLite), all of them. With replicas, those it could claim: a row another
        replica took over (this one was slow to start it), or one waiting behind an older
        row of its line, is left to whoever holds the line; this worker is told by a
        wake-up (`listen_for_work`) when the line moves on."""
        if self._shared is None or not items:
            return items
        ids = [self._item_id(item) for item in items]
        try:
            claimed = set(await self._shared.claim_queued(self.name, ids))
        except BaseException:
            # Still reserved by this replica in the database: the next read (when the
            # database answers again, `DATABASE_RETRY_S`) finds them.
            self._claimed.difference_update(ids)
            raise
        self._claimed.difference_update(set(ids) - claimed)
        for item_id in set(ids) - claimed:
            self._forget(item_id)
        return [item for item in items if self._item_id(item) in claimed]

    async def _keep_claims(self, shared: SharedQueue) -> None:
        """Listen for other replicas' wake-ups, and renew the lease of every row in
        flight here until it is finished, so nobody takes it over while it runs."""
        try:
            await shared.listen_for_work(self.name, self.wake)
        except Exception:
            log.warning(
                "%s: cannot listen for other replicas; polling only", self.name, exc_info=True
            )
        while True:
            await asyncio.sleep(shared.claim_lease_s / 3)
            held = list(self._in_flight)
            if not held:
                continue
            try:
                kept = set(await shared.renew_claims(self.name, held))
            except Exception:
                log.warning("%s: could not renew %d claims", self.name, len(held))
                continue
            for item_id in held:
                if item_id not in kept and item_id in self._in_flight:
                    log.warning(
                        "%s: item %s was taken over by another replica while it ran here; "
                        "this replica's outcome will not be recorded",
                        self.name,
                        item_id,
                    )

    def _finished(self, item_id: int, _task: asyncio.Task[None]) -> None:
        self._in_flight.pop(item_id, None)
        self._running.pop(item_id, None)
        self._forget(item_id)
        self._claimed.discard(item_id)
        self._wake.set()

    async def _sleep_until_work(self) -> None:
        self._wake.clear()
        if self._stopping:
            return
        has_room = len(self._in_flight) < self._concurrency
        if has_room and (self._ready or self._read_stored):
            return
        timeout: float | None = None
        if has_room and self._retry_at is not None:
            timeout = max(0.0, self._retry_at - time.time())
            if timeout == 0:
                return
        if has_room and self._shared is not None:
            poll_in = self._last_stored_read + self._shared.queue_poll_s - time.time()
            if poll_in <= 0:
                self._read_stored = True
                return
            timeout = poll_in if timeout is None else min(timeout, poll_in)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    def _forget(self, item_id: int) -> None:
        """Drop what was kept in memory about a finished item (subclasses)."""

    def _held_items(self) -> Iterator[Item]:
        """Every item this worker holds with its content: in flight, or handed over and
        waiting for its turn (not those kept as their id only)."""
        yield from self._running.values()
        for queue in self._ready.values():
            for entry in queue:
                if not isinstance(entry, int):
                    yield entry

    async def _guarded(self, item: Item) -> None:
        try:
            await self._process(item)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: unexpected failure on item %s", self.name, self._item_id(item))


class InboxWorker(QueueWorker[InboxItem]):
    """Dispatches stored notifications to handlers, retrying when RingCentral is unwell."""

    name = "inbox"
    max_attempts = 8

    def __init__(self, services: Services, dispatcher: Dispatcher, concurrency: int) -> None:
        super().__init__(concurrency, services.storage)
        self._services = services
        self._dispatcher = dispatcher
        self._ordering = KeyedLock()
        self._coalescing_keys: dict[int, tuple[str, ...] | None] = {}
        storage = services.storage
        self._pending_lines = storage if isinstance(storage, PendingLines) else None

    async def _fetch_stored(self, limit: int, exclude: list[int]) -> list[InboxItem]:
        return await self._services.storage.due_inbox_not_handed_over(limit, exclude)

    async def _load(self, ids: list[int]) -> list[InboxItem]:
        return await self._services.storage.inbox_items(ids)

    def _item_id(self, item: InboxItem) -> int:
        return item.id

    async def _next_stored_due_at(self, after: float) -> float | None:
        return await self._services.storage.next_inbox_retry_at(after)

    async def _next_due_at(self) -> float | None:
        return await self._services.storage.next_inbox_due_at()

    async def _process(self, item: InboxItem) -> None:
        body = item.payload.get("body")
        chat_id = body.get("groupId") if isinstance(body, Mapping) else None
        with log_context(notification=item.uuid, chat=str(chat_id) if chat_id else None):
            token = notification_arrived_at.set(item.received_at or None)
            try:
                async with self._ordering.hold(ordering_key(item.payload)):
                    newer = await self._newer_of_the_same_call(item)
                    if newer is None:
                        await self._handle(item)
                    else:
                        # The newer one reads the call back from RingSense after this
                        # one would have, and updates the same cards: nothing is lost.
                        log.debug("inbox %s: served by the newer %s of its call", item.id, newer)
                        await self._services.storage.finish_inbox(item.id, "done")
            finally:
                notification_arrived_at.reset(token)

    async def _newer_of_the_same_call(self, item: InboxItem) -> int | None:
        """A newer notification this worker holds that makes `item`'s work redundant, or
        None (see `coalescing_key`).

        RingSense announces a call again as more insights arrive, and a digest is made
        from the record read back from RingSense, never from the notification. So when
        an older notification of a call comes to be handled while a newer one of the same
        call, account and subscription is already stored and waiting here, handling the
        older one would read the call and edit its cards only for the newer one to do it
        again a moment later with what is then the latest: the older one is marked done
        and the newer one serves both. It is stored before it is handed over, so a crash
        right after loses nothing (a restart finds it pending), and events of one call
        are still handled in order. A notification tried before (it failed once) never
        stands in for another.

        Alone on its database (SQLite) the worker holds every waiting notification in
        memory; with replicas (PostgreSQL) only the head of each line is held, and the
        database is asked."""
        line = ordering_key(item.payload)
        if not line.startswith("call:"):
            return None
        newer = [
            other
            for other in self._held_items()
            if other.id > item.id and other.attempts == 0 and ordering_key(other.payload) == line
        ]
        if newer:
            newer_keys = [(other.id, self._coalescing_key(other)) for other in newer]
        elif self._pending_lines is not None:
            stored = await self._pending_lines.newer_pending_in_line(line, item.id)
            if stored is None:
                return None
            # Not kept: this replica may never handle it, and would never forget it.
            newer_keys = [(stored.id, coalescing_key(stored.payload))]
        else:
            return None  # the usual case, found without parsing anything
        key = self._coalescing_key(item)
        if key is None:
            return None
        return next((other_id for other_id, other_key in newer_keys if other_key == key), None)

    def _coalescing_key(self, item: InboxItem) -> tuple[str, ...] | None:
        if item.id not in self._coalescing_keys:
            self._coalescing_keys[item.id] = coalescing_key(item.payload)
        return self._coalescing_keys[item.id]

    def _forget(self, item_id: int) -> None:
        self._coalescing_keys.pop(item_id, None)

    async def _handle(self, item: InboxItem) -> None:
        storage = self._services.storage
        try:
            notification = Notification.parse(item.payload)
            outcome = await self._dispatcher.dispatch(
                self._services,
                notification,
                attempt=item.attempts + 1,
                last_attempt=item.attempts + 1 >= self.max_attempts,
                inbox_id=item.id,
            )
        except RingCentralError as err:
            attempts = item.attempts + 1
            if err.retryable and attempts < self.max_attempts:
                delay = (
                    err.retry_after
                    if isinstance(err, RingCentralRateLimited)
                    else backoff_delay(attempts)
                )
                log.info("inbox %s (%s): %s; retry in %.1fs", item.id, item.kind, err, delay)
                self.retry_at(await storage.retry_inbox_later(item.id, delay, str(err)))
            else:
                log.error("inbox %s (%s) failed: %s", item.id, item.kind, err)
                await storage.finish_inbox(item.id, "failed", str(err))
            return
        except Exception as err:
            log.exception("inbox %s (%s) failed", item.id, item.kind)
            await storage.finish_inbox(item.id, "failed", f"{type(err).__name__}: {err}")
            return
        if outcome is Dispatched.INBOX_ROW_DONE:
            return  # marked done with the handler's own writes, in one transaction
        status = "ignored" if outcome is Dispatched.NO_HANDLER else "done"
        await storage.finish_inbox(item.id, status)


def ordering_key(payload: Mapping[str, Any]) -> str:
    """Notifications with the same key are handled one at a time, oldest first: messages in
    one chat (so `optin` then `optout` ends opted out), events of one call."""
    body = payload.get("body")
    if isinstance(body, Mapping):
        if body.get("groupId") is not None:
            return f"chat:{body['groupId']}"
        if body.get("sourceRecordId") is not None:
            return f"call:{body.get('domain')}:{body['sourceRecordId']}"
    return f"item:{payload.get('uuid')}"


def coalescing_key(payload: Mapping[str, Any]) -> tuple[str, ...] | None:
    """What makes two stored notifications the same work: RingSense notifications of the
    same call (domain, recording id) through the same event path (account, domain),
    subscription and owner, both from RingCentral or both found by catch-up. None for
    anything else, and for a notification whose handling could stop before reading the
    call back (not one the bot parses, or a body that does not name a call): such a one
    never stands in for another."""
    try:
        notification = Notification.parse(payload)
    except MalformedNotification:
        return None
    if notification.kind != events.RINGSENSE_INSIGHTS:
        return None
    try:
        claimed = CallInsights.from_api(split_transcript(notification.body)[0])
    except InsightsFormatError:
        return None
    return (
        notification.event,
        notification.subscription_id or "",
        notification.owner_id or "",
        str(notification.uuid.startswith("catch-up:")),
        claimed.domain,
        claimed.source_record_id,
    )
