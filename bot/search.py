"""`find`: what of a call is searchable and how a person's words become a safe FTS5 query
(the card of hits is `bot.cards.find`).

Searchable: the title, the summary, the key points, the next steps, the highlights and the
transcript, one line each (a line is what a hit shows, with its time in the call when
RingSense gave one in seconds). A person's words are reduced to word characters and each is
quoted, so nothing they type is FTS5 syntax (no `OR`, `NEAR`, `*`, column filters).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from typing import Final

from bot import payloads
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


def search_lines(insights: CallInsights, transcript: object = None) -> list[SearchLine]:
    """Everything `find` may match in a call, one line per piece of text.

    `transcript`, when given, is the call's transcript as RingSense sent it (a list of
    utterances) and stands for `insights.transcript`: a digest indexes the transcript it
    holds in memory without first turning every utterance into a `TimedText`."""
    names = {s.speaker_id: s.display_name for s in reversed(insights.speakers)}
    lines: list[SearchLine] = []
    if insights.title.strip():
        lines.append(SearchLine("title", 0, None, None, insights.title))
    for n, paragraph in enumerate(insights.summary):
        # Summary `start`/`end` are paragraph numbers, not seconds: no time shown.
        lines.append(SearchLine("summary", n, None, None, paragraph.text))
    for n, point in enumerate(insights.bulleted_summary):
        lines.append(SearchLine("key_point", n, None, None, point))
    timed_kinds = [("next_step", insights.next_steps), ("highlight", insights.highlights)]
    if transcript is None:
        timed_kinds.append(("transcript", insights.transcript))
    for kind, texts in timed_kinds:
        for n, timed in enumerate(texts):
            name = names.get(timed.speaker_id) if timed.speaker_id is not None else None
            lines.append(SearchLine(kind, n, timed.start, name, timed.text))
    lines = [line for line in lines if line.text.strip()]
    if transcript is not None:
        lines.extend(_transcript_lines(transcript, names))
    return lines


def _transcript_lines(raw: object, names: Mapping[str, str | None]) -> Iterator[SearchLine]:
    """The transcript's lines straight from RingSense's utterances, read as
    `CallInsights.from_api` reads them (text, else value; a start in seconds; the speaker
    by `speakerId`): the same lines `search_lines` makes of `insights.transcript`.

    A digest runs this over every utterance (1,500 in a long call), so the usual shapes
    (a dict, a non-blank string, a float start, a string speaker id) take a short path;
    anything else goes through `bot.payloads` as before."""
    if not isinstance(raw, list):
        return
    position = 0
    for item in raw:
        if type(item) is not dict and not isinstance(item, Mapping):
            continue
        text = item.get("text")
        if type(text) is not str or not text.strip():
            text = payloads.text(text) or payloads.text(item.get("value"))
            if text is None:
                continue
        start = item.get("start")
        offset_s = (
            start if type(start) is float and math.isfinite(start) else payloads.number(start)
        )
        speaker_id = item.get("speakerId")
        if type(speaker_id) is not str or not speaker_id.strip():
            speaker_id = payloads.ident(speaker_id)
        name = names.get(speaker_id) if speaker_id is not None else None
        yield SearchLine("transcript", position, offset_s, name, text)
        position += 1
