"""What replicas on one PostgreSQL database must decide together, beyond the queues
(docs/design/replicas.md section 3); tables `rate_limits`, `reply_limits`, and the daily post
budget's statement on `daily_posts`.

- Rate-limit pacing and 429 penalties (`PgSharedWindows`): one row per (identity, group)
  holds the window's sends and the penalty's end on the database's clock; every request is
  reserved in one short transaction under the row's lock, so the replicas together never
  put more into a window than RingCentral allows, and none sends during a penalty another
  one met.
- The day's post budget (`take_post`): one statement takes a place or answers none.
- Each person's command quota (`PgReplyLimits`): the row of the person, locked while the
  verdict is made, so a person cannot get N times the quota from N replicas.
- Creating a card (`take_post` with the card): the pending row of (call, destination) names
  the replica creating it, so another one never posts the same card meanwhile.
- Owner → account attribution: a trigger NOTIFYs every change of `installs`; each replica
  LISTENs and reads the whole table when it starts listening (and again every
  `ATTRIBUTION_REFRESH_S`), so a bot installed through one replica has its notifications
  attributed on all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from bot.crypto import TokenCipher
from bot.ratelimit import Reservation, SharedAnswer
from bot.reply_limits import PersonLimits
from bot.store.postgres.base import PgStoreBase
from bot.store.records import PostPlace

log = logging.getLogger(__name__)

PROBE_LEASE_S = 40.0
"""How long a request sent alone (the group's state unknown) keeps the others waiting if
its replica dies before the answer: longer than a request may take (30 s)."""
ATTRIBUTION_REFRESH_S = 30.0
"""How often each replica reads `installs` whole, besides following its NOTIFYs: a
safety net for a notice lost while the listening connection was being replaced."""
INSTALLS_CHANNEL = "installs"
CARD_CLAIM_S = 45.0
"""How long a replica's claim on creating a card holds the others off: longer than the
create request may take (30 s), so only a replica that died lets another one post."""
REPLY_LIMITS_KEPT_S = 3600.0
"""A person's counts are dropped after this long without a message (longer than the
command window and the quiet time, 10 minutes each)."""

_NOW = "SELECT extract(epoch FROM clock_timestamp())::double precision"


def _window_margin(window_s: float) -> float:
    """As `RateGovernor`: RingCentral counts a request when it arrives, a little after it
    was sent, so the window is held slightly longer than it is."""
    return window_s + min(1.0, 0.02 * window_s)


class PgSharedWindows:
    """`SharedWindows` on PostgreSQL: rate-limit windows and penalties in `rate_limits`."""

    def __init__(self, pool: Any) -> None:
        self._pool = pool

    @asynccontextmanager
    async def _locked_row(
        self, identity: str, group: str, default_limit: int, default_window_s: float
    ) -> AsyncIterator[tuple[Any, Any, float]]:
        """The group's row locked for this transaction, and the database's time once the
        lock is held (a replica that queued for it must not count from before)."""
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute(
                "INSERT INTO rate_limits (identity, grp, limit_n, window_s, counting_since) "
                "VALUES ($1, $2, $3, $4, extract(epoch FROM clock_timestamp())) "
                "ON CONFLICT (identity, grp) DO NOTHING",
                identity,
                group,
                default_limit,
                default_window_s,
            )
            row = await connection.fetchrow(
                "SELECT * FROM rate_limits WHERE identity = $1 AND grp = $2 FOR UPDATE",
                identity,
                group,
            )
            now = float(await connection.fetchval(_NOW))
            yield connection, row, now

    async def reserve(
        self,
        identity: str,
        group: str,
        *,
        default_limit: int,
        default_window_s: float,
        starting: bool,
    ) -> Reservation:
        async with self._locked_row(identity, group, default_limit, default_window_s) as (
            connection,
            row,
            now,
        ):
            limit, window_s = int(row["limit_n"]), float(row["window_s"])
            window = _window_margin(window_s)
            sends = sorted(s for s in row["sends"] if s > now - window)
            known = bool(row["known"]) and not starting
            # A replica starting does not know what its predecessor left unanswered (a
            # 429 it never stored): one request goes alone first, as after any start.
            wait = float(row["penalty_until"]) - now
            if wait <= 0 and len(sends) >= limit:
                wait = sends[len(sends) - limit] + window - now
            probe_out = not known and float(row["probe_until"]) > now
            granted = wait <= 0 and not probe_out
            probe_at, probe_until = row["probe_at"], float(row["probe_until"])
            if granted:
                # Only the latest `limit` sends can hold the next one up.
                sends = [*sends[max(0, len(sends) + 1 - limit) :], now]
                if not known:
                    probe_at, probe_until = now, now + PROBE_LEASE_S
            await connection.execute(
                "UPDATE rate_limits SET sends = $3, known = $4, probe_at = $5, "
                "probe_until = $6 WHERE identity = $1 AND grp = $2",
                identity,
                group,
                sends,
                int(known),
                probe_at,
                probe_until,
            )
            ages = tuple(now - s for s in sends if not (granted and s == now))
            return Reservation(
                granted=granted,
                wait_s=max(0.0, wait),
                sent_at=now,
                penalties=int(row["penalties"]),
                limit=limit,
                window_s=window_s,
                known=known,
                ages_s=ages,
                penalty_left_s=max(0.0, float(row["penalty_until"]) - now),
            )

    async def penalise(
        self,
        identity: str,
        group: str,
        pause_s: float,
        *,
        default_limit: int,
        default_window_s: float,
    ) -> None:
        """A 429: nothing in this group from any replica for `pause_s` (the later end
        wins), and one request alone afterwards."""
        await self._pool.execute(
            "INSERT INTO rate_limits AS r (identity, grp, limit_n, window_s, counting_since, "
            "penalty_until, penalties) VALUES ($1, $2, $3, $4, "
            "extract(epoch FROM clock_timestamp()), "
            "extract(epoch FROM clock_timestamp()) + $5, 1) "
            "ON CONFLICT (identity, grp) DO UPDATE SET "
            "penalty_until = GREATEST(r.penalty_until, excluded.penalty_until), "
            "penalties = r.penalties + 1, known = 0",
            identity,
            group,
            default_limit,
            default_window_s,
            max(0.0, pause_s),
        )

    async def finish(
        self, identity: str, group: str, answer: SharedAnswer, after_penalties: int
    ) -> None:
        """A request ended: its probe lease ends, the window learns what the answer told
        (limit, length, the use the server counted), and the group becomes known when an
        answer sent after the last 429 was not a 429 and the use is known."""
        async with self._pool.acquire() as connection, connection.transaction():
            row = await connection.fetchrow(
                "SELECT * FROM rate_limits WHERE identity = $1 AND grp = $2 FOR UPDATE",
                identity,
                group,
            )
            if row is None:
                return
            now = float(await connection.fetchval(_NOW))
            limit, window_s = int(row["limit_n"]), float(row["window_s"])
            if answer.limit is not None and answer.limit > 0:
                limit = answer.limit
            if answer.window_s is not None and answer.window_s > 0:
                window_s = float(answer.window_s)
            sends = sorted(s for s in row["sends"] if s > now - _window_margin(window_s))
            if answer.remaining is not None and answer.limit is not None:
                # The server counted more than the replicas did (another client with the
                # same token): fill the window so that nobody overshoots.
                missing = answer.limit - answer.remaining - len(sends)
                if missing > 0:
                    sends = [now] * missing + sends
            if answer.sent_at in sends:
                # Counted from its answer rather than its reservation: RingCentral counts
                # it on arrival, somewhere in between, and a loaded replica may take a
                # while from one to the other (`RateGovernor._counted_by_now` does it once
                # the window is half used; here the write is made anyway).
                sends.remove(answer.sent_at)
                sends.append(now)
            known = bool(row["known"])
            if (
                answer.relieved
                and not known
                and after_penalties == int(row["penalties"])
                and (answer.usage_told or now - float(row["counting_since"]) >= window_s)
            ):
                known = True
            probe_at, probe_until = row["probe_at"], float(row["probe_until"])
            if answer.probe and probe_at == answer.sent_at:
                probe_at, probe_until = None, 0.0
            await connection.execute(
                "UPDATE rate_limits SET limit_n = $3, window_s = $4, sends = $5, known = $6, "
                "probe_at = $7, probe_until = $8 WHERE identity = $1 AND grp = $2",
                identity,
                group,
                limit,
                window_s,
                sends,
                int(known),
                probe_at,
                probe_until,
            )


class PgReplyLimits:
    """`ReplyLimits`' people on PostgreSQL: one row per person, locked while a verdict is
    made, so the quota is one across replicas."""

    def __init__(self, pool: Any) -> None:
        self._pool = pool

    @asynccontextmanager
    async def person(self, person: str) -> AsyncIterator[tuple[PersonLimits, float]]:
        account_id = person.partition(":")[0] or None
        async with self._pool.acquire() as connection, connection.transaction():
            created = await connection.fetchval(
                "INSERT INTO reply_limits (person, account_id, updated_at) "
                "VALUES ($1, $2, extract(epoch FROM clock_timestamp())) "
                "ON CONFLICT (person) DO NOTHING RETURNING true",
                person,
                account_id,
            )
            if created:
                # Someone new: rows idle for longer than any window or quiet time are
                # worth nothing; keeping them would only keep who wrote to the bot.
                # Rows another transaction holds are left for the next time (no waiting,
                # no deadlock between two newcomers).
                await connection.execute(
                    "DELETE FROM reply_limits WHERE person IN (SELECT person FROM reply_limits "
                    "WHERE updated_at < extract(epoch FROM clock_timestamp()) - $1 "
                    "FOR UPDATE SKIP LOCKED)",
                    REPLY_LIMITS_KEPT_S,
                )
            row = await connection.fetchrow(
                "SELECT * FROM reply_limits WHERE person = $1 FOR UPDATE", person
            )
            now = float(await connection.fetchval(_NOW))
            state = PersonLimits(
                unknown_in_a_row=int(row["unknown_in_a_row"]),
                quiet_until=float(row["quiet_until"]),
                commands=list(row["commands"]),
                over_quota_noticed=bool(row["over_quota_noticed"]),
            )
            yield state, now
            await connection.execute(
                "UPDATE reply_limits SET unknown_in_a_row = $2, quiet_until = $3, "
                "commands = $4, over_quota_noticed = $5, updated_at = $6 WHERE person = $1",
                person,
                state.unknown_in_a_row,
                state.quiet_until,
                list(state.commands),
                int(state.over_quota_noticed),
                now,
            )


class _NothingTaken(Exception):
    """Rolls `take_post`'s transaction back when the budget has no room."""


