"""deploy/: the example dashboard and scrape config match the metrics the bot serves."""

from __future__ import annotations

import json
import re

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


def test_the_scrape_config_reads_the_metrics_listener_and_keeps_the_token_out() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text(encoding="utf-8"))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["ringsense-bot"]["static_configs"][0]["targets"] == ["ringsense-bot:9108"]
    token_job = jobs["ringsense-bot-token"]
    assert token_job["authorization"]["credentials_file"]
    assert "credentials" not in token_job["authorization"]
