"""The sandbox's fast card check (jsonschema-rs) says "valid" only where the reference
validator (jsonschema, which decided alone before) says so too, on every card the bot sends
and on thousands of broken variants of them; and the refusals read as before."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft6Validator

from sandbox import defaults
from sandbox.cards import CardSchema, CardValidator, load_card_schema, load_schema_validator
from tests.conftest import ADAPTIVE_CARD_SCHEMA
from tests.sandbox.conftest import BOT_AUTH, SandboxClient

GOLDEN = sorted((Path(__file__).parents[1] / "templates" / "golden").glob("*.card.json"))

# Values that are right in one place of a card and wrong in another: enum values in and out
# of their case rules, element and action types, numbers where strings go and back.
ODD_VALUES: list[Any] = [
    "huge",
    "Large",
    "LARGE",
    "large",
    "l|rge",
    "Bolder",
    "bolder",
    "Blink",
    "TextBlock",
    "Action.Execute",
    "Action.OpenUrl",
    "Action.ShowCard",
    "Container",
    "Column",
    "Fact",
    "",
    "1.3",
    "auto",
    "stretch",
    "50px",
    "attention",
    "https://example.com/a",
    "not a url",
    0,
    -1,
    2,
    1.5,
    True,
    False,
    None,
    [],
    {},
    [{"type": "TextBlock", "text": "x"}],
    {"type": "TextBlock", "text": "x"},
    {"type": "Action.Submit", "title": "x"},
]


@cache
def reference() -> Draft6Validator:
    return Draft6Validator(load_card_schema(ADAPTIVE_CARD_SCHEMA))


@cache
def fast() -> CardSchema:
    return load_schema_validator(ADAPTIVE_CARD_SCHEMA)


def _places(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key and index in a card, as paths from its root."""
    found: list[tuple[Any, ...]] = [path]
    children = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for key, value in children:
        found.extend(_places(value, (*path, key)))
    return found


def _at(card: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        card = card[key]
    return card


@st.composite
def broken_cards(draw: st.DrawFn) -> dict[str, Any]:
    """A golden card with one to three places replaced, removed or given an unknown key."""
    card = copy.deepcopy(json.loads(draw(st.sampled_from(GOLDEN)).read_text()))
    for _ in range(draw(st.integers(1, 3))):
        places = [p for p in _places(card) if p]
        path = draw(st.sampled_from(places))
        parent, key = _at(card, path[:-1]), path[-1]
        change = draw(st.sampled_from(("replace", "remove", "add")))
        if change == "replace":
            parent[key] = copy.deepcopy(draw(st.sampled_from(ODD_VALUES)))
        elif change == "remove":
            del parent[key]
        elif isinstance(parent[key], dict):
            name = draw(st.sampled_from(("spacing", "size", "type", "style", "unknownThing")))
            parent[key][name] = copy.deepcopy(draw(st.sampled_from(ODD_VALUES)))
    return card


def test_every_card_the_bot_sends_passes_both_validators() -> None:
    assert len(GOLDEN) >= 20
    for path in GOLDEN:
        card = json.loads(path.read_text())
        assert fast().is_valid_fast(card), path.name
        assert reference().is_valid(card), path.name
        assert CardValidator(fast()).problems(card) == [], path.name


@settings(
    max_examples=100,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(broken_cards())
def test_the_fast_check_agrees_with_the_reference_on_broken_cards(card: dict[str, Any]) -> None:
    assert fast().is_valid_fast(card) == reference().is_valid(card)


def test_a_refused_card_is_explained_by_the_reference_validator() -> None:
    card = {
        "type": "AdaptiveCard",
        "version": "1.3",
        "body": [{"type": "TextBlock", "text": "x", "size": "huge"}],
    }
    assert not fast().is_valid_fast(card)
    # The message jsonschema's errors gave before the fast check came in.
    assert CardValidator(fast()).problems(card) == ["payload does not match any schema"]


def test_a_value_the_fast_check_does_not_take_goes_to_the_reference() -> None:
    # NaN, which Python's JSON parser reads: jsonschema counts it a number, jsonschema-rs
    # does not; jsonschema decides, as it did before the fast check came in.
    card = {
        "type": "AdaptiveCard",
        "version": "1.3",
        "body": [{"type": "TextBlock", "text": "x", "maxLines": float("nan")}],
    }
    assert not fast().is_valid_fast(card)
    assert CardValidator(fast()).problems(card) == []
    card["body"][0]["text"] = float("nan")
    assert CardValidator(fast()).problems(card) == ["payload does not match any schema"]


async def test_an_enum_value_with_a_bar_in_it_is_refused(client: SandboxClient) -> None:
    # The published schema spells case-insensitive enums as `[l|L][a|A]...`, where "|" is one
    # more character the class takes: "l|rge" passed as a size, which no renderer knows.
    made = await client.post(
        "/_sandbox/chats",
        json={
            "type": "Group",
            "members": [defaults.BOT_EXTENSION_ID, defaults.SERVICE_USER_EXTENSION_ID],
        },
    )
    chat_id = (await made.json())["id"]
    for size, status in (("l|rge", 400), ("|||||", 400), ("Large", 201), ("large", 201)):
        card = {
            "type": "AdaptiveCard",
            "version": "1.3",
            "body": [{"type": "TextBlock", "text": "x", "size": size}],
        }
        response = await client.post(
            f"/team-messaging/v1/chats/{chat_id}/adaptive-cards", json=card, headers=BOT_AUTH
        )
        assert response.status == status, size
