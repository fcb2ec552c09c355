"""How much one person may make the bot say, so one chatty person cannot use up the
account's pacing and daily post budget that everyone's digests depend on.

Two rules, per person (account and extension):

- words the bot does not know, in a row: the first few get the usual "did you mean" help;
  the next one gets a single notice that the bot will be quiet for a while; after that,
  unknown words get no answer until the quiet time is over. A command the bot knows ends
  the streak at once.
- commands overall: at most `commands_per_window` answered per `COMMAND_WINDOW_S`; the
  first one over gets a notice, the rest are not carried out until the window has room.

Kept in memory: a restart forgets the counts, which only makes the bot more talkative.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

UNKNOWN_WORDS_IN_A_ROW = 3
"""Unknown words answered in a row before the bot goes quiet."""
QUIET_FOR_S = 600
"""How long the bot stays quiet after too many unknown words."""
COMMANDS_PER_WINDOW = 60
"""The default of `bot.commands_per_person_per_10_min`."""
COMMAND_WINDOW_S = 600.0


class Verdict(Enum):
    ANSWER = "answer"
    NOTICE = "notice"
    """Do not answer; say once that the bot will be quiet."""
    SILENT = "silent"


def quiet_notice() -> str:
    return (
        "I don't know those words, so I'll stay quiet for the next "
        f"{QUIET_FOR_S // 60} minutes. Say **help** whenever you want the list of "
        "what I can do."
    )


def too_many_commands_notice(wait_s: float) -> str:
    minutes = max(1, round(wait_s / 60))
    return (
        f"That's a lot of requests in a short time, so I'm taking a break from yours: "
        f"I'll be quiet and take new ones again in about {minutes} minutes."
    )


@dataclass
class _Person:
    unknown_in_a_row: int = 0
    quiet_until: float = 0.0
    commands: deque[float] = field(default_factory=deque)
    over_quota_noticed: bool = False


class ReplyLimits:
    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        commands_per_window: int = COMMANDS_PER_WINDOW,
    ) -> None:
        self._clock = clock
        self.commands_per_window = commands_per_window
        self._people: dict[str, _Person] = {}

    def unknown_word(self, person: str) -> Verdict:
        state = self._people.setdefault(person, _Person())
        now = self._clock()
        if state.quiet_until > now:
            return Verdict.SILENT
        if state.quiet_until:
            state.quiet_until = 0.0
            state.unknown_in_a_row = 0
        state.unknown_in_a_row += 1
        if state.unknown_in_a_row <= UNKNOWN_WORDS_IN_A_ROW:
            return Verdict.ANSWER
        state.quiet_until = now + QUIET_FOR_S
        return Verdict.NOTICE

    def command(self, person: str) -> tuple[Verdict, float]:
        """Whether to carry out a known command, and (when not) how long until it would be."""
        state = self._people.setdefault(person, _Person())
        state.unknown_in_a_row = 0
        state.quiet_until = 0.0
        now = self._clock()
        while state.commands and state.commands[0] <= now - COMMAND_WINDOW_S:
            state.commands.popleft()
        if len(state.commands) < self.commands_per_window:
            state.commands.append(now)
            state.over_quota_noticed = False
            return Verdict.ANSWER, 0.0
        wait = state.commands[0] + COMMAND_WINDOW_S - now
        if state.over_quota_noticed:
            return Verdict.SILENT, wait
        state.over_quota_noticed = True
        return Verdict.NOTICE, wait
