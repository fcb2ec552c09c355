"""Shared test plumbing: where the real RingCentral fixtures live, and a guard that keeps
every test off the network (loopback only)."""

from __future__ import annotations

import ipaddress
import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("RINGSENSE_SHARED_DIR", PROJECT_ROOT.parent / "shared"))
FIXTURES_DIR = SHARED_DIR / "fixtures" / "ringcentral"
OPENAPI_SUBSET = FIXTURES_DIR / "openapi" / "rc-bot-subset-openapi.yml"
ADAPTIVE_CARD_SCHEMA = SHARED_DIR / "schemas" / "adaptive-cards" / "1.3.0" / "adaptive-card.json"


def load_fixture(name: str) -> Any:
    """A real RingCentral payload from ../shared/fixtures/ringcentral, parsed."""
    return json.loads((FIXTURES_DIR / name).read_text(encoding="utf-8"))


def _is_loopback(address: object) -> bool:
    if isinstance(address, tuple) and address:
        host = address[0]
    else:
        return True  # unix sockets and the like
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any test that tries to connect anywhere but loopback."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def guarded_connect(self: socket.socket, address: Any) -> Any:
        if not _is_loopback(address):
            raise RuntimeError(f"test tried to reach the network: {address!r}")
        return real_connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> Any:
        if not _is_loopback(address):
            raise RuntimeError(f"test tried to reach the network: {address!r}")
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)


@pytest.fixture
async def stack(tmp_path: Path) -> Any:
    """The sandbox and the bot, both on loopback, the bot subscribed and ready."""
    from tests.e2e import running_stack

    async with running_stack(tmp_path / "bot.sqlite3") as stack:
        yield stack
