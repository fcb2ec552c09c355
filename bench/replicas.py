"""Several replicas on PostgreSQL, proven from outside: `python -m sandbox` with the
platform's rate limits at their real numbers, N `python -m bot run` replicas sharing one
PostgreSQL database behind a round-robin proxy (the subscriptions' webhook address), and
replicas SIGKILLed while the calls stream in.

    python bench/replicas.py                     # 3 replicas, 300 calls, 6 kills, 2 of the
                                                 # lease holder, then intake 1 vs 3 replicas
    python bench/replicas.py --calls 40 --kills 2 --holder-kills 1 --intake-runs 0
    python bench/replicas.py --database sqlite --replicas 1   # the harness on SQLite

PostgreSQL: the server named by BOT_TEST_POSTGRES_URL (a role that may create databases),
else a private one from the `pgserver` wheel; a fresh database either way. The proxy is
bench/proxy.py (Python, runs anywhere), or HAProxy with `--proxy haproxy` (its config made
like deploy/haproxy.cfg).

What goes wrong while the calls stream (as in bench/chaos.py, whose judging this reuses):
5xx and connection resets on the bot's posts, card calls and RingSense reads, every
notification delivered twice and reordered (so the two copies usually reach two different
replicas), 429 storms on card creation, the RingSense subscription deleted, expired and
blacklisted; a random replica SIGKILLed `--kills` times and the replica holding the
run-once jobs' lease (`subscriptions`, found in pg_locks) `--holder-kills` times, each
restarted after up to 2 s.

It prints, per (call, destination): expected, lost, duplicated, misdirected; the requests
the replicas together sent inside a 429 penalty (from the sandbox's request log); the
longest gap without a subscription check (the sandbox's log of `GET /restapi/v1.0/
subscription`, per identity, while calls streamed; the check runs every
SUBSCRIPTION_CHECK_S s on the lease holder); how long the lease took to move after its
holder was killed; and webhook intake through the proxy (`wrk`) with 1 and with N replicas.
Target: 0 lost, 0 duplicated, 0 inside a penalty, no gap of a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import re
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._common import spread  # noqa: E402
from bench.chaos import (  # noqa: E402
    KILL_MARGIN_S,
    RATE_WINDOW_S,
    SUBSCRIPTION_CHECK_S,
    BotProcess,
    ChaosResult,
    Control,
    Owner,
    SandboxProcess,
    _people,
    _ringsense_subscription,
    _stream_calls,
    _wait_for_setup,
    chaos_faults,
    faults_off,
    make_trouble,
    settle_and_judge,
)
from bot.crypto import generate_key  # noqa: E402
from bot.runner import free_port  # noqa: E402
from sandbox import defaults  # noqa: E402

LEASE = "subscriptions"
"""The run-once lease whose holder is killed on purpose (subscription upkeep: its checks
are what the sandbox's log shows)."""
SUBSCRIPTION_LIST_PATH = "/restapi/v1.0/subscription"
HOLDER_WAIT_S = 30.0
WEBHOOK_PATH = "/webhooks/ringcentral"


@dataclass
class ReplicasResult(ChaosResult):
    replicas: int = 0
    database: str = ""
    proxy: str = ""
    holder_kills: int = 0
    holder_not_found: int = 0
    """Lease-holder kills skipped because no replica held the lease for HOLDER_WAIT_S."""
    takeover_s: list[float] = field(default_factory=list)
    """Seconds from a lease holder's SIGKILL until another replica held the lease."""
    check_gaps: dict[str, CheckGap] = field(default_factory=dict)
    """Per identity, the longest time without a subscription check while calls streamed."""
    intake: dict[int, list[float]] = field(default_factory=dict)
    """Webhooks accepted per second through the proxy, by number of replicas."""

    def longest_check_gap_s(self) -> float:
        return max((gap.seconds for gap in self.check_gaps.values()), default=float("inf"))

    def lines(self) -> list[str]:
        gaps = "; ".join(f"{who} {gap}" for who, gap in sorted(self.check_gaps.items()))
        lines = [
            f"replicas              {self.replicas} on {self.database}, behind {self.proxy}",
            *super().lines(),
            f"lease-holder SIGKILLs {self.holder_kills} (of the {self.kills} above; "
            f"{self.holder_not_found} skipped: no holder found)",
            "lease takeover        "
            + (
                f"{spread(self.takeover_s, 1)} s (min / median / max)"
                if self.takeover_s
                else "not measured"
            ),
            f"longest gap without a subscription check {self.longest_check_gap_s():.1f} s "
            f"({gaps or 'no checks seen'}; checked every {SUBSCRIPTION_CHECK_S} s)",
        ]
        for count, rates in sorted(self.intake.items()):
            lines.append(
                f"intake, {count} replica{'s' if count > 1 else ' '}   "
                f"{spread(rates, 0)} webhooks/s (min / median / max of {len(rates)} runs)"
            )
        return lines


class Proxy:
    """The round-robin proxy in front of the replicas, as its own process."""

    def __init__(self, kind: str, port: int, workdir: Path) -> None:
        self.kind = kind
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._workdir = workdir
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, backends: Sequence[str]) -> None:
        log = (self._workdir / f"proxy-{self.kind}.log").open("ab")
        if self.kind == "haproxy":
            config = self._workdir / "haproxy.cfg"
            config.write_text(haproxy_config(self.port, backends))
            command = ["haproxy", "-db", "-f", str(config)]
        else:
            command = [sys.executable, str(ROOT / "bench" / "proxy.py"), "--port", str(self.port)]
            for backend in backends:
                command += ["--backend", backend]
        self.process = await asyncio.create_subprocess_exec(
            *command, cwd=ROOT, stdout=log, stderr=log
        )
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.returncode is not None:
                raise RuntimeError(f"the {self.kind} proxy exited; see {self._workdir}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return
            except OSError:
                await asyncio.sleep(0.1)
        raise RuntimeError(f"the {self.kind} proxy did not listen in time")

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


def haproxy_config(port: int, backends: Sequence[str]) -> str:
    """deploy/haproxy.cfg's settings, for replicas on loopback."""
    addresses = [backend.removeprefix("http://") for backend in backends]
    servers = "\n".join(
        [f"    server bot{n} {a} check inter 1s fall 2 rise 1" for n, a in enumerate(addresses)]
        + [f"    server bot{n}-alive {a} backup" for n, a in enumerate(addresses)]
    )
    return f"""global
    maxconn 4096
defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    retries 3
    option redispatch
frontend webhooks
    bind 127.0.0.1:{port}
    default_backend bots
backend bots
    balance roundrobin
    option httpchk GET /readyz
    option allbackups
{servers}
"""


@dataclass
class Replica:
    number: int
    replica_id: str
    bot: BotProcess

    @property
    def pid(self) -> int | None:
        process = self.bot.process
        return process.pid if process is not None and process.returncode is None else None


def socket_peers() -> tuple[dict[str, str], dict[str, int]]:
    """From `ss`: each local socket's peer, and the process owning each local socket (unix
    sockets by inode, TCP by address:port)."""
    ss = shutil.which("ss")
    if ss is None:
        return {}, {}
    output = subprocess.run(  # noqa: S603 - a fixed command, no input
        [ss, "-xtpn"], capture_output=True, text=True, check=False, timeout=10
    ).stdout
    peer_of: dict[str, str] = {}
    owner_of: dict[str, int] = {}
    for line in output.splitlines():
        tokens = line.split()
        if len(tokens) < 7:
            continue
        if tokens[0].startswith("u_") and len(tokens) >= 8:
            local, peer = tokens[5], tokens[7]
        elif tokens[0] == "tcp":
            local, peer = tokens[4], tokens[5]
        else:
            continue
        peer_of[local] = peer
        found = re.search(r"pid=(\d+)", line)
        if found:
            owner_of[local] = int(found.group(1))
    return peer_of, owner_of


def client_pid_of_backend(backend_pid: int) -> int | None:
    """The process at the other end of a PostgreSQL backend's client connection."""
    peer_of, owner_of = socket_peers()
    for local, pid in owner_of.items():
        if pid == backend_pid and local in peer_of:
            client = owner_of.get(peer_of[local])
            if client is not None and client != backend_pid:
                return client
    return None


async def lease_holder(database_url: str, fleet: Sequence[Replica]) -> tuple[int, Replica] | None:
    """The PostgreSQL backend holding the `LEASE` advisory lock and the replica it serves:
    pg_locks names the backend, `ss` the process at the other end of its connection, else
    the lease heartbeat in `bot_state` names the replica (its id or host:pid)."""
    import asyncpg

    connection = await asyncpg.connect(database_url)
    try:
        backend = await connection.fetchval(
            "SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = $1 "
            "LIMIT 1",
            f"lease:{LEASE}",
        )
        heartbeat = None
        if backend is not None:
            heartbeat = await connection.fetchval(
                "SELECT value FROM bot_state WHERE key = $1", f"lease.{LEASE}"
            )
    except asyncpg.UndefinedTableError:
        return None
    finally:
        await connection.close()
    if backend is None:
        return None
    client = await asyncio.to_thread(client_pid_of_backend, int(backend))
    for replica in fleet:
        if client is not None and replica.pid == client:
            return int(backend), replica
    if heartbeat:
        holder = str(heartbeat).split()[0]
        for replica in fleet:
            if holder == replica.replica_id or (
                replica.pid is not None and holder.endswith(f":{replica.pid}")
            ):
                return int(backend), replica
    return None


@dataclass
class CheckGap:
    """The longest time one identity went without a subscription check, and what that
    identity sent meanwhile (by rate-limit group: a check waits its turn in the Light
    group's pacing, shared with RingSense reads and chat-post reads)."""

    seconds: float
    starts_s: float
    """When it began, in seconds after the calls began streaming."""
    sent: Counter[str]

    def __str__(self) -> str:
        groups = ", ".join(f"{group} {count}" for group, count in sorted(self.sent.items()))
        return (
            f"{self.seconds:.1f} s from {self.starts_s:.0f} s on "
            f"(meanwhile it sent {groups or 'nothing'})"
        )


def subscription_check_gaps(
    requests: Sequence[Mapping[str, Any]], begun: float, ended: float
) -> dict[str, CheckGap]:
    """Per identity (token owner), the longest time between `begun` and `ended` (monotonic,
    the sandbox's request-log clock) without a `GET /restapi/v1.0/subscription` answered
    200: the subscription upkeep's check."""
    moments: dict[str, list[float]] = {}
    for request in requests:
        if (
            request.get("method") == "GET"
            and request.get("path") == SUBSCRIPTION_LIST_PATH
            and request.get("status") == 200
        ):
            owner = str(request.get("tokenOwner"))
            moments.setdefault(owner, []).append(float(request["arrivedMonotonic"]))
    gaps: dict[str, CheckGap] = {}
    for owner, times in moments.items():
        inside = sorted(t for t in times if begun <= t <= ended)
        points = [begun, *inside, ended]
        start, end = max(itertools.pairwise(points), key=lambda pair: pair[1] - pair[0])
        sent = Counter(
            str(r.get("group"))
            for r in requests
            if str(r.get("tokenOwner")) == owner and start < float(r["arrivedMonotonic"]) < end
        )
        gaps[owner] = CheckGap(end - start, start - begun, sent)
    return gaps


async def run_replicas(
    *,
    database_url: str | None,
    replicas: int,
    calls: int,
    kills: int,
    holder_kills: int,
    seed: int,
    workdir: Path,
    stream_seconds: float,
    settle_timeout_s: float,
    owners_count: int = 9,
    long_share: float = 1 / 3,
    proxy_kind: str = "python",
    intake_runs: int = 0,
    intake_seconds: float = 5.0,
    intake_connections: int = 32,
    mishaps: Sequence[str] = ("delete", "expire", "blacklist"),
    rate_window_s: float = RATE_WINDOW_S,
    verbose: bool = True,
) -> ReplicasResult:
    """The whole run; `database_url` None: SQLite in `workdir` (one replica only).
    `rate_window_s` scales the platform's rate-limit clock (bench/chaos.py's
    `platform_limits`)."""
    if database_url is None and replicas != 1:
        raise ValueError("several replicas need PostgreSQL: SQLite is one process's database")
    if database_url is None and holder_kills:
        raise ValueError("the lease holder is a PostgreSQL notion: no --holder-kills on SQLite")
    rng = random.Random(seed)
    started = time.monotonic()

    def say(text: str) -> None:
        if verbose:
            print(f"[{time.monotonic() - started:6.0f}s] {text}", flush=True)

    sandbox = SandboxProcess(workdir / "sandbox.log")
    await sandbox.start()
    session = aiohttp.ClientSession()
    control = Control(session, sandbox.url)
    proxy = Proxy(proxy_kind, free_port(), workdir)
    config = workdir / "bot.config.yaml"
    config.write_text(
        (ROOT / "bot.config.yaml")
        .read_text()
        .replace(
            "subscription_check_interval_s: 3600",
            f"subscription_check_interval_s: {SUBSCRIPTION_CHECK_S}",
        )
    )
    database = database_url or str(workdir / "bot.sqlite3")
    shared_env = {
        **os.environ,
        "RC_SERVER_URL": sandbox.url,
        "RC_CLIENT_ID": defaults.CLIENT_ID,
        "RC_CLIENT_SECRET": defaults.CLIENT_SECRET,
        "RC_JWT": defaults.SERVICE_USER_JWT,
        "RC_BOT_TOKEN": defaults.BOT_TOKEN,
        "RC_VERIFICATION_TOKEN": secrets.token_urlsafe(16),
        "RC_SHARED_SECRET": defaults.SHARED_SECRET,
        # One key for every replica and restart: the stored tokens stay readable by all.
        "BOT_SECRET_KEY": generate_key(),
        "BOT_PUBLIC_URL": proxy.url,  # RingCentral knows one address: the proxy's
        "BOT_HOST": "127.0.0.1",
        "BOT_DATABASE": database,
        "PYTHONPATH": str(ROOT),
    }
    fleet: list[Replica] = []
    for number in range(1, replicas + 1):
        replica_id = f"bench-replica-{number}"
        env = {**shared_env, "BOT_PORT": str(free_port()), "BOT_REPLICA_ID": replica_id}
        bot = BotProcess(env, config, workdir / f"bot{number}.log")
        fleet.append(Replica(number, replica_id, bot))
    result = ReplicasResult(
        calls=calls,
        kills=0,
        expected=0,
        delivered=0,
        replicas=replicas,
        database="PostgreSQL" if database_url else "SQLite",
        proxy="HAProxy" if proxy_kind == "haproxy" else "bench/proxy.py",
        rate_window_s=rate_window_s,
    )
    try:
        faults = await control("GET", "/faults")
        assert faults["enforceRateLimits"] is True, "the platform's limits must be on"
        await faults_off(control, rate_window_s)  # the limits at the run's scale
        await proxy.start([r.bot.url for r in fleet])
        # The first replica migrates and subscribes; the others join it.
        await fleet[0].bot.start(session)
        await asyncio.gather(*(r.bot.start(session) for r in fleet[1:]))
        say(f"sandbox {sandbox.url}, proxy {proxy.url}, {replicas} replica(s) ready")
        bot_id = str((await control("GET", "/bots"))[0]["extensionId"])
        owners = await _people(control, bot_id, owners_count, rng)
        await _wait_for_setup(control, bot_id, owners)
        say(f"{len(owners)} owners opted in, {sum(1 for o in owners if o.channel)} with a team")

        await control("POST", "/faults", chaos_faults(seed))
        expected: dict[str, set[str]] = {}
        begun = time.monotonic()
        await asyncio.gather(
            _stream_calls(
                control, owners, calls, stream_seconds, rng, expected, result, long_share
            ),
            _kill_replicas(
                control,
                session,
                fleet,
                database_url,
                kills,
                holder_kills,
                stream_seconds,
                rng,
                result,
                say,
                list(mishaps),
            ),
        )
        say(f"streamed {calls} calls; {result.kills} kills; faults off, limits stay on")
        await faults_off(control, rate_window_s)
        for replica in fleet:
            if replica.pid is None:
                await replica.bot.start(session)
        requests = await settle_and_judge(
            control, owners, expected, result, settle_timeout_s, say, workdir
        )
        result.check_gaps = subscription_check_gaps(requests, begun, time.monotonic())
        result.seconds = time.monotonic() - started
        if intake_runs:
            await _measure_intake(
                control,
                session,
                fleet,
                owners,
                proxy_kind,
                workdir,
                database,
                shared_env["RC_VERIFICATION_TOKEN"],
                result,
                intake_runs,
                intake_seconds,
                intake_connections,
                say,
            )
        return result
    finally:
        result.exits_at_start = sum(r.bot.exits_at_start for r in fleet)
        await asyncio.gather(*(r.bot.stop() for r in fleet))
        await proxy.stop()
        await session.close()
        await sandbox.stop()


async def _kill_replicas(
    control: Control,
    session: aiohttp.ClientSession,
    fleet: list[Replica],
    database_url: str | None,
    kills: int,
    holder_kills: int,
    stream_seconds: float,
    rng: random.Random,
    result: ReplicasResult,
    say: Any,
    mishaps: list[str],
) -> None:
    """SIGKILL a random replica `kills` times and the lease holder `holder_kills` times, in
    a random order at random moments over the stream, each with a storm or a subscription
    mishap beside it (bench/chaos.py's `make_trouble`), and restart the killed one."""
    plan = ["random"] * kills + ["holder"] * holder_kills
    rng.shuffle(plan)
    moments = sorted(rng.uniform(0.1 * stream_seconds, stream_seconds) for _ in plan)
    begun = time.monotonic()
    for index, (moment, what) in enumerate(zip(moments, plan, strict=True)):
        await asyncio.sleep(max(0.0, begun + moment - time.monotonic()))
        await make_trouble(control, index, mishaps, result, say)
        backend: int | None = None
        if what == "holder":
            assert database_url is not None
            found = await _wait_for_holder(database_url, fleet, None)
            if found is None:
                result.holder_not_found += 1
                say("no replica holds the lease: holder kill skipped")
                continue
            backend, victim = found
        else:
            victim = rng.choice(fleet)
        if victim.pid is None:
            await victim.bot.start(session)
        victim.bot.kill()
        killed_at = time.monotonic()
        result.kill_times.append(killed_at)
        await victim.bot.wait_dead()
        result.kills += 1
        if backend is not None:
            result.holder_kills += 1
            say(f"SIGKILL {result.kills}: replica {victim.number}, the lease holder")
            others = [r for r in fleet if r is not victim]
            taken = await _wait_for_holder(database_url or "", others, backend)
            if taken is None:
                say(f"nobody took the lease over within {HOLDER_WAIT_S:.0f} s")
            else:
                result.takeover_s.append(time.monotonic() - killed_at)
                say(
                    f"replica {taken[1].number} took the lease over "
                    f"{result.takeover_s[-1]:.1f} s after"
                )
        else:
            say(f"SIGKILL {result.kills}: replica {victim.number}")
        await asyncio.sleep(rng.uniform(0.0, KILL_MARGIN_S))
        await victim.bot.start(session)
    for mishap in mishaps:  # a short run has fewer kills than mishaps
        subscription = await _ringsense_subscription(control)
        if subscription is not None:
            await control("POST", f"/subscriptions/{subscription}/mishap", {"mishap": mishap})
            result.mishaps.append(mishap)
            say(f"RingSense subscription: {mishap}")
            await asyncio.sleep(SUBSCRIPTION_CHECK_S + 2)


async def _wait_for_holder(
    database_url: str, fleet: Sequence[Replica], not_backend: int | None
) -> tuple[int, Replica] | None:
    """The lease holder among `fleet` (on another backend than `not_backend`), asked every
    0.1 s for up to HOLDER_WAIT_S."""
    deadline = time.monotonic() + HOLDER_WAIT_S
    while time.monotonic() < deadline:
        found = await lease_holder(database_url, fleet)
        if found is not None and found[0] != not_backend:
            return found
        await asyncio.sleep(0.1)
    return None


async def _measure_intake(
    control: Control,
    session: aiohttp.ClientSession,
    fleet: list[Replica],
    owners: Sequence[Owner],
    proxy_kind: str,
    workdir: Path,
    database: str,
    token: str,
    result: ReplicasResult,
    runs: int,
    seconds: float,
    connections: int,
    say: Any,
) -> None:
    """Webhooks/s accepted through a proxy over the first replica only, then over all of
    them (alternating, `runs` times each), with `wrk` sending the notification the sandbox
    really delivered for one call, a fresh uuid each time (bench/webhook_intake.py's load)."""
    from bench.webhook_intake import _wrk

    if shutil.which("wrk") is None:
        say("wrk is not installed (Debian: apt-get install wrk): intake not measured")
        return
    answer = await control(
        "POST", "/calls", {"ownerExtensionId": owners[0].extension_id, "durationSec": 60}
    )
    delivered = [n for n in answer["notifications"] if n["ok"]]
    if not delivered:
        say(f"the sandbox delivered no notification: intake not measured ({answer})")
        return
    payload = delivered[0]["payload"]
    load = argparse.Namespace(connections=connections, seconds=seconds)
    counts = sorted({1, len(fleet)})
    for run in range(1, runs + 1):
        for count in counts:
            # Every run starts with idle workers, as in bench/webhook_intake.py: the
            # previous run's notifications (all about one call) are dropped unworked.
            await clear_pending_inbox(database)
            proxy = Proxy(proxy_kind, free_port(), workdir)
            await proxy.start([r.bot.url for r in fleet[:count]])
            try:
                await asyncio.sleep(2.0 if proxy_kind == "haproxy" else 0.2)  # health checks
                figures = await _wrk(f"{proxy.url}{WEBHOOK_PATH}", payload, token, load)
            finally:
                await proxy.stop()
            result.intake.setdefault(count, []).append(figures["rate"])
            say(
                f"intake run {run}, {count} replica(s): {figures['rate']:,.0f}/s, "
                f"{figures['failed']:.0f} refused/failed"
            )
            await asyncio.sleep(3)  # let the workers catch up before the next run


async def clear_pending_inbox(database: str) -> None:
    """Drop the inbox rows not worked yet (PostgreSQL URL or SQLite file)."""
    if database.startswith(("postgresql://", "postgres://")):
        import asyncpg

        connection = await asyncpg.connect(database)
        try:
            await connection.execute("DELETE FROM inbox WHERE status = 'pending'")
        finally:
            await connection.close()
        return

    def clear() -> None:
        db = sqlite3.connect(database)
        try:
            db.execute("DELETE FROM inbox WHERE status = 'pending'")
            db.commit()
        finally:
            db.close()

    await asyncio.to_thread(clear)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--kills", type=int, default=6, help="random replicas SIGKILLed")
    parser.add_argument("--holder-kills", type=int, default=2, help="lease holders SIGKILLed")
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument("--stream-seconds", type=float, default=None)
    parser.add_argument("--settle-timeout", type=float, default=1800)
    parser.add_argument("--owners", type=int, default=9)
    parser.add_argument("--long-share", type=float, default=1 / 3)
    parser.add_argument("--proxy", choices=["python", "haproxy"], default="python")
    parser.add_argument("--intake-runs", type=int, default=3)
    parser.add_argument("--intake-seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--rate-window",
        type=float,
        default=RATE_WINDOW_S,
        help="rate-limit windows and penalty in seconds (the platform's counts); 60 is real",
    )
    args = parser.parse_args()
    if args.database == "sqlite":
        args.holder_kills = 0
    stream_seconds = args.stream_seconds or max(20.0, args.calls * 0.6)
    workdir = Path(tempfile.mkdtemp(prefix="ringsense-replicas-"))
    print(f"logs: {workdir}", flush=True)
    result = asyncio.run(_main(args, workdir, stream_seconds))
    print()
    print("\n".join(result.lines()))
    for label, items in (
        ("lost", result.lost),
        ("duplicated", result.duplicated),
        ("misdirected", result.misdirected),
    ):
        for key, chat in items[:20]:
            print(f"  {label}: {key} ({result.durations.get(key, 0)} s) in chat {chat}")
    for offence in result.inside_penalty[:30]:
        print(f"  inside a penalty: {offence}")
    if any((result.lost, result.duplicated, result.misdirected, result.inside_penalty)) or (
        result.longest_check_gap_s() >= 60
    ):
        print(f"target missed; logs (and the sandbox's request log) kept in {workdir}")
        raise SystemExit(1)
    shutil.rmtree(workdir, ignore_errors=True)


async def _main(args: argparse.Namespace, workdir: Path, stream_seconds: float) -> ReplicasResult:
    options: dict[str, Any] = {
        "replicas": args.replicas,
        "calls": args.calls,
        "kills": args.kills,
        "holder_kills": args.holder_kills,
        "seed": args.seed,
        "workdir": workdir,
        "stream_seconds": stream_seconds,
        "settle_timeout_s": args.settle_timeout,
        "owners_count": args.owners,
        "long_share": args.long_share,
        "proxy_kind": args.proxy,
        "intake_runs": args.intake_runs,
        "intake_seconds": args.intake_seconds,
        "intake_connections": args.connections,
        "rate_window_s": args.rate_window,
    }
    if args.database == "sqlite":
        return await run_replicas(database_url=None, **options)
    from tests.postgres import fresh_database, postgres_server

    with postgres_server() as server_url:
        async with fresh_database(server_url) as database_url:
            print(f"PostgreSQL: {database_url}", flush=True)
            return await run_replicas(database_url=database_url, **options)


if __name__ == "__main__":
    main()
