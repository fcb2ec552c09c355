"""Adaptive Cards as data: one module per card kind, beside the shared renderer.

`templates/<name>.card.json.j2` holds each card's layout; the module of the same kind
prepares its plain display values ("views"). Every public name is re-exported here, so
`from bot.cards import X` works for all of them.

* `render`: `CardRenderer`, the runtime card check, quoting of displayed text;
* `formatting`: times, durations, offsets and short labels shared by every card;
* `text`: `card_as_text`, a card as plain text for the terminal and tests;
* one module per card: `digest`, `welcome`, `calls`, `transcript`, `notice`, `analysis`,
  `utterances`, `jobs`, `ringcx_transcript` (the settings card is `bot.settings_card`);
* `call_notes`: RingSense's markdown call notes as blocks of plain runs.
"""

from __future__ import annotations

from bot.cards.analysis import (
    ACTION_AI_REFRESH,
    ACTION_AI_UTTERANCES,
    ANALYSIS_EXPIRED,
    ANALYSIS_NO_REASON,
    ANALYSIS_NOTHING_FOUND,
    ANALYSIS_TAKES,
    ANALYSIS_TEMPLATE,
    DATA_JOB_ID,
    DEFAULT_ANALYSIS_UTTERANCES,
    analysis_card,
    analysis_view,
)
from bot.cards.call_notes import NoteBlock, note_blocks
from bot.cards.calls import (
    CALLS_TEMPLATE,
    NO_CALLS,
    calls_card,
    calls_view,
)
from bot.cards.digest import (
    ACTION_DIGEST_FEEDBACK,
    ACTION_DIGEST_OPEN,
    ACTION_DIGEST_TRANSCRIPT,
    DATA_CALL_KEY,
    DATA_VERDICT,
    DIGEST_SECTIONS,
    DIGEST_TEMPLATE,
    FEEDBACK_RESULTS,
    FEEDBACK_VERDICTS,
    SECTION_LABELS,
    VERDICT_HELPFUL,
    VERDICT_NOT_HELPFUL,
    VISIBLE_BUTTONS,
    digest_buttons,
    digest_view,
    feedback_result,
    render_digest,
)
from bot.cards.formatting import (
    format_duration,
    format_offset,
    format_start_time,
)
from bot.cards.jobs import (
    JOBS_HEADING,
    JOBS_TEMPLATE,
    NO_JOBS,
    STATE_LABELS,
    jobs_card,
    jobs_view,
)
from bot.cards.notice import (
    FEEDBACK_TEXTS,
    FEEDBACK_TITLE,
    NOTICE_TEMPLATE,
    feedback_dialog,
    message_dialog,
    notice_view,
)
from bot.cards.render import (
    CARD_BYTE_BUDGET,
    CARD_SCHEMA_URL,
    CARD_VERSION,
    TEMPLATES_DIR,
    CardError,
    CardRenderer,
    SubmitAction,
    card_bytes,
    check_card,
)
from bot.cards.ringcx_transcript import (
    DEFAULT_RINGCX_LINES,
    RINGCX_EMPTY,
    RINGCX_HEADING,
    RINGCX_TRANSCRIPT_TEMPLATE,
    ringcx_transcript_card,
    ringcx_transcript_view,
)
from bot.cards.text import (
    card_as_text,
)
from bot.cards.transcript import (
    DEFAULT_TRANSCRIPT_LINES,
    NO_TRANSCRIPT,
    TRANSCRIPT_TEMPLATE,
    transcript_card,
    transcript_view,
)
from bot.cards.utterances import (
    MAX_UTTERANCES,
    NO_UTTERANCES,
    UTTERANCES_TEMPLATE,
    utterances_card,
    utterances_view,
)
from bot.cards.welcome import (
    CHAT_KINDS,
    WELCOME_TEMPLATE,
    welcome_card,
    welcome_view,
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
    "CARD_BYTE_BUDGET",
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
    "FEEDBACK_RESULTS",
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
    "VISIBLE_BUTTONS",
    "WELCOME_TEMPLATE",
    "CardError",
    "CardRenderer",
    "NoteBlock",
    "SubmitAction",
    "analysis_card",
    "analysis_view",
    "calls_card",
    "calls_view",
    "card_as_text",
    "card_bytes",
    "check_card",
    "digest_buttons",
    "digest_view",
    "feedback_dialog",
    "feedback_result",
    "format_duration",
    "format_offset",
    "format_start_time",
    "jobs_card",
    "jobs_view",
    "message_dialog",
    "note_blocks",
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
