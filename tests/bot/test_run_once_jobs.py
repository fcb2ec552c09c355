"""Two replicas of the bot: every run-once job runs on exactly one of them, moves to the
other within seconds when its holder stops or loses its lease, and readiness on the replica
that does not run a job follows the holder's heartbeat (issue 13, docs/design/replicas.md
section 4).

The leases are PostgreSQL advisory locks (`postgres_url`); the replicas share one SQLite
file as their storage until the PostgreSQL storage families are merged (the leases need
only the URL). Each replica has its own public URL here (there is no load balancer), so a
replica that takes the subscriptions over subscribes at its own address.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from bot.app import (
    AI_POLLER,
    CATCH_UP_REQUESTS,
    RINGCX_POLLERS,
    SERVICES,
    SUBSCRIPTIONS,
    metrics_listener_url,
)
from bot.jobs import (
    AI_JOBS_LEASE,
    CATCH_UP_LEASE,
    RETENTION_LEASE,
    RINGCX_LEASE,
    ROLLUPS_LEASE,
    SUBSCRIPTIONS_LEASE,
    heartbeat_key,
    heartbeat_value,
)
from bot.leases import Lease, PostgresLeases
from bot.runner import RunningBot, start_bot
from bot.storage import StorageInterface
from sandbox.runner import start_sandbox
from tests.e2e import STATUS_TOKEN, Control, bot_config, eventually, running_stack, settle

JOBS = (SUBSCRIPTIONS_LEASE, CATCH_UP_LEASE, AI_JOBS_LEASE, RETENTION_LEASE, ROLLUPS_LEASE)
"""The run-once jobs of a bot without RingCX."""
TAKEOVER_LIMIT_S = 20.0
"""Generous bound for "within seconds" on a loaded 2-core machine (retries every 0.2 s)."""


def fast_leases(url: str) -> PostgresLeases:
    return PostgresLeases(url, retry_s=0.2, heartbeat_s=0.5)


class NeverLease:
    """A lease this replica never gets (it does not contend): puts a job elsewhere."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def acquire(self) -> None:
        await asyncio.Event().wait()

    async def wait_lost(self) -> None:
        await asyncio.Event().wait()

    async def release(self) -> None:
        return None


class LeasesWithout:
    """PostgreSQL leases, except the named ones, which this replica never holds."""

    def __init__(self, url: str, *names: str) -> None:
        self._leases = fast_leases(url)
        self._without = set(names)

    def lease(self, name: str) -> Lease:
        return NeverLease(name) if name in self._without else self._leases.lease(name)


@dataclass
class Replicas:
    sandbox: Any
    control: Control
    url: str
    database: Path
    verification_token: str
    bots: dict[str, RunningBot]

    async def start(
        self,
        name: str,
        leases: Any = None,
        *,
        wait_ready: bool = True,
        ringcx: dict[str, Any] | None = None,
        public_url: str | None = None,
    ) -> RunningBot:
        """`public_url`: another replica's, as if behind one load balancer that always
        picks that one (by default each replica is reached at its own address)."""
        config = bot_config(
            self.sandbox.url,
            self.database,
            verification_token=self.verification_token,
            ringcx=ringcx,
            overrides={"bot": {"replica_id": name}, "metrics": {"bind": "127.0.0.1:0"}},
        )
        if public_url is not None:
            config = replace(config, public_url=public_url)
        bot = await start_bot(config, leases=leases or fast_leases(self.url), wait_ready=wait_ready)
        self.bots[name] = bot
        return bot

    async def start_first(
        self, name: str, leases: Any = None, *, jobs: tuple[str, ...] = JOBS
    ) -> RunningBot:
        """A replica started alone, once it runs `jobs` and their work is done (every
        subscription made)."""
        bot = await self.start(name, leases)

        async def running_and_ready() -> bool:
            held = await leases_held(bot)
            subscribed = all(state["healthy"] for state in bot.app[SUBSCRIPTIONS].health().values())
            return all(held[job] == 1 for job in jobs) and (
                subscribed or SUBSCRIPTIONS_LEASE not in jobs
            )

        await eventually(running_and_ready, within_s=TAKEOVER_LIMIT_S)
        return bot

    async def stop(self, name: str) -> None:
        await self.bots.pop(name).stop()


@asynccontextmanager
async def replicas(postgres_url: str, tmp_path: Path) -> AsyncIterator[Replicas]:
    sandbox = await start_sandbox()
    session = aiohttp.ClientSession()
    group = Replicas(
        sandbox, Control(session, sandbox.url), postgres_url, tmp_path / "bot.sqlite3", "v" * 20, {}
    )
    try:
        yield group
    finally:
        for name in list(group.bots):
            await group.stop(name)
        await session.close()
        await sandbox.close()


