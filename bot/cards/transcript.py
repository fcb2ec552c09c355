"""A RingSense call's transcript card."""

from __future__ import annotations

from typing import Any, Final
from zoneinfo import ZoneInfo

from bot.cards.formatting import call_duration, call_start, call_title, format_offset, short_line
from bot.cards.render import CardRenderer, fitting_card
from bot.ringsense import CallInsights

TRANSCRIPT_TEMPLATE: Final = "transcript.card.json.j2"


DEFAULT_TRANSCRIPT_LINES: Final = 80


NO_TRANSCRIPT: Final = "RingSense has no transcript for this call."


def transcript_view(
    insights: CallInsights, tz: ZoneInfo, *, max_lines: int = DEFAULT_TRANSCRIPT_LINES
) -> dict[str, Any]:
    """The values `transcript.card.json.j2` needs: the first `max_lines` utterances with
    their offset and speaker, and a note when there are more."""
    if max_lines < 1:
        raise ValueError(f"max_lines must be at least 1, got {max_lines}")
    title = call_title(insights)
    total = len(insights.transcript)
    details = ["Transcript", call_start(insights, tz), call_duration(insights)]
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
        "fallback_text": f"Transcript: {short_line(title)}",
    }


def transcript_card(
    renderer: CardRenderer,
    insights: CallInsights,
    tz: ZoneInfo,
    *,
    max_lines: int = DEFAULT_TRANSCRIPT_LINES,
) -> dict[str, Any]:
    """A call's transcript, one line per utterance ("mm:ss Speaker: text"), at most
    `max_lines` of them (fewer when they would not fit a card); "Open in RingSense" when
    the call has a link."""
    if max_lines < 1:
        raise ValueError(f"max_lines must be at least 1, got {max_lines}")
    return fitting_card(
        lambda shown: renderer.render(
            TRANSCRIPT_TEMPLATE, **transcript_view(insights, tz, max_lines=shown)
        ),
        min(max_lines, max(1, len(insights.transcript))),
    )
