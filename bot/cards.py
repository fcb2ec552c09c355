"""Adaptive Cards as data: jinja2 templates in `templates/`, rendered to dicts and checked.

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
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import jinja2

from bot.ringsense import CallInsights

TEMPLATES_DIR: Final = Path(__file__).resolve().parent.parent / "templates"
TEMPLATE_SUFFIX: Final = ".card.json.j2"
DIGEST_TEMPLATE: Final = "digest.card.json.j2"
WELCOME_TEMPLATE: Final = "welcome.card.json.j2"
CALLS_TEMPLATE: Final = "calls.card.json.j2"
TRANSCRIPT_TEMPLATE: Final = "transcript.card.json.j2"
NOTICE_TEMPLATE: Final = "notice.card.json.j2"

CARD_VERSION: Final = "1.3"
CARD_SCHEMA_URL: Final = "http://adaptivecards.io/schemas/adaptive-card.json"

#: Actions our cards may carry: links, and buttons that call the bot back with an action id.
#: (ShowCard and ToggleVisibility would work in RingCentral, but we keep cards flat.)
ALLOWED_ACTIONS: Final = frozenset({"Action.OpenUrl", "Action.Submit"})

#: The digest's sections in their default order; user settings choose a subset and order.
DIGEST_SECTIONS: Final[tuple[str, ...]] = (
    "summary",
    "bulleted_summary",
    "next_steps",
    "highlights",
    "call_notes",
)

#: How each section is called, in the digest's headings and in the settings card.
SECTION_LABELS: Final[Mapping[str, str]] = {
    "summary": "Summary",
    "bulleted_summary": "Key points",
    "next_steps": "Next steps",
    "highlights": "Highlights",
    "call_notes": "Call notes",
}

# Button action ids (`data.action` of an Action.Submit), routed by the button_submit handler.
#: "Show transcript" on a digest; data: callKey.
ACTION_DIGEST_TRANSCRIPT: Final = "digest.transcript"
#: "Helpful" / "Not helpful" on a digest; data: callKey, verdict.
ACTION_DIGEST_FEEDBACK: Final = "digest.feedback"
#: "Open" on a row of the recent calls card; data: callKey.
ACTION_DIGEST_OPEN: Final = "digest.open"

#: Keys of the data our buttons send beside `action`.
DATA_CALL_KEY: Final = "callKey"
DATA_VERDICT: Final = "verdict"
VERDICT_HELPFUL: Final = "helpful"
VERDICT_NOT_HELPFUL: Final = "not_helpful"
FEEDBACK_VERDICTS: Final = (VERDICT_HELPFUL, VERDICT_NOT_HELPFUL)

CHAT_KINDS: Final = ("direct", "group")
DEFAULT_BOT_NAME: Final = "the digest bot"
DEFAULT_TRANSCRIPT_LINES: Final = 80

UNASSIGNED: Final = "Unassigned"
UNKNOWN_PARTICIPANT: Final = "Unknown participant"
UNTITLED_CALL: Final = "RingSense call"
NO_CALLS: Final = "No analysed calls yet."
NO_TRANSCRIPT: Final = "RingSense has no transcript for this call."
FEEDBACK_TITLE: Final = "Thanks for your feedback"
FEEDBACK_TEXTS: Final[Mapping[str, str]] = {
    VERDICT_HELPFUL: "Glad the digest helped. Thanks for letting us know.",
    VERDICT_NOT_HELPFUL: "Sorry it missed the mark. Thanks for telling us; it helps us improve.",
}

_FALLBACK_TITLE_MAX: Final = 120
_WEEKDAYS: Final = "Mon Tue Wed Thu Fri Sat Sun".split()
_MONTHS: Final = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
_SENTIMENT_MAX: Final = 32


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
    """

    def __init__(self, templates_dir: Path | None = None) -> None:
        self.templates_dir = templates_dir or TEMPLATES_DIR
        self.environment = jinja2.Environment(
            loader=jinja2.FileSystemLoader(self.templates_dir),
            undefined=jinja2.StrictUndefined,
            autoescape=False,  # noqa: S701 - JSON output; every value goes through | tojson
            keep_trailing_newline=True,
        )
        # `| tojson` would turn a missing view value into a bare TypeError; name it instead.
        self.environment.policies["json.dumps_kwargs"] = {
            "sort_keys": True,
            "default": _refuse_in_json,
        }

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
            card = json.loads(text)
        except json.JSONDecodeError as error:
            raise CardError(f"{template_name} rendered invalid JSON: {error}") from error
        if not isinstance(card, dict):
            raise CardError(f"{template_name} rendered {type(card).__name__}, not a card object")
        try:
            check_card(card)
        except CardError as error:
            raise CardError(f"{template_name}: {error}") from error
        return card


