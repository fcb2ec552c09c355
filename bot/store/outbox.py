"""SQLite storage of messages to send and the cards already posted: `outbox`, `posted_cards`."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from bot.store.base import StoreBase, _excluding, _json_text
from bot.store.records import (
    REPLY_PRIORITY,
    DeliveryReads,
    OutboxItem,
    PostPlace,
    StoredCard,
    destination_key,
)


class SqliteOutbox(StoreBase):
    """The SQLite side of `OutboxStore` (see bot/store/interface.py)."""

    async def enqueue(
        self,
        dedupe_key: str,
        destination: Mapping[str, str],
        message: Mapping[str, Any],
        card_key: str | None = None,
        account_id: str | None = None,
        priority: int = REPLY_PRIORITY,
    ) -> bool:
        """Queue a delivery; False when this exact delivery was queued before.

        Once committed, the delivery is handed to the delivery worker in memory
        (`on_outbox_queued`): it is not read back from the database."""
        # The destination's text is compared by `newer_version_sent`: encoded as always.
        destination_text = json.dumps(destination, separators=(",", ":"))
        message_text = _json_text(message)
        async with self._write_lock:
            cursor = await self._db.execute(
                "INSERT INTO outbox (dedupe_key, destination, message, card_key, "
                "account_id, created_at, priority) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
                (
                    dedupe_key,
                    destination_text,
                    message_text,
                    card_key,
                    account_id,
                    time.time(),
                    priority,
                ),
            )
            row = await cursor.fetchone()
            await cursor.close()
        if row is None:
            return False
        # Exactly what a read from the database would give (the round trip copies the
        # values, so a caller changing its dict later changes nothing queued).
        self.on_outbox_queued(
            OutboxItem(
                int(row[0]),
                dedupe_key,
                orjson.loads(destination_text),
                orjson.loads(message_text),
                card_key,
                0,
                account_id,
                priority,
            )
        )
        return True

    async def due_outbox(self, limit: int, exclude_ids: Sequence[int] = ()) -> list[OutboxItem]:
        """Pending deliveries that are due, digests first, then oldest first."""
        exclusion, excluded = _excluding(exclude_ids)
        # Only fixed conditions are interpolated into this query.
        return await self._select_outbox(
            f"next_attempt_at <= ? {exclusion} ORDER BY priority, id LIMIT ?",
            (time.time(), *excluded, limit),
        )

    async def outbox_items(self, ids: Sequence[int]) -> list[OutboxItem]:
        """These deliveries, if still pending (oldest first)."""
        if not ids:
            return []
        return await self._select_outbox(
            "id IN (SELECT value FROM json_each(?)) ORDER BY id", (json.dumps(list(ids)),)
        )

    async def _select_outbox(self, condition: str, params: tuple[Any, ...]) -> list[OutboxItem]:
        query = (
            "SELECT id, dedupe_key, destination, message, card_key, attempts, account_id, "  # noqa: S608
            f"priority FROM outbox WHERE status = 'pending' AND {condition}"
        )
        async with self._db.execute(query, params) as cursor:
            rows = await cursor.fetchall()
        return [
            OutboxItem(
                r["id"],
                r["dedupe_key"],
                orjson.loads(r["destination"]),
                orjson.loads(r["message"]),
                r["card_key"],
                r["attempts"],
                r["account_id"],
                r["priority"],
            )
            for r in rows
        ]

    async def newer_version_sent(self, item: OutboxItem) -> bool:
        """Whether a later delivery of the same card to the same destination was sent
        already: then `item` is an older version, and sending it would undo the newer one
        (a retry that waited while the newer version went out)."""
        if item.card_key is None:
            return False
        async with self._db.execute(
            "SELECT 1 FROM outbox WHERE id > ? AND card_key = ? AND destination = ? "
            "AND status = 'sent' LIMIT 1",
            (item.id, item.card_key, json.dumps(item.destination, separators=(",", ":"))),
        ) as cursor:
            return await cursor.fetchone() is not None

    async def delivery_reads(self, item: OutboxItem, destination: str) -> DeliveryReads:
        """`newer_version_sent`, `posted_card(item.card_key, destination)` and the direct
        chat of the person `item` goes to (`direct_chat`), as one statement."""
        extension_id = item.destination.get("extensionId")
        async with self._db.execute(
            "SELECT (SELECT 1 FROM outbox WHERE id > ? AND card_key = ? AND destination = ? "
            "AND status = 'sent' LIMIT 1), p.chat_id, p.card_id, p.updated_at, "
            "(SELECT chat_id FROM direct_chats WHERE extension_id = ?) "
            "FROM (SELECT 1) LEFT JOIN posted_cards AS p "
            "ON p.card_key = ? AND p.destination = ?",
            (
                item.id,
                item.card_key,
                json.dumps(item.destination, separators=(",", ":")),
                extension_id if item.destination.get("kind") == "direct" else None,
                item.card_key,
                destination,
            ),
        ) as cursor:
            row = await cursor.fetchone()
        return _delivery_reads(row)

    async def mark_sent(self, item_id: int) -> None:
        async with self._write_lock:
            await self._db.execute(
                "UPDATE outbox SET status = 'sent', sent_at = ?, attempts = attempts + 1, "
                "last_error = NULL WHERE id = ?",
                (time.time(), item_id),
            )

    async def delivered(
        self,
        item_id: int,
        *,
        account_id: str | None,
        day: str | None,
        card: tuple[str, str, str, str] | None = None,
    ) -> None:
        """A delivery went out: in one transaction, the post counted against `day`'s
        budget (None: nothing was posted, an update), the card remembered for in-place
        updates (`card`: card key, destination, chat id, card id) and the delivery marked
        sent. A crash before this commit retries the delivery, which finds the card it
        marked pending (`mark_card_pending`) instead of posting a second one."""
        now = time.time()

        def write(db: sqlite3.Connection) -> None:
            if day is not None and account_id is not None:
                db.execute(
                    "INSERT INTO daily_posts (account_id, day, count) VALUES (?, ?, 1) "
                    "ON CONFLICT (account_id, day) DO UPDATE SET count = count + 1",
                    (account_id, day),
                )
            if card is not None:
                card_key, destination, chat_id, card_id = card
                db.execute(
                    "INSERT INTO posted_cards (card_key, destination, chat_id, card_id, "
                    "updated_at, account_id) VALUES (?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (card_key, destination) DO UPDATE SET "
                    "chat_id = excluded.chat_id, card_id = excluded.card_id, "
                    "updated_at = excluded.updated_at, "
                    "account_id = COALESCE(excluded.account_id, posted_cards.account_id)",
                    (card_key, destination, chat_id, card_id, now, account_id),
                )
            db.execute(
                "UPDATE outbox SET status = 'sent', sent_at = ?, attempts = attempts + 1, "
                "last_error = NULL WHERE id = ?",
                (now, item_id),
            )

        # One trip to the connection's thread for the whole transaction (every digest
        # passes here): see `_in_one_trip`.
        await self._in_one_trip(write)

    async def retry_outbox_later(self, item_id: int, delay_s: float, error: str) -> float:
        """Try again in `delay_s`; returns when (epoch seconds)."""
        due_at = time.time() + delay_s
        async with self._write_lock:
            await self._db.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? "
                "WHERE id = ?",
                (due_at, error, item_id),
            )
        return due_at

    async def postpone_outbox(self, item_id: int, delay_s: float, reason: str) -> float:
        """Try again later without using up an attempt (the delay is not the delivery's
        fault); returns when (epoch seconds)."""
        due_at = time.time() + delay_s
        async with self._write_lock:
            await self._db.execute(
                "UPDATE outbox SET next_attempt_at = ?, last_error = ? WHERE id = ?",
                (due_at, reason, item_id),
            )
        return due_at

    async def mark_failed(self, item_id: int, error: str) -> None:
        async with self._write_lock:
            await self._db.execute(
                "UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = ? "
                "WHERE id = ?",
                (error, item_id),
            )

    async def outbox_counts(self) -> dict[str, int]:
        async with self._db.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status") as cur:
            return {row[0]: row[1] for row in await cur.fetchall()}

    async def next_outbox_due_at(self, after: float | None = None) -> float | None:
        """When the next pending delivery is due (the first one due after `after`)."""
        async with self._db.execute(
            "SELECT MIN(next_attempt_at) FROM outbox WHERE status = 'pending' "
            "AND next_attempt_at > ?",
            (-1.0 if after is None else after,),
        ) as cursor:
            row = await cursor.fetchone()
        return float(row[0]) if row and row[0] is not None else None

    async def posted_card(self, card_key: str, destination: str) -> StoredCard | None:
        async with self._db.execute(
            "SELECT chat_id, card_id, updated_at FROM posted_cards "
            "WHERE card_key = ? AND destination = ?",
            (card_key, destination),
        ) as cursor:
            row = await cursor.fetchone()
        return StoredCard(row["chat_id"], row["card_id"], row["updated_at"]) if row else None

    async def remember_card(
        self,
        card_key: str,
        destination: str,
        chat_id: str,
        card_id: str,
        account_id: str | None = None,
    ) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO posted_cards (card_key, destination, chat_id, card_id, updated_at, "
                "account_id) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (card_key, destination) DO UPDATE SET "
                "chat_id = excluded.chat_id, card_id = excluded.card_id, "
                "updated_at = excluded.updated_at, "
                "account_id = COALESCE(excluded.account_id, posted_cards.account_id)",
                (card_key, destination, chat_id, card_id, time.time(), account_id),
            )

    async def card_destinations(self, card_key: str) -> set[str]:
        """Every destination (`direct:…`, `chat:…`) this card was queued for or posted to,
        whatever became of the delivery (a failed one is for `resend`, not a new copy)."""
        found: set[str] = set()
        async with self._db.execute(
            "SELECT destination FROM outbox WHERE card_key = ?", (card_key,)
        ) as cursor:
            for row in await cursor.fetchall():
                found.add(destination_key(json.loads(row[0])))
        async with self._db.execute(
            "SELECT destination FROM posted_cards WHERE card_key = ?", (card_key,)
        ) as cursor:
            found.update(str(row[0]) for row in await cursor.fetchall())
        return found

    async def forget_pending_card(self, card_key: str, destination: str) -> None:
        """The create certainly failed: no card to look for on the next attempt."""
        async with self._transaction() as db:
            await db.execute(
                "DELETE FROM posted_cards WHERE card_key = ? AND destination = ? AND card_id = ''",
                (card_key, destination),
            )

    async def forget_card(self, card_key: str, destination: str) -> None:
        async with self._transaction() as db:
            await db.execute(
                "DELETE FROM posted_cards WHERE card_key = ? AND destination = ?",
                (card_key, destination),
            )

    async def mark_card_pending(
        self, card_key: str, destination: str, chat_id: str, account_id: str | None = None
    ) -> None:
        """About to create a card: if we die before learning its id, a retry knows to look
        for it in the chat instead of posting a second one."""
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO posted_cards (card_key, destination, chat_id, card_id, updated_at, "
                "account_id) VALUES (?, ?, ?, '', ?, ?) "
                "ON CONFLICT (card_key, destination) DO NOTHING",
                (card_key, destination, chat_id, time.time(), account_id),
            )

    async def take_post(
        self,
        account_id: str,
        day: str,
        budget: int,
        card: tuple[str, str, str] | None = None,
    ) -> PostPlace:
        """Before a post: one place in `day`'s budget, if fewer than `budget` are taken,
        and for a card (`card`: card key, destination, chat id) the note that it is being
        created (as `mark_card_pending`), in one transaction. Counted before the post, so
        deliveries side by side never overshoot; one process creates every card (its
        deliveries to a destination go one at a time), so no card is claimed elsewhere."""
        if budget <= 0:
            return PostPlace.OVER_BUDGET
        now = time.time()

        def write(db: sqlite3.Connection) -> PostPlace:
            taken = db.execute(
                "INSERT INTO daily_posts (account_id, day, count) VALUES (?, ?, 1) "
                "ON CONFLICT (account_id, day) DO UPDATE SET count = count + 1 "
                "WHERE count < ? RETURNING count",
                (account_id, day, budget),
            ).fetchall()
            if not taken:
                return PostPlace.OVER_BUDGET
            if card is not None:
                card_key, destination, chat_id = card
                db.execute(
                    "INSERT INTO posted_cards (card_key, destination, chat_id, card_id, "
                    "updated_at, account_id) VALUES (?, ?, ?, '', ?, ?) "
                    "ON CONFLICT (card_key, destination) DO NOTHING",
                    (card_key, destination, chat_id, now, account_id),
                )
            return PostPlace.TAKEN

        # One trip to the connection's thread for the whole transaction (every card
        # passes here): see `_in_one_trip`.
        return await self._in_one_trip(write)

    async def give_back_post(self, account_id: str, day: str) -> None:
        """A place taken by `take_post` whose post certainly was not made (refused,
        throttled)."""
        async with self._transaction() as db:
            await db.execute(
                "UPDATE daily_posts SET count = count - 1 "
                "WHERE account_id = ? AND day = ? AND count > 0",
                (account_id, day),
            )

    async def requeue_failed(
        self, destinations: Sequence[str] | None, *, account_id: str | None = None
    ) -> int:
        """Failed deliveries (to these destinations, or all of `account_id`'s) go back into
        the queue. Without destinations an account is required: nobody resends another
        account's deliveries."""
        async with self._transaction() as db:
            if destinations is None:
                if account_id is None:
                    raise ValueError("resending every failed delivery needs an account")
                cursor = await db.execute(
                    "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = 0 "
                    "WHERE status = 'failed' AND account_id = ?",
                    (account_id,),
                )
                return cursor.rowcount
            total = 0
            for destination in destinations:
                kind, _, ident = destination.partition(":")
                field = "extensionId" if kind == "direct" else "chatId"
                cursor = await db.execute(
                    "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = 0 "
                    "WHERE status = 'failed' AND json_extract(destination, '$.kind') = ? "
                    "AND json_extract(destination, ?) = ?",
                    (kind, f"$.{field}", ident),
                )
                total += cursor.rowcount
            return total

    async def failed_deliveries(self, destinations: Sequence[str]) -> int:
        """How many deliveries to these destinations (`direct:…`, `chat:…`) gave up."""
        if not destinations:
            return 0
        count = 0
        for destination in destinations:
            kind, _, ident = destination.partition(":")
            field = "extensionId" if kind == "direct" else "chatId"
            async with self._db.execute(
                "SELECT COUNT(*) FROM outbox WHERE status = 'failed' "
                "AND json_extract(destination, '$.kind') = ? "
                "AND json_extract(destination, ?) = ?",
                (kind, f"$.{field}", ident),
            ) as cursor:
                row = await cursor.fetchone()
            count += int(row[0]) if row else 0
        return count


def _delivery_reads(row: Any) -> DeliveryReads:
    """`delivery_reads`' one row: (newer sent, card's chat, card id, its time, direct chat)."""
    newer, chat_id, card_id, updated_at, direct_chat = tuple(row)
    return DeliveryReads(
        newer_version_sent=newer is not None,
        posted=StoredCard(chat_id, card_id, updated_at) if chat_id is not None else None,
        direct_chat=str(direct_chat) if direct_chat is not None else None,
    )
