"""PostgreSQL storage: ai_jobs."""

from __future__ import annotations

from bot.store.interface import AiJobStore
from bot.store.postgres.base import PgStoreBase
from bot.store.records import AiJob
from bot.store.rows import ai_job_of, ai_job_values


class PgAiJobs(PgStoreBase):
    """The PostgreSQL side of `AiJobStore` (see bot/store/interface.py).

    A job's first save inserts it; later saves only move its state on (result, problem,
    times), so two replicas saving the same job's outcome write the same row once."""

    async def save_ai_job(self, job: AiJob) -> None:
        await self._pool.execute(
            "INSERT INTO ai_jobs (job_id, requester_id, account_id, destination, "
            "source_label, recording_id, entitled_ids, webhook_secret_hash, state, "
            "requested_at, finished_at, expires_at, result, problem, speaker_names) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) "
            "ON CONFLICT (job_id) DO UPDATE SET state = excluded.state, "
            "finished_at = excluded.finished_at, result = excluded.result, "
            "problem = excluded.problem, expires_at = excluded.expires_at",
            *ai_job_values(job),
        )

    async def ai_job(self, job_id: str) -> AiJob | None:
        row = await self._pool.fetchrow("SELECT * FROM ai_jobs WHERE job_id = $1", job_id)
        return ai_job_of(row) if row else None

    async def ai_job_with_webhook_secret(self, webhook_secret_hash: str) -> AiJob | None:
        """The job whose webhook address carries this secret (by its hash): the documented
        AI callback body has no `jobId`, so the address is what names the job."""
        row = await self._pool.fetchrow(
            "SELECT * FROM ai_jobs WHERE webhook_secret_hash = $1", webhook_secret_hash
        )
        return ai_job_of(row) if row else None

    async def ai_jobs_of(self, requester_id: str, limit: int) -> list[AiJob]:
        rows = await self._pool.fetch(
            "SELECT * FROM ai_jobs WHERE requester_id = $1 ORDER BY requested_at DESC LIMIT $2",
            requester_id,
            limit,
        )
        return [ai_job_of(r) for r in rows]

    async def pending_ai_jobs(self, requested_before: float) -> list[AiJob]:
        rows = await self._pool.fetch(
            "SELECT * FROM ai_jobs WHERE state = 'pending' AND requested_at <= $1 "
            "ORDER BY requested_at",
            requested_before,
        )
        return [ai_job_of(r) for r in rows]


def _offers_every_method_of_its_protocol(store: PgAiJobs) -> AiJobStore:
    """Never called: mypy checks here that this family matches `AiJobStore` method for method."""
    return store
