"""Delivery: sends what handlers queued, once, and keeps one card per (call, destination).

A queued card with a `card_key` (the call) is posted the first time and updated in place
(PUT) every time after, because the card id is remembered per (call, destination). Deliveries to
one destination go one at a time, in queue order. Temporary failures (5xx, timeouts,
resets, 429) are retried with backoff; after the last attempt the delivery is marked
`failed` with its reason, never dropped silently.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from bot.logs import log_context
from bot.metrics import BotMetrics
from bot.rc import (
    DailyPostLimitReached,
    RingCentralError,
    RingCentralNotFound,
    RingCentralRateLimited,
    seconds_until_utc_midnight,
)
from bot.services import BotInstall, Services
from bot.storage import OutboxItem, destination_key
from bot.store.records import DeliveryReads, PostPlace, StoredCard
from bot.workers import KeyedLock, QueueWorker, backoff_delay

log = logging.getLogger(__name__)

CardObserver = Callable[[str, str, Mapping[str, Any]], None]


class BotNotInstalled(RingCentralError):
    """The delivery's account no longer has the bot (it was removed); nothing can send it."""

    def __init__(self, account_id: str | None) -> None:
        super().__init__(None, None, f"the bot is not installed in account {account_id}")


DIGEST_SHARE = 0.25
"""The share of the pacing window (per rate-limit group) and of the daily post budget that
replies may not use: whatever anyone says to the bot, digests still go out at once."""


class KeptForDigests(RingCentralError):
    """A reply must wait: what is left of the window or the day is kept for digests."""

    retryable = True

    def __init__(self, retry_after: float, what: str) -> None:
        super().__init__(None, None, f"{what} kept for digests")
        self.retry_after = retry_after


CARD_CLAIM_WAIT_S = 5.0
"""How long a delivery waits when another replica is creating its card, before it looks
again (by then the card is usually there, and it is updated instead)."""


class CardBeingCreated(RingCentralError):
    """Another replica is creating this card right now: wait and update it, never post a
    second one."""

    retryable = True

    def __init__(self) -> None:
        super().__init__(None, None, "the card is being created by another replica")
        self.retry_after = CARD_CLAIM_WAIT_S


