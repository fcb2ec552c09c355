"""`analyze` through the sandbox's AI API: webhook results, polling, failures, expiry,
restarts, and who sees what. The media URL's token never leaves the request to RingCentral."""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

import aiohttp
import pytest

from bot.access import NOT_VISIBLE
from bot.app import SERVICES
from bot.cards import card_as_text
from tests.e2e import Stack, eventually, settle


async def people_and_call(stack: Stack) -> tuple[str, str, str, dict[str, Any]]:
    owner = await stack.control.user("Olivia Owner")
    colleague = await stack.control.user("Paul Participant")
    other = await stack.control.user("Omar Other")
    call = await stack.control.call(
        "POST", "/calls", {"ownerExtensionId": owner, "participants": [colleague]}
    )
    await settle(stack.bot)
    return owner, colleague, other, call


async def analysis_cards(stack: Stack, chat: str) -> list[dict[str, Any]]:
    return [
        dict(c)
        for c in await stack.control.cards(chat)
        if "ai." in json.dumps(c["card"]) or "nalys" in card_as_text(c["card"])
    ]


async def ask(stack: Stack, person: str, text: str) -> str:
    dm = await stack.control.chat([person, stack.bot_id])
    await stack.control.say(dm, person, text)
    await settle(stack.bot)
    return dm


async def wait_for_state(stack: Stack, dm: str, words: str, within_s: float = 15) -> str:
    async def finished() -> str | None:
        await settle(stack.bot)
        for card in await stack.control.cards(dm):
            text = card_as_text(card["card"])
            if words in text:
                return text
        return None

    return await eventually(finished, within_s=within_s)


