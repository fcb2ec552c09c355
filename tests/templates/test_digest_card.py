"""The digest card: valid Adaptive Cards 1.3, what a reader sees, and call text kept literal."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from bot.cards import (
    DIGEST_SECTIONS,
    DIGEST_TEMPLATE,
    SECTION_LABELS,
    CardRenderer,
    SubmitAction,
    card_as_text,
    digest_view,
    feedback_result,
    render_digest,
)
from bot.quoting import quote_for_chat
from bot.ringsense import CallInsights
from tests.templates.adaptive_cards import (
    actions_of_type,
    assert_matches_golden,
    assert_valid_card,
    card_validator,
    elements,
    headings,
    markdown_texts,
    schema_problems,
    submit_actions,
    text_runs,
)
from tests.templates.samples import (
    NASTY,
    NEW_YORK,
    RINGSENSE_URL,
    TRACY,
    call_text,
    event_body,
    full_body,
    insights_with,
    merged_insights,
    record_body,
)

GOLDEN = Path(__file__).parent / "golden" / "digest.card.json"


@cache
def shared_renderer() -> CardRenderer:
    """One renderer for property tests (hypothesis does not mix with function fixtures)."""
    return CardRenderer()


@pytest.fixture(scope="module")
def renderer() -> CardRenderer:
    return CardRenderer()


def digest(renderer: CardRenderer, body: dict[str, Any], **options: Any) -> dict[str, Any]:
    return render_digest(renderer, CallInsights.from_api(body), NEW_YORK, **options)


def blocks_with_run(card: dict[str, Any], text: str) -> list[dict[str, Any]]:
    """The RichTextBlocks of the body that contain a run with exactly this text."""
    return [
        block
        for block in card["body"]
        if block["type"] == "RichTextBlock"
        and any(run.get("text") == text for run in block["inlines"])
    ]


def title_block(card: dict[str, Any]) -> dict[str, Any]:
    """The title: the first column of the first element (the badge is beside it)."""
    block: dict[str, Any] = card["body"][0]["columns"][0]["items"][0]
    return block


def facts_line(card: dict[str, Any]) -> str:
    """The one line of facts right under the title."""
    facts = card["body"][1]
    assert facts["type"] == "TextBlock"
    text: str = facts["text"]
    return text


def score_badge(card: dict[str, Any]) -> dict[str, Any] | None:
    """The AI score badge beside the title: a Container around a coloured text, or None."""
    columns = card["body"][0]["columns"]
    if len(columns) < 2:
        return None
    badge: dict[str, Any] = columns[1]["items"][0]
    return badge


def buttons(card: dict[str, Any]) -> list[dict[str, Any]]:
    """The buttons visible without pressing anything: the ActionSet ending the body, then
    the card's own actions (only "More")."""
    body_set = [e for e in card["body"] if e["type"] == "ActionSet"]
    return [*(body_set[-1]["actions"] if body_set else []), *card.get("actions", [])]


def run_texts(block: dict[str, Any]) -> list[str]:
    return [run["text"] for run in block["inlines"]]


# --- the schema harness itself --------------------------------------------------------------


def test_the_repaired_schema_rejects_what_upstream_lets_through() -> None:
    def card_with(**text_block: Any) -> dict[str, Any]:
        block = {"type": "TextBlock", "text": "x", **text_block}
        return {"type": "AdaptiveCard", "version": "1.3", "body": [block]}

    assert not schema_problems(card_with(size="Medium", weight="bolder"))
    assert schema_problems(card_with(size="notmediumatall"))
    assert schema_problems(card_with(size=5))
    assert schema_problems(card_with(weight="|"))
    assert schema_problems({"type": "AdaptiveCard", "body": [{"type": "Carousel"}]})
    card_validator()  # check_schema passed when it was built


# --- the real payloads ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "insights",
    [
        pytest.param(lambda: CallInsights.from_api(event_body()), id="notification"),
        pytest.param(lambda: CallInsights.from_api(record_body()), id="rest-record"),
        pytest.param(merged_insights, id="merged"),
        pytest.param(lambda: CallInsights.from_api(full_body()), id="every-section"),
    ],
)
def test_digest_of_real_payloads_is_a_valid_card(
    renderer: CardRenderer, insights: Callable[[], CallInsights]
) -> None:
    card = render_digest(renderer, insights(), NEW_YORK)

    assert_valid_card(card)
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"


