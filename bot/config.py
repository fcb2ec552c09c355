"""Configuration: the commented `bot.config.yaml` plus secrets from the environment.

Everything is read once, validated as a whole, and frozen. A broken configuration is
reported with every problem at once, so an operator fixes it in one pass instead of one
restart per mistake. Secret values never appear in `repr()` or in error messages.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from bot.access import admin_entry_problem
from bot.crypto import ENV_SECRET_KEY, SecretKeyError, TokenCipher
from bot.store.opening import is_postgres, redacted, sqlite_path
from bot.store.postgres.base import default_replica_id

DEFAULT_CONFIG_PATH = Path("bot.config.yaml")
KNOWN_RINGSENSE_DOMAINS = frozenset({"pbx", "rcv", "rcx", "ms-teams", "nice-incontact"})

# Environment variables that carry secrets or per-deployment addresses.
ENV_SERVER_URL = "RC_SERVER_URL"
ENV_CLIENT_ID = "RC_CLIENT_ID"
ENV_CLIENT_SECRET = "RC_CLIENT_SECRET"  # noqa: S105 - a variable name, not a secret
ENV_JWT = "RC_JWT"
ENV_BOT_TOKEN = "RC_BOT_TOKEN"  # noqa: S105
ENV_VERIFICATION_TOKEN = "RC_VERIFICATION_TOKEN"  # noqa: S105
ENV_SHARED_SECRET = "RC_SHARED_SECRET"  # noqa: S105
ENV_PUBLIC_URL = "BOT_PUBLIC_URL"
ENV_DATABASE = "BOT_DATABASE"
ENV_HOST = "BOT_HOST"
ENV_PORT = "BOT_PORT"
ENV_REPLICA_ID = "BOT_REPLICA_ID"
ENV_STATUS_TOKEN = "BOT_STATUS_TOKEN"  # noqa: S105 - a variable name, not a secret
ENV_METRICS_TOKEN = "BOT_METRICS_TOKEN"  # noqa: S105 - a variable name, not a secret
ENV_METRICS_BIND = "BOT_METRICS_BIND"
# The `replicas:` settings, each overridable from the environment (a deployment tool sets
# them per environment without editing the file).
ENV_CLAIM_LEASE_S = "BOT_CLAIM_LEASE_S"
ENV_QUEUE_POLL_S = "BOT_QUEUE_POLL_S"
ENV_HEARTBEAT_S = "BOT_HEARTBEAT_S"
ENV_HEARTBEAT_STALE_S = "BOT_HEARTBEAT_STALE_S"

# A placeholder is a whole value: one of these words, `<...>`, `your-...`, or only x's. A
# random secret that merely contains "todo" or "xxx" is a real secret.
_PLACEHOLDER_WORDS = frozenset({"changeme", "change-me", "change_me", "replace-me", "todo", "tbd"})
_PLACEHOLDER_PATTERN = re.compile(r"<.*>|your[-_].*|x{3,}|\.\.\.", re.IGNORECASE | re.DOTALL)


class ConfigError(Exception):
    """Every problem found in the configuration, one per line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class RingCentralConfig:
    server_url: str
    client_id: str
    client_secret: str = field(repr=False)
    jwt: str = field(repr=False)
    bot_token: str = field(repr=False)
    ringsense_domains: tuple[str, ...] = ("pbx", "rcv", "rcx", "ms-teams", "nice-incontact")


@dataclass(frozen=True)
class RingCXConfig:
    """RingCX (contact center) transcripts; off unless `ringcx.enabled`."""

    enabled: bool = False
    base_url: str = "https://ringcx.ringcentral.com"
    rc_account_id: str = ""
    sub_account_id: str = ""
    time_zone: str = "US/Eastern"
    window_minutes: int = 15
    lag_minutes: int = 5
    poll_interval_s: int = 60
    agents_dm: bool = True
    queue_chats: tuple[tuple[str, str], ...] = ()
    transcript_retry_base_s: float = 15.0


