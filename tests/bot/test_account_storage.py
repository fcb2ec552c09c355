"""Installs, subscriptions, RingSense connections and their connect links, AI jobs and
RingCX segments as stored, on SQLite and on PostgreSQL alike (`store_factory` runs each test
on both); and what several replicas sharing one PostgreSQL database add: a connect link is
taken by one of them, a RingCX segment is handed to one of them."""

from __future__ import annotations

import asyncio
import time

from bot.crypto import TokenCipher, generate_key
from bot.store import StorageInterface
from bot.store.records import (
    AiJob,
    ConnectLink,
    RingSenseConnection,
    StoredInstall,
    StoredSubscription,
)
from tests.raw_sql import run_sql
from tests.stores import StoreFactory

INSTALL = StoredInstall("62288330099", "809640077", "bot-token-IN-PLAIN-SIGHT", None, "private")


def a_link(account_id: str = "acct-1", expires_in_s: float = 600.0) -> ConnectLink:
    return ConnectLink(
        account_id=account_id,
        admin_extension_id="admin-1",
        code_verifier_encrypted="encrypted-verifier",
        expires_at=time.time() + expires_in_s,
    )


def a_job(
    job_id: str, requester: str = "101", *, state: str = "pending", age_s: float = 0.0
) -> AiJob:
    now = time.time()
    return AiJob(
        job_id=job_id,
        requester_id=requester,
        account_id="acct-1",
        destination={"kind": "direct", "extensionId": requester},
        source_label=f"{job_id}.mp3",
        recording_id=None,
        entitled_ids=frozenset({requester, "102"}),
        webhook_secret_hash=f"hash-of-{job_id}",
        state=state,
        requested_at=now - age_s,
        expires_at=now + 3600,
        speaker_names={requester: "Olga Owner"},
    )


# -- installs ---------------------------------------------------------------------------


async def test_saving_an_install_again_replaces_its_token_and_attributes_its_bot(
    store_factory: StoreFactory,
) -> None:
    """(Tokens encrypted at rest, and no token without a key: tests/bot/test_secrets_at_rest.py.)"""
    storage = await store_factory.open(TokenCipher([generate_key()]))
    await storage.save_install(INSTALL)
    assert await storage.install_account(INSTALL.bot_extension_id) == INSTALL.account_id
    assert await storage.install_account("not-installed") is None
    renewed = StoredInstall(
        INSTALL.bot_extension_id, INSTALL.account_id, "new-token", "7", "public"
    )
    await storage.save_install(renewed)
    assert await storage.stored_installs() == [renewed]
    if store_factory.backend == "postgres":
        # The replica that stored the install attributes its notifications at once.
        assert storage.account_of_owner(INSTALL.bot_extension_id) == INSTALL.account_id


async def test_a_token_stored_in_plain_text_is_encrypted_on_the_next_start(
    store_factory: StoreFactory,
) -> None:
    storage = await store_factory.open()
    await storage.close()
    await run_sql(
        store_factory,
        "INSERT INTO installs (bot_extension_id, account_id, access_token, source, "
        "installed_at, token_encrypted) VALUES (?, ?, ?, 'private', 0, 0)",
        INSTALL.bot_extension_id,
        INSTALL.account_id,
        INSTALL.access_token,
    )
    key = generate_key()
    started = await store_factory.open(TokenCipher([key]))
    assert await started.stored_installs() == [INSTALL]
    [(stored_token,)] = await run_sql(store_factory, "SELECT access_token FROM installs")
    assert INSTALL.access_token not in stored_token


# -- subscriptions ----------------------------------------------------------------------


async def test_subscriptions_are_kept_per_identity_renewed_and_forgotten(
    store_factory: StoreFactory,
) -> None:
    storage = await store_factory.open()
    storage.attribute_owner("9001", "acct-1")
    bots = StoredSubscription(
        "sub-1", "bot:9001", "https://bot.example/webhook", ("/a", "/b"), "fp-1", "2026-12-01"
    )
    service = StoredSubscription(
        "sub-2", "service", "https://bot.example/webhook", ("/c",), "fp-2", None
    )
    await storage.save_subscription(bots)
    await storage.save_subscription(service)
    assert await storage.subscriptions("bot:9001") == [bots]
    assert await storage.subscriptions("service") == [service]
    assert await storage.subscriptions("bot:404") == []
    # A renewal moves the expiry on; what the subscription is stays as created.
    renewed = StoredSubscription(
        "sub-1", "bot:9001", "https://elsewhere.example", ("/z",), "fp-9", "2026-12-08"
    )
    await storage.save_subscription(renewed)
    [kept] = await storage.subscriptions("bot:9001")
    assert kept == StoredSubscription(
        "sub-1", "bot:9001", "https://bot.example/webhook", ("/a", "/b"), "fp-1", "2026-12-08"
    )
    # A bot's subscription belongs to its account; the service user's to no account.
    assert sorted(
        await run_sql(store_factory, "SELECT id, account_id FROM subscriptions"),
        key=lambda r: str(r[0]),
    ) == [("sub-1", "acct-1"), ("sub-2", None)]
    await storage.forget_subscription("sub-1")
    assert await storage.subscriptions("bot:9001") == []
    assert await storage.subscriptions("service") == [service]


