"""`find`: what of a call is searchable and how a person's words become a safe FTS5 query
(the card of hits is `bot.cards.find`).

Searchable: the title, the summary, the key points, the next steps, the highlights and the
transcript, one line each (a line is what a hit shows, with its time in the call when
RingSense gave one in seconds). A person's words are reduced to word characters and each is
quoted, so nothing they type is FTS5 syntax (no `OR`, `NEAR`, `*`, column filters).
"""

from __future__ import annotations

import re
from typing import Final

from bot.ringsense import CallInsights
from bot.storage import SearchLine

MAX_CALLS: Final = 10
MAX_WORDS: Final = 8
MAX_WORD_CHARS: Final = 40

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
