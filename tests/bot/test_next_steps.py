"""Next steps as stored items: account-scoped, state kept across later events of the call;
on both backends, and with two replicas pressing Done at once (issue 13)."""

from __future__ import annotations

import asyncio

from bot.store import StorageInterface
from tests.stores import StoreFactory


async def _call(storage: StorageInterface, key: str, account: str, owner: str) -> None:
    await storage.save_call(
        key,
        domain="pbx",
        source_record_id=key,
        source_session_id=None,
        owner_extension_id=owner,
        recording_start_time="2026-01-01T10:00:00Z",
        insights={"title": f"Call {key}"},
        participant_ids=[],
        account_id=account,
    )


async def test_items_of_another_account_are_never_listed_nor_closable(
    any_storage: StorageInterface,
) -> None:
    storage = any_storage
    await _call(storage, "pbx:a", "A", "101")
    await _call(storage, "pbx:b", "B", "101")
    await storage.save_next_steps("pbx:a", "A", [("101", "Send the quote", "Ann")])
    await storage.save_next_steps("pbx:b", "B", [("101", "Secret plan of B", "Bob")])
    everyone_of_a, total = await storage.open_next_steps("A", None, 10)
    assert [i.text for i in everyone_of_a] == ["Send the quote"] and total == 1
    [of_b] = (await storage.open_next_steps("B", "101", 10))[0]
    assert await storage.next_step(of_b.item_id, "A") is None
    assert not await storage.mark_next_step_done(of_b.item_id, "A", "101")
    assert [i.text for i in (await storage.open_next_steps("B", None, 10))[0]] == [
        "Secret plan of B"
    ]


async def test_a_later_event_keeps_done_items_done_and_drops_vanished_open_ones(
    any_storage: StorageInterface,
) -> None:
    storage = any_storage
    await _call(storage, "pbx:a", "A", "101")
    await storage.save_next_steps(
        "pbx:a", "A", [("101", "Send the quote", None), ("101", "Old idea", None)]
    )
    [quote, _] = (await storage.open_next_steps("A", "101", 10))[0]
    assert await storage.mark_next_step_done(quote.item_id, "A", "101")
    await storage.save_next_steps(
        "pbx:a", "A", [("101", "Send the quote", None), ("101", "Book the demo", None)]
    )
    open_items, _ = await storage.open_next_steps("A", "101", 10)
    assert [i.text for i in open_items] == ["Book the demo"]


async def test_done_pressed_at_once_on_two_replicas_has_one_winner(
    store_factory: StoreFactory,
) -> None:
    """Two people press Done on the same item, each answered by another replica (on
    SQLite, the one process): exactly one closes it, and it stays closed by that one."""
    first = await store_factory.open(replica_id="r1")
    second = (
        await store_factory.open(replica_id="r2") if store_factory.backend != "sqlite" else first
    )
    await _call(first, "pbx:a", "A", "101")
    steps = [("101", f"Step {n}", None) for n in range(20)]
    await first.save_next_steps("pbx:a", "A", steps)
    items, total = await second.open_next_steps("A", "101", 50)
    assert total == 20
    for item in items:
        outcomes = await asyncio.gather(
            first.mark_next_step_done(item.item_id, "A", "101"),
            second.mark_next_step_done(item.item_id, "A", "102"),
        )
        assert sorted(outcomes) == [False, True]
        closed = await first.next_step(item.item_id, "A")
        assert closed is not None and closed.state == "done"
    assert await second.open_next_steps("A", None, 50) == ([], 0)


async def test_todo_lists_newest_calls_first_with_their_titles(
    any_storage: StorageInterface,
) -> None:
    storage = any_storage
    for key, started, title in (
        ("pbx:old", "2026-01-01T10:00:00Z", "Old call"),
        ("pbx:new", "2026-02-01T10:00:00Z", "New call"),
    ):
        await storage.save_call(
            key,
            domain="pbx",
            source_record_id=key,
            source_session_id=None,
            owner_extension_id="101",
            recording_start_time=started,
            insights={"title": title},
            account_id="A",
        )
        await storage.save_next_steps(
            key, "A", [("101", f"First of {title}", "Ann"), ("102", f"Second of {title}", None)]
        )
    items, total = await storage.open_next_steps("A", None, 3)
    assert total == 4
    assert [(i.text, i.call_title, i.owner_name) for i in items] == [
        ("First of New call", "New call", "Ann"),
        ("Second of New call", "New call", None),
        ("First of Old call", "Old call", "Ann"),
    ]
    mine, my_total = await storage.open_next_steps("A", "102", 10)
    assert my_total == 2 and [i.call_start for i in mine] == [
        "2026-02-01T10:00:00Z",
        "2026-01-01T10:00:00Z",
    ]
