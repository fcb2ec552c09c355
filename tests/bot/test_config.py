from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, load_config
from tests.conftest import PROJECT_ROOT

GOOD_ENV = {
    "RC_CLIENT_ID": "client-abc",
    "RC_CLIENT_SECRET": "s3cr3t-value-1",
    "RC_JWT": "eyJhbGciOi.jwt-value",
    "RC_BOT_TOKEN": "bot-token-value",
    "RC_VERIFICATION_TOKEN": "verify-123456",
    "RC_SHARED_SECRET": "shared-secret-value",
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
