"""How much one person may make the bot say, so one chatty person cannot use up the
account's pacing and daily post budget that everyone's digests depend on.

Two rules, per person (account and extension):

- words the bot does not know, in a row: the first few get the usual "did you mean" help;
  the next one gets a single notice that the bot will be quiet for a while; after that,
  unknown words get no answer until the quiet time is over. A command the bot knows ends
  the streak at once.
- commands overall: at most `commands_per_window` answered per `COMMAND_WINDOW_S`; the
  first one over gets a notice, the rest are not carried out until the window has room.

With SQLite (one process) the counts are kept in memory: a restart forgets them, which
only makes the bot more talkative. With replicas on PostgreSQL they are one row per person
in `reply_limits`, locked while a verdict is made (bot/store/postgres/shared.py), so that
several replicas give a person one quota, not one each.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

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
class PersonLimits:
    """Where one person stands: their unknown words in a row and their recent commands."""

    unknown_in_a_row: int = 0
    quiet_until: float = 0.0
    commands: list[float] = field(default_factory=list)
    """When their answered commands of the current window came, oldest first."""
    over_quota_noticed: bool = False


class PeopleLimits(Protocol):
    """Where people's counts are kept: `person` yields one person's state and the time now
    (on the keeper's clock), and keeps what was changed when the block ends."""

    def person(self, person: str) -> AbstractAsyncContextManager[tuple[PersonLimits, float]]: ...


class PeopleInMemory:
    """One process's counts (SQLite: the bot runs as one process)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._people: dict[str, PersonLimits] = {}

    @asynccontextmanager
    async def person(self, person: str) -> AsyncIterator[tuple[PersonLimits, float]]:
        yield self._people.setdefault(person, PersonLimits()), self._clock()


class ReplyLimits:
    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        commands_per_window: int = COMMANDS_PER_WINDOW,
        people: PeopleLimits | None = None,
    ) -> None:
        self.commands_per_window = commands_per_window
        self._people = people or PeopleInMemory(clock)

    async def unknown_word(self, person: str) -> Verdict:
        async with self._people.person(person) as (state, now):
            return self._unknown_word(state, now)

    @staticmethod
    def _unknown_word(state: PersonLimits, now: float) -> Verdict:
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

    async def command(self, person: str) -> tuple[Verdict, float]:
        """Whether to carry out a known command, and (when not) how long until it would be."""
        async with self._people.person(person) as (state, now):
            return self._command(state, now)

    def _command(self, state: PersonLimits, now: float) -> tuple[Verdict, float]:
        state.unknown_in_a_row = 0
        state.quiet_until = 0.0
        state.commands = [at for at in state.commands if at > now - COMMAND_WINDOW_S]
        if len(state.commands) < self.commands_per_window:
            state.commands.append(now)
            state.over_quota_noticed = False
            return Verdict.ANSWER, 0.0
        wait = state.commands[0] + COMMAND_WINDOW_S - now
        if state.over_quota_noticed:
            return Verdict.SILENT, wait
        state.over_quota_noticed = True
        return Verdict.NOTICE, wait
