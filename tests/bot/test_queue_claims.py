"""The inbox and outbox shared by replicas (PostgreSQL): every row is worked on by one
replica, in order per chat, call and destination, and a dead replica's rows are taken over
after its lease. Two storages opened on one database are two replicas. The cards'
bookkeeping runs on both backends (`any_storage`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.store import StorageInterface
from bot.store.postgres.inbox import inbox_order_key
from bot.store.postgres.storage import PostgresStorage
from bot.store.records import DIGEST_PRIORITY, DeliveryReads, InboxItem, OutboxItem
from bot.workers import QueueWorker, ordering_key
from tests.stores import postgres_rows

Opener = Callable[..., Awaitable[PostgresStorage]]


@pytest.fixture
async def replicas(postgres_url: str) -> AsyncIterator[Opener]:
    """Opens replicas (storages named `replica_id`) on this test's one database."""
    opened: list[PostgresStorage] = []

    async def open_replica(replica_id: str, lease_s: float | None = None) -> PostgresStorage:
        storage = await PostgresStorage.open(postgres_url, replica_id=replica_id)
        if lease_s is not None:
            storage.claim_lease_s = lease_s
        opened.append(storage)
        return storage

    yield open_replica
    for storage in opened:
        await storage.close()


def chat_message(uuid: str, chat_id: str, text: str) -> dict[str, Any]:
    return {
        "uuid": uuid,
        "event": "/team-messaging/v1/posts",
        "body": {"groupId": chat_id, "text": text, "eventType": "PostAdded"},
    }


def committed_by(storage: PostgresStorage) -> list[InboxItem]:
    """What `storage` hands to its own inbox worker in memory, as the bot wires it."""
    handed: list[InboxItem] = []
    storage.on_inbox_committed = handed.extend
    return handed


def queued_by(storage: PostgresStorage) -> list[OutboxItem]:
    handed: list[OutboxItem] = []
    storage.on_outbox_queued = handed.append
    return handed


async def test_two_replicas_claim_disjoint_rows_and_together_all_of_them(
    replicas: Opener, postgres_url: str
) -> None:
    # Stored by a replica whose reservations lapse at once: the rows are anybody's.
    intake = await replicas("intake", lease_s=0.0)
    for n in range(60):
        assert await intake.add_to_inbox(f"u-{n}", "other", {"n": n})
    await asyncio.sleep(0.01)
    first, second = await replicas("r1"), await replicas("r2")

    taken: dict[str, list[int]] = {"r1": [], "r2": []}
    while True:
        # Each leaves out what it holds already, as its worker does.
        got = await asyncio.gather(
            first.due_inbox(7, taken["r1"]), second.due_inbox(7, taken["r2"])
        )
        if not any(got):
            break
        taken["r1"] += [i.id for i in got[0]]
        taken["r2"] += [i.id for i in got[1]]
    assert not set(taken["r1"]) & set(taken["r2"])
    assert len(taken["r1"]) + len(taken["r2"]) == 60
    assert taken["r1"] and taken["r2"]
    holders = await postgres_rows(
        postgres_url, "SELECT claimed_by, COUNT(*) AS n FROM inbox GROUP BY claimed_by"
    )
    assert {r["claimed_by"]: r["n"] for r in holders} == {
        "r1": len(taken["r1"]),
        "r2": len(taken["r2"]),
    }


async def test_a_dead_replicas_row_is_taken_over_after_its_lease_and_its_late_finish_is_void(
    replicas: Opener, postgres_url: str
) -> None:
    dying = await replicas("dying", lease_s=1.5)
    survivor = await replicas("survivor")
    handed = committed_by(dying)
    assert await dying.add_to_inbox("u-1", "other", {"text": "optin"})
    [item] = handed
    assert await dying.claim_queued("inbox", [item.id]) == [item.id]

    # While the lease holds, nobody else may take the row.
    assert await survivor.due_inbox(10) == []
    await asyncio.sleep(1.6)  # `dying` stopped renewing: paused, or killed
    [taken] = await survivor.due_inbox(10)
    assert taken.id == item.id and taken.payload == {"text": "optin"}

    # The paused replica wakes up and finishes: it no longer holds the row.
    await dying.finish_inbox(item.id, "failed", "too late")
    assert await survivor.inbox_counts() == {"pending": 1}
    await survivor.finish_inbox(item.id, "done")
    assert await survivor.inbox_counts() == {"done": 1}
    [row] = await postgres_rows(
        postgres_url, "SELECT claimed_by, last_error FROM inbox WHERE id = $1", item.id
    )
    assert (row["claimed_by"], row["last_error"]) == ("survivor", None)


