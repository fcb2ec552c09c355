"""SQLite storage of AI API jobs: `ai_jobs`."""

from __future__ import annotations

import json

import aiosqlite

from bot.store.base import StoreBase
from bot.store.records import AiJob


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
                (
                    job.job_id,
                    job.requester_id,
                    job.account_id,
                    json.dumps(dict(job.destination)),
                    job.source_label,
                    job.recording_id,
                    json.dumps(sorted(job.entitled_ids)),
                    job.webhook_secret_hash,
                    job.state,
                    job.requested_at,
                    job.finished_at,
                    job.expires_at,
                    json.dumps(job.result) if job.result is not None else None,
                    job.problem,
                    json.dumps(dict(job.speaker_names)),
                ),
            )

    async def ai_job(self, job_id: str) -> AiJob | None:
        async with self._db.execute("SELECT * FROM ai_jobs WHERE job_id = ?", (job_id,)) as cur:
            row = await cur.fetchone()
        return _ai_job(row) if row else None

    async def ai_job_with_webhook_secret(self, webhook_secret_hash: str) -> AiJob | None:
        """The job whose webhook address carries this secret (by its hash): the documented
        AI callback body has no `jobId`, so the address is what names the job."""
        async with self._db.execute(
            "SELECT * FROM ai_jobs WHERE webhook_secret_hash = ?", (webhook_secret_hash,)
        ) as cur:
            row = await cur.fetchone()
        return _ai_job(row) if row else None

    async def ai_jobs_of(self, requester_id: str, limit: int) -> list[AiJob]:
        async with self._db.execute(
            "SELECT * FROM ai_jobs WHERE requester_id = ? ORDER BY requested_at DESC LIMIT ?",
            (requester_id, limit),
        ) as cursor:
            return [_ai_job(r) for r in await cursor.fetchall()]

    async def pending_ai_jobs(self, requested_before: float) -> list[AiJob]:
        async with self._db.execute(
            "SELECT * FROM ai_jobs WHERE state = 'pending' AND requested_at <= ? "
            "ORDER BY requested_at",
            (requested_before,),
        ) as cursor:
            return [_ai_job(r) for r in await cursor.fetchall()]


def _ai_job(row: aiosqlite.Row) -> AiJob:
    return AiJob(
        job_id=row["job_id"],
        requester_id=row["requester_id"],
        account_id=row["account_id"],
        destination=json.loads(row["destination"]),
        source_label=row["source_label"],
        recording_id=row["recording_id"],
        entitled_ids=frozenset(json.loads(row["entitled_ids"])),
        webhook_secret_hash=row["webhook_secret_hash"],
        state=row["state"],
        requested_at=row["requested_at"],
        expires_at=row["expires_at"],
        finished_at=row["finished_at"],
        result=json.loads(row["result"]) if row["result"] else None,
        problem=row["problem"],
        speaker_names=json.loads(row["speaker_names"]),
    )