async def test_a_bot_subscription_saved_by_another_replica_belongs_to_the_install_account(
    store_factory: StoreFactory,
) -> None:
    """The replica renewing a bot's subscription may not have seen its install arrive:
    the subscription still belongs to the install's account, as stored."""
    key = generate_key()
    installer = await store_factory.open(TokenCipher([key]), replica_id="replica-a")
    await installer.save_install(INSTALL)
    if store_factory.backend == "sqlite":
        installer.attribute_owner(INSTALL.bot_extension_id, INSTALL.account_id)  # one process
        renewer = installer
    else:
        renewer = await store_factory.open(TokenCipher([key]), replica_id="replica-b")
        # A replica opened later reads the installs at start and hears of new ones; this
        # one has not heard yet (its 30 s re-read is due): the statement itself must file
        # the subscription under the install's account.
        renewer._owner_accounts.clear()  # type: ignore[attr-defined]
        assert renewer.account_of_owner(INSTALL.bot_extension_id) is None
    await renewer.save_subscription(
        StoredSubscription(
            "sub-b", f"bot:{INSTALL.bot_extension_id}", "https://x", ("/a",), "fp", None
        )
    )
    await renewer.save_subscription(
        StoredSubscription("sub-unknown", "bot:never-installed", "https://x", ("/a",), "fp", None)
    )
    assert sorted(
        await run_sql(store_factory, "SELECT id, account_id FROM subscriptions"),
        key=lambda r: str(r[0]),
    ) == [("sub-b", INSTALL.account_id), ("sub-unknown", None)]


# -- RingSense connections and connect links -------------------------------------------


async def test_a_ringsense_connection_keeps_its_newest_refresh_token_until_disconnected(
    store_factory: StoreFactory,
) -> None:
    storage = await store_factory.open()
    connection = RingSenseConnection("acct-1", "300", "refresh-1-encrypted", "admin-1", 1000.0)
    await storage.save_ringsense_connection(connection)
    await storage.save_ringsense_connection(
        RingSenseConnection("acct-2", "400", "refresh-2-encrypted", "admin-2", 2000.0)
    )
    await storage.save_subscription(
        StoredSubscription("sub-rs", "ringsense:acct-1", "https://x", ("/rs",), "fp", None)
    )
    await storage.add_connect_link("state-1", a_link("acct-1"))
    assert await storage.replace_ringsense_refresh_token("acct-1", "refresh-1b-encrypted")
    found = await storage.ringsense_connection("acct-1")
    assert found is not None and found.refresh_token_encrypted == "refresh-1b-encrypted"
    assert found.owner_extension_id == "300" and found.connected_by == "admin-1"
    assert sorted(c.account_id for c in await storage.ringsense_connections()) == [
        "acct-1",
        "acct-2",
    ]

    await storage.forget_ringsense_connection("acct-1")
    assert await storage.ringsense_connection("acct-1") is None
    # Disconnected while a refresh was on its way: the new token is not kept.
    assert not await storage.replace_ringsense_refresh_token("acct-1", "refresh-1c-encrypted")
    assert await storage.ringsense_connection("acct-1") is None
    assert await storage.subscriptions("ringsense:acct-1") == []
    assert await storage.open_connect_link("state-1") is None  # its links went with it
    assert [c.account_id for c in await storage.ringsense_connections()] == ["acct-2"]


async def test_a_connect_link_opens_once_and_serves_one_callback(
    store_factory: StoreFactory,
) -> None:
    storage = await store_factory.open()
    link = a_link()
    await storage.add_connect_link("state-1", link)
    # A callback for a link nobody opened is refused, and the link is spent.
    await storage.add_connect_link("state-unopened", a_link())
    assert await storage.take_connect_link("state-unopened") is None
    assert await storage.open_connect_link("state-unopened") is None

    assert await storage.open_connect_link("state-1") == link
    assert await storage.open_connect_link("state-1") is None  # opened once only
    assert await storage.take_connect_link("state-1") == link
    assert await storage.take_connect_link("state-1") is None  # serves one callback
    assert await storage.take_connect_link("never-made") is None


