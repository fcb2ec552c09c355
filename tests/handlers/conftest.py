"""Every end-to-end test of the handlers runs on both storage backends: `stack` here is
the sandbox and the bot on SQLite, then on PostgreSQL (tests/conftest.py, `e2e_database`)."""

from __future__ import annotations

import pytest

from tests.e2e import Stack


@pytest.fixture
async def stack(stack_on_each_backend: Stack) -> Stack:
    return stack_on_each_backend
