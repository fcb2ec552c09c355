"""Prometheus metrics: what an operator graphs and alerts on.

One `BotMetrics` per app, with its own `CollectorRegistry` (no process-wide default
registry: tests and the demo create many apps in one process). Events are counted where
they happen (the webhook edge, the delivery worker, the RingCentral client through its
rate governor); levels (queue depths, budgets, subscription and job states) are read from
the database when Prometheus scrapes, so they are right after a restart too.

`/metrics` is served only where the operator says: on its own listener (`metrics.bind`,
e.g. 127.0.0.1:9108, for a scraper on the same host or network), or on the bot's port with
`Authorization: Bearer $BOT_METRICS_TOKEN`. With neither it does not exist (404). Labels
never carry a token, a chat message or a person's name: identities are names or token
fingerprints, accounts are account ids.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

if TYPE_CHECKING:
    from bot.storage import StorageInterface

PREFIX = "ringsense_bot"

# When the notification being handled reached the bot (set by the inbox worker for its
# task); a handler that queues a digest stamps it on the delivery.
notification_arrived_at: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "notification_arrived_at", default=None
)

# From a call's end to its card: RingSense analyses take minutes; a card within ten
# minutes of the recording's end is normal, hours are an incident.
LATENCY_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 21600)


class BotMetrics:
    """Every metric of one bot app, registered in the app's own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.notifications_received = Counter(
            f"{PREFIX}_notifications_received",
            "Subscription notifications that reached /webhooks/ringcentral (handshakes aside).",
            registry=r,
        )
        self.notifications_refused = Counter(
            f"{PREFIX}_notifications_refused",
            "Notifications refused at the edge, by reason.",
            ["reason"],
            registry=r,
        )
        self.notifications_deduplicated = Counter(
            f"{PREFIX}_notifications_deduplicated",
            "Notifications already in the inbox (a redelivery), ignored.",
            registry=r,
        )
        self.queue_depth = Gauge(
            f"{PREFIX}_queue_depth",
            "Items waiting in the inbox (notifications) or outbox (deliveries).",
            ["queue"],
            registry=r,
        )
        self.queue_oldest_age = Gauge(
            f"{PREFIX}_queue_oldest_age_seconds",
            "Age of the oldest waiting item of a queue (0 when empty).",
            ["queue"],
            registry=r,
        )
        self.deliveries = Counter(
            f"{PREFIX}_deliveries",
            "Delivery attempts by outcome: sent, retried, failed, postponed (daily limit).",
            ["outcome"],
            registry=r,
        )
        self.ringcentral_requests = Counter(
            f"{PREFIX}_ringcentral_requests",
            "Requests to RingCentral by rate-limit group and HTTP status ('none': no answer).",
            ["group", "status"],
            registry=r,
        )
        self.rate_limited = Counter(
            f"{PREFIX}_ringcentral_rate_limited",
            "429 answers from RingCentral, by rate-limit group.",
            ["group"],
            registry=r,
        )
        self.penalty_seconds = Counter(
            f"{PREFIX}_ringcentral_penalty_seconds",
            "Seconds of 429 penalty (Retry-After) imposed, by rate-limit group.",
            ["group"],
            registry=r,
        )
        self.daily_post_budget_left = Gauge(
            f"{PREFIX}_daily_post_budget_left",
            "Posts and cards an account may still send today (UTC) under bot.daily_post_limit.",
            ["account"],
            registry=r,
        )
        self.call_to_card = Histogram(
            f"{PREFIX}_call_to_card_seconds",
            "From a call's RingSense notification arriving (since=notification) or its "
            "recording ending (since=recording_end) to its digest card being posted.",
            ["since"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.subscription_healthy = Gauge(
            f"{PREFIX}_subscription_healthy",
            "1 when the identity's webhook subscription is active, else 0.",
            ["identity"],
            registry=r,
        )
        self.ai_jobs = Gauge(
            f"{PREFIX}_ai_jobs",
            "AI API analyses by state.",
            ["state"],
            registry=r,
        )
        self.ringcx_segments = Gauge(
            f"{PREFIX}_ringcx_segments",
            "RingCX transcript segments by state.",
            ["state"],
            registry=r,
        )
        self.lease_held = Gauge(
            f"{PREFIX}_lease_held",
            "1 when this replica holds the run-once job's lease (and runs the job), else 0.",
            ["name"],
            registry=r,
        )
        # Known label values start at 0, so a dashboard shows a line before the first event.
        for reason in REFUSAL_REASONS:
            self.notifications_refused.labels(reason)
        for outcome in DELIVERY_OUTCOMES:
            self.deliveries.labels(outcome)
        for since in ("notification", "recording_end"):
            self.call_to_card.labels(since)

    # -- events -------------------------------------------------------------------------

    def ringcentral_answer(self, group: str, status: int | None) -> None:
        self.ringcentral_requests.labels(group, str(status) if status else "none").inc()

    def ringcentral_penalty(self, group: str, seconds: float) -> None:
        self.rate_limited.labels(group).inc()
        self.penalty_seconds.labels(group).inc(max(0.0, seconds))

    def card_posted(
        self, arrived_at: float | None, recording_ended_at: float | None, now: float | None = None
    ) -> None:
        """A call's first card in a destination was posted: how long the call waited."""
        now = time.time() if now is None else now
        if arrived_at:
            self.call_to_card.labels("notification").observe(max(0.0, now - arrived_at))
        if recording_ended_at:
            self.call_to_card.labels("recording_end").observe(max(0.0, now - recording_ended_at))

    # -- levels, read when scraped -------------------------------------------------------

    async def refresh(
        self,
        storage: StorageInterface,
        *,
        daily_post_limit: int,
        accounts: list[str],
        subscriptions: Mapping[str, Mapping[str, object]],
    ) -> None:
        now = time.time()
        levels = await storage.operational_levels(now)
        for queue in ("inbox", "outbox"):
            depth, oldest = levels.queues.get(queue, (0, None))
            self.queue_depth.labels(queue).set(depth)
            self.queue_oldest_age.labels(queue).set(max(0.0, now - oldest) if oldest else 0.0)
        day = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")
        self.daily_post_budget_left.clear()
        for account in sorted(set(accounts)):
            used = await storage.posts_today(account, day)
            self.daily_post_budget_left.labels(account).set(max(0, daily_post_limit - used))
        self.subscription_healthy.clear()
        for identity, subscription in subscriptions.items():
            healthy = subscription.get("healthy")
            self.subscription_healthy.labels(identity).set(1 if healthy else 0)
        self.ai_jobs.clear()
        for state, count in levels.ai_jobs.items():
            self.ai_jobs.labels(state).set(count)
        self.ringcx_segments.clear()
        for state, count in levels.ringcx_segments.items():
            self.ringcx_segments.labels(state).set(count)

    def leases_held(self, held: Mapping[str, bool]) -> None:
        """Which run-once jobs this replica runs now (one replica each, summed over the
        replicas: 1 per job when all is well)."""
        for name, holds in held.items():
            self.lease_held.labels(name).set(1 if holds else 0)

    def exposition(self) -> tuple[bytes, str]:
        """The text format Prometheus scrapes, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


REFUSAL_REASONS = ("verification_token", "too_large", "unreadable", "malformed")
DELIVERY_OUTCOMES = ("sent", "retried", "failed", "postponed")
