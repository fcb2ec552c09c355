"""deploy/: the example dashboard and scrape config match the metrics the bot serves;
docker-compose.yml runs two replicas on PostgreSQL behind HAProxy (deploy/haproxy.cfg)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from bot.metrics import BotMetrics
from tests.conftest import PROJECT_ROOT

DEPLOY = PROJECT_ROOT / "deploy"


def served_metric_names() -> set[str]:
    return {family.name for family in BotMetrics().registry.collect()}


def test_the_dashboard_graphs_every_metric_and_only_metrics_that_exist() -> None:
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text(encoding="utf-8"))
    expressions = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {
        re.sub(r"_(total|bucket|sum|count)$", "", name)
        for expr in expressions
        for name in re.findall(r"ringsense_bot_\w+", expr)
    }
    assert used == served_metric_names()


def test_the_scrape_config_reads_every_replicas_metrics_listener_and_keeps_tokens_out() -> None:
    text = (DEPLOY / "prometheus.yml").read_text(encoding="utf-8")
    config = yaml.safe_load(text)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    services = compose()["services"]
    replicas = sorted(name for name, service in services.items() if "BOT_DATABASE" in str(service))
    port = services["bot1"]["environment"]["BOT_METRICS_BIND"].rpartition(":")[2]
    # Each replica on its own (through `lb` every scrape would reach another one).
    targets = [t for group in jobs["ringsense-bot"]["static_configs"] for t in group["targets"]]
    assert sorted(targets) == [f"{name}:{port}" for name in replicas] == ["bot1:9108", "bot2:9108"]
    # The token way in, for a bot outside compose, is an example whose token is in a file.
    assert "credentials_file:" in text and "credentials:" not in text


def test_compose_runs_prometheus_on_each_replicas_metrics_listener() -> None:
    services = compose()["services"]
    prometheus = services["prometheus"]
    assert prometheus["image"].startswith("prom/prometheus:")  # the official image
    assert "./deploy/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prometheus["volumes"]
    # Its web page has no login: on this machine's loopback only.
    assert [p for p in prometheus["ports"] if not p.startswith("127.0.0.1:")] == []
    bot = services["bot1"]
    host, _, port = bot["environment"]["BOT_METRICS_BIND"].rpartition(":")
    assert host == "0.0.0.0" and port.isdigit()  # noqa: S104 - the compose network only
    # The listener needs no token, so it is never published on the host.
    assert "ports" not in bot
    # Its data outlives the container, as the database's does.
    data = next(v for v in prometheus["volumes"] if v.endswith(":/prometheus"))
    assert data.split(":")[0] in compose()["volumes"]


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def with_defaults(value: str) -> str:
    """`value` as compose interpolates it when nothing is set: `${NAME:-default}` gives the
    default, a required `${NAME:?message}` a stand-in `set-NAME`."""
    value = re.sub(r"\$\{(\w+):-([^}]*)\}", r"\2", value)
    return re.sub(r"\$\{(\w+):\?[^}]*\}", r"set-\1", value)


def haproxy_lines() -> list[str]:
    text = (DEPLOY / "haproxy.cfg").read_text(encoding="utf-8")
    return [line.split("#")[0].strip() for line in text.splitlines() if line.split("#")[0].strip()]


def test_compose_runs_two_bot_replicas_on_one_postgresql_behind_haproxy() -> None:
    services = compose()["services"]
    assert {"postgres", "bot1", "bot2", "lb", "sandbox"} <= set(services)
    postgres = services["postgres"]
    assert postgres["image"].startswith("postgres:")
    assert any(volume.endswith(":/var/lib/postgresql/data") for volume in postgres["volumes"])
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    bot1, bot2 = services["bot1"], services["bot2"]
    assert bot1 == bot2  # the same image, settings and secrets: any replica takes any request
    assert bot1["build"]["dockerfile"] == "Dockerfile"
    environment = bot1["environment"]
    database = urlsplit(with_defaults(environment["BOT_DATABASE"]))
    assert (database.scheme, database.hostname, database.path) == ("postgresql", "postgres", "/bot")
    assert bot1["depends_on"]["postgres"]["condition"] == "service_healthy"
    # Notifications go to the load balancer, never to one replica.
    assert urlsplit(with_defaults(environment["BOT_PUBLIC_URL"])).hostname == "lb"
    assert database.password == "set-POSTGRES_PASSWORD"
    # Secrets that must be chosen are required, never defaulted in the file.
    for name in ("BOT_SECRET_KEY", "RC_VERIFICATION_TOKEN"):
        assert environment[name].startswith(f"${{{name}:?"), name
    assert postgres["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    lb = services["lb"]
    assert lb["image"].startswith("haproxy:")
    assert "./deploy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro" in lb["volumes"]
    assert services["sandbox"]["profiles"] == ["sandbox"]  # only for a local try


def test_haproxy_round_robins_over_both_replicas_and_checks_their_readiness() -> None:
    lines = haproxy_lines()
    environment = compose()["services"]["bot1"]["environment"]
    servers = [line.split()[1:] for line in lines if line.startswith("server ")]
    port = environment["BOT_PORT"]
    # Preferred while ready; and, when none is ready (no subscription yet, so RingCentral's
    # validation request must reach one), every replica that is alive.
    assert servers == [
        ["bot1", f"bot1:{port}", "check"],
        ["bot2", f"bot2:{port}", "check"],
        ["bot1-alive", f"bot1:{port}", "backup"],
        ["bot2-alive", f"bot2:{port}", "backup"],
    ]
    assert "option allbackups" in lines
    assert "balance roundrobin" in lines
    assert "option httpchk GET /readyz" in lines
    assert "http-check expect status 200" in lines
    assert "option redispatch" in lines
    assert not any(line.startswith("retry-on") for line in lines)  # connection failures only
    frontend_port = next(line for line in lines if line.startswith("bind ")).rsplit(":", 1)[1]
    assert f"{frontend_port}:{frontend_port}" in compose()["services"]["lb"]["ports"]
    assert urlsplit(with_defaults(environment["BOT_PUBLIC_URL"])).port == int(frontend_port)


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed here")
def test_haproxy_accepts_its_configuration() -> None:
    checked = subprocess.run(  # noqa: S603 - a fixed command on a file of this repository
        [str(shutil.which("haproxy")), "-c", "-f", str(DEPLOY / "haproxy.cfg")],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_image_can_reach_postgresql() -> None:
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"pip install [^\n]*'\.\[postgres\]'", dockerfile)
    sandbox_image = (DEPLOY / "sandbox.Dockerfile").read_text(encoding="utf-8")
    assert "COPY sandbox" not in dockerfile and "COPY sandbox ./sandbox" in sandbox_image
