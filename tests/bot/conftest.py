"""The end-to-end tests here run on both storage backends: `stack` is the sandbox and the
bot on SQLite, then on PostgreSQL (tests/conftest.py, `e2e_database`). A test about SQLite
itself (its file, WAL, PRAGMAs, its transaction trace, the inbox writer thread) is marked
`sqlite_only` (tests/e2e.py) with the reason beside it."""

from __future__ import annotations

import pytest

from tests.e2e import Stack


@pytest.fixture
async def stack(stack_on_each_backend: Stack) -> Stack:
    return stack_on_each_backend
