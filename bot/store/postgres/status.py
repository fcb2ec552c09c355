"""What asyncpg reports after a statement, read as the number SQLite's `rowcount` gives."""

from __future__ import annotations


def rows_affected(status: str) -> int:
    """Rows a statement changed, from its command tag (`DELETE 3`, `UPDATE 0`, `INSERT 0 1`).

    asyncpg's `execute` returns only the tag; its last word is the count for every
    statement that changes rows, and a tag without a count (`CREATE INDEX`) changed none.
    """
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0