def test_digest_matches_the_golden_file(renderer: CardRenderer) -> None:
    """The whole card for the merged real payloads; `UPDATE_GOLDEN=1` rewrites the file."""
    card = render_digest(renderer, merged_insights(), NEW_YORK)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    assert card == json.loads(GOLDEN.read_text(encoding="utf-8"))


def test_header_is_the_title_and_one_line_of_facts_with_units(renderer: CardRenderer) -> None:
    card = render_digest(renderer, merged_insights(), NEW_YORK)
    title = title_block(card)

    assert run_texts(title) == ["Call from John Smith to Tracy Debolah"]
    assert title["inlines"][0]["weight"] == "Bolder"
    assert facts_line(card) == (
        "Outbound call · Wed 4 Sep 2024, 16:44 EDT · 2 min 5 s · Positive sentiment"
    )
    assert "FactSet" not in {e["type"] for e in card["body"]}, "no grey two-column facts"


@pytest.mark.parametrize(
    ("score", "style"), [(8, "good"), (7, "good"), (5.5, "warning"), (3, "attention")]
)
def test_the_ai_score_is_a_coloured_badge_beside_the_title(
    renderer: CardRenderer, score: float, style: str
) -> None:
    body = record_body()
    body["insights"]["AIScore"] = [{"value": score}]
    badge = score_badge(digest(renderer, body))

    assert badge is not None
    assert badge["type"] == "Container"
    assert badge["items"][0]["color"] == style
    assert badge["items"][0]["text"] == f"AI score {score:g}/10"
    assert badge["items"][0]["weight"] == "Bolder"
    assert score_badge(digest(renderer, event_body())) is None, "no score, no badge"


def test_participants_follow_the_facts(renderer: CardRenderer) -> None:
    card = render_digest(renderer, merged_insights(), NEW_YORK)

    (participants,) = blocks_with_run(card, "With ")
    assert card["body"].index(participants) == 2
    assert "".join(run_texts(participants)) == "With John Smith, Tracy Debolah (external)"


def test_fallback_text_is_a_short_line_with_title_duration_and_score(
    renderer: CardRenderer,
) -> None:
    card = render_digest(renderer, merged_insights(), NEW_YORK)
    assert card["fallbackText"] == (
        "Call from John Smith to Tracy Debolah, 2 min 5 s, AI score 8/10"
    )

    body = event_body()
    body["title"] = "A very long title\nover two lines " + "x" * 300
    card = digest(renderer, body)
    assert "\n" not in card["fallbackText"]
    assert len(card["fallbackText"]) < 140
    assert card["fallbackText"].endswith("…, 2 min 5 s")


# --- sections -------------------------------------------------------------------------------


def test_missing_sections_are_left_out_not_shown_empty(renderer: CardRenderer) -> None:
    card = digest(renderer, event_body())  # no BulletedSummary, Highlights, CallNotes, AIScore

    assert headings(card) == ["Next steps"], "the summary comes first, under no heading"
    assert facts_line(card).endswith("· Positive sentiment")
    assert score_badge(card) is None
    body = card["body"]
    for index, block in enumerate(body):
        if block["type"] == "TextBlock" and block.get("separator"):
            assert index + 1 < len(body), "a heading ends the card"
            assert body[index + 1]["type"] == "RichTextBlock", "a heading without content"


def test_the_merged_digest_shows_every_section_it_has_in_default_order(
    renderer: CardRenderer,
) -> None:
    card = digest(renderer, full_body())
    assert headings(card) == ["Next steps", "Key points", "Highlights", "Call notes"]
    # the settings card offers the sections under the same names, in the same order
    assert ["Summary", *headings(card)] == [SECTION_LABELS[key] for key in DIGEST_SECTIONS]
    (summary,) = blocks_with_run(
        card, "The call is about discussing the tasks and timeline for completing a project."
    )
    assert card["body"].index(summary) == 3, "the summary right after title, facts, people"


def test_sections_can_be_chosen_and_reordered(renderer: CardRenderer) -> None:
    card = digest(renderer, full_body(), sections=["next_steps", "summary"])

    assert headings(card) == ["Next steps", "Summary"]
    assert not blocks_with_run(card, "Agent confirmed they were recording the call for "
                                     "sentiment analysis purposes.")  # fmt: skip

    assert headings(digest(renderer, full_body(), sections=[])) == []
    with pytest.raises(ValueError, match="unknown digest sections"):
        digest_view(CallInsights.from_api(full_body()), NEW_YORK, sections=["transcript"])


