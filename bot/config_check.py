"""`python -m bot check-config`: what an operator must fix before starting the bot.

Beyond what `load_config` refuses, it names keys the bot does not know (a typo such as
`bot.wokers` would otherwise silently leave the default in place) with the closest known
key, refuses a public URL RingCentral cannot reach (it sends webhooks from the internet,
over HTTPS), and lists the app and user permissions each enabled feature needs, so the
developer console can be set up in one pass.
"""

from __future__ import annotations

import difflib
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from bot.config import ENV_PUBLIC_URL, Config

# Every key the YAML file may hold, per section. A new setting is added here too (the
# test of the shipped bot.config.yaml fails otherwise).
KNOWN_KEYS: Mapping[str, frozenset[str]] = {
    "ringcentral": frozenset({"server_url", "ringsense_domains"}),
    "bot": frozenset(
        {
            "public_url",
            "host",
            "port",
            "database",
            "admins",
            "default_timezone",
            "webhook_max_body_bytes",
            "workers",
            "delivery_max_attempts",
            "daily_post_limit",
            "subscription_check_interval_s",
            "shutdown_grace_s",
            "catch_up_max_hours",
            "catch_up_call_window_minutes",
            "ai_poll_after_s",
            "ai_poll_interval_s",
            "commands_per_person_per_10_min",
            "rollup_check_interval_s",
            "replica_id",
        }
    ),
    "retention": frozenset({"messages_days", "calls_days"}),
    "ringcx": frozenset(
        {
            "enabled",
            "base_url",
            "rc_account_id",
            "sub_account_id",
            "time_zone",
            "window_minutes",
            "lag_minutes",
            "poll_interval_s",
            "agents_dm",
            "queue_chats",
            "transcript_retry_base_s",
        }
    ),
    "metrics": frozenset({"bind"}),
    "replicas": frozenset({"claim_lease_s", "queue_poll_s", "heartbeat_s", "heartbeat_stale_s"}),
}


@dataclass(frozen=True)
class FeaturePermissions:
    feature: str
    app_permissions: tuple[str, ...]
    user_permissions: tuple[str, ...]
    note: str = ""


def unknown_keys(raw: Mapping[str, Any]) -> list[str]:
    """One problem per key the bot does not know, naming the closest known one."""
    problems: list[str] = []
    every_key = [f"{section}.{key}" for section, keys in KNOWN_KEYS.items() for key in keys]
    for section, value in raw.items():
        name = str(section)
        if name not in KNOWN_KEYS:
            problems.append(_unknown(name, list(KNOWN_KEYS), every_key))
            continue
        if not isinstance(value, Mapping):
            continue  # load_config says the section must be a mapping
        known = KNOWN_KEYS[name]
        for key in value:
            if str(key) not in known:
                dotted = f"{name}.{key}"
                same_section = [f"{name}.{k}" for k in sorted(known)]
                problems.append(_unknown(dotted, same_section, every_key))
    return problems


def _unknown(name: str, nearby: list[str], everywhere: list[str]) -> str:
    # A key in the wrong section (`bot.server_url`) is found by its last part.
    match = difflib.get_close_matches(name, nearby, n=1, cutoff=0.6) or difflib.get_close_matches(
        name.rpartition(".")[2], [k.rpartition(".")[2] for k in everywhere], n=1, cutoff=0.8
    )
    if not match:
        return f"unknown key {name!r}: the bot ignores it"
    suggestion = match[0]
    if "." not in suggestion and "." in name:
        suggestion = next(k for k in everywhere if k.rpartition(".")[2] == suggestion)
    return f"unknown key {name!r}: did you mean {suggestion!r}?"


def public_url_problem(config: Config) -> str | None:
    """RingCentral delivers webhooks from the internet over HTTPS: a loopback, private or
    plain-http public URL never receives them. Only the sandbox (a RingCentral on this
    machine, `ringcentral.server_url` on loopback) can reach such an address."""
    if _is_local(urlsplit(config.ringcentral.server_url).hostname or ""):
        return None
    parts = urlsplit(config.public_url)
    host = parts.hostname or ""
    where = f"bot.public_url (or {ENV_PUBLIC_URL}) {config.public_url!r}"
    if _is_local(host) or _is_private(host):
        return (
            f"{where} is on this machine or a private network: RingCentral at "
            f"{config.ringcentral.server_url} cannot reach it; give the bot a public HTTPS address"
        )
    if parts.scheme != "https":
        return f"{where} is plain http: RingCentral delivers webhooks only to https addresses"
    return None


def _is_local(host: str) -> bool:
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def _is_private(host: str) -> bool:
    if host.lower().endswith((".local", ".internal", ".lan")):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_private or address.is_link_local or address.is_reserved


def permissions_needed(config: Config) -> list[FeaturePermissions]:
    """The app permissions (developer console) and user permissions (the service user's
    role) each enabled feature needs (API-FACTS: the spec's x-app-permission and
    x-user-permission of the endpoints each one calls)."""
    features = [
        FeaturePermissions(
            "digests and chat commands",
            ("ReadAccounts", "SubscriptionWebhook", "TeamMessaging", "RingSense"),
            ("ReadRingSenseInsights (AI Conversation Expert - Access Insights)",),
            f"RingSense domains: {', '.join(config.ringcentral.ringsense_domains)}",
        ),
        FeaturePermissions(
            "catch-up after downtime (company call log)",
            ("ReadCallLog",),
            ("FullCompanyCallLog",),
        ),
        FeaturePermissions(
            "analyze (AI API on recordings)",
            ("AI", "ReadCallRecording"),
            ("ReadCallRecording",),
        ),
        FeaturePermissions(
            "connect (RingSense of other accounts)",
            ("RingSense", "ReadAccounts"),
            ("ReadRingSenseInsights, held by the user an administrator connects",),
            "add <public_url>/oauth/ringsense/callback as a redirect URI",
        ),
    ]
    if config.ringcx.enabled:
        features.append(
            FeaturePermissions(
                "RingCX transcripts",
                ("ReadAccounts",),
                (),
                "RingCX permissions (transcripts, interaction metadata) are set in RingCX Admin",
            )
        )
    return features


def read_raw(path: Path) -> Mapping[str, Any]:
    """The YAML file as written (load_config has already said if it is not readable)."""
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return loaded if isinstance(loaded, Mapping) else {}


def check(config: Config, raw: Mapping[str, Any]) -> list[str]:
    """The problems `check-config` reports on top of load_config's."""
    problems = unknown_keys(raw)
    url = public_url_problem(config)
    if url is not None:
        problems.append(url)
    return problems


def describe_permissions(config: Config) -> list[str]:
    lines = ["permissions the enabled features need:"]
    for feature in permissions_needed(config):
        app = ", ".join(feature.app_permissions) or "none"
        user = ", ".join(feature.user_permissions) or "none"
        lines.append(f"  {feature.feature}: app permissions {app}; user permissions {user}")
        if feature.note:
            lines.append(f"    ({feature.note})")
    return lines
