"""The `find` card as a person reads it: each hit with its call, where in the call the line
is, who said it and the line itself; call text stays literal; an Open button per hit."""

from __future__ import annotations

from bot.cards import CardRenderer, card_as_text
from bot.cards.find import find_card
from bot.search import search_lines
from bot.storage import SearchHit
from tests.templates.adaptive_cards import assert_matches_golden, submit_actions, text_runs
from tests.templates.samples import NEW_YORK, merged_insights


def test_the_find_card_matches_the_golden_file() -> None:
    call = merged_insights()
    lines = search_lines(call)
    spoken = next(line for line in lines if line.kind == "transcript" and line.speaker)
    summary = next(line for line in lines if line.kind == "summary")
    card = find_card(
        CardRenderer(),
        [
            (SearchHit("pbx:1", spoken, -2.0, None), call),
            (SearchHit("pbx:1", summary, -1.0, None), call),
        ],
        NEW_YORK,
        heading='Found 2 lines for "demo"',
    )
    assert_matches_golden(card, "find.card.json")
    text = card_as_text(card)
    assert 'Found 2 lines for "demo"' in text
    assert "Transcript at" in text and "Summary" in text
    assert spoken.text[:40] in text
    assert any(spoken.speaker in run for run in text_runs(card) if spoken.speaker)
    assert [a["data"] for a in submit_actions(card)] == [
        {"action": "digest.open", "callKey": "pbx:1"},
        {"action": "digest.open", "callKey": "pbx:1"},
    ]


def test_a_long_title_and_line_are_cut_and_markup_stays_text() -> None:
    call = merged_insights()
    [title] = [line for line in search_lines(call) if line.kind == "title"]
    long_line = title.__class__(
        kind="transcript",
        position=1,
        offset_s=65.0,
        speaker="Alex",
        text="**Bold** [link](https://x.example) " + "word " * 200,
    )
    card = find_card(
        CardRenderer(),
        [(SearchHit("pbx:1", long_line, -1.0, None), call)],
        NEW_YORK,
        heading='Found 1 line for "link"',
    )
    runs = text_runs(card)
    assert not any("**" in run or "[link]" in run for run in runs)
    assert max(len(run) for run in runs) <= 300
    assert "at 01:05" in card_as_text(card)
