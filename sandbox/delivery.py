"""Webhook traffic from the platform to subscribers: the validation handshake before a
subscription exists, and notification delivery after (API-FACTS B.2, B.3, B.6).

Delivery is deliberately unforgiving, like the real thing: one attempt per event, 3 s to
answer, no redelivery, and a subscription whose address keeps failing is blacklisted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp

from sandbox.world import JSON, Delivery, Subscription, World

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
REMINDER_FILTER = re.compile(r"^/restapi/v1\.0/subscription/~\?threshold=\d+&interval=\d+$")
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


def match_event(world: World, subscription: Subscription, event: PlatformEvent) -> str | None:
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
            if found and found.group(2) == event.extension_id:
                return event_filter
        if event.kind == "ringsense":
            found = RINGSENSE_FILTER.match(event_filter)
            if found and found.group(1) == world.account_id and found.group(2) == event.domain:
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

    def spawn(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def drain(self, grace_seconds: float = 5.0) -> None:
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

    def __init__(self, world: World, session: aiohttp.ClientSession) -> None:
        self._world = world
        self._session = session
        self._locks: dict[str, asyncio.Lock] = {}

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
        """Deliver to every matching Active subscription; returns the attempts made."""
        targets: list[tuple[Subscription, str]] = []
        for subscription in self._world.live_subscriptions():
            if subscription.status != "Active":
                continue
            event_name = match_event(self._world, subscription, event)
            if event_name is not None:
                targets.append((subscription, event_name))
        attempts = await asyncio.gather(
            *(self._deliver(sub, name, event.body) for sub, name in targets)
        )
        return [attempt for attempt in attempts if attempt is not None]

    async def _deliver(
        self, subscription: Subscription, event_name: str, body: JSON
    ) -> Delivery | None:
        lock = self._locks.setdefault(subscription.id, asyncio.Lock())
        async with lock:
            # Blacklisted or expired while waiting behind earlier deliveries: nothing more.
            if subscription.status != "Active" or (
                self._world.live_subscription(subscription.id) is None
            ):
                return None
            world = self._world
            envelope = {
                "uuid": world.random_digits(19),
                "event": event_name,
                "timestamp": world.now_iso(),
                "subscriptionId": subscription.id,
                "ownerId": subscription.owner_id,
                "body": body,
            }
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
                    data=json.dumps(envelope, separators=(",", ":")).encode(),
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=world.delivery_timeout),
                    allow_redirects=False,
                ) as response:
                    await response.read()
                    status = response.status
                    reason = (
                        f"Webhook responses with code: [{response.status}], "
                        f"reason: [{response.reason}]"
                    )
            except (TimeoutError, aiohttp.ClientError, ValueError) as failure:
                error = _io_failure(failure)
                reason = error
            delivery = Delivery(
                subscription_id=subscription.id,
                uuid=str(envelope["uuid"]),
                event=event_name,
                address=subscription.address,
                time=world.now(),
                status=status,
                error=error,
                payload=envelope,
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