def test_a_call_with_no_insights_is_still_a_valid_card(renderer: CardRenderer) -> None:
    card = digest(renderer, {"domain": "rcv", "sourceRecordId": "r", "ownerExtensionId": "e"})

    assert_valid_card(card)
    assert headings(card) == []
    assert run_texts(title_block(card)) == ["RingSense call"]
    assert facts_line(card) == "Call"
    assert "actions" not in card


def test_next_steps_start_with_their_owner_in_bold(renderer: CardRenderer) -> None:
    body = event_body()
    body["insights"]["NextSteps"].append({"value": "Nobody's job", "speakerId": "p-ghost"})
    card = digest(renderer, body)

    (step,) = blocks_with_run(card, "Write a developer guide for the API.")
    assert run_texts(step) == ["Tracy Debolah", " · ", "Write a developer guide for the API."]
    owner, _, text = step["inlines"]
    assert owner["weight"] == "Bolder"
    assert "weight" not in text and "isSubtle" not in text
    (orphan,) = blocks_with_run(card, "Nobody's job")
    assert run_texts(orphan) == ["• ", "Nobody's job"], "no owner: a plain item, no placeholder"


def test_an_owner_named_in_markdown_is_bold_by_the_card_and_literal_in_text(
    renderer: CardRenderer,
) -> None:
    """Our bold is the run's weight; the name's own `**` and `[x](y)` stay characters."""
    body = event_body()
    body["speakerInfo"][1]["name"] = "**Boss** [me](https://evil.example)"
    card = digest(renderer, body)

    name = quote_for_chat("**Boss** [me](https://evil.example)")
    (step,) = [b for b in blocks_with_run(card, name) if run_texts(b)[1:2] == [" · "]]
    owner = step["inlines"][0]
    assert owner["text"] == quote_for_chat("**Boss** [me](https://evil.example)")
    assert owner["weight"] == "Bolder"
    assert "**" not in owner["text"] and "[" not in owner["text"]


def test_highlights_have_timestamps_and_speakers(renderer: CardRenderer) -> None:
    card = digest(renderer, full_body())

    (first,) = blocks_with_run(card, "The guide ships after review.")
    assert headings(card).index("Highlights") > headings(card).index("Key points")
    assert run_texts(first) == [
        "• ",
        "01:15 ",
        "Tracy Debolah",
        ": ",
        "The guide ships after review.",
    ]
    (late,) = blocks_with_run(card, "Test first, then publish.")
    assert run_texts(late)[1] == "1:02:05 "
    (anonymous,) = blocks_with_run(card, "Nobody said who said this.")
    assert run_texts(anonymous) == ["• ", "00:09 ", "Nobody said who said this."]


def test_bulleted_summary_is_one_bullet_per_item(renderer: CardRenderer) -> None:
    body = record_body()
    body["insights"]["BulletedSummary"].append({"value": "Second point", "section": "Wrap-up"})
    card = digest(renderer, body)

    assert run_texts(blocks_with_run(card, "Second point")[0]) == ["• ", "Second point"]


def notes_blocks(card: dict[str, Any]) -> list[dict[str, Any]]:
    """The blocks under the "Call notes" heading (inside the collapsed container if any)."""
    index = [b.get("text") for b in card["body"]].index("Call notes")
    after = card["body"][index + 1 :]
    hidden = [b for b in after if b["type"] == "Container" and b.get("isVisible") is False]
    return hidden[0]["items"] if hidden else after


def test_call_notes_keep_their_lines(renderer: CardRenderer) -> None:
    card = digest(renderer, record_body())

    assert [run_texts(b) for b in notes_blocks(card)] == [
        ["Call notes."],
        ["Agent expressed frustration over internal communication issues and ..."],
    ]


RINGSENSE_NOTES = """## Call notes
**Attendees:** Alex Rivera, Tracy Chen
Date: 4 Sep 2024

### Decisions
- Ship the *beta* on Friday
  - Tracy checks `v2.1` first
- Send the [updated quote](https://evil.example/x) to ![:Person](12345)

1. Legal review
2. Sign <b>today</b>
"""


