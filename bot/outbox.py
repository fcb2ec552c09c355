"""Delivery: sends what handlers queued, once, and keeps one card per (call, destination).

A queued card with a `card_key` (the call) is posted the first time and updated in place
(PUT) every time after, because the card id is remembered per (call, destination). Deliveries to
one destination go one at a time, in queue order. Temporary failures (5xx, timeouts,
resets, 429) are retried with backoff; after the last attempt the delivery is marked
`failed` with its reason, never dropped silently.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from bot.rc import (
    RingCentralError,
    RingCentralNotFound,
    RingCentralRateLimited,
)
from bot.services import BotInstall, Services
from bot.storage import OutboxItem, destination_key
from bot.workers import KeyedLock, QueueWorker, backoff_delay

log = logging.getLogger(__name__)

CardObserver = Callable[[str, str, Mapping[str, Any]], None]


class BotNotInstalled(RingCentralError):
    """The delivery's account no longer has the bot (it was removed); nothing can send it."""

    def __init__(self, account_id: str | None) -> None:
        super().__init__(None, None, f"the bot is not installed in account {account_id}")


class DeliveryWorker(QueueWorker[OutboxItem]):
    name = "outbox"

    def __init__(self, services: Services, concurrency: int, max_attempts: int) -> None:
        super().__init__(concurrency)
        self._services = services
        self._max_attempts = max_attempts
        self._destinations = KeyedLock()
        self.card_observers: list[CardObserver] = []

    async def _fetch(self, limit: int, exclude: list[int]) -> list[OutboxItem]:
        return await self._services.storage.due_outbox(limit, exclude)

    def _item_id(self, item: OutboxItem) -> int:
        return item.id

    async def _next_due_at(self) -> float | None:
        return await self._services.storage.next_outbox_due_at()

    async def _process(self, item: OutboxItem) -> None:
        key = destination_key(item.destination)
        async with self._destinations.hold(key):
            try:
                await self._deliver(item, key)
            except RingCentralError as err:
                await self._handle_failure(item, err)
                return
        await self._services.storage.mark_sent(item.id)

    async def _handle_failure(self, item: OutboxItem, err: RingCentralError) -> None:
        storage = self._services.storage
        attempts = item.attempts + 1
        if err.retryable and attempts < self._max_attempts:
            delay = (
                err.retry_after
                if isinstance(err, RingCentralRateLimited)
                else backoff_delay(attempts)
            )
            log.info("delivery %s: %s; attempt %d, retry in %.1fs", item.id, err, attempts, delay)
            await storage.retry_outbox_later(item.id, delay, str(err))
        else:
            log.error("delivery %s failed after %d attempts: %s", item.id, attempts, err)
            await storage.mark_failed(item.id, str(err))

    async def _deliver(self, item: OutboxItem, key: str) -> None:
        install = self._services.install_for_account(item.account_id)
        if install is None:
            raise BotNotInstalled(item.account_id)
        api = install.api
        message = item.message
        if message["kind"] == "text":
            chat_id = await self._chat_for(install, item.destination)
            await api.post_text(chat_id, str(message["text"]))
            return
        card: Mapping[str, Any] = message["card"]
        if message["kind"] == "card_update":
            card_id = item.destination["cardId"]
            await api.update_card(card_id, card)
            self._notify("", card_id, card)
            return
        storage = self._services.storage
        if item.card_key is not None:
            posted = await storage.posted_card(item.card_key, key)
            if posted is not None:
                try:
                    await api.update_card(posted.card_id, card)
                except RingCentralNotFound:
                    # Someone deleted the card; post it anew rather than lose the update.
                    log.info("card %s is gone; posting a new one", posted.card_id)
                    await storage.forget_card(item.card_key, key)
                else:
                    self._notify(posted.chat_id, posted.card_id, card)
                    return
        chat_id = await self._chat_for(install, item.destination)
        card_id = await api.create_card(chat_id, card)
        if item.card_key is not None:
            await storage.remember_card(item.card_key, key, chat_id, card_id)
        self._notify(chat_id, card_id, card)

    async def _chat_for(self, install: BotInstall, destination: Mapping[str, str]) -> str:
        if destination["kind"] == "chat":
            return destination["chatId"]
        extension_id = destination["extensionId"]
        storage = self._services.storage
        chat_id = await storage.direct_chat(extension_id)
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
