"""RingSense call notes (markdown) as blocks a card can show without rendering markdown.

RingSense writes its call notes in markdown ("## Call notes", "**Attendees:** …", lists).
Shown as it is, a person reads the syntax; handed to a markdown renderer, the call's text
could become links, mentions or formatting it never had. So the notes are parsed here with
markdown-it-py (the CommonMark reference parser's Python port, well kept, HTML off) and
only their structure is kept: headings become bold lines, bullet and numbered lists become
lists (with their nesting), bold and italic stay bold and italic, and code stays
monospaced. Everything else (links, images, `![:Person](…)` mentions, raw HTML) is shown as
the literal text that was written. The result goes into `TextRun`s, which Adaptive Cards
never read as markdown, and `CardRenderer` quotes every shown text on top of that.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from markdown_it import MarkdownIt
from markdown_it.token import Token

#: Notes longer than this (blocks or characters) are collapsed behind a "Show" button.
NOTES_VISIBLE_BLOCKS: Final = 8
NOTES_VISIBLE_CHARS: Final = 600
BULLET: Final = "\u2022"
#: One indentation step of a nested list item (em spaces survive every renderer's trimming
#: of leading whitespace better than ordinary spaces).
_INDENT: Final = "\u2003\u2003"

_PARSER: Final = MarkdownIt("commonmark", {"html": False})


@dataclass(slots=True)
class NoteRun:
    """A piece of text with the emphasis the notes gave it."""

    text: str
    bold: bool = False
    italic: bool = False
    code: bool = False

    def as_view(self) -> dict[str, Any]:
        return {"text": self.text, "bold": self.bold, "italic": self.italic, "code": self.code}


@dataclass(slots=True)
class NoteBlock:
    """One line of the notes as shown: a heading, a paragraph line or a list item line.

    `marker` is the bullet or number of a list item's first line ("•", "2."); `depth` how
    deeply the line is nested in lists.
    """

    kind: str
    runs: list[NoteRun] = field(default_factory=list)
    marker: str | None = None
    depth: int = 0
    first_of_paragraph: bool = True

    @property
    def text(self) -> str:
        return "".join(run.text for run in self.runs)

    def as_view(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "indent": _INDENT * self.depth,
            "marker": f"{self.marker} " if self.marker else None,
            "runs": [run.as_view() for run in self.runs if run.text],
            "new_paragraph": self.first_of_paragraph,
        }


def note_blocks(notes: Iterable[str]) -> list[NoteBlock]:
    """Every note's markdown as display blocks, in order; blank results are dropped."""
    blocks: list[NoteBlock] = []
    for note in notes:
        blocks.extend(_blocks_of(_PARSER.parse(note)))
    return [block for block in blocks if block.text.strip()]


def notes_are_long(blocks: Sequence[NoteBlock]) -> bool:
    """Whether the notes would push the rest of the card out of sight on a phone."""
    return (
        len(blocks) > NOTES_VISIBLE_BLOCKS
        or sum(len(block.text) for block in blocks) > NOTES_VISIBLE_CHARS
    )


def _blocks_of(tokens: Sequence[Token]) -> list[NoteBlock]:
    """Walk markdown-it's flat token stream, keeping a stack of the lists we are in."""
    blocks: list[NoteBlock] = []
    lists: list[str] = []  # "bullet" or "ordered", innermost last
    pending_marker: str | None = None
    heading = False
    for token in tokens:
        kind = token.type
        if kind in ("bullet_list_open", "ordered_list_open"):
            lists.append("bullet" if kind == "bullet_list_open" else "ordered")
        elif kind in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
        elif kind == "list_item_open":
            pending_marker = f"{token.info}{token.markup}" if lists[-1] == "ordered" else BULLET
        elif kind == "heading_open":
            heading = True
        elif kind == "heading_close":
            heading = False
        elif kind == "inline":
            depth = max(len(lists) - 1, 0)
            if lists and pending_marker is None:
                depth += 1  # a later paragraph of a list item lines up with its text
            lines = _inline_lines(token.children or [], bold=heading)
            for index, runs in enumerate(lines):
                blocks.append(
                    NoteBlock(
                        kind="heading" if heading else "item" if lists else "paragraph",
                        runs=runs,
                        marker=pending_marker if index == 0 else None,
                        depth=depth + (1 if index and pending_marker else 0),
                        first_of_paragraph=index == 0,
                    )
                )
            pending_marker = None
        elif kind in ("fence", "code_block"):
            for index, line in enumerate(token.content.rstrip("\n").splitlines()):
                blocks.append(
                    NoteBlock(
                        kind="code",
                        runs=[NoteRun(line, code=True)],
                        depth=len(lists),
                        first_of_paragraph=index == 0,
                    )
                )
    return blocks


def _inline_lines(children: Sequence[Token], *, bold: bool) -> list[list[NoteRun]]:
    """An inline token's children as lines of runs. A line break in the notes stays a line
    break (RingSense writes "Date: …" and "Attendees: …" on lines of their own)."""
    lines: list[list[NoteRun]] = [[]]
    strong = 1 if bold else 0
    emphasis = 0
    links: list[str] = []
    for child in children:
        kind = child.type
        if kind == "link_open":
            links.append(str(child.attrGet("href") or ""))
            lines[-1].append(NoteRun("[", bold=strong > 0, italic=emphasis > 0))
        elif kind == "link_close":
            href = links.pop() if links else ""
            lines[-1].append(NoteRun(f"]({href})", bold=strong > 0, italic=emphasis > 0))
        elif kind == "strong_open":
            strong += 1
        elif kind == "strong_close":
            strong -= 1
        elif kind == "em_open":
            emphasis += 1
        elif kind == "em_close":
            emphasis -= 1
        elif kind in ("softbreak", "hardbreak"):
            lines.append([])
        elif kind == "code_inline":
            lines[-1].append(NoteRun(child.content, code=True, bold=strong > 0))
        else:
            text = _literal(child)
            if text:
                lines[-1].append(NoteRun(text, bold=strong > 0, italic=emphasis > 0))
    return [line for line in lines if any(run.text.strip() for run in line)]


def _literal(token: Token) -> str:
    """What was written, for everything that is not structure or emphasis: an image (a
    RingCentral mention has an image's syntax) is shown as its markdown source."""
    if token.type == "image":
        return f"![{token.content}]({token.attrGet('src') or ''})"
    return token.content


__all__ = [
    "NOTES_VISIBLE_BLOCKS",
    "NOTES_VISIBLE_CHARS",
    "NoteBlock",
    "NoteRun",
    "note_blocks",
    "notes_are_long",
]