def notes_digest(renderer: CardRenderer, notes: str) -> dict[str, Any]:
    body = record_body()
    body["insights"]["CallNotes"] = [{"value": notes}]
    return digest(renderer, body)


def run_styles(block: dict[str, Any]) -> list[tuple[str, str]]:
    """Each run's text with how it is emphasised: "b" bold, "i" italic, "m" monospace."""
    return [
        (
            run["text"],
            ("b" if run.get("weight") == "Bolder" else "")
            + ("i" if run.get("italic") else "")
            + ("m" if run.get("fontType") == "Monospace" else ""),
        )
        for run in block["inlines"]
    ]


def test_call_notes_show_their_markdown_structure_and_nothing_else(
    renderer: CardRenderer,
) -> None:
    card = notes_digest(renderer, RINGSENSE_NOTES)
    blocks = notes_blocks(card)

    assert_valid_card(card)
    assert all(b["type"] == "RichTextBlock" for b in blocks), "call text only in TextRuns"
    indent = "\u2003\u2003"
    assert [run_styles(b) for b in blocks] == [
        # "## Call notes" only repeated our heading: left out
        [("Attendees:", "b"), (" Alex Rivera, Tracy Chen", "")],
        [("Date: 4 Sep 2024", "")],
        [("Decisions", "b")],
        [("• ", ""), ("Ship the ", ""), ("beta", "i"), (" on Friday", "")],
        [(indent, ""), ("• ", ""), ("Tracy checks ", ""), ("v2.1", "m"), (" first", "")],
        [
            ("• ", ""),
            ("Send the ", ""),
            (quote_for_chat("["), ""),
            ("updated quote", ""),
            (quote_for_chat("](https://evil.example/x)"), ""),
            (" to ", ""),
            (quote_for_chat("![:Person](12345)"), ""),
        ],
        [("1. ", ""), ("Legal review", "")],
        [("2. ", ""), ("Sign <b>today</b>", "")],
    ]
    assert "##" not in json.dumps(card) and "**Attendees" not in json.dumps(card)
    assert actions_of_type(card, "Action.OpenUrl") == [], "a link in the notes is no button"


def test_short_call_notes_are_shown_long_ones_fold_behind_a_show_button(
    renderer: CardRenderer,
) -> None:
    short = notes_digest(renderer, "Just one line.")
    assert not [e for e in elements(short) if e["type"] == "Action.ToggleVisibility"]
    assert [run_texts(b) for b in notes_blocks(short)] == [["Just one line."]]

    long_notes = "\n".join(f"- Point number {n} of the meeting" for n in range(20))
    card = notes_digest(renderer, long_notes)
    assert_valid_card(card)
    (toggle,) = [e for e in elements(card) if e["type"] == "Action.ToggleVisibility"]
    (hidden,) = [e for e in card["body"] if e.get("isVisible") is False]
    assert toggle["title"] == "Show call notes"
    assert toggle["targetElements"] == [hidden["id"]]
    assert len(hidden["items"]) == 20
    text = card_as_text(card)
    assert "[Show call notes]" in text and "Point number 3" not in text


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(notes=call_text)
def test_any_call_notes_make_a_valid_card_with_their_text_in_runs_only(notes: str) -> None:
    card = notes_digest(shared_renderer(), notes)
    assert_valid_card(card)
    plain = notes_digest(shared_renderer(), "Plain")
    # notes of nothing but syntax ("#", "---") show nothing, so their heading goes too
    assert [t for t in markdown_texts(card) if t != "Call notes"] == [
        t for t in markdown_texts(plain) if t != "Call notes"
    ]
    assert actions_of_type(card, "Action.OpenUrl") == []


# --- actions --------------------------------------------------------------------------------


def test_open_in_ringsense_only_when_there_is_a_link(renderer: CardRenderer) -> None:
    with_link = digest(renderer, full_body())
    assert [b for b in buttons(with_link) if b["type"] == "Action.OpenUrl"] == [
        {"type": "Action.OpenUrl", "title": "Open in RingSense", "url": RINGSENSE_URL}
    ]
    assert buttons(digest(renderer, record_body())) == []


@pytest.mark.parametrize(
    "uri", ["javascript:alert(document.cookie)", "data:text/html,<b>x</b>", "ringsense://x"]
)
def test_a_link_that_is_not_http_is_dropped(renderer: CardRenderer, uri: str) -> None:
    body = record_body()
    body["rsRecordUri"] = uri
    card = digest(renderer, body)

    assert buttons(card) == []
    assert uri not in json.dumps(card)


