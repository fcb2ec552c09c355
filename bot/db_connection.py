"""The workers' SQLite connection: every statement runs to its end in one trip to the
connection's thread.

aiosqlite's `execute` steps a statement once and leaves the rest (fetchone, fetchall,
close) to later trips; meanwhile other tasks' statements run on the same connection. A
SELECT left half-read keeps a read snapshot open, and since the inbox has a writer of its
own (bot/inbox_writer.py), a write on this connection during that time would find the
snapshot stale and fail at once with "database is locked" (SQLITE_BUSY_SNAPSHOT, which
no busy timeout waits out). Reading every row in the same trip closes the statement
before anyone else's runs, and saves two trips per query.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

import aiosqlite
from aiosqlite.context import contextmanager


class OneTripCursor(aiosqlite.Cursor):
    """A cursor whose rows were all read when its statement ran."""

    def __init__(self, conn: aiosqlite.Connection, cursor: sqlite3.Cursor, rows: list[Any]) -> None:
        super().__init__(conn, cursor)
        self._rows = rows
        self._next = 0

    async def fetchone(self) -> Any:
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        count = self.arraysize if size is None else size
        rows = self._rows[self._next : self._next + count]
        self._next += len(rows)
        return rows

    async def fetchall(self) -> list[Any]:
        rows = self._rows[self._next :]
        self._next = len(self._rows)
        return rows

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._remaining()

    async def _remaining(self) -> AsyncIterator[Any]:
        while self._next < len(self._rows):
            self._next += 1
            yield self._rows[self._next - 1]

    async def close(self) -> None:
        """Nothing to do: the statement ended when it ran."""


class OneTripConnection(aiosqlite.Connection):
    @contextmanager
    async def execute(self, sql: str, parameters: Iterable[Any] | None = None) -> aiosqlite.Cursor:
        bound: Any = [] if parameters is None else parameters
        # A named function and plain arguments: aiosqlite's DEBUG line (only with
        # --log-content) shows the statement and its parameters, as for any query.
        cursor, rows = await self._execute(_run_to_end, self._conn, sql, bound)  # type: ignore[no-untyped-call]
        return OneTripCursor(self, cursor, rows)


def _run_to_end(
    connection: sqlite3.Connection, sql: str, parameters: Any
) -> tuple[sqlite3.Cursor, list[Any]]:
    cursor = connection.execute(sql, parameters)
    return cursor, cursor.fetchall()


def connect(path: Path | str, **kwargs: Any) -> OneTripConnection:
    """Like `aiosqlite.connect`; await the result to open the connection."""
    target = str(path)
    connector: Callable[[], sqlite3.Connection] = lambda: sqlite3.connect(target, **kwargs)  # noqa: E731
    return OneTripConnection(connector, iter_chunk_size=64)
