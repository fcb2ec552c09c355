"""Exactly once, proven from outside: `python -m sandbox` and `python -m bot run` as separate
processes, the platform's rate limits at their real numbers, and everything going wrong.

    python bench/chaos.py                      # 300 calls, 7 SIGKILLs (takes 15-25 min)
    python bench/chaos.py --calls 20 --kills 2 # a short run

What goes wrong while the calls stream in: 5xx and connection resets on the bot's posts and
card calls and on RingSense reads, 429 storms on card creation, every notification sent
twice and reordered, the RingSense subscription deleted, expired and blacklisted behind the
bot's back, and the bot SIGKILLed at random moments (and restarted). A third of the calls
last longer than 10 minutes; about a third have an external participant; a third of the
owners also have their digests posted to a team, where external calls must not appear.

It prints, per (call, destination): expected, lost, duplicated, misdirected (a card where it
should not be), and the requests the bot sent inside a 429 penalty, read from the
sandbox's request log. The target is 0, 0, 0, 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import secrets
import shutil
import signal
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

from bot.crypto import generate_key  # noqa: E402
from bot.runner import free_port  # noqa: E402
from sandbox import defaults  # noqa: E402

STORM_RETRY_AFTER_S = 5
"""The `Retry-After` of the injected 429 storms."""
RATE_LIMIT_PENALTY_S = 60
"""The platform's penalty after a real rate-limit 429 (API-FACTS G)."""
RATE_WINDOW_S = 60.0
"""The platform's rate-limit window (API-FACTS G); a short run may scale it down."""
RATE_GROUPS = ("Light", "Medium", "Heavy", "Auth")
LONG_CALL_S = 600
SUBSCRIPTION_CHECK_S = 15
"""The bot's periodic subscription check, shortened so mishaps are noticed within the run."""
KILL_MARGIN_S = 2.0
RESTARTED_NOTE = " (by a process started after the 429)"
IN_FLIGHT_NOTE = " (arrived within 50 ms: in flight before the 429 was answered)"
IN_FLIGHT_S = 0.05
QUIET_GIVE_UP_S = 240.0
"""Stop waiting when no digest has arrived for this long (four 60 s penalties)."""


@dataclass
class ChaosResult:
    calls: int
    kills: int
    expected: int
    delivered: int
    lost: list[tuple[str, str]] = field(default_factory=list)
    duplicated: list[tuple[str, str]] = field(default_factory=list)
    misdirected: list[tuple[str, str]] = field(default_factory=list)
    inside_penalty: list[str] = field(default_factory=list)

    def inside_penalty_by_the_same_process(self) -> list[str]:
        """Requests inside a penalty that the process which got the 429 sent after it knew
        of it: not those of a process started after it (it cannot know unless the penalty
        is stored) and not those already in flight when the 429 was answered."""
        return [o for o in self.inside_penalty if not o.endswith((RESTARTED_NOTE, IN_FLIGHT_NOTE))]

    mishaps: list[str] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)
    """429 answers the bot got, by cause: `rateLimit` (the platform's limits) or `storm`."""
    seconds: float = 0.0
    long_calls: int = 0
    external_calls: int = 0
    durations: dict[str, int] = field(default_factory=dict)
    rate_window_s: float = RATE_WINDOW_S
    """The sandbox's rate-limit windows and penalty (the platform's counts either way)."""
    exits_at_start: int = 0
    """Times the bot exited by itself while starting (and was started again)."""
    kill_times: list[float] = field(default_factory=list)
    """time.monotonic() of each SIGKILL (the same clock as the sandbox's request log)."""

    def lost_long_calls(self) -> int:
        """Lost digests of calls longer than 10 minutes (what a catch-up by start time misses)."""
        return sum(1 for key, _ in self.lost if self.durations.get(key, 0) > LONG_CALL_S)

    def lines(self) -> list[str]:
        return [
            f"calls streamed        {self.calls} ({self.long_calls} longer than 10 min, "
            f"{self.external_calls} with external participants)",
            f"bot SIGKILLs          {self.kills} (and {self.exits_at_start} exits while "
            "starting, restarted)",
            f"subscription mishaps  {', '.join(self.mishaps) or 'none'}",
            f"rate limits           the platform's counts per {self.rate_window_s:g} s window, "
            f"{self.rate_window_s:g} s penalty",
            f"expected digests      {self.expected}  (call, destination)",
            f"delivered             {self.delivered}",
            f"lost                  {len(self.lost)} ({self.lost_long_calls()} of calls "
            "longer than 10 min)",
            f"duplicated            {len(self.duplicated)}",
            f"misdirected           {len(self.misdirected)}",
            f"sent inside a 429 penalty {len(self.inside_penalty)} (by the process that "
            f"knew of it: {len(self.inside_penalty_by_the_same_process())})",
            f"429 answers           {sum(self.refused.values())} (rate limit "
            f"{self.refused['rateLimit']}, injected storm {self.refused['storm']})",
            f"wall time             {self.seconds:.0f} s",
        ]