def test_submit_buttons_from_the_caller_carry_an_action_id(renderer: CardRenderer) -> None:
    view = digest_view(
        CallInsights.from_api(full_body()),
        NEW_YORK,
        actions=[SubmitAction("Show transcript", "digest.transcript", {"record": "2728084995017"})],
    )
    card = renderer.render(DIGEST_TEMPLATE, **view)

    assert_valid_card(card)
    assert [a["type"] for a in buttons(card)] == ["Action.OpenUrl", "Action.Submit"]
    assert buttons(card)[1]["data"] == {"action": "digest.transcript", "record": "2728084995017"}

    view = digest_view(
        CallInsights.from_api(record_body()), NEW_YORK, actions=[SubmitAction("Yes", "a.b")]
    )
    (more,) = renderer.render(DIGEST_TEMPLATE, **view)["actions"]
    assert (more["type"], more["title"]) == ("Action.ShowCard", "More")
    assert more["card"]["actions"] == [
        {"type": "Action.Submit", "title": "Yes", "data": {"action": "a.b"}}
    ]


def test_the_digest_uses_links_buttons_and_folds_only(renderer: CardRenderer) -> None:
    card = render_digest(renderer, CallInsights.from_api(full_body()), NEW_YORK, call_key="k")
    kinds = {e["type"] for e in elements(card) if e["type"].startswith("Action.")}
    assert kinds <= {
        "Action.OpenUrl",
        "Action.Submit",
        "Action.ShowCard",
        "Action.ToggleVisibility",
    }


# --- the digest's own buttons ---------------------------------------------------------------

CALL_KEY = "pbx:2728084995017"


def test_with_a_call_key_the_digest_matches_its_golden_file(renderer: CardRenderer) -> None:
    card = render_digest(renderer, CallInsights.from_api(full_body()), NEW_YORK, call_key=CALL_KEY)

    assert_valid_card(card)
    assert_matches_golden(card, "digest-buttons.card.json")


def test_after_feedback_and_with_markdown_notes_the_digest_matches_its_golden_file(
    renderer: CardRenderer,
) -> None:
    """The card a seller sees after pressing Helpful, on a call whose RingSense notes use
    headings and lists (the README's picture of the digest)."""
    body = full_body()
    body["insights"]["CallNotes"] = [{"value": RINGSENSE_NOTES}]
    card = render_digest(
        renderer,
        CallInsights.from_api(body),
        NEW_YORK,
        call_key=CALL_KEY,
        feedback=feedback_result({"e1": "helpful"}, reader="e1"),
    )

    assert_valid_card(card)
    assert_matches_golden(card, "digest-feedback.card.json")


def test_with_a_call_key_the_digest_offers_transcript_and_feedback(
    renderer: CardRenderer,
) -> None:
    card = render_digest(renderer, CallInsights.from_api(full_body()), NEW_YORK, call_key=CALL_KEY)

    assert [(a["type"], a["title"]) for a in buttons(card)] == [
        ("Action.OpenUrl", "Open in RingSense"),
        ("Action.Submit", "Show transcript"),
        ("Action.ShowCard", "More"),
    ], "two buttons a person can read at 340 px; the rest behind More"
    # never more than two in a row: the two in the body's last ActionSet, More alone below
    assert card["body"][-1]["type"] == "ActionSet" and len(card["body"][-1]["actions"]) == 2
    assert [a["title"] for a in card["actions"]] == ["More"]
    more = card["actions"][0]["card"]
    assert [a["title"] for a in more["actions"]] == ["Helpful", "Not helpful"]
    assert more["body"][0]["text"] == "Was this digest helpful?"
    assert [a["data"] for a in submit_actions(card)] == [
        {"action": "digest.transcript", "callKey": CALL_KEY},
        {"action": "digest.feedback", "callKey": CALL_KEY, "verdict": "helpful"},
        {"action": "digest.feedback", "callKey": CALL_KEY, "verdict": "not_helpful"},
    ]


