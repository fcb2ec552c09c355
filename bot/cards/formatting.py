"""Shared formatting for every card kind: times, durations, offsets, short labels."""

from __future__ import annotations

from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo

from bot.ringsense import CallInsights

UNASSIGNED: Final = "Unassigned"
UNKNOWN_PARTICIPANT: Final = "Unknown participant"
UNTITLED_CALL: Final = "RingSense call"


_FALLBACK_TITLE_MAX: Final = 120
_WEEKDAYS: Final = "Mon Tue Wed Thu Fri Sat Sun".split()
_MONTHS: Final = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
_SENTIMENT_MAX: Final = 32


def format_duration(seconds: float) -> str:
    """A call length with units: "45 s", "12 min 34 s", "1 h 2 min" (whole seconds, rounded
    down; seconds are left out from an hour on). Written as `m:ss` a length reads like a
    time of day, which is how people misread it."""
    total = max(int(seconds), 0)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"


def format_offset(seconds: float) -> str:
    """A position in the recording as `mm:ss`, or `h:mm:ss` from an hour on."""
    total = max(int(seconds), 0)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def format_start_time(moment: datetime, tz: ZoneInfo) -> str:
    """E.g. "Wed 4 Sep 2024, 16:44 EDT", in English whatever the process locale."""
    local = moment.astimezone(tz)
    zone = local.tzname() or ""
    return (
        f"{_WEEKDAYS[local.weekday()]} {local.day} {_MONTHS[local.month - 1]} {local.year}, "
        f"{local:%H:%M} {zone}"
    ).rstrip()


def direction_label(direction: str | None) -> str:
    if direction is not None and direction.lower() == "inbound":
        return "Inbound call"
    if direction is not None and direction.lower() == "outbound":
        return "Outbound call"
    return "Call"


def plain_label(value: str | None) -> str | None:
    """A short word-like label (letters, spaces, hyphens), safe where markdown renders."""
    if value is None:
        return None
    label = value.strip()
    if not label or len(label) > _SENTIMENT_MAX:
        return None
    if not all(ch.isalpha() or ch in " -" for ch in label):
        return None
    return label


def one_line(text: str) -> str:
    return " ".join(text.split())


def short_line(text: str) -> str:
    """One line of at most `_FALLBACK_TITLE_MAX` characters, for fallback texts."""
    line = one_line(text)
    if len(line) > _FALLBACK_TITLE_MAX:
        line = line[: _FALLBACK_TITLE_MAX - 1].rstrip() + "…"
    return line


def call_title(insights: CallInsights) -> str:
    return insights.title if insights.title.strip() else UNTITLED_CALL


def call_start(insights: CallInsights, tz: ZoneInfo) -> str | None:
    if insights.recording_start_time is None:
        return None
    return format_start_time(insights.recording_start_time, tz)


def call_duration(insights: CallInsights) -> str | None:
    if insights.recording_duration_ms is None:
        return None
    return format_duration(insights.recording_duration_ms / 1000)


def call_score(insights: CallInsights) -> str | None:
    return f"{insights.ai_score:g}/10" if insights.ai_score is not None else None
