"""SQLite storage of AI API jobs: `ai_jobs`."""

from __future__ import annotations

from bot.store.base import StoreBase
from bot.store.records import AiJob
from bot.store.rows import ai_job_of, ai_job_values


class SqliteAiJobs(StoreBase):
    """The SQLite side of `AiJobStore` (see bot/store/interface.py)."""

    async def save_ai_job(self, job: AiJob) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO ai_jobs (job_id, requester_id, account_id, destination, "
                "source_label, recording_id, entitled_ids, webhook_secret_hash, state, "
                "requested_at, finished_at, expires_at, result, problem, speaker_names) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (job_id) DO UPDATE SET state = excluded.state, "
                "finished_at = excluded.finished_at, result = excluded.result, "
                "problem = excluded.problem, expires_at = excluded.expires_at",
                ai_job_values(job),
            )

    async def ai_job(self, job_id: str) -> AiJob | None:
        async with self._db.execute("SELECT * FROM ai_jobs WHERE job_id = ?", (job_id,)) as cur:
            row = await cur.fetchone()
        return ai_job_of(row) if row else None

    async def ai_job_with_webhook_secret(self, webhook_secret_hash: str) -> AiJob | None:
        """The job whose webhook address carries this secret (by its hash): the documented
        AI callback body has no `jobId`, so the address is what names the job."""
        async with self._db.execute(
            "SELECT * FROM ai_jobs WHERE webhook_secret_hash = ?", (webhook_secret_hash,)
        ) as cur:
            row = await cur.fetchone()
        return ai_job_of(row) if row else None

    async def ai_jobs_of(self, requester_id: str, limit: int) -> list[AiJob]:
        async with self._db.execute(
            "SELECT * FROM ai_jobs WHERE requester_id = ? ORDER BY requested_at DESC LIMIT ?",
            (requester_id, limit),
        ) as cursor:
            return [ai_job_of(r) for r in await cursor.fetchall()]

    async def pending_ai_jobs(self, requested_before: float) -> list[AiJob]:
        async with self._db.execute(
            "SELECT * FROM ai_jobs WHERE state = 'pending' AND requested_at <= ? "
            "ORDER BY requested_at",
            (requested_before,),
        ) as cursor:
            return [ai_job_of(r) for r in await cursor.fetchall()]
