"""What replicas share of calls and settings (issue 13): two storages on one PostgreSQL
database doing the same thing at once, each thing done once. Each test also runs on SQLite
with its one storage doing both (the promise is the same with one process)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from bot.store import StorageInterface
from bot.store.records import DIGEST_PRIORITY, QueuedDelivery, StoredCall
from tests.stores import StoreFactory, postgres_rows


async def _two_replicas(factory: StoreFactory) -> tuple[StorageInterface, StorageInterface]:
    first = await factory.open(replica_id="r1")
    if factory.backend == "sqlite":
        return first, first
    return first, await factory.open(replica_id="r2")


def _call(key: str, participants: tuple[str, ...], summary: str = "About it.") -> StoredCall:
    return StoredCall(
        key,
        domain="pbx",
        source_record_id=key,
        source_session_id=None,
        owner_extension_id="101",
        recording_start_time="2026-11-30T10:00:00Z",
        insights={
            "title": key,
            "insights": {
                "Summary": [{"value": summary}],
                "Transcript": [{"speakerId": "1", "text": "Hello.", "start": 1.0}],
            },
        },
        participant_ids=participants,
        account_id="A",
    )


async def test_a_submit_delivered_to_two_replicas_is_handled_once(
    store_factory: StoreFactory,
) -> None:
    first, second = await _two_replicas(store_factory)
    uuids = [f"submit-{n}" for n in range(40)]
    answers = await asyncio.gather(
        *(replica.first_time_seen(uuid, "A") for uuid in uuids for replica in (first, second))
    )
    per_uuid = [answers[n : n + 2] for n in range(0, len(answers), 2)]
    assert all(sorted(pair) == [False, True] for pair in per_uuid), per_uuid
    assert not await first.first_time_seen("submit-0", "A")


async def test_missed_digests_are_offered_once_when_two_replicas_take_them(
    store_factory: StoreFactory,
) -> None:
    first, second = await _two_replicas(store_factory)
    for n in range(10):
        call = _call(f"pbx:{n}", ())
        await first.record_digest(call, ())
        await first.note_skipped_digest("A", "101", call.call_key)
    taken = await asyncio.gather(
        first.take_skipped_digests("A", "101"), second.take_skipped_digests("A", "101")
    )
    offered = [key for batch in taken for key, _ in batch]
    assert sorted(offered) == sorted(f"pbx:{n}" for n in range(10))
    assert await second.take_skipped_digests("A", "101") == []


async def test_one_call_written_by_two_replicas_at_once_is_stored_whole(
    store_factory: StoreFactory,
) -> None:
    """Two digests of one call (two insights arriving together, handled on two replicas):
    both commit, and the call is one of the two versions with its own participants."""
    first, second = await _two_replicas(store_factory)
    for round_ in range(15):
        key = f"pbx:{round_}"
        await asyncio.gather(
            first.record_digest(_call(key, ("102", "103"), "First version."), ()),
            second.record_digest(_call(key, ("104",), "Second version."), ()),
        )
        stored = await first.call_of_account(key, "A", with_transcript=True)
        assert stored is not None
        summary = stored["insights"]["Summary"][0]["value"]
        assert summary in ("First version.", "Second version.")
        kept, dropped = ("102", "104") if summary == "First version." else ("104", "102")
        assert key in [k for k, _ in await second.calls_of("A", kept, 50)]
        assert key not in [k for k, _ in await second.calls_of("A", dropped, 50)]
        assert [u["text"] for u in stored["insights"]["Transcript"]] == ["Hello."]


async def test_a_digest_recorded_by_two_replicas_queues_each_delivery_once(
    store_factory: StoreFactory,
) -> None:
    first, second = await _two_replicas(store_factory)
    deliveries = [
        QueuedDelivery(
            f"digest:pbx:1:{person}",
            {"kind": "direct", "extensionId": person},
            {"kind": "text", "text": f"Digest for {person}"},
            card_key="pbx:1",
            account_id="A",
            priority=DIGEST_PRIORITY,
        )
        for person in ("101", "102", "103")
    ] + [
        QueuedDelivery(
            "digest:pbx:1:chat-9",
            {"kind": "chat", "chatId": "chat-9"},
            {"kind": "text", "text": "Digest for the team"},
            account_id="A",
        )
    ]
    states = {"ringsense.last_event": "2026-11-30T10:00:00Z"}
    queued = await asyncio.gather(
        first.record_digest(_call("pbx:1", ("102", "103")), deliveries, states),
        second.record_digest(_call("pbx:1", ("102", "103")), deliveries, states),
    )
    assert sorted(queued) == [0, 4]
    assert await second.state("ringsense.last_event") == "2026-11-30T10:00:00Z"
    assert await first.call_insights("pbx:1") is not None
    expected = {
        "digest:pbx:1:101": "direct:101",
        "digest:pbx:1:102": "direct:102",
        "digest:pbx:1:103": "direct:103",
        "digest:pbx:1:chat-9": "chat:chat-9",
    }
    if store_factory.backend == "sqlite":
        due = await first.due_outbox(10)
        assert sorted(item.dedupe_key for item in due) == sorted(expected)
    else:
        # Each row waits in its destination's line (replies to one chat keep their order).
        rows = await postgres_rows(
            store_factory.database,
            "SELECT dedupe_key, order_key FROM outbox WHERE status = 'pending' ORDER BY id",
        )
        assert {r["dedupe_key"]: r["order_key"] for r in rows} == expected
        assert len(rows) == 4


async def test_posts_counted_on_two_replicas_all_count(store_factory: StoreFactory) -> None:
    first, second = await _two_replicas(store_factory)
    await asyncio.gather(
        *(replica.count_post("A", "2026-11-30") for _ in range(25) for replica in (first, second))
    )
    assert await first.posts_today("A", "2026-11-30") == 50
    assert await second.posts_today("A", "2026-12-01") == 0


async def test_named_values_by_prefix_take_the_prefix_literally(
    any_storage: StorageInterface,
) -> None:
    storage = any_storage
    for key in ("penalty:a_b", "penalty:axb", "penalty:a%", "other:a_b"):
        await storage.set_state(key, key.upper())
    await storage.set_state("penalty:a_b", "replaced")
    assert await storage.states_with_prefix("penalty:a_") == {"penalty:a_b": "replaced"}
    assert await storage.states_with_prefix("penalty:a%") == {"penalty:a%": "PENALTY:A%"}
    assert await storage.state("nothing") is None


async def test_settings_and_channels_round_trip(any_storage: StorageInterface) -> None:
    storage = any_storage
    settings = await storage.user_settings("301")
    assert not settings.opted_in and settings.channels == ()
    await storage.remember_direct_chat("301", "dm-1", "A")
    await storage.remember_direct_chat("301", "dm-2", "A")
    assert await storage.direct_chat("301") == "dm-2"
    assert await storage.direct_chat("302") is None
    changed = settings.with_channel("chat-1", "Deals").with_channel("chat-2", "Support")
    changed = replace(changed, account_id="A", opted_in=True, min_ai_score=0.5, rollup_time=None)
    await storage.save_settings(changed)
    other = replace(await storage.user_settings("302"), account_id="A", opted_in=True)
    await storage.save_settings(other.with_channel("chat-1", "Deals"))
    stored = await storage.user_settings("301")
    assert stored == changed
    assert [s.extension_id for s in await storage.rollup_candidates()] == ["302"]
    assert await storage.remove_channel_everywhere("chat-1") == 2
    assert [c.chat_id for c in (await storage.user_settings("301")).channels] == ["chat-2"]
    await storage.set_opted_in("301", False)
    assert not (await storage.user_settings("301")).opted_in
    await storage.set_last_rollup_day("A", "302", "2026-11-29")
    await storage.set_last_rollup_day("A", "302", "2026-11-30")
    assert await storage.last_rollup_day("A", "302") == "2026-11-30"
    assert await storage.last_rollup_day("B", "302") is None


async def test_feedback_is_one_verdict_per_person(any_storage: StorageInterface) -> None:
    storage = any_storage
    await storage.record_digest(_call("pbx:1", ()), ())
    await storage.save_feedback("pbx:1", "101", "helpful")
    await storage.save_feedback("pbx:1", "101", "not_helpful")
    await storage.save_feedback("pbx:1", "102", "helpful")
    assert await storage.feedback_for("pbx:1") == {"101": "not_helpful", "102": "helpful"}
    assert await storage.call_with_account("pbx:1") is not None
    assert await storage.call_with_account("pbx:2") is None


async def test_a_digest_reads_its_call_and_its_feedback_in_one_go(
    any_storage: StorageInterface,
) -> None:
    """`call_with_account_and_feedback` (one query) says what the two reads say."""
    storage = any_storage
    assert await storage.call_with_account_and_feedback("pbx:1") == (None, {})
    await storage.save_feedback("pbx:1", "101", "helpful")  # a press before the call is stored
    assert await storage.call_with_account_and_feedback("pbx:1") == (None, {"101": "helpful"})
    await storage.record_digest(_call("pbx:1", ()), ())
    await storage.record_digest(_call("pbx:2", ()), ())
    await storage.save_feedback("pbx:1", "102", "not_helpful")
    call, verdicts = await storage.call_with_account_and_feedback("pbx:1")
    assert call == await storage.call_with_account("pbx:1")
    assert call is not None and call[0] == "A" and call[1]["title"] == "pbx:1"
    assert (
        verdicts == await storage.feedback_for("pbx:1") == {"101": "helpful", "102": "not_helpful"}
    )
    assert await storage.call_with_account_and_feedback("pbx:2") == (
        await storage.call_with_account("pbx:2"),
        {},
    )


async def test_a_digest_with_its_next_steps_search_lines_and_inbox_row_in_one_go(
    postgres_url: str,
) -> None:
    """PostgreSQL's `record_digest` takes what SQLite's takes after issue 12's last step
    (h12-finish): next steps and `find`'s lines in the digest's transaction, transcript
    lines only with the transcript kept, and the inbox row marked done by its holder only."""
    from bot.store.postgres.storage import PostgresStorage
    from bot.store.records import SearchLine

    first = await PostgresStorage.open(postgres_url, replica_id="r1")
    second = await PostgresStorage.open(postgres_url, replica_id="r2")
    try:
        [row] = await postgres_rows(
            postgres_url,
            "INSERT INTO inbox (uuid, kind, payload, received_at, order_key, claimed_by, "
            "lease_until) VALUES ('n-1', 'ringsense.insights', '{}', 0, 'pbx:1', 'r1', 1e12) "
            "RETURNING id",
        )
        newer = replace(_call("pbx:1", ()), transcript_modified="2026-11-30T12:00:00Z")
        lines = [
            SearchLine("summary", 0, None, None, "About the harbour project."),
            SearchLine("transcript", 0, 1.0, "Ann", "The harbour opens in May."),
        ]
        # A replica whose claim lapsed leaves the row alone (and changes nothing else).
        await second.record_digest(newer, (), finished_inbox_id=row["id"])
        [still] = await postgres_rows(postgres_url, "SELECT status FROM inbox")
        assert still["status"] == "pending"
        await first.record_digest(
            newer,
            (),
            next_steps=[("101", "Book the harbour visit", "Ann")],
            search_lines=lines,
            finished_inbox_id=row["id"],
        )
        [done] = await postgres_rows(postgres_url, "SELECT status, claimed_by FROM inbox")
        assert (done["status"], done["claimed_by"]) == ("done", None)
        items, _ = await first.open_next_steps("A", "101", 10)
        assert [i.text for i in items] == ["Book the harbour visit"]
        match = '"harbour"'
        found = await second.search_calls("A", match, participant=None)
        assert sorted(h.line.text for h in found) == [
            "About the harbour project.",
            "The harbour opens in May.",
        ]
        # An older record arriving late: its summary is indexed, its transcript lines not.
        older = replace(_call("pbx:1", ()), transcript_modified="2026-11-30T11:00:00Z")
        await second.record_digest(
            older,
            (),
            search_lines=[
                SearchLine("summary", 0, None, None, "About the harbour, revised."),
                SearchLine("transcript", 0, 1.0, "Ann", "Old harbour draft."),
            ],
        )
        found = await first.search_calls("A", match, participant=None)
        assert sorted(h.line.text for h in found) == [
            "About the harbour, revised.",
            "The harbour opens in May.",
        ]
    finally:
        await first.close()
        await second.close()