class PgShared(PgStoreBase):
    """The shared decisions of replicas: see the module's docstring."""

    def __init__(
        self, pool: Any, cipher: TokenCipher | None = None, replica_id: str | None = None
    ) -> None:
        super().__init__(pool, cipher, replica_id)
        self._installs_follower: asyncio.Task[None] | None = None
        self._installed_bots: dict[str, str] = {}
        """The bots `installs` held when last read: those gone since are forgotten."""
        self._install_changes = 0
        """How many changes were heard (NOTIFY), to tell a read that raced one."""

    def shared_windows(self) -> PgSharedWindows:
        return PgSharedWindows(self._pool)

    def shared_reply_limits(self) -> PgReplyLimits:
        return PgReplyLimits(self._pool)

    async def take_post(
        self,
        account_id: str,
        day: str,
        budget: int,
        card: tuple[str, str, str] | None = None,
    ) -> PostPlace:
        """Before a post, in one transaction: for a card (`card`: card key, destination,
        chat id), claim its creation for this replica (`_claim_card`); then one place in
        `day`'s budget, if fewer than `budget` are taken. Each is decided by one statement,
        so replicas posting at once never exceed the budget nor both create a card.
        Nothing is kept when either is refused."""
        if budget <= 0:
            return PostPlace.OVER_BUDGET
        try:
            async with self._transaction() as connection:
                if card is not None and not await self._claim_card(connection, *card, account_id):
                    return PostPlace.CARD_CLAIMED
                taken = await connection.fetchval(
                    "INSERT INTO daily_posts AS d (account_id, day, count) VALUES ($1, $2, 1) "
                    "ON CONFLICT (account_id, day) DO UPDATE SET count = d.count + 1 "
                    "WHERE d.count < $3 RETURNING count",
                    account_id,
                    day,
                    budget,
                )
                if taken is None:
                    raise _NothingTaken
        except _NothingTaken:
            return PostPlace.OVER_BUDGET
        return PostPlace.TAKEN

    async def _claim_card(
        self, connection: Any, card_key: str, destination: str, chat_id: str, account_id: str
    ) -> bool:
        """Note that the card of (call, destination) is being created (as
        `mark_card_pending`: a retry after a crash looks for it in the chat) and claim it
        for this replica for `CARD_CLAIM_S`. False when the card exists already or another
        replica claimed it and may be creating it right now. The same replica retrying
        keeps its claim; a claim that ran out (its replica died) is taken over.
        `updated_at` stays the first attempt's: the chat is searched from then."""
        claimed = await connection.fetchval(
            "INSERT INTO posted_cards AS p (card_key, destination, chat_id, card_id, "
            "updated_at, account_id, claimed_by, claimed_until) "
            "VALUES ($1, $2, $3, '', $4, $5, $6, extract(epoch FROM clock_timestamp()) + $7) "
            "ON CONFLICT (card_key, destination) DO UPDATE SET "
            "claimed_by = excluded.claimed_by, claimed_until = excluded.claimed_until "
            "WHERE p.card_id = '' AND (p.claimed_by IS NULL OR p.claimed_by = excluded.claimed_by "
            "OR p.claimed_until < extract(epoch FROM clock_timestamp())) "
            "RETURNING true",
            card_key,
            destination,
            chat_id,
            time.time(),
            account_id,
            self.replica_id,
            CARD_CLAIM_S,
        )
        return bool(claimed)

    async def give_back_post(self, account_id: str, day: str) -> None:
        """A place taken by `take_post` whose post certainly was not made (refused,
        throttled)."""
        await self._pool.execute(
            "UPDATE daily_posts SET count = count - 1 "
            "WHERE account_id = $1 AND day = $2 AND count > 0",
            account_id,
            day,
        )

    async def follow_installs(self) -> None:
        """Start keeping owner → account attribution fresh from `installs` (returns once
        the table has been read, so the first notifications are attributed)."""
        if self._installs_follower is not None:
            return
        loaded = asyncio.Event()
        self._installs_follower = asyncio.get_running_loop().create_task(
            self._follow_installs(loaded)
        )
        await loaded.wait()

    async def _follow_installs(self, loaded: asyncio.Event) -> None:
        while True:
            try:
                async with self._pool.acquire() as connection:
                    lost = asyncio.Event()
                    connection.add_termination_listener(lambda _connection, lost=lost: lost.set())
                    await connection.add_listener(INSTALLS_CHANNEL, self._install_changed)
                    try:
                        # Listening first, then reading: no change falls in between.
                        while True:
                            await self._read_attribution(connection)
                            loaded.set()
                            with contextlib.suppress(TimeoutError):
                                await asyncio.wait_for(lost.wait(), ATTRIBUTION_REFRESH_S)
                            if lost.is_set():
                                break
                    finally:
                        if not connection.is_closed():
                            await connection.remove_listener(
                                INSTALLS_CHANNEL, self._install_changed
                            )
            except asyncio.CancelledError:
                raise
            except Exception as err:
                log.warning(
                    "following installs for attribution: %s; again in 1 s", type(err).__name__
                )
                loaded.set()  # what is known is used meanwhile; unknown owners stay unknown
            await asyncio.sleep(1.0)

    async def _read_attribution(self, connection: Any) -> None:
        while True:
            changes_before = self._install_changes
            rows: Sequence[Any] = await connection.fetch(
                "SELECT bot_extension_id, account_id FROM installs"
            )
            # A change heard while reading may be newer than what was read: read again
            # rather than let the older table undo it.
            if self._install_changes == changes_before:
                break
        installed = {str(r["bot_extension_id"]): str(r["account_id"]) for r in rows}
        for gone in self._installed_bots.keys() - installed.keys():
            self._owner_accounts.pop(gone, None)
        for owner, account in installed.items():
            self.attribute_owner(owner, account)
        self._installed_bots = installed

    def _install_changed(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        self._install_changes += 1
        try:
            change = json.loads(payload)
        except ValueError:
            return
        if not isinstance(change, dict):
            return
        removed = change.get("removed")
        if isinstance(removed, str):
            self._owner_accounts.pop(removed, None)
            self._installed_bots = {k: v for k, v in self._installed_bots.items() if k != removed}
            return
        owner, account = change.get("owner"), change.get("account")
        if isinstance(owner, str) and isinstance(account, str):
            self.attribute_owner(owner, account)
            self._installed_bots = {**self._installed_bots, owner: account}

    async def close(self) -> None:
        if self._installs_follower is not None:
            self._installs_follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._installs_follower
            self._installs_follower = None
        await super().close()