async def metric_values(bot: RunningBot, metric: str) -> dict[str, float]:
    """A one-label metric's values by label, as this replica's /metrics says."""
    url = metrics_listener_url(bot.app)
    assert url is not None
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        text = await response.text()
    pattern = re.escape(metric) + r'\{[a-z_]+="([^"]+)"\} (\S+)$'
    return {match[1]: float(match[2]) for match in re.finditer(pattern, text, re.M)}


async def leases_held(bot: RunningBot) -> dict[str, float]:
    """`ringsense_bot_lease_held{name}`: which jobs this replica runs."""
    return await metric_values(bot, "ringsense_bot_lease_held")


async def holders(*bots: RunningBot) -> dict[str, int]:
    """For each job, how many of the replicas say they run it."""
    counts = dict.fromkeys(JOBS, 0)
    for bot in bots:
        for name, held in (await leases_held(bot)).items():
            counts[name] = counts.get(name, 0) + int(held)
    return counts


async def readyz(bot: RunningBot) -> int:
    async with aiohttp.ClientSession() as session, session.get(f"{bot.url}/readyz") as response:
        return response.status


async def problems(bot: RunningBot) -> list[str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{bot.url}/status", headers={"Authorization": f"Bearer {STATUS_TOKEN}"}
        ) as response,
    ):
        body: Mapping[str, Any] = await response.json()
    return list(body["problems"])


async def digests_in(control: Control, chat: str) -> list[str]:
    """The calls whose digest cards are in the chat."""
    keys = []
    for card in await control.cards(chat):
        found = re.search(r'"callKey": "(pbx:[^"]+)"', json.dumps(card["card"]))
        if found:
            keys.append(found[1])
    return keys


def storage_of(bot: RunningBot) -> StorageInterface:
    return bot.app[SERVICES].storage


async def service_subscription_addresses(control: Control) -> list[str]:
    """Where the service user's live subscriptions deliver (the bot's are separate)."""
    bots = {str(b["extensionId"]) for b in await control.call("GET", "/bots")}
    return [
        str(s["deliveryMode"]["address"])
        for s in await control.call("GET", "/subscriptions")
        if str(s["ownerId"]) not in bots
    ]


async def test_each_job_runs_on_one_replica_and_moves_when_its_holder_stops(
    postgres_url: str, tmp_path: Path
) -> None:
    async with replicas(postgres_url, tmp_path) as group:
        first = await group.start_first("first")
        second = await group.start("second")

        async def each_job_on_one() -> bool:
            return await holders(first, second) == dict.fromkeys(JOBS, 1)

        await eventually(each_job_on_one, within_s=TAKEOVER_LIMIT_S)
        # The first replica started alone, so it took every lease; the second waits.
        assert set((await leases_held(first)).values()) == {1.0}
        assert set((await leases_held(second)).values()) == {0.0}

        # One RingSense subscription, made by the one keeping subscriptions.
        async def subscribed_once() -> bool:
            return await service_subscription_addresses(group.control) == [
                first.app[SERVICES].config.webhook_address
            ]

        await eventually(subscribed_once, within_s=TAKEOVER_LIMIT_S)

        # Both ready once subscribed: the second because the first's heartbeats are fresh.
        async def both_ready() -> bool:
            return (await readyz(first), await readyz(second)) == (200, 200)

        await eventually(both_ready, within_s=TAKEOVER_LIMIT_S)
        beat = await storage_of(second).state(heartbeat_key(AI_JOBS_LEASE))
        assert beat is not None and beat.startswith("first ")

        # The second's /metrics (and a person's `status` there) calls the subscriptions
        # healthy: their keeper, elsewhere, says so.
        async def second_sees_healthy_subscriptions() -> bool:
            found = await metric_values(second, "ringsense_bot_subscription_healthy")
            return bool(found) and set(found.values()) == {1.0}

        await eventually(second_sees_healthy_subscriptions, within_s=TAKEOVER_LIMIT_S)

        await group.stop("first")

        async def second_runs_everything() -> bool:
            return set((await leases_held(second)).values()) == {1.0}

        await eventually(second_runs_everything, within_s=TAKEOVER_LIMIT_S)
        assert second.app[AI_POLLER].healthy()

        # The second now keeps the subscriptions: the RingSense one delivers to it.
        async def resubscribed_here() -> bool:
            return await service_subscription_addresses(group.control) == [
                second.app[SERVICES].config.webhook_address
            ]

        await eventually(resubscribed_here, within_s=TAKEOVER_LIMIT_S)

        async def ready() -> bool:
            return await readyz(second) == 200

        await eventually(ready, within_s=TAKEOVER_LIMIT_S)