class SandboxProcess:
    """`python -m sandbox` on a free port, its URL read from what it prints."""

    def __init__(self, log_path: Path) -> None:
        self._log_path = log_path
        self.process: asyncio.subprocess.Process | None = None
        self.url = ""

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "sandbox",
            "--port",
            str(free_port()),
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=asyncio.subprocess.PIPE,
            stderr=self._log_path.open("ab"),
        )
        assert self.process.stdout is not None
        while not self.url:
            line = await asyncio.wait_for(self.process.stdout.readline(), 30)
            if not line:
                raise RuntimeError(f"the sandbox did not start; see {self._log_path}")
            found = re.match(rb"sandbox: (http://\S+)", line)
            if found:
                self.url = found.group(1).decode()
        asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        while await self.process.stdout.readline():
            pass

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            await self.process.wait()


class BotProcess:
    """`python -m bot run`; `kill()` is SIGKILL: no cleanup, no drain."""

    def __init__(self, env: dict[str, str], config: Path, log_path: Path) -> None:
        self._env = env
        self._config = config
        self._log_path = log_path
        self.process: asyncio.subprocess.Process | None = None
        self.url = f"http://127.0.0.1:{env['BOT_PORT']}"
        self.exits_at_start = 0

    async def start(self, session: aiohttp.ClientSession) -> None:
        """Start it and wait until it is ready; restart it when it exits while starting, as
        a supervisor would (counted in `exits_at_start`, a figure of its own)."""
        for attempt in range(1, 13):
            if await self._start_once(session):
                return
            self.exits_at_start += 1
            await asyncio.sleep(min(30.0, 2.0 * attempt))
        raise RuntimeError(f"the bot kept exiting at start; see {self._log_path}")

    async def _start_once(self, session: aiohttp.ClientSession) -> bool:
        log = self._log_path.open("ab")
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            "--config",
            str(self._config),
            "--log-level",
            "INFO",
            cwd=ROOT,
            env=self._env,
            stdout=log,
            stderr=log,
        )
        log.close()
        deadline = time.monotonic() + 120
        while not await self._ready(session):
            if self.process.returncode is not None:
                return False
            if time.monotonic() > deadline:
                raise RuntimeError(f"the bot did not get ready; see {self._log_path}")
            await asyncio.sleep(0.2)
        return True

    async def _ready(self, session: aiohttp.ClientSession) -> bool:
        """Ready: `/readyz` answers 200, or (before it existed) `/healthz` shows every
        subscription healthy."""
        timeout = aiohttp.ClientTimeout(total=2)
        try:
            async with session.get(f"{self.url}/readyz", timeout=timeout) as response:
                if response.status == 200:
                    return True
                if response.status != 404:
                    return False
            async with session.get(f"{self.url}/healthz", timeout=timeout) as response:
                if response.status != 200:
                    return False
                health = await response.json()
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return False
        subscriptions = health.get("subscriptions") or {}
        return bool(subscriptions) and all(s.get("healthy") for s in subscriptions.values())

    def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()

    async def wait_dead(self) -> None:
        if self.process is not None:
            await self.process.wait()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


class Control:
    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self._session = session
        self._url = url

    async def __call__(self, method: str, path: str, payload: Any = None) -> Any:
        async with self._session.request(
            method, f"{self._url}/_sandbox{path}", json=payload
        ) as response:
            body = await response.json(content_type=None)
            if response.status >= 400:
                raise RuntimeError(f"{method} {path}: {response.status} {body}")
            return body

    async def records(self, path: str) -> list[Mapping[str, Any]]:
        body = await self("GET", path)
        return list(body["records"] if isinstance(body, Mapping) else body)


@dataclass
class Owner:
    extension_id: str
    colleague: str
    dm: str
    channel: str | None = None


