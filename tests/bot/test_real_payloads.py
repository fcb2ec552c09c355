"""The real RingCentral payloads from ../shared/fixtures, delivered to the running bot."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import Any

import aiohttp
import pytest

from bot.app import SERVICES
from sandbox import defaults
from tests.conftest import FIXTURES_DIR, load_fixture
from tests.e2e import Stack, settle

NOTIFICATIONS = [
    "webhook-post-added.json",
    "webhook-post-changed.json",
    "webhook-post-removed.json",
    "webhook-chat-group-joined.json",
    "webhook-chat-group-left.json",
    "webhook-chat-group-renamed.json",
    "webhook-extension-info-update.json",
    "ringsense-event-pbx.json",
]


@pytest.mark.parametrize("fixture", NOTIFICATIONS)
async def test_each_real_notification_is_accepted_and_handled(stack: Stack, fixture: str) -> None:
    payload: dict[str, Any] = load_fixture(fixture)
    if not fixture.startswith("ringsense"):
        payload["ownerId"] = stack.bot_id  # as if it were addressed to our bot
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            stack.config.webhook_address,
            json=payload,
            headers={"Verification-Token": stack.config.verification_token},
        ) as response,
    ):
        assert response.status == 200
    await settle(stack.bot)
    counts = await stack.bot.app[SERVICES].storage.inbox_counts()
    assert counts.get("pending", 0) == 0
    assert counts.get("failed", 0) == 0


def docs_submit_example() -> dict[str, Any]:
    """The docs' button_submit example is a JavaScript literal; read it as JSON."""
    text = (FIXTURES_DIR / "interactive-message-submit.docs-example.js.txt").read_text()
    text = text.replace("'", '"')
    text = re.sub(r",(\s*[}\]])", r"\1", text)
    result: dict[str, Any] = json.loads(text)
    return result


async def test_the_docs_submit_example_is_verified_and_answered(stack: Stack) -> None:
    body = json.dumps(docs_submit_example(), separators=(",", ":")).encode()
    signature = hmac.new(defaults.SHARED_SECRET.encode(), body, hashlib.sha1).hexdigest()
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{stack.bot.url}/webhooks/interactive",
            data=body,
            headers={"Content-Type": "application/json", "X-Glip-Signature": signature},
        ) as response:
            assert response.status == 200
        async with session.post(
            f"{stack.bot.url}/webhooks/interactive",
            data=body,
            headers={"Content-Type": "application/json", "X-Glip-Signature": "0" * 40},
        ) as response:
            assert response.status == 401
