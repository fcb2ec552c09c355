"""Rows written and read beside the bot's storage, on either backend, the way an operator
or an auditor would: straight SQL on a connection of its own.

Storage tests use it to lay out rows of table families other than the one under test (so a
family's test does not depend on another family's methods) and to look at what was stored.
Statements are written once with `?` placeholders; on PostgreSQL they become `$1, $2, …`.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from tests.stores import StoreFactory

# PostgreSQL's inbox and outbox rows carry the line they are claimed in (SQLite has no
# such column); a row laid out here gets its own line unless the test names one.
_ORDER_KEY_FROM = {"inbox": "uuid", "outbox": "dedupe_key"}


def dollar_placeholders(sql: str) -> str:
    """`?` placeholders numbered the way PostgreSQL wants them."""
    numbers = iter(range(1, 10_000))
    return re.sub(r"\?", lambda _match: f"${next(numbers)}", sql)


async def run_sql(factory: StoreFactory, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Run one statement and commit; its rows (if any) as tuples."""
    return await run_many(factory, sql, [args])


async def run_many(
    factory: StoreFactory, sql: str, rows: Iterable[Sequence[Any]]
) -> list[tuple[Any, ...]]:
    """Run one statement once per row of arguments, in one transaction; the rows the last
    run returned."""
    if factory.backend == "postgres":
        import asyncpg

        connection = await asyncpg.connect(factory.database)
        try:
            found: list[tuple[Any, ...]] = []
            async with connection.transaction():
                for args in rows:
                    found = [
                        tuple(r) for r in await connection.fetch(dollar_placeholders(sql), *args)
                    ]
            return found
        finally:
            await connection.close()
    db = sqlite3.connect(factory.database, timeout=10)
    try:
        found = []
        with db:
            for args in rows:
                found = [tuple(r) for r in db.execute(sql, tuple(args)).fetchall()]
        return found
    finally:
        db.close()


async def insert(factory: StoreFactory, table: str, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows (all with the same columns) into `table`."""
    if not rows:
        return
    columns = list(rows[0])
    order_from = _ORDER_KEY_FROM.get(table)
    if factory.backend == "postgres" and order_from and "order_key" not in columns:
        rows = [{**row, "order_key": row[order_from]} for row in rows]
        columns.append("order_key")
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608 (test code, fixed names)
        f"VALUES ({', '.join('?' for _ in columns)})"
    )
    await run_many(factory, sql, [[row[c] for c in columns] for row in rows])
