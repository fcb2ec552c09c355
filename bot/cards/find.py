"""The card of `find`'s hits (`find.card.json.j2`): each hit's call, what kind of line
matched and when in the call, who said it, the line itself (cut to `LINE_CHARS`), and an
Open button for the call's digest. What is searchable and how a person's words become a
query is `bot.search`'s."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo

from bot.cards.digest import ACTION_DIGEST_OPEN, DATA_CALL_KEY
from bot.cards.formatting import UNTITLED_CALL, format_offset, format_start_time, short_line
from bot.cards.render import CardRenderer, SubmitAction
from bot.ringsense import CallInsights

if TYPE_CHECKING:
    from bot.storage import SearchHit

FIND_TEMPLATE: Final = "find.card.json.j2"

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
