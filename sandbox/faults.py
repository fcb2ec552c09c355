"""Fault injection: what a test may make go wrong, and the seeded decisions about it.

Everything is off by default. API-side faults (latency, 5xx, dropped connections, 429
storms, tighter rate limits, the daily post limit) are applied by the platform
middleware; notification faults (duplicates, reordering, drops, retries) by the
notifier; `subscriptionTtlSeconds` by the subscription endpoints. Random choices come
from one `random.Random(seed)`, drawn in request order, so a test that sends the same
requests gets the same faults.

Error bodies follow the platform's shape (API-FACTS A.5) with codes from DOCS
`docs/basics/errors.md`: CMN-201 "Service Temporary Unavailable" for 503 (and other
5xx but 500), CMN-203 "Internal Server Error" for 500, CMN-301 for 429.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from sandbox.ratelimit import LimitPolicy, RateGroup

FAULT_HEADER = "X-Sandbox-Fault"
DEFAULT_DAILY_POST_LIMIT = 2500
"""Posts per user per day through the API (DOCS team-messaging/posting/index.md)."""
DAILY_LIMIT_MESSAGE = "You have exceeded your limits for this action."
DEFAULT_REORDER_WINDOW_MS = 50.0

FaultKind = Literal["latency", "error", "reset", "storm", "rateLimit", "dailyPostLimit"]


class FaultConfigError(ValueError):
    """A fault setting a test got wrong; the message says which and why."""


def server_error_body(status: int) -> dict[str, Any]:
    """The platform's 5xx body: CMN-203 for 500, CMN-201 for the others (DOCS errors.md
    lists both; which one a real 502/504 carries is UNCONFIRMED)."""
    if status == 500:
        code, message = "CMN-203", "Internal Server Error"
    else:
        code, message = "CMN-201", "Service Temporary Unavailable"
    return {
        "errorCode": code,
        "message": message,
        "errors": [{"errorCode": code, "message": message}],
    }


@dataclass(frozen=True)
class Storm:
    """Every matching request gets 429 until `until` (world clock); a request during
    the storm restarts the penalty, as the platform's penalty interval does (G)."""

    until: float
    retry_after: int
    penalty_seconds: float
    paths: tuple[re.Pattern[str], ...]
    duration_seconds: float


@dataclass(frozen=True)
class WebhookRetries:
    attempts: int
    delay_seconds: float


@dataclass(frozen=True)
class Injection:
    """What to do to one API request."""

    latency_ms: float | None = None
    kind: Literal["error", "reset", "storm"] | None = None
    status: int = 0
    retry_after: int | None = None


@dataclass
class Faults:
    """The current fault settings plus the seeded random they draw from."""

    seed: int = 0
    latency_ms: tuple[float, float] | None = None
    error_rate: float = 0.0
    error_status: int = 503
    error_retry_after: int | None = None
    reset_rate: float = 0.0
    paths: tuple[re.Pattern[str], ...] = ()
    methods: frozenset[str] = frozenset()
    storm: Storm | None = None
    limits: dict[RateGroup, LimitPolicy] = field(default_factory=dict)
    daily_post_limit: int | None = None
    duplicate_notifications: int = 0
    reorder_window_ms: float | None = None
    drop_notifications: float = 0.0
    webhook_retries: WebhookRetries | None = None
    subscription_ttl_seconds: int | None = None
    random: random.Random = field(default_factory=lambda: random.Random(0))

    # ------------------------------------------------------------ API requests

    def _scoped(self, method: str, path: str) -> bool:
        if self.methods and method.upper() not in self.methods:
            return False
        return not self.paths or any(pattern.search(path) for pattern in self.paths)

    def inject(self, method: str, path: str, header: str | None, now: float) -> Injection:
        """The fault for this request: the `X-Sandbox-Fault` header wins, then a storm,
        then the seeded rates (reset, then error), with latency added to any of them."""
        forced = parse_fault_header(header) if header else None
        if forced is not None and (forced.kind is not None or forced.latency_ms is not None):
            return forced
        latency: float | None = None
        scoped = self._scoped(method, path)
        if scoped and self.latency_ms is not None:
            low, high = self.latency_ms
            latency = low if low == high else self.random.uniform(low, high)
        storm = self.storm
        if storm is not None and now < storm.until:
            if not storm.paths or any(pattern.search(path) for pattern in storm.paths):
                self.storm = Storm(
                    until=max(storm.until, now + storm.penalty_seconds),
                    retry_after=storm.retry_after,
                    penalty_seconds=storm.penalty_seconds,
                    paths=storm.paths,
                    duration_seconds=storm.duration_seconds,
                )
                return Injection(latency, "storm", 429, storm.retry_after)
        if scoped and self.reset_rate > 0 and self.random.random() < self.reset_rate:
            return Injection(latency, "reset")
        if scoped and self.error_rate > 0 and self.random.random() < self.error_rate:
            return Injection(latency, "error", self.error_status, self.error_retry_after)
        return Injection(latency)

    def limit_for(self, group: RateGroup) -> LimitPolicy:
        return self.limits.get(group) or LimitPolicy.default(group)

    # ----------------------------------------------------------- notifications

    def drop(self) -> bool:
        return self.drop_notifications > 0 and self.random.random() < self.drop_notifications

    def shuffled(self, items: list[Any]) -> list[Any]:
        order = list(items)
        self.random.shuffle(order)
        return order