async def test_an_expired_connect_link_neither_opens_nor_serves_and_is_cleared(
    store_factory: StoreFactory,
) -> None:
    storage = await store_factory.open()
    await storage.add_connect_link("state-old", a_link(expires_in_s=-1.0))
    assert await storage.open_connect_link("state-old") is None
    await storage.add_connect_link("state-opened-late", a_link(expires_in_s=600.0))
    assert await storage.open_connect_link("state-opened-late") is not None
    await run_sql(
        store_factory,
        "UPDATE ringsense_connect_links SET expires_at = ? WHERE state_hash = ?",
        time.time() - 1.0,
        "state-opened-late",
    )
    assert await storage.take_connect_link("state-opened-late") is None
    # Adding a link clears the ones that expired.
    await storage.add_connect_link("state-new", a_link())
    assert await run_sql(store_factory, "SELECT state_hash FROM ringsense_connect_links") == [
        ("state-new",)
    ]


async def test_a_connect_link_taken_by_two_replicas_at_once_has_one_winner(
    store_factory: StoreFactory,
) -> None:
    first = await store_factory.open(replica_id="replica-a")
    second = await store_factory.open(replica_id="replica-b")
    states = [f"state-{n}" for n in range(20)]
    for state in states:
        await first.add_connect_link(state, a_link())
    opened = await asyncio.gather(
        *(replica.open_connect_link(state) for state in states for replica in (first, second))
    )
    assert sum(link is not None for link in opened) == len(states)  # each opened once
    taken = await asyncio.gather(
        *(replica.take_connect_link(state) for state in states for replica in (first, second))
    )
    for n in range(len(states)):
        winners = [link for link in taken[2 * n : 2 * n + 2] if link is not None]
        assert len(winners) == 1, states[n]
    assert await run_sql(store_factory, "SELECT COUNT(*) FROM ringsense_connect_links") == [(0,)]


# -- AI jobs ------------------------------------------------------------------------------


async def test_ai_jobs_are_stored_found_and_moved_on(store_factory: StoreFactory) -> None:
    storage = await store_factory.open()
    older = a_job("job-1", age_s=120.0)
    newer = a_job("job-2", age_s=10.0)
    someone_elses = a_job("job-3", requester="201", age_s=60.0)
    for job in (older, newer, someone_elses):
        await storage.save_ai_job(job)
    assert await storage.ai_job("job-1") == older
    assert await storage.ai_job("job-404") is None
    assert await storage.ai_job_with_webhook_secret("hash-of-job-2") == newer
    assert await storage.ai_job_with_webhook_secret("hash-of-nothing") is None
    assert [j.job_id for j in await storage.ai_jobs_of("101", 10)] == ["job-2", "job-1"]
    assert [j.job_id for j in await storage.ai_jobs_of("101", 1)] == ["job-2"]
    due = await storage.pending_ai_jobs(time.time() - 30.0)
    assert [j.job_id for j in due] == ["job-1", "job-3"]

    done = AiJob(
        **{
            **older.__dict__,
            "state": "done",
            "finished_at": time.time(),
            "result": {"utterances": [{"text": "We sign on Friday."}]},
            "requester_id": "someone-else",  # what a job is for never changes
        }
    )
    await storage.save_ai_job(done)
    stored = await storage.ai_job("job-1")
    assert stored is not None
    assert stored.state == "done" and stored.result == done.result
    assert stored.requester_id == "101" and stored.entitled_ids == frozenset({"101", "102"})
    assert stored.speaker_names == {"101": "Olga Owner"}
    assert [j.job_id for j in await storage.pending_ai_jobs(time.time())] == ["job-3", "job-2"]


# -- RingCX segments ----------------------------------------------------------------------


async def test_ringcx_segments_are_remembered_once_with_their_window(
    store_factory: StoreFactory,
) -> None:
    storage = await store_factory.open()
    storage.default_account_id = "acct-default"
    window = [
        ("dialog-1", "seg-1", {"agentId": "a1", "n": 1}, "301", None),
        ("dialog-1", "seg-2", {"agentId": "a2", "n": 2}, None, "group-7"),
    ]
    assert await storage.add_ringcx_segments(window, "ringcx:position", "T1") == 2
    # The next window overlaps: a segment seen already is not taken twice.
    overlap = [window[1], ("dialog-2", "seg-1", {"n": 3}, "302", None)]
    assert await storage.add_ringcx_segments(overlap, "ringcx:position", "T2", "acct-9") == 1
    assert await run_sql(
        store_factory, "SELECT value FROM bot_state WHERE key = ?", "ringcx:position"
    ) == [("T2",)]
    assert await storage.ringcx_segment("dialog-1", "seg-2") == {"agentId": "a2", "n": 2}
    assert await storage.ringcx_segment("dialog-1", "seg-404") is None
    assert sorted(
        await run_sql(
            store_factory, "SELECT dialog_id, segment_id, account_id FROM ringcx_segments"
        )
    ) == [
        ("dialog-1", "seg-1", "acct-default"),
        ("dialog-1", "seg-2", "acct-default"),
        ("dialog-2", "seg-1", "acct-9"),
    ]
    assert await storage.ringcx_counts() == {"pending": 3}


