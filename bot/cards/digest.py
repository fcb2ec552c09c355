"""The digest card: one RingSense call, for the people and channels that opted in."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final
from zoneinfo import ZoneInfo

from bot.cards.formatting import (
    UNASSIGNED,
    UNKNOWN_PARTICIPANT,
    call_duration,
    call_score,
    call_start,
    call_title,
    direction_label,
    format_offset,
    plain_label,
    short_line,
)
from bot.cards.render import CardError, CardRenderer, SubmitAction
from bot.ringsense import CallInsights

DIGEST_TEMPLATE: Final = "digest.card.json.j2"


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
    title = call_title(insights)
    duration = call_duration(insights)
    score = call_score(insights)
    facts = [{"title": "AI score", "value": score}] if score else []
    sentiment = plain_label(insights.sentiment)
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

    fallback = short_line(title)
    fallback_text = ", ".join(
        [fallback, *([duration] if duration else []), *([f"AI score {score}"] if score else [])]
    )
    return {
        "title": title,
        "direction": direction_label(insights.call_direction),
        "started": call_start(insights, tz),
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


def _chosen_sections(sections: Sequence[str] | None) -> list[str]:
    if sections is None:
        return list(DIGEST_SECTIONS)
    unknown = [s for s in sections if s not in DIGEST_SECTIONS]
    if unknown:
        raise ValueError(f"unknown digest sections {unknown}; choose from {DIGEST_SECTIONS}")
    return list(dict.fromkeys(sections))


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