def call_key_of(card: Mapping[str, Any]) -> str | None:
    """The call a digest card is about (its buttons carry the call key)."""
    text = json.dumps(card)
    found = re.search(r'"callKey":\s*"([^"]+)"', text)
    return found.group(1) if found else None


def requests_inside_penalty(
    requests: list[Mapping[str, Any]], kill_times: Sequence[float] = ()
) -> list[str]:
    """Requests that arrived while the sender was still inside a 429 penalty it had been
    told about: after a 429 in a group, nothing in that group (from that token, or on the
    same team-messaging paths when the 429 was injected before the token was read) until
    the 429's `Retry-After` (as the sandbox logged it) has passed."""
    penalties: list[tuple[float, float, str | None, str | None, str]] = []
    offending: list[str] = []
    for request in requests:
        arrived = float(request["arrivedMonotonic"])
        group = request.get("group")
        owner = request.get("tokenOwner")
        family = _path_family(str(request["path"]))
        for started, until, penalty_group, penalty_owner, penalty_family in penalties:
            if not (started < arrived < until - 0.05) or group != penalty_group:
                continue
            same_sender = (
                penalty_owner == owner
                if penalty_owner is not None and owner is not None
                else penalty_family == family
            )
            if same_sender:
                restarted = any(started < kill < arrived for kill in kill_times)
                note = RESTARTED_NOTE if restarted else ""
                if not note and arrived - started < IN_FLIGHT_S:
                    note = IN_FLIGHT_NOTE
                offending.append(
                    f"{request['method']} {request['path']} ({group}, {owner}) "
                    f"{arrived - started:.3f} s after a 429, answered {request.get('status')}"
                    + note
                )
                break
        if request.get("status") == 429:
            told = request.get("retryAfter")  # what the answer said; older logs lack it
            wait = (
                float(told)
                if told is not None
                else STORM_RETRY_AFTER_S
                if request.get("fault") == "storm"
                else RATE_LIMIT_PENALTY_S
            )
            penalties.append((arrived, arrived + wait, group, owner, family))
    return offending


def _path_family(path: str) -> str:
    """`/team-messaging/...` is only ever the bot's; the rest only the service user's. An
    injected 429 comes before the token is read, so this tells whose it was."""
    return "bot" if path.startswith(("/team-messaging/", "/restapi/v1.0/glip/")) else "service"


def platform_limits(window_s: float) -> dict[str, Any]:
    """The sandbox's limits: the platform's count per group, every window and the penalty
    `window_s` long. Below 60 s (a short run) the whole clock of rate limiting is scaled
    down alike, as bench/delivery_under_limit.py does: the bot learns the window from
    `X-Rate-Limit-Window` and the penalty from `Retry-After`, so it meets the same counts
    and the same penalties, only sooner."""
    return {
        "limits": {
            group: {"windowSeconds": window_s, "penaltySeconds": window_s} for group in RATE_GROUPS
        }
    }


async def faults_off(control: Control, rate_window_s: float) -> None:
    """Injected faults off; the rate limits stay on, at the run's scale."""
    await control("DELETE", "/faults")
    if rate_window_s != RATE_WINDOW_S:
        await control("POST", "/faults", platform_limits(rate_window_s))


def chaos_faults(seed: int) -> dict[str, Any]:
    """The sandbox faults on while calls stream: 5xx and connection resets on the bot's
    posts and card calls and on RingSense reads, every notification sent twice, reordered."""
    return {
        "seed": seed,
        "errorRate": 0.05,
        "errorStatus": 503,
        "resetRate": 0.03,
        "paths": ["^/team-messaging/", "^/ai/ringsense/"],
        "duplicateNotifications": 1,
        "reorderNotifications": True,
    }