def _refuse_in_json(value: object) -> object:
    if isinstance(value, jinja2.Undefined):
        str(value)  # a StrictUndefined raises UndefinedError naming the missing value
    raise TypeError(f"{type(value).__name__} is not a JSON value; convert it in the view")


def check_card(card: Mapping[str, Any]) -> None:
    """Cheap runtime checks that a card is one RingCentral will show as we mean it.

    Raises `CardError` when the card is not a 1.3 `AdaptiveCard` with a body and a
    `fallbackText` (what mobile notifications show), when any action is other than
    `Action.OpenUrl` (http or https only) or `Action.Submit` (data with an `action` id).
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
    for action in _actions_in(card):
        _check_action(action)


def _actions_in(node: object) -> Iterable[Mapping[str, Any]]:
    """Every object in the card whose type is an action, wherever it sits."""
    if isinstance(node, Mapping):
        kind = node.get("type")
        if isinstance(kind, str) and kind.startswith("Action."):
            yield node
            if kind == "Action.Submit":
                return  # its data is the caller's, not card structure
        for value in node.values():
            yield from _actions_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from _actions_in(value)


def _check_action(action: Mapping[str, Any]) -> None:
    kind = action.get("type")
    if kind not in ALLOWED_ACTIONS:
        raise CardError(f"{kind} is not allowed; use one of {sorted(ALLOWED_ACTIONS)}")
    if kind == "Action.OpenUrl":
        url = action.get("url")
        if not isinstance(url, str) or urlsplit(url).scheme.lower() not in ("http", "https"):
            raise CardError(f"Action.OpenUrl needs an http(s) url, got {url!r}")
    else:
        data = action.get("data")
        if not isinstance(data, Mapping) or not isinstance(data.get("action"), str):
            raise CardError("Action.Submit needs data with an 'action' id string")


# --- the digest ---------------------------------------------------------------------------


def digest_view(
    insights: CallInsights,
    tz: ZoneInfo,
    sections: Sequence[str] | None = None,
    actions: Sequence[SubmitAction] = (),
    call_key: str | None = None,
) -> dict[str, Any]:
    """The plain display values `digest.card.json.j2` needs for one call.

    `sections` picks which of `DIGEST_SECTIONS` appear and in what order (default: all).
    Sections without content are left out, never shown empty. Times are shown in `tz`.
    Text from the call is passed through unchanged; only our own labels are made here.
    A sentiment that is not a short plain word is left out, because fact values render
    markdown. With `call_key`, the digest gets its buttons (`digest_buttons`) before the
    caller's `actions`.
    """
    chosen = _chosen_sections(sections)
    title = _call_title(insights)
    duration = _call_duration(insights)
    score = _call_score(insights)
    facts = [{"title": "AI score", "value": score}] if score else []
    sentiment = _plain_label(insights.sentiment)
    if sentiment:
        facts.append({"title": "Sentiment", "value": sentiment})

    builders: dict[str, Callable[[], list[dict[str, Any]]]] = {
        "summary": lambda: [{"text": s.text} for s in insights.summary],
        "bulleted_summary": lambda: [{"text": text} for text in insights.bulleted_summary],
        "next_steps": lambda: [
            {"text": s.text, "owner": insights.speaker_name(s.speaker_id) or UNASSIGNED}
            for s in insights.next_steps
        ],
        "highlights": lambda: [
            {
                "text": h.text,
                "timestamp": format_offset(h.start) if h.start is not None else None,
                "speaker": insights.speaker_name(h.speaker_id),
            }
            for h in insights.highlights
        ],
        "call_notes": lambda: _note_lines(insights.call_notes),
    }
    view_sections = []
    for key in chosen:
        items = builders[key]()
        if items:
            view_sections.append({"key": key, "heading": SECTION_LABELS[key], "items": items})

    fallback = _short_line(title)
    fallback_text = ", ".join(
        [fallback, *([duration] if duration else []), *([f"AI score {score}"] if score else [])]
    )
    return {
        "title": title,
        "direction": _direction_label(insights.call_direction),
        "started": _call_start(insights, tz),
        "duration": duration,
        "participants": [
            {
                "name": speaker.display_name or UNKNOWN_PARTICIPANT,
                "external": insights.is_external_speaker(speaker),
            }
            for speaker in insights.speakers
        ],
        "facts": facts,
        "sections": view_sections,
        "ringsense_url": insights.ringsense_url,
        "actions": [
            action.as_view()
            for action in (*(digest_buttons(insights, call_key) if call_key else ()), *actions)
        ],
        "fallback_text": fallback_text,
    }


def digest_buttons(insights: CallInsights, call_key: str) -> list[SubmitAction]:
    """The digest's own buttons: "Show transcript" (only when there is a transcript), then
    "Helpful" and "Not helpful". Each sends `callKey`; feedback also sends its `verdict`."""
    if not call_key.strip():
        raise CardError("digest buttons need a call key")
    key = {DATA_CALL_KEY: call_key}
    buttons = (
        [SubmitAction("Show transcript", ACTION_DIGEST_TRANSCRIPT, key)]
        if insights.transcript
        else []
    )
    buttons += [
        SubmitAction("Helpful", ACTION_DIGEST_FEEDBACK, {**key, DATA_VERDICT: VERDICT_HELPFUL}),
        SubmitAction(
            "Not helpful", ACTION_DIGEST_FEEDBACK, {**key, DATA_VERDICT: VERDICT_NOT_HELPFUL}
        ),
    ]
    return buttons


def render_digest(
    renderer: CardRenderer,
    insights: CallInsights,
    tz: ZoneInfo,
    sections: Sequence[str] | None = None,
    call_key: str | None = None,
) -> dict[str, Any]:
    """The digest card for one call, ready to post; with `call_key`, with its buttons."""
    return renderer.render(
        DIGEST_TEMPLATE, **digest_view(insights, tz, sections, call_key=call_key)
    )


# --- the other cards ----------------------------------------------------------------------


def welcome_view(*, bot_name: str, chat_kind: str) -> dict[str, Any]:
    """The values `welcome.card.json.j2` needs: the bot's name (shown literally) and whether
    the chat is a "direct" one (say `optin`) or a "group" (mention the bot: `channel add`)."""
    if chat_kind not in CHAT_KINDS:
        raise ValueError(f"chat_kind must be one of {CHAT_KINDS}, got {chat_kind!r}")
    name = bot_name if bot_name.strip() else DEFAULT_BOT_NAME
    return {
        "bot_name": name,
        "chat_kind": chat_kind,
        "fallback_text": f"{_short_line(name)}: digests of your calls analysed by RingSense",
    }


def welcome_card(renderer: CardRenderer, *, bot_name: str, chat_kind: str) -> dict[str, Any]:
    """What the bot says when it joins a chat: what it does, how to start, `help`."""
    return renderer.render(WELCOME_TEMPLATE, **welcome_view(bot_name=bot_name, chat_kind=chat_kind))


def calls_view(
    calls: Sequence[tuple[str, CallInsights]], tz: ZoneInfo, *, heading: str
) -> dict[str, Any]:
    """The values `calls.card.json.j2` needs: one row per (call key, insights), in the order
    given, each with its title, a line of start time, duration and AI score, and an "Open"
    button (`digest.open` with the callKey)."""
    rows = []
    for key, insights in calls:
        score = _call_score(insights)
        details = [
            _call_start(insights, tz),
            _call_duration(insights),
            f"AI score {score}" if score else None,
        ]
        rows.append(
            {
                "title": _call_title(insights),
                "details": " · ".join(d for d in details if d),
                "open": SubmitAction("Open", ACTION_DIGEST_OPEN, {DATA_CALL_KEY: key}).as_view(),
            }
        )
    count = f"{len(rows)} call{'' if len(rows) == 1 else 's'}" if rows else NO_CALLS
    return {
        "heading": heading,
        "calls": rows,
        "empty_text": NO_CALLS,
        "fallback_text": f"{_short_line(heading)}: {count}",
    }


def calls_card(
    renderer: CardRenderer,
    calls: Sequence[tuple[str, CallInsights]],
    tz: ZoneInfo,
    *,
    heading: str,
) -> dict[str, Any]:
    """A list of calls (newest first, as the caller orders them), each with an "Open"
    button; with no calls, a line saying there are none yet."""
    return renderer.render(CALLS_TEMPLATE, **calls_view(calls, tz, heading=heading))


def transcript_view(
    insights: CallInsights, tz: ZoneInfo, *, max_lines: int = DEFAULT_TRANSCRIPT_LINES
) -> dict[str, Any]:
    """The values `transcript.card.json.j2` needs: the first `max_lines` utterances with
    their offset and speaker, and a note when there are more."""
    if max_lines < 1:
        raise ValueError(f"max_lines must be at least 1, got {max_lines}")
    title = _call_title(insights)
    total = len(insights.transcript)
    details = ["Transcript", _call_start(insights, tz), _call_duration(insights)]
    return {
        "title": title,
        "details": " · ".join(d for d in details if d),
        "lines": [
            {
                "timestamp": format_offset(u.start) if u.start is not None else None,
                "speaker": insights.speaker_name(u.speaker_id),
                "text": u.text,
            }
            for u in insights.transcript[:max_lines]
        ],
        "empty_text": NO_TRANSCRIPT,
        "truncated": (
            f"Showing the first {max_lines} of {total} lines. "
            "Open the call in RingSense for the rest."
            if total > max_lines
            else None
        ),
        "ringsense_url": insights.ringsense_url,
        "fallback_text": f"Transcript: {_short_line(title)}",
    }


def transcript_card(
    renderer: CardRenderer,
    insights: CallInsights,
    tz: ZoneInfo,
    *,
    max_lines: int = DEFAULT_TRANSCRIPT_LINES,
) -> dict[str, Any]:
    """A call's transcript, one line per utterance ("mm:ss Speaker: text"), at most
    `max_lines` of them; "Open in RingSense" when the call has a link."""
    return renderer.render(
        TRANSCRIPT_TEMPLATE, **transcript_view(insights, tz, max_lines=max_lines)
    )


def notice_view(text: str) -> dict[str, Any]:
    """The values `notice.card.json.j2` needs: one short text, shown literally."""
    if not text.strip():
        raise CardError("a notice needs some text")
    return {"text": text, "fallback_text": _short_line(text)}


def message_dialog(renderer: CardRenderer, title: str, text: str) -> dict[str, Any]:
    """A RingCentral dialog response (the answer to a button_submit) with a short notice:
    `{"type": "dialog", "dialog": {"title", "size": "small", "card": <AdaptiveCard>}}`."""
    card = renderer.render(NOTICE_TEMPLATE, **notice_view(text))
    return {"type": "dialog", "dialog": {"title": title, "size": "small", "card": card}}


def feedback_dialog(renderer: CardRenderer, verdict: str) -> dict[str, Any]:
    """The dialog that thanks someone for pressing "Helpful" or "Not helpful"."""
    if verdict not in FEEDBACK_TEXTS:
        raise ValueError(f"verdict must be one of {FEEDBACK_VERDICTS}, got {verdict!r}")
    return message_dialog(renderer, FEEDBACK_TITLE, FEEDBACK_TEXTS[verdict])


def format_duration(seconds: float) -> str:
    """A call length as `m:ss`, or `h:mm:ss` from an hour on (whole seconds, rounded down)."""
    total = max(int(seconds), 0)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


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


def _chosen_sections(sections: Sequence[str] | None) -> list[str]:
    if sections is None:
        return list(DIGEST_SECTIONS)
    unknown = [s for s in sections if s not in DIGEST_SECTIONS]
    if unknown:
        raise ValueError(f"unknown digest sections {unknown}; choose from {DIGEST_SECTIONS}")
    return list(dict.fromkeys(sections))


def _direction_label(direction: str | None) -> str:
    if direction is not None and direction.lower() == "inbound":
        return "Inbound call"
    if direction is not None and direction.lower() == "outbound":
        return "Outbound call"
    return "Call"


def _plain_label(value: str | None) -> str | None:
    """A short word-like label (letters, spaces, hyphens), safe where markdown renders."""
    if value is None:
        return None
    label = value.strip()
    if not label or len(label) > _SENTIMENT_MAX:
        return None
    if not all(ch.isalpha() or ch in " -" for ch in label):
        return None
    return label


def _note_lines(notes: Iterable[str]) -> list[dict[str, Any]]:
    """Call notes split into lines (a TextRun does not break lines reliably everywhere);
    `new_paragraph` marks the first line of a note and lines after a blank one."""
    lines: list[dict[str, Any]] = []
    for note in notes:
        new_paragraph = True
        for line in note.splitlines():
            if not line.strip():
                new_paragraph = True
                continue
            lines.append({"text": line, "new_paragraph": new_paragraph and bool(lines)})
            new_paragraph = False
    return lines


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _short_line(text: str) -> str:
    """One line of at most `_FALLBACK_TITLE_MAX` characters, for fallback texts."""
    line = _one_line(text)
    if len(line) > _FALLBACK_TITLE_MAX:
        line = line[: _FALLBACK_TITLE_MAX - 1].rstrip() + "…"
    return line


def _call_title(insights: CallInsights) -> str:
    return insights.title if insights.title.strip() else UNTITLED_CALL


def _call_start(insights: CallInsights, tz: ZoneInfo) -> str | None:
    if insights.recording_start_time is None:
        return None
    return format_start_time(insights.recording_start_time, tz)


def _call_duration(insights: CallInsights) -> str | None:
    if insights.recording_duration_ms is None:
        return None
    return format_duration(insights.recording_duration_ms / 1000)


def _call_score(insights: CallInsights) -> str | None:
    return f"{insights.ai_score:g}/10" if insights.ai_score is not None else None


# --- plain text, for the terminal ---------------------------------------------------------


def card_as_text(card: Mapping[str, Any]) -> str:
    """A readable plain-text rendering of a card, for the `demo` command and for tests.

    Elements with a separator start a new paragraph (our section headings have one). Inputs
    show their current values (`[x] Opted in`, `Minimum AI score: 6`, a choice set's picks
    and its choices), an ActionSet its buttons on one line. Control characters from call
    text are shown escaped so they cannot drive the terminal.
    """
    lines: list[str] = []
    _element_lines(card.get("body", []), lines)
    actions = [_action_text(a) for a in card.get("actions", []) if isinstance(a, Mapping)]
    if actions:
        lines.append("")
        lines.extend(actions)
    return "\n".join(_safe_for_terminal(line) for line in lines).strip("\n") + "\n"


def _element_lines(elements: object, lines: list[str]) -> None:
    if not isinstance(elements, list):
        return
    for element in elements:
        if not isinstance(element, Mapping) or element.get("isVisible") is False:
            continue
        if element.get("separator") is True and lines and lines[-1] != "":
            lines.append("")
        kind = element.get("type")
        if kind == "TextBlock":
            lines.append(str(element.get("text", "")))
        elif kind == "RichTextBlock":
            lines.append("".join(_inline_text(i) for i in element.get("inlines", [])))
        elif kind == "FactSet":
            for fact in element.get("facts", []):
                if isinstance(fact, Mapping):
                    lines.append(f"{fact.get('title', '')}: {fact.get('value', '')}")
        elif kind == "ColumnSet":
            _column_set_lines(element, lines)
        elif kind == "Container":
            _element_lines(element.get("items"), lines)
        elif kind == "ActionSet":
            lines.append("  ".join(_action_text(a) for a in element.get("actions", [])))
        elif kind == "Image" and element.get("altText"):
            lines.append(f"[image: {element['altText']}]")
        elif isinstance(kind, str) and kind.startswith("Input."):
            lines.append(_input_text(element))


def _input_text(element: Mapping[str, Any]) -> str:
    """An input as one line: `[x] Title` for a toggle, `Label: value` for the rest, with the
    choices of a choice set and the placeholder of an empty input."""
    kind = element.get("type")
    label = str(element.get("label") or element.get("id") or kind)
    value = element.get("value")
    if kind == "Input.Toggle":
        checked = value is not None and str(value) == str(element.get("valueOn", "true"))
        toggle = f"[{'x' if checked else ' '}] {element.get('title', '')}"
        return f"{element['label']}: {toggle}" if element.get("label") else toggle
    if kind == "Input.ChoiceSet":
        choices = [c for c in element.get("choices", []) if isinstance(c, Mapping)]
        titles = {str(c.get("value")): str(c.get("title", c.get("value"))) for c in choices}
        raw = "" if value is None else str(value)
        if element.get("isMultiSelect"):
            picked = [v.strip() for v in raw.split(",") if v.strip()]
        else:
            picked = [raw] if raw else []
        shown = ", ".join(titles.get(v, v) for v in picked) or "(none)"
        return f"{label}: {shown} (choose: {', '.join(titles.values())})"
    if value is None or value == "":
        placeholder = element.get("placeholder")
        return f"{label}: (empty{f'; {placeholder}' if placeholder else ''})"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{label}: {value}"


def _column_set_lines(column_set: Mapping[str, Any], lines: list[str]) -> None:
    """Columns side by side when each is one line, else one after the other."""
    columns: list[list[str]] = []
    for column in column_set.get("columns", []):
        if isinstance(column, Mapping):
            column_lines: list[str] = []
            _element_lines(column.get("items"), column_lines)
            columns.append([line for line in column_lines if line])
    if all(len(c) <= 1 for c in columns):
        lines.append("  ".join(c[0] for c in columns if c))
    else:
        for column_lines in columns:
            lines.extend(column_lines)


def _inline_text(inline: object) -> str:
    if isinstance(inline, str):
        return inline
    if isinstance(inline, Mapping):
        return str(inline.get("text", ""))
    return ""


def _action_text(action: object) -> str:
    if not isinstance(action, Mapping):
        return ""
    title = action.get("title") or action.get("type", "action")
    url = action.get("url")
    return f"[{title}] {url}" if url else f"[{title}]"


def _safe_for_terminal(text: str) -> str:
    """Escape control and format characters (ANSI escapes, bidi overrides) from call text,
    keeping newlines, tabs and the zero-width joiner that emoji sequences need."""
    return "".join(
        ch.encode("unicode_escape").decode("ascii")
        if ch not in "\n\t\u200d" and unicodedata.category(ch) in ("Cc", "Cf")
        else ch
        for ch in text
    )


__all__ = [
    "ACTION_DIGEST_FEEDBACK",
    "ACTION_DIGEST_OPEN",
    "ACTION_DIGEST_TRANSCRIPT",
    "CALLS_TEMPLATE",
    "CARD_SCHEMA_URL",
    "CARD_VERSION",
    "CHAT_KINDS",
    "DATA_CALL_KEY",
    "DATA_VERDICT",
    "DEFAULT_TRANSCRIPT_LINES",
    "DIGEST_SECTIONS",
    "DIGEST_TEMPLATE",
    "FEEDBACK_TEXTS",
    "FEEDBACK_TITLE",
    "FEEDBACK_VERDICTS",
    "NOTICE_TEMPLATE",
    "NO_CALLS",
    "NO_TRANSCRIPT",
    "SECTION_LABELS",
    "TEMPLATES_DIR",
    "TRANSCRIPT_TEMPLATE",
    "VERDICT_HELPFUL",
    "VERDICT_NOT_HELPFUL",
    "WELCOME_TEMPLATE",
    "CardError",
    "CardRenderer",
    "SubmitAction",
    "calls_card",
    "calls_view",
    "card_as_text",
    "check_card",
    "digest_buttons",
    "digest_view",
    "feedback_dialog",
    "format_duration",
    "format_offset",
    "format_start_time",
    "message_dialog",
    "notice_view",
    "render_digest",
    "transcript_card",
    "transcript_view",
    "welcome_card",
    "welcome_view",
]