async def test_a_chats_second_message_never_starts_before_its_first_across_replicas(
    replicas: Opener,
) -> None:
    first, second, third = await replicas("r1"), await replicas("r2"), await replicas("r3")
    on_first, on_second = committed_by(first), committed_by(second)
    assert await first.add_to_inbox("m-1", "post.added", chat_message("m-1", "chat-9", "optin"))
    assert await second.add_to_inbox("m-2", "post.added", chat_message("m-2", "chat-9", "optout"))
    assert await second.add_to_inbox("o-1", "post.added", chat_message("o-1", "chat-5", "help"))
    [optin], [optout, elsewhere] = on_first, on_second
    woken = asyncio.Event()
    await second.listen_for_work("inbox", woken.set)

    # The second replica may start the other chat's message, not the second one of chat-9.
    assert await second.claim_queued("inbox", [optout.id, elsewhere.id]) == [elsewhere.id]
    assert await third.due_inbox(10) == []
    assert await first.claim_queued("inbox", [optin.id]) == [optin.id]
    assert await second.due_inbox(10, [elsewhere.id]) == []

    await first.finish_inbox(optin.id, "done")
    await asyncio.wait_for(woken.wait(), 5)
    [next_one] = await second.due_inbox(10, [elsewhere.id])
    assert next_one.id == optout.id and next_one.payload["body"]["text"] == "optout"


async def test_a_retry_waiting_holds_up_nothing_and_goes_first_once_due(
    replicas: Opener,
) -> None:
    replica = await replicas("r1")
    handed = queued_by(replica)
    chat = {"kind": "chat", "chatId": "chat-1"}
    assert await replica.enqueue("reply", chat, {"kind": "text", "text": "later"})
    assert await replica.enqueue(
        "digest", chat, {"kind": "text", "text": "digest"}, priority=DIGEST_PRIORITY
    )
    reply, digest = handed
    assert await replica.claim_queued("outbox", [reply.id, digest.id]) == [reply.id]
    # The reply must wait (kept for digests): the digest to the same chat goes meanwhile.
    await replica.postpone_outbox(reply.id, 1.5, "kept for digests")
    assert await replica.claim_queued("outbox", [digest.id]) == [digest.id]
    await replica.delivered(digest.id, account_id="1", day="2026-11-30")
    await asyncio.sleep(1.55)
    [again] = await replica.due_outbox(10)
    assert again.id == reply.id


async def test_deliveries_to_one_destination_go_in_order_across_replicas(
    replicas: Opener,
) -> None:
    first, second = await replicas("r1"), await replicas("r2")
    on_first, on_second = queued_by(first), queued_by(second)
    chat = {"kind": "chat", "chatId": "chat-7"}
    assert await first.enqueue("k-1", chat, {"kind": "text", "text": "one"})
    assert await second.enqueue("k-2", chat, {"kind": "text", "text": "two"})
    [one], [two] = on_first, on_second
    woken = asyncio.Event()
    await second.listen_for_work("outbox", woken.set)

    assert await second.claim_queued("outbox", [two.id]) == []
    assert await first.claim_queued("outbox", [one.id]) == [one.id]
    await first.delivered(one.id, account_id="1", day="2026-11-30")
    await asyncio.wait_for(woken.wait(), 5)
    [next_one] = await second.due_outbox(10)
    assert next_one.message == {"kind": "text", "text": "two"}
    await second.mark_sent(next_one.id)
    assert await first.outbox_counts() == {"sent": 2}


