"""Logging that never shows a secret, nor what people wrote.

Every record passes a filter that masks the configured secrets wherever they appear, plus
anything shaped like a bearer token or an `access_token=` query value, in case a library
(the `ringcentral` SDK puts request headers into its exception text) lets one slip.

Content stays out of the log at every level unless the operator asks for it with
`python -m bot run --log-content`: aiosqlite's DEBUG lines print each SQL statement with its
parameters (chat messages, call insights, cards), so that logger is held at INFO.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import TextIO

_TOKEN_SHAPES = (
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(r"(?i)(basic\s+)[A-Za-z0-9+/=]+"),
    re.compile(r"(?i)(access_token=)[^&\s\"']+"),
    re.compile(r"(?i)(\"?(?:access_token|refresh_token|assertion)\"?\s*[:=]\s*\"?)[^\"&\s,}]+"),
)
MASK = "***"

# Loggers whose DEBUG lines carry content (SQL parameters: messages, insights, cards).
CONTENT_LOGGERS = ("aiosqlite",)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    for shape in _TOKEN_SHAPES:
        text = shape.sub(lambda m: m.group(1) + MASK, text)
    return text


class RedactSecrets(logging.Filter):
    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        # Longest first, so a secret containing another is masked whole.
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        cleaned = redact(message, self._secrets)
        record.msg, record.args = cleaned, None
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self._secrets)
        return True


def configure_logging(
    level: str = "INFO",
    secrets: Iterable[str] = (),
    *,
    log_content: bool = False,
    stream: TextIO | None = None,
) -> None:
    """One handler on the root logger, masking secrets. Without `log_content`, loggers that
    would print SQL parameters or message text are kept at INFO even when `level` is DEBUG."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in CONTENT_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if log_content else logging.INFO)
