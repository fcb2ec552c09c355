"""Control API for AI API jobs: see every job and its webhook deliveries, and force the
outcome of a running one.

`GET /_sandbox/ai/jobs` lists jobs in creation order. A `contentUri` (and the webhook
URL) is shown with its `access_token` masked: the control API never echoes a
credential the bot sent.

`POST /_sandbox/ai/jobs/{jobId}` `{"outcome": "success"|"fail", "error"?: {"errorCode",
"message", "parameterName"?}}` completes a running job now (the default error is the
documented CAI-101 on `contentUri`) and answers once its webhook was attempted.

`POST /_sandbox/ai/enrollments` `{"enrollmentId", "accountId"?, "enrollmentComplete"?}`
enrolls a speaker's voice (as an app would with `POST /ai/audio/v1/enrollments` and audio
samples): RingCentral recommends the person's extension id as the id. Default account: the
main one; default complete: true (a voice with under 12 s of speech is incomplete).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sandbox.ai_jobs import (
    CONTENT_URI_INVALID,
    AiJob,
    WebhookAttempt,
    interaction_response,
    mask_access_token,
)
from sandbox.api.ai import JobRunner, status_json
from sandbox.control import PREFIX, ControlError, read_body, world_in
from sandbox.world import JSON, iso

routes = web.RouteTableDef()

CAI_CODES = tuple(f"CAI-{number}" for number in range(101, 111))


def attempt_json(attempt: WebhookAttempt) -> JSON:
    return {
        "url": mask_access_token(attempt.url),
        "time": iso(attempt.time),
        "status": attempt.status,
        "error": attempt.error,
        "ok": attempt.ok,
        "payload": attempt.payload,
    }


def job_json(job: AiJob, now: float) -> JSON:
    body = dict(job.request_body)
    if isinstance(body.get("contentUri"), str):
        body["contentUri"] = mask_access_token(body["contentUri"])
    return {
        "jobId": job.id,
        "api": job.api,
        "status": job.status,
        "ownerId": job.owner_id,
        "accountId": job.account_id,
        "creationTime": iso(job.creation_time),
        "completionTime": iso(job.completion_time) if job.completion_time is not None else None,
        "expirationTime": iso(job.expiration_time),
        "expired": job.expiration_time <= now,
        "forced": job.forced_by_control,
        "request": {"webhook": mask_access_token(job.webhook), "body": body},
        "result": status_json(job),
        "webhookDeliveries": [attempt_json(attempt) for attempt in job.deliveries],
    }


@routes.get(PREFIX + "/ai/jobs")
async def list_jobs(request: web.Request) -> web.StreamResponse:
    world = world_in(request)
    now = world.now()
    return web.json_response([job_json(job, now) for job in world.ai_jobs.values()])


def _forced_error(raw: Any) -> JSON:
    if raw is None:
        return dict(CONTENT_URI_INVALID)
    if not isinstance(raw, dict):
        raise ControlError(400, "error must be an object {errorCode, message, parameterName?}")
    code = raw.get("errorCode")
    if code not in CAI_CODES:
        raise ControlError(400, f"error.errorCode must be one of {', '.join(CAI_CODES)}")
    message = raw.get("message")
    if not isinstance(message, str) or not message:
        raise ControlError(400, "error.message is required")
    error: JSON = {"errorCode": code, "message": message}
    parameter = raw.get("parameterName")
    if parameter is not None:
        if not isinstance(parameter, str):
            raise ControlError(400, "error.parameterName must be a string")
        error["parameterName"] = parameter
    return error


@routes.post(PREFIX + "/ai/jobs/{jobId}")
async def force_outcome(request: web.Request) -> web.StreamResponse:
    world = world_in(request)
    job = world.ai_jobs.get(request.match_info["jobId"])
    if job is None:
        raise ControlError(404, "no such job")
    body = await read_body(request)
    outcome = body.get("outcome")
    if outcome not in ("success", "fail"):
        raise ControlError(400, 'outcome must be "success" or "fail"')
    if outcome == "success" and body.get("error") is not None:
        raise ControlError(400, "error goes with outcome fail only")
    error = _forced_error(body.get("error")) if outcome == "fail" else None
    if job.status != "InProgress":
        raise ControlError(409, f"job {job.id} already finished: {job.status}")
    job.forced_by_control = True
    runner = JobRunner(request.app)
    if error is None:
        await runner.complete(job, "Success", interaction_response(job.id, job.request_body))
    else:
        await runner.complete(job, "Fail", {"errors": [error]})
    return web.json_response(job_json(job, world.now()))


@routes.post(PREFIX + "/ai/enrollments")
async def enroll_speaker(request: web.Request) -> web.StreamResponse:
    world = world_in(request)
    body = await read_body(request)
    enrollment_id = body.get("enrollmentId")
    if not isinstance(enrollment_id, str) or not enrollment_id.strip():
        raise ControlError(400, "enrollmentId is required (RingCentral suggests the extension id)")
    account_id = body.get("accountId", world.account_id)
    if not isinstance(account_id, str) or account_id not in world.accounts:
        raise ControlError(400, "accountId must be an account of the sandbox")
    complete = body.get("enrollmentComplete", True)
    if not isinstance(complete, bool):
        raise ControlError(400, "enrollmentComplete must be a boolean")
    speech = 20.5 if complete else 8.0
    status: JSON = {
        "enrollmentId": enrollment_id,
        "enrollmentComplete": complete,
        "enrollmentQuality": "High" if complete else "Poor",
        "totalSpeechDuration": speech,
        "totalEnrollDuration": round(speech + 4.5, 1),
    }
    world.ai_enrollments[(account_id, enrollment_id)] = status
    return web.json_response(status, status=201)