@dataclass(frozen=True)
class RetentionConfig:
    """How long people's words are kept (`retention:` in the YAML file)."""

    # Finished inbox rows (notification payloads: chat messages) and outbox rows (cards).
    messages_days: int = 7
    # Stored call insights (summaries, transcripts' highlights, next steps) and AI results.
    calls_days: int = 90


@dataclass(frozen=True)
class ReplicasConfig:
    """Timings of several replicas sharing one PostgreSQL database (`replicas:` in the YAML
    file; no effect on SQLite, where one process does everything)."""

    # How long a replica's claim on a notification or delivery holds without renewal (its
    # worker renews it every third of this): the longest a killed replica delays its rows.
    claim_lease_s: float = 60.0
    # How often a worker with room reads the queue unprompted, should a wake-up from another
    # replica be lost.
    queue_poll_s: float = 5.0
    # How often the holder of a run-once job writes its heartbeat, and how old the last one
    # may be before the other replicas say that nobody runs the job (/readyz 503).
    heartbeat_s: float = 5.0
    heartbeat_stale_s: float = 30.0


@dataclass(frozen=True)
class Config:
    ringcentral: RingCentralConfig
    public_url: str
    host: str
    port: int
    database_path: Path
    verification_token: str = field(repr=False)
    shared_secret: str = field(repr=False)
    admins: frozenset[str] = frozenset()
    default_timezone: str = "UTC"
    webhook_max_body_bytes: int = 1_048_576
    workers: int = 4
    delivery_max_attempts: int = 6
    daily_post_limit: int = 2500
    subscription_check_interval_s: int = 3600
    shutdown_grace_s: int = 10
    catch_up_max_hours: int = 24
    catch_up_call_window_minutes: int = 240
    ai_poll_after_s: int = 900
    ai_poll_interval_s: int = 60
    commands_per_person_per_10_min: int = 60
    # How often due daily rollups are looked for; 0: never by themselves (tests drive them).
    rollup_check_interval_s: int = 60
    ringcx: RingCXConfig = RingCXConfig()
    # The bearer token administrators show to `GET /status`; empty turns the endpoint off.
    status_token: str = field(default="", repr=False)
    # Fernet key(s) from BOT_SECRET_KEY, the current one first; never from the YAML file.
    secret_keys: str = field(default="", repr=False)
    retention: RetentionConfig = RetentionConfig()
    # `/metrics`: on its own listener at this "host:port" (`metrics.bind`), and/or on the
    # bot's port for `Authorization: Bearer <BOT_METRICS_TOKEN>`; neither: not served.
    metrics_bind: str = ""
    metrics_token: str = field(default="", repr=False)
    # BOT_DATABASE as a `postgresql://` URL (several replicas share it); None means the
    # SQLite file at `database_path`. Never printed: it may hold a password.
    postgres_url: str | None = field(default=None, repr=False)
    # This process among several replicas (`bot.replica_id` or BOT_REPLICA_ID; default
    # host:pid): names the lease heartbeats and the rows this replica claims.
    replica_id: str = ""
    replicas: ReplicasConfig = ReplicasConfig()

    @property
    def metrics_bind_address(self) -> tuple[str, int] | None:
        if not self.metrics_bind:
            return None
        host, _, port = self.metrics_bind.rpartition(":")
        return host.strip("[]"), int(port)

    def token_cipher(self) -> TokenCipher:
        """The cipher for secrets the bot stores (install and refresh tokens)."""
        return TokenCipher.from_setting(self.secret_keys)

    @property
    def database(self) -> str:
        """What `open_storage` opens: the PostgreSQL URL, else the SQLite file."""
        return self.postgres_url or str(self.database_path)

    @property
    def database_label(self) -> str:
        """The database as it may be printed: a URL's password hidden."""
        return redacted(self.database)

    @property
    def webhook_address(self) -> str:
        """Where RingCentral delivers subscription notifications."""
        return self.public_url.rstrip("/") + "/webhooks/ringcentral"

    @property
    def timezone(self) -> ZoneInfo:
        return ZoneInfo(self.default_timezone)