class DeliveryWorker(QueueWorker[OutboxItem]):
    name = "outbox"

    def __init__(
        self,
        services: Services,
        concurrency: int,
        max_attempts: int,
        metrics: BotMetrics | None = None,
    ) -> None:
        super().__init__(concurrency, services.storage)
        self._metrics = metrics or BotMetrics()
        self._services = services
        self._max_attempts = max_attempts
        self._destinations = KeyedLock()
        self.card_observers: list[CardObserver] = []
        self._budget_warned = ""

    async def _fetch_stored(self, limit: int, exclude: list[int]) -> list[OutboxItem]:
        return await self._services.storage.due_outbox(limit, exclude)

    async def _load(self, ids: list[int]) -> list[OutboxItem]:
        return await self._services.storage.outbox_items(ids)

    def _item_id(self, item: OutboxItem) -> int:
        return item.id

    def _priority(self, item: OutboxItem) -> int:
        return item.priority

    async def _next_stored_due_at(self, after: float) -> float | None:
        return await self._services.storage.next_outbox_due_at(after)

    async def _next_due_at(self) -> float | None:
        return await self._services.storage.next_outbox_due_at()

    async def _process(self, item: OutboxItem) -> None:
        key = destination_key(item.destination)
        chat_id = item.destination.get("chatId")
        with log_context(chat=chat_id, call=item.card_key):
            async with self._destinations.hold(key):
                reads = await self._services.storage.delivery_reads(item, key)
                if reads.newer_version_sent:
                    # Sent in order per destination; only a retry can come after its
                    # successor, and the card already shows the newer version.
                    await self._services.storage.mark_sent(item.id)
                    log.debug("delivery %s skipped: a newer version of the card was sent", item.id)
                    return
                try:
                    recorded = await self._deliver(item, key, reads)
                except RingCentralError as err:
                    await self._handle_failure(item, err)
                    return
            if not recorded:
                await self._services.storage.mark_sent(item.id)
            self._metrics.deliveries.labels("sent").inc()
            log.debug("delivery %s sent (%s)", item.id, item.message.get("kind"))

    async def _handle_failure(self, item: OutboxItem, err: RingCentralError) -> None:
        storage = self._services.storage
        if isinstance(err, KeptForDigests | CardBeingCreated):
            # Waiting (for digests, or for the replica creating the card) frees the worker
            # and costs the delivery none of its attempts.
            log.debug("delivery %s waits %.1f s: %s", item.id, err.retry_after, err)
            self.retry_at(await storage.postpone_outbox(item.id, err.retry_after, str(err)))
            return
        if isinstance(err, DailyPostLimitReached):
            # Not the delivery's fault: it waits for tomorrow without using up its attempts.
            day = _utc_day()
            if self._budget_warned != day:
                self._budget_warned = day
                log.warning(
                    "daily post limit reached; deliveries wait %.0f s, until 00:00 UTC",
                    err.retry_after,
                )
            self.retry_at(await storage.postpone_outbox(item.id, err.retry_after, str(err)))
            self._metrics.deliveries.labels("postponed").inc()
            return
        attempts = item.attempts + 1
        if err.retryable and attempts < self._max_attempts:
            delay = (
                err.retry_after
                if isinstance(err, RingCentralRateLimited)
                else backoff_delay(attempts)
            )
            log.info("delivery %s: %s; attempt %d, retry in %.1fs", item.id, err, attempts, delay)
            self.retry_at(await storage.retry_outbox_later(item.id, delay, str(err)))
            self._metrics.deliveries.labels("retried").inc()
        else:
            log.error("delivery %s failed after %d attempts: %s", item.id, attempts, err)
            await storage.mark_failed(item.id, str(err))
            self._metrics.deliveries.labels("failed").inc()

    async def _deliver(self, item: OutboxItem, key: str, reads: DeliveryReads) -> bool:
        """Send one delivery; True when it was also recorded as sent (a post: counted,
        card remembered and marked sent in one transaction), False when only sent.
        `reads`: what the database said of its card and chat as the delivery began."""
        install = self._services.install_for_account(item.account_id)
        if install is None and self._services.reload_installs is not None:
            # Several replicas: another one may have taken this install a moment ago.
            await self._services.reload_installs()
            install = self._services.install_for_account(item.account_id)
        if install is None:
            raise BotNotInstalled(item.account_id)
        api = install.api
        if not item.is_digest:
            wait = await api.governor.delay_for("medium", keep_share=DIGEST_SHARE)
            if wait > 0:
                raise KeptForDigests(wait, "the rest of this minute's posts are")
        message = item.message
        if message["kind"] == "card_update":
            card_id = item.destination["cardId"]
            await api.update_card(card_id, message["card"])
            self._notify("", card_id, message["card"])
            return False
        storage = self._services.storage
        if message["kind"] == "text":
            chat_id = await self._chat_for(install, item.destination, reads.direct_chat)
            day = await self._take_post(install, digest=False)
            try:
                await api.post_text(chat_id, str(message["text"]))
            except RingCentralError as err:
                if _certainly_not_created(err):
                    await storage.give_back_post(install.account_id, day)
                raise
            # Counted against the day's budget already, by `_spend_post`.
            await storage.delivered(item.id, account_id=install.account_id, day=None)
            return True
        card: Mapping[str, Any] = message["card"]
        if item.card_key is not None:
            card = with_marker(card, card_marker(item.card_key, key))
            if await self._update_posted(install, item.card_key, key, card, reads.posted):
                return False
        chat_id = await self._chat_for(install, item.destination, reads.direct_chat)
        day = await self._take_post(
            install,
            digest=item.is_digest,
            card=(item.card_key, key, chat_id) if item.card_key is not None else None,
        )
        try:
            card_id = await api.create_card(chat_id, card)
        except RingCentralError as err:
            if _certainly_not_created(err):
                await storage.give_back_post(install.account_id, day)
                if item.card_key is not None:
                    await self._services.storage.forget_pending_card(item.card_key, key)
            raise
        # Card remembered and marked sent together (counted by `_spend_post` already).
        await storage.delivered(
            item.id,
            account_id=install.account_id,
            day=None,
            card=(item.card_key, key, chat_id, card_id) if item.card_key is not None else None,
        )
        timing = message.get("timing")
        if isinstance(timing, Mapping):
            # The call's first card here: how long the call waited for it.
            self._metrics.card_posted(
                _epoch_or_none(timing.get("arrivedAt")),
                _epoch_or_none(timing.get("recordingEndedAt")),
            )
        self._notify(chat_id, card_id, card)
        return True

    async def _update_posted(
        self,
        install: BotInstall,
        card_key: str,
        key: str,
        card: Mapping[str, Any],
        posted: StoredCard | None,
    ) -> bool:
        """Update this call's card in this destination (`posted`, as stored) if it exists;
        False if it does not.

        A card whose creation was started but never confirmed (the process died in between)
        is looked for in the chat first, so a retry never posts a second card.
        """
        storage = self._services.storage
        if posted is None:
            return False
        card_id = posted.card_id
        if not card_id:
            card_id = (
                await self._find_card_in_chat(
                    install, posted.chat_id, card_marker(card_key, key), since=posted.updated_at
                )
                or ""
            )
            if not card_id:
                return False
            await storage.remember_card(card_key, key, posted.chat_id, card_id, install.account_id)
        try:
            await install.api.update_card(card_id, card)
        except RingCentralNotFound:
            # Someone deleted the card; post it anew rather than lose the update.
            log.info("card %s is gone; posting a new one", card_id)
            await storage.forget_card(card_key, key)
            return False
        self._notify(posted.chat_id, card_id, card)
        return True

    async def _find_card_in_chat(
        self, install: BotInstall, chat_id: str, marker: str, *, since: float
    ) -> str | None:
        """The id of a card of ours, posted since the attempt began, carrying this marker.

        Each candidate from the chat's posts is confirmed with GET adaptive-cards/{id}: the
        posts list only hints at cards (how it shows them is UNCONFIRMED, see
        `RingCentralClient.recent_card_ids`), the card itself carries our marker. Nothing
        found means the card is posted again: a rare duplicate beats a lost digest.
        """
        recent = await install.api.recent_card_ids(
            chat_id, creator_id=install.extension_id, since=since - CLOCK_SKEW_S
        )
        for card_id in recent:
            try:
                card = await install.api.get_card(card_id)
            except RingCentralNotFound:
                continue
            if carries_marker(card, marker):
                log.info("found card %s posted before a restart", card_id)
                return card_id
        return None

    async def _take_post(
        self,
        install: BotInstall,
        *,
        digest: bool,
        card: tuple[str, str, str] | None = None,
    ) -> str:
        """Take one post of today's budget (the UTC day, returned) or refuse the post;
        replies leave the digests' share. For a card (card key, destination, chat id), it
        is also noted as being created here, in the same transaction (a retry after a
        crash then looks for it in the chat before posting).

        The place is taken in the database before the post, by one statement: deliveries
        side by side, on one replica or several, never get more than the budget between
        them. A post that certainly was not made gives its place back; one lost to a crash
        after the place was taken stays counted (the day ends a post early, never late).
        """
        limit = self._services.config.daily_post_limit
        account = install.account_id
        storage = self._services.storage
        day = _utc_day()
        budget = limit if digest else limit - round(limit * DIGEST_SHARE)
        place = await storage.take_post(account, day, budget, card)
        if place is PostPlace.TAKEN:
            return day
        if place is PostPlace.CARD_CLAIMED:
            raise CardBeingCreated()
        if not digest and await storage.posts_today(account, day) < limit:
            raise KeptForDigests(seconds_until_utc_midnight(), "the rest of today's posts are")
        raise DailyPostLimitReached(seconds_until_utc_midnight())

    async def _chat_for(
        self, install: BotInstall, destination: Mapping[str, str], known_direct_chat: str | None
    ) -> str:
        """The chat to post in: a channel's own, or the person's direct chat (as stored
        when the delivery began, `known_direct_chat`; opened and remembered when none)."""
        if destination["kind"] == "chat":
            return destination["chatId"]
        extension_id = destination["extensionId"]
        storage = self._services.storage
        chat_id = known_direct_chat
        if chat_id is None:
            chat_id = await install.api.open_direct_chat(extension_id)
            await storage.remember_direct_chat(extension_id, chat_id, install.account_id)
        return chat_id

    def _notify(self, chat_id: str, card_id: str, card: Mapping[str, Any]) -> None:
        for observer in self.card_observers:
            try:
                observer(chat_id, card_id, card)
            except Exception:
                log.exception("card observer failed")


