"""bot.cards: the renderer's guarantees, the runtime card check, the digest view, plain text."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.cards import (
    ACTION_AI_REFRESH,
    ACTION_AI_UTTERANCES,
    ACTION_DIGEST_FEEDBACK,
    ACTION_DIGEST_OPEN,
    ACTION_DIGEST_TRANSCRIPT,
    DATA_JOB_ID,
    TEMPLATES_DIR,
    VERDICT_HELPFUL,
    VERDICT_NOT_HELPFUL,
    CardError,
    CardRenderer,
    SubmitAction,
    analysis_card,
    card_as_text,
    check_card,
    digest_buttons,
    digest_view,
    format_duration,
    format_offset,
    format_start_time,
    render_digest,
)
from bot.ringsense import CallInsights
from tests.templates.samples import (
    AI_JOB_ID,
    NEW_YORK,
    RECORDING_LABEL,
    REQUESTED_AT,
    RINGSENSE_URL,
    event_body,
    full_body,
    merged_insights,
    sample_analysis,
)

MINIMAL_CARD: dict[str, Any] = {
    "type": "AdaptiveCard",
    "version": "1.3",
    "fallbackText": "A call digest",
    "body": [{"type": "TextBlock", "text": "Hello"}],
}


def card_with(**changes: Any) -> dict[str, Any]:
    card = copy.deepcopy(MINIMAL_CARD)
    card.update(changes)
    return card


# --- card_as_text ---------------------------------------------------------------------------


def test_card_as_text_reads_like_the_digest() -> None:
    text = card_as_text(render_digest(CardRenderer(), merged_insights(), NEW_YORK))
    lines = text.splitlines()

    assert lines[:4] == [
        "Call from John Smith to Tracy Debolah  AI score 8/10",
        "Outbound call · Wed 4 Sep 2024, 16:44 EDT · 2 min 5 s · Positive sentiment",
        "With John Smith, Tracy Debolah (external)",
        "The call is about discussing the tasks and timeline for completing a project.",
    ], "title and score badge, one line of facts, who took part, then the summary"
    steps = lines.index("Next steps")
    assert lines[steps - 1] == "", "a section starts a new paragraph"
    assert lines[steps + 1 : steps + 3] == [
        "John Smith · Complete the test with own code for the API.",
        "Tracy Debolah · Write a developer guide for the API.",
    ]
    notes = lines.index("Call notes")
    assert lines[notes + 1 : notes + 3] == [
        "Call notes.",
        "Agent expressed frustration over internal communication issues and ...",
    ]
    assert steps < lines.index("Key points") < notes


def test_card_as_text_shows_highlights_with_timestamps_and_the_link() -> None:
    card = render_digest(CardRenderer(), CallInsights.from_api(full_body()), NEW_YORK)
    lines = card_as_text(card).splitlines()

    assert "• 01:15 Tracy Debolah: The guide ships after review." in lines
    assert "• 1:02:05 John Smith: Test first, then publish." in lines
    assert lines[-1] == f"[Open in RingSense] {RINGSENSE_URL}"  # no call key: no other button


def test_card_as_text_walks_columns_containers_and_buttons() -> None:
    run = {"type": "TextRun", "text": "run"}
    card = card_with(
        body=[
            {
                "type": "ColumnSet",
                "columns": [
                    {"type": "Column", "items": [{"type": "TextBlock", "text": "Left"}]},
                    {"type": "Column", "items": [{"type": "TextBlock", "text": "Right"}]},
                ],
            },
            {
                "type": "Container",
                "separator": True,
                "items": [
                    {"type": "RichTextBlock", "inlines": ["plain ", run]},
                    {"type": "TextBlock", "text": "hidden", "isVisible": False},
                ],
            },
        ],
        actions=[{"type": "Action.Submit", "title": "Save", "data": {"action": "settings.save"}}],
    )  # fmt: skip

    assert card_as_text(card) == "Left  Right\n\nplain run\n\n[Save]\n"


def test_card_as_text_lines_up_a_table_of_column_sets() -> None:
    def row(*cells: str) -> dict[str, Any]:
        return {
            "type": "ColumnSet",
            "columns": [
                {"type": "Column", "items": [{"type": "TextBlock", "text": c}]} for c in cells
            ],
        }

    table = {"type": "Container", "items": [row("Speaker", "Pace"), row("Speaker 10", "97 wpm"),
                                            row("S", "")]}  # fmt: skip
    assert card_as_text(card_with(body=[table])) == ("Speaker     Pace\nSpeaker 10  97 wpm\nS\n")
    # not a table: a cell of two lines, or something else in the container
    two_lines = row("a", "b")
    two_lines["columns"][0]["items"].append({"type": "TextBlock", "text": "a2"})
    mixed = {"type": "Container", "items": [row("x", "y"), {"type": "TextBlock", "text": "z"}]}
    assert card_as_text(card_with(body=[{"type": "Container", "items": [two_lines]}])) == (
        "a\na2\nb\n"
    )
    assert card_as_text(card_with(body=[mixed])) == "x  y\nz\n"


def test_the_analysis_speakers_read_as_a_table() -> None:
    card = analysis_card(
        CardRenderer(),
        source_label=RECORDING_LABEL,
        job_id=AI_JOB_ID,
        state="success",
        requested_at=REQUESTED_AT,
        tz=NEW_YORK,
        analysis=sample_analysis(),
    )
    lines = card_as_text(card).splitlines()
    table = lines.index("Speakers") + 1
    assert lines[table : table + 3] == [
        "Speaker    Talk time  Pace     Energy  Questions",
        "Speaker A  58%        153 wpm  86.6    5",
        "Speaker B  42%        197 wpm  62.7    3",
    ]


def test_card_as_text_cannot_drive_the_terminal() -> None:
    body = event_body()
    body["title"] = "Evil \x1b[2J\x1b]0;pwned\x07 call \u202e"
    text = card_as_text(render_digest(CardRenderer(), CallInsights.from_api(body), NEW_YORK))

    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert text.splitlines()[0] == "Evil \\x1b\uff3b2J\\x1b\uff3d0;pwned\\x07 call \\u202e"


def test_card_as_text_shows_inputs_with_their_values() -> None:
    choices = [
        {"title": "Summary", "value": "summary"},
        {"title": "Key points", "value": "bulleted_summary"},
        {"title": "Next steps", "value": "next_steps"},
    ]
    card = card_with(
        body=[
            {"type": "Input.Toggle", "id": "a", "title": "Opted in", "value": "true"},
            {"type": "Input.Toggle", "id": "b", "title": "Direct message", "value": "false"},
            {"type": "Input.Toggle", "id": "c", "title": "Odd", "value": "yes", "valueOn": "yes"},
            {"type": "Input.Toggle", "id": "d", "title": "Unset"},
            {
                "type": "Input.ChoiceSet",
                "id": "sections",
                "label": "Sections",
                "isMultiSelect": True,
                "value": "summary,next_steps",
                "choices": choices,
            },
            {
                "type": "Input.ChoiceSet",
                "id": "one",
                "label": "One",
                "value": "bulleted_summary",
                "choices": choices,
            },
            {"type": "Input.ChoiceSet", "id": "none", "label": "None", "choices": choices},
            {"type": "Input.Number", "id": "n", "label": "Minimum AI score", "value": 6.0},
            {"type": "Input.Number", "id": "m", "label": "Minutes", "placeholder": "any length"},
            {"type": "Input.Text", "id": "timezone", "label": "Time zone",
             "value": "America/New_York"},
            {"type": "Input.Text", "id": "note"},
            {"type": "Input.Text", "id": "gone", "label": "Hidden", "isVisible": False},
        ]
    )  # fmt: skip

    assert card_as_text(card).splitlines() == [
        "[x] Opted in",
        "[ ] Direct message",
        "[x] Odd",
        "[ ] Unset",
        "Sections: Summary, Next steps (choose: Summary, Key points, Next steps)",
        "One: Key points (choose: Summary, Key points, Next steps)",
        "None: (none) (choose: Summary, Key points, Next steps)",
        "Minimum AI score: 6",
        "Minutes: (empty; any length)",
        "Time zone: America/New_York",
        "note: (empty)",
    ]


def test_card_as_text_puts_an_action_sets_buttons_on_one_line() -> None:
    buttons = [
        {"type": "Action.Submit", "title": "Helpful", "data": {"action": "digest.feedback"}},
        {"type": "Action.OpenUrl", "title": "Open", "url": "https://example.com/x"},
    ]
    card = card_with(body=[{"type": "ActionSet", "actions": buttons}])
    assert card_as_text(card) == "[Helpful]  [Open] https://example.com/x\n"


def test_card_as_text_of_input_values_cannot_drive_the_terminal() -> None:
    card = card_with(body=[{"type": "Input.Text", "id": "t", "label": "Zone", "value": "\x1b[2J"}])
    assert card_as_text(card) == "Zone: \\x1b[2J\n"


# --- check_card -----------------------------------------------------------------------------


def test_check_card_accepts_links_and_buttons() -> None:
    check_card(
        card_with(
            actions=[
                {"type": "Action.OpenUrl", "title": "Open", "url": "https://example.com/x"},
                {"type": "Action.Submit", "title": "Go", "data": {"action": "digest.transcript"}},
            ]
        )
    )


@pytest.mark.parametrize(
    ("card", "refusal"),
    [
        pytest.param(
            card_with(actions=[{"type": "Action.ShowCard", "title": "More", "card": {}}]),
            "Action.ShowCard needs a card",
            id="show-card-without-a-card",
        ),
        pytest.param(
            card_with(
                body=[
                    {
                        "type": "Container",
                        "items": [],
                        "selectAction": {"type": "Action.ToggleVisibility", "targetElements": []},
                    }
                ]
            ),
            "Action.ToggleVisibility needs targetElements",
            id="toggle-visibility-without-targets",
        ),
        pytest.param(
            card_with(
                body=[{"type": "ActionSet", "actions": [{"type": "Action.ShowCard", "card": {}}]}]
            ),
            "Action.ShowCard needs a card",
            id="show-card-in-an-action-set",
        ),
        pytest.param(
            card_with(
                actions=[
                    {
                        "type": "Action.ShowCard",
                        "title": "More",
                        "card": {
                            "type": "AdaptiveCard",
                            "body": [],
                            "actions": [{"type": "Action.OpenUrl", "url": "javascript:alert(1)"}],
                        },
                    }
                ]
            ),
            "http",
            id="a-bad-link-behind-more",
        ),
        pytest.param(
            card_with(
                body=[
                    {
                        "type": "Container",
                        "items": [],
                        "selectAction": {
                            "type": "Action.ShowCard",
                            "card": {"type": "AdaptiveCard", "body": []},
                        },
                    }
                ]
            ),
            "selectAction",
            id="show-card-as-select-action",
        ),
        pytest.param(
            card_with(actions=[{"type": "Action.OpenUrl", "url": "javascript:alert(1)"}]),
            "needs an http",
            id="javascript-link",
        ),
        pytest.param(
            card_with(actions=[{"type": "Action.Submit", "title": "Go", "data": {"x": "1"}}]),
            "'action' id",
            id="submit-without-action-id",
        ),
        pytest.param(
            card_with(actions=[{"type": "Action.Execute"}]),
            "Action.Execute is not allowed",
            id="universal-action",
        ),
    ],
)
def test_check_card_refuses_actions_we_do_not_post(card: dict[str, Any], refusal: str) -> None:
    with pytest.raises(CardError, match=refusal):
        check_card(card)


def test_check_card_ignores_action_like_text_in_submit_data() -> None:
    data = {"action": "digest.feedback", "type": "Action.ShowCard"}
    check_card(card_with(actions=[{"type": "Action.Submit", "data": data}]))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"fallbackText": None}, "fallbackText"),
        ({"fallbackText": "  "}, "fallbackText"),
        ({"version": "1.5"}, "version"),
        ({"type": "MessageCard"}, "AdaptiveCard"),
        ({"body": {"type": "TextBlock"}}, "body"),
    ],
)
def test_check_card_refuses_a_card_without_the_basics(change: dict[str, Any], message: str) -> None:
    card = card_with(**change)
    if change.get("fallbackText") is None and "fallbackText" in change:
        del card["fallbackText"]
    with pytest.raises(CardError, match=message):
        check_card(card)


# --- the digest's buttons -------------------------------------------------------------------


def test_digest_buttons_send_the_call_key() -> None:
    buttons = digest_buttons(merged_insights(), "pbx:42")

    assert [(b.title, b.action_id, dict(b.data)) for b in buttons] == [
        ("Show transcript", ACTION_DIGEST_TRANSCRIPT, {"callKey": "pbx:42"}),
        ("Helpful", ACTION_DIGEST_FEEDBACK, {"callKey": "pbx:42", "verdict": VERDICT_HELPFUL}),
        (
            "Not helpful",
            ACTION_DIGEST_FEEDBACK,
            {"callKey": "pbx:42", "verdict": VERDICT_NOT_HELPFUL},
        ),
    ]
    assert (ACTION_DIGEST_TRANSCRIPT, ACTION_DIGEST_FEEDBACK, ACTION_DIGEST_OPEN) == (
        "digest.transcript",
        "digest.feedback",
        "digest.open",
    )
    assert (VERDICT_HELPFUL, VERDICT_NOT_HELPFUL) == ("helpful", "not_helpful")


def test_the_ai_buttons_action_ids() -> None:
    assert (ACTION_AI_UTTERANCES, ACTION_AI_REFRESH, DATA_JOB_ID) == (
        "ai.utterances",
        "ai.refresh",
        "jobId",
    )


def test_digest_buttons_need_a_call_key() -> None:
    with pytest.raises(CardError, match="call key"):
        digest_buttons(merged_insights(), " ")


def test_the_digests_buttons_come_before_the_callers_behind_more() -> None:
    view = digest_view(
        merged_insights(), NEW_YORK, actions=[SubmitAction("Share", "x.share")], call_key="pbx:1"
    )
    assert [a["title"] for a in view["actions"]] == ["Show transcript"]
    assert [a["title"] for a in view["more_actions"]] == ["Helpful", "Not helpful", "Share"]


def test_the_digest_buttons_read_well_as_text() -> None:
    card = render_digest(
        CardRenderer(), CallInsights.from_api(full_body()), NEW_YORK, call_key="pbx:1"
    )
    assert card_as_text(card).splitlines()[-3:] == [
        f"[Open in RingSense] {RINGSENSE_URL}  [Show transcript]",
        "",
        "[More ▾] [Helpful] [Not helpful]",
    ]


# --- the renderer ---------------------------------------------------------------------------


def test_the_default_templates_are_the_repository_templates() -> None:
    assert TEMPLATES_DIR == Path(__file__).resolve().parents[2] / "templates"
    assert CardRenderer().template_names() == (
        "analysis.card.json.j2",
        "calls.card.json.j2",
        "digest.card.json.j2",
        "find.card.json.j2",
        "jobs.card.json.j2",
        "notice.card.json.j2",
        "ringcx_transcript.card.json.j2",
        "settings.card.json.j2",
        "share.card.json.j2",
        "todo.card.json.j2",
        "transcript.card.json.j2",
        "utterances.card.json.j2",
        "welcome.card.json.j2",
    )


def write_template(directory: Path, name: str, text: str) -> CardRenderer:
    (directory / name).write_text(text, encoding="utf-8")
    return CardRenderer(directory)


CARD_TEMPLATE = (
    '{"type": "AdaptiveCard", "version": "1.3", "fallbackText": {{ fallback | tojson }},'
    ' "body": [{"type": "TextBlock", "text": {{ text | tojson }}}]}'
)


def test_render_parses_and_checks_the_output(tmp_path: Path) -> None:
    renderer = write_template(tmp_path, "hello.card.json.j2", CARD_TEMPLATE)

    card = renderer.render("hello.card.json.j2", fallback="Hi", text='say "{{ x }}"\n')

    assert card["body"][0]["text"] == 'say "{{ x }}"\n'
    assert renderer.template_names() == ("hello.card.json.j2",)


def test_a_value_missing_from_the_view_fails_loudly(tmp_path: Path) -> None:
    renderer = write_template(tmp_path, "hello.card.json.j2", CARD_TEMPLATE)
    with pytest.raises(CardError, match="'text' is undefined"):
        renderer.render("hello.card.json.j2", fallback="Hi")


def test_a_template_that_writes_broken_json_fails_where_it_renders(tmp_path: Path) -> None:
    renderer = write_template(tmp_path, "raw.card.json.j2", CARD_TEMPLATE.replace(" | tojson", ""))
    with pytest.raises(CardError, match=r"raw\.card\.json\.j2 rendered invalid JSON"):
        renderer.render("raw.card.json.j2", fallback="Hi", text="x")


def test_a_rendered_card_that_fails_the_check_is_refused(tmp_path: Path) -> None:
    renderer = write_template(tmp_path, "old.card.json.j2", CARD_TEMPLATE.replace("1.3", "1.0"))
    with pytest.raises(CardError, match=r"old\.card\.json\.j2: card version"):
        renderer.render("old.card.json.j2", fallback="Hi", text="x")


def test_an_unknown_template_is_a_card_error() -> None:
    with pytest.raises(CardError, match="nope"):
        CardRenderer().render("nope.card.json.j2")


# --- the digest view ------------------------------------------------------------------------


def test_digest_view_formats_for_the_readers_time_zone() -> None:
    view = digest_view(merged_insights(), ZoneInfo("Europe/Oslo"))

    assert view["facts_line"] == (
        "Outbound call · Wed 4 Sep 2024, 22:44 CEST · 2 min 5 s · Positive sentiment"
    )


def test_digest_view_marks_only_outsiders_as_external() -> None:
    body = event_body()
    body["speakerInfo"].append(
        {"speakerId": "p-3", "name": "", "accountId": "809646XXX", "extensionId": "101"}
    )
    view = digest_view(CallInsights.from_api(body), NEW_YORK)

    assert view["participants"] == [
        {"name": "John Smith", "external": False},
        {"name": "Tracy Debolah", "external": True},
        {"name": "Unknown participant", "external": False},
    ]


@pytest.mark.parametrize(
    ("sentiment", "shown"),
    [("Positive", "Positive"), ("very negative", "Very negative"), ("**Great**", None),
     ("[x](javascript:1)", None), ("x" * 40, None)],
)  # fmt: skip
def test_a_sentiment_that_is_not_a_plain_word_is_left_out(
    sentiment: str, shown: str | None
) -> None:
    body = event_body()
    body["insights"]["Sentiment"] = [{"value": sentiment}]
    view = digest_view(CallInsights.from_api(body), NEW_YORK)

    facts = view["facts_line"].split(" · ")
    assert [f.removesuffix(" sentiment") for f in facts if f.endswith(" sentiment")] == (
        [shown] if shown else []
    )


def test_an_inbound_call_without_start_or_score() -> None:
    body = event_body()
    body.update(callDirection="Inbound", recordingStartTime=None, recordingDurationMs=3725000)
    view = digest_view(CallInsights.from_api(body), NEW_YORK)

    assert view["facts_line"] == "Inbound call · 1 h 2 min · Positive sentiment"
    assert view["score"] is None
    assert view["fallback_text"] == "Call from John Smith to Tracy Debolah, 1 h 2 min"


def test_a_submit_action_needs_an_id() -> None:
    with pytest.raises(CardError, match="action id"):
        digest_view(merged_insights(), NEW_YORK, actions=[SubmitAction("Go", " ")])


@pytest.mark.parametrize(
    ("seconds", "duration", "offset"),
    [(0, "0 s", "00:00"), (9.99, "9 s", "00:09"), (125.963, "2 min 5 s", "02:05"),
     (754, "12 min 34 s", "12:34"), (600, "10 min", "10:00"),
     (3599, "59 min 59 s", "59:59"), (3725, "1 h 2 min", "1:02:05"), (-3, "0 s", "00:00")],
)  # fmt: skip
def test_durations_read_with_units_and_offsets_like_a_clock(
    seconds: float, duration: str, offset: str
) -> None:
    """A call length is a quantity ("12 min 34 s"), a position in a recording a clock."""
    assert format_duration(seconds) == duration
    assert format_offset(seconds) == offset


def test_start_time_names_its_zone() -> None:
    moment = datetime(2024, 1, 15, 9, 5, tzinfo=UTC)
    assert format_start_time(moment, ZoneInfo("America/New_York")) == "Mon 15 Jan 2024, 04:05 EST"
    assert format_start_time(moment, ZoneInfo("Asia/Kolkata")) == "Mon 15 Jan 2024, 14:35 IST"
