"""Cards as plain text, for the terminal (`demo`) and for tests."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any

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
            lines.append(_rich_text(element.get("inlines", [])))
        elif kind == "FactSet":
            for fact in element.get("facts", []):
                if isinstance(fact, Mapping):
                    lines.append(f"{fact.get('title', '')}: {fact.get('value', '')}")
        elif kind == "ColumnSet":
            _column_set_lines(element, lines)
        elif kind == "Container" and _table_rows(element):
            _table_lines(_table_rows(element), lines)
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


def _table_rows(container: Mapping[str, Any]) -> list[list[str]]:
    """A Container of ColumnSets whose cells are one line each, with the same number of
    columns, as rows of cell texts (a table, like the analysis card's speakers); else []."""
    items = [
        item
        for item in container.get("items", [])
        if isinstance(item, Mapping) and item.get("isVisible") is not False
    ]
    if not items or any(item.get("type") != "ColumnSet" for item in items):
        return []
    rows = []
    for column_set in items:
        row = []
        for column in column_set.get("columns", []):
            cell: list[str] = []
            if isinstance(column, Mapping):
                _element_lines(column.get("items"), cell)
            cell = [line for line in cell if line]
            if len(cell) > 1:
                return []
            row.append(cell[0] if cell else "")
        rows.append(row)
    if len({len(row) for row in rows}) != 1 or len(rows[0]) < 2:
        return []
    return rows


def _table_lines(rows: list[list[str]], lines: list[str]) -> None:
    """Rows with their columns lined up, two spaces apart."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        lines.append(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def _rich_text(inlines: object) -> str:
    """A RichTextBlock's runs on one line (emphasis is the card's business, not the text's:
    a `**` here would be indistinguishable from call text that says `**`)."""
    runs = inlines if isinstance(inlines, list) else []
    return "".join(_inline_text(run) for run in runs)


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
    if url:
        return f"[{title}] {url}"
    shown = action.get("card")
    if action.get("type") == "Action.ShowCard" and isinstance(shown, Mapping):
        inside = [_action_text(a) for a in shown.get("actions", []) if isinstance(a, Mapping)]
        return f"[{title} \u25be] " + " ".join(inside) if inside else f"[{title} \u25be]"
    return f"[{title}]"


def _safe_for_terminal(text: str) -> str:
    """Escape control and format characters (ANSI escapes, bidi overrides) from call text,
    keeping newlines, tabs and the zero-width joiner that emoji sequences need."""
    return "".join(
        ch.encode("unicode_escape").decode("ascii")
        if ch not in "\n\t\u200d" and unicodedata.category(ch) in ("Cc", "Cf")
        else ch
        for ch in text
    )
