"""The platform's per-user, per-group sliding-window rate limits (API-FACTS G)."""

from __future__ import annotations

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


@dataclass
class RateDecision:
    group: RateGroup
    remaining: int
    retry_after: int | None
    """Set when the request must be refused with 429."""

    def headers(self) -> dict[str, str]:
        return {
            "X-Rate-Limit-Group": self.group.label,
            "X-Rate-Limit-Limit": str(self.group.limit),
            "X-Rate-Limit-Remaining": str(self.remaining),
            "X-Rate-Limit-Window": str(WINDOW_SECONDS),
        }


class RateLimiter:
    """Counts requests per (owner, group) over the last 60 s of the world's clock.

    Every request is counted, refused or not, and a request made during a penalty
    restarts the penalty: that is how the real platform traps clients that retry
    without honouring `Retry-After`.
    """

    def __init__(self) -> None:
        self._hits: dict[tuple[str, RateGroup], deque[float]] = {}
        self._penalty_until: dict[tuple[str, RateGroup], float] = {}

    def check(self, owner: str, group: RateGroup, now: float, *, enforce: bool) -> RateDecision:
        key = (owner, group)
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - WINDOW_SECONDS:
            hits.popleft()
        hits.append(now)
        remaining = max(0, group.limit - len(hits))
        if not enforce:
            return RateDecision(group, remaining, None)
        penalty_until = self._penalty_until.get(key)
        if penalty_until is not None and now < penalty_until:
            self._penalty_until[key] = now + PENALTY_SECONDS
            return RateDecision(group, 0, PENALTY_SECONDS)
        if len(hits) > group.limit:
            self._penalty_until[key] = now + PENALTY_SECONDS
            return RateDecision(group, 0, PENALTY_SECONDS)
        return RateDecision(group, remaining, None)
