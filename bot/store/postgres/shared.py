"""What replicas on one PostgreSQL database must decide together, beyond the queues
(docs/design/replicas.md section 3); tables `rate_limits`, `reply_limits`, and the daily post
budget's statement on `daily_posts`.

- Rate-limit pacing and 429 penalties (`PgSharedWindows`): one row per (identity, group)
  holds the window's sends and the penalty's end on the database's clock; every request is
  reserved in one short transaction under the row's lock, so the replicas together never
  put more into a window than RingCentral allows, and none sends during a penalty another
  one met. One request of a group is on the wire at a time across the replicas (`_Wire`,
  a session advisory lock held while the request is out), so no request can be on its
  way when another one meets a 429.
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
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial
from typing import Any

from bot.crypto import TokenCipher
from bot.leases import advisory_key
from bot.ratelimit import Reservation, SharedAnswer, WindowView
from bot.reply_limits import PersonLimits
from bot.store.postgres.base import PgStoreBase
from bot.store.records import PostPlace

log = logging.getLogger(__name__)

WIRE_CHANNEL = "rate_limit_wire"
"""NOTIFYed when a replica's request of a group has been answered and its hold released,
so the replicas waiting for the group look again at once."""
WIRE_POLL_S = 0.2
"""How often a replica waiting for a group looks again without a NOTIFY: the holder died
(its session ended, which releases the lock but notifies nobody) or a NOTIFY was lost."""
WIRE_WAIT_MAX_S = 90.0
"""How long a request waits for another replica's request of its group before it gives up
(not sent; the caller retries later): longer than a request and its writes may take
(30 s + 2 x 10 s), so only a holder that is alive but stuck (a paused process, whose
session the server cannot tell from a slow one) makes the others give up."""
WIRE_QUERY_TIMEOUT_S = 10.0
"""How long one lock or unlock statement may take before the database counts as not
answering (then nothing is sent)."""
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


class _Wire:
    """Which (identity, group) has a request out, across the replicas: one session advisory
    lock per (identity, group), held from just before its request is reserved until its
    answer has been written to the row. RingCentral restarts a penalty for every request
    that arrives during it; a request already on its way when another one meets a 429 (an
    injected storm gives no warning) costs a whole penalty, and only a request that waits
    for the previous one's answer can know of it. The limits are 5 to 50 requests a minute
    per group, which one request at a time fills while a round trip takes under 1.2 s.

    A session lock, not a lease in the row: a replica that dies mid-request (SIGKILL, a
    crashed node) ends its session, and PostgreSQL releases its locks at once, where a
    lease would hold the group up for as long as it lasts. The locks of a replica are all
    held on one connection of its own, taken out of the pool while the replica runs: a
    replica may have requests of many identities and groups out at once (every account's
    bot and RingSense reader), and a pool would need a connection for each; a lock
    statement takes a fraction of a millisecond, so they queue on the one connection
    (`_statements`). Locks are only tried, never waited for inside PostgreSQL (which would
    block the connection): a waiter tries again when a NOTIFY on `WIRE_CHANNEL` says a
    hold ended, or after `WIRE_POLL_S` (a dead holder notifies nobody). A session lock is
    re-entrant within its session, so each key is also held in this process (`_local`).
    If the connection is lost, so are its locks: requests already out stay out (nothing
    can call them back), and new ones take a fresh connection.
    """

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self._connection: Any = None
        self._statements = asyncio.Lock()
        self._local: dict[int, asyncio.Lock] = {}
        self._released = asyncio.Event()
        self._closed = False
        self._undoing: set[asyncio.Task[None]] = set()

    @asynccontextmanager
    async def held(self, identity: str, group: str) -> AsyncIterator[None]:
        """Hold the group's wire: no other request of (identity, group), on any replica,
        until the block ends. Raises when the database does not answer."""
        key = advisory_key(f"wire:{identity}:{group}")
        local = self._local.setdefault(key, asyncio.Lock())
        async with local:
            connection = await self._take(key)
            try:
                yield
            finally:
                await asyncio.shield(self._give_back(key, connection))

    async def _take(self, key: int) -> Any:
        deadline = asyncio.get_running_loop().time() + WIRE_WAIT_MAX_S
        while True:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("another replica's request of the group is still out")
            self._released.clear()  # a release from here on wakes this waiter
            attempt = asyncio.ensure_future(self._try(key))
            try:
                connection = await asyncio.shield(attempt)
            except asyncio.CancelledError:
                # Cancelled while asking: a lock the answer gives is given back.
                attempt.add_done_callback(partial(self._undo, key))
                raise
            if connection is not None:
                return connection
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._released.wait(), WIRE_POLL_S)

    def _undo(self, key: int, attempt: asyncio.Future[Any]) -> None:
        if attempt.cancelled() or attempt.exception() is not None or attempt.result() is None:
            return
        task = asyncio.get_running_loop().create_task(self._give_back(key, attempt.result()))
        self._undoing.add(task)
        task.add_done_callback(self._undoing.discard)

    async def _try(self, key: int) -> Any:
        """The connection holding the lock now, or None when another session holds it."""
        async with self._statements:
            connection = await self._connected()
            taken = await connection.fetchval(
                "SELECT pg_try_advisory_lock($1)", key, timeout=WIRE_QUERY_TIMEOUT_S
            )
        return connection if taken else None

    async def _give_back(self, key: int, connection: Any) -> None:
        async with self._statements:
            if connection is not self._connection or connection.is_closed():
                return  # its session ended: the server released the lock with it
            try:
                await connection.fetchval(
                    "SELECT pg_advisory_unlock($1), pg_notify($2, '')",
                    key,
                    WIRE_CHANNEL,
                    timeout=WIRE_QUERY_TIMEOUT_S,
                )
            except Exception as err:
                # The lock may still be held: end the session, which releases every lock
                # of it (the requests still out keep going; nothing can stop them).
                log.warning("a rate-limit hold was not released (%s)", type(err).__name__)
                await self._drop()

    async def _connected(self) -> Any:
        """The wire's connection (called under `_statements`), taken again if it was lost."""
        connection = self._connection
        if connection is not None and not connection.is_closed():
            return connection
        await self._drop()
        if self._closed:
            raise ConnectionError("the storage is closed")
        connection = await self._pool.acquire(timeout=WIRE_QUERY_TIMEOUT_S)
        try:
            # A replica whose host vanishes (no FIN) is noticed by the server in about
            # 11 s rather than the system's default of hours, and its holds end then.
            await connection.execute(
                "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; "
                "SET tcp_keepalives_count = 3"
            )
            await connection.add_listener(WIRE_CHANNEL, self._on_release)
        except BaseException:
            await self._pool.release(connection)
            raise
        self._connection = connection
        return connection

    def _on_release(self, *_notice: Any) -> None:
        self._released.set()

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if not connection.is_closed():
            connection.terminate()
        with contextlib.suppress(Exception):
            await self._pool.release(connection)

    async def close(self) -> None:
        """Give the connection back (the pool's reset releases any lock still held)."""
        async with self._statements:
            self._closed = True
            connection, self._connection = self._connection, None
            if connection is not None:
                with contextlib.suppress(Exception):
                    await connection.remove_listener(WIRE_CHANNEL, self._on_release)
                with contextlib.suppress(Exception):
                    await self._pool.release(connection, timeout=WIRE_QUERY_TIMEOUT_S)