async def lease_holder_pid(url: str, name: str) -> int:
    """The server process of the connection holding the lease `name`."""
    admin = await asyncpg.connect(url)
    try:
        pid = await admin.fetchval(
            "SELECT a.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = $1",
            f"lease:{name}",
        )
    finally:
        await admin.close()
    assert pid is not None, f"nobody holds {name}"
    return int(pid)


async def test_a_holder_whose_lease_connection_dies_hands_that_job_over(
    postgres_url: str, tmp_path: Path
) -> None:
    async with replicas(postgres_url, tmp_path) as group:
        first = await group.start_first("first")
        second = await group.start("second")
        assert first.app[AI_POLLER].healthy()
        assert not second.app[AI_POLLER].healthy()  # it does not poll while first does

        admin = await asyncpg.connect(postgres_url)
        try:
            pid = await lease_holder_pid(postgres_url, AI_JOBS_LEASE)
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        finally:
            await admin.close()

        async def moved() -> bool:
            held_first, held_second = await leases_held(first), await leases_held(second)
            return held_first[AI_JOBS_LEASE] == 0 and held_second[AI_JOBS_LEASE] == 1

        await eventually(moved, within_s=TAKEOVER_LIMIT_S)
        # The AI job poller now runs on the second replica only; every other job stayed.
        assert second.app[AI_POLLER].healthy()
        assert not first.app[AI_POLLER].healthy()
        assert await holders(first, second) == dict.fromkeys(JOBS, 1)
        assert (await leases_held(first))[SUBSCRIPTIONS_LEASE] == 1

        async def both_ready() -> bool:
            return (await readyz(first), await readyz(second)) == (200, 200)

        await eventually(both_ready, within_s=TAKEOVER_LIMIT_S)


async def test_readiness_where_a_job_does_not_run_follows_its_holders_heartbeat(
    postgres_url: str, tmp_path: Path
) -> None:
    async with replicas(postgres_url, tmp_path) as group:
        # Someone else (this test) holds every lease; this replica runs no job.
        elsewhere = fast_leases(postgres_url)
        held = [elsewhere.lease(name) for name in JOBS]
        for lease in held:
            await lease.acquire()
        try:
            bot = await group.start("lonely")
            storage = storage_of(bot)
            assert set((await leases_held(bot)).values()) == {0.0}
            # Nobody has ever said they run the jobs: not ready.
            assert await readyz(bot) == 503
            assert len(await problems(bot)) == len(JOBS)

            for name in JOBS:
                await storage.set_state(heartbeat_key(name), heartbeat_value("other", time.time()))
            assert await readyz(bot) == 200
            assert await problems(bot) == []

            # The AI job poller's holder went quiet a minute ago (dead, or its poller stuck).
            await storage.set_state(
                heartbeat_key(AI_JOBS_LEASE), heartbeat_value("other", time.time() - 60)
            )
            assert await readyz(bot) == 503
            assert await problems(bot) == ["ai-jobs: no replica runs it (no fresh heartbeat)"]
            # Nor does a heartbeat that is no time at all.
            await storage.set_state(heartbeat_key(AI_JOBS_LEASE), "other nan")
            assert await readyz(bot) == 503

            await storage.set_state(
                heartbeat_key(AI_JOBS_LEASE), heartbeat_value("other", time.time())
            )
            assert await readyz(bot) == 200
            # It made no subscription: that is the keeper's work.
            assert await service_subscription_addresses(group.control) == []
        finally:
            for lease in held:
                await lease.release()


