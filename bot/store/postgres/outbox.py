"""PostgreSQL storage: outbox (messages to send) and posted_cards (the cards already posted),
the outbox claimed by replicas in order per destination (bot/store/postgres/claims.py)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from bot.store.base import _json_text
from bot.store.postgres.claims import PgClaims
from bot.store.records import REPLY_PRIORITY, DeliveryReads, OutboxItem, StoredCard
from bot.store.records import destination_key as destination_key_of

log = logging.getLogger(__name__)

INSERT_DELIVERY = (
    "INSERT INTO outbox (dedupe_key, destination, message, card_key, account_id, created_at, "
    "priority, order_key, claimed_by, lease_until) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
    "ON CONFLICT (dedupe_key) DO NOTHING RETURNING id"
)


def destination_text(destination: Mapping[str, str]) -> str:
    """The destination as stored: always encoded alike (`newer_version_sent` compares it)."""
    return json.dumps(destination, separators=(",", ":"))


def _destination_field(destination: str) -> tuple[str, str, str]:
    """(`kind`, the JSON field naming it, its id) of `direct:…` / `chat:…`."""
    kind, _, ident = destination.partition(":")
    return kind, ("extensionId" if kind == "direct" else "chatId"), ident


class PgOutbox(PgClaims):
    """The PostgreSQL side of `OutboxStore` (see bot/store/interface.py)."""

    async def enqueue(
        self,
        dedupe_key: str,
        destination: Mapping[str, str],
        message: Mapping[str, Any],
        card_key: str | None = None,
        account_id: str | None = None,
        priority: int = REPLY_PRIORITY,
    ) -> bool:
        """Queue a delivery; False when this exact delivery was queued before (by any
        replica). Once committed it is reserved by this replica and handed to its delivery
        worker in memory (`on_outbox_queued`)."""
        stored_destination = destination_text(destination)
        message_text = _json_text(message)
        now = time.time()
        item_id = await self._pool.fetchval(
            INSERT_DELIVERY,
            dedupe_key,
            stored_destination,
            message_text,
            card_key,
            account_id,
            now,
            priority,
            destination_key_of(destination),
            self.replica_id,
            self._lease_end(now),
        )
        if item_id is None:
            return False
        self.on_outbox_queued(
            OutboxItem(
                int(item_id),
                dedupe_key,
                orjson.loads(stored_destination),
                orjson.loads(message_text),
                card_key,
                0,
                account_id,
                priority,
            )
        )
        return True

    async def due_outbox(self, limit: int, exclude_ids: Sequence[int] = ()) -> list[OutboxItem]:
        """Claim due deliveries for this replica: digests first, then oldest first, the
        head of each destination's line only, none another replica holds."""
        rows = await self._claim_rows("outbox", limit, exclude_ids, only_ids=False)
        return [_outbox_item(r) for r in rows]

    async def outbox_items(self, ids: Sequence[int]) -> list[OutboxItem]:
        """These deliveries, if still pending (oldest first). Only a read: the worker
        claims them before it starts (`claim_queued`)."""
        if not ids:
            return []
        rows = await self._pool.fetch(
            "SELECT * FROM outbox WHERE status = 'pending' AND id = ANY($1::bigint[]) ORDER BY id",
            list(ids),
        )
        return [_outbox_item(r) for r in rows]

    async def newer_version_sent(self, item: OutboxItem) -> bool:
        """Whether a later delivery of the same card to the same destination was sent
        already: then `item` is an older version, and sending it would undo the newer one."""
        if item.card_key is None:
            return False
        found = await self._pool.fetchval(
            "SELECT 1 FROM outbox WHERE id > $1 AND card_key = $2 AND destination = $3 "
            "AND status = 'sent' LIMIT 1",
            item.id,
            item.card_key,
            destination_text(item.destination),
        )
        return found is not None

    async def mark_sent(self, item_id: int) -> None:
        await self._fenced_update(
            "outbox",
            "UPDATE outbox SET status = 'sent', sent_at = $3, attempts = attempts + 1, "
            "last_error = NULL, lease_until = NULL WHERE id = $1 AND claimed_by = $2 "
            "RETURNING id, order_key",
            item_id,
            time.time(),
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
        budget, the card remembered for in-place updates and the delivery marked sent.

        The post and the card are recorded even by a replica whose claim was taken over
        meanwhile: they happened. Only the row's status is fenced by the claim."""
        now = time.time()
        async with self._transaction() as connection:
            if day is not None and account_id is not None:
                await connection.execute(
                    "INSERT INTO daily_posts (account_id, day, count) VALUES ($1, $2, 1) "
                    "ON CONFLICT (account_id, day) DO UPDATE SET count = daily_posts.count + 1",
                    account_id,
                    day,
                )
            if card is not None:
                card_key, destination, chat_id, card_id = card
                await connection.execute(
                    "INSERT INTO posted_cards (card_key, destination, chat_id, card_id, "
                    "updated_at, account_id) VALUES ($1, $2, $3, $4, $5, $6) "
                    "ON CONFLICT (card_key, destination) DO UPDATE SET "
                    "chat_id = excluded.chat_id, card_id = excluded.card_id, "
                    "updated_at = excluded.updated_at, "
                    "account_id = COALESCE(excluded.account_id, posted_cards.account_id)",
                    card_key,
                    destination,
                    chat_id,
                    card_id,
                    now,
                    account_id,
                )
            marked = await connection.fetchrow(
                "WITH changed AS (UPDATE outbox SET status = 'sent', sent_at = $3, "
                "attempts = attempts + 1, last_error = NULL, lease_until = NULL "
                "WHERE id = $1 AND claimed_by = $2 RETURNING id, order_key) "
                "SELECT EXISTS (SELECT 1 FROM outbox AS n, changed "
                "WHERE n.order_key = changed.order_key AND n.status = 'pending' "
                "AND n.id > changed.id) AS waiting FROM changed",
                item_id,
                self.replica_id,
                now,
            )
            if marked is None:
                log.warning(
                    "outbox row %s is held by another replica (this one's lease ran out): "
                    "sent here, its post and card recorded, its status left to the holder",
                    item_id,
                )
            elif marked["waiting"]:
                await connection.execute("SELECT pg_notify('bot_outbox', '')")

    async def retry_outbox_later(self, item_id: int, delay_s: float, error: str) -> float:
        """Try again in `delay_s`; returns when (epoch seconds)."""
        due_at = time.time() + delay_s
        await self._fenced_update(
            "outbox",
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $3, last_error = $4, "
            "lease_until = NULL WHERE id = $1 AND claimed_by = $2 RETURNING id, order_key",
            item_id,
            due_at,
            error,
        )
        return due_at

    async def postpone_outbox(self, item_id: int, delay_s: float, reason: str) -> float:
        """Try again later without using up an attempt; returns when (epoch seconds)."""
        due_at = time.time() + delay_s
        await self._fenced_update(
            "outbox",
            "UPDATE outbox SET next_attempt_at = $3, last_error = $4, lease_until = NULL "
            "WHERE id = $1 AND claimed_by = $2 RETURNING id, order_key",
            item_id,
            due_at,
            reason,
        )
        return due_at

    async def mark_failed(self, item_id: int, error: str) -> None:
        await self._fenced_update(
            "outbox",
            "UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = $3, "
            "lease_until = NULL WHERE id = $1 AND claimed_by = $2 RETURNING id, order_key",
            item_id,
            error,
        )

    async def outbox_counts(self) -> dict[str, int]:
        rows = await self._pool.fetch("SELECT status, COUNT(*) AS n FROM outbox GROUP BY status")
        return {r["status"]: int(r["n"]) for r in rows}

    async def next_outbox_due_at(self, after: float | None = None) -> float | None:
        """When the next pending delivery is due (the first one due after `after`)."""
        value = await self._pool.fetchval(
            "SELECT MIN(next_attempt_at) FROM outbox WHERE status = 'pending' "
            "AND next_attempt_at > $1",
            -1.0 if after is None else after,
        )
        return None if value is None else float(value)

    async def delivery_reads(self, item: OutboxItem, destination: str) -> DeliveryReads:
        """`newer_version_sent`, `posted_card(item.card_key, destination)` and the direct
        chat of the person `item` goes to (`direct_chat`), as one statement."""
        extension_id = item.destination.get("extensionId")
        row = await self._pool.fetchrow(
            "SELECT (SELECT 1 FROM outbox WHERE id > $1 AND card_key = $2 "
            "AND destination = $3 AND status = 'sent' LIMIT 1) AS newer, "
            "p.chat_id, p.card_id, p.updated_at, "
            "(SELECT chat_id FROM direct_chats WHERE extension_id = $4) AS direct_chat "
            "FROM (SELECT 1) AS one LEFT JOIN posted_cards AS p "
            "ON p.card_key = $2 AND p.destination = $5",
            item.id,
            item.card_key,
            destination_text(item.destination),
            extension_id if item.destination.get("kind") == "direct" else None,
            destination,
        )
        assert row is not None  # one row, whatever is stored
        return DeliveryReads(
            newer_version_sent=row["newer"] is not None,
            posted=(
                StoredCard(row["chat_id"], row["card_id"], row["updated_at"])
                if row["chat_id"] is not None
                else None
            ),
            direct_chat=str(row["direct_chat"]) if row["direct_chat"] is not None else None,
        )

    async def posted_card(self, card_key: str, destination: str) -> StoredCard | None:
        row = await self._pool.fetchrow(
            "SELECT chat_id, card_id, updated_at FROM posted_cards "
            "WHERE card_key = $1 AND destination = $2",
            card_key,
            destination,
        )
        return StoredCard(row["chat_id"], row["card_id"], row["updated_at"]) if row else None

    async def remember_card(
        self,
        card_key: str,
        destination: str,
        chat_id: str,
        card_id: str,
        account_id: str | None = None,
    ) -> None:
        await self._pool.execute(
            "INSERT INTO posted_cards (card_key, destination, chat_id, card_id, updated_at, "
            "account_id) VALUES ($1, $2, $3, $4, $5, $6) "
            "ON CONFLICT (card_key, destination) DO UPDATE SET "
            "chat_id = excluded.chat_id, card_id = excluded.card_id, "
            "updated_at = excluded.updated_at, "
            "account_id = COALESCE(excluded.account_id, posted_cards.account_id)",
            card_key,
            destination,
            chat_id,
            card_id,
            time.time(),
            account_id,
        )

    async def card_destinations(self, card_key: str) -> set[str]:
        """Every destination (`direct:…`, `chat:…`) this card was queued for or posted to,
        whatever became of the delivery (a failed one is for `resend`, not a new copy)."""
        found: set[str] = set()
        for row in await self._pool.fetch(
            "SELECT destination FROM outbox WHERE card_key = $1", card_key
        ):
            found.add(destination_key_of(json.loads(row["destination"])))
        for row in await self._pool.fetch(
            "SELECT destination FROM posted_cards WHERE card_key = $1", card_key
        ):
            found.add(str(row["destination"]))
        return found

    async def forget_pending_card(self, card_key: str, destination: str) -> None:
        """The create certainly failed: no card to look for on the next attempt."""
        await self._pool.execute(
            "DELETE FROM posted_cards WHERE card_key = $1 AND destination = $2 AND card_id = ''",
            card_key,
            destination,
        )

    async def forget_card(self, card_key: str, destination: str) -> None:
        await self._pool.execute(
            "DELETE FROM posted_cards WHERE card_key = $1 AND destination = $2",
            card_key,
            destination,
        )

    async def mark_card_pending(
        self, card_key: str, destination: str, chat_id: str, account_id: str | None = None
    ) -> None:
        """About to create a card: if we die before learning its id, a retry (on any
        replica) knows to look for it in the chat instead of posting a second one. The
        statement decides: a marker or a card already there is kept as it is."""
        await self._pool.execute(
            "INSERT INTO posted_cards (card_key, destination, chat_id, card_id, updated_at, "
            "account_id) VALUES ($1, $2, $3, '', $4, $5) "
            "ON CONFLICT (card_key, destination) DO NOTHING",
            card_key,
            destination,
            chat_id,
            time.time(),
            account_id,
        )

    async def requeue_failed(
        self, destinations: Sequence[str] | None, *, account_id: str | None = None
    ) -> int:
        """Failed deliveries (to these destinations, or all of `account_id`'s) go back into
        the queue, for whichever replica claims them first. Without destinations an account
        is required: nobody resends another account's deliveries."""
        requeue = (
            "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = 0, "
            "claimed_by = NULL, lease_until = NULL WHERE status = 'failed' "
        )
        async with self._transaction() as connection:
            if destinations is None:
                if account_id is None:
                    raise ValueError("resending every failed delivery needs an account")
                rows = await connection.fetch(
                    requeue + "AND account_id = $1 RETURNING id", account_id
                )
                total = len(rows)
            else:
                total = 0
                for destination in destinations:
                    kind, field, ident = _destination_field(destination)
                    rows = await connection.fetch(
                        requeue + "AND (destination::jsonb ->> 'kind') = $1 "
                        "AND (destination::jsonb ->> $2) = $3 RETURNING id",
                        kind,
                        field,
                        ident,
                    )
                    total += len(rows)
            if total:
                await connection.execute("SELECT pg_notify('bot_outbox', '')")
        return total

    async def failed_deliveries(self, destinations: Sequence[str]) -> int:
        """How many deliveries to these destinations (`direct:…`, `chat:…`) gave up."""
        count = 0
        for destination in destinations:
            kind, field, ident = _destination_field(destination)
            value = await self._pool.fetchval(
                "SELECT COUNT(*) FROM outbox WHERE status = 'failed' "
                "AND (destination::jsonb ->> 'kind') = $1 "
                "AND (destination::jsonb ->> $2) = $3",
                kind,
                field,
                ident,
            )
            count += int(value or 0)
        return count


def _outbox_item(row: Any) -> OutboxItem:
    return OutboxItem(
        int(row["id"]),
        row["dedupe_key"],
        orjson.loads(row["destination"]),
        orjson.loads(row["message"]),
        row["card_key"],
        int(row["attempts"]),
        row["account_id"],
        int(row["priority"]),
    )
