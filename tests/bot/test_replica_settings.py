"""The timings of several replicas are settings (issue 13): the claim lease of queued rows,
the queues' safety-net poll, the run-once jobs' heartbeat period and staleness limit.
Each is read from `replicas:` in bot.config.yaml or its environment variable, nonsense is
refused with a clear line (all problems at once, as for every setting), and a running bot
uses what it was given."""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
import pytest

from bot.app import SERVICES
from bot.config import ConfigError, ReplicasConfig, load_config
from bot.config_check import unknown_keys
from bot.jobs import AI_JOBS_LEASE, heartbeat_key, heartbeat_value
from bot.leases import PostgresLeases
from bot.runner import start_bot
from bot.store.interface import SharedQueue
from sandbox.runner import start_sandbox
from tests.bot.test_config import GOOD_ENV
from tests.bot.test_run_once_jobs import JOBS, LeasesWithout
from tests.conftest import PROJECT_ROOT
from tests.e2e import bot_config, eventually


def _write(tmp_path: Path, replicas: str) -> Path:
    path = tmp_path / "bot.config.yaml"
    path.write_text(
        "ringcentral:\n  server_url: http://127.0.0.1:8090\n"
        "bot:\n  public_url: http://127.0.0.1:8080\n"
        "replicas:\n" + replicas,
        encoding="utf-8",
    )
    return path


def test_the_shipped_file_holds_the_defaults_and_every_key_is_known() -> None:
    config = load_config(PROJECT_ROOT / "bot.config.yaml", environ=GOOD_ENV)
    assert config.replicas == ReplicasConfig(
        claim_lease_s=60.0, queue_poll_s=5.0, heartbeat_s=5.0, heartbeat_stale_s=30.0
    )
    assert unknown_keys({"replicas": {"claim_lease_s": 1, "heartbeat_stale": 2}}) == [
        "unknown key 'replicas.heartbeat_stale': did you mean 'replicas.heartbeat_stale_s'?"
    ]


def test_the_file_sets_them_and_the_environment_overrides_the_file(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "  claim_lease_s: 20\n  queue_poll_s: 1.5\n  heartbeat_s: 2\n  heartbeat_stale_s: 12\n",
    )
    config = load_config(path, environ=GOOD_ENV)
    assert config.replicas == ReplicasConfig(20.0, 1.5, 2.0, 12.0)
    env = {**GOOD_ENV, "BOT_CLAIM_LEASE_S": "45", "BOT_HEARTBEAT_STALE_S": "9.5"}
    config = load_config(path, environ=env)
    assert config.replicas == ReplicasConfig(45.0, 1.5, 2.0, 9.5)
    env = {**GOOD_ENV, "BOT_QUEUE_POLL_S": "0.5", "BOT_HEARTBEAT_S": "1"}
    assert load_config(path, environ=env).replicas == ReplicasConfig(20.0, 0.5, 1.0, 12.0)


@pytest.mark.parametrize(
    ("replicas", "env", "expected"),
    [
        (
            "  heartbeat_s: 10\n  heartbeat_stale_s: 10\n",
            {},
            "replicas.heartbeat_stale_s (10) must be more than twice replicas.heartbeat_s (10)",
        ),
        (
            "  heartbeat_stale_s: 30\n",
            {"BOT_HEARTBEAT_S": "20"},
            "replicas.heartbeat_stale_s (30) must be more than twice replicas.heartbeat_s (20)",
        ),
        (
            "  claim_lease_s: 0\n",
            {},
            "replicas.claim_lease_s (or BOT_CLAIM_LEASE_S) must be a number of seconds "
            "from 1 to 3600, got 0",
        ),
        (
            "  queue_poll_s: soon\n",
            {},
            "replicas.queue_poll_s (or BOT_QUEUE_POLL_S) must be a number of seconds "
            "from 0.1 to 600, got 'soon'",
        ),
        (
            "  claim_lease_s: 60\n",
            {"BOT_CLAIM_LEASE_S": "a minute"},
            "replicas.claim_lease_s (or BOT_CLAIM_LEASE_S) must be a number of seconds, "
            "got 'a minute'",
        ),
        (
            "  heartbeat_s: .nan\n",
            {},
            "replicas.heartbeat_s (or BOT_HEARTBEAT_S) must be a number of seconds",
        ),
        (
            "  heartbeat_stale_s: true\n",
            {},
            "replicas.heartbeat_stale_s (or BOT_HEARTBEAT_STALE_S) must be a number of seconds",
        ),
    ],
)
def test_nonsense_is_refused_with_a_clear_line(
    tmp_path: Path, replicas: str, env: dict[str, str], expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, replicas), environ={**GOOD_ENV, **env})
    assert any(problem.startswith(expected) for problem in caught.value.problems), (
        caught.value.problems
    )