async def test_a_catch_up_asked_for_where_it_does_not_run_happens_on_its_holder(
    postgres_url: str, tmp_path: Path
) -> None:
    async with replicas(postgres_url, tmp_path) as group:
        # The first replica keeps the subscriptions but never runs catch-up; the second does.
        first = await group.start_first(
            "first",
            LeasesWithout(postgres_url, CATCH_UP_LEASE),
            jobs=tuple(job for job in JOBS if job != CATCH_UP_LEASE),
        )
        second = await group.start("second")

        async def second_catches_up() -> bool:
            return (await leases_held(second)).get(CATCH_UP_LEASE) == 1

        await eventually(second_catches_up, within_s=TAKEOVER_LIMIT_S)
        control = group.control
        user = await control.user("Kim Park")
        dm = await control.chat([user, str((await control.call("GET", "/bots"))[0]["extensionId"])])
        await control.say(dm, user, "optin")
        await settle(first)
        # The RingSense subscription is lost; a call is analysed while nobody listens.
        keeper = first.app[SUBSCRIPTIONS].keepers["service"]

        async def subscribed() -> bool:
            return keeper.current is not None

        await eventually(subscribed, within_s=TAKEOVER_LIMIT_S)
        assert keeper.current is not None
        del group.sandbox.world.subscriptions[keeper.current.id]
        call = await control.call("POST", "/calls", {"ownerExtensionId": user, "durationSec": 600})
        await settle(first)
        assert await digests_in(control, dm) == []

        # The first replica's periodic check makes a new subscription, which asks for a
        # catch-up: the second replica runs it and the missed digest arrives.
        await first.app[SUBSCRIPTIONS].ensure_all()

        async def digest_arrived() -> list[str] | None:
            await settle(second)
            return await digests_in(control, dm) or None

        assert await eventually(digest_arrived, within_s=TAKEOVER_LIMIT_S) == [
            f"pbx:{call['sourceRecordId']}"
        ]
        # It was asked for in the database, by the replica that made the subscription.
        request = await storage_of(second).state(second.app[CATCH_UP_REQUESTS].key)
        assert request is not None and request.startswith("first ")


async def test_an_install_taken_where_subscriptions_are_not_kept_is_kept_and_forgotten_there(
    postgres_url: str, tmp_path: Path
) -> None:
    async with replicas(postgres_url, tmp_path) as group:
        first = await group.start_first("first")
        second = await group.start("second")
        # RingCentral sends the new install's token to the second replica.
        await group.control.call(
            "POST", "/settings", {"oauthRedirectUri": f"{second.url}/oauth/redirect"}
        )
        account = await group.control.call("POST", "/accounts", {"name": "Globex"})
        # install_bot waits until the new bot's subscription exists: the first replica,
        # which keeps the subscriptions, made it when the second asked.
        installed = await group.control.install_bot(account["accountId"])
        assert str(installed["extensionId"]) in first.app[SERVICES].installs

        async def kept_by_the_first() -> bool:
            # RingCentral has the subscription once install_bot returns; the keeper notes
            # its id when the answer reaches it, a moment later on a loaded machine.
            kept = first.app[SUBSCRIPTIONS].health().get(f"bot:{installed['extensionId']}")
            return kept is not None and kept["id"] is not None

        await eventually(kept_by_the_first)
        assert not second.app[SUBSCRIPTIONS].keeping

        # The bot is removed, and the second replica handles that (any replica may): the
        # first forgets it too, rather than keep (and fail to renew) its subscription.
        remove = second.app[SERVICES].remove_install
        assert remove is not None
        await remove(str(installed["extensionId"]))

        async def forgotten_by_the_keeper() -> bool:
            return f"bot:{installed['extensionId']}" not in first.app[SUBSCRIPTIONS].health()

        await eventually(forgotten_by_the_keeper, within_s=TAKEOVER_LIMIT_S)
        assert str(installed["extensionId"]) not in first.app[SERVICES].installs
        live = await group.control.call("GET", "/subscriptions")
        assert all(str(s["ownerId"]) != str(installed["extensionId"]) for s in live)
        assert await readyz(first) == 200


async def test_an_expiry_reminder_reaching_a_replica_that_does_not_keep_it_renews(
    postgres_url: str, tmp_path: Path
) -> None:
    async with replicas(postgres_url, tmp_path) as group:
        first = await group.start_first("first")
        second = await group.start("second")
        subscription_id = first.app[SUBSCRIPTIONS].health()["service"]["id"]
        assert subscription_id is not None
        world = group.sandbox.world
        world.live_subscription(subscription_id).expiration_time = world.now() + 3600
        renew = second.app[SERVICES].renew_subscription
        assert renew is not None

        await renew(subscription_id)  # what handlers/upkeep.py does with the reminder

        assert world.live_subscription(subscription_id).expiration_time > world.now() + 86_400


async def test_on_sqlite_the_one_process_runs_every_job(tmp_path: Path) -> None:
    async with running_stack(
        tmp_path / "bot.sqlite3", overrides={"metrics": {"bind": "127.0.0.1:0"}}
    ) as stack:
        assert await leases_held(stack.bot) == dict.fromkeys(JOBS, 1.0)
        assert stack.bot.app[AI_POLLER].healthy()
        assert await readyz(stack.bot) == 200
        # Nobody else could read a heartbeat: none is written.
        assert await storage_of(stack.bot).states_with_prefix("lease.") == {}


