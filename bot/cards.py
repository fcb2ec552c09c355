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

from bot.analysis import (
    ANALYSIS_STATES,
    STATE_EXPIRED,
    STATE_FAILED,
    STATE_PENDING,
    STATE_SUCCESS,
    SUMMARY_EXTRACTIVE,
    AnalysisState,
    InteractionAnalysis,
    JobSummary,
    SpeakerStats,
    Utterance,
    contains_address_or_secret,
)
from bot.quoting import plain_text, quote_for_chat
from bot.ringcx_model import (
    PARTICIPANT_AGENT,
    PARTICIPANT_CONTACT,
    Segment,
    Transcript,
    TranscriptLine,
)
from bot.ringsense import CallInsights

TEMPLATES_DIR: Final = Path(__file__).resolve().parent.parent / "templates"
TEMPLATE_SUFFIX: Final = ".card.json.j2"
DIGEST_TEMPLATE: Final = "digest.card.json.j2"
WELCOME_TEMPLATE: Final = "welcome.card.json.j2"
CALLS_TEMPLATE: Final = "calls.card.json.j2"
TRANSCRIPT_TEMPLATE: Final = "transcript.card.json.j2"
NOTICE_TEMPLATE: Final = "notice.card.json.j2"
ANALYSIS_TEMPLATE: Final = "analysis.card.json.j2"
UTTERANCES_TEMPLATE: Final = "utterances.card.json.j2"
JOBS_TEMPLATE: Final = "jobs.card.json.j2"
RINGCX_TRANSCRIPT_TEMPLATE: Final = "ringcx_transcript.card.json.j2"

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
#: "Show all utterances" on an analysis card; data: jobId. Answered with `utterances_card`.
ACTION_AI_UTTERANCES: Final = "ai.utterances"
#: "Check now" on a pending analysis card; data: jobId.
ACTION_AI_REFRESH: Final = "ai.refresh"

#: Keys of the data our buttons send beside `action`.
DATA_CALL_KEY: Final = "callKey"
DATA_VERDICT: Final = "verdict"
DATA_JOB_ID: Final = "jobId"
VERDICT_HELPFUL: Final = "helpful"
VERDICT_NOT_HELPFUL: Final = "not_helpful"
FEEDBACK_VERDICTS: Final = (VERDICT_HELPFUL, VERDICT_NOT_HELPFUL)

CHAT_KINDS: Final = ("direct", "group")
DEFAULT_BOT_NAME: Final = "the digest bot"
DEFAULT_TRANSCRIPT_LINES: Final = 80
DEFAULT_ANALYSIS_UTTERANCES: Final = 15
#: The most utterances `utterances_card` shows (a card has a size limit).
MAX_UTTERANCES: Final = 300
#: The most bytes (compact JSON) a card built from open-ended lists may take. RingCentral
#: documents no card size limit (UNCONFIRMED, API-FACTS D.5); the sandbox refuses cards
#: over 40,000 bytes, and this leaves room below that.
CARD_BYTE_BUDGET: Final = 38_000
DEFAULT_RINGCX_LINES: Final = 80