async def test_a_notification_delivered_to_two_replicas_is_stored_once(
    replicas: Opener,
) -> None:
    first, second = await replicas("r1"), await replicas("r2")
    uuids = [f"u-{n}" for n in range(50)]
    results = await asyncio.gather(
        *(r.add_to_inbox(u, "other", {"u": u}) for u in uuids for r in (first, second))
    )
    stored_per_uuid = [results[2 * n] + results[2 * n + 1] for n in range(len(uuids))]
    assert stored_per_uuid == [1] * len(uuids)
    assert await first.inbox_counts() == {"pending": 50}


async def test_a_row_postgresql_refuses_fails_alone_not_the_rows_committed_with_it(
    replicas: Opener,
) -> None:
    replica = await replicas("r1")
    good = [replica.add_to_inbox(f"g-{n}", "other", {"n": n}) for n in range(10)]
    bad = replica.add_to_inbox("bad", "other", {"t": "x"}, raw='{"t":"nul \x00 inside"}')
    results = await asyncio.gather(*good[:5], bad, *good[5:], return_exceptions=True)
    assert isinstance(results[5], Exception)
    assert [r for n, r in enumerate(results) if n != 5] == [True] * 10
    assert await replica.inbox_counts() == {"pending": 10}


async def test_two_replicas_about_to_post_one_card_keep_one_marker(
    replicas: Opener, postgres_url: str
) -> None:
    first, second = await replicas("r1"), await replicas("r2")
    await asyncio.gather(
        first.mark_card_pending("call-1", "chat:c", "c", "1"),
        second.mark_card_pending("call-1", "chat:c", "c", "1"),
    )
    rows = await postgres_rows(postgres_url, "SELECT card_id FROM posted_cards")
    assert [r["card_id"] for r in rows] == [""]
    await first.remember_card("call-1", "chat:c", "c", "card-1", "1")
    # A late marker never hides the card that was posted.
    await second.mark_card_pending("call-1", "chat:c", "c", "1")
    card = await second.posted_card("call-1", "chat:c")
    assert card is not None and card.card_id == "card-1"


class _Slow(QueueWorker[InboxItem]):
    """A worker whose items take longer than the lease: the lease must be renewed."""

    name = "inbox"

    def __init__(self, storage: PostgresStorage, run_s: float) -> None:
        super().__init__(2, storage)
        self.storage = storage
        self.run_s = run_s
        self.ran: list[str] = []

    async def _fetch_stored(self, limit: int, exclude: list[int]) -> list[InboxItem]:
        return await self.storage.due_inbox_not_handed_over(limit, exclude)

    async def _load(self, ids: list[int]) -> list[InboxItem]:
        return await self.storage.inbox_items(ids)

    def _item_id(self, item: InboxItem) -> int:
        return item.id

    async def _process(self, item: InboxItem) -> None:
        await asyncio.sleep(self.run_s)
        self.ran.append(item.uuid)
        await self.storage.finish_inbox(item.id, "done")

    async def _next_stored_due_at(self, after: float) -> float | None:
        return await self.storage.next_inbox_retry_at(after)

    async def _next_due_at(self) -> float | None:
        return await self.storage.next_inbox_due_at()


async def test_a_row_that_runs_longer_than_the_lease_is_not_taken_over(
    replicas: Opener,
) -> None:
    working = await replicas("working", lease_s=1.5)
    idle = await replicas("idle")
    worker = _Slow(working, run_s=3.5)
    working.on_inbox_committed = lambda items: [worker.hand_over(i) for i in items]
    worker.start()
    try:
        assert await working.add_to_inbox("long", "other", {"text": "slow"})
        started = time.monotonic()
        while time.monotonic() - started < 3.2:
            assert await idle.due_inbox(10) == []
            await asyncio.sleep(0.1)
        await asyncio.wait_for(worker.idle(), 5)
    finally:
        await worker.stop()
    assert worker.ran == ["long"]
    assert await idle.inbox_counts() == {"done": 1}


