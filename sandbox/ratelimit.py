"""The platform's per-user, per-group sliding-window rate limits (API-FACTS G)."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from enum import Enum


class RateGroup(Enum):
    LIGHT = ("Light", 50)
    MEDIUM = ("Medium", 40)
    HEAVY = ("Heavy", 10)
    AUTH = ("Auth", 5)

    def __init__(self, label: str, limit: int) -> None:
        self.label = label
        self.limit = limit


WINDOW_SECONDS = 60
PENALTY_SECONDS = 60


@dataclass(frozen=True)
class LimitPolicy:
    """One group's rule: `limit` requests per sliding `window_seconds`, then a penalty."""

    limit: int
    window_seconds: float
    penalty_seconds: float

    @classmethod
    def default(cls, group: RateGroup) -> LimitPolicy:
        return cls(group.limit, WINDOW_SECONDS, PENALTY_SECONDS)


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@dataclass
class RateDecision:
    group: RateGroup
    policy: LimitPolicy
    remaining: int
    retry_after: int | None
    """Set when the request must be refused with 429."""

    def headers(self) -> dict[str, str]:
        return {
            "X-Rate-Limit-Group": self.group.label,
            "X-Rate-Limit-Limit": str(self.policy.limit),
            "X-Rate-Limit-Remaining": str(self.remaining),
            "X-Rate-Limit-Window": _seconds(self.policy.window_seconds),
        }


class RateLimiter:
    """Counts requests per (owner, group) over the group's sliding window of the
    world's clock (60 s unless a test overrides the policy).

    Every request is counted, refused or not, and a request made during a penalty
    restarts the penalty: that is how the real platform traps clients that retry
    without honouring `Retry-After`.
    """

    def __init__(self) -> None:
        self._hits: dict[tuple[str, RateGroup], deque[float]] = {}
        self._penalty_until: dict[tuple[str, RateGroup], float] = {}

    def check(
        self,
        owner: str,
        group: RateGroup,
        now: float,
        *,
        enforce: bool,
        policy: LimitPolicy | None = None,
    ) -> RateDecision:
        rule = policy or LimitPolicy.default(group)
        key = (owner, group)
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - rule.window_seconds:
            hits.popleft()
        hits.append(now)
        remaining = max(0, rule.limit - len(hits))
        if not enforce:
            return RateDecision(group, rule, remaining, None)
        retry_after = max(1, math.ceil(rule.penalty_seconds))
        penalty_until = self._penalty_until.get(key)
        if penalty_until is not None and now < penalty_until:
            self._penalty_until[key] = now + rule.penalty_seconds
            return RateDecision(group, rule, 0, retry_after)
        if len(hits) > rule.limit:
            self._penalty_until[key] = now + rule.penalty_seconds
            return RateDecision(group, rule, 0, retry_after)
        return RateDecision(group, rule, remaining, None)
