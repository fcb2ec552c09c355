"""Webhook traffic from the platform to subscribers: the validation handshake before a
subscription exists, and notification delivery after (API-FACTS B.2, B.3, B.6).

Delivery is deliberately unforgiving, like the real thing: one attempt per event, 3 s to
answer, no redelivery, and a subscription whose address keeps failing is blacklisted.
Fault injection (sandbox.faults) can duplicate, drop, reorder or retry deliveries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp

from sandbox import jsonio
from sandbox.world import JSON, Delivery, Subscription, World, iso

log = logging.getLogger(__name__)

USER_AGENT = "RingCentral-Webhook/8.3"

POST_FILTERS = frozenset({"/team-messaging/v1/posts", "/restapi/v1.0/glip/posts"})
CHAT_FILTERS = frozenset(
    {"/team-messaging/v1/chats", "/team-messaging/v1/groups", "/restapi/v1.0/glip/groups"}
)
EXTENSION_FILTER = re.compile(r"^/restapi/v1\.0/account/([^/?]+)/extension/([^/?]+)$")
RINGSENSE_FILTER = re.compile(
    r"^/ai/ringsense/v1/public/accounts/([^/?]+)/domains/"
    r"(pbx|rcv|rcx|ms-teams|nice-incontact)/insights$"
)
REMINDER_FILTER = re.compile(r"^/restapi/v1\.0/subscription/~\?threshold=(\d+)&interval=(\d+)$")
REMINDER_MIN_SECONDS = 15
"""The shortest threshold or interval accepted. The platform's reminder-job period is
UNCONFIRMED (API-FACTS B.5); the DOCS bot samples use `interval=15`, so 15 s must pass."""
REMINDER_JOB_PERIOD_S = 1.0
"""How often (wall clock) the sandbox looks for subscriptions due a reminder."""


def reminder_problem(event_filter: str, expires_in: int) -> str | None:
    """Why a reminder filter is out of the documented range (API-FACTS B.5), or None: the
    threshold at most half the lifetime, the interval at most half the threshold, neither
    below the reminder job's period."""
    found = REMINDER_FILTER.match(event_filter)
    if found is None:
        return None
    threshold, interval = int(found.group(1)), int(found.group(2))
    if threshold < REMINDER_MIN_SECONDS or interval < REMINDER_MIN_SECONDS:
        return f"threshold and interval must be at least {REMINDER_MIN_SECONDS} seconds"
    if threshold * 2 > expires_in:
        return "threshold cannot exceed half of the subscription lifetime"
    if interval * 2 > threshold:
        return "interval cannot exceed half of threshold"
    return None


def reminder_schedule(subscription: Subscription) -> tuple[str, int, int] | None:
    """The subscription's reminder filter with its threshold and interval, if it has one."""
    for event_filter in subscription.event_filters:
        found = REMINDER_FILTER.match(event_filter)
        if found is not None:
            return event_filter, int(found.group(1)), int(found.group(2))
    return None


OTHER_ACCOUNT_FILTER = re.compile(r"^/restapi/v1\.0/account/[^/?]+(/[A-Za-z0-9~/_-]*)?(\?.*)?$")

EventKind = Literal["post", "chat", "extension", "ringsense"]


@dataclass(frozen=True)
class PlatformEvent:
    """Something that happened on the platform, before it is matched to subscriptions."""

    kind: EventKind
    body: JSON
    audience: frozenset[str] | None = None
    """Extension ids allowed to hear of it (chat members, the joining member)."""
    domain: str | None = None
    extension_id: str | None = None
    account_id: str | None = None
    """RingSense and extension events: the account whose subscribers may hear of it."""


def is_known_filter(event_filter: str) -> bool:
    """Filters the platform would accept; only some of them ever fire in the sandbox."""
    return bool(
        event_filter in POST_FILTERS
        or event_filter in CHAT_FILTERS
        or EXTENSION_FILTER.match(event_filter)
        or RINGSENSE_FILTER.match(event_filter)
        or REMINDER_FILTER.match(event_filter)
        or OTHER_ACCOUNT_FILTER.match(event_filter)
    )