async def run_chaos(
    *,
    calls: int,
    kills: int,
    seed: int,
    workdir: Path,
    stream_seconds: float,
    settle_timeout_s: float,
    owners_count: int = 9,
    long_share: float = 1 / 3,
    rate_window_s: float = RATE_WINDOW_S,
    subscription_check_s: int = SUBSCRIPTION_CHECK_S,
    verbose: bool = True,
) -> ChaosResult:
    """The whole run. `rate_window_s` scales the platform's rate-limit clock (see
    `platform_limits`); `subscription_check_s` is the bot's subscription check interval,
    how soon it notices a subscription mishap."""
    rng = random.Random(seed)
    started = time.monotonic()

    def say(text: str) -> None:
        if verbose:
            print(f"[{time.monotonic() - started:6.0f}s] {text}", flush=True)

    sandbox = SandboxProcess(workdir / "sandbox.log")
    await sandbox.start()
    session = aiohttp.ClientSession()
    control = Control(session, sandbox.url)
    port = free_port()
    config = workdir / "bot.config.yaml"
    config.write_text(
        (ROOT / "bot.config.yaml")
        .read_text()
        .replace(
            "subscription_check_interval_s: 3600",
            f"subscription_check_interval_s: {subscription_check_s}",
        )
    )
    env = {
        **os.environ,
        "RC_SERVER_URL": sandbox.url,
        "RC_CLIENT_ID": defaults.CLIENT_ID,
        "RC_CLIENT_SECRET": defaults.CLIENT_SECRET,
        "RC_JWT": defaults.SERVICE_USER_JWT,
        "RC_BOT_TOKEN": defaults.BOT_TOKEN,
        "RC_VERIFICATION_TOKEN": secrets.token_urlsafe(16),
        "RC_SHARED_SECRET": defaults.SHARED_SECRET,
        # One key for every restart of this database: the stored tokens stay readable.
        "BOT_SECRET_KEY": generate_key(),
        "BOT_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "BOT_PORT": str(port),
        "BOT_HOST": "127.0.0.1",
        "BOT_DATABASE": str(workdir / "bot.sqlite3"),
        "PYTHONPATH": str(ROOT),
    }
    bot = BotProcess(env, config, workdir / "bot.log")
    result = ChaosResult(calls=calls, kills=0, expected=0, delivered=0, rate_window_s=rate_window_s)
    try:
        faults = await control("GET", "/faults")
        assert faults["enforceRateLimits"] is True, "the platform's limits must be on"
        await faults_off(control, rate_window_s)  # the limits at the run's scale
        await bot.start(session)
        say(f"sandbox {sandbox.url}, bot {bot.url}")
        bot_id = str((await control("GET", "/bots"))[0]["extensionId"])
        owners = await _people(control, bot_id, owners_count, rng)
        await _wait_for_setup(control, bot_id, owners)
        say(f"{len(owners)} owners opted in, {sum(1 for o in owners if o.channel)} with a team")

        await control("POST", "/faults", chaos_faults(seed))
        expected: dict[str, set[str]] = {}
        stream = asyncio.create_task(
            _stream_calls(control, owners, calls, stream_seconds, rng, expected, result, long_share)
        )
        chaos = asyncio.create_task(
            _chaos(
                control, bot, session, kills, stream_seconds, rng, result, say, subscription_check_s
            )
        )
        await asyncio.gather(stream, chaos)
        say(f"streamed {calls} calls; {result.kills} kills; faults off, limits stay on")
        await faults_off(control, rate_window_s)
        await _bot_alive(bot, session)

        await settle_and_judge(control, owners, expected, result, settle_timeout_s, say, workdir)
        result.seconds = time.monotonic() - started
        return result
    finally:
        result.exits_at_start = bot.exits_at_start
        await bot.stop()
        await session.close()
        await sandbox.stop()


async def settle_and_judge(
    control: Control,
    owners: Sequence[Owner],
    expected: Mapping[str, set[str]],
    result: ChaosResult,
    settle_timeout_s: float,
    say: Any,
    workdir: Path,
) -> list[Mapping[str, Any]]:
    """Wait until every expected digest arrived (or nothing arrived for a long while), then
    judge from outside: per (call, chat) lost, duplicated and misdirected cards, and the
    requests sent inside a 429 penalty, read from the sandbox's request log (kept in
    `workdir/requests.json`, and returned)."""
    chats = {o.dm for o in owners} | {o.channel for o in owners if o.channel}
    want = {(key, chat) for key, destinations in expected.items() for chat in destinations}
    result.expected = len(want)
    deadline = time.monotonic() + settle_timeout_s
    seen: Counter[tuple[str, str]] = Counter()
    last_count, quiet_since = -1, time.monotonic()
    while True:
        seen = await _delivered(control, chats)
        got = len(want & set(seen))
        if got != last_count:
            say(f"{got} of {len(want)} digests delivered")
            last_count, quiet_since = got, time.monotonic()
        if got >= len(want) or time.monotonic() > deadline:
            break
        if time.monotonic() - quiet_since > min(QUIET_GIVE_UP_S, settle_timeout_s):
            break
        await asyncio.sleep(1)
    await asyncio.sleep(5)  # anything late (a duplicate) shows up now
    seen = await _delivered(control, chats)
    result.delivered = len(want & set(seen))
    result.lost = sorted(want - set(seen))
    result.duplicated = sorted(k for k, n in seen.items() if n > 1 and k in want)
    result.misdirected = sorted(k for k in seen if k not in want)
    requests = await control.records("/requests")
    (workdir / "requests.json").write_text(json.dumps(requests))
    result.inside_penalty = requests_inside_penalty(requests, result.kill_times)
    result.refused = Counter(str(r.get("fault")) for r in requests if r.get("status") == 429)
    return requests


