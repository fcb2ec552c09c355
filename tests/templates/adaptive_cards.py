"""The official Adaptive Cards 1.3 schema as a working validator, and ways to look into cards.

The schema file is used unchanged; its case-insensitive enum patterns are repaired in memory
when it is loaded (see shared/schemas/adaptive-cards/SOURCES.md): upstream they read
`^(a)|(b)$`, which anchors only the first and last alternative, and have no `type`, so
`"size": "notmediumatall"` and `"size": 5` would pass.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft6Validator
from jsonschema.exceptions import ValidationError

from tests.conftest import ADAPTIVE_CARD_SCHEMA

_CASE_CLASS = re.compile(r"\[(\w)\|(\w)\]")

GOLDEN_DIR = Path(__file__).parent / "golden"


def _repair_enum_patterns(node: Any) -> Any:
    if isinstance(node, list):
        return [_repair_enum_patterns(item) for item in node]
    if not isinstance(node, dict):
        return node
    repaired = {key: _repair_enum_patterns(value) for key, value in node.items()}
    pattern = node.get("pattern")
    if isinstance(pattern, str) and pattern.startswith("^(") and pattern.endswith(")$"):
        alternatives = _CASE_CLASS.sub(r"[\1\2]", pattern[1:-1])  # "[d|D]" also matched "|"
        repaired["pattern"] = f"^(?:{alternatives})$"
        repaired["type"] = "string"
    return repaired


@cache
def card_validator() -> Draft6Validator:
    schema = _repair_enum_patterns(json.loads(ADAPTIVE_CARD_SCHEMA.read_text(encoding="utf-8")))
    Draft6Validator.check_schema(schema)
    return Draft6Validator(schema)


def _leaves(error: ValidationError) -> Iterator[ValidationError]:
    if not error.context:
        yield error
    for sub in error.context or ():
        yield from _leaves(sub)


def schema_problems(card: Mapping[str, Any]) -> list[str]:
    """Why the card fails the 1.3 schema, phrased by the deepest failing branches."""
    problems = []
    for error in card_validator().iter_errors(card):
        leaves = list(_leaves(error))
        deepest = max(len(leaf.absolute_path) for leaf in leaves)
        for leaf in leaves:
            if len(leaf.absolute_path) == deepest:
                path = "/".join(str(p) for p in leaf.absolute_path)
                problems.append(f"{path}: {leaf.message}")
    return problems


def assert_valid_card(card: Mapping[str, Any]) -> None:
    """A top-level Adaptive Card RingCentral accepts: schema-valid, type and version set."""
    problems = schema_problems(card)
    assert not problems, "card fails the Adaptive Cards 1.3 schema:\n" + "\n".join(problems[:20])
    assert card["type"] == "AdaptiveCard"
    assert card["version"] == "1.3"


def elements(node: Any) -> Iterator[dict[str, Any]]:
    """Every typed object in a card (elements, inlines, actions), depth first."""
    if isinstance(node, dict):
        if "type" in node:
            yield node
        for value in node.values():
            yield from elements(value)
    elif isinstance(node, list):
        for item in node:
            yield from elements(item)


def text_runs(card: Mapping[str, Any]) -> list[str]:
    """The texts of all TextRuns: where call text must appear, literally."""
    return [e["text"] for e in elements(card) if e["type"] == "TextRun"]


def markdown_texts(card: Mapping[str, Any]) -> list[str]:
    """Texts a client renders as markdown: TextBlocks and fact titles and values."""
    texts = [e["text"] for e in elements(card) if e["type"] == "TextBlock"]
    for fact_set in (e for e in elements(card) if e["type"] == "FactSet"):
        texts += [part for fact in fact_set["facts"] for part in (fact["title"], fact["value"])]
    return texts


def headings(card: Mapping[str, Any]) -> list[str]:
    """Section headings: bold TextBlocks with a separator, in card order."""
    return [
        block["text"]
        for block in card["body"]
        if block["type"] == "TextBlock" and block.get("separator") and block.get("weight")
    ]


def actions_of_type(card: Mapping[str, Any], kind: str) -> list[dict[str, Any]]:
    return [a for a in card.get("actions", []) if a["type"] == kind]


def submit_actions(card: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every Action.Submit in the card, in the card's actions or in ActionSets."""
    return [e for e in elements(card) if e["type"] == "Action.Submit"]


def inputs(card: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The card's inputs by id (ids must be unique: a client would merge them)."""
    found = [e for e in elements(card) if e["type"].startswith("Input.") and "id" in e]
    by_id = {e["id"]: e for e in found}
    assert len(by_id) == len(found), "two inputs share an id"
    return by_id


def submission(card: Mapping[str, Any], button_title: str) -> dict[str, str]:
    """What a client sends back when `button_title` is pressed without touching the form:
    the button's data and every input's current value as a string (Adaptive Cards clients
    send "true"/"false" for toggles, comma-separated values for multi-selects and an empty
    string for an empty input)."""
    (button,) = [a for a in submit_actions(card) if a.get("title") == button_title]
    data: dict[str, str] = {}
    for input_id, element in inputs(card).items():
        value = element.get("value")
        if element["type"] == "Input.Toggle" and value is None:
            value = element.get("valueOff", "false")
        data[input_id] = "" if value is None else str(value)
    return {**data, **button["data"]}


def visible_text(card: Mapping[str, Any]) -> list[str]:
    """Every piece of text a reader sees: text blocks, runs, facts, toggle titles, labels,
    choice titles, input values and placeholders, button titles."""
    texts: list[str] = []
    for element in elements(card):
        for key in ("text", "title", "label", "placeholder", "value"):
            if isinstance(element.get(key), str):
                texts.append(element[key])
        for choice in element.get("choices", []):
            texts.append(choice["title"])
        for fact in element.get("facts", []) if element["type"] == "FactSet" else []:
            texts += [fact["title"], fact["value"]]
    return texts


def assert_matches_golden(card: Mapping[str, Any], name: str) -> None:
    """The card equals `golden/<name>`; `UPDATE_GOLDEN=1` rewrites the file instead."""
    path = GOLDEN_DIR / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert card == json.loads(path.read_text(encoding="utf-8")), f"card differs from {path}"