def parse_fault_header(value: str) -> Injection:
    """`X-Sandbox-Fault`: comma-separated `503` (any 5xx), `429`, `reset`,
    `latency=<ms>` and `retry-after=<s>`, e.g. `latency=200,503`."""
    latency: float | None = None
    kind: Literal["error", "reset", "storm"] | None = None
    status = 0
    retry_after: int | None = None
    for raw in value.split(","):
        item = raw.strip().lower()
        if not item:
            continue
        name, _, argument = item.partition("=")
        try:
            if name == "latency":
                latency = float(argument)
            elif name == "retry-after":
                retry_after = int(argument)
            elif name == "reset":
                kind = "reset"
            elif name == "429":
                kind, status = "storm", 429
            elif name.isdigit() and 500 <= int(name) <= 599:
                kind, status = "error", int(name)
            else:
                raise FaultConfigError(f"unknown {FAULT_HEADER} item {raw.strip()!r}")
        except ValueError as error:
            raise FaultConfigError(f"bad {FAULT_HEADER} item {raw.strip()!r}") from error
    if kind == "storm" and retry_after is None:
        retry_after = 60
    return Injection(latency, kind, status, retry_after)


# --------------------------------------------------------------- configuration


def _rate(body: dict[str, Any], key: str) -> float:
    value = body[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise FaultConfigError(f"{key} must be a number from 0 to 1")
    return float(value)


def _number(value: Any, what: str, *, minimum: float = 0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise FaultConfigError(f"{what} must be a number >= {minimum:g}")
    return float(value)


def _count(value: Any, what: str, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise FaultConfigError(f"{what} must be a whole number >= {minimum}")
    return value


def _patterns(value: Any, what: str) -> tuple[re.Pattern[str], ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise FaultConfigError(f"{what} must be a list of regular expressions")
    try:
        return tuple(re.compile(item) for item in value)
    except re.error as error:
        raise FaultConfigError(f"{what}: {error}") from error


def _latency(value: Any) -> tuple[float, float] | None:
    if value is None:
        return None
    if isinstance(value, dict):
        low = _number(value.get("min"), "latencyMs.min")
        high = _number(value.get("max"), "latencyMs.max")
        if high < low:
            raise FaultConfigError("latencyMs.max must not be below latencyMs.min")
        return low, high
    fixed = _number(value, "latencyMs")
    return fixed, fixed


def _limits(value: Any) -> dict[RateGroup, LimitPolicy]:
    if not isinstance(value, dict):
        raise FaultConfigError("limits must map group names to {limit, windowSeconds, ...}")
    groups = {group.label: group for group in RateGroup}
    result: dict[RateGroup, LimitPolicy] = {}
    for name, override in value.items():
        group = groups.get(name)
        if group is None or not isinstance(override, dict):
            raise FaultConfigError(f"limits: unknown group {name!r}; known: {sorted(groups)}")
        default = LimitPolicy.default(group)
        result[group] = LimitPolicy(
            limit=_count(override.get("limit", default.limit), f"limits.{name}.limit", minimum=1),
            window_seconds=_number(
                override.get("windowSeconds", default.window_seconds),
                f"limits.{name}.windowSeconds",
                minimum=0.001,
            ),
            penalty_seconds=_number(
                override.get("penaltySeconds", default.penalty_seconds),
                f"limits.{name}.penaltySeconds",
            ),
        )
    return result


def _storm(value: Any, now: float) -> Storm | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise FaultConfigError("storm must be {durationSeconds, retryAfter, paths?}")
    duration = _number(value.get("durationSeconds"), "storm.durationSeconds")
    retry_after = _count(value.get("retryAfter", 60), "storm.retryAfter")
    penalty = _number(value.get("penaltySeconds", retry_after), "storm.penaltySeconds")
    paths = _patterns(value.get("paths", []), "storm.paths")
    return Storm(now + duration, retry_after, penalty, paths, duration)


def _retries(value: Any) -> WebhookRetries | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise FaultConfigError("webhookRetries must be {attempts, delaySeconds}")
    return WebhookRetries(
        attempts=_count(value.get("attempts"), "webhookRetries.attempts"),
        delay_seconds=_number(value.get("delaySeconds", 0), "webhookRetries.delaySeconds"),
    )


def _reorder(value: Any) -> float | None:
    if value is None or value is False:
        return None
    if value is True:
        return DEFAULT_REORDER_WINDOW_MS
    if isinstance(value, dict):
        return _number(value.get("windowMs", DEFAULT_REORDER_WINDOW_MS), "reorder windowMs")
    raise FaultConfigError("reorderNotifications must be true, false or {windowMs}")


def _daily_limit(value: Any) -> int | None:
    if value is None or value is False:
        return None
    if value is True:
        return DEFAULT_DAILY_POST_LIMIT
    return _count(value, "dailyPostLimit", minimum=1)


def apply_settings(faults: Faults, body: dict[str, Any], now: float) -> dict[str, Any]:
    """Change the keys given (all checked before any is applied). Returns the keys that
    are not about faults themselves (`enforceRateLimits`) for the caller to apply."""
    changes: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in body.items():
        if key == "seed":
            changes["seed"] = _count(value, "seed")
        elif key == "latencyMs":
            changes["latency_ms"] = _latency(value)
        elif key == "errorRate":
            changes["error_rate"] = _rate(body, key)
        elif key == "errorStatus":
            status = _count(value, "errorStatus")
            if not 500 <= status <= 599:
                raise FaultConfigError("errorStatus must be a 5xx status")
            changes["error_status"] = status
        elif key == "errorRetryAfter":
            changes["error_retry_after"] = None if value is None else _count(value, key)
        elif key == "resetRate":
            changes["reset_rate"] = _rate(body, key)
        elif key == "paths":
            changes["paths"] = _patterns(value, "paths")
        elif key == "methods":
            if not isinstance(value, list) or not all(isinstance(m, str) for m in value):
                raise FaultConfigError("methods must be a list of HTTP methods")
            changes["methods"] = frozenset(m.upper() for m in value)
        elif key == "storm":
            changes["storm"] = _storm(value, now)
        elif key == "limits":
            changes["limits"] = _limits(value)
        elif key == "dailyPostLimit":
            changes["daily_post_limit"] = _daily_limit(value)
        elif key == "duplicateNotifications":
            changes["duplicate_notifications"] = _count(value, key)
        elif key == "reorderNotifications":
            changes["reorder_window_ms"] = _reorder(value)
        elif key == "dropNotifications":
            changes["drop_notifications"] = _rate(body, key)
        elif key == "webhookRetries":
            changes["webhook_retries"] = _retries(value)
        elif key == "subscriptionTtlSeconds":
            changes["subscription_ttl_seconds"] = (
                None if value is None else _count(value, key, minimum=1)
            )
        elif key == "enforceRateLimits":
            if not isinstance(value, bool):
                raise FaultConfigError("enforceRateLimits must be true or false")
            extra["enforce_rate_limits"] = value
        else:
            raise FaultConfigError(f"unknown fault {key!r}")
    for attribute, value in changes.items():
        setattr(faults, attribute, value)
    if "seed" in changes:
        faults.random = random.Random(faults.seed)
    return extra


def faults_json(faults: Faults, now: float, *, enforce_rate_limits: bool) -> dict[str, Any]:
    latency: Any = None
    if faults.latency_ms is not None:
        low, high = faults.latency_ms
        latency = low if low == high else {"min": low, "max": high}
    storm: Any = None
    if faults.storm is not None:
        storm = {
            "durationSeconds": faults.storm.duration_seconds,
            "retryAfter": faults.storm.retry_after,
            "penaltySeconds": faults.storm.penalty_seconds,
            "paths": [p.pattern for p in faults.storm.paths],
            "remainingSeconds": max(0.0, faults.storm.until - now),
            "active": now < faults.storm.until,
        }
    return {
        "seed": faults.seed,
        "latencyMs": latency,
        "errorRate": faults.error_rate,
        "errorStatus": faults.error_status,
        "errorRetryAfter": faults.error_retry_after,
        "resetRate": faults.reset_rate,
        "paths": [p.pattern for p in faults.paths],
        "methods": sorted(faults.methods),
        "storm": storm,
        "enforceRateLimits": enforce_rate_limits,
        "limits": {
            group.label: {
                "limit": policy.limit,
                "windowSeconds": policy.window_seconds,
                "penaltySeconds": policy.penalty_seconds,
            }
            for group, policy in faults.limits.items()
        },
        "dailyPostLimit": faults.daily_post_limit,
        "duplicateNotifications": faults.duplicate_notifications,
        "reorderNotifications": (
            None if faults.reorder_window_ms is None else {"windowMs": faults.reorder_window_ms}
        ),
        "dropNotifications": faults.drop_notifications,
        "webhookRetries": (
            None
            if faults.webhook_retries is None
            else {
                "attempts": faults.webhook_retries.attempts,
                "delaySeconds": faults.webhook_retries.delay_seconds,
            }
        ),
        "subscriptionTtlSeconds": faults.subscription_ttl_seconds,
    }
