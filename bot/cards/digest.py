"""The digest card: one RingSense call, for the people and channels that opted in."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final
from zoneinfo import ZoneInfo

from bot.cards.call_notes import NoteBlock, note_blocks, notes_are_long
from bot.cards.formatting import (
    UNKNOWN_PARTICIPANT,
    call_duration,
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
#: Buttons shown without pressing "More" (four were cut to "Open in …", "H…" at 340 px).
VISIBLE_BUTTONS: Final = 2
SHOW_TRANSCRIPT: Final = "Show transcript"


#: The digest's sections in their default order; user settings choose a subset and order.
#: Ordered by use: what happened, what to do next, then the detail.
DIGEST_SECTIONS: Final[tuple[str, ...]] = (
    "summary",
    "next_steps",
    "bulleted_summary",
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
#: "Helpful" / "Not helpful" on a digest (behind "More"); data: callKey, verdict.
ACTION_DIGEST_FEEDBACK: Final = "digest.feedback"
#: "Open" on a row of the recent calls card; data: callKey.
ACTION_DIGEST_OPEN: Final = "digest.open"

#: Keys of the data our buttons send beside `action`.
DATA_CALL_KEY: Final = "callKey"
DATA_VERDICT: Final = "verdict"
VERDICT_HELPFUL: Final = "helpful"
VERDICT_NOT_HELPFUL: Final = "not_helpful"
FEEDBACK_VERDICTS: Final = (VERDICT_HELPFUL, VERDICT_NOT_HELPFUL)


#: How the digest says what the person who reads it thought of it, after a press.
FEEDBACK_RESULTS: Final[Mapping[str, str]] = {
    VERDICT_HELPFUL: "You found this helpful",
    VERDICT_NOT_HELPFUL: "You found this not helpful",
}
#: The id of the collapsed call notes container, the target of "Show call notes".
NOTES_CONTAINER_ID: Final = "callNotes"
#: Score from which the AI score badge is green, and below which it is red.
GOOD_SCORE: Final = 7.0
POOR_SCORE: Final = 4.0


# --- the digest ---------------------------------------------------------------------------


def digest_view(
    insights: CallInsights,
    tz: ZoneInfo,
    sections: Sequence[str] | None = None,
    actions: Sequence[SubmitAction] = (),
    call_key: str | None = None,
    feedback: str | None = None,
) -> dict[str, Any]:
    """The plain display values `digest.card.json.j2` needs for one call.

    Ordered by use: the title, one line of facts (direction, start, duration with units,
    sentiment) beside the AI score badge, who took part, then the sections. `sections`
    picks which of `DIGEST_SECTIONS` appear and in what order (default: all); a section
    without content is left out, never shown empty; the summary needs no heading when it
    comes first. Next steps start with their owner (bold, from the call's speakers); call
    notes keep their markdown structure (`bot.cards.call_notes`) and are collapsed behind
    "Show call notes" when long. Text from the call is passed through unchanged and goes
    into `TextRun`s only; bold is a run's weight, never markdown around call text.

    With `call_key`, the digest gets its buttons (`digest_buttons`): at most two visible
    (Open in RingSense, Show transcript), the rest (feedback, then the caller's `actions`)
    behind "More". `feedback` is a line saying what the reader thought of the digest
    (`feedback_result`), shown in place of the question.
    """
    chosen = _chosen_sections(sections)
    title = call_title(insights)
    duration = call_duration(insights)
    score = insights.ai_score
    sentiment = plain_label(insights.sentiment)
    facts = [
        direction_label(insights.call_direction),
        call_start(insights, tz),
        duration,
        f"{sentiment.capitalize()} sentiment" if sentiment else None,
    ]

    # Parsed once (markdown): both the section and whether it is folded need them.
    shown_notes = _shown_notes(insights.call_notes) if "call_notes" in chosen else []
    builders: dict[str, Callable[[], list[dict[str, Any]]]] = {
        "summary": lambda: [{"text": s.text} for s in insights.summary],
        "bulleted_summary": lambda: [{"text": text} for text in insights.bulleted_summary],
        "next_steps": lambda: [
            {"text": s.text, "owner": insights.speaker_name(s.speaker_id)}
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
        "call_notes": lambda: [block.as_view() for block in shown_notes],
    }
    view_sections: list[dict[str, Any]] = []
    for key in chosen:
        items = builders[key]()
        if items:
            heading = None if key == "summary" and not view_sections else SECTION_LABELS[key]
            view_sections.append({"key": key, "heading": heading, "items": items})
    notes = next((s for s in view_sections if s["key"] == "call_notes"), None)
    collapsed = notes is not None and notes_are_long(shown_notes)

    fallback = short_line(title)
    score_text = f"{score:g}/10" if score is not None else None
    fallback_text = ", ".join(
        [
            fallback,
            *([duration] if duration else []),
            *([f"AI score {score_text}"] if score_text else []),
        ]
    )
    visible, more = _split_buttons(insights, call_key, actions)
    return {
        "title": title,
        "facts_line": " \u00b7 ".join(fact for fact in facts if fact),
        "score": (
            {"text": f"AI score {score_text}", "style": _score_style(score)}
            if score is not None and score_text
            else None
        ),
        "participants": [
            {
                "name": speaker.display_name or UNKNOWN_PARTICIPANT,
                "external": insights.is_external_speaker(speaker),
            }
            for speaker in insights.speakers
        ],
        "sections": view_sections,
        "notes_collapsed": collapsed,
        "notes_container_id": NOTES_CONTAINER_ID,
        "feedback": feedback,
        "ringsense_url": insights.ringsense_url,
        "actions": [action.as_view() for action in visible],
        "more_actions": [action.as_view() for action in more],
        "fallback_text": fallback_text,
    }


def digest_buttons(insights: CallInsights, call_key: str) -> list[SubmitAction]:
    """The digest's own buttons: "Show transcript" (only when there is a transcript), then
    "Helpful" and "Not helpful". Each sends `callKey`; feedback also sends its `verdict`."""
    if not call_key.strip():
        raise CardError("digest buttons need a call key")
    key = {DATA_CALL_KEY: call_key}
    buttons = (
        [SubmitAction(SHOW_TRANSCRIPT, ACTION_DIGEST_TRANSCRIPT, key)]
        if insights.has_transcript
        else []
    )
    buttons += [
        SubmitAction("Helpful", ACTION_DIGEST_FEEDBACK, {**key, DATA_VERDICT: VERDICT_HELPFUL}),
        SubmitAction(
            "Not helpful", ACTION_DIGEST_FEEDBACK, {**key, DATA_VERDICT: VERDICT_NOT_HELPFUL}
        ),
    ]
    return buttons


def feedback_result(verdicts: Mapping[str, str], *, reader: str | None) -> str | None:
    """The line a digest shows about feedback, from `{extension id: verdict}` of the call.

    On a card only `reader` sees (their direct chat), their own verdict: "You found this
    helpful". On a card a whole chat sees (`reader` None), how many found it helpful or
    not, never who: "2 people found this helpful · 1 did not". None before any press.
    """
    if reader is not None:
        verdict = verdicts.get(reader)
        return FEEDBACK_RESULTS.get(verdict) if verdict else None
    helpful = sum(1 for v in verdicts.values() if v == VERDICT_HELPFUL)
    not_helpful = sum(1 for v in verdicts.values() if v == VERDICT_NOT_HELPFUL)
    parts = []
    if helpful:
        parts.append(f"{_people(helpful)} found this helpful")
    if not_helpful:
        parts.append(
            f"{not_helpful} did not"
            if helpful
            else f"{_people(not_helpful)} found this not helpful"
        )
    return " \u00b7 ".join(parts) or None


def render_digest(
    renderer: CardRenderer,
    insights: CallInsights,
    tz: ZoneInfo,
    sections: Sequence[str] | None = None,
    call_key: str | None = None,
    feedback: str | None = None,
) -> dict[str, Any]:
    """The digest card for one call, ready to post; with `call_key`, with its buttons;
    with `feedback` (`feedback_result`), saying what its reader thought of it."""
    return renderer.render(
        DIGEST_TEMPLATE,
        **digest_view(insights, tz, sections, call_key=call_key, feedback=feedback),
    )


def _split_buttons(
    insights: CallInsights, call_key: str | None, actions: Sequence[SubmitAction]
) -> tuple[list[SubmitAction], list[SubmitAction]]:
    """(visible Submit buttons, buttons behind "More"): at most two buttons are visible at
    340 px before labels are cut, and "Open in RingSense" is one of them when the call
    has a link; "Show transcript" is the other."""
    buttons = [*(digest_buttons(insights, call_key) if call_key else ()), *actions]
    room = VISIBLE_BUTTONS - (1 if insights.ringsense_url else 0)
    visible = [b for b in buttons if b.action_id == ACTION_DIGEST_TRANSCRIPT][:room]
    return visible, [b for b in buttons if b not in visible]


def _people(count: int) -> str:
    return f"{count} {'person' if count == 1 else 'people'}"


def _score_style(score: float) -> str:
    """The badge's colour: a Container style every Adaptive Cards host knows."""
    if score >= GOOD_SCORE:
        return "good"
    if score >= POOR_SCORE:
        return "warning"
    return "attention"


def _shown_notes(notes: Sequence[str]) -> list[NoteBlock]:
    """The notes' blocks, without a first heading that only repeats our "Call notes"."""
    blocks = note_blocks(notes)
    if (
        blocks
        and blocks[0].kind == "heading"
        and blocks[0].text.strip().casefold() == SECTION_LABELS["call_notes"].casefold()
    ):
        return blocks[1:]
    return blocks


def _chosen_sections(sections: Sequence[str] | None) -> list[str]:
    if sections is None:
        return list(DIGEST_SECTIONS)
    unknown = [s for s in sections if s not in DIGEST_SECTIONS]
    if unknown:
        raise ValueError(f"unknown digest sections {unknown}; choose from {DIGEST_SECTIONS}")
    return list(dict.fromkeys(sections))