CLOCK_SKEW_S = 120.0
"""How far RingCentral's clock may be from ours when matching a card by its creation time."""


def _certainly_not_created(err: RingCentralError) -> bool:
    """Failures after which RingCentral has certainly not created the card: refusals and
    throttling. Timeouts, resets and other 5xx may hide a created card."""
    if isinstance(err, RingCentralRateLimited | DailyPostLimitReached):
        return True
    return err.status is not None and (400 <= err.status < 500 or err.status == 503)


def _epoch_or_none(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and value > 0 else None


def _utc_day() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


MARKER_PREFIX = "ringsense-digest-"


def card_marker(card_key: str, destination: str) -> str:
    """Our mark for the card of one (card key, destination): stable across restarts, and
    without the call's ids in clear (it travels inside the card)."""
    digest = hashlib.sha256(f"{card_key}\n{destination}".encode()).hexdigest()[:32]
    return MARKER_PREFIX + digest


def with_marker(card: Mapping[str, Any], marker: str) -> dict[str, Any]:
    """The card with our marker as the `id` of its first body element.

    Adaptive Cards 1.3 allows no property of our own anywhere (`additionalProperties:
    false`), but every element may have an `id`, and an id is never shown. A card whose
    first element already has an id gets an empty, hidden Container carrying the marker.
    """
    marked = dict(card)
    body = [
        dict(element) if isinstance(element, Mapping) else element
        for element in card.get("body") or []
    ]
    if body and isinstance(body[0], dict) and "id" not in body[0]:
        body[0]["id"] = marker
    elif not any(isinstance(e, Mapping) and e.get("id") == marker for e in body):
        body.append({"type": "Container", "id": marker, "isVisible": False, "items": []})
    marked["body"] = body
    return marked


def carries_marker(card: Mapping[str, Any], marker: str) -> bool:
    """Whether a card (as GET adaptive-cards/{id} returns it) carries this marker."""
    return any(
        isinstance(element, Mapping) and element.get("id") == marker
        for element in card.get("body") or []
    )
