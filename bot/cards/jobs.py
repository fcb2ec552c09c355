"""A person's AI API analysis jobs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from bot.analysis import (
    ANALYSIS_STATES,
    STATE_EXPIRED,
    STATE_FAILED,
    STATE_PENDING,
    STATE_SUCCESS,
    JobSummary,
)
from bot.cards.analysis import checked_source_label
from bot.cards.formatting import format_start_time
from bot.cards.render import CardRenderer

JOBS_TEMPLATE: Final = "jobs.card.json.j2"


NO_JOBS: Final = "No analysis jobs yet."
JOBS_HEADING: Final = "Your analysis jobs"
#: How the jobs card names each state.
STATE_LABELS: Final[Mapping[str, str]] = {
    STATE_PENDING: "In progress",
    STATE_SUCCESS: "Done",
    STATE_FAILED: "Failed",
    STATE_EXPIRED: "Expired",
}


def jobs_view(jobs: Sequence[JobSummary], tz: ZoneInfo) -> dict[str, Any]:
    """The values `jobs.card.json.j2` needs; see `jobs_card`."""
    rows = []
    for job in jobs:
        if job.state not in STATE_LABELS:
            raise ValueError(f"job state must be one of {ANALYSIS_STATES}, got {job.state!r}")
        details = [STATE_LABELS[job.state], f"requested {format_start_time(job.requested_at, tz)}"]
        if job.finished_at is not None:
            details.append(f"finished {_finished(job.requested_at, job.finished_at, tz)}")
        rows.append(
            {"label": checked_source_label(job.source_label), "details": " · ".join(details)}
        )
    count = f"{len(rows)} job{'' if len(rows) == 1 else 's'}" if rows else NO_JOBS
    return {
        "heading": JOBS_HEADING,
        "jobs": rows,
        "empty_text": NO_JOBS,
        "fallback_text": f"{JOBS_HEADING}: {count}",
    }


def jobs_card(renderer: CardRenderer, jobs: Sequence[JobSummary], tz: ZoneInfo) -> dict[str, Any]:
    """A person's pending and recent analysis jobs, in the order given, one row each with
    the recording's label, the state and the times; with none, a line saying so."""
    return renderer.render(JOBS_TEMPLATE, **jobs_view(jobs, tz))


def _finished(requested: datetime, finished: datetime, tz: ZoneInfo) -> str:
    """The finish time, with its date only when it is not the day of the request."""
    if finished.astimezone(tz).date() == requested.astimezone(tz).date():
        return f"{finished.astimezone(tz):%H:%M}"
    return format_start_time(finished, tz)
