"""The settings card: a person's digest settings as a form, and its submission read back.

`settings_card` renders `templates/settings.card.json.j2`; its Save button sends
`{"action": "settings.save"}` together with every input's value, which RingCentral delivers
as the `data` of a `button_submit` (a flat map of strings). `parse_settings_submission`
turns that map back into `UserSettings`, or into clear problems to show on the card again
(`settings_card(..., errors=problems, submitted=data)`), next to what the person typed.

Input ids and the values they carry:

| id | input | value |
|---|---|---|
| `optedIn`, `directMessages`, `externalToChannels` | Input.Toggle | "true" / "false" |
| `channel.<chatId>` | Input.Toggle, one per channel the person added | "true" / "false" |
| `sections` | Input.ChoiceSet, multi | comma-separated `DIGEST_SECTIONS` keys |
| `directions` | Input.ChoiceSet, multi | comma-separated "Inbound", "Outbound" |
| `parties` | Input.ChoiceSet, multi | comma-separated "internal", "external" |
| `minDurationMinutes` | Input.Number, 0 to 600 | whole minutes; empty = 0 |
| `minAiScore` | Input.Number, 0 to 10 | a number; empty = no minimum |
| `timezone` | Input.Text | an IANA name; empty = the bot's default |

The card can change settings but never add a destination: channels are added and removed
with the `channel` commands, and pausing is the `pause` / `resume` commands' business.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from functools import cache
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from bot.cards import (
    DIGEST_SECTIONS,
    SECTION_LABELS,
    CardRenderer,
    SubmitAction,
    format_start_time,
)
from bot.settings import DIRECTIONS, SCOPE_ALL, SCOPE_OWNED, UserSettings, settings_revision

SETTINGS_TEMPLATE: Final = "settings.card.json.j2"

#: The Save button's action id.
ACTION_SETTINGS_SAVE: Final = "settings.save"
DATA_REVISION: Final = "revision"
STALE_CARD: Final = (
    "Your settings changed after this card was sent. Here they are as they are now: "
    "change them and save again."
)

INPUT_OPTED_IN: Final = "optedIn"
INPUT_DIRECT_MESSAGES: Final = "directMessages"
#: Followed by the chat id: `channel.<chatId>`.
CHANNEL_INPUT_PREFIX: Final = "channel."
INPUT_EXTERNAL_TO_CHANNELS: Final = "externalToChannels"
INPUT_SECTIONS: Final = "sections"
INPUT_DIRECTIONS: Final = "directions"
INPUT_PARTIES: Final = "parties"
INPUT_MIN_DURATION: Final = "minDurationMinutes"
INPUT_MIN_AI_SCORE: Final = "minAiScore"
INPUT_TIMEZONE: Final = "timezone"
INPUT_DIGEST_SCOPE: Final = "digestScope"

PARTY_INTERNAL: Final = "internal"
PARTY_EXTERNAL: Final = "external"

MAX_DURATION_MINUTES: Final = 600
MAX_AI_SCORE: Final = 10
TIMEZONE_EXAMPLE: Final = "America/New_York"

SAVED_TEXT: Final = "Saved. Your digests follow these settings from the next call."

_TRUE: Final = frozenset({"true", "on", "yes", "1"})
_FALSE: Final = frozenset({"false", "off", "no", "0"})
_QUOTED_MAX: Final = 40
#: Files in the time zone database that are not places.
_NOT_ZONES: Final = frozenset({"localtime", "posixrules", "Factory"})

_PARTY_LABELS: Final = {
    PARTY_INTERNAL: "Internal calls",
    PARTY_EXTERNAL: "Calls with external participants",
}
_DIRECTION_LABELS: Final = {"Inbound": "Inbound", "Outbound": "Outbound"}
_SCOPE_LABELS: Final = {
    SCOPE_OWNED: "Calls I own",
    SCOPE_ALL: "Calls I own or take part in",
}


# --- the card -----------------------------------------------------------------------------


def settings_card(
    renderer: CardRenderer,
    settings: UserSettings,
    *,
    default_timezone: str,
    errors: Sequence[str] = (),
    saved: bool = False,
    submitted: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The settings form, filled with `settings`.

    `errors` are shown at the top, one per line; pass the rejected submission as `submitted`
    so the inputs keep what the person typed (its values win over `settings`). `saved`
    adds a confirmation line and shows the stored values (`submitted` is then ignored).
    `default_timezone` is the zone used when the person set none; the card names it.
    """
    view = settings_view(
        settings,
        default_timezone=default_timezone,
        errors=errors,
        saved=saved,
        submitted=submitted,
    )
    return renderer.render(SETTINGS_TEMPLATE, **view)