def test_every_timing_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = _write(tmp_path, "  claim_lease_s: -1\n  queue_poll_s: 0\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={**GOOD_ENV, "BOT_HEARTBEAT_STALE_S": "1"})
    text = "\n".join(caught.value.problems)
    assert "claim_lease_s" in text and "queue_poll_s" in text and "heartbeat_stale_s" in text


async def test_a_replica_judges_heartbeats_with_the_staleness_it_was_given(
    postgres_url: str, tmp_path: Path
) -> None:
    """A heartbeat a minute old: stale by default (README: /readyz 503), fresh for an
    operator who allows two minutes. And the replica's queues claim with its lease."""
    sandbox = await start_sandbox()
    elsewhere = PostgresLeases(postgres_url, retry_s=0.2, heartbeat_s=0.5)
    held = [elsewhere.lease(name) for name in JOBS]
    for lease in held:
        await lease.acquire()  # someone else runs every job
    config = bot_config(
        sandbox.url,
        tmp_path / "unused.sqlite3",
        overrides={
            "bot": {"database": postgres_url, "replica_id": "patient"},
            "replicas": {"claim_lease_s": 7, "queue_poll_s": 0.5, "heartbeat_stale_s": 120},
        },
    )
    bot = await start_bot(config, leases=LeasesWithout(postgres_url, *JOBS), wait_ready=False)
    try:
        storage = bot.app[SERVICES].storage
        assert isinstance(storage, SharedQueue)
        assert (storage.claim_lease_s, storage.queue_poll_s) == (7.0, 0.5)
        for name in JOBS:
            await storage.set_state(heartbeat_key(name), heartbeat_value("other", time.time()))
        await storage.set_state(
            heartbeat_key(AI_JOBS_LEASE), heartbeat_value("other", time.time() - 60)
        )
        async with aiohttp.ClientSession() as session:

            async def ready() -> bool:
                async with session.get(f"{bot.url}/readyz") as response:
                    return response.status == 200

            await eventually(ready, within_s=20)  # signed in; every job runs somewhere
            await storage.set_state(
                heartbeat_key(AI_JOBS_LEASE), heartbeat_value("other", time.time() - 130)
            )
            async with session.get(f"{bot.url}/readyz") as response:
                assert response.status == 503
    finally:
        await bot.stop()
        for lease in held:
            await lease.release()
        await sandbox.close()


def test_the_metrics_listener_address_may_come_from_the_environment(tmp_path: Path) -> None:
    """docker-compose.yml gives each replica a metrics listener on the compose network."""
    path = _write(tmp_path, "  claim_lease_s: 60\n")
    config = load_config(path, environ={**GOOD_ENV, "BOT_METRICS_BIND": "0.0.0.0:9108"})
    assert config.metrics_bind_address == ("0.0.0.0", 9108)  # noqa: S104 - the compose network
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={**GOOD_ENV, "BOT_METRICS_BIND": "everywhere"})
    assert caught.value.problems == [
        "metrics.bind must be host:port (e.g. 127.0.0.1:9108), got 'everywhere' "
        "(from BOT_METRICS_BIND)"
    ]