def expand_filter(event_filter: str, *, account_id: str, owner_id: str) -> str:
    """Resolve `~` the way the platform echoes filters back (account and extension ids)."""
    if event_filter.startswith("/restapi/v1.0/account/"):
        expanded = event_filter.replace("/account/~", f"/account/{account_id}", 1)
        return re.sub(r"/extension/~(?=/|\?|$)", f"/extension/{owner_id}", expanded, count=1)
    if event_filter.startswith("/ai/ringsense/v1/public/accounts/~/"):
        return event_filter.replace("/accounts/~/", f"/accounts/{account_id}/", 1)
    return event_filter


def match_event(subscription: Subscription, event: PlatformEvent) -> str | None:
    """The `event` string this subscription gets for this event, or None if it gets none."""
    disabled = {entry["filter"] for entry in subscription.disabled_filters}
    owner = subscription.owner_id
    if event.audience is not None and owner not in event.audience:
        return None
    for event_filter in subscription.event_filters:
        if event_filter in disabled:
            continue
        if event.kind == "post" and event_filter in POST_FILTERS:
            return event_filter
        if event.kind == "chat" and event_filter in CHAT_FILTERS:
            return event_filter
        if event.kind == "extension":
            found = EXTENSION_FILTER.match(event_filter)
            if (
                found
                and found.group(2) == event.extension_id
                and event.account_id in (None, found.group(1))
            ):
                return event_filter
        if event.kind == "ringsense":
            found = RINGSENSE_FILTER.match(event_filter)
            if found and found.group(1) == event.account_id and found.group(2) == event.domain:
                return event_filter
    return None


@dataclass(frozen=True)
class HandshakeResult:
    outcome: Literal["ok", "invalid", "too_large"]
    detail: str


class BackgroundTasks:
    """Fire-and-forget work (notifications caused by API calls) that is drained on close."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self.closing = False
        """Set once the app shuts down: long waits (running AI jobs) give up."""

    def spawn(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def drain(self, grace_seconds: float = 5.0) -> None:
        self.closing = True
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace_seconds)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def idle(self) -> None:
        """Wait until everything spawned so far has finished (tests use this)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))