def settings_view(
    settings: UserSettings,
    *,
    default_timezone: str,
    errors: Sequence[str] = (),
    saved: bool = False,
    submitted: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The values `settings.card.json.j2` needs; see `settings_card`."""
    typed: Mapping[str, Any] = {} if saved or submitted is None else submitted

    def value(input_id: str, stored: str) -> str:
        text = _as_text(typed.get(input_id))
        return stored if text is None else text

    def toggle(input_id: str, stored: bool) -> dict[str, str]:
        text = _as_text(typed.get(input_id))
        flag = _flag(text) if text is not None else None
        return {"id": input_id, "value": _toggle_value(stored if flag is None else flag)}

    def number(input_id: str, stored: float | None) -> dict[str, Any]:
        text = _as_text(typed.get(input_id))
        typed_number = None if text is None else _plain_number(_number_or_none(text))
        return {"id": input_id, "value": stored if text is None else typed_number}

    def choices(input_id: str, labels: Mapping[str, str], stored: Sequence[str]) -> dict[str, Any]:
        return {
            "id": input_id,
            "value": value(input_id, ",".join(stored)),
            "choices": [{"title": title, "value": key} for key, title in labels.items()],
        }

    zone = _zone(settings.timezone) or _zone(default_timezone) or ZoneInfo("UTC")
    paused = (
        format_start_time(settings.paused_until, zone)
        if settings.paused_until is not None and settings.is_paused()
        else None
    )
    parties = [
        *([PARTY_INTERNAL] if settings.internal_calls else []),
        *([PARTY_EXTERNAL] if settings.external_calls else []),
    ]
    return {
        "errors": list(errors),
        "saved_text": SAVED_TEXT if saved and not errors else None,
        "paused_text": (
            f"Paused until {paused}. Say resume to get digests again before then."
            if paused
            else None
        ),
        "opted_in": toggle(INPUT_OPTED_IN, settings.opted_in),
        "digest_scope": choices(INPUT_DIGEST_SCOPE, _SCOPE_LABELS, [settings.digest_scope]),
        "direct_messages": toggle(INPUT_DIRECT_MESSAGES, settings.direct_messages),
        "channels": [
            {
                **toggle(CHANNEL_INPUT_PREFIX + channel.chat_id, channel.enabled),
                "name": channel.name if channel.name.strip() else f"Chat {channel.chat_id}",
            }
            for channel in settings.channels
        ],
        "external_to_channels": toggle(INPUT_EXTERNAL_TO_CHANNELS, settings.external_to_channels),
        "directions": choices(
            INPUT_DIRECTIONS,
            _DIRECTION_LABELS,
            [d for d in DIRECTIONS if d in settings.directions],
        ),
        "parties": choices(INPUT_PARTIES, _PARTY_LABELS, parties),
        "min_duration": number(INPUT_MIN_DURATION, _minutes(settings.min_duration_s)),
        "min_ai_score": number(INPUT_MIN_AI_SCORE, _plain_number(settings.min_ai_score)),
        "sections": choices(INPUT_SECTIONS, SECTION_LABELS, settings.sections),
        "timezone": {"id": INPUT_TIMEZONE, "value": value(INPUT_TIMEZONE, settings.timezone or "")},
        "timezone_example": f"e.g. {TIMEZONE_EXAMPLE}",
        "default_timezone": default_timezone,
        "limits": {"min_duration": MAX_DURATION_MINUTES, "min_ai_score": MAX_AI_SCORE},
        "save": SubmitAction(
            "Save", ACTION_SETTINGS_SAVE, {DATA_REVISION: settings_revision(settings)}
        ).as_view(),
        "fallback_text": (
            f"Your digest settings: {len(errors)} to fix" if errors else "Your digest settings"
        ),
    }


# --- the submission -----------------------------------------------------------------------


def parse_settings_submission(
    data: Mapping[str, Any], current: UserSettings
) -> tuple[UserSettings, list[str]]:
    """The settings a Save submission asks for: `(new, [])`, or `(current, problems)`.

    `data` is the button_submit data: toggles "true"/"false", multi-selects comma-separated,
    numbers as strings (booleans, numbers and lists are accepted too). A missing key, or
    null, leaves that setting as it is; unknown keys are ignored. Channel toggles only turn
    channels the person already has on or off. Every problem is reported, each naming its
    field; with any problem nothing changes.
    """
    problems: list[str] = []
    changes: dict[str, Any] = {}

    def read(input_id: str, parse: Callable[[str], object]) -> object:
        text = _as_text(data.get(input_id))
        if text is None:
            return _UNCHANGED
        try:
            return parse(text)
        except _Invalid as invalid:
            problems.append(str(invalid))
            return _UNCHANGED

    def change(name: str, value: object) -> None:
        if value is not _UNCHANGED:
            changes[name] = value

    change("opted_in", read(INPUT_OPTED_IN, _toggle_parser("Opted in")))
    change("digest_scope", read(INPUT_DIGEST_SCOPE, _digest_scope))
    change("direct_messages", read(INPUT_DIRECT_MESSAGES, _toggle_parser("Direct message")))
    change(
        "external_to_channels",
        read(
            INPUT_EXTERNAL_TO_CHANNELS,
            _toggle_parser("Calls with external participants in channels"),
        ),
    )
    channels = []
    for channel in current.channels:
        enabled = read(
            CHANNEL_INPUT_PREFIX + channel.chat_id, _toggle_parser(f"Channel {channel.name}")
        )
        channels.append(replace(channel, enabled=enabled) if isinstance(enabled, bool) else channel)
    change("channels", tuple(channels))
    change("sections", read(INPUT_SECTIONS, lambda text: _sections(text, current.sections)))
    change("directions", read(INPUT_DIRECTIONS, _directions))
    parties = read(INPUT_PARTIES, _parties)
    if isinstance(parties, tuple):
        changes["internal_calls"], changes["external_calls"] = parties
    change(
        "min_duration_s",
        read(INPUT_MIN_DURATION, lambda text: _min_duration_s(text, current.min_duration_s)),
    )
    change("min_ai_score", read(INPUT_MIN_AI_SCORE, _min_ai_score))
    change("timezone", read(INPUT_TIMEZONE, _timezone))

    if problems:
        return current, problems
    return replace(current, **changes), []


class _Invalid(ValueError):
    """A submitted value that cannot be used; the message is shown to the person."""


class _Unchanged:
    pass


_UNCHANGED: Final = _Unchanged()


def _toggle_parser(name: str) -> Callable[[str], bool | _Unchanged]:
    def parse(text: str) -> bool | _Unchanged:
        if not text.strip():
            return _UNCHANGED
        flag = _flag(text)
        if flag is None:
            raise _Invalid(f"{name} must be on or off, not {_quoted(text)}")
        return flag

    return parse


def _picked(text: str, known: Sequence[str], what: str) -> list[str]:
    """The known values named in a comma-separated list, matched case-insensitively."""
    by_lower = {value.lower(): value for value in known}
    picked: list[str] = []
    for part in text.split(","):
        name = part.strip()
        if not name:
            continue
        value = by_lower.get(name.lower())
        if value is None:
            raise _Invalid(f"{what} {_quoted(name)} is not one of {', '.join(known)}")
        if value not in picked:
            picked.append(value)
    return picked


def _digest_scope(text: str) -> str | _Unchanged:
    if not text.strip():
        return _UNCHANGED
    picked = _picked(text, list(_SCOPE_LABELS), "Digests of")
    if len(picked) != 1:
        raise _Invalid("Digests of: pick one of " + ", ".join(_SCOPE_LABELS.values()))
    return picked[0]


def _sections(text: str, current: Sequence[str]) -> tuple[str, ...]:
    picked = _picked(text, DIGEST_SECTIONS, "Section")
    if not picked:
        raise _Invalid("Choose at least one section")
    # The card cannot reorder sections: keep the person's order, add new ones in ours.
    kept = [s for s in current if s in picked]
    return (*kept, *(s for s in DIGEST_SECTIONS if s in picked and s not in kept))


def _directions(text: str) -> frozenset[str]:
    picked = _picked(text, DIRECTIONS, "Call direction")
    if not picked:
        raise _Invalid("Choose at least one call direction")
    return frozenset(picked)


def _parties(text: str) -> tuple[bool, bool]:
    picked = _picked(text, (PARTY_INTERNAL, PARTY_EXTERNAL), "Call kind")
    if not picked:
        raise _Invalid("Choose internal calls, external calls, or both")
    return PARTY_INTERNAL in picked, PARTY_EXTERNAL in picked


def _min_duration_s(text: str, current_s: int) -> int:
    if not text.strip():
        return 0
    minutes = _number_or_none(text)
    if minutes is not None and minutes == _minutes(current_s):
        return current_s  # as shown, even when the stored seconds are not whole minutes
    if minutes is None or not minutes.is_integer() or not 0 <= minutes <= MAX_DURATION_MINUTES:
        raise _Invalid(
            f"Minimum duration must be a whole number of minutes from 0 to {MAX_DURATION_MINUTES}"
        )
    return int(minutes) * 60


def _min_ai_score(text: str) -> float | None:
    if not text.strip():
        return None
    score = _number_or_none(text)
    if score is None or not 0 <= score <= MAX_AI_SCORE:
        raise _Invalid(f"Minimum AI score must be a number from 0 to {MAX_AI_SCORE}")
    return float(score)


def _timezone(text: str) -> str | None:
    name = text.strip()
    if not name:
        return None
    known = _known_zones().get(name.lower())
    if known is None:
        raise _Invalid(
            f"Time zone {_quoted(name)} is not a known time zone, e.g. {TIMEZONE_EXAMPLE}"
        )
    return known


@cache
def _known_zones() -> dict[str, str]:
    """IANA zone names by their lower case."""
    return {name.lower(): name for name in available_timezones() if name not in _NOT_ZONES}


# --- values -------------------------------------------------------------------------------


def _as_text(value: object) -> str | None:
    """A submitted value as the string a card would send; None for missing or null."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        parts = (_as_text(item) for item in value)
        return ",".join(part for part in parts if part is not None)
    return str(value)


def _flag(text: str) -> bool | None:
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    return None


def _toggle_value(flag: bool) -> str:
    return "true" if flag else "false"


def _number_or_none(text: str) -> float | None:
    try:
        number = float(text.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _plain_number(number: float | None) -> float | None:
    """Whole numbers as ints, so the card shows 6 rather than 6.0."""
    if number is not None and float(number).is_integer():
        return int(number)
    return number


def _minutes(seconds: int) -> float:
    """Stored seconds as the minutes the card shows (whole when they are whole)."""
    return seconds // 60 if seconds % 60 == 0 else round(seconds / 60, 2)


def _zone(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _quoted(text: str) -> str:
    line = " ".join(text.split())
    if len(line) > _QUOTED_MAX:
        line = line[: _QUOTED_MAX - 1] + "…"
    return f'"{line}"'


__all__ = [
    "ACTION_SETTINGS_SAVE",
    "CHANNEL_INPUT_PREFIX",
    "DATA_REVISION",
    "INPUT_DIRECTIONS",
    "INPUT_DIRECT_MESSAGES",
    "INPUT_EXTERNAL_TO_CHANNELS",
    "INPUT_MIN_AI_SCORE",
    "INPUT_MIN_DURATION",
    "INPUT_OPTED_IN",
    "INPUT_PARTIES",
    "INPUT_SECTIONS",
    "INPUT_TIMEZONE",
    "MAX_AI_SCORE",
    "MAX_DURATION_MINUTES",
    "PARTY_EXTERNAL",
    "PARTY_INTERNAL",
    "SAVED_TEXT",
    "SETTINGS_TEMPLATE",
    "STALE_CARD",
    "parse_settings_submission",
    "settings_card",
    "settings_view",
]
