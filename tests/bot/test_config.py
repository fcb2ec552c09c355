from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from bot.config import ConfigError, load_config
from bot.crypto import generate_key
from tests.conftest import PROJECT_ROOT

GOOD_ENV = {
    "RC_CLIENT_ID": "client-abc",
    "RC_CLIENT_SECRET": "s3cr3t-value-1",
    "RC_JWT": "eyJhbGciOi.jwt-value",
    "RC_BOT_TOKEN": "bot-token-value",
    "RC_VERIFICATION_TOKEN": "verify-123456",
    "RC_SHARED_SECRET": "shared-secret-value",
    "BOT_SECRET_KEY": generate_key(),
}


def test_the_shipped_config_file_loads_with_secrets_from_the_environment() -> None:
    config = load_config(PROJECT_ROOT / "bot.config.yaml", environ=GOOD_ENV)
    assert config.ringcentral.server_url == "http://127.0.0.1:8090"
    assert config.webhook_address == "http://127.0.0.1:8080/webhooks/ringcentral"
    # every RingSense domain by default; a refused one is reported, not fatal
    assert config.ringcentral.ringsense_domains == (
        "pbx",
        "rcv",
        "rcx",
        "ms-teams",
        "nice-incontact",
    )


def test_environment_overrides_addresses() -> None:
    env = {
        **GOOD_ENV,
        "RC_SERVER_URL": "https://platform.ringcentral.com",
        "BOT_PUBLIC_URL": "https://bot.example.com/",
    }
    config = load_config(PROJECT_ROOT / "bot.config.yaml", environ=env)
    assert config.ringcentral.server_url == "https://platform.ringcentral.com"
    assert config.webhook_address == "https://bot.example.com/webhooks/ringcentral"


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "bot.config.yaml"
    path.write_text(
        "ringcentral:\n  server_url: ftp://nowhere\n  ringsense_domains: [pbx, mars]\n"
        "bot:\n  port: lots\n  default_timezone: Mars/Olympus\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={"RC_CLIENT_ID": "changeme"})
    text = str(caught.value)
    for expected in (
        "server_url",
        "mars",
        "bot.port",
        "Mars/Olympus",
        "RC_CLIENT_SECRET",
        "RC_JWT",
        "RC_VERIFICATION_TOKEN",
        "placeholder",
    ):
        assert expected in text
    assert len(caught.value.problems) >= 8


@pytest.mark.parametrize("value", ["changeme", "<client secret>", "your-jwt-here", "xxxx", "TODO"])
def test_a_placeholder_secret_is_refused(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(PROJECT_ROOT / "bot.config.yaml", environ={**GOOD_ENV, "RC_JWT": value})
    assert "RC_JWT still holds a placeholder" in str(caught.value)


@pytest.mark.parametrize("value", ["q8Ztodo3LmxxxP0", "aXxXb-changemeNot", "k<3"])
def test_a_random_secret_that_contains_a_placeholder_word_is_accepted(value: str) -> None:
    config = load_config(PROJECT_ROOT / "bot.config.yaml", environ={**GOOD_ENV, "RC_JWT": value})
    assert config.ringcentral.jwt == value


def test_secrets_never_show_in_repr() -> None:
    config = load_config(PROJECT_ROOT / "bot.config.yaml", environ=GOOD_ENV)
    shown = repr(config)
    for name in (
        "RC_CLIENT_SECRET",
        "RC_JWT",
        "RC_BOT_TOKEN",
        "RC_VERIFICATION_TOKEN",
        "RC_SHARED_SECRET",
    ):
        assert GOOD_ENV[name] not in shown


def test_missing_file_is_a_clear_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml", environ=GOOD_ENV)


def test_check_config_command(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from bot.__main__ import main

    for key, value in GOOD_ENV.items():
        monkeypatch.setenv(key, value)
    assert main(["check-config", "--config", str(PROJECT_ROOT / "bot.config.yaml")]) == 0
    assert "configuration OK" in capsys.readouterr().out
    monkeypatch.delenv("RC_JWT")
    assert main(["check-config", "--config", str(PROJECT_ROOT / "bot.config.yaml")]) == 2
    assert "RC_JWT" in capsys.readouterr().err


def test_the_bot_token_is_optional_but_never_a_placeholder() -> None:
    env = {k: v for k, v in GOOD_ENV.items() if k != "RC_BOT_TOKEN"}
    assert load_config(PROJECT_ROOT / "bot.config.yaml", environ=env).ringcentral.bot_token == ""
    with pytest.raises(ConfigError, match="RC_BOT_TOKEN"):
        load_config(PROJECT_ROOT / "bot.config.yaml", environ={**env, "RC_BOT_TOKEN": "<token>"})


def test_admins_name_an_extension_or_an_account_and_extension(tmp_path: Path) -> None:
    path = tmp_path / "bot.config.yaml"
    path.write_text('bot:\n  admins: [62288320001, "809640001:62288320002"]\n', encoding="utf-8")
    env = {**GOOD_ENV, "RC_SERVER_URL": "http://127.0.0.1:8090", "BOT_PUBLIC_URL": "http://b"}
    config = load_config(path, environ=env)
    assert config.admins == {"62288320001", "809640001:62288320002"}
    path.write_text('bot:\n  admins: ["Ada", "1:2:3"]\n', encoding="utf-8")
    with pytest.raises(ConfigError) as problems:
        load_config(path, environ=env)
    assert "'Ada'" in str(problems.value) and "'1:2:3'" in str(problems.value)


def test_a_missing_or_broken_secret_key_is_reported_with_the_other_problems(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bot.config.yaml"
    path.write_text("bot:\n  port: lots\n")
    env = {k: v for k, v in GOOD_ENV.items() if k != "BOT_SECRET_KEY"}
    with pytest.raises(ConfigError) as missing:
        load_config(path, environ=env)
    assert any("BOT_SECRET_KEY is not set" in p for p in missing.value.problems)
    assert any("bot.port" in p for p in missing.value.problems)
    assert "generate-key" in str(missing.value)

    broken = "not-a-fernet-key-but-a-secret-anyway"
    good = generate_key()
    with pytest.raises(ConfigError) as invalid:
        load_config(path, environ={**env, "BOT_SECRET_KEY": f"{good},{broken}"})
    assert any("key 2 of BOT_SECRET_KEY" in p for p in invalid.value.problems)
    assert broken not in str(invalid.value) and good not in str(invalid.value)


def test_the_secret_key_is_never_shown_and_never_read_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bot.config.yaml"
    path.write_text(f"bot:\n  secret_key: {generate_key()}\n")
    env = {k: v for k, v in GOOD_ENV.items() if k != "BOT_SECRET_KEY"}
    with pytest.raises(ConfigError):
        load_config(path, environ=env)
    config = load_config(PROJECT_ROOT / "bot.config.yaml", environ=GOOD_ENV)
    assert GOOD_ENV["BOT_SECRET_KEY"] not in repr(config)
    cipher = config.token_cipher()
    assert cipher.decrypt(cipher.encrypt("a token")) == "a token"


def test_retention_defaults_and_limits(tmp_path: Path) -> None:
    config = load_config(PROJECT_ROOT / "bot.config.yaml", environ=GOOD_ENV)
    assert (config.retention.messages_days, config.retention.calls_days) == (7, 90)
    path = tmp_path / "bot.config.yaml"
    addresses = "bot:\n  public_url: http://127.0.0.1:8080\nringcentral:\n  server_url: http://x\n"
    path.write_text(addresses + "retention:\n  messages_days: 2\n  calls_days: 30\n")
    config = load_config(path, environ=GOOD_ENV)
    assert (config.retention.messages_days, config.retention.calls_days) == (2, 30)
    path.write_text(addresses + "retention:\n  messages_days: 0\n  calls_days: forever\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ=GOOD_ENV)
    text = str(caught.value)
    assert "retention.messages_days" in text and "retention.calls_days" in text


def test_the_replica_id_defaults_to_host_and_process_and_may_be_set(tmp_path: Path) -> None:
    config = load_config(PROJECT_ROOT / "bot.config.yaml", environ=GOOD_ENV)
    assert config.replica_id == f"{socket.gethostname()}:{os.getpid()}"
    path = tmp_path / "bot.config.yaml"
    shipped = (PROJECT_ROOT / "bot.config.yaml").read_text()
    path.write_text(shipped.replace("  # replica_id: bot-1", "  replica_id: bot-1"))
    assert load_config(path, environ=GOOD_ENV).replica_id == "bot-1"
    overridden = load_config(path, environ={**GOOD_ENV, "BOT_REPLICA_ID": "bot-2"})
    assert overridden.replica_id == "bot-2"
    path.write_text('bot:\n  replica_id: "bot\\n1"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ=GOOD_ENV)
    assert "bot.replica_id must be at most 100 printable characters" in str(caught.value)
