from __future__ import annotations

import logging

import pytest

from bot.logs import RedactSecrets, redact


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