async def test_ringcx_segments_fall_due_oldest_first_and_leave_when_finished(
    store_factory: StoreFactory,
) -> None:
    storage = await store_factory.open()
    for n in range(3):
        await storage.add_ringcx_segments(
            [(f"dialog-{n}", "seg", {"n": n}, None, None)], "ringcx:position", f"T{n}", "acct-1"
        )
        await run_sql(
            store_factory,
            "UPDATE ringcx_segments SET found_at = ? WHERE dialog_id = ?",
            1000.0 + n,
            f"dialog-{n}",
        )
    due = await storage.due_ringcx_segments(2)
    assert due == [("dialog-0", "seg", {"n": 0}, 0), ("dialog-1", "seg", {"n": 1}, 0)]

    await storage.retry_ringcx_segment("dialog-0", "seg", 3600.0, "not ready yet")
    await storage.finish_ringcx_segment("dialog-1", "seg", "done")
    await storage.finish_ringcx_segment("dialog-2", "seg", "failed", "gone")
    assert await storage.due_ringcx_segments(10) == []
    assert await storage.ringcx_counts() == {"pending": 1, "done": 1, "failed": 1}
    assert sorted(
        await run_sql(store_factory, "SELECT dialog_id, attempts, last_error FROM ringcx_segments")
    ) == [("dialog-0", 1, "not ready yet"), ("dialog-1", 1, None), ("dialog-2", 1, "gone")]
    # Its retry time come, the segment is due again with its attempts counted.
    await run_sql(
        store_factory,
        "UPDATE ringcx_segments SET next_attempt_at = 0 WHERE dialog_id = 'dialog-0'",
    )
    assert await storage.due_ringcx_segments(10) == [("dialog-0", "seg", {"n": 0}, 1)]


async def test_two_replicas_polling_ringcx_at_once_take_each_segment_once(
    postgres_url: str,
) -> None:
    """Only on PostgreSQL: two pollers (a lease's holders overlapping) share one database.
    A segment given to one is not given to the other until its claim runs out."""
    factory = StoreFactory("postgres", postgres_url)
    try:
        first = await factory.open(replica_id="replica-a")
        second = await factory.open(replica_id="replica-b")
        segments = [(f"dialog-{n}", "seg", {"n": n}, None, None) for n in range(40)]
        assert await first.add_ringcx_segments(segments, "ringcx:position", "T", "acct-1") == 40
        handed = await asyncio.gather(
            *(replica.due_ringcx_segments(7) for _ in range(4) for replica in (first, second))
        )
        taken = [segment[0] for batch in handed for segment in batch]
        assert len(taken) == len(set(taken)) == 40
        assert await first.due_ringcx_segments(10) == []
        # A poller that died holding segments: they fall due again once the claim is over.
        await run_sql(factory, "UPDATE ringcx_segments SET next_attempt_at = 0")
        assert len(await second.due_ringcx_segments(100)) == 40
    finally:
        await factory.close_all()


async def test_replicas_refresh_one_accounts_ringsense_token_in_turn(postgres_url: str) -> None:
    """While one replica spends an account's refresh token, another replica's refresh of
    that account waits for its turn; a refresh of another account does not wait."""
    factory = StoreFactory("postgres", postgres_url)
    order: list[str] = []
    holding = asyncio.Event()
    release = asyncio.Event()
    try:
        first = await factory.open(replica_id="replica-a")
        second = await factory.open(replica_id="replica-b")

        async def spend(storage: StorageInterface, account_id: str, name: str) -> None:
            async with storage.ringsense_refresh_turn(account_id):
                order.append(f"{name} in")
                if name == "a":
                    holding.set()
                    await release.wait()
                order.append(f"{name} out")

        holder = asyncio.create_task(spend(first, "acct-1", "a"))
        await holding.wait()
        waiter = asyncio.create_task(spend(second, "acct-1", "b"))
        await asyncio.wait_for(spend(second, "acct-2", "c"), 5)
        await asyncio.sleep(0.3)
        assert order == ["a in", "c in", "c out"]  # acct-1's turn is still replica a's
        release.set()
        await asyncio.wait_for(asyncio.gather(holder, waiter), 5)
        assert order[3:] == ["a out", "b in", "b out"]
    finally:
        release.set()  # a failed assertion must not leave replica a's turn open forever
        await factory.close_all()