UNASSIGNED: Final = "Unassigned"
UNKNOWN_PARTICIPANT: Final = "Unknown participant"
UNTITLED_CALL: Final = "RingSense call"
NO_CALLS: Final = "No analysed calls yet."
NO_TRANSCRIPT: Final = "RingSense has no transcript for this call."
ANALYSIS_TAKES: Final = "The result usually takes 5–10 minutes."
ANALYSIS_EXPIRED: Final = (
    "RingCentral no longer has the result of this job (results are kept for one week)."
)
ANALYSIS_NO_REASON: Final = "RingCentral could not analyse the recording and gave no reason."
ANALYSIS_NOTHING_FOUND: Final = "RingCentral found nothing to report in this recording."
NO_UTTERANCES: Final = "RingCentral returned no utterances for this recording."
NO_JOBS: Final = "No analysis jobs yet."
JOBS_HEADING: Final = "Your analysis jobs"
#: How the jobs card names each state.
STATE_LABELS: Final[Mapping[str, str]] = {
    STATE_PENDING: "In progress",
    STATE_SUCCESS: "Done",
    STATE_FAILED: "Failed",
    STATE_EXPIRED: "Expired",
}
RINGCX_HEADING: Final = "Contact center transcript"
RINGCX_EMPTY: Final = "RingCX returned an empty transcript."
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
        quote_displayed_text(card)
        try:
            check_card(card)
        except CardError as error:
            raise CardError(f"{template_name}: {error}") from error
        return card


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
    `max_lines` of them (fewer when they would not fit a card); "Open in RingSense" when
    the call has a link."""
    if max_lines < 1:
        raise ValueError(f"max_lines must be at least 1, got {max_lines}")
    return _fitting(
        lambda shown: renderer.render(
            TRANSCRIPT_TEMPLATE, **transcript_view(insights, tz, max_lines=shown)
        ),
        min(max_lines, max(1, len(insights.transcript))),
    )


def card_bytes(card: Mapping[str, Any]) -> int:
    """A card's size as RingCentral receives it (compact UTF-8 JSON)."""
    return len(json.dumps(card, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def _fitting(render: Callable[[int], dict[str, Any]], most: int) -> dict[str, Any]:
    """The card showing as many of `most` lines as fit CARD_BYTE_BUDGET (at least one)."""
    shown = most
    while True:
        card = render(shown)
        size = card_bytes(card)
        if size <= CARD_BYTE_BUDGET or shown <= 1:
            return card
        # Shrink in proportion to the excess (and at least by one), then check again.
        shown = max(1, min(shown - 1, int(shown * CARD_BYTE_BUDGET / size)))


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


# --- AI API analyses ----------------------------------------------------------------------

_NO_VALUE: Final = "–"
_SOURCE_LABEL_MAX: Final = 200
#: The speaker table's columns: a SpeakerStats field, its heading, how a value is shown.
_SPEAKER_METRICS: Final[tuple[tuple[str, str, Callable[[Any], str]], ...]] = (
    ("talk_to_listen_ratio", "Talk time", lambda share: f"{round(share * 100)}%"),
    ("pace_wpm", "Pace", lambda wpm: f"{round(wpm)} wpm"),
    ("energy", "Energy", lambda energy: f"{energy:.1f}".removesuffix(".0")),
    ("questions_asked", "Questions", str),
)


def analysis_view(
    *,
    source_label: str,
    job_id: str,
    state: AnalysisState,
    requested_at: datetime,
    tz: ZoneInfo,
    analysis: InteractionAnalysis | None = None,
    problem: str | None = None,
    max_utterances: int = DEFAULT_ANALYSIS_UTTERANCES,
) -> dict[str, Any]:
    """The values `analysis.card.json.j2` needs; see `analysis_card`."""
    if state not in ANALYSIS_STATES:
        raise ValueError(f"state must be one of {ANALYSIS_STATES}, got {state!r}")
    if max_utterances < 0:
        raise ValueError(f"max_utterances must not be negative, got {max_utterances}")
    label = _source_label(source_label)
    if not job_id.strip():
        raise CardError("an analysis card needs the job id")
    requested = format_start_time(requested_at, tz)
    view: dict[str, Any] = {
        "state": state,
        "heading": ["Analysis of ", label],
        "meta": [f"Requested {requested}"],
        "notice": None,
        "problem": None,
        "job_id": job_id,
        "speakers": None,
        "sections": [],
        "utterances": [],
        "utterances_note": None,
        "empty_text": None,
        "actions": [],
        "fallback_text": f"Analysis of {_short_line(label)}",
    }
    refresh = SubmitAction("Check now", ACTION_AI_REFRESH, {DATA_JOB_ID: job_id})
    if state == STATE_PENDING:
        view.update(
            heading=["Analysing ", label, "…"],
            meta=[f"Started {requested}"],
            notice=ANALYSIS_TAKES,
            actions=[refresh.as_view()],
            fallback_text=f"Analysing {_short_line(label)}…",
        )
    elif state == STATE_FAILED:
        text = problem if problem is not None and problem.strip() else ANALYSIS_NO_REASON
        if contains_address_or_secret(text):
            raise CardError(
                "the problem text holds an address or a token; describe it with "
                "bot.analysis.describe_ai_error, which leaves them out"
            )
        view.update(
            heading=["Could not analyse ", label],
            problem=text,
            fallback_text=f"Could not analyse {_short_line(label)}",
        )
    elif state == STATE_EXPIRED:
        view.update(
            notice=ANALYSIS_EXPIRED,
            fallback_text=f"Analysis of {_short_line(label)}: no longer available",
        )
    else:
        if analysis is None:
            raise ValueError("a successful analysis card needs the analysis")
        view.update(_analysis_content(analysis, label, requested, max_utterances, job_id))
    return view


def analysis_card(
    renderer: CardRenderer,
    *,
    source_label: str,
    job_id: str,
    state: AnalysisState,
    requested_at: datetime,
    tz: ZoneInfo,
    analysis: InteractionAnalysis | None = None,
    problem: str | None = None,
    max_utterances: int = DEFAULT_ANALYSIS_UTTERANCES,
) -> dict[str, Any]:
    """An AI API analysis of a recording, in one of four states.

    * "pending": "Analysing <label>…", when it started, that it takes 5 to 10 minutes, the job
      id, and a "Check now" button (`ai.refresh` with the jobId);
    * "success": the title (if any), a per-speaker table (talk time, pace, energy,
      questions), the summaries, key phrases, topics and tasks, then the first
      `max_utterances` utterances ("mm:ss Speaker 0: text (Joy)"); with more, a "Show all
      utterances" button (`ai.utterances` with the jobId), answered with `utterances_card`;
    * "failed": `problem` (literal text; use `describe_ai_error`) and the job id;
    * "expired": RingCentral keeps results one week; this one is gone.

    `source_label` names the recording for a person ("recording 2728084995017", a file
    name) and is shown literally. It must never be the media URL: a label that holds an
    address or a token is refused with `CardError`, and so is such a `problem`.
    """
    return renderer.render(
        ANALYSIS_TEMPLATE,
        **analysis_view(
            source_label=source_label,
            job_id=job_id,
            state=state,
            requested_at=requested_at,
            tz=tz,
            analysis=analysis,
            problem=problem,
            max_utterances=max_utterances,
        ),
    )


def _analysis_content(
    analysis: InteractionAnalysis, label: str, requested: str, max_utterances: int, job_id: str
) -> dict[str, Any]:
    """The success state's values."""
    count = analysis.speaker_count
    speakers = f" · {count} speaker{'' if count == 1 else 's'}" if count else ""
    total = len(analysis.utterances)
    more = total > max_utterances
    return {
        "heading": [analysis.title] if analysis.title else ["Analysis of ", label],
        "meta": (
            [label, f" · Requested {requested}{speakers}"]
            if analysis.title
            else [f"Requested {requested}{speakers}"]
        ),
        "speakers": _speaker_table(analysis.speakers),
        "sections": _analysis_sections(analysis),
        "utterances": [_utterance_line(u) for u in analysis.utterances[:max_utterances]],
        "utterances_note": (
            f"Showing the first {max_utterances} of {total} utterances." if more else None
        ),
        "empty_text": ANALYSIS_NOTHING_FOUND if analysis.is_empty else None,
        "actions": (
            [
                SubmitAction(
                    "Show all utterances", ACTION_AI_UTTERANCES, {DATA_JOB_ID: job_id}
                ).as_view()
            ]
            if more
            else []
        ),
        "fallback_text": (
            f"Analysis of {_short_line(label)}: {_short_line(analysis.title)}"
            if analysis.title
            else f"Analysis of {_short_line(label)}"
        ),
    }


def _speaker_table(speakers: Sequence[SpeakerStats]) -> dict[str, Any] | None:
    """Column headings and one row per speaker, only with the metrics someone has."""
    metrics = [
        (name, heading, show)
        for name, heading, show in _SPEAKER_METRICS
        if any(getattr(s, name) is not None for s in speakers)
    ]
    if not metrics:
        return None
    return {
        "columns": [heading for _, heading, _ in metrics],
        "rows": [
            {
                "speaker": _speaker_label(speaker.speaker_id),
                "values": [
                    _NO_VALUE if getattr(speaker, name) is None else show(getattr(speaker, name))
                    for name, _, show in metrics
                ],
            }
            for speaker in speakers
        ],
    }


def _analysis_sections(analysis: InteractionAnalysis) -> list[dict[str, Any]]:
    """Summaries (a summary that repeats an earlier one is left out), key phrases, topics
    and tasks, each only with content. `style` is "paragraphs", "bullets" or "inline"."""
    sections: list[dict[str, Any]] = []
    shown: list[tuple[str, ...]] = []
    for summary in analysis.summaries:
        if summary.texts in shown:
            continue
        shown.append(summary.texts)
        style = "bullets" if summary.kind == SUMMARY_EXTRACTIVE else "paragraphs"
        sections.append({"heading": summary.label, "style": style, "items": list(summary.texts)})
    for heading, items, style in (
        ("Key phrases", analysis.key_phrases, "inline"),
        ("Topics", analysis.topics, "inline"),
        ("Tasks", analysis.tasks, "bullets"),
    ):
        if items:
            sections.append({"heading": heading, "style": style, "items": list(items)})
    return sections


def _utterance_line(utterance: Utterance) -> dict[str, Any]:
    return {
        "timestamp": format_offset(utterance.start) if utterance.start is not None else None,
        "speaker": _speaker_label(utterance.speaker_id) if utterance.speaker_id else None,
        "text": utterance.text,
        "emotion": utterance.emotion,
    }


def _speaker_label(speaker_id: str) -> str:
    """The AI API knows speakers only by id ("0", "1"): "Speaker 0"."""
    return f"Speaker {speaker_id}"


def _source_label(label: str) -> str:
    """The caller's name for a recording, refused when it is not a plain name. The label is
    left out of the error on purpose: it may hold a token."""
    if not label.strip():
        raise CardError("an analysis card needs a source label")
    if contains_address_or_secret(label):
        raise CardError(
            "the source label holds an address or a token; pass a plain name such as "
            "'recording <id>' or the media file's name, never its URL"
        )
    if len(label) > _SOURCE_LABEL_MAX:
        return label[: _SOURCE_LABEL_MAX - 1].rstrip() + "…"
    return label


def utterances_view(
    *,
    source_label: str,
    analysis: InteractionAnalysis,
    max_utterances: int = MAX_UTTERANCES,
) -> dict[str, Any]:
    """The values `utterances.card.json.j2` needs; see `utterances_card`."""
    if max_utterances < 1:
        raise ValueError(f"max_utterances must be at least 1, got {max_utterances}")
    label = _source_label(source_label)
    total = len(analysis.utterances)
    details = [f"{total} utterance{'' if total == 1 else 's'}"]
    if analysis.speaker_count:
        count = analysis.speaker_count
        details.append(f"{count} speaker{'' if count == 1 else 's'}")
    return {
        "heading": ["What was said in ", label],
        "details": " · ".join(details),
        "lines": [_utterance_line(u) for u in analysis.utterances[:max_utterances]],
        "empty_text": NO_UTTERANCES,
        "truncated": (
            f"Showing the first {max_utterances} of {total} utterances."
            if total > max_utterances
            else None
        ),
        "fallback_text": f"What was said in {_short_line(label)}",
    }


def utterances_card(
    renderer: CardRenderer,
    *,
    source_label: str,
    analysis: InteractionAnalysis,
    max_utterances: int = MAX_UTTERANCES,
) -> dict[str, Any]:
    """Every utterance of an analysis, one line each ("mm:ss Speaker 0: text (Joy)"), at
    most `max_utterances` (300) with a note when there are more: the answer to "Show all
    utterances". Offsets are times into the recording, so no time zone is needed."""
    return _fitting(
        lambda shown: renderer.render(
            UTTERANCES_TEMPLATE,
            **utterances_view(source_label=source_label, analysis=analysis, max_utterances=shown),
        ),
        min(max_utterances, max(1, len(analysis.utterances))),
    )


def jobs_view(jobs: Sequence[JobSummary], tz: ZoneInfo) -> dict[str, Any]:
    """The values `jobs.card.json.j2` needs; see `jobs_card`."""
    rows = []
    for job in jobs:
        if job.state not in STATE_LABELS:
            raise ValueError(f"job state must be one of {ANALYSIS_STATES}, got {job.state!r}")
        details = [STATE_LABELS[job.state], f"requested {format_start_time(job.requested_at, tz)}"]
        if job.finished_at is not None:
            details.append(f"finished {_finished(job.requested_at, job.finished_at, tz)}")
        rows.append({"label": _source_label(job.source_label), "details": " · ".join(details)})
    count = f"{len(rows)} job{'' if len(rows) == 1 else 's'}" if rows else NO_JOBS
    return {
        "heading": JOBS_HEADING,
        "jobs": rows,
        "empty_text": NO_JOBS,
        "fallback_text": f"{JOBS_HEADING}: {count}",
    }


def jobs_card(renderer: CardRenderer, jobs: Sequence[JobSummary], tz: ZoneInfo) -> dict[str, Any]:
    """A person's pending and recent analysis jobs, in the order given, one row each with
    the recording's label, the state and the times; with none, a line saying so."""
    return renderer.render(JOBS_TEMPLATE, **jobs_view(jobs, tz))


def _finished(requested: datetime, finished: datetime, tz: ZoneInfo) -> str:
    """The finish time, with its date only when it is not the day of the request."""
    if finished.astimezone(tz).date() == requested.astimezone(tz).date():
        return f"{finished.astimezone(tz):%H:%M}"
    return format_start_time(finished, tz)


# --- RingCX transcripts -------------------------------------------------------------------

_CHANNEL_LABELS: Final[Mapping[str, str]] = {
    "VOICE": "Voice",
    "ENGAGE_MESSAGING": "Messaging",
    "EMAIL": "Email",
    "MESSENGER": "Messenger",
}


def ringcx_transcript_view(
    *,
    segment: Segment,
    transcript: Transcript,
    tz: ZoneInfo,
    max_lines: int = DEFAULT_RINGCX_LINES,
    queue_label: str | None = None,
    agent_label: str | None = None,
) -> dict[str, Any]:
    """The values `ringcx_transcript.card.json.j2` needs; see `ringcx_transcript_card`.
    `agent_label` is the agent's name from the directory, for transcripts without one."""
    if max_lines < 1:
        raise ValueError(f"max_lines must be at least 1, got {max_lines}")
    facts = []
    direction = _direction_label(segment.direction)
    if direction != "Call":
        facts.append({"title": "Direction", "value": direction.removesuffix(" call")})
    channel = _channel_label(segment.channel_type)
    if channel:
        facts.append({"title": "Channel", "value": channel})
    start = segment.start or segment.dialog_start
    if start is not None:
        facts.append({"title": "Start", "value": format_start_time(start, tz)})
    if segment.duration_ms is not None:
        facts.append({"title": "Duration", "value": format_duration(segment.duration_ms / 1000)})

    people = []
    agent = transcript.agent_name or (agent_label.strip() if agent_label else None)
    if agent:
        people.append({"title": "Agent: ", "value": agent})
    elif segment.agent_extension_id:
        people.append({"title": "Agent: ", "value": f"extension {segment.agent_extension_id}"})
    queue = queue_label if queue_label and queue_label.strip() else None
    if queue is None and segment.agent_group_id:
        queue = f"agent group {segment.agent_group_id}"
    if queue:
        people.append({"title": "Queue: ", "value": queue})

    problem = None
    if transcript.error_code or transcript.error_message:
        said = transcript.error_message or "no details"
        code = f" ({transcript.error_code})" if transcript.error_code else ""
        problem = f"RingCX reported a problem with this transcript: {said}{code}"

    total = len(transcript.lines)
    agent_ids = {i for i in (segment.segment_id, segment.participant_id) if i}
    names = _ringcx_speakers(transcript.lines, agent_ids, agent)
    return {
        "heading": RINGCX_HEADING,
        "facts": facts,
        "people": people,
        "problem": problem,
        "lines": [
            {
                "timestamp": (
                    f"{line.timestamp.astimezone(tz):%H:%M:%S}" if line.timestamp else None
                ),
                "speaker": names[index],
                "text": line.message,
            }
            for index, line in enumerate(transcript.lines[:max_lines])
        ],
        "empty_text": RINGCX_EMPTY,
        "truncated": (
            f"Showing the first {max_lines} of {total} lines." if total > max_lines else None
        ),
        "fallback_text": ", ".join(
            [RINGCX_HEADING, *(f["value"] for f in facts if f["title"] in ("Start", "Duration"))]
        ),
    }


def ringcx_transcript_card(
    renderer: CardRenderer,
    *,
    segment: Segment,
    transcript: Transcript,
    tz: ZoneInfo,
    max_lines: int = DEFAULT_RINGCX_LINES,
    queue_label: str | None = None,
    agent_label: str | None = None,
) -> dict[str, Any]:
    """A RingCX segment's transcript: "Contact center transcript", its direction, channel,
    start and duration, the agent (the transcript's agent name, else the extension) and
    the queue (`queue_label`, else the agent group id), then one line per message
    ("hh:mm:ss Name: message", the time in `tz`), at most `max_lines` with a note. A speaker
    without a name is "Agent" or "Contact", or "Speaker 1", "Speaker 2"... when RingCX
    does not say which (its voice transcripts do not). Fewer lines when `max_lines` would
    not fit a card."""
    if max_lines < 1:
        raise ValueError(f"max_lines must be at least 1, got {max_lines}")
    return _fitting(
        lambda shown: renderer.render(
            RINGCX_TRANSCRIPT_TEMPLATE,
            **ringcx_transcript_view(
                segment=segment,
                transcript=transcript,
                tz=tz,
                max_lines=shown,
                queue_label=queue_label,
                agent_label=agent_label,
            ),
        ),
        min(max_lines, max(1, len(transcript.lines))),
    )


def _channel_label(channel_type: str | None) -> str | None:
    if channel_type is None:
        return None
    known = _CHANNEL_LABELS.get(channel_type.upper())
    if known:
        return known
    words = channel_type.replace("_", " ").strip()
    return _plain_label(words.capitalize()) if words else None


def _ringcx_speakers(
    lines: Sequence[TranscriptLine], agent_ids: set[str], agent_name: str | None
) -> list[str]:
    """Each line's speaker: the name RingCX gives, else the agent (a line of type agent, or
    whose participant id is the segment's or its agent's) by name, else "Contact" /
    "Customer". Participants nothing identifies are "Unidentified speaker A", "B"...: order
    of appearance says nothing about who is the customer (voice transcripts carry no types
    or names, and their ids need not match the segment's)."""
    agent = agent_name or "Agent"
    agent_found = any(
        line.participant_type == PARTICIPANT_AGENT or line.participant_id in agent_ids
        for line in lines
    )
    unknown: dict[str | None, str] = {}
    names = []
    for line in lines:
        if line.participant_name:
            names.append(line.participant_name)
        elif line.participant_type == PARTICIPANT_AGENT or line.participant_id in agent_ids:
            names.append(agent)
        elif line.participant_type == PARTICIPANT_CONTACT:
            names.append("Contact")
        elif agent_found:
            names.append("Customer")
        else:
            key = line.participant_id
            letter = chr(ord("A") + len(unknown) % 26) if key not in unknown else ""
            names.append(unknown.setdefault(key, f"Unidentified speaker {letter}"))
    return names


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
    "ACTION_AI_REFRESH",
    "ACTION_AI_UTTERANCES",
    "ACTION_DIGEST_FEEDBACK",
    "ACTION_DIGEST_OPEN",
    "ACTION_DIGEST_TRANSCRIPT",
    "ANALYSIS_EXPIRED",
    "ANALYSIS_NOTHING_FOUND",
    "ANALYSIS_NO_REASON",
    "ANALYSIS_TAKES",
    "ANALYSIS_TEMPLATE",
    "CALLS_TEMPLATE",
    "CARD_SCHEMA_URL",
    "CARD_VERSION",
    "CHAT_KINDS",
    "DATA_CALL_KEY",
    "DATA_JOB_ID",
    "DATA_VERDICT",
    "DEFAULT_ANALYSIS_UTTERANCES",
    "DEFAULT_RINGCX_LINES",
    "DEFAULT_TRANSCRIPT_LINES",
    "DIGEST_SECTIONS",
    "DIGEST_TEMPLATE",
    "FEEDBACK_TEXTS",
    "FEEDBACK_TITLE",
    "FEEDBACK_VERDICTS",
    "JOBS_HEADING",
    "JOBS_TEMPLATE",
    "MAX_UTTERANCES",
    "NOTICE_TEMPLATE",
    "NO_CALLS",
    "NO_JOBS",
    "NO_TRANSCRIPT",
    "NO_UTTERANCES",
    "RINGCX_EMPTY",
    "RINGCX_HEADING",
    "RINGCX_TRANSCRIPT_TEMPLATE",
    "SECTION_LABELS",
    "STATE_LABELS",
    "TEMPLATES_DIR",
    "TRANSCRIPT_TEMPLATE",
    "UTTERANCES_TEMPLATE",
    "VERDICT_HELPFUL",
    "VERDICT_NOT_HELPFUL",
    "WELCOME_TEMPLATE",
    "CardError",
    "CardRenderer",
    "SubmitAction",
    "analysis_card",
    "analysis_view",
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
    "jobs_card",
    "jobs_view",
    "message_dialog",
    "notice_view",
    "render_digest",
    "ringcx_transcript_card",
    "ringcx_transcript_view",
    "transcript_card",
    "transcript_view",
    "utterances_card",
    "utterances_view",
    "welcome_card",
    "welcome_view",
]
