"""Every utterance of an AI API analysis: the answer to "Show all utterances"."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from bot.analysis import (
    InteractionAnalysis,
)
from bot.cards.analysis import checked_source_label, speaker_labels, utterance_line
from bot.cards.formatting import short_line
from bot.cards.render import CardRenderer, fitting_card

UTTERANCES_TEMPLATE: Final = "utterances.card.json.j2"


#: The most utterances `utterances_card` shows (a card has a size limit).
MAX_UTTERANCES: Final = 300


NO_UTTERANCES: Final = "RingCentral returned no utterances for this recording."


def utterances_view(
    *,
    source_label: str,
    analysis: InteractionAnalysis,
    max_utterances: int = MAX_UTTERANCES,
    speaker_names: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The values `utterances.card.json.j2` needs; see `utterances_card`."""
    if max_utterances < 1:
        raise ValueError(f"max_utterances must be at least 1, got {max_utterances}")
    label = checked_source_label(source_label)
    total = len(analysis.utterances)
    details = [f"{total} utterance{'' if total == 1 else 's'}"]
    if analysis.speaker_count:
        count = analysis.speaker_count
        details.append(f"{count} speaker{'' if count == 1 else 's'}")
    labels = speaker_labels(analysis, speaker_names)
    return {
        "heading": ["What was said in ", label],
        "details": " · ".join(details),
        "lines": [utterance_line(u, labels) for u in analysis.utterances[:max_utterances]],
        "empty_text": NO_UTTERANCES,
        "truncated": (
            f"Showing the first {max_utterances} of {total} utterances."
            if total > max_utterances
            else None
        ),
        "fallback_text": f"What was said in {short_line(label)}",
    }


def utterances_card(
    renderer: CardRenderer,
    *,
    source_label: str,
    analysis: InteractionAnalysis,
    max_utterances: int = MAX_UTTERANCES,
    speaker_names: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Every utterance of an analysis, one line each ("mm:ss Speaker 0: text (Joy)"), at
    most `max_utterances` (300) with a note when there are more: the answer to "Show all
    utterances". Offsets are times into the recording, so no time zone is needed.
    `speaker_names` as for `analysis_card`."""
    return fitting_card(
        lambda shown: renderer.render(
            UTTERANCES_TEMPLATE,
            **utterances_view(
                source_label=source_label,
                analysis=analysis,
                max_utterances=shown,
                speaker_names=speaker_names,
            ),
        ),
        min(max_utterances, max(1, len(analysis.utterances))),
    )