class PgSharedWindows:
    """`SharedWindows` on PostgreSQL: rate-limit windows and penalties in `rate_limits`,
    and who has a request out on the wire (`_Wire`)."""

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self._wire = _Wire(pool)

    def on_the_wire(self, identity: str, group: str) -> AbstractAsyncContextManager[None]:
        return self._wire.held(identity, group)

    async def close(self) -> None:
        await self._wire.close()

    async def forget(self, identity: str) -> None:
        await self._pool.execute("DELETE FROM rate_limits WHERE identity = $1", identity)

    @asynccontextmanager
    async def _locked_row(
        self, identity: str, group: str, default_limit: int, default_window_s: float
    ) -> AsyncIterator[tuple[Any, Any, float]]:
        """The group's row locked for this transaction, and the database's time once the
        lock is held (a replica that queued for it must not count from before)."""
        lock_row = "SELECT * FROM rate_limits WHERE identity = $1 AND grp = $2 FOR UPDATE"
        async with self._pool.acquire() as connection, connection.transaction():
            row = await connection.fetchrow(lock_row, identity, group)
            if row is None:  # the group's first request ever: one statement more
                await connection.execute(
                    "INSERT INTO rate_limits (identity, grp, limit_n, window_s, counting_since) "
                    "VALUES ($1, $2, $3, $4, extract(epoch FROM clock_timestamp())) "
                    "ON CONFLICT (identity, grp) DO NOTHING",
                    identity,
                    group,
                    default_limit,
                    default_window_s,
                )
                row = await connection.fetchrow(lock_row, identity, group)
            now = float(await connection.fetchval(_NOW))
            yield connection, row, now

    async def standing(self, identity: str, group: str) -> WindowView | None:
        """The group's window and penalty as the replicas left them (None: no row yet)."""
        async with self._pool.acquire() as connection:
            row = await connection.fetchrow(
                "SELECT limit_n, window_s, sends, penalty_until, "
                "extract(epoch FROM clock_timestamp())::double precision AS now "
                "FROM rate_limits WHERE identity = $1 AND grp = $2",
                identity,
                group,
            )
        if row is None:
            return None
        now, window_s = float(row["now"]), float(row["window_s"])
        window = _window_margin(window_s)
        return WindowView(
            limit=int(row["limit_n"]),
            window_s=window_s,
            ages_s=tuple(now - s for s in row["sends"] if s > now - window),
            penalty_left_s=max(0.0, float(row["penalty_until"]) - now),
        )

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
            # `known` no longer lets requests out side by side (one is on the wire at a
            # time, `_Wire`); it still says whether an answer since the last 429 and
            # since a replica started has shown where the window stands.
            known = bool(row["known"]) and not starting
            wait = float(row["penalty_until"]) - now
            if wait <= 0 and len(sends) >= limit:
                wait = sends[len(sends) - limit] + window - now
            granted = wait <= 0
            if granted:
                # Only the latest `limit` sends can hold the next one up.
                sends = [*sends[max(0, len(sends) + 1 - limit) :], now]
            await connection.execute(
                "UPDATE rate_limits SET sends = $3, known = $4 WHERE identity = $1 AND grp = $2",
                identity,
                group,
                sends,
                int(known),
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
                unexplained_429s=int(row["unexplained_429s"]),
            )

    async def penalise(
        self,
        identity: str,
        group: str,
        pause_s: float,
        *,
        default_limit: int,
        default_window_s: float,
        unexplained_429s: int = 0,
    ) -> None:
        """A 429: nothing in this group from any replica for `pause_s` (the later end
        wins), and one request alone afterwards. `unexplained_429s` is the count of 429s
        without `Retry-After` since the last other answer, which the next replica's
        back-off doubles from."""
        await self._pool.execute(
            "INSERT INTO rate_limits AS r (identity, grp, limit_n, window_s, counting_since, "
            "penalty_until, penalties, unexplained_429s) VALUES ($1, $2, $3, $4, "
            "extract(epoch FROM clock_timestamp()), "
            "extract(epoch FROM clock_timestamp()) + $5, 1, $6) "
            "ON CONFLICT (identity, grp) DO UPDATE SET "
            "penalty_until = GREATEST(r.penalty_until, excluded.penalty_until), "
            "penalties = r.penalties + 1, known = 0, "
            "unexplained_429s = excluded.unexplained_429s",
            identity,
            group,
            default_limit,
            default_window_s,
            max(0.0, pause_s),
            unexplained_429s,
        )

    async def finish(
        self, identity: str, group: str, answer: SharedAnswer, after_penalties: int
    ) -> None:
        """A request ended: the window learns what the answer told (limit, length, the use
        the server counted), an answer that is not a 429 starts the back-off afresh, and
        the group becomes known when an answer sent after the last 429 was not a 429 and
        the use is known."""
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
            unexplained = 0 if answer.relieved else int(row["unexplained_429s"])
            await connection.execute(
                "UPDATE rate_limits SET limit_n = $3, window_s = $4, sends = $5, known = $6, "
                "unexplained_429s = $7 WHERE identity = $1 AND grp = $2",
                identity,
                group,
                limit,
                window_s,
                sends,
                int(known),
                unexplained,
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
        self._windows: PgSharedWindows | None = None

    def shared_windows(self) -> PgSharedWindows:
        """This replica's one view of the shared windows: one wire connection for all."""
        if self._windows is None:
            self._windows = PgSharedWindows(self._pool)
        return self._windows

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
        if self._windows is not None:
            await self._windows.close()
        await super().close()
