"""Logging that never shows a secret, nor what people wrote.

Every record passes a filter that masks the configured secrets wherever they appear, plus
anything shaped like a bearer token or an `access_token=` query value, in case a library
(the `ringcentral` SDK puts request headers into its exception text) lets one slip.

Content stays out of the log at every level unless the operator asks for it with
`python -m bot run --log-content`: aiosqlite's DEBUG lines print each SQL statement with its
parameters (chat messages, call insights, cards), so that logger is held at INFO.

Each line also says what it is about (the notification uuid, chat, call, RingCentral request
id), from context variables the edge and the workers set: a log aggregator can then follow
one notification from its arrival to its card. `--log-format json` writes one JSON object a
line (time, level, logger, message and those ids); plain text, with the ids in brackets,
stays the default.
"""

from __future__ import annotations

import contextvars
import logging
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TextIO

from pythonjsonlogger.json import JsonFormatter

from bot.quoting import for_log

_TOKEN_SHAPES = (
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(r"(?i)(basic\s+)[A-Za-z0-9+/=]+"),
    re.compile(r"(?i)(access_token=)[^&\s\"']+"),
    re.compile(r"(?i)(\"?(?:access_token|refresh_token|assertion)\"?\s*[:=]\s*\"?)[^\"&\s,}]+"),
)
MASK = "***"

# Loggers whose DEBUG lines carry content (SQL parameters: messages, insights, cards).
CONTENT_LOGGERS = ("aiosqlite", "bot.inbox_writer.content")


# What a line is about. Each asyncio task gets a copy of its parent's context, so ids set
# while one notification is handled never show up on another's lines.
CONTEXT_FIELDS = ("notification", "chat", "call", "request")
_about: contextvars.ContextVar[tuple[tuple[str, str], ...]] = contextvars.ContextVar(
    "log_about", default=()
)
LOG_FORMATS = ("text", "json")


def _merged(**ids: str | None) -> tuple[tuple[str, str], ...]:
    current = dict(_about.get())
    for name, value in ids.items():
        if name not in CONTEXT_FIELDS:
            raise ValueError(f"unknown log context field {name!r}")
        if value:
            current[name] = str(value)
    return tuple((name, current[name]) for name in CONTEXT_FIELDS if name in current)


@contextmanager
def log_context(**ids: str | None) -> Iterator[None]:
    """Lines logged inside are about these ids (notification, chat, call, request)."""
    token = _about.set(_merged(**ids))
    try:
        yield
    finally:
        _about.reset(token)


def bind_log_context(**ids: str | None) -> None:
    """From here on, in this task, lines are also about these ids (a handler that has just
    learnt which call it works on)."""
    _about.set(_merged(**ids))


def current_log_context() -> dict[str, str]:
    return dict(_about.get())


class AddLogContext(logging.Filter):
    """Copies the current ids onto the record, for either format."""

    def filter(self, record: logging.LogRecord) -> bool:
        about = _about.get()
        record.about = about
        for name, value in about:
            setattr(record, name, value)
        return True


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message [notification=... chat=...]`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        about = getattr(record, "about", ())
        if about:
            line += " [" + " ".join(f"{name}={for_log(value)}" for name, value in about) + "]"
        return line


class JsonLineFormatter(JsonFormatter):
    """One JSON object a line: time, level, logger, message, and the ids it is about."""

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            json_ensure_ascii=True,
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """ISO 8601 in UTC with milliseconds, what log aggregators parse without help."""
        moment = datetime.fromtimestamp(record.created, UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_data, record, message_dict)
        for name in ("about", *CONTEXT_FIELDS):
            log_data.pop(name, None)
        for name, value in getattr(record, "about", ()):
            log_data[name] = value


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
            # Formatters then print the masked text instead of formatting the exception
            # anew (the JSON formatter would).
            record.exc_info = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self._secrets)
        return True


def configure_logging(
    level: str = "INFO",
    secrets: Iterable[str] = (),
    *,
    log_content: bool = False,
    stream: TextIO | None = None,
    log_format: str = "text",
) -> None:
    """One handler on the root logger, masking secrets. Without `log_content`, loggers that
    would print SQL parameters or message text are kept at INFO even when `level` is DEBUG."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {LOG_FORMATS}, got {log_format!r}")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLineFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(RedactSecrets(secrets))
    handler.addFilter(AddLogContext())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in CONTENT_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if log_content else logging.INFO)
