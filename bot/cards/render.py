"""The card renderer: templates in, checked Adaptive Card dicts out.

Adaptive Cards as data: jinja2 templates in `templates/`, rendered to dicts and checked.

The layout of every card lives in `templates/<name>.card.json.j2`; Python only prepares plain
display values ("views") for them. Every value enters a template through `| tojson`, so text
from a call (quotes, newlines, `{{ }}`, `${x}`, markdown, HTML) stays literal text inside valid
JSON, and the output is parsed and sanity-checked at once, so a broken template fails where it
is rendered rather than as a 400 from RingCentral. The full Adaptive Cards 1.3 schema check
runs in the tests (it is too slow for every post).

Adaptive Cards render markdown in `TextBlock` and `Fact` values but not in `TextRun`, which is
why the templates put anything said on a call into `RichTextBlock` runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import jinja2
import orjson

from bot.quoting import plain_text, quote_for_chat

TEMPLATES_DIR: Final = Path(__file__).resolve().parent.parent.parent / "templates"
TEMPLATE_SUFFIX: Final = ".card.json.j2"


CARD_VERSION: Final = "1.3"
CARD_SCHEMA_URL: Final = "http://adaptivecards.io/schemas/adaptive-card.json"

#: Actions our cards may carry: links, buttons that call the bot back with an action id,
#: and the two that only fold parts of the card in and out ("More", "Show call notes"),
#: all four supported by RingCentral (API-FACTS D.5).
ALLOWED_ACTIONS: Final = frozenset(
    {"Action.OpenUrl", "Action.Submit", "Action.ShowCard", "Action.ToggleVisibility"}
)

#: The most bytes (compact JSON) a card built from open-ended lists may take. RingCentral
#: documents no card size limit (UNCONFIRMED, API-FACTS D.5); the sandbox refuses cards
#: over 40,000 bytes, and this leaves room below that.
CARD_BYTE_BUDGET: Final = 38_000


class CardError(Exception):
    """A template produced something that is not a card we are willing to post."""


@dataclass(frozen=True, slots=True)
class SubmitAction:
    """A button that calls the bot back (`Action.Submit`) with a routed action id.

    `data` is sent back as it is, beside `action`; RingCentral delivers it as a flat string
    map, hence the `str` values.
    """

    title: str
    action_id: str
    data: Mapping[str, str] = field(default_factory=dict)

    def as_view(self) -> dict[str, Any]:
        if not self.action_id.strip():
            raise CardError(f"Action.Submit {self.title!r} needs an action id")
        return {"title": self.title, "data": {**self.data, "action": self.action_id}}


class CardRenderer:
    """Renders `templates/<name>.card.json.j2` into checked Adaptive Card dicts.

    One jinja2 environment per renderer: `StrictUndefined` so a view missing a value fails
    loudly instead of posting an empty card, autoescape off because the output is JSON, not
    HTML (`| tojson` does the escaping).

    Each template is compiled once and kept (`auto_reload` off: templates do not change
    while the bot runs, so no file is checked per card), and `| tojson` and the parse of
    the result use orjson: a digest's card is rendered on every delivery.
    """

    def __init__(self, templates_dir: Path | None = None) -> None:
        self.templates_dir = templates_dir or TEMPLATES_DIR
        self.environment = jinja2.Environment(
            loader=jinja2.FileSystemLoader(self.templates_dir),
            undefined=jinja2.StrictUndefined,
            autoescape=False,  # noqa: S701 - JSON output; every value goes through | tojson
            keep_trailing_newline=True,
            auto_reload=False,
        )
        self.environment.policies["json.dumps_function"] = _view_value_json
        self.environment.policies["json.dumps_kwargs"] = {}

    def template_names(self) -> tuple[str, ...]:
        """Every card template in the templates directory."""
        return tuple(
            sorted(
                self.environment.list_templates(filter_func=lambda n: n.endswith(TEMPLATE_SUFFIX))
            )
        )

    def render(self, template_name: str, **values: Any) -> dict[str, Any]:
        """Render one template with a view, parse the JSON and sanity-check the card."""
        try:
            text = self.environment.get_template(template_name).render(**values)
        except (jinja2.TemplateError, TypeError) as error:
            raise CardError(f"{template_name}: {error}") from error
        try:
            card = _parse_rendered(text)
        except json.JSONDecodeError as error:
            raise CardError(f"{template_name} rendered invalid JSON: {error}") from error
        if not isinstance(card, dict):
            raise CardError(f"{template_name} rendered {type(card).__name__}, not a card object")
        quote_displayed_text(card)
        try:
            check_card(card)
        except CardError as error:
            raise CardError(f"{template_name}: {error}") from error
        return card


def card_bytes(card: Mapping[str, Any]) -> int:
    """A card's size as RingCentral receives it (compact UTF-8 JSON)."""
    return len(json.dumps(card, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def fitting_card(render: Callable[[int], dict[str, Any]], most: int) -> dict[str, Any]:
    """The card showing as many of `most` lines as fit CARD_BYTE_BUDGET (at least one):
    shared by the cards built from open-ended lists (transcripts, utterances)."""
    shown = most
    while True:
        card = render(shown)
        size = card_bytes(card)
        if size <= CARD_BYTE_BUDGET or shown <= 1:
            return card
        # Shrink in proportion to the excess (and at least by one), then check again.
        shown = max(1, min(shown - 1, int(shown * CARD_BYTE_BUDGET / size)))


# Where a card shows text (and RingCentral may read it as markdown): these keys of any
# element, plus the `value` of a fact. Input values and Action.Submit data are left alone:
# they are sent back to us, not shown as markup.
_DISPLAYED_TEXT_KEYS: Final = frozenset({"text", "title", "placeholder", "label", "errorMessage"})


def quote_displayed_text(card: dict[str, Any]) -> None:
    """Quote every text a card shows, in place, so nothing in it becomes a mention, a link
    or emphasis (`bot.quoting.quote_for_chat`), and make `fallbackText` plain text.

    Done once here, after rendering, rather than value by value in the views: no view can
    forget a caller-controlled value. The bot's own card texts use no markdown (layout
    comes from Adaptive Card properties), so quoting them changes nothing.
    """
    fallback = card.get("fallbackText")
    if isinstance(fallback, str):
        card["fallbackText"] = plain_text(fallback)
    _quote_in(card.get("body"), in_facts=False)
    _quote_in(card.get("actions"), in_facts=False)


def _quote_in(node: object, *, in_facts: bool) -> None:
    if isinstance(node, list):
        for item in node:
            _quote_in(item, in_facts=in_facts)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if isinstance(value, str):
            if key in _DISPLAYED_TEXT_KEYS or (in_facts and key == "value"):
                node[key] = quote_for_chat(value)
        elif key == "data" and node.get("type") == "Action.Submit":
            continue  # comes back to us as it is
        else:
            _quote_in(value, in_facts=key == "facts")


def _view_value_json(value: object) -> str:
    """A view value as JSON text for `| tojson` (keys sorted). orjson, unless the value
    holds what it refuses (a lone surrogate, an integer beyond 64 bits, a value that is
    not JSON): then the standard library, whose `default` names a missing view value
    (`StrictUndefined`) instead of failing with a bare TypeError."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(value, sort_keys=True, default=_refuse_in_json)


def _parse_rendered(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        # What orjson refuses and the standard library reads (a lone surrogate escaped),
        # or a broken template: then the standard library's error says where.
        return json.loads(text)


def _refuse_in_json(value: object) -> object:
    if isinstance(value, jinja2.Undefined):
        str(value)  # a StrictUndefined raises UndefinedError naming the missing value
    raise TypeError(f"{type(value).__name__} is not a JSON value; convert it in the view")


def check_card(card: Mapping[str, Any]) -> None:
    """Cheap runtime checks that a card is one RingCentral will show as we mean it.

    Raises `CardError` when the card is not a 1.3 `AdaptiveCard` with a body and a
    `fallbackText` (what mobile notifications show), when any action is other than
    `Action.OpenUrl` (http or https only), `Action.Submit` (data with an `action` id),
    `Action.ShowCard` (with a card) or `Action.ToggleVisibility` (with targets).
    """
    if card.get("type") != "AdaptiveCard":
        raise CardError(f"card type must be 'AdaptiveCard', got {card.get('type')!r}")
    if card.get("version") != CARD_VERSION:
        raise CardError(f"card version must be {CARD_VERSION!r}, got {card.get('version')!r}")
    if not isinstance(card.get("body"), list):
        raise CardError("card body must be a list")
    fallback = card.get("fallbackText")
    if not isinstance(fallback, str) or not fallback.strip():
        raise CardError("card needs a non-empty fallbackText")
    actions, shows_card_on_select = _survey(card)
    for action in actions:
        _check_action(action)
    if shows_card_on_select:
        raise CardError("Action.ShowCard cannot be a selectAction (Adaptive Cards 1.3)")


def _survey(card: Mapping[str, Any]) -> tuple[list[Mapping[str, Any]], bool]:
    """In one walk of the card: every object whose type is an action, wherever it sits
    (nothing under an `Action.Submit`: its data is the caller's, not card structure), and
    whether any object at all has an `Action.ShowCard` as its `selectAction`."""
    actions: list[Mapping[str, Any]] = []
    shows_card_on_select = False
    # (node, whether it is under an Action.Submit)
    pending: list[tuple[object, bool]] = [(card, False)]
    while pending:
        node, in_submit = pending.pop()
        if isinstance(node, Mapping):
            select = node.get("selectAction")
            if isinstance(select, Mapping) and select.get("type") == "Action.ShowCard":
                shows_card_on_select = True
            kind = node.get("type")
            if not in_submit and isinstance(kind, str) and kind.startswith("Action."):
                actions.append(node)
                in_submit = kind == "Action.Submit"
            pending.extend((value, in_submit) for value in node.values())
        elif isinstance(node, list):
            pending.extend((value, in_submit) for value in node)
    return actions, shows_card_on_select


def _check_action(action: Mapping[str, Any]) -> None:
    kind = action.get("type")
    if kind not in ALLOWED_ACTIONS:
        raise CardError(f"{kind} is not allowed; use one of {sorted(ALLOWED_ACTIONS)}")
    if kind == "Action.OpenUrl":
        url = action.get("url")
        if not isinstance(url, str) or urlsplit(url).scheme.lower() not in ("http", "https"):
            raise CardError(f"Action.OpenUrl needs an http(s) url, got {url!r}")
    elif kind == "Action.ShowCard":
        shown = action.get("card")
        if not isinstance(shown, Mapping) or shown.get("type") != "AdaptiveCard":
            raise CardError("Action.ShowCard needs a card of type AdaptiveCard")
    elif kind == "Action.ToggleVisibility":
        targets = action.get("targetElements")
        if not isinstance(targets, list) or not targets:
            raise CardError("Action.ToggleVisibility needs targetElements")
    else:
        data = action.get("data")
        if not isinstance(data, Mapping) or not isinstance(data.get("action"), str):
            raise CardError("Action.Submit needs data with an 'action' id string")