async def test_the_ringcx_poller_runs_on_one_replica_and_moves_with_its_lease(
    postgres_url: str, tmp_path: Path
) -> None:
    ringcx = {
        "enabled": True,
        "sub_account_id": "88820001",
        "window_minutes": 5,
        "lag_minutes": 5,
        "poll_interval_s": 1,
    }
    async with replicas(postgres_url, tmp_path) as group:
        await group.control.call("POST", "/ringcx/accounts", {})
        ringcx["base_url"] = group.sandbox.url
        first = await group.start("first", ringcx=ringcx)

        async def runs_ringcx(bot: RunningBot) -> bool:
            pollers = bot.app[RINGCX_POLLERS]
            return (await leases_held(bot)).get(RINGCX_LEASE) == 1 and all(
                poller.healthy() for poller in pollers
            )

        await eventually(lambda: runs_ringcx(first), within_s=TAKEOVER_LIMIT_S)
        second = await group.start("second", ringcx=ringcx)
        # The second has the RingCX client (handlers use it) but does not poll.
        assert second.app[SERVICES].ringcx is not None
        assert not any(poller.healthy() for poller in second.app[RINGCX_POLLERS])
        assert (await leases_held(second))[RINGCX_LEASE] == 0

        async def second_ready() -> bool:
            return await readyz(second) == 200

        await eventually(second_ready, within_s=TAKEOVER_LIMIT_S)

        await group.stop("first")
        await eventually(lambda: runs_ringcx(second), within_s=TAKEOVER_LIMIT_S)


async def test_an_event_for_an_install_another_replica_took_is_handled_not_dropped(
    postgres_url: str, tmp_path: Path
) -> None:
    async with replicas(postgres_url, tmp_path) as group:
        # Webhooks reach the first replica; the second keeps the subscriptions (at the
        # first's address, as behind a load balancer) and takes the new install.
        first = await group.start_first(
            "first",
            LeasesWithout(postgres_url, SUBSCRIPTIONS_LEASE),
            jobs=tuple(job for job in JOBS if job != SUBSCRIPTIONS_LEASE),
        )
        second = await group.start("second", public_url=first.url)
        await group.control.call(
            "POST", "/settings", {"oauthRedirectUri": f"{second.url}/oauth/redirect"}
        )
        account = await group.control.call("POST", "/accounts", {"name": "Globex"})
        installed = await group.control.install_bot(account["accountId"])
        bot_id = str(installed["extensionId"])
        # The first replica never saw the install; it learns of it from the database when
        # the new bot's first event reaches it.

        user = await group.control.user("Bea Other", accountId=account["accountId"])
        dm = await group.control.chat([user, bot_id])
        await group.control.say(dm, user, "optin")

        async def answered() -> list[str] | None:
            await settle(first)
            return await group.control.texts(dm, bot_id) or None

        [reply] = await eventually(answered, within_s=TAKEOVER_LIMIT_S)
        assert "You're in" in reply
        assert bot_id in first.app[SERVICES].installs


async def test_a_delivery_for_an_install_another_replica_took_is_sent_not_failed(
    postgres_url: str, tmp_path: Path
) -> None:
    async with replicas(postgres_url, tmp_path) as group:
        first = await group.start_first("first")
        second = await group.start("second")
        await group.control.call(
            "POST", "/settings", {"oauthRedirectUri": f"{second.url}/oauth/redirect"}
        )
        account = await group.control.call("POST", "/accounts", {"name": "Globex"})
        installed = await group.control.install_bot(account["accountId"])
        bot_id = str(installed["extensionId"])
        user = await group.control.user("Bea Other", accountId=account["accountId"])
        dm = await group.control.chat([user, bot_id])
        await settle(first)
        # A replica that has not heard of the install yet (as one that started before it
        # and got none of its events) sends a delivery queued for that account.
        first.app[SERVICES].installs.pop(bot_id, None)
        assert await storage_of(first).enqueue(
            "test:hello",
            {"kind": "chat", "chatId": dm},
            {"kind": "text", "text": "Hello from the bot"},
            account_id=account["accountId"],
        )

        async def sent() -> list[str] | None:
            await settle(first)
            return await group.control.texts(dm, bot_id) or None

        assert await eventually(sent, within_s=TAKEOVER_LIMIT_S) == ["Hello from the bot"]
