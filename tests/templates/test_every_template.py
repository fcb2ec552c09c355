"""Every card template: valid Adaptive Cards 1.3 for each of its sample views, with only the
actions we post, and every button carrying a routed action id and string data."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bot.analysis import InteractionAnalysis, JobSummary
from bot.cards import (
    ANALYSIS_TEMPLATE,
    CALLS_TEMPLATE,
    DIGEST_TEMPLATE,
    JOBS_TEMPLATE,
    NOTICE_TEMPLATE,
    RINGCX_TRANSCRIPT_TEMPLATE,
    TRANSCRIPT_TEMPLATE,
    UTTERANCES_TEMPLATE,
    WELCOME_TEMPLATE,
    CardRenderer,
    SubmitAction,
    analysis_view,
    calls_view,
    check_card,
    digest_view,
    jobs_view,
    notice_view,
    ringcx_transcript_view,
    transcript_view,
    utterances_view,
    welcome_view,
)
from bot.cards.find import FIND_TEMPLATE, find_view
from bot.cards.share import SHARE_TEMPLATE, share_view
from bot.cards.todo import TODO_TEMPLATE, todo_view
from bot.ringcx_model import Segment, Transcript
from bot.ringsense import CallInsights
from bot.search import search_lines
from bot.settings import UserSettings
from bot.settings_card import SETTINGS_TEMPLATE, settings_view
from bot.storage import NextStepItem, SearchHit
from tests.templates.adaptive_cards import assert_valid_card, elements, submit_actions
from tests.templates.samples import (
    AI_JOB_ID,
    FAR_FUTURE,
    NEW_YORK,
    RECORDING_LABEL,
    REQUESTED_AT,
    analysis_of,
    analyze_interaction_body,
    customised_settings,
    event_body,
    full_body,
    insights_with,
    merged_insights,
    ringcx_named_transcript,
    ringcx_segments,
    ringcx_voice_transcript,
    sample_analysis,
    transcript_of,
    utterances_of,
)

View = Callable[[], dict[str, Any]]


def _bare() -> CallInsights:
    """A call known only by its ids."""
    return CallInsights.from_api({"domain": "pbx", "sourceRecordId": "r", "ownerExtensionId": "e"})


def _analysis(state: str, **options: Any) -> dict[str, Any]:
    return analysis_view(
        source_label=RECORDING_LABEL,
        job_id=AI_JOB_ID,
        state=state,  # type: ignore[arg-type]
        requested_at=REQUESTED_AT,
        tz=NEW_YORK,
        **options,
    )


def _ringcx(index: int, transcript: dict[str, Any], **options: Any) -> dict[str, Any]:
    return ringcx_transcript_view(
        segment=Segment.from_api(ringcx_segments()[index]),
        transcript=Transcript.from_api(transcript),
        tz=NEW_YORK,
        **options,
    )


def _item(item_id: int, text: str, owner: str | None = "Olivia Owner") -> NextStepItem:
    return NextStepItem(
        item_id=item_id,
        account_id="1",
        call_key="pbx:1",
        assignee_extension_id="101",
        owner_name=owner,
        text=text,
        state="open",
        call_title='Call with "ACME" **now**',
        call_start="2024-09-04T20:44:00.000Z",
    )


def _hits() -> list[tuple[SearchHit, CallInsights]]:
    call = merged_insights()
    return [(SearchHit("pbx:1", line, -1.0, None), call) for line in search_lines(call)[:3]] + [
        (SearchHit("pbx:r", search_lines(merged_insights())[-1], -0.5, None), _bare())
    ]


def _paused() -> UserSettings:
    settings = customised_settings()
    return UserSettings(**{**settings.__dict__, "paused_until": FAR_FUTURE})


SAMPLE_VIEWS: dict[str, dict[str, View]] = {
    DIGEST_TEMPLATE: {
        "every-section": lambda: digest_view(CallInsights.from_api(full_body()), NEW_YORK),
        "with-buttons": lambda: digest_view(
            CallInsights.from_api(full_body()), NEW_YORK, call_key="pbx:1"
        ),
        "caller-buttons": lambda: digest_view(
            CallInsights.from_api(full_body()),
            NEW_YORK,
            actions=[SubmitAction("Show transcript", "digest.transcript")],
        ),
        "nothing-known": lambda: digest_view(_bare(), NEW_YORK, call_key="pbx:r"),
    },
    SETTINGS_TEMPLATE: {
        "defaults": lambda: settings_view(UserSettings("1"), default_timezone="UTC"),
        "customised": lambda: settings_view(customised_settings(), default_timezone="UTC"),
        "paused-and-saved": lambda: settings_view(
            _paused(), default_timezone="America/New_York", saved=True
        ),
        "errors": lambda: settings_view(
            customised_settings(),
            default_timezone="UTC",
            errors=["Choose at least one section", "Minimum AI score must be a number"],
            submitted={"sections": "", "minAiScore": "eleven", "minDurationMinutes": "2.5"},
        ),
    },
    WELCOME_TEMPLATE: {
        "direct": lambda: welcome_view(bot_name="Digest Bot", chat_kind="direct"),
        "group": lambda: welcome_view(bot_name="Digest Bot", chat_kind="group"),
    },
    CALLS_TEMPLATE: {
        "calls": lambda: calls_view(
            [("pbx:1", merged_insights()), ("pbx:2", CallInsights.from_api(event_body()))],
            NEW_YORK,
            heading="Your recent calls",
        ),
        "bare-call": lambda: calls_view([("pbx:r", _bare())], NEW_YORK, heading="Recent"),
        "empty": lambda: calls_view([], NEW_YORK, heading="Your recent calls"),
    },
    TRANSCRIPT_TEMPLATE: {
        "whole": lambda: transcript_view(merged_insights(), NEW_YORK),
        "truncated": lambda: transcript_view(
            insights_with(insights={"Transcript": transcript_of(5)}), NEW_YORK, max_lines=2
        ),
        "none": lambda: transcript_view(insights_with(insights={}), NEW_YORK),
    },
    NOTICE_TEMPLATE: {
        "notice": lambda: notice_view("The transcript is in your direct messages with me."),
    },
    ANALYSIS_TEMPLATE: {
        "pending": lambda: _analysis("pending"),
        "success-with-more": lambda: _analysis(
            "success", analysis=sample_analysis(), max_utterances=3
        ),
        "success-docs-excerpt": lambda: _analysis(
            "success", analysis=analysis_of(analyze_interaction_body()["response"])
        ),
        "success-nothing": lambda: _analysis("success", analysis=InteractionAnalysis.from_api({})),
        "failed": lambda: _analysis("failed", problem="RingCentral could not use the recording."),
        "failed-no-reason": lambda: _analysis("failed"),
        "expired": lambda: _analysis("expired"),
    },
    UTTERANCES_TEMPLATE: {
        "all": lambda: utterances_view(source_label="call.mp3", analysis=sample_analysis()),
        "capped": lambda: utterances_view(
            source_label="call.mp3",
            analysis=analysis_of({"utteranceInsights": utterances_of(5)}),
            max_utterances=2,
        ),
        "none": lambda: utterances_view(
            source_label="call.mp3", analysis=InteractionAnalysis.from_api({})
        ),
    },
    JOBS_TEMPLATE: {
        "jobs": lambda: jobs_view(
            [
                JobSummary("j-1", "call.mp3", "pending", REQUESTED_AT, None),
                JobSummary(AI_JOB_ID, RECORDING_LABEL, "success", REQUESTED_AT, REQUESTED_AT),
            ],
            NEW_YORK,
        ),
        "empty": lambda: jobs_view([], NEW_YORK),
    },
    FIND_TEMPLATE: {
        "hits": lambda: find_view(_hits(), NEW_YORK, heading='Found 2 calls for "quote"'),
    },
    SHARE_TEMPLATE: {
        "chats": lambda: share_view(
            merged_insights(), "pbx:1", [("1", "Deal room"), ("2", "")], skipped=2
        ),
        "confirm": lambda: share_view(
            merged_insights(),
            "pbx:1",
            [("1", "Deal room")],
            warning="This call had people from outside your company. Share it anyway?",
            confirm_chat=("1", "Deal room"),
        ),
        "none-shared": lambda: share_view(_bare(), "pbx:r", [], notice="Shared to Deals."),
    },
    TODO_TEMPLATE: {
        "mine": lambda: todo_view(
            [_item(1, "Send the quote"), _item(2, "[link](https://x.example) ${x}", None)],
            NEW_YORK,
            heading="My open next steps",
            list_name="mine",
            total=5,
        ),
        "everyone-after-done": lambda: todo_view(
            [_item(3, "Book the demo")],
            NEW_YORK,
            heading="Everyone's open next steps",
            list_name="all",
            show_owner=True,
            notice="Marked done: Send the quote",
        ),
        "rollup": lambda: todo_view(
            [_item(4, "Book the demo")],
            NEW_YORK,
            heading="Your day",
            list_name="rollup",
            calls=["Call with ACME · 16:44 · 12 min"],
            calls_heading="Today's analysed calls",
        ),
        "empty": lambda: todo_view([], NEW_YORK, heading="My open next steps", list_name="mine"),
    },
    RINGCX_TRANSCRIPT_TEMPLATE: {
        "voice": lambda: _ringcx(0, ringcx_voice_transcript(), queue_label="Tier 2"),
        "named-truncated": lambda: _ringcx(1, ringcx_named_transcript(), max_lines=1),
        "empty-with-error": lambda: _ringcx(
            2, {"errorCode": "E", "errorMessage": "Not ready", "transcript": []}
        ),
    },
}

SAMPLES = [
    pytest.param(template, view, id=f"{template.split('.')[0]}-{name}")
    for template, views in SAMPLE_VIEWS.items()
    for name, view in views.items()
]


@pytest.fixture(scope="module")
def renderer() -> CardRenderer:
    return CardRenderer()


def test_every_template_has_sample_views() -> None:
    assert set(CardRenderer().template_names()) == set(SAMPLE_VIEWS)


@pytest.mark.parametrize(("template_name", "view"), SAMPLES)
def test_every_template_renders_a_valid_card(
    renderer: CardRenderer, template_name: str, view: View
) -> None:
    card = renderer.render(template_name, **view())

    assert_valid_card(card)
    check_card(card)
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"


@pytest.mark.parametrize(("template_name", "view"), SAMPLES)
def test_buttons_carry_an_action_id_and_string_data(
    renderer: CardRenderer, template_name: str, view: View
) -> None:
    card = renderer.render(template_name, **view())

    kinds = {e["type"] for e in elements(card) if e["type"].startswith("Action.")}
    assert kinds <= {
        "Action.OpenUrl",
        "Action.Submit",
        "Action.ShowCard",
        "Action.ToggleVisibility",
    }
    visible = [a for a in card.get("actions", []) if a["type"] != "Action.ShowCard"]
    assert len(visible) <= 2, "more than two buttons are cut short at 340 px"
    for button in submit_actions(card):
        assert button["title"].strip()
        assert button["data"]["action"] in {
            "settings.save",
            "todo.done",
            "digest.share",
            "digest.share.to",
            "digest.transcript",
            "digest.feedback",
            "digest.open",
            "ai.refresh",
            "ai.utterances",
        }
        assert all(isinstance(v, str) for v in button["data"].values()), button["data"]