class Notifier:
    """Sends the platform's outbound webhook requests through one client session."""

    def __init__(
        self, world: World, session: aiohttp.ClientSession, background: BackgroundTasks
    ) -> None:
        self._world = world
        self._session = session
        self._background = background
        self._locks: dict[str, asyncio.Lock] = {}
        self._held: dict[str, list[tuple[str, JSON]]] = {}
        self._hold_generation: dict[str, int] = {}

    async def handshake(self, address: str, verification_token: str | None) -> HandshakeResult:
        """POST with `Validation-Token`; the receiver must echo it, fast and briefly."""
        validation_token = secrets.token_hex(16)
        headers = {"Validation-Token": validation_token, "User-Agent": USER_AGENT}
        if verification_token:
            headers["Verification-Token"] = verification_token
        limit = self._world.max_handshake_response_bytes
        timeout = aiohttp.ClientTimeout(total=self._world.handshake_timeout)
        try:
            async with self._session.post(
                address, data=b"", headers=headers, timeout=timeout, allow_redirects=False
            ) as response:
                body = await _read_at_most(response, limit + 1)
                size = _response_size(response, body)
                if response.status != 200:
                    return HandshakeResult("invalid", f"status {response.status}")
                if response.headers.get("Validation-Token") != validation_token:
                    return HandshakeResult("invalid", "Validation-Token not echoed")
                if size > limit:
                    return HandshakeResult("too_large", f"response is {size} bytes")
                return HandshakeResult("ok", "")
        except (TimeoutError, aiohttp.ClientError, ValueError) as error:
            return HandshakeResult("invalid", _io_failure(error))

    async def publish(self, event: PlatformEvent) -> list[Delivery]:
        """Deliver to every matching Active subscription; returns the attempts made.

        With the `reorderNotifications` fault, deliveries are held per subscription and
        sent later in shuffled order (in the background), so none are returned here.
        """
        targets: list[tuple[Subscription, str]] = []
        for subscription in self._world.live_subscriptions():
            if subscription.status != "Active":
                continue
            event_name = match_event(subscription, event)
            if event_name is not None:
                targets.append((subscription, event_name))
        if self._world.faults.reorder_window_ms is not None:
            for subscription, event_name in targets:
                self._hold(subscription, event_name, event.body)
            return []
        attempts = await asyncio.gather(
            *(self._notify(sub, name, event.body) for sub, name in targets)
        )
        return [delivery for batch in attempts for delivery in batch]

    async def send_due_reminders(self) -> list[Delivery]:
        """Expiry reminders (API-FACTS B.5) to every Active subscription that asked for one
        and is within its threshold of expiring, at most once per interval.

        The notification's `event` is the filter as given, `~` included (what the DOCS bot
        samples compare against); its `body` is UNCONFIRMED (no sample exists), so the
        sandbox sends only what a renewal needs to know: the id and the expiry.
        """
        now = self._world.now()
        due: list[tuple[Subscription, str]] = []
        for subscription in self._world.live_subscriptions():
            schedule = reminder_schedule(subscription)
            if subscription.status != "Active" or schedule is None:
                continue
            event_filter, threshold, interval = schedule
            if now < subscription.expiration_time - threshold:
                continue
            last = subscription.last_reminded_at
            if last is not None and now - last < interval:
                continue
            subscription.last_reminded_at = now
            due.append((subscription, event_filter))
        sent = await asyncio.gather(
            *(
                self._notify(
                    subscription,
                    event_filter,
                    {
                        "id": subscription.id,
                        "expirationTime": iso(subscription.expiration_time),
                        "expiresIn": max(0, round(subscription.expiration_time - now)),
                    },
                )
                for subscription, event_filter in due
            )
        )
        return [delivery for batch in sent for delivery in batch]

    async def remind_forever(self) -> None:
        """The platform's reminder job: look for due reminders every period."""
        while not self._background.closing:
            try:
                await self.send_due_reminders()
            except Exception:  # one bad round must not stop the job
                log.exception("expiry reminders failed")
            await asyncio.sleep(REMINDER_JOB_PERIOD_S)

    def _hold(self, subscription: Subscription, event_name: str, body: JSON) -> None:
        """Queue for a shuffled flush once the subscription has been quiet for the window."""
        held = self._held.setdefault(subscription.id, [])
        held.append((event_name, body))
        generation = self._hold_generation.get(subscription.id, 0) + 1
        self._hold_generation[subscription.id] = generation
        self._background.spawn(self._flush_later(subscription, generation))

    async def _flush_later(self, subscription: Subscription, generation: int) -> None:
        window = self._world.faults.reorder_window_ms or 0.0
        await asyncio.sleep(window / 1000)
        if self._hold_generation.get(subscription.id) != generation:
            return  # something newer arrived; that one's timer flushes
        held = self._held.pop(subscription.id, [])
        for event_name, body in self._world.faults.shuffled(held):
            await self._notify(subscription, event_name, body)

    async def _notify(
        self, subscription: Subscription, event_name: str, body: JSON
    ) -> list[Delivery]:
        """One notification: the envelope once, plus any injected duplicates (same uuid)."""
        lock = self._locks.setdefault(subscription.id, asyncio.Lock())
        async with lock:
            world = self._world
            envelope = {
                "uuid": world.random_digits(19),
                "event": event_name,
                "timestamp": world.now_iso(),
                "subscriptionId": subscription.id,
                "ownerId": subscription.owner_id,
                "body": body,
            }
            deliveries: list[Delivery] = []
            for copy in range(world.faults.duplicate_notifications + 1):
                deliveries += await self._deliver(subscription, envelope, copy)
            return deliveries

    def _deliverable(self, subscription: Subscription) -> bool:
        """Blacklisted or expired (maybe while waiting behind earlier ones): no more."""
        return subscription.status == "Active" and (
            self._world.live_subscription(subscription.id) is not None
        )

    async def _deliver(
        self, subscription: Subscription, envelope: JSON, copy: int
    ) -> list[Delivery]:
        """POST one envelope; a failure is retried only with the `webhookRetries` fault
        (the real platform does not redeliver, API-FACTS B.6)."""
        world = self._world
        if not self._deliverable(subscription):
            return []
        event_name = str(envelope["event"])
        if world.faults.drop():
            dropped = Delivery(
                subscription_id=subscription.id,
                uuid=str(envelope["uuid"]),
                event=event_name,
                address=subscription.address,
                time=world.now(),
                status=None,
                error=None,
                payload=envelope,
                copy=copy,
                dropped=True,
            )
            world.deliveries.append(dropped)
            return [dropped]
        retries = world.faults.webhook_retries
        attempts = 1 + (retries.attempts if retries else 0)
        made: list[Delivery] = []
        for attempt in range(1, attempts + 1):
            if attempt > 1:
                if retries is not None and retries.delay_seconds:
                    await asyncio.sleep(retries.delay_seconds)
                if not self._deliverable(subscription):
                    break
            delivery = await self._post(subscription, envelope, attempt, copy)
            made.append(delivery)
            if delivery.ok:
                break
        return made

    async def _post(
        self, subscription: Subscription, envelope: JSON, attempt: int, copy: int
    ) -> Delivery:
        world = self._world
        headers = {
            "Content-Type": "application/json; charset=UTF-8",
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
        }
        if subscription.verification_token:
            headers["Verification-Token"] = subscription.verification_token
        status: int | None = None
        error: str | None = None
        reason = ""
        try:
            async with self._session.post(
                subscription.address,
                data=jsonio.dumps(envelope),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=world.delivery_timeout),
                allow_redirects=False,
            ) as response:
                await response.read()
                status = response.status
                reason = (
                    f"Webhook responses with code: [{response.status}], reason: [{response.reason}]"
                )
        except (TimeoutError, aiohttp.ClientError, ValueError) as failure:
            error = _io_failure(failure)
            reason = error
        delivery = Delivery(
            subscription_id=subscription.id,
            uuid=str(envelope["uuid"]),
            event=str(envelope["event"]),
            address=subscription.address,
            time=world.now(),
            status=status,
            error=error,
            payload=envelope,
            attempt=attempt,
            copy=copy,
        )
        world.deliveries.append(delivery)
        if not delivery.ok:
            world.record_delivery_failure(subscription, reason)
        return delivery


def _io_failure(error: BaseException) -> str:
    if isinstance(error, TimeoutError | aiohttp.ServerTimeoutError):
        return "I/O operation is failed. Details: [Read timed out]"
    if isinstance(error, aiohttp.ClientConnectorError):
        return "I/O operation is failed. Details: [Connection refused]"
    return f"I/O operation is failed. Details: [{error.__class__.__name__}: {error}]"


async def _read_at_most(response: aiohttp.ClientResponse, limit: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < limit:
        chunk = await response.content.read(limit - len(chunks))
        if not chunk:
            break
        chunks.extend(chunk)
    return bytes(chunks)


def _response_size(response: aiohttp.ClientResponse, body: bytes) -> int:
    """Bytes on the wire: status line, headers and body, as the 1024-byte rule counts."""
    size = len(f"HTTP/1.1 {response.status} {response.reason or ''}\r\n")
    for name, value in response.raw_headers:
        size += len(name) + len(value) + 4
    return size + 2 + len(body)
