"""Keeping the bot's webhook subscriptions alive, for each identity.

A subscription is reused only when we created it with the current address, filters and
verification token (the token is write-only at RingCentral, so we remember a fingerprint
of it). Anything else pointing at our address is stale, from an earlier deployment or a
changed token, and is deleted: it would otherwise deliver notifications we must refuse,
and RingCentral blacklists webhooks that refuse.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.rc import SUBSCRIPTION_TTL_S, RingCentralClient, RingCentralError, RingCentralNotFound
from bot.storage import StorageInterface, StoredSubscription
from bot.workers import backoff_delay

log = logging.getLogger(__name__)

RENEW_WHEN_LEFT = timedelta(days=2)
CHECK_INTERVAL_S = 3600.0
REMINDER_INTERVAL_S = 43_200


def expiry_reminder_filter(ttl_s: int = SUBSCRIPTION_TTL_S) -> str:
    """The filter that makes RingCentral remind us before a subscription expires.

    API-FACTS B.5: the threshold may be at most half the lifetime and the interval at most
    half the threshold; neither may be below the reminder job's (UNCONFIRMED) period, so we
    stay far above it: reminders start when `RENEW_WHEN_LEFT` (2 days) is left, capped at
    half the lifetime, and repeat every 12 hours (the spec's own example interval).
    """
    threshold = min(int(RENEW_WHEN_LEFT.total_seconds()), ttl_s // 2)
    interval = min(REMINDER_INTERVAL_S, threshold // 2)
    return f"/restapi/v1.0/subscription/~?threshold={threshold}&interval={interval}"


def token_fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class SubscriptionKeeper:
    def __init__(
        self,
        storage: StorageInterface,
        identity: str,
        api: RingCentralClient,
        event_filters: Sequence[str],
        address: str,
        verification_token: str,
        on_created: Callable[[], object] | None = None,
    ) -> None:
        self.identity = identity
        self._on_created = on_created
        self._storage = storage
        self._api = api
        # Every subscription also asks for expiry reminders, which `renew` answers.
        self._filters = tuple(dict.fromkeys((*event_filters, expiry_reminder_filter())))
        self._address = address
        self._token = verification_token
        self.current: StoredSubscription | None = None
        self.last_error: str | None = None
        self.disabled_filters: dict[str, str] = {}
        """Filters RingCentral took but disabled (`disabledFilters`), with its reason: a
        RingSense domain the account does not have, a permission missing. Not fatal: the
        other filters work; administrators see them in `status`."""

    @property
    def healthy(self) -> bool:
        return self.current is not None and self.last_error is None

    async def ensure(self) -> StoredSubscription:
        """Make sure exactly one good subscription of ours exists; return it."""
        fingerprint = token_fingerprint(self._token)
        live = {str(s.get("id")): s for s in await self._api.list_subscriptions()}
        keep: StoredSubscription | None = None
        for known in await self._storage.subscriptions(self.identity):
            remote = live.get(known.id)
            reusable = (
                keep is None
                and remote is not None
                and remote.get("status") == "Active"
                and known.address == self._address
                and known.token_fingerprint == fingerprint
                and set(known.event_filters) == set(self._filters)
            )
            if reusable:
                keep = known
                self._note_disabled(remote)
                continue
            if remote is not None:
                await self._delete(known.id)
            await self._storage.forget_subscription(known.id)
        for subscription_id, remote in live.items():
            if keep is not None and subscription_id == keep.id:
                continue
            if _address_of(remote) == self._address:
                log.info(
                    "%s: deleting stale subscription %s at our address",
                    self.identity,
                    subscription_id,
                )
                await self._delete(subscription_id)
        if keep is None:
            keep = await self._create(fingerprint)
        elif _expires_soon(keep.expiration_time):
            keep = await self._renew(keep)
        self.current = keep
        self.last_error = None
        return keep

    async def keep_alive(self, interval_s: float = CHECK_INTERVAL_S) -> None:
        """Run forever: ensure now (retrying with backoff), then re-check every interval."""
        attempt = 0
        while True:
            try:
                await self.ensure()
                attempt = 0
                await asyncio.sleep(interval_s)
            except RingCentralError as err:
                attempt += 1
                self.last_error = str(err)
                delay = backoff_delay(attempt, base_s=2.0, cap_s=120.0)
                log.warning(
                    "%s subscription not ready: %s; retrying in %.0fs", self.identity, err, delay
                )
                await asyncio.sleep(delay)

    async def renew_now(self) -> None:
        if self.current is not None:
            self.current = await self._renew(self.current)

    async def renew_stored(self, subscription_id: str) -> bool:
        """Renew one of this identity's stored subscriptions (on a replica that does not
        keep them: the keeper elsewhere has it as `current`); False if it is not ours."""
        for known in await self._storage.subscriptions(self.identity):
            if known.id == subscription_id:
                await self._renew(known)
                return True
        return False

    async def remove(self, *, delete_remote: bool) -> None:
        """Stop owning our subscription: delete it at RingCentral if asked, forget it here."""
        for known in await self._storage.subscriptions(self.identity):
            if delete_remote:
                try:
                    await self._delete(known.id)
                except RingCentralError as err:
                    log.info(
                        "%s: could not delete subscription %s: %s", self.identity, known.id, err
                    )
            await self._storage.forget_subscription(known.id)
        self.current = None

    def _note_disabled(self, answer: Any) -> None:
        found: dict[str, str] = {}
        entries = answer.get("disabledFilters") if isinstance(answer, Mapping) else None
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, Mapping) and isinstance(entry.get("filter"), str):
                reason = entry.get("message") or entry.get("reason") or "disabled"
                found[entry["filter"]] = str(reason)[:200]
        if found:
            log.warning(
                "%s: RingCentral disabled %d filter(s): %s",
                self.identity,
                len(found),
                "; ".join(f"{f} ({r})" for f, r in found.items()),
            )
        self.disabled_filters = found

    async def _create(self, fingerprint: str) -> StoredSubscription:
        created = await self._api.create_subscription(self._filters, self._address, self._token)
        self._note_disabled(created)
        stored = StoredSubscription(
            id=str(created["id"]),
            identity=self.identity,
            address=self._address,
            event_filters=self._filters,
            token_fingerprint=fingerprint,
            expiration_time=_optional_str(created.get("expirationTime")),
        )
        await self._storage.save_subscription(stored)
        log.info("%s: subscribed (%s) to %s", self.identity, stored.id, ", ".join(self._filters))
        if self._on_created is not None:
            self._on_created()
        return stored

    async def _renew(self, known: StoredSubscription) -> StoredSubscription:
        renewed = await self._api.renew_subscription(known.id)
        stored = StoredSubscription(
            known.id,
            known.identity,
            known.address,
            known.event_filters,
            known.token_fingerprint,
            _optional_str(renewed.get("expirationTime")),
        )
        await self._storage.save_subscription(stored)
        return stored

    async def _delete(self, subscription_id: str) -> None:
        try:
            await self._api.delete_subscription(subscription_id)
        except RingCentralNotFound:
            pass


def _address_of(subscription: Mapping[str, Any]) -> str | None:
    delivery = subscription.get("deliveryMode")
    if isinstance(delivery, Mapping):
        address = delivery.get("address")
        return str(address) if address else None
    return None


def _expires_soon(expiration_time: str | None) -> bool:
    if not expiration_time:
        return False
    try:
        expires = datetime.fromisoformat(expiration_time.replace("Z", "+00:00"))
    except ValueError:
        return True
    return expires - datetime.now(UTC) < RENEW_WHEN_LEFT


def _optional_str(value: Any) -> str | None:
    return str(value) if value is not None else None


class Subscriptions:
    """Every identity's subscription keeper, and the background tasks that renew them."""

    def __init__(
        self,
        storage: StorageInterface,
        address: str,
        verification_token: str,
        check_interval_s: float = CHECK_INTERVAL_S,
    ) -> None:
        self._storage = storage
        self._check_interval_s = check_interval_s
        self._address = address
        self._token = verification_token
        self.keepers: dict[str, SubscriptionKeeper] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._started = False
        self.upkeep_elsewhere: Callable[[], object] | None = None
        """Set when another replica may be the one keeping the subscriptions alive (the
        `subscriptions` lease, bot/jobs.py): called when an identity needs its
        subscription and this replica does not keep them, to ask the keeper."""

    def add_identity(
        self,
        identity: str,
        api: RingCentralClient,
        event_filters: Sequence[str],
        on_created: Callable[[], object] | None = None,
    ) -> None:
        self.keepers[identity] = SubscriptionKeeper(
            self._storage, identity, api, event_filters, self._address, self._token, on_created
        )

    async def ensure_all(self) -> None:
        """Create or reuse every subscription now; raise the first failure."""
        for keeper in list(self.keepers.values()):
            await keeper.ensure()

    def start(self) -> None:
        """Keep every subscription alive from now on (call once the webhook answers)."""
        self._started = True
        for identity in self.keepers:
            self.start_identity(identity)

    @property
    def keeping(self) -> bool:
        """Whether this replica keeps the subscriptions alive now."""
        return self._started

    def start_identity(self, identity: str) -> None:
        if identity in self._tasks:
            return
        if not self._started:
            if self.upkeep_elsewhere is not None:
                self.upkeep_elsewhere()
            return
        keeper = self.keepers[identity]
        self._tasks[identity] = asyncio.create_task(
            keeper.keep_alive(self._check_interval_s), name=identity
        )

    def identities_changed(self) -> None:
        """An identity was dropped here (a removed install, a disconnected account): the
        keeper elsewhere, if any, forgets it too instead of keeping its subscription."""
        if not self._started and self.upkeep_elsewhere is not None:
            self.upkeep_elsewhere()

    async def drop_identity(self, identity: str, *, delete_remote: bool) -> None:
        task = self._tasks.pop(identity, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        keeper = self.keepers.pop(identity, None)
        if keeper is not None:
            await keeper.remove(delete_remote=delete_remote)

    async def renew(self, subscription_id: str) -> None:
        """Renew one of ours now (after an expiry reminder); unknown ids are ignored."""
        for keeper in self.keepers.values():
            if keeper.current is not None and keeper.current.id == subscription_id:
                await keeper.renew_now()
                return
        if self._started:
            return  # the keepers here know their own subscriptions: this one is not ours
        # Another replica keeps them: the reminder came here all the same (any replica
        # receives webhooks), and renewing a subscription twice does no harm.
        for keeper in list(self.keepers.values()):
            if await keeper.renew_stored(subscription_id):
                return

    async def stop(self) -> None:
        """Stop keeping the subscriptions alive (shutting down, or another replica took
        the `subscriptions` lease); `start` starts again."""
        self._started = False
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception as err:  # stopping must not fail on what the task was doing
                log.debug("subscription keeper stopped with %s", type(err).__name__)

    def health(self) -> dict[str, dict[str, Any]]:
        return {
            identity: {
                "healthy": keeper.healthy,
                "id": keeper.current.id if keeper.current else None,
                "error": keeper.last_error,
                "disabledFilters": dict(keeper.disabled_filters),
            }
            for identity, keeper in self.keepers.items()
        }
