"""Stored rows read back as records, and records written as row values: one reading for
both backends (an aiosqlite row and an asyncpg record are both read by column name)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.settings import Channel, UserSettings
from bot.store.records import AiJob, ConnectLink, RingSenseConnection


def ai_job_values(job: AiJob) -> tuple[Any, ...]:
    """The values of an `ai_jobs` row, in the order of its INSERT in both backends."""
    return (
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
    )


def ai_job_of(row: Any) -> AiJob:
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


def connect_link_of(row: Any) -> ConnectLink:
    return ConnectLink(
        account_id=row["account_id"],
        admin_extension_id=row["admin_extension_id"],
        code_verifier_encrypted=row["code_verifier"],
        expires_at=row["expires_at"],
    )


def ringsense_connection_of(row: Any) -> RingSenseConnection:
    return RingSenseConnection(
        account_id=row["account_id"],
        owner_extension_id=row["owner_extension_id"],
        refresh_token_encrypted=row["refresh_token"],
        connected_by=row["connected_by"],
        connected_at=row["connected_at"],
    )


def user_settings_of(
    extension_id: str, row: Any | None, channels: Sequence[Channel]
) -> UserSettings:
    """A person's settings from their `user_settings` row (None: never saved, the
    defaults) and their channels."""
    if row is None:
        return UserSettings(extension_id, channels=tuple(channels))
    defaults = UserSettings(extension_id)
    return UserSettings(
        extension_id=extension_id,
        account_id=row["account_id"],
        opted_in=bool(row["opted_in"]),
        direct_messages=bool(row["direct_messages"]),
        channels=tuple(channels),
        sections=tuple(json.loads(row["sections"])) if row["sections"] else defaults.sections,
        directions=(
            frozenset(json.loads(row["directions"])) if row["directions"] else defaults.directions
        ),
        internal_calls=bool(row["internal_calls"]),
        external_calls=bool(row["external_calls"]),
        min_duration_s=int(row["min_duration_s"]),
        min_ai_score=row["min_ai_score"],
        timezone=row["timezone"],
        external_to_channels=bool(row["external_to_channels"]),
        paused_until=datetime.fromisoformat(row["paused_until"]) if row["paused_until"] else None,
        digest_scope=row["digest_scope"] or defaults.digest_scope,
        rollup_time=None if row["rollup_time"] == "off" else row["rollup_time"],
    )