def test_show_transcript_only_when_the_call_has_one(renderer: CardRenderer) -> None:
    insights = insights_with(insights={**full_body()["insights"], "Transcript": []})
    card = render_digest(renderer, insights, NEW_YORK, call_key=CALL_KEY)

    assert_valid_card(card)
    assert [a["title"] for a in buttons(card)] == ["Open in RingSense", "More"]
    assert [a["title"] for a in card["actions"][0]["card"]["actions"]] == [
        "Helpful",
        "Not helpful",
    ]


def test_buttons_without_a_link_still_make_a_valid_card(renderer: CardRenderer) -> None:
    card = render_digest(renderer, merged_insights(), NEW_YORK, call_key=CALL_KEY)

    assert_valid_card(card)
    assert [a["title"] for a in buttons(card)] == ["Show transcript", "More"]


@pytest.mark.parametrize(
    ("verdicts", "reader", "line"),
    [
        ({"e1": "helpful"}, "e1", "You found this helpful"),
        ({"e1": "not_helpful", "e2": "helpful"}, "e1", "You found this not helpful"),
        ({"e2": "helpful"}, "e1", None),
        ({"e1": "helpful", "e2": "helpful", "e3": "not_helpful"}, None,
         "2 people found this helpful · 1 did not"),
        ({"e3": "not_helpful"}, None, "1 person found this not helpful"),
        ({}, None, None),
    ],
)  # fmt: skip
def test_the_feedback_result_is_shown_on_the_card(
    renderer: CardRenderer, verdicts: dict[str, str], reader: str | None, line: str | None
) -> None:
    result = feedback_result(verdicts, reader=reader)
    card = render_digest(
        renderer, CallInsights.from_api(full_body()), NEW_YORK, call_key=CALL_KEY, feedback=result
    )
    assert_valid_card(card)
    shown = [e["text"] for e in card["body"] if e["type"] == "TextBlock" and "found" in e["text"]]
    assert shown == ([f"\u2713 {line}"] if line else [])
    question = card["actions"][-1]["card"]["body"][0]["text"]
    assert question == (
        "Change your answer: was this digest helpful?" if line else "Was this digest helpful?"
    )


def test_without_a_call_key_the_digest_has_no_buttons(renderer: CardRenderer) -> None:
    card = render_digest(renderer, CallInsights.from_api(full_body()), NEW_YORK)
    assert submit_actions(card) == []


# --- call text stays literal ----------------------------------------------------------------


def digest_with_call_text(text: str) -> CallInsights:
    """A real payload with `text` as title, speaker name and in every section."""
    body = copy.deepcopy(event_body())
    body["title"] = text
    body["insights"]["Summary"] = [{"value": text, "start": 0, "end": 1}]
    body["insights"]["BulletedSummary"] = [{"value": text}]
    body["speakerInfo"][1]["name"] = text
    body["insights"]["NextSteps"] = [{"value": text, "speakerId": TRACY, "start": 1.0}]
    body["insights"]["Highlights"] = [{"value": text, "speakerId": TRACY, "start": 2.0}]
    body["insights"]["CallNotes"] = [{"value": text}]
    return CallInsights.from_api(body)


@cache
def markdown_texts_without_call_text() -> list[str]:
    card = render_digest(shared_renderer(), digest_with_call_text("Plain words"), NEW_YORK)
    return markdown_texts(card)


def assert_shown_literally(card: dict[str, Any], text: str) -> None:
    assert_valid_card(card)
    runs = text_runs(card)
    # title, participant, summary, bullet, next step, its owner, highlight, its speaker,
    # each shown as written and never as markup
    assert runs.count(quote_for_chat(text)) >= 8, runs
    # nothing said on the call reaches a TextBlock or a fact, where markdown renders (call
    # notes of nothing but markdown syntax, such as "#", show nothing, and so no heading)
    assert [t for t in markdown_texts(card) if t != "Call notes"] == [
        t for t in markdown_texts_without_call_text() if t != "Call notes"
    ]


@pytest.mark.parametrize("text", NASTY)
def test_call_text_is_shown_exactly_as_said(renderer: CardRenderer, text: str) -> None:
    card = render_digest(renderer, digest_with_call_text(text), NEW_YORK)

    assert_shown_literally(card, text)
    assert [a["type"] for a in card.get("actions", [])] == []


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=call_text)
def test_any_call_text_renders_to_a_valid_card_and_survives_unchanged(text: str) -> None:
    card = render_digest(shared_renderer(), digest_with_call_text(text), NEW_YORK)
    assert_shown_literally(card, text)