async def test_a_stopping_replica_lets_the_others_have_what_it_had_not_started(
    replicas: Opener,
) -> None:
    stopping = await replicas("stopping")
    other = await replicas("other")
    worker = _Slow(stopping, run_s=30)
    stopping.on_inbox_committed = lambda items: [worker.hand_over(i) for i in items]
    worker.start()
    for n in range(4):
        assert await stopping.add_to_inbox(f"u-{n}", "other", {"n": n})
    await asyncio.sleep(0.2)
    await worker.stop(drain_timeout_s=0.1)
    # Two were running (cut off), two waiting: all four are the other replica's at once.
    taken = await other.due_inbox(10)
    assert sorted(i.uuid for i in taken) == [f"u-{n}" for n in range(4)]
    assert worker.ran == []


def test_the_line_of_a_notification_is_the_workers_ordering_key() -> None:
    payloads = [
        chat_message("m-1", "chat-1", "hi"),
        {"uuid": "r-1", "body": {"domain": "pbx", "sourceRecordId": "rec-1"}},
        {"uuid": "a-1", "body": {"jobId": "job-1"}},
        {"uuid": "x-1"},
    ]
    for payload in payloads:
        assert inbox_order_key(str(payload["uuid"]), payload) == ordering_key(payload)


async def test_failed_deliveries_are_counted_and_resent_by_destination(
    any_storage: StorageInterface,
) -> None:
    storage = any_storage
    direct = {"kind": "direct", "extensionId": "7"}
    chat = {"kind": "chat", "chatId": "c-1"}
    assert await storage.enqueue("d-1", direct, {"kind": "text", "text": "a"})
    assert await storage.enqueue("c-1", chat, {"kind": "text", "text": "b"}, card_key="call-1")
    for item in await storage.due_outbox(10):
        await storage.mark_failed(item.id, "gave up")
    assert await storage.failed_deliveries(["direct:7"]) == 1
    assert await storage.failed_deliveries(["direct:7", "chat:c-1"]) == 2
    assert await storage.card_destinations("call-1") == {"chat:c-1"}
    assert await storage.requeue_failed(["direct:7"]) == 1
    [again] = await storage.due_outbox(10)
    assert again.destination == direct and again.attempts == 0
    with pytest.raises(ValueError, match="account"):
        await storage.requeue_failed(None)


async def test_a_delivered_card_is_remembered_and_an_older_version_is_not_resent(
    any_storage: StorageInterface,
) -> None:
    storage = any_storage
    chat = {"kind": "chat", "chatId": "c-1"}
    card = {"kind": "card", "card": {"type": "AdaptiveCard", "body": []}}
    assert await storage.enqueue("v1", chat, card, card_key="call-1", account_id="1")
    assert await storage.enqueue("v2", chat, card, card_key="call-1", account_id="1")
    # SQLite returns both; PostgreSQL the head of the chat's line only.
    first = (await storage.due_outbox(10))[0]
    assert first.dedupe_key == "v1"
    await storage.retry_outbox_later(first.id, 0.2, "timeout")
    [second] = await storage.due_outbox(10)
    await storage.mark_card_pending("call-1", "chat:c-1", "c-1", "1")
    pending = await storage.posted_card("call-1", "chat:c-1")
    assert pending is not None and pending.card_id == ""
    await storage.delivered(
        second.id, account_id="1", day="2026-11-30", card=("call-1", "chat:c-1", "c-1", "card-9")
    )
    posted = await storage.posted_card("call-1", "chat:c-1")
    assert posted is not None and (posted.chat_id, posted.card_id) == ("c-1", "card-9")
    await storage.forget_pending_card("call-1", "chat:c-1")  # a real card is no marker
    assert await storage.posted_card("call-1", "chat:c-1") == posted
    assert await storage.newer_version_sent(first)
    assert await storage.outbox_counts() == {"pending": 1, "sent": 1}