async def test_a_participant_gets_the_analysis_on_the_same_card(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _, colleague, _, call = await people_and_call(stack)
    dm = await ask(stack, colleague, f"analyze {call['sourceRecordId']} speakers=2")
    [pending] = await stack.control.cards(dm)
    shown = card_as_text(pending["card"])
    # the recording is named by its call, never by its id or the job's
    assert shown.startswith("Analysing the call between Olivia Owner and Paul Participant of ")
    assert call["sourceRecordId"] not in shown
    assert "Job " not in shown
    text = await wait_for_state(stack, dm, "Speakers")
    assert "Talk time" in text and "Key phrases" in text
    [final] = await stack.control.cards(dm)
    assert final["cardId"] == pending["cardId"]  # updated in place
    jobs = await stack.control.call("GET", "/ai/jobs")
    [job] = jobs["records"] if isinstance(jobs, dict) else jobs
    sent_uri = job["request"]["body"]["contentUri"]
    assert job["request"]["body"]["source"] == "RingCentral"
    assert "access_token=***" in sent_uri  # the token went to RingCentral (masked here)
    # ...and nowhere else: not in the database, the cards, or the logs.
    services = stack.bot.app[SERVICES]
    token = await services.service_api._tokens.access_token()
    assert token not in await stack.everything_stored()
    assert token not in json.dumps(await stack.control.cards(dm))
    assert token not in caplog.text


async def test_the_media_token_outlives_a_slow_job_without_a_login_per_job(
    stack: Stack,
) -> None:
    """The AI service fetches the media 5-30 minutes after the submit, with the token in
    `contentUri`: a token with 10 minutes left is refreshed first, so the job still
    succeeds 20 minutes later; and that takes a refresh, not a login per job."""
    _, colleague, _, call = await people_and_call(stack)
    world = stack.sandbox.world
    services = stack.bot.app[SERVICES]
    await services.service_api._tokens.access_token()  # signed in at start
    # 50 minutes pass: the service user's token (an hour) has 10 minutes left.
    world.advance(50 * 60)
    services.service_api._tokens._expires_at = time.monotonic() + 10 * 60
    await stack.control.call("POST", "/settings", {"aiJobDelaySeconds": 20 * 60})
    dm = await ask(stack, colleague, f"analyze {call['sourceRecordId']}")
    jobs = await stack.control.call("GET", "/ai/jobs")
    [job] = jobs["records"] if isinstance(jobs, dict) else jobs
    world.advance(20 * 60)
    text = await wait_for_state(stack, dm, "Speakers")
    assert "Could not analyse" not in text
    token_requests = [
        r for r in await stack.control.requests() if r["path"] == "/restapi/oauth/token"
    ]
    assert len(token_requests) == 2  # the start's login and one refresh
    assert job["status"] == "InProgress"


async def test_someone_not_on_the_call_is_refused_and_nothing_starts(stack: Stack) -> None:
    _, _, other, call = await people_and_call(stack)
    dm = await ask(stack, other, f"analyze {call['sourceRecordId']}")
    assert await stack.control.texts(dm, stack.bot_id) == [NOT_VISIBLE]
    jobs = await stack.control.call("GET", "/ai/jobs")
    assert (jobs["records"] if isinstance(jobs, dict) else jobs) == []


async def test_a_media_link_is_analysed_for_the_asker(stack: Stack) -> None:
    person = await stack.control.user("Kim Park")
    dm = await ask(stack, person, "analyze https://media.example.com/calls/demo.mp3 type=Meeting")
    text = await wait_for_state(stack, dm, "Speakers")
    assert "demo.mp3" in text and "https://" not in text
    jobs = await stack.control.call("GET", "/ai/jobs")
    [job] = jobs["records"] if isinstance(jobs, dict) else jobs
    # `source` says where the media comes from: not RingCentral for someone's own link.
    assert job["request"]["body"].get("source") != "RingCentral"


async def test_a_zoom_link_says_its_source(stack: Stack) -> None:
    person = await stack.control.user("Kim Park")
    await ask(stack, person, "analyze https://us02web.zoom.us/rec/play/standup.mp4")
    jobs = await stack.control.call("GET", "/ai/jobs")
    [job] = jobs["records"] if isinstance(jobs, dict) else jobs
    assert job["request"]["body"]["source"] == "Zoom"


async def test_a_failed_job_says_which_parameter_was_wrong(stack: Stack) -> None:
    await stack.control.call("POST", "/settings", {"aiJobDelaySeconds": 3600})
    person = await stack.control.user("Kim Park")
    dm = await ask(stack, person, "analyze https://media.example.com/x.mp3")
    jobs = await stack.control.call("GET", "/ai/jobs")
    [job] = jobs["records"] if isinstance(jobs, dict) else jobs
    await stack.control.call("POST", f"/ai/jobs/{job['jobId']}", {"outcome": "fail"})
    text = await wait_for_state(stack, dm, "Could not analyse")
    assert "contentUri" in text


async def test_a_result_whose_webhook_never_comes_is_found_by_polling(stack: Stack) -> None:
    await stack.control.call("POST", "/settings", {"aiWebhookDelivery": "never"})
    person = await stack.control.user("Kim Park")
    dm = await ask(stack, person, "analyze https://media.example.com/y.wav")
    await wait_for_state(stack, dm, "Speakers", within_s=20)


async def test_a_result_that_arrives_while_the_bot_is_down_is_shown_after_restart(
    stack: Stack,
) -> None:
    await stack.control.call("POST", "/settings", {"aiJobDelaySeconds": 1})
    person = await stack.control.user("Kim Park")
    dm = await ask(stack, person, "analyze https://media.example.com/z.ogg")
    await stack.bot.stop()
    jobs = await stack.control.call("GET", "/ai/jobs")

    async def webhook_tried() -> bool:
        listed = await stack.control.call("GET", "/ai/jobs")
        [job] = listed["records"] if isinstance(listed, dict) else listed
        return bool(job["webhookDeliveries"])

    await eventually(webhook_tried, within_s=10)
    assert jobs
    await stack.restart_bot(already_stopped=True)
    await wait_for_state(stack, dm, "Speakers", within_s=20)
    assert len(await stack.control.cards(dm)) == 1


async def test_a_job_past_its_week_is_closed_with_a_clear_message(stack: Stack) -> None:
    await stack.control.call("POST", "/settings", {"aiJobDelaySeconds": 10**7})
    person = await stack.control.user("Kim Park")
    dm = await ask(stack, person, "analyze https://media.example.com/old.mp3")
    await stack.control.call("POST", "/clock", {"advanceSeconds": 8 * 86400})
    text = await wait_for_state(stack, dm, "no longer has the result")
    assert "one week" in text


async def test_unknown_forged_and_late_results_change_nothing(stack: Stack) -> None:
    person = await stack.control.user("Kim Park")
    dm = await ask(stack, person, "analyze https://media.example.com/a.mp3")
    await wait_for_state(stack, dm, "Speakers")
    jobs = await stack.control.call("GET", "/ai/jobs")
    [job] = jobs["records"] if isinstance(jobs, dict) else jobs
    [delivery] = job["webhookDeliveries"]
    address = delivery["url"]
    async with aiohttp.ClientSession() as session:
        async with session.post(address, json=delivery["payload"]) as response:
            assert response.status == 200  # a late duplicate is acknowledged...
        # another job id at this job's address
        async with session.post(address, json={**delivery["payload"], "jobId": "nope"}) as r:
            assert r.status == 404  # the body names another job than the address's
        forged = address.rsplit("/", 1)[0] + "/not-the-secret"
        async with session.post(forged, json=delivery["payload"]) as response:
            assert response.status == 404  # no job has this address
        async with session.post(address, data=b"{not json") as response:
            assert response.status == 400
    await settle(stack.bot)
    assert len(await stack.control.cards(dm)) == 1  # ...and changes nothing


async def test_the_documented_callback_without_job_id_is_taken_at_its_address(
    stack: Stack,
) -> None:
    """The AI API posts `{"status", "response"}` with no `jobId` (seed 000's body): the
    job is known by the address it was given, so the result comes by webhook at once."""
    person = await stack.control.user("Kim Park")
    dm = await ask(stack, person, "analyze https://media.example.com/documented.mp3")
    await wait_for_state(stack, dm, "Speakers")
    jobs = await stack.control.call("GET", "/ai/jobs")
    [job] = jobs["records"] if isinstance(jobs, dict) else jobs
    [delivery] = job["webhookDeliveries"]
    assert "jobId" not in delivery["payload"]
    assert set(delivery["payload"]) == {"status", "response"}
    assert delivery["status"] == 200


async def test_the_ai_webhook_answers_the_validation_handshake(stack: Stack) -> None:
    url = f"{stack.config.public_url}/webhooks/ai/any-address"
    async with aiohttp.ClientSession() as session:
        async with session.post(url, headers={"Validation-Token": "abc123"}) as response:
            assert response.status == 200
            assert response.headers.get("Validation-Token") == "abc123"
        async with session.post(url, json={"status": "Success", "response": {}}) as response:
            assert response.status == 404  # without the handshake header: no such job


async def test_jobs_lists_my_analyses(stack: Stack) -> None:
    person = await stack.control.user("Kim Park")
    dm = await ask(stack, person, "analyze https://media.example.com/b.mp3")
    await wait_for_state(stack, dm, "Speakers")
    await stack.control.say(dm, person, "jobs")
    await settle(stack.bot)
    texts = [card_as_text(c["card"]) for c in await stack.control.cards(dm)]
    assert any("b.mp3" in t and "Done" in t for t in texts)


async def test_bad_options_get_a_helpful_answer(stack: Stack) -> None:
    person = await stack.control.user("Kim Park")
    dm = await ask(stack, person, "analyze https://media.example.com/c.mp3 lang=french")
    [reply] = await stack.control.texts(dm, stack.bot_id)
    assert "lang=en-US" in reply


async def test_a_job_ends_at_the_expiration_time_the_api_gave(stack: Stack) -> None:
    """The status answer's `expirationTime` is when RingCentral forgets the job: the bot
    closes it then, instead of its own guess of a week, and asks nothing after it."""
    await stack.control.call(
        "POST",
        "/settings",
        {"aiJobDelaySeconds": 10**7, "aiWebhookDelivery": "never", "aiJobLifetimeSeconds": 3},
    )
    person = await stack.control.user("Kim Park")
    dm = await ask(stack, person, "analyze https://media.example.com/short-lived.mp3")
    text = await wait_for_state(stack, dm, "no longer has the result", within_s=20)
    assert "Analysing" not in text
    status_answers = [
        r["status"] for r in await stack.control.requests() if "/ai/status/v1/jobs/" in r["path"]
    ]
    assert status_answers and 404 not in status_answers  # closed on time, not by a 404


def _speaker_lines(text: str) -> list[str]:
    """The utterance lines of an analysis card ("mm:ss Name: words")."""
    return [line for line in text.splitlines() if re.match(r"^\d\d:\d\d ", line)]


async def _sent_bodies(stack: Stack) -> list[dict[str, Any]]:
    jobs = await stack.control.call("GET", "/ai/jobs")
    return [job["request"]["body"] for job in (jobs["records"] if isinstance(jobs, dict) else jobs)]


async def test_a_speaker_recognised_by_voice_is_named_and_nobody_is_named_by_guess(
    stack: Stack,
) -> None:
    """Olivia's voice is enrolled under her extension id (as RingCentral recommends), Paul's
    is not: the bot asks RingCentral to listen for Olivia only, the card names her words,
    and Paul's are the other party's, never his name by elimination."""
    owner, colleague, _, call = await people_and_call(stack)
    await stack.control.call("POST", "/ai/enrollments", {"enrollmentId": owner})
    dm = await ask(stack, colleague, f"analyze {call['sourceRecordId']}")
    text = await wait_for_state(stack, dm, "Speakers")
    [body] = await _sent_bodies(stack)
    assert body["speakerIds"] == [owner]
    lines = _speaker_lines(text)
    assert lines
    speakers = {line[6:].split(":")[0] for line in lines}
    assert speakers == {"Olivia Owner", "Other party"}
    assert "Paul Participant:" not in text
    assert "Speaker A" not in text and "Speaker 0" not in text
    table = text.split("Speakers", 1)[1]
    assert "Olivia Owner" in table and "Other party" in table


async def test_without_enrolled_voices_no_one_is_named_and_nothing_fails(stack: Stack) -> None:
    _, colleague, _, call = await people_and_call(stack)
    dm = await ask(stack, colleague, f"analyze {call['sourceRecordId']}")
    text = await wait_for_state(stack, dm, "Speakers")
    [body] = await _sent_bodies(stack)
    assert "speakerIds" not in body  # unknown ids would make RingCentral refuse the job
    speakers = {line[6:].split(":")[0] for line in _speaker_lines(text)}
    assert speakers == {"Speaker A", "Speaker B"}


async def test_an_enrollment_gone_since_it_was_checked_costs_the_names_not_the_analysis(
    stack: Stack,
) -> None:
    owner, colleague, _, call = await people_and_call(stack)
    await stack.control.call("POST", "/ai/enrollments", {"enrollmentId": owner})
    dm = await ask(stack, colleague, f"analyze {call['sourceRecordId']}")
    await wait_for_state(stack, dm, "Olivia Owner:")
    # the enrollment is deleted while the bot still remembers it
    stack.sandbox.world.ai_enrollments.clear()
    await stack.control.say(dm, colleague, f"analyze {call['sourceRecordId']}")
    await settle(stack.bot)

    async def two_results() -> list[str] | None:
        await settle(stack.bot)
        texts = [card_as_text(c["card"]) for c in await stack.control.cards(dm)]
        done = [t for t in texts if "Speakers" in t]
        return done if len(done) == 2 else None

    first, second = await eventually(two_results, within_s=15)
    assert "Olivia Owner:" in first
    assert "Could not analyse" not in second and "refused" not in second
    speakers = {line[6:].split(":")[0] for line in _speaker_lines(second)}
    assert speakers == {"Speaker A", "Speaker B"}
    bodies = await _sent_bodies(stack)
    assert [b.get("speakerIds") for b in bodies] == [[owner], None]


async def test_the_card_shows_energy_emotions_and_tasks_the_api_documents(stack: Stack) -> None:
    """Seed 004's insights reach the reader: Energy in the speaker table, each utterance's
    emotion (one of the documented ones), and the tasks RingCentral found."""
    person = await stack.control.user("Kim Park")
    dm = await ask(stack, person, "analyze https://media.example.com/calls/demo.mp3")
    text = await wait_for_state(stack, dm, "Speakers")
    table_heading = next(line for line in text.splitlines() if line.startswith("Speaker "))
    assert "Energy" in table_heading
    assert "\nTasks\n• " in text
    emotions = set(re.findall(r"\((\w+)\)$", text, flags=re.MULTILINE))
    assert emotions and emotions <= {
        "Anger",
        "Anticipation",
        "Disgust",
        "Fear",
        "Joy",
        "Sadness",
        "Surprise",
        "Trust",
        "Neutral",
    }
