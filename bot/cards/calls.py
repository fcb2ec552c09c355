"""The recent calls card: one row per call with an "Open" button."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final
from zoneinfo import ZoneInfo

from bot.cards.digest import ACTION_DIGEST_OPEN, DATA_CALL_KEY
from bot.cards.formatting import call_duration, call_score, call_start, call_title, short_line
from bot.cards.render import CardRenderer, SubmitAction
from bot.ringsense import CallInsights

CALLS_TEMPLATE: Final = "calls.card.json.j2"


NO_CALLS: Final = "No analysed calls yet."


def calls_view(
    calls: Sequence[tuple[str, CallInsights]], tz: ZoneInfo, *, heading: str
) -> dict[str, Any]:
    """The values `calls.card.json.j2` needs: one row per (call key, insights), in the order
    given, each with its title, a line of start time, duration and AI score, and an "Open"
    button (`digest.open` with the callKey)."""
    rows = []
    for key, insights in calls:
        score = call_score(insights)
        details = [
            call_start(insights, tz),
            call_duration(insights),
            f"AI score {score}" if score else None,
        ]
        rows.append(
            {
                "title": call_title(insights),
                "details": " · ".join(d for d in details if d),
                "open": SubmitAction("Open", ACTION_DIGEST_OPEN, {DATA_CALL_KEY: key}).as_view(),
            }
        )
    count = f"{len(rows)} call{'' if len(rows) == 1 else 's'}" if rows else NO_CALLS
    return {
        "heading": heading,
        "calls": rows,
        "empty_text": NO_CALLS,
        "fallback_text": f"{short_line(heading)}: {count}",
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
