"""Adaptive Card checks, so the sandbox refuses what RingCentral refuses.

RingCentral renders Adaptive Cards 1.3 and answers an invalid card with a body like
`{"status":"error","message":...,"error":"Invalid AdaptiveCard payload","validation":[...]}`
(fixture adaptive-card-error-invalid-payload.json). A structural check always runs;
when the official 1.3 JSON schema file is available (the sandbox finds the one in
../shared by default), the card is also validated against it (Draft 6), with the schema's
loose case-insensitive enum patterns tightened first. The schema is compiled twice: a fast
validator (jsonschema-rs) answers the common question "is this card valid?", and the reference
one (jsonschema) decides and explains whenever the fast one says anything but yes, so a
refused card gets the same messages as before at a fraction of the CPU for a taken one.

RingCentral's own rules on top of the schema: version at most 1.3 (it renders 1.3), only
OpenUrl/Submit/ShowCard/ToggleVisibility actions, and a size limit. The size limit is
UNCONFIRMED (not documented; the legacy attachments allowed 1.5 MB in all): the sandbox
takes at most MAX_CARD_BYTES of compact JSON, small on purpose so a bot that builds
big cards learns it here. A refused card answers 400 with the documented troubleshooting
body plus the platform's usual `errorCode`/`message`/`errors[]` (API-FACTS A.5), so a
client reading either shape understands it; never a plain-text 413.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema_rs
from jsonschema import Draft6Validator
from jsonschema.exceptions import ValidationError

ELEMENT_TYPES = frozenset(
    {
        "TextBlock",
        "Image",
        "Media",
        "RichTextBlock",
        "ActionSet",
        "Container",
        "ColumnSet",
        "FactSet",
        "ImageSet",
        "Input.Text",
        "Input.Number",
        "Input.Date",
        "Input.Time",
        "Input.Toggle",
        "Input.ChoiceSet",
    }
)
ACTION_TYPES = frozenset(
    {"Action.OpenUrl", "Action.Submit", "Action.ShowCard", "Action.ToggleVisibility"}
)
SELECT_ACTION_TYPES = ACTION_TYPES - {"Action.ShowCard"}

DEFAULT_VERSION = "1.3"
MAX_VERSION = (1, 3)
MAX_CARD_BYTES = 40_000
"""UNCONFIRMED: RingCentral documents no card size limit; chosen small (fail safe)."""


def invalid_card_body(problems: list[str]) -> dict[str, Any]:
    return {
        "errorCode": "CMN-101",
        "status": "error",
        "message": "Your request was accepted, however a post was not generated",
        "error": "Invalid AdaptiveCard payload",
        "validation": problems,
        "errors": [
            {"errorCode": "CMN-101", "message": problem, "parameterName": "body"}
            for problem in problems
        ],
        "parameterName": "body",
    }


def _version_problem(version: str) -> str | None:
    try:
        parts = tuple(int(part) for part in version.split("."))
    except ValueError:
        return f"payload.version {version!r} is not a version number"
    if len(parts) != 2 or parts > MAX_VERSION:
        return f"payload.version {version} is not supported: at most 1.3"
    return None


_CASE_CLASS = re.compile(r"\[(\w)\|(\w)\]")


def _tighten(node: Any) -> Any:
    """Anchor the generated case-insensitive enum patterns and make them string-only.

    The published schema writes `^(a)|(b)$`, which anchors only the first and last
    alternative and has no type, so almost anything passes; and its letters as `[l|L]`, a
    class that takes "|" too (so "l|rge" was a size): each becomes `[lL]`.
    """
    if isinstance(node, dict):
        fixed = {key: _tighten(value) for key, value in node.items()}
        pattern = fixed.get("pattern")
        if isinstance(pattern, str) and pattern.startswith("^(") and pattern.endswith(")$"):
            letters = _CASE_CLASS.sub(r"[\1\2]", pattern[1:-1])
            fixed["pattern"] = "^(?:" + letters + ")$"
            fixed.setdefault("type", "string")
        return fixed
    if isinstance(node, list):
        return [_tighten(item) for item in node]
    return node


class CardSchema:
    """The Adaptive Cards 1.3 schema compiled once, checked fast, explained in full.

    Validating a digest card with jsonschema takes 10-30 ms of CPU (its `anyOf` of every
    element type resolves `$ref`s and builds an error for each branch that does not match),
    which made card validation most of the sandbox's CPU per simulated call. jsonschema-rs
    takes about 0.02 ms for the same answer. It only ever short-cuts a "valid": any other
    answer (invalid, or a value it cannot read) goes to jsonschema, which decides exactly as
    before and gives the messages, so the sandbox refuses exactly what it refused before.
    Formats stay unchecked in both, as jsonschema checks none without a format checker.
    """

    def __init__(self, schema: dict[str, Any]) -> None:
        Draft6Validator.check_schema(schema)
        self._reference = Draft6Validator(schema)
        self._fast = jsonschema_rs.Draft6Validator(schema, validate_formats=False)

    def is_valid_fast(self, card: dict[str, Any]) -> bool:
        """True only when the fast validator is sure the card is valid."""
        try:
            return bool(self._fast.is_valid(card))
        except (ValueError, TypeError, OverflowError):
            return False

    def problems(self, card: dict[str, Any]) -> list[str]:
        """What the schema says is wrong with `card` (already given its default version)."""
        if self.is_valid_fast(card):
            return []
        return [
            _describe(error) for error in sorted(self._reference.iter_errors(card), key=_error_path)
        ]


def load_card_schema(path: Path) -> dict[str, Any]:
    """The official schema file with its enum patterns tightened (see `_tighten`)."""
    schema = _tighten(json.loads(path.read_text(encoding="utf-8")))
    assert isinstance(schema, dict)
    return schema


def load_schema_validator(path: Path) -> CardSchema:
    return CardSchema(load_card_schema(path))


class CardValidator:
    """Finds what is wrong with a card; an empty list means RingCentral would take it."""

    def __init__(self, schema_validator: CardSchema | None = None) -> None:
        self._schema = schema_validator

    @property
    def uses_schema(self) -> bool:
        return self._schema is not None

    def problems(self, card: Any) -> list[str]:
        if not isinstance(card, dict):
            return ["payload is not an object"]
        found: list[str] = []
        if card.get("type") != "AdaptiveCard":
            found.append("payload.type should be equal to AdaptiveCard")
        version = card.get("version", DEFAULT_VERSION)
        if not isinstance(version, str):
            found.append("payload.version should be a string")
        else:
            problem = _version_problem(version)
            if problem is not None:
                found.append(problem)
        size = len(json.dumps(card, separators=(",", ":"), ensure_ascii=False).encode())
        if size > MAX_CARD_BYTES:
            found.append(f"payload is too large: {size} bytes, at most {MAX_CARD_BYTES}")
            return found
        self._check_card(card, "payload", found)
        if not found and self._schema is not None:
            # A shallow copy: only the top-level version is defaulted, nothing is changed.
            candidate = dict(card)
            candidate.setdefault("version", DEFAULT_VERSION)
            found.extend(self._schema.problems(candidate))
        return found

    def _check_card(self, card: dict[str, Any], where: str, found: list[str]) -> None:
        body = card.get("body", [])
        if not isinstance(body, list):
            found.append(f"{where}.body should be an array")
        else:
            for index, element in enumerate(body):
                self._check_element(element, f"{where}.body[{index}]", found)
        actions = card.get("actions", [])
        if not isinstance(actions, list):
            found.append(f"{where}.actions should be an array")
        else:
            for index, action in enumerate(actions):
                self._check_action(action, f"{where}.actions[{index}]", found, ACTION_TYPES)
        if "selectAction" in card:
            self._check_action(
                card["selectAction"], f"{where}.selectAction", found, SELECT_ACTION_TYPES
            )

    def _check_element(self, element: Any, where: str, found: list[str]) -> None:
        if not isinstance(element, dict) or element.get("type") not in ELEMENT_TYPES:
            found.append(f"{where} does not match any schema")
            return
        kind = element["type"]
        if kind == "Container":
            self._check_items(element.get("items", []), f"{where}.items", found)
        elif kind == "ColumnSet":
            columns = element.get("columns", [])
            if not isinstance(columns, list):
                found.append(f"{where}.columns should be an array")
                return
            for index, column in enumerate(columns):
                if not isinstance(column, dict) or column.get("type", "Column") != "Column":
                    found.append(f"{where}.columns[{index}] does not match any schema")
                    continue
                self._check_items(column.get("items", []), f"{where}.columns[{index}].items", found)
        elif kind == "ActionSet":
            actions = element.get("actions", [])
            if not isinstance(actions, list):
                found.append(f"{where}.actions should be an array")
                return
            for index, action in enumerate(actions):
                self._check_action(action, f"{where}.actions[{index}]", found, ACTION_TYPES)
        if "selectAction" in element:
            self._check_action(
                element["selectAction"], f"{where}.selectAction", found, SELECT_ACTION_TYPES
            )

    def _check_items(self, items: Any, where: str, found: list[str]) -> None:
        if not isinstance(items, list):
            found.append(f"{where} should be an array")
            return
        for index, item in enumerate(items):
            self._check_element(item, f"{where}[{index}]", found)

    def _check_action(
        self, action: Any, where: str, found: list[str], allowed: frozenset[str]
    ) -> None:
        if not isinstance(action, dict) or action.get("type") not in allowed:
            found.append(f"{where} does not match any schema")
            return
        if action["type"] == "Action.ShowCard":
            inner = action.get("card")
            if not isinstance(inner, dict) or inner.get("type") != "AdaptiveCard":
                found.append(f"{where}.card does not match any schema")
            else:
                self._check_card(inner, f"{where}.card", found)


def _error_path(error: ValidationError) -> str:
    return _json_path(error)


def _json_path(error: ValidationError) -> str:
    path = "payload"
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _describe(error: ValidationError) -> str:
    """A message in RingCentral's "payload.x does not match any schema" style."""
    path = _json_path(error)
    if error.validator in ("anyOf", "oneOf"):
        return f"{path} does not match any schema"
    return f"{path} {error.message}"