async def test_a_deliverys_one_read_says_what_its_three_reads_said(
    any_storage: StorageInterface,
) -> None:
    """`delivery_reads` (one query) tells the delivery worker whether a newer version went
    out, which card to update and the person's direct chat, as the separate reads do."""
    storage = any_storage
    direct = {"kind": "direct", "extensionId": "7"}
    chat = {"kind": "chat", "chatId": "c-1"}
    card = {"kind": "card", "card": {"type": "AdaptiveCard", "body": []}}
    assert await storage.enqueue("d1", direct, card, card_key="call-1", account_id="1")
    [to_person] = await storage.due_outbox(10)
    nothing_yet = await storage.delivery_reads(to_person, "direct:7")
    assert nothing_yet == DeliveryReads(newer_version_sent=False, posted=None, direct_chat=None)

    await storage.remember_direct_chat("7", "dm-7", "1")
    await storage.delivered(
        to_person.id, account_id="1", day=None, card=("call-1", "direct:7", "dm-7", "card-1")
    )
    assert await storage.enqueue("d2", direct, card, card_key="call-1", account_id="1")
    [update] = await storage.due_outbox(10)
    reads = await storage.delivery_reads(update, "direct:7")
    assert reads.direct_chat == await storage.direct_chat("7") == "dm-7"
    assert reads.posted == await storage.posted_card("call-1", "direct:7")
    assert reads.posted is not None and reads.posted.card_id == "card-1"
    assert reads.newer_version_sent is False

    # The first version again (a retry that waited): the second one went out meanwhile.
    await storage.delivered(update.id, account_id="1", day=None)
    assert (await storage.delivery_reads(to_person, "direct:7")).newer_version_sent
    assert await storage.newer_version_sent(to_person)
    # A channel: no direct chat is looked up, and another destination's card is not its own.
    assert await storage.enqueue("c1", chat, card, card_key="call-1", account_id="1")
    [to_chat] = await storage.due_outbox(10)
    assert await storage.delivery_reads(to_chat, "chat:c-1") == DeliveryReads(
        newer_version_sent=False, posted=None, direct_chat=None
    )


async def test_a_digest_reaches_its_chat_once_with_the_bot_on_postgresql(
    postgres_url: str, tmp_path: Path
) -> None:
    from bot.cards import card_as_text
    from tests.e2e import running_stack, settle
    from tests.handlers.test_digests import opted_in_user

    async with running_stack(
        tmp_path / "unused.sqlite3", overrides={"bot": {"database": postgres_url}}
    ) as stack:
        user, chat = await opted_in_user(stack)
        await stack.control.call(
            "POST",
            "/calls",
            {"ownerExtensionId": user, "direction": "Outbound", "durationSec": 754},
        )
        await settle(stack.bot)
        [card_post] = await stack.control.cards(chat)
        assert "Alex Rivera" in card_as_text(card_post["card"])
        await stack.control.call(
            "POST",
            "/calls",
            {"ownerExtensionId": user, "direction": "Inbound", "durationSec": 61},
        )
        await settle(stack.bot)
        assert len(await stack.control.cards(chat)) == 2
    assert not (tmp_path / "unused.sqlite3").exists()
    rows = await postgres_rows(
        postgres_url, "SELECT status, COUNT(*) AS n FROM inbox GROUP BY status ORDER BY status"
    )
    assert "pending" not in {r["status"] for r in rows}
    sent = await postgres_rows(
        postgres_url, "SELECT COUNT(*) AS n FROM outbox WHERE message LIKE '%AdaptiveCard%'"
    )
    assert sent[0]["n"] == 2


def name_replicas(*bots: Any) -> None:
    """Two bots in this one test process would share the default replica id (host and
    process id), so each is named apart, as separate processes are."""
    from bot.app import SERVICES

    for number, bot in enumerate(bots, start=1):
        bot.app[SERVICES].storage.replica_id = f"replica-{number}"


