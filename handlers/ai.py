"""Analyse any recording with the AI API: `analyze`, `jobs`, and the result's card.

The media URL of a RingCentral recording is its `contentUri` with our access token
appended: that string goes to RingCentral in the request body and nowhere else: not into
the database, a card, a log line or an error. Only the people entitled to the recording
(its participants and administrators), and the person who asked, see the result.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from bot import events, payloads
from bot.access import NOT_VISIBLE, is_admin
from bot.ai import AI_WEBHOOK_PREFIX, PENDING, secret_hash
from bot.analysis import (
    AiError,
    AnalysisFormatError,
    InteractionAnalysis,
    JobResult,
    JobSummary,
    describe_ai_error,
    describe_job_failure,
)
from bot.cards import (
    ACTION_AI_REFRESH,
    ACTION_AI_UTTERANCES,
    DATA_JOB_ID,
    analysis_card,
    format_start_time,
    jobs_card,
    message_dialog,
    utterances_card,
)
from bot.quoting import for_log, quote_for_chat
from bot.rc import RingCentralBadRequest, RingCentralNotFound
from bot.router import Context, Ignored, Router, direct
from bot.speakers import party_names, voices_to_recognise
from bot.storage import AiJob
from handlers.calls import answer_where_all_may_see, timezone_for

log = logging.getLogger(__name__)

router = Router("ai")

RESULT_RETENTION = timedelta(days=7)
CALL_LOG_LINK = re.compile(
    r"^https://[^/\s]+/restapi/v1\.0/account/[^/\s]+(?:/extension/[^/\s]+)?/call-log/([\w-]+)"
)
RECORDING_ID = re.compile(r"^\d{4,30}$")
ENCODINGS = {
    ".mp3": "Mpeg",
    ".mpeg": "Mpeg",
    ".mp4": "Mp4",
    ".m4a": "Mp4",
    ".wav": "Wav",
    ".webm": "Webm",
    ".aac": "Aac",
    ".avi": "Avi",
    ".ogg": "Ogg",
}
AUDIO_TYPES = (
    "CallCenter",
    "Meeting",
    "EarningsCalls",
    "Interview",
    "PressConference",
    "Voicemail",
)
LANGUAGE = re.compile(r"^[a-z]{2}-[A-Z]{2}$")
#: `source` names where the media comes from (the spec: "Phone, RingCentral, GoogleMeet,
#: Zoom etc"); a link on a host we don't recognise says nothing rather than something false.
MEDIA_SOURCES = (
    ("zoom.us", "Zoom"),
    ("meet.google.com", "GoogleMeet"),
    ("ringcentral.com", "RingCentral"),
)


def media_source(url: str) -> str | None:
    host = (urlsplit(url).hostname or "").lower()
    for domain, source in MEDIA_SOURCES:
        if host == domain or host.endswith("." + domain):
            return source
    return None


class SourceError(ValueError):
    """What is wrong with what the person asked to analyse, in their words."""


def _options(words: list[str]) -> dict[str, str]:
    options: dict[str, str] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not value:
            raise SourceError(
                f'I did not understand "{quote_for_chat(word[:40])}". Options look like '
                "`lang=fr-FR`, `speakers=3`, `type=Meeting`."
            )
        options[key.lower()] = value
    unknown = set(options) - {"lang", "speakers", "type", "encoding"}
    if unknown:
        raise SourceError(
            f'Unknown option "{quote_for_chat(sorted(unknown)[0][:40])}": I know lang, speakers, '
            "type and encoding."
        )
    return options


def _request_body(
    media_url: str,
    encoding: str,
    options: Mapping[str, str],
    *,
    phone_call: bool,
    source: str | None,
) -> dict[str, Any]:
    language = options.get("lang", "en-US")
    if not LANGUAGE.match(language):
        raise SourceError("The language looks like `lang=en-US` or `lang=fr-FR`.")
    audio_type = options.get("type", "CallCenter" if phone_call else "Meeting")
    match = [t for t in AUDIO_TYPES if t.lower() == audio_type.lower()]
    if not match:
        raise SourceError("The type is one of " + ", ".join(AUDIO_TYPES) + ".")
    speakers = options.get("speakers", "2" if phone_call else "")
    body: dict[str, Any] = {
        "contentUri": media_url,
        "encoding": options.get("encoding", encoding),
        "languageCode": language,
        "audioType": match[0],
        "insights": ["All"],
        "enableVoiceActivityDetection": True,
        "separateSpeakerPerChannel": False,
    }
    if source is not None:
        body["source"] = source
    if speakers:
        if not speakers.isdigit() or not 1 <= int(speakers) <= 20:
            raise SourceError("The number of speakers is a whole number from 1 to 20.")
        body["speakerCount"] = int(speakers)
    return body


def _extensions_in(record: Mapping[str, Any]) -> set[str]:
    found: set[str] = set()
    for side in ("from", "to"):
        party = record.get(side)
        if isinstance(party, Mapping) and party.get("extensionId") is not None:
            found.add(str(party["extensionId"]))
    uri = str(record.get("uri", ""))
    match = re.search(r"/extension/(\d+)/", uri)
    if match:
        found.add(match.group(1))
    return found


async def _recording_people(
    ctx: Context, recording_id: str
) -> tuple[set[str], Mapping[str, Any] | None, list[Mapping[str, Any]]]:
    """Everyone of the account on the call this recording belongs to, that call's record
    (from the call log; None when it is not there), and every call-log record of it (one
    per extension on the call)."""
    since = (datetime.now(UTC) - timedelta(days=90)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    people: set[str] = set()
    found: Mapping[str, Any] | None = None
    records_of_call: list[Mapping[str, Any]] = []
    page = 1
    while page <= 10:
        records, more = await ctx.services.service_api.company_call_log(
            date_from=since, page=page, per_page=1000
        )
        for record in records:
            recording = record.get("recording")
            if isinstance(recording, Mapping) and str(recording.get("id")) == recording_id:
                people |= _extensions_in(record)
                found = found or record
                records_of_call.append(record)
        if not more:
            break
        page += 1
    return people, found, records_of_call


def recording_label(record: Mapping[str, Any] | None, tz: ZoneInfo) -> str:
    """How a person knows a recording: by its call ("the call between Olivia Owner and
    Paul Participant of Mon 30 Nov 2026, 12:55 EST"), never by the recording's id."""
    if record is None:
        return "a call recording"
    names = []
    for side in ("from", "to"):
        party = record.get(side)
        if isinstance(party, Mapping):
            name = party.get("name") or party.get("phoneNumber")
            if isinstance(name, str) and name.strip() and name not in names:
                names.append(name.strip())
    started = payloads.timestamp(record.get("startTime"))
    when = f" of {format_start_time(started, tz)}" if started else ""
    if len(names) == 2:
        return f"the call between {names[0]} and {names[1]}{when}"
    if names:
        return f"the call with {names[0]}{when}"
    return f"the call{when}" if when else "a call recording"


@router.command(
    "analyze",
    summary="analyse a recording with RingCentral's AI (talk ratio, pace, summaries…)",
    usage="analyze <recording id | call-log link | https link to a media file> [options]",
    aliases=("analyse",),
    details=(
        "Options: `lang=fr-FR` (default en-US), `speakers=3`, `type=Meeting` (CallCenter, "
        "Meeting, EarningsCalls, Interview, PressConference, Voicemail), `encoding=Wav`. "
        "The result usually takes 5–10 minutes; I update the card when it arrives. "
        "Say **jobs** to see your analyses."
    ),
)
async def analyze(ctx: Context) -> None:
    asker = ctx.actor_id
    assert asker is not None
    words = ctx.args.split()
    if not words:
        await ctx.reply(
            "What should I analyse? Say **analyze** and a recording id, a call-log "
            "link or an https link to a media file."
        )
        return
    try:
        options = _options(words[1:])
        job = await _start(ctx, words[0].strip("<>"), options)
    except SourceError as err:
        await ctx.reply(str(err))
        return
    except RingCentralBadRequest as err:
        problem = describe_ai_error(AiError(err.error_code, err.message, err.parameter_name))
        # RingCentral's message may repeat what was asked (the link, say): quoted.
        await ctx.reply(f"RingCentral refused the analysis. {quote_for_chat(problem)}")
        return
    if job is None:
        await ctx.reply(NOT_VISIBLE)
        return
    await _show(ctx, job)


async def _start(ctx: Context, source: str, options: dict[str, str]) -> AiJob | None:
    """Resolve the source, check who may see it, start the job, remember it."""
    services = ctx.services
    asker = ctx.actor_id
    assert asker is not None
    admins = services.config.admins
    recording_id: str | None = None
    link = CALL_LOG_LINK.match(source)
    if RECORDING_ID.match(source) or link:
        if link:
            try:
                record = await services.service_api.call_log_record(link.group(1))
            except RingCentralNotFound:
                return None
            recording = record.get("recording")
            if not isinstance(recording, Mapping) or recording.get("id") is None:
                raise SourceError("That call has no recording to analyse.")
            recording_id = str(recording["id"])
            in_log, _, call_records = await _recording_people(ctx, recording_id)
            people = _extensions_in(record) | in_log
            call_records = [record, *call_records]
            call_record: Mapping[str, Any] | None = record
        else:
            recording_id = source
            people, call_record, call_records = await _recording_people(ctx, recording_id)
        # Recordings are read through the service user: only people confirmed to be of its
        # account, on the recording or administrators of that account, may have them analysed.
        person = await ctx.actor_identity()
        home = services.service_account_id
        if person is None or person.account_id != home:
            return None
        if asker not in people and not is_admin(person, admins, home):
            return None
        try:
            metadata = await services.service_api.recording(recording_id)
        except RingCentralNotFound:
            return None
        content_uri = str(metadata.get("contentUri") or "")
        if not content_uri:
            return None
        media_url = await services.service_api.media_url_with_token(content_uri)
        encoding = "Wav" if "wav" in str(metadata.get("contentType", "")) else "Mpeg"
        label = recording_label(call_record, timezone_for(ctx))
        body = _request_body(media_url, encoding, options, phone_call=True, source="RingCentral")
        speaker_names = await voices_to_recognise(
            services.speaker_directory,
            services.service_api,
            home,
            people,
            party_names(call_records),
        )
        if speaker_names:
            body["speakerIds"] = sorted(speaker_names)
        entitled = frozenset(people | {asker})
    elif source.lower().startswith("https://"):
        parts = urlsplit(source)
        name = PurePosixPath(parts.path).name or parts.netloc
        encoding = ENCODINGS.get(PurePosixPath(name).suffix.lower(), "")
        if not encoding and "encoding" not in options:
            raise SourceError(
                "I can't tell the media format from that link: add "
                "`encoding=Mpeg` (or Mp4, Wav, Webm, Aac, Avi, Ogg)."
            )
        label = name[:80] if name else "a media file"
        body = _request_body(
            source, encoding or "Mpeg", options, phone_call=False, source=media_source(source)
        )
        speaker_names = {}
        entitled = frozenset({asker})
    else:
        raise SourceError(
            "I can analyse a recording id (digits), a call-log link or an https "
            "link to a media file."
        )
    secret = secrets.token_urlsafe(24)
    webhook = f"{services.config.public_url}{AI_WEBHOOK_PREFIX}{secret}"
    try:
        job_id = await services.service_api.analyze_interaction(webhook, body)
    except RingCentralBadRequest as err:
        if "speakerIds" not in body or (err.parameter_name or "").lower() != "speakerids":
            raise
        # An enrollment went away since we looked: analyse without recognising voices
        # rather than not at all (the speakers then stay unnamed).
        log.info("AI API refused speakerIds (%s); analysing without them", err.error_code)
        services.speaker_directory.forget_enrollments(services.service_account_id)
        del body["speakerIds"]
        speaker_names = {}
        job_id = await services.service_api.analyze_interaction(webhook, body)
    now = time.time()
    job = AiJob(
        job_id=job_id,
        requester_id=asker,
        account_id=ctx.bot.account_id,
        destination={},
        source_label=label,
        recording_id=recording_id,
        entitled_ids=entitled,
        webhook_secret_hash=secret_hash(secret),
        state=PENDING,
        requested_at=now,
        expires_at=now + RESULT_RETENTION.total_seconds(),
        speaker_names=speaker_names,
    )
    destination = await answer_where_all_may_see(
        ctx, lambda person: person is not None and person.extension_id in entitled
    )
    job = replace(job, destination=destination)
    await services.storage.save_ai_job(job)
    log.info("AI job %s started for %s (%s)", for_log(job_id), asker, for_log(label))
    return job


def _card(
    ctx: Context, job: AiJob, *, analysis: InteractionAnalysis | None = None
) -> dict[str, Any]:
    return analysis_card(
        ctx.services.cards,
        source_label=job.source_label,
        job_id=job.job_id,
        state=job.state,  # type: ignore[arg-type]
        requested_at=datetime.fromtimestamp(job.requested_at, UTC),
        tz=timezone_for(ctx),
        analysis=analysis,
        problem=job.problem,
        speaker_names=job.speaker_names,
    )


async def _show(ctx: Context, job: AiJob, analysis: InteractionAnalysis | None = None) -> None:
    """Post the job's card, or update it in place if it was posted already."""
    await ctx.send_card(
        job.destination, _card(ctx, job, analysis=analysis), card_key=f"ai:{job.job_id}"
    )


def _analysis_of(job: AiJob) -> InteractionAnalysis | None:
    if job.result is None:
        return None
    try:
        return JobResult.from_api(job.result, job_id=job.job_id).analysis
    except AnalysisFormatError:
        return None


@router.event(events.AI_RESULT)
async def record_result(ctx: Context) -> None:
    """A result (from the webhook or from polling), or the news that the job expired."""
    assert ctx.notification is not None
    body = ctx.notification.body
    job = await ctx.services.storage.ai_job(str(body.get("jobId", "")))
    if job is None or job.state != PENDING:
        raise Ignored("no pending job for this result")
    ctx.settings = await ctx.services.storage.user_settings(job.requester_id)
    analysis: InteractionAnalysis | None = None
    if body.get("expired"):
        job = replace(job, state="expired", finished_at=time.time())
    else:
        raw = body.get("result")
        try:
            result = JobResult.from_api(raw if isinstance(raw, Mapping) else {}, job_id=job.job_id)
        except AnalysisFormatError as err:
            log.warning("AI result for %s unreadable: %s", job.job_id, err)
            job = replace(
                job,
                state="failed",
                finished_at=time.time(),
                problem="RingCentral sent a result I could not read.",
            )
        else:
            if result.status == "Success":
                analysis = result.analysis
                job = replace(
                    job,
                    state="success",
                    finished_at=time.time(),
                    result=dict(raw) if isinstance(raw, Mapping) else None,
                )
            elif result.status == "Fail":
                job = replace(
                    job,
                    state="failed",
                    finished_at=time.time(),
                    problem=describe_job_failure(result),
                )
            else:
                raise Ignored("the job is still in progress")
    await ctx.services.storage.save_ai_job(job)
    await _show(ctx, job, analysis)


@router.command("jobs", summary="my pending and recent analyses", aliases=("analyses",))
async def list_jobs(ctx: Context) -> None:
    asker = ctx.actor_id
    assert asker is not None
    jobs = await ctx.services.storage.ai_jobs_of(asker, 10)
    summaries = [
        JobSummary(
            job.job_id,
            job.source_label,
            job.state,  # type: ignore[arg-type]
            datetime.fromtimestamp(job.requested_at, UTC),
            datetime.fromtimestamp(job.finished_at, UTC) if job.finished_at else None,
        )
        for job in jobs
    ]
    # Only the asker's own jobs are listed, labels only: no call data, so the chat may see it.
    await ctx.reply_card(jobs_card(ctx.services.cards, summaries, timezone_for(ctx)))


async def _job_for_presser(ctx: Context) -> AiJob | None:
    assert ctx.submission is not None
    job = await ctx.services.storage.ai_job(ctx.submission.data.get(DATA_JOB_ID, ""))
    person = await ctx.actor_identity()
    admins, home = ctx.services.config.admins, ctx.services.service_account_id
    if (
        job is None
        or person is None
        or person.account_id != job.account_id
        or (person.extension_id not in job.entitled_ids and not is_admin(person, admins, home))
    ):
        ctx.response = message_dialog(ctx.services.cards, "Not available", NOT_VISIBLE)
        return None
    return job


@router.card_action(ACTION_AI_REFRESH)
async def check_now(ctx: Context) -> None:
    job = await _job_for_presser(ctx)
    if job is None:
        return
    if ctx.services.check_ai_job is None:
        raise RuntimeError("AI job polling is not wired")
    outcome = await ctx.services.check_ai_job(job)
    text = {
        "pending": "RingCentral is still analysing. I'll update the card when it is done.",
        "result": "The result is in: the card is being updated.",
        "expired": "RingCentral no longer has this job.",
    }.get(outcome, "This analysis is finished.")
    ctx.response = message_dialog(ctx.services.cards, "Analysis", text)


@router.card_action(ACTION_AI_UTTERANCES)
async def send_utterances(ctx: Context) -> None:
    job = await _job_for_presser(ctx)
    if job is None:
        return
    analysis = _analysis_of(job)
    if analysis is None:
        ctx.response = message_dialog(
            ctx.services.cards, "Not yet", "There is no result to show yet."
        )
        return
    presser = ctx.actor_id
    assert presser is not None
    card = utterances_card(
        ctx.services.cards,
        source_label=job.source_label,
        analysis=analysis,
        speaker_names=job.speaker_names,
    )
    await ctx.send_card(direct(presser), card)
    ctx.response = message_dialog(
        ctx.services.cards, "Sent", "Everything that was said is in your direct messages with me."
    )
