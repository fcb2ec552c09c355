"""Interaction Analytics jobs: their webhook, and polling when the webhook stays silent.

RingCentral's AI API is asynchronous: we get a job id, and the result is POSTed to the
webhook we named (results usually take 5 to 10 minutes, sometimes 30). AI webhooks carry no
signature (API-FACTS E says none is documented), so each job gets its own unguessable webhook
path. The documented callback body is `{"status", "response"}` without a `jobId`, so the
path is also what names the job: a result is accepted only at a pending job's own path, and
a body that does name a job must name that one. The
result goes into the inbox (unique per job), so a result arriving twice, or arriving by
webhook and by polling, is handled once, and a result that arrives while the bot is down
is found by polling after the restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from aiohttp import web

from bot import events
from bot.events import Notification
from bot.quoting import for_log
from bot.rc import RingCentralError, RingCentralNotFound
from bot.services import Services
from bot.storage import AiJob
from bot.webhooks import (
    VALIDATION_TOKEN_HEADER,
    BodyTooLarge,
    parse_json_body,
    read_limited,
    refuse,
)

log = logging.getLogger(__name__)

AI_WEBHOOK_PREFIX = "/webhooks/ai/"
# A result larger than this is refused (413); the poller then fetches it from the job's
# status, so nothing is lost.
MAX_RESULT_BYTES = 1024 * 1024
# The secrets we put in webhook paths are `secrets.token_urlsafe(24)`; this shape is generous.
_SECRET_SHAPE = re.compile(r"[A-Za-z0-9_-]{16,128}")
PENDING = "pending"


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def result_uuid(job_id: str) -> str:
    return f"ai-result:{job_id}"


async def queue_result(services: Services, job: AiJob, result: Any) -> bool:
    """Put a job's result into the inbox (once per job, whoever brings it first)."""
    return await _queue(services, job, {"jobId": job.job_id, "result": result})


async def _queue(services: Services, job: AiJob, body: Mapping[str, Any]) -> bool:
    install = services.install_for_account(job.account_id)
    owner = install.extension_id if install else None
    notification = Notification.made_here(
        result_uuid(job.job_id), events.AI_RESULT_EVENT, body, owner
    )
    return await services.storage.add_notification(notification)


class AiWebhookEndpoint:
    """`POST /webhooks/ai/{secret}`."""

    def __init__(self, services: Services, on_stored: Any) -> None:
        self._services = services
        self._on_stored = on_stored

    async def handle(self, request: web.Request) -> web.Response:
        """The path's secret is checked before a byte of the body is read, so an address
        nobody was given costs a lookup and nothing more; then at most `MAX_RESULT_BYTES`.
        The documented callback body (`status`, `response`) names no job: the address does."""
        validation_token = request.headers.get(VALIDATION_TOKEN_HEADER)
        if validation_token is not None:
            # The webhook handshake (API-FACTS B.2): UNCONFIRMED for AI webhooks, answered
            # in case. It may come while the job is being created, before we know its id,
            # so it is answered at any address; echoing the token stores and reveals nothing.
            if len(validation_token) > 512:
                return refuse(400, "validation token too long")
            return web.Response(status=200, headers={VALIDATION_TOKEN_HEADER: validation_token})
        secret = request.match_info.get("secret", "")
        job = None
        if _SECRET_SHAPE.fullmatch(secret):
            job = await self._services.storage.ai_job_with_webhook_secret(secret_hash(secret))
        if job is None:
            log.warning("AI result at an address of no job of ours; refused")
            return refuse(404, "unknown job")
        try:
            body = parse_json_body(await read_limited(request, MAX_RESULT_BYTES))
        except BodyTooLarge:
            log.warning(
                "AI result for job %s too large; polling will fetch it", for_log(job.job_id)
            )
            return refuse(413, f"body larger than {MAX_RESULT_BYTES} bytes")
        except OSError:
            return refuse(400, "could not read the body")
        except ValueError as err:
            return refuse(400, str(err))
        if not isinstance(body, dict):
            return refuse(400, "body is not a JSON object")
        named = body.get("jobId")
        if named is not None and not (
            isinstance(named, str) and hmac.compare_digest(named.encode(), job.job_id.encode())
        ):
            log.warning(
                "AI result at job %s's address names another job; refused", for_log(job.job_id)
            )
            return refuse(404, "unknown job")
        job_id = job.job_id
        if job.state != PENDING:
            log.info("late AI result for job %s (already %s) ignored", for_log(job_id), job.state)
            return web.Response(status=200)
        if await queue_result(self._services, job, body):
            self._on_stored()
        return web.Response(status=200)


def _epoch(value: Any) -> float | None:
    """An ISO time (`2023-10-03T22:41:02.442Z`) as epoch seconds; None if it is not one."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.timestamp() if moment.tzinfo is not None else None


STUCK_SLACK_S = 600.0
"""How much longer than three polling intervals a round may take before the poller counts
as stuck (a round waits out RingCentral's rate limits)."""


class JobPoller:
    """Asks for results the webhook did not bring, and closes jobs RingCentral forgot."""

    def __init__(self, services: Services, on_stored: Any) -> None:
        self._services = services
        self._on_stored = on_stored
        self._task: asyncio.Task[None] | None = None
        self.last_cycle_at: float | None = None

    def start(self) -> None:
        self.last_cycle_at = time.monotonic()
        self._task = asyncio.create_task(self._run(), name="ai-poller")

    def healthy(self, now: float | None = None) -> bool:
        """Running, and a round of checks finished recently (a round may wait out rate
        limits, hence the slack): a stuck or dead poller leaves analyses unanswered."""
        if self._task is None or self._task.done() or self.last_cycle_at is None:
            return False
        now = time.monotonic() if now is None else now
        allowed = 3 * self._services.config.ai_poll_interval_s + STUCK_SLACK_S
        return now - self.last_cycle_at <= allowed

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        config = self._services.config
        while True:
            try:
                cutoff = time.time() - config.ai_poll_after_s
                for job in await self._services.storage.pending_ai_jobs(cutoff):
                    await self.check(job)
            except RingCentralError as err:
                log.warning("AI job polling: %s", err)
            except Exception:
                log.exception("AI job polling failed")
            self.last_cycle_at = time.monotonic()
            await asyncio.sleep(config.ai_poll_interval_s)

    async def check(self, job: AiJob) -> str:
        """Look at one job now; what we learned ('pending', 'result', 'expired')."""
        if job.state != PENDING:
            return job.state
        if time.time() >= job.expires_at:
            await self._expire(job)
            return "expired"
        try:
            status = await self._services.service_api.ai_job_status(job.job_id)
        except RingCentralNotFound:
            # RingCentral keeps job ids for a week; one it no longer knows is gone.
            await self._expire(job)
            return "expired"
        if status.get("status") in ("Success", "Fail"):
            if await queue_result(self._services, job, status):
                self._on_stored()
            return "result"
        expires_at = _epoch(status.get("expirationTime"))
        if expires_at is not None and expires_at != job.expires_at:
            # RingCentral says when it forgets the job: that, not our guess, ends it.
            await self._services.storage.save_ai_job(replace(job, expires_at=expires_at))
        return PENDING

    async def _expire(self, job: AiJob) -> None:
        if await _queue(self._services, job, {"jobId": job.job_id, "expired": True}):
            self._on_stored()
