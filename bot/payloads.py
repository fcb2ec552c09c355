"""Reading values out of RingCentral payloads, tolerantly.

RingCentral's JSON is not always typed as documented (ids as integers, numbers as strings,
timestamps with or without a zone), so the models read every scalar through these.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime


def text(value: object) -> str | None:
    """A string with something visible in it, kept exactly as sent."""
    return value if isinstance(value, str) and value.strip() else None


def ident(value: object) -> str | None:
    """An identifier; RingCentral ids are strings, but tolerate a bare integer."""
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def number(value: object) -> float | None:
    """A finite number given as a JSON number or a numeric string ("7", "42.52")."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return result if math.isfinite(result) else None


def timestamp(value: object) -> datetime | None:
    """An ISO 8601 timestamp as an aware UTC datetime (naive ones are taken as UTC)."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