def _looks_like_placeholder(value: str) -> bool:
    stripped = value.strip()
    return stripped.lower() in _PLACEHOLDER_WORDS or bool(_PLACEHOLDER_PATTERN.fullmatch(stripped))


def _check_url(name: str, value: str, problems: list[str]) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        problems.append(f"{name} must be an http(s) URL, got {value!r}")


def load_config(
    path: Path | str | None = DEFAULT_CONFIG_PATH,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Read the YAML file (if any), apply `overrides` and the environment, validate, freeze.

    `overrides` is for programmatic callers such as `demo` and tests: the same keys as the
    YAML file, nested the same way.
    """
    env = os.environ if environ is None else environ
    problems: list[str] = []
    raw: dict[str, Any] = {}
    if path is not None:
        config_path = Path(path)
        try:
            loaded = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            problems.append(f"config file {config_path} does not exist")
            loaded = {}
        except yaml.YAMLError as err:
            problems.append(f"config file {config_path} is not valid YAML: {err}")
            loaded = {}
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            problems.append(f"config file {config_path} must hold a mapping at the top level")
            loaded = {}
        raw = loaded
    if overrides:
        raw = _deep_merge(raw, overrides)

    rc_section = _section(raw, "ringcentral", problems)
    bot_section = _section(raw, "bot", problems)

    def secret(env_name: str) -> str:
        value = env.get(env_name, "").strip()
        if not value:
            problems.append(f"environment variable {env_name} is not set")
        elif _looks_like_placeholder(value):
            problems.append(f"environment variable {env_name} still holds a placeholder value")
        return value

    def optional_secret(env_name: str) -> str:
        value = env.get(env_name, "").strip()
        if value and _looks_like_placeholder(value):
            problems.append(f"environment variable {env_name} still holds a placeholder value")
        return value

    server_url = env.get(ENV_SERVER_URL) or str(rc_section.get("server_url", ""))
    _check_url(f"ringcentral.server_url (or {ENV_SERVER_URL})", server_url, problems)
    # Every domain the account can have, by default: one the platform refuses is reported
    # (status), not fatal.
    domains_raw = rc_section.get(
        "ringsense_domains", ["pbx", "rcv", "rcx", "ms-teams", "nice-incontact"]
    )
    domains: tuple[str, ...] = ()
    if not isinstance(domains_raw, list) or not domains_raw:
        problems.append("ringcentral.ringsense_domains must be a non-empty list")
    else:
        unknown = [d for d in domains_raw if d not in KNOWN_RINGSENSE_DOMAINS]
        if unknown:
            problems.append(
                f"ringcentral.ringsense_domains has unknown domains {unknown}; "
                f"known: {sorted(KNOWN_RINGSENSE_DOMAINS)}"
            )
        domains = tuple(str(d) for d in domains_raw)

    ringcentral = RingCentralConfig(
        server_url=server_url.rstrip("/"),
        client_id=secret(ENV_CLIENT_ID),
        client_secret=secret(ENV_CLIENT_SECRET),
        jwt=secret(ENV_JWT),
        bot_token=optional_secret(ENV_BOT_TOKEN),
        ringsense_domains=domains,
    )

    public_url = env.get(ENV_PUBLIC_URL) or str(bot_section.get("public_url", ""))
    _check_url(f"bot.public_url (or {ENV_PUBLIC_URL})", public_url, problems)

    host = env.get(ENV_HOST) or str(bot_section.get("host", "127.0.0.1"))
    port_section = dict(bot_section)
    if env.get(ENV_PORT):
        try:
            port_section["port"] = int(env[ENV_PORT])
        except ValueError:
            problems.append(f"{ENV_PORT} must be a port number, got {env[ENV_PORT]!r}")
    port = _int(port_section, "port", 8080, problems, minimum=0, maximum=65535)
    database = env.get(ENV_DATABASE) or str(bot_section.get("database", "data/bot.sqlite3"))
    if is_postgres(database) and importlib.util.find_spec("asyncpg") is None:
        problems.append(
            "the database is a PostgreSQL URL but its driver is not installed: "
            "pip install '.[postgres]'"
        )

    replica_id = (env.get(ENV_REPLICA_ID) or str(bot_section.get("replica_id") or "")).strip()
    if len(replica_id) > 100 or any(not c.isprintable() for c in replica_id):
        problems.append("bot.replica_id must be at most 100 printable characters")
    replica_id = replica_id or default_replica_id()

    admins_raw = bot_section.get("admins", []) or []
    if not isinstance(admins_raw, list):
        problems.append("bot.admins must be a list of extension ids or accountId:extensionId")
        admins_raw = []
    admins = frozenset(str(a).strip() for a in admins_raw)
    problems.extend(p for p in map(admin_entry_problem, sorted(admins)) if p is not None)

    tz_name = str(bot_section.get("default_timezone", "UTC"))
    try:
        ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"bot.default_timezone {tz_name!r} is not a known IANA time zone")

    max_body = _int(bot_section, "webhook_max_body_bytes", 1_048_576, problems, minimum=1024)
    workers = _int(bot_section, "workers", 4, problems, minimum=1, maximum=64)
    attempts = _int(bot_section, "delivery_max_attempts", 6, problems, minimum=1, maximum=50)
    daily_posts = _int(bot_section, "daily_post_limit", 2500, problems, minimum=1)
    check_interval = _int(
        bot_section, "subscription_check_interval_s", 3600, problems, minimum=1, maximum=86_400
    )
    grace = _int(bot_section, "shutdown_grace_s", 10, problems, minimum=0, maximum=600)
    catch_up = _int(bot_section, "catch_up_max_hours", 24, problems, minimum=1, maximum=24 * 30)
    catch_up_window = _int(
        bot_section, "catch_up_call_window_minutes", 240, problems, minimum=10, maximum=24 * 60
    )
    ai_poll_after = _int(bot_section, "ai_poll_after_s", 900, problems, minimum=0)
    ai_poll_interval = _int(bot_section, "ai_poll_interval_s", 60, problems, minimum=1)
    commands_per_person = _int(
        bot_section, "commands_per_person_per_10_min", 60, problems, minimum=1
    )
    rollup_interval = _int(
        bot_section, "rollup_check_interval_s", 60, problems, minimum=0, maximum=3600
    )

    verification_token = secret(ENV_VERIFICATION_TOKEN)
    if verification_token and len(verification_token) > 64:
        problems.append(f"{ENV_VERIFICATION_TOKEN} must be at most 64 characters")
    shared_secret = secret(ENV_SHARED_SECRET)
    status_token = optional_secret(ENV_STATUS_TOKEN)
    if status_token and len(status_token) < 16:
        problems.append(f"{ENV_STATUS_TOKEN} must be at least 16 characters when set")

    metrics_token = optional_secret(ENV_METRICS_TOKEN)
    if metrics_token and len(metrics_token) < 16:
        problems.append(f"{ENV_METRICS_TOKEN} must be at least 16 characters when set")
    metrics_bind = _metrics_bind(_section(raw, "metrics", problems), env, problems)
    replicas = _replicas(_section(raw, "replicas", problems), env, problems)

    ringcx = _ringcx(_section(raw, "ringcx", problems), env, problems)
    retention = _retention(_section(raw, "retention", problems), problems)
    secret_keys = _secret_keys(env, problems)

    if problems:
        raise ConfigError(problems)
    return Config(
        ringcentral=ringcentral,
        public_url=public_url.rstrip("/"),
        host=host,
        port=port,
        database_path=sqlite_path(database) if not is_postgres(database) else Path(),
        postgres_url=database if is_postgres(database) else None,
        replica_id=replica_id,
        replicas=replicas,
        verification_token=verification_token,
        shared_secret=shared_secret,
        admins=admins,
        default_timezone=tz_name,
        webhook_max_body_bytes=max_body,
        workers=workers,
        delivery_max_attempts=attempts,
        daily_post_limit=daily_posts,
        subscription_check_interval_s=check_interval,
        shutdown_grace_s=grace,
        catch_up_max_hours=catch_up,
        catch_up_call_window_minutes=catch_up_window,
        ai_poll_after_s=ai_poll_after,
        ai_poll_interval_s=ai_poll_interval,
        commands_per_person_per_10_min=commands_per_person,
        rollup_check_interval_s=rollup_interval,
        ringcx=ringcx,
        status_token=status_token,
        secret_keys=secret_keys,
        retention=retention,
        metrics_bind=metrics_bind,
        metrics_token=metrics_token,
    )


def _metrics_bind(section: Mapping[str, Any], env: Mapping[str, str], problems: list[str]) -> str:
    """`metrics.bind` (or BOT_METRICS_BIND): "host:port" of a listener serving only
    /metrics, or empty."""
    from_env = bool(env.get(ENV_METRICS_BIND))
    value = env[ENV_METRICS_BIND] if from_env else section.get("bind", "")
    if value is None or value == "":
        return ""
    text = str(value).strip()
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        source = f" (from {ENV_METRICS_BIND})" if from_env else ""
        problems.append(
            f"metrics.bind must be host:port (e.g. 127.0.0.1:9108), got {text!r}{source}"
        )
        return ""
    return text


# Each `replicas:` setting: its environment variable and the range that makes sense.
_REPLICA_SETTINGS: dict[str, tuple[str, float, float]] = {
    "claim_lease_s": (ENV_CLAIM_LEASE_S, 1.0, 3600.0),
    "queue_poll_s": (ENV_QUEUE_POLL_S, 0.1, 600.0),
    "heartbeat_s": (ENV_HEARTBEAT_S, 0.1, 600.0),
    "heartbeat_stale_s": (ENV_HEARTBEAT_STALE_S, 0.5, 3600.0),
}


def _replicas(
    section: Mapping[str, Any], env: Mapping[str, str], problems: list[str]
) -> ReplicasConfig:
    """The `replicas:` timings, each a number of seconds in its range; a heartbeat must be
    judged stale only after several could have come (more than twice its period), or one a
    moment late would make every other replica unready."""
    defaults = ReplicasConfig()
    values: dict[str, float] = {}
    for key, (env_name, low, high) in _REPLICA_SETTINGS.items():
        default = float(getattr(defaults, key))
        where = f"replicas.{key} (or {env_name})"
        raw: Any = section.get(key, default)
        if env.get(env_name):
            try:
                raw = float(env[env_name])
            except ValueError:
                problems.append(f"{where} must be a number of seconds, got {env[env_name]!r}")
                raw = default
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not low <= raw <= high:
            problems.append(
                f"{where} must be a number of seconds from {low:g} to {high:g}, got {raw!r}"
            )
            raw = default
        values[key] = float(raw)
    if values["heartbeat_stale_s"] <= 2 * values["heartbeat_s"]:
        problems.append(
            f"replicas.heartbeat_stale_s ({values['heartbeat_stale_s']:g}) must be more than "
            f"twice replicas.heartbeat_s ({values['heartbeat_s']:g}): otherwise a heartbeat a "
            "moment late makes every other replica say that nobody runs the job"
        )
    return ReplicasConfig(**values)


def _secret_keys(env: Mapping[str, str], problems: list[str]) -> str:
    """BOT_SECRET_KEY: required, every key in it a valid Fernet key (the problem never
    quotes the value)."""
    value = env.get(ENV_SECRET_KEY, "").strip()
    if not value:
        problems.append(
            f"environment variable {ENV_SECRET_KEY} is not set (it encrypts the tokens the "
            "bot stores; make one with `python -m bot generate-key`)"
        )
        return ""
    try:
        TokenCipher.from_setting(value)
    except SecretKeyError as err:
        problems.append(str(err))
    return value


def _retention(section: Mapping[str, Any], problems: list[str]) -> RetentionConfig:
    values: dict[str, int] = {}
    for key, default in (("messages_days", 7), ("calls_days", 90)):
        value = section.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 3650:
            problems.append(f"retention.{key} must be a whole number of days from 1 to 3650")
            value = default
        values[key] = value
    return RetentionConfig(**values)


def _ringcx(
    section: Mapping[str, Any], env: Mapping[str, str], problems: list[str]
) -> RingCXConfig:
    enabled = bool(section.get("enabled", False))
    base_url = env.get("RINGCX_BASE_URL") or str(
        section.get("base_url", "https://ringcx.ringcentral.com")
    )
    if not enabled:
        return RingCXConfig(enabled=False, base_url=base_url.rstrip("/"))
    _check_url("ringcx.base_url (or RINGCX_BASE_URL)", base_url, problems)
    sub_account = str(section.get("sub_account_id", "") or "")
    if not sub_account:
        problems.append("ringcx.sub_account_id is required when RingCX is enabled")
    # Older files name the zone metadata windows were read in; windows are now asked for in
    # UTC (see bot/ringcx.py), the key is still checked so a typo is not silently kept.
    tz_name = str(section.get("time_zone", "US/Eastern"))
    try:
        ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"ringcx.time_zone {tz_name!r} is not a known IANA time zone")
    window = section.get("window_minutes", 15)
    if not isinstance(window, int) or not 1 <= window <= 60:
        # RingCX takes metadata windows of at most 3600 s (API-FACTS F, the stricter limit).
        problems.append("ringcx.window_minutes must be a whole number from 1 to 60")
        window = 15
    lag = section.get("lag_minutes", 5)
    if not isinstance(lag, int) or not 0 <= lag <= 120:
        problems.append("ringcx.lag_minutes must be a whole number from 0 to 120")
        lag = 5
    interval = section.get("poll_interval_s", 60)
    if not isinstance(interval, int | float) or interval <= 0:
        problems.append("ringcx.poll_interval_s must be a positive number")
        interval = 60
    queues = section.get("queue_chats", {}) or {}
    if not isinstance(queues, Mapping):
        problems.append("ringcx.queue_chats must map agent group ids to chat ids")
        queues = {}
    return RingCXConfig(
        enabled=True,
        base_url=base_url.rstrip("/"),
        rc_account_id=str(section.get("rc_account_id", "") or ""),
        sub_account_id=sub_account,
        time_zone=tz_name,
        window_minutes=window,
        lag_minutes=lag,
        poll_interval_s=int(interval),
        agents_dm=bool(section.get("agents_dm", True)),
        queue_chats=tuple((str(k), str(v)) for k, v in queues.items()),
        transcript_retry_base_s=float(section.get("transcript_retry_base_s", 15.0)),
    )


def _section(raw: Mapping[str, Any], name: str, problems: list[str]) -> Mapping[str, Any]:
    value = raw.get(name, {})
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        problems.append(f"{name} must be a mapping")
        return {}
    return value


def _int(
    section: Mapping[str, Any],
    key: str,
    default: int,
    problems: list[str],
    *,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        problems.append(f"bot.{key} must be an integer, got {value!r}")
        return default
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        problems.append(f"bot.{key} must be between {minimum} and {maximum}, got {value}")
        return default
    return value


def _deep_merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
