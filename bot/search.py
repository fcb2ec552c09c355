"""`find`: what of a call is searchable, how a person's words become a safe FTS5 query, and
the card of hits.

Searchable: the title, the summary, the key points, the next steps, the highlights and the
transcript, one line each (a line is what a hit shows, with its time in the call when
RingSense gave one in seconds). A person's words are reduced to word characters and each is
quoted, so nothing they type is FTS5 syntax (no `OR`, `NEAR`, `*`, column filters).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from bot.cards import (
    ACTION_DIGEST_OPEN,
    DATA_CALL_KEY,
    CardRenderer,
    SubmitAction,
    format_offset,
    format_start_time,
)
from bot.cards.formatting import UNTITLED_CALL, short_line
from bot.ringsense import CallInsights
from bot.storage import SearchHit, SearchLine

FIND_TEMPLATE: Final = "find.card.json.j2"

MAX_CALLS: Final = 10
MAX_WORDS: Final = 8
MAX_WORD_CHARS: Final = 40
LINE_CHARS: Final = 280
"""A hit shows at most this much of its line (a transcript line can be a long monologue)."""

KIND_LABELS: Final = {
    "title": "Title",
    "summary": "Summary",
    "key_point": "Key point",
    "next_step": "Next step",
    "highlight": "Highlight",
    "transcript": "Transcript",
}

_WORD = re.compile(r"\w+", re.UNICODE)


def match_expression(words: str) -> str | None:
    """An FTS5 query that finds lines holding every word (quoted, so never syntax); None
    when there is no word to look for."""
    tokens = [t[:MAX_WORD_CHARS] for t in _WORD.findall(words)][:MAX_WORDS]
    if not tokens:
        return None
    return " ".join(f'"{token}"' for token in tokens)


def search_lines(insights: CallInsights) -> list[SearchLine]:
    """Everything `find` may match in a call, one line per piece of text."""
    lines: list[SearchLine] = []
    if insights.title.strip():
        lines.append(SearchLine("title", 0, None, None, insights.title))
    for n, paragraph in enumerate(insights.summary):
        # Summary `start`/`end` are paragraph numbers, not seconds: no time shown.
        lines.append(SearchLine("summary", n, None, None, paragraph.text))
    for n, point in enumerate(insights.bulleted_summary):
        lines.append(SearchLine("key_point", n, None, None, point))
    for kind, texts in (("next_step", insights.next_steps), ("highlight", insights.highlights)):
        for n, timed in enumerate(texts):
            lines.append(
                SearchLine(
                    kind, n, timed.start, insights.speaker_name(timed.speaker_id), timed.text
                )
            )
    for n, utterance in enumerate(insights.transcript):
        lines.append(
            SearchLine(
                "transcript",
                n,
                utterance.start,
                insights.speaker_name(utterance.speaker_id),
                utterance.text,
            )
        )
    return [line for line in lines if line.text.strip()]


def find_view(
    hits: Sequence[tuple[SearchHit, CallInsights]],
    tz: ZoneInfo,
    *,
    heading: str,
) -> dict[str, Any]:
    """The values `find.card.json.j2` needs: one row per hit (its call's title and start,
    what kind of line matched and when in the call, who said it, the line) with an Open
    button for the call's digest."""
    rows = []
    for hit, insights in hits:
        line = hit.line
        where = [KIND_LABELS.get(line.kind, line.kind)]
        if line.offset_s is not None:
            where.append(f"at {format_offset(line.offset_s)}")
        start = _start(insights.recording_start_time, tz)
        text = line.text if len(line.text) <= LINE_CHARS else line.text[: LINE_CHARS - 1] + "…"
        rows.append(
            {
                "title": short_line(insights.title) or UNTITLED_CALL,
                "details": " · ".join([*([start] if start else []), " ".join(where)]),
                "speaker": line.speaker or "",
                "text": text,
                "open": SubmitAction(
                    "Open", ACTION_DIGEST_OPEN, {DATA_CALL_KEY: hit.call_key}
                ).as_view(),
            }
        )
    return {"heading": heading, "hits": rows, "fallback_text": heading}


def find_card(
    renderer: CardRenderer,
    hits: Sequence[tuple[SearchHit, CallInsights]],
    tz: ZoneInfo,
    *,
    heading: str,
) -> dict[str, Any]:
    return renderer.render(FIND_TEMPLATE, **find_view(hits, tz, heading=heading))


def _start(moment: datetime | None, tz: ZoneInfo) -> str | None:
    return format_start_time(moment, tz) if moment is not None else None
