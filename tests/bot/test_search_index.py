"""`find`'s index of a call's words is replaced in place: what replacing one call's lines
costs does not grow with the calls already indexed (before, the index's `call_key`, a
column FTS5 cannot look up, was found by reading every indexed line of every call)."""

from __future__ import annotations

from pathlib import Path

from bot.storage import SearchLine, Storage


def _lines(key: str, count: int) -> list[SearchLine]:
    title = [SearchLine("title", 0, None, None, f"Call {key}")]
    return title + [
        SearchLine("transcript", n, float(n), "Ann", f"line {n} of {key} about the renewal")
        for n in range(count)
    ]


async def _store(storage: Storage, key: str) -> None:
    await storage.save_call(
        key,
        domain="pbx",
        source_record_id=key,
        source_session_id=None,
        owner_extension_id="101",
        recording_start_time="2026-01-01T10:00:00Z",
        insights={"title": f"Call {key}"},
        account_id="1",
    )
    await storage.index_call(key, "1", _lines(key, 20))


async def _steps_to_reindex(storage: Storage, key: str) -> int:
    """SQLite virtual machine steps (in hundreds) spent replacing one call's lines."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    await storage._db.set_progress_handler(count, 100)
    try:
        await storage.index_call(key, "1", _lines(key, 20))
    finally:
        await storage._db.set_progress_handler(None, 100)
    return steps


async def test_replacing_a_calls_words_costs_the_same_with_many_calls_indexed(
    tmp_path: Path,
) -> None:
    storage = await Storage.open(tmp_path / "bot.sqlite3")
    try:
        for n in range(5):
            await _store(storage, f"pbx:few{n}")
        with_few = await _steps_to_reindex(storage, "pbx:few0")
        for n in range(300):
            await _store(storage, f"pbx:many{n}")
        with_many = await _steps_to_reindex(storage, "pbx:few0")
        assert with_many < with_few * 1.5 + 5, (with_few, with_many)

        # And the index still answers as before: each call's own lines, once.
        hits = await storage.search_calls("1", '"renewal"', participant=None, limit=10_000)
        assert len(hits) == 305 * 20
        assert sum(h.call_key == "pbx:few0" for h in hits) == 20
        [title] = await storage.search_calls("1", '"few0"', participant=None, kinds=["title"])
        assert title.line.kind == "title"
    finally:
        await storage.close()
