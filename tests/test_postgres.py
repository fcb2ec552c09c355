"""The `postgres_url` fixture: a real PostgreSQL server, and a database of each test's own."""

from __future__ import annotations

import asyncpg
import pytest


@pytest.mark.parametrize("turn", [1, 2])
async def test_each_test_gets_a_fresh_empty_database(postgres_url: str, turn: int) -> None:
    connection = await asyncpg.connect(postgres_url)
    try:
        assert (await connection.fetchval("SELECT current_database()")).startswith("bot_test_")
        tables = await connection.fetchval(
            "SELECT COUNT(*) FROM pg_tables WHERE schemaname = 'public'"
        )
        assert tables == 0  # the other turn's table is not here
        await connection.execute("CREATE TABLE left_behind (turn INTEGER)")
        await connection.execute("INSERT INTO left_behind VALUES ($1)", turn)
        assert await connection.fetchval("SELECT turn FROM left_behind") == turn
    finally:
        await connection.close()
