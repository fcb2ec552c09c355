from __future__ import annotations

import asyncio
import io
import json
import logging
from datetime import datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.logs import RedactSecrets, configure_logging, log_context, redact
from bot.rc import RingCentralClient, RingCentralNotFound, StaticToken
from tests.e2e import Stack, settle


def test_known_secrets_and_token_shapes_are_masked() -> None:
    text = (
        "login failed: Authorization: Bearer abc.DEF-123 body access_token=xyz789&x=1 "
        "secret my-client-secret"
    )
    cleaned = redact(text, ["my-client-secret"])
    assert "abc.DEF-123" not in cleaned
    assert "xyz789" not in cleaned
    assert "my-client-secret" not in cleaned
    assert "login failed" in cleaned


def test_log_records_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.redaction")
    logger.addFilter(RedactSecrets(["super-secret-jwt"]))
    with caplog.at_level(logging.INFO, logger="test.redaction"):
        logger.info("token %s and %s", "super-secret-jwt", "Bearer AAAA1111")
    assert "super-secret-jwt" not in caplog.text
    assert "AAAA1111" not in caplog.text


async def test_json_log_lines_parse_and_say_which_notification_chat_and_call(
    stack: Stack,
) -> None:
    """`--log-format json`: every line one object, with the ids of what it is about, and
    the secrets of the run still masked."""
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    secrets = [
        stack.config.verification_token,
        stack.config.ringcentral.client_secret,
        stack.config.ringcentral.jwt,
        stack.config.shared_secret,
    ]
    configure_logging("DEBUG", secrets, stream=stream, log_format="json")
    try:
        user = await stack.control.user("Kim Park")
        dm = await stack.control.chat([user, stack.bot_id])
        await stack.control.say(dm, user, "optin")
        await settle(stack.bot)
        call = await stack.control.call("POST", "/calls", {"ownerExtensionId": user})
        await settle(stack.bot)
        # A forged notification carrying a secret in its body is refused and logged.
        async with aiohttp.ClientSession() as session:
            await session.post(
                f"{stack.bot.url}/webhooks/ringcentral",
                data=f'{{"token": "{stack.config.ringcentral.jwt}"}}',
                headers={"Verification-Token": "wrong"},
            )
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines
    for line in lines:
        assert {"time", "level", "logger", "message"} <= line.keys()
        assert datetime.fromisoformat(line["time"]).tzinfo is not None
    # the worker's lines about the optin message, the outbox's about the answer
    assert any(line.get("chat") == dm and line.get("notification") for line in lines)
    assert any(line.get("chat") == dm and "notification" not in line for line in lines)
    call_key = f"pbx:{call['sourceRecordId']}"
    assert any(line.get("call") == call_key for line in lines)
    assert any(
        line["level"] == "WARNING" and "Verification-Token" in line["message"] for line in lines
    )
    text = stream.getvalue()
    for secret in secrets:
        assert secret not in text


def test_text_lines_name_what_they_are_about_escaped() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    configure_logging("INFO", ["hunter2-secret"], stream=stream)
    try:
        with log_context(notification="n-1", chat="c\nforged line"):
            logging.getLogger("test.about").info("token hunter2-secret")
        logging.getLogger("test.about").info("no context")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    first, second = stream.getvalue().splitlines()
    assert first.endswith("token *** [notification='n-1' chat='c\\nforged line']")
    assert second.endswith("test.about: no context")


def test_an_unknown_log_format_is_refused() -> None:
    with pytest.raises(ValueError, match="json"):
        configure_logging("INFO", log_format="xml")


async def test_lines_after_a_refused_request_carry_ringcentral_request_id(
    aiohttp_client: Any,
) -> None:
    """RingCentral support asks for the RCRequestId of a failed request: the lines that
    follow the failure in the same task name it."""

    async def refuse(request: web.Request) -> web.Response:
        return web.json_response(
            {"errorCode": "CMN-102", "message": "Resource not found"},
            status=404,
            headers={"RCRequestId": "5f2a6f60-aaaa-11ef-9d1b-005056a0c0c2"},
        )

    app = web.Application()
    app.router.add_get("/restapi/v1.0/account/~/extension/~", refuse)
    server = await aiohttp_client(app)
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    configure_logging("INFO", ["static-token-value"], stream=stream, log_format="json")

    async def task() -> None:
        api = RingCentralClient(
            server.session, str(server.make_url("")), StaticToken("static-token-value")
        )
        with pytest.raises(RingCentralNotFound):
            await api.get_own_extension()
        logging.getLogger("test.after").warning("reading the extension failed")

    try:
        await asyncio.create_task(task())
        logging.getLogger("test.after").info("another task's line")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    [failed] = [line for line in lines if line["message"] == "reading the extension failed"]
    [other] = [line for line in lines if line["message"] == "another task's line"]
    assert failed["request"] == "5f2a6f60-aaaa-11ef-9d1b-005056a0c0c2"
    assert "request" not in other
    assert "static-token-value" not in stream.getvalue()
