"""Next steps as stored items: account-scoped, state kept across later events of the call."""

from __future__ import annotations

from pathlib import Path

from bot.storage import Storage


async def _call(storage: Storage, key: str, account: str, owner: str) -> None:
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


async def test_items_of_another_account_are_never_listed_nor_closable(tmp_path: Path) -> None:
    storage = await Storage.open(tmp_path / "bot.sqlite3")
    try:
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
    finally:
        await storage.close()


async def test_a_later_event_keeps_done_items_done_and_drops_vanished_open_ones(
    tmp_path: Path,
) -> None:
    storage = await Storage.open(tmp_path / "bot.sqlite3")
    try:
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
    finally:
        await storage.close()