async def _people(control: Control, bot_id: str, count: int, rng: random.Random) -> list[Owner]:
    owners: list[Owner] = []
    for n in range(count):
        person = str((await control("POST", "/users", {"name": f"Owner {n}"}))["extensionId"])
        colleague = str(
            (await control("POST", "/users", {"name": f"Colleague {n}"}))["extensionId"]
        )
        dm = str(
            (await control("POST", "/chats", {"type": "Direct", "members": [person, bot_id]}))["id"]
        )
        owner = Owner(person, colleague, dm)
        await control("POST", "/posts", {"chatId": dm, "creatorId": person, "text": "optin"})
        if n % 3 == 0:
            team = await control(
                "POST",
                "/chats",
                {"type": "Team", "members": [person, colleague, bot_id], "name": f"Team {n}"},
            )
            owner.channel = str(team["id"])
            await control(
                "POST",
                "/posts",
                {
                    "chatId": owner.channel,
                    "creatorId": person,
                    "text": f"![:Person]({bot_id}) channel add",
                },
            )
        owners.append(owner)
        await asyncio.sleep(rng.uniform(0.05, 0.2))
    return owners


async def _wait_for_setup(control: Control, bot_id: str, owners: list[Owner]) -> None:
    """Every owner has the answer to `optin` (and to `channel add`) before calls start."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        answered = 0
        for owner in owners:
            chats = [owner.dm] + ([owner.channel] if owner.channel else [])
            ok = True
            for chat in chats:
                posts = await control.records(f"/chats/{chat}/posts")
                if not any(str(p.get("creatorId")) == bot_id and p.get("text") for p in posts):
                    ok = False
            answered += ok
        if answered == len(owners):
            return
        await asyncio.sleep(1)
    raise RuntimeError("the bot did not answer every optin / channel add in time")


async def _stream_calls(
    control: Control,
    owners: list[Owner],
    calls: int,
    stream_seconds: float,
    rng: random.Random,
    expected: dict[str, set[str]],
    result: ChaosResult,
    long_share: float,
) -> None:
    for _ in range(calls):
        owner = rng.choice(owners)
        long_call = rng.random() < long_share
        external = rng.random() < 0.33
        duration = rng.randint(LONG_CALL_S + 30, 3 * 3600) if long_call else rng.randint(30, 300)
        participants: list[Any] = [owner.colleague]
        if external:
            participants.append({"name": "Jordan Lee", "phoneNumber": "+14155550123"})
        call = await _retrying(
            control,
            "POST",
            "/calls",
            {
                "ownerExtensionId": owner.extension_id,
                "participants": participants,
                "durationSec": duration,
                "direction": rng.choice(["Inbound", "Outbound"]),
            },
        )
        key = f"pbx:{call['sourceRecordId']}"
        destinations = {owner.dm}
        if owner.channel and not external:
            destinations.add(owner.channel)
        expected[key] = destinations
        result.durations[key] = duration
        result.long_calls += long_call
        result.external_calls += external
        await asyncio.sleep(rng.uniform(0, 2 * stream_seconds / max(1, calls)))


async def _retrying(control: Control, method: str, path: str, payload: Any) -> Any:
    for attempt in range(5):
        try:
            return await control(method, path, payload)
        except (aiohttp.ClientError, RuntimeError):
            if attempt == 4:
                raise
            await asyncio.sleep(0.5)
    return None


async def _chaos(
    control: Control,
    bot: BotProcess,
    session: aiohttp.ClientSession,
    kills: int,
    stream_seconds: float,
    rng: random.Random,
    result: ChaosResult,
    say: Any,
    subscription_check_s: int = SUBSCRIPTION_CHECK_S,
) -> None:
    """Kills at random moments over the stream, with storms and subscription mishaps
    between them."""
    moments = sorted(rng.uniform(0, stream_seconds) for _ in range(kills))
    mishaps = ["delete", "expire", "blacklist"]
    begun = time.monotonic()
    for index, moment in enumerate(moments):
        await asyncio.sleep(max(0.0, begun + moment - time.monotonic()))
        await make_trouble(control, index, mishaps, result, say)
        bot.kill()
        result.kill_times.append(time.monotonic())
        await bot.wait_dead()
        result.kills += 1
        say(f"SIGKILL {result.kills}")
        await asyncio.sleep(rng.uniform(0.0, KILL_MARGIN_S))
        await bot.start(session)
    for mishap in mishaps:  # a short run has fewer kills than mishaps
        subscription = await _ringsense_subscription(control)
        if subscription is not None:
            await control("POST", f"/subscriptions/{subscription}/mishap", {"mishap": mishap})
            result.mishaps.append(mishap)
            say(f"RingSense subscription: {mishap}")
            await asyncio.sleep(subscription_check_s + 2)  # noticed and mended before the next


async def make_trouble(
    control: Control, index: int, mishaps: list[str], result: ChaosResult, say: Any
) -> None:
    """What goes wrong beside the `index`th kill: a 429 storm on card creation (even
    kills), else the next RingSense subscription mishap of `mishaps` (taken from it)."""
    if index % 2 == 0:
        await control(
            "POST",
            "/faults",
            {
                "storm": {
                    "durationSeconds": 4,
                    "retryAfter": STORM_RETRY_AFTER_S,
                    "paths": ["/adaptive-cards"],
                }
            },
        )
        say("429 storm on card creation")
    if mishaps and index % 2 == 1:
        subscription = await _ringsense_subscription(control)
        if subscription is not None:  # none while the bot recreates it: the next time
            mishap = mishaps.pop(0)
            await control("POST", f"/subscriptions/{subscription}/mishap", {"mishap": mishap})
            result.mishaps.append(mishap)
            say(f"RingSense subscription: {mishap}")


async def _ringsense_subscription(control: Control) -> str | None:
    for subscription in await control.records("/subscriptions"):
        if subscription.get("status") != "Active":
            continue
        if any("/ai/ringsense/" in f for f in subscription.get("eventFilters", [])):
            return str(subscription["id"])
    return None


async def _bot_alive(bot: BotProcess, session: aiohttp.ClientSession) -> None:
    if bot.process is None or bot.process.returncode is not None:
        await bot.start(session)


async def _delivered(control: Control, chats: set[str]) -> Counter[tuple[str, str]]:
    """Every digest card in the chats of interest, counted per (call, chat)."""
    seen: Counter[tuple[str, str]] = Counter()
    for chat in chats:
        for post in await control.records(f"/chats/{chat}/posts"):
            card = post.get("card")
            if post.get("type") != "Card" or not isinstance(card, Mapping):
                continue
            key = call_key_of(card)
            if key is not None and key.startswith("pbx:"):
                seen[(key, chat)] += 1
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--kills", type=int, default=7)
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument("--stream-seconds", type=float, default=None)
    parser.add_argument("--settle-timeout", type=float, default=1800)
    parser.add_argument("--owners", type=int, default=9)
    parser.add_argument("--long-share", type=float, default=1 / 3)
    parser.add_argument(
        "--rate-window",
        type=float,
        default=RATE_WINDOW_S,
        help="rate-limit windows and penalty in seconds (the platform's counts); 60 is real",
    )
    parser.add_argument("--subscription-check", type=int, default=SUBSCRIPTION_CHECK_S)
    args = parser.parse_args()
    stream_seconds = args.stream_seconds or max(20.0, args.calls * 0.6)
    workdir = tempfile.mkdtemp(prefix="ringsense-chaos-")
    print(f"logs: {workdir}", flush=True)
    result = asyncio.run(
        run_chaos(
            calls=args.calls,
            kills=args.kills,
            seed=args.seed,
            workdir=Path(workdir),
            stream_seconds=stream_seconds,
            settle_timeout_s=args.settle_timeout,
            owners_count=args.owners,
            long_share=args.long_share,
            rate_window_s=args.rate_window,
            subscription_check_s=args.subscription_check,
        )
    )
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
    if any((result.lost, result.duplicated, result.misdirected, result.inside_penalty)):
        print(f"logs kept in {workdir}")
        raise SystemExit(1)
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
