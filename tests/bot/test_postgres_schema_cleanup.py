"""The PostgreSQL schema keeps only what the bot uses (issue 13): `call_search.words` (with
its GIN index) and the index `call_participants_newest` were superseded by later migrations
(`terms`, `call_participants_newest_last`) yet still written on every call stored. A
database that had them loses them on upgrade, and `find` and `last` answer as before."""

from __future__ import annotations

import pytest

from bot.search import match_expression
from bot.store import StorageInterface
from bot.store.postgres import base as postgres_base
from bot.store.postgres.migrations import DROP_SUPERSEDED, POSTGRES_MIGRATIONS
from bot.store.postgres.storage import PostgresStorage
from bot.store.records import SearchLine
from tests.stores import postgres_rows

BEFORE_CLEANUP = POSTGRES_MIGRATIONS.index(DROP_SUPERSEDED)
"""How many migrations the previous release applied: the column and index still there."""


async def _store_calls(storage: StorageInterface) -> None:
    calls = [
        ("pbx:1", "2026-11-01T10:00:00Z", ["We priced the café renewal for Acme.", "See you"]),
        ("pbx:2", "2026-11-02T10:00:00Z", ["The pricing of the renewal is agreed."]),
        ("pbx:3", None, ["Nothing about money here."]),
    ]
    for key, started, texts in calls:
        await storage.save_call(
            key,
            domain="pbx",
            source_record_id=key,
            source_session_id=None,
            owner_extension_id="101",
            recording_start_time=started,
            insights={"title": key},
            participant_ids=["102"],
            account_id="A",
        )
        lines = [
            SearchLine("transcript", n, 5.0 * n, "Speaker 1", text) for n, text in enumerate(texts)
        ]
        await storage.index_call(key, "A", lines)


async def _answers(storage: StorageInterface) -> dict[str, list[str]]:
    """What a person sees from `find` (a few searches) and `last`."""
    answers: dict[str, list[str]] = {}
    for words in ("price renewal", "the", "cafe", "acme", "money"):
        match = match_expression(words)
        assert match is not None
        hits = await storage.search_calls("A", match, participant=None)
        answers[f"find {words}"] = [f"{hit.call_key}: {hit.line.text}" for hit in hits]
    for person in ("101", "102"):
        answers[f"last {person}"] = [key for key, _ in await storage.calls_of("A", person, 5)]
    return answers


async def _schema(url: str) -> tuple[set[str], set[str]]:
    columns = await postgres_rows(
        url,
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'call_search'",
    )
    indexes = await postgres_rows(
        url,
        "SELECT indexname FROM pg_indexes WHERE tablename IN ('call_search', 'call_participants')",
    )
    return {r["column_name"] for r in columns}, {r["indexname"] for r in indexes}


async def test_an_upgraded_database_drops_what_was_superseded_and_answers_as_before(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The database as the previous release left it, with calls stored.
    monkeypatch.setattr(postgres_base, "POSTGRES_MIGRATIONS", POSTGRES_MIGRATIONS[:BEFORE_CLEANUP])
    old = await PostgresStorage.open(postgres_url)
    try:
        await _store_calls(old)
        before = await _answers(old)
    finally:
        await old.close()
    columns, indexes = await _schema(postgres_url)
    assert "words" in columns and "call_participants_newest" in indexes

    monkeypatch.setattr(postgres_base, "POSTGRES_MIGRATIONS", POSTGRES_MIGRATIONS)
    upgraded = await PostgresStorage.open(postgres_url)
    try:
        assert await upgraded.schema_version() == len(POSTGRES_MIGRATIONS)
        columns, indexes = await _schema(postgres_url)
        assert "words" not in columns and "terms" in columns
        assert "call_search_words" not in indexes and "call_participants_newest" not in indexes
        assert {"call_search_terms", "call_participants_newest_last"} <= indexes

        after = await _answers(upgraded)
        assert after == before
        assert sorted(after["find price renewal"]) == [
            "pbx:1: We priced the café renewal for Acme.",
            "pbx:2: The pricing of the renewal is agreed.",
        ]
        assert after["last 102"] == ["pbx:2", "pbx:1", "pbx:3"]

        # And what is stored from now on is found the same way.
        await upgraded.save_call(
            "pbx:4",
            domain="pbx",
            source_record_id="pbx:4",
            source_session_id=None,
            owner_extension_id="101",
            recording_start_time="2026-11-03T10:00:00Z",
            insights={"title": "pbx:4"},
            participant_ids=["102"],
            account_id="A",
        )
        await upgraded.index_call(
            "pbx:4", "A", [SearchLine("summary", 0, None, None, "Renewal prices went up.")]
        )
        match = match_expression("price renewal")
        assert match is not None
        hits = await upgraded.search_calls("A", match, participant="102")
        assert "pbx:4" in {hit.call_key for hit in hits}
        assert [key for key, _ in await upgraded.calls_of("A", "102", 1)] == ["pbx:4"]
    finally:
        await upgraded.close()


async def test_a_new_database_never_has_the_superseded_column_or_index(
    postgres_url: str,
) -> None:
    storage = await PostgresStorage.open(postgres_url)
    await storage.close()
    columns, indexes = await _schema(postgres_url)
    assert "words" not in columns
    assert "call_search_words" not in indexes and "call_participants_newest" not in indexes
