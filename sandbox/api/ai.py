"""The deprecated AI API (API-FACTS E): `POST /ai/insights/v1/async/analyze-interaction`
and `GET /ai/status/v1/jobs/{jobId}`, both Heavy with the `AI` app permission.

A job runs in the background for `world.ai_job_delay_seconds` of the world's clock (so a
test can finish it with `advance`), then succeeds or fails and its result, the same
object the status endpoint shows, is POSTed to the `webhook` URL.

How the outcome is decided:

* a control request (`POST /_sandbox/ai/jobs/{jobId}`) can force it while it runs;
* a `contentUri` on the sandbox itself must be a recording content URL whose recording
  exists and whose `access_token` query parameter is, when the job finishes, a live token
  that may hear it (the AI service can only fetch with a token in the URL); otherwise the
  job fails with the documented CAI-101 on `contentUri`. The check is done in process:
  it does not appear in the request log nor count against anyone's rate limit;
* any other URL succeeds (the sandbox has no internet to fetch it from).

Webhook delivery (UNCONFIRMED, nothing is documented): one attempt, 10 s timeout, no
retry; the spec's callback header `RCRequestId: <jobId>` and no signature or verification
header (none is documented). The body is the documented callback `{"status", "response"}`
(fixture ai-webhook-fail-CAI-101.json, seed 000): no `jobId`, so a receiver must know the
job by the webhook address it gave. Some samples (the speech-to-text fixture) carry the
whole status object; sending the smaller body is the stricter choice. With the
`aiWebhookDelivery: "never"` setting the job completes but its webhook is never called.

Speaker enrollments (`GET /ai/audio/v1/enrollments/{enrollmentId}`, Heavy, `AI`; the
path and the `EnrollmentStatus` shape from RingCentral's generated SDKs, ringcentral-java
`paths/ai/audio/v1/enrollments`; the endpoint has left the current spec with the rest of the
speaker APIs). Enrollments are made through the control API (`POST /_sandbox/ai/enrollments`);
an unknown id is a 404 shaped like the job's (UNCONFIRMED). `speakerIds` in an analysis must
all be complete enrollments of the caller's account, else 400 CAI-101 on `speakerIds`.

Other choices (UNCONFIRMED): a missing or empty `webhook` is a 400 CAI-101 on `webhook`
(its value is not otherwise checked, as the docs say); a job is visible to every token of
the account that created it, and other accounts get the 404 of an unknown job; the 404
body is `{"errors":[{"errorCode":"CAI-101","message":"The <jobId> doesn't exist",
"parameterName":"jobId"}]}`.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
from aiohttp import web

from sandbox.ai_jobs import (
    ANALYZE_INTERACTION,
    CONTENT_URI_INVALID,
    WEBHOOK_TIMEOUT_SECONDS,
    AiJob,
    WebhookAttempt,
    cai_error,
    interaction_response,
    validate_interaction_input,
)
from sandbox.api.recordings import CONTENT_PATH, may_hear, recording_entries
from sandbox.delivery import BackgroundTasks
from sandbox.keys import BACKGROUND_KEY, HTTP_CLIENT_KEY, WORLD_KEY
from sandbox.platform import caller_of, endpoint, json_response, world_of
from sandbox.ratelimit import RateGroup
from sandbox.world import JSON, World, iso

routes = web.RouteTableDef()

JOB_STATUS = "/ai/status/v1/jobs/{jobId}"
TICK_SECONDS = 0.02
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1", "0.0.0.0")  # noqa: S104


def status_json(job: AiJob) -> JSON:
    """The job as `GET /ai/status/v1/jobs/{jobId}` shows it and the webhook receives it."""
    body: JSON = {
        "jobId": job.id,
        "api": job.api,
        "creationTime": iso(job.creation_time),
    }
    if job.completion_time is not None:
        body["completionTime"] = iso(job.completion_time)
    body["expirationTime"] = iso(job.expiration_time)
    body["status"] = job.status
    if job.response is not None:
        body["response"] = job.response
    return body


def _cai_errors(status: int, errors: list[JSON]) -> web.Response:
    return web.json_response({"errors": errors}, status=status)


def _points_at_sandbox(url: str, request: web.Request) -> bool:
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return False
    if parts.netloc.lower() == request.host.lower():
        return True
    return (parts.hostname or "") in LOOPBACK_HOSTS and port == request.url.port


def _may_fetch(world: World, url: str) -> bool:
    """Whether the AI service could download a sandbox recording from `url` now."""
    parts = urlsplit(url)
    found = CONTENT_PATH.match(parts.path)
    tokens = parse_qs(parts.query).get("access_token", [])
    if found is None or len(tokens) != 1:
        return False
    session = world.access_tokens.get(tokens[0])
    if session is None or "ReadCallRecording" not in session.scope:
        return False
    if session.access_expires_at is not None and session.access_expires_at <= world.now():
        return False
    extension = world.extensions.get(session.owner_id)
    if extension is None:
        return False
    account_id, recording_id = found.group(1), found.group(2)
    if account_id not in ("~", extension.account_id):
        return False
    entries = recording_entries(world, extension.account_id, recording_id)
    return bool(entries) and may_hear(extension, entries)


def recognised_voices(world: World, job: AiJob) -> dict[str, str]:
    """Which voices of a sandbox recording the service recognises: the call's owner speaks
    first ("0"), and in a two-speaker call the extension on the other end second ("1"); a
    voice is recognised when its extension is enrolled (complete) and among `speakerIds`.
    Nobody else is ever recognised, whatever ids were passed."""
    asked = job.request_body.get("speakerIds")
    if not isinstance(asked, list) or not asked:
        return {}
    found = CONTENT_PATH.match(urlsplit(job.content_uri).path)
    if found is None:
        return {}
    entries = recording_entries(world, job.account_id, found.group(2))
    if not entries:
        return {}
    owner_entry = entries[0]
    voices = {"0": owner_entry.owner_id}
    count = job.request_body.get("speakerCount")
    if count in (None, 2):
        for party in (owner_entry.from_party, owner_entry.to_party):
            other = party.get("extensionId")
            if other and str(other) != owner_entry.owner_id:
                voices["1"] = str(other)
    return {
        voice: extension_id
        for voice, extension_id in voices.items()
        if extension_id in asked and _enrolled(world, job.account_id, extension_id)
    }


def _enrolled(world: World, account_id: str, enrollment_id: str) -> bool:
    enrollment = world.ai_enrollments.get((account_id, enrollment_id))
    return enrollment is not None and enrollment.get("enrollmentComplete") is True


class JobRunner:
    """Runs, completes and reports AI jobs for one sandbox app."""

    def __init__(self, app: web.Application) -> None:
        self._world: World = app[WORLD_KEY]
        self._http: aiohttp.ClientSession = app[HTTP_CLIENT_KEY]
        self._background: BackgroundTasks = app[BACKGROUND_KEY]

    def start(self, job: AiJob, *, fetch_from_sandbox: bool) -> None:
        self._background.spawn(self._run(job, fetch_from_sandbox))

    async def _run(self, job: AiJob, fetch_from_sandbox: bool) -> None:
        world = self._world
        while job.status == "InProgress":
            remaining = job.creation_time + world.ai_job_delay_seconds - world.now()
            if remaining <= 0:
                break
            if self._background.closing:
                return  # the sandbox shuts down: the job stays InProgress
            await asyncio.sleep(min(remaining, TICK_SECONDS))
        if job.status != "InProgress":
            return  # forced through the control API meanwhile
        if fetch_from_sandbox and not _may_fetch(world, job.content_uri):
            await self.complete(job, "Fail", {"errors": [dict(CONTENT_URI_INVALID)]})
        else:
            recognised = recognised_voices(world, job) if fetch_from_sandbox else {}
            await self.complete(
                job,
                "Success",
                interaction_response(job.id, job.request_body, recognised=recognised),
            )

    async def complete(self, job: AiJob, status: str, response: JSON) -> None:
        job.status = "Success" if status == "Success" else "Fail"
        job.response = response
        job.completion_time = self._world.now()
        if self._world.ai_webhook_delivery == "deliver":
            await self._deliver(job)

    async def _deliver(self, job: AiJob) -> None:
        payload: JSON = {"status": job.status, "response": job.response}
        status: int | None = None
        error: str | None = None
        try:
            async with self._http.post(
                job.webhook,
                data=json.dumps(payload, separators=(",", ":")).encode(),
                headers={"Content-Type": "application/json", "RCRequestId": job.id},
                timeout=aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT_SECONDS),
                allow_redirects=False,
            ) as answer:
                await answer.read()
                status = answer.status
        except TimeoutError:
            error = "timed out"
        except (aiohttp.ClientError, ValueError) as failure:
            error = f"{failure.__class__.__name__}: {failure}"
        job.deliveries.append(
            WebhookAttempt(job.id, job.webhook, self._world.now(), status, error, payload)
        )


def _new_job_id(world: World) -> str:
    return str(uuid.UUID(int=world.random.getrandbits(128), version=1))


async def _body(request: web.Request) -> tuple[dict[str, Any] | None, list[JSON]]:
    raw = await request.read()
    try:
        body = json.loads(raw) if raw.strip() else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        body = None
    if not isinstance(body, dict):
        return None, [cai_error("body", "It should be a JSON object")]
    return body, []


@routes.post(ANALYZE_INTERACTION)
@endpoint(RateGroup.HEAVY, app_permission="AI")
async def analyze_interaction(request: web.Request) -> web.StreamResponse:
    world = world_of(request)
    caller = caller_of(request)
    webhook = request.query.get("webhook", "").strip()
    errors = [] if webhook else [cai_error("webhook", "It is required")]
    body, body_errors = await _body(request)
    errors += body_errors
    if body is not None:
        errors += validate_interaction_input(body)
        speaker_ids = body.get("speakerIds")
        if isinstance(speaker_ids, list) and not any(
            e.get("parameterName") == "speakerIds" for e in errors
        ):
            unknown = [s for s in speaker_ids if not _enrolled(world, caller.account_id, s)]
            if unknown:
                errors.append(cai_error("speakerIds", f"Speaker {unknown[0]} is not enrolled"))
    if errors or body is None:
        return _cai_errors(400, errors)
    job = AiJob(
        id=_new_job_id(world),
        api=ANALYZE_INTERACTION,
        owner_id=caller.id,
        account_id=caller.account_id,
        webhook=webhook,
        request_body=body,
        creation_time=world.now(),
        lifetime_seconds=world.ai_job_lifetime_seconds,
    )
    world.ai_jobs[job.id] = job
    JobRunner(request.app).start(
        job, fetch_from_sandbox=_points_at_sandbox(job.content_uri, request)
    )
    return json_response({"jobId": job.id}, status=202)


def live_job(world: World, job_id: str) -> AiJob | None:
    """The job unless it is unknown or past its expiration time."""
    job = world.ai_jobs.get(job_id)
    if job is None or job.expiration_time <= world.now():
        return None
    return job


@routes.get(JOB_STATUS)
@endpoint(RateGroup.HEAVY, app_permission="AI")
async def job_status(request: web.Request) -> web.StreamResponse:
    world = world_of(request)
    job_id = request.match_info["jobId"]
    job = live_job(world, job_id)
    if job is None or job.account_id != caller_of(request).account_id:
        return _cai_errors(
            404,
            [
                {
                    "errorCode": "CAI-101",
                    "message": f"The {job_id} doesn't exist",
                    "parameterName": "jobId",
                }
            ],
        )
    return json_response(status_json(job))


ENROLLMENT = "/ai/audio/v1/enrollments/{enrollmentId}"


@routes.get(ENROLLMENT)
@endpoint(RateGroup.HEAVY, app_permission="AI")
async def enrollment_status(request: web.Request) -> web.StreamResponse:
    world = world_of(request)
    enrollment_id = request.match_info["enrollmentId"]
    enrollment = world.ai_enrollments.get((caller_of(request).account_id, enrollment_id))
    if enrollment is None:
        return _cai_errors(
            404,
            [
                {
                    "errorCode": "CAI-101",
                    "message": f"The {enrollment_id} doesn't exist",
                    "parameterName": "enrollmentId",
                }
            ],
        )
    return json_response(enrollment)