async def test_two_replicas_on_one_database_give_one_reply_and_one_digest(
    postgres_url: str, tmp_path: Path
) -> None:
    from bot.runner import start_bot
    from tests.e2e import bot_config, running_stack, settle

    on_postgres = {"bot": {"database": postgres_url}}
    async with running_stack(tmp_path / "unused.sqlite3", overrides=on_postgres) as stack:
        second = await start_bot(
            bot_config(
                stack.sandbox.url,
                tmp_path / "unused-too.sqlite3",
                verification_token=stack.config.verification_token,
                overrides=on_postgres,
            )
        )
        name_replicas(stack.bot, second)
        try:
            user = await stack.control.user("Alex Rivera")
            chat = await stack.control.chat([user, stack.bot_id])
            for text in ("optin", "help", "optout", "optin"):
                await stack.control.say(chat, user, text)
            for _ in range(2):
                await settle(stack.bot)
                await settle(second)
            await stack.control.call(
                "POST",
                "/calls",
                {"ownerExtensionId": user, "direction": "Outbound", "durationSec": 754},
            )
            for _ in range(2):
                await settle(stack.bot)
                await settle(second)
            replies = await stack.control.texts(chat, stack.bot_id)
            cards = await stack.control.cards(chat)
        finally:
            await second.stop()
    # Each message answered once and in order (both replicas heard every message: the
    # inbox kept one row per notification), and the last word was optin: one digest.
    assert len(replies) == 4, replies
    assert "no more digests" in replies[2].lower(), replies
    assert len(cards) == 1
    states = await postgres_rows(postgres_url, "SELECT DISTINCT status FROM inbox")
    assert {r["status"] for r in states} <= {"done", "ignored"}


async def test_a_card_posted_by_a_replica_that_lost_its_claim_is_found_not_posted_twice(
    postgres_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A replica creates a digest's card, then stalls (its lease runs out: it can no longer
    renew it) before it learns the card's id. Another replica takes the delivery over,
    finds the card by its marker and updates it; the stalled one, back, changes no row."""
    from bot.app import SERVICES
    from bot.cards import card_as_text
    from bot.runner import RunningBot, start_bot
    from tests.e2e import bot_config, running_stack, settle

    on_postgres = {"bot": {"database": postgres_url}}
    stalled: dict[str, object] = {}
    created: list[str] = []

    def stall_the_first_digest(bot: RunningBot) -> None:
        storage = bot.app[SERVICES].storage
        storage.claim_lease_s = 1.0
        install = next(iter(bot.app[SERVICES].installs.values()))
        real_create = install.api.create_card
        real_renew = storage.renew_claims

        async def create_card(chat_id: str, card: Any) -> str:
            if stalled or "Next steps" not in card_as_text(card):
                return str(await real_create(chat_id, card))
            stalled["by"] = storage
            created.append(await real_create(chat_id, card))
            await asyncio.sleep(8)  # past its lease and the others' 5 s poll
            return created[0]

        async def renew_claims(queue: str, ids: Any) -> list[int]:
            return [] if stalled.get("by") is storage else await real_renew(queue, ids)

        monkeypatch.setattr(install.api, "create_card", create_card)
        monkeypatch.setattr(storage, "renew_claims", renew_claims)

    async with running_stack(tmp_path / "unused.sqlite3", overrides=on_postgres) as stack:
        second = await start_bot(
            bot_config(
                stack.sandbox.url,
                tmp_path / "unused-too.sqlite3",
                verification_token=stack.config.verification_token,
                overrides=on_postgres,
            )
        )
        name_replicas(stack.bot, second)
        try:
            user = await stack.control.user("Kim Park")
            dm = await stack.control.chat([user, stack.bot_id])
            await stack.control.say(dm, user, "optin")
            await settle(stack.bot)
            await settle(second)
            stall_the_first_digest(stack.bot)
            stall_the_first_digest(second)
            await stack.control.call("POST", "/calls", {"ownerExtensionId": user})
            for _ in range(3):
                await settle(stack.bot)
                await settle(second)
            cards = await stack.control.cards(dm)
        finally:
            await second.stop()
    assert created and len(cards) == 1
    assert "Next steps" in card_as_text(cards[0]["card"])
    [row] = await postgres_rows(
        postgres_url, "SELECT status, claimed_by FROM outbox WHERE card_key IS NOT NULL"
    )
    stalled_replica = getattr(stalled["by"], "replica_id", None)
    assert row["status"] == "sent" and row["claimed_by"] not in (None, stalled_replica)
    assert "held by another replica" in caplog.text
