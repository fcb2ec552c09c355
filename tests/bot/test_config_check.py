"""`python -m bot check-config`: what it tells an operator, in their words."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.__main__ import main
from bot.config_check import KNOWN_KEYS, read_raw, unknown_keys
from tests.bot.test_config import GOOD_ENV
from tests.conftest import PROJECT_ROOT

PUBLIC = {
    **GOOD_ENV,
    "RC_SERVER_URL": "https://platform.ringcentral.com",
    "BOT_PUBLIC_URL": "https://bot.example.com",
}


def run_check(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    yaml_text: str,
    env: dict[str, str],
) -> tuple[int, str, str]:
    path = tmp_path / "bot.config.yaml"
    path.write_text(yaml_text, encoding="utf-8")
    for name in ("RC_SERVER_URL", "BOT_PUBLIC_URL", "BOT_METRICS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = main(["check-config", "--config", str(path)])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_shipped_config_holds_only_known_keys() -> None:
    assert unknown_keys(read_raw(PROJECT_ROOT / "bot.config.yaml")) == []


def test_unknown_keys_are_named_with_the_closest_known_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_check(
        tmp_path,
        monkeypatch,
        capsys,
        "bot:\n  wokers: 8\n  daily_post_limt: 100\n  server_url: https://x\n"
        "retention:\n  message_days: 3\n"
        "ringcx:\n  enabeld: true\n"
        "metrcs:\n  bind: 127.0.0.1:9108\n"
        "colour: blue\n",
        PUBLIC,
    )
    assert code == 2 and out == ""
    for expected in (
        "unknown key 'bot.wokers': did you mean 'bot.workers'?",
        "unknown key 'bot.daily_post_limt': did you mean 'bot.daily_post_limit'?",
        "unknown key 'bot.server_url': did you mean 'ringcentral.server_url'?",
        "unknown key 'retention.message_days': did you mean 'retention.messages_days'?",
        "unknown key 'ringcx.enabeld': did you mean 'ringcx.enabled'?",
        "unknown key 'metrcs': did you mean 'metrics'?",
        "unknown key 'colour': the bot ignores it",
    ):
        assert expected in err


def test_unknown_keys_come_with_the_other_problems(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_check(
        tmp_path, monkeypatch, capsys, "bot:\n  port: lots\n  admns: []\n", PUBLIC
    )
    assert code == 2
    assert "bot.port" in err and "did you mean 'bot.admins'?" in err


@pytest.mark.parametrize(
    ("public_url", "reason"),
    [
        ("http://127.0.0.1:8080", "on this machine or a private network"),
        ("https://localhost", "on this machine or a private network"),
        ("https://[::1]:8443", "on this machine or a private network"),
        ("https://10.1.2.3", "on this machine or a private network"),
        ("https://bot.lan", "on this machine or a private network"),
        ("http://bot.example.com", "plain http"),
    ],
)
def test_a_public_url_ringcentral_cannot_reach_is_refused(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    public_url: str,
    reason: str,
) -> None:
    code, out, err = run_check(
        tmp_path, monkeypatch, capsys, "", {**PUBLIC, "BOT_PUBLIC_URL": public_url}
    )
    assert code == 2 and out == ""
    assert public_url in err and reason in err


def test_the_sandbox_on_loopback_may_reach_a_loopback_bot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_check(
        tmp_path,
        monkeypatch,
        capsys,
        "",
        {
            **GOOD_ENV,
            "RC_SERVER_URL": "http://127.0.0.1:8090",
            "BOT_PUBLIC_URL": "http://127.0.0.1:8080",
        },
    )
    assert (code, err) == (0, "")
    assert "configuration OK" in out


def test_the_permissions_of_each_enabled_feature_are_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_check(tmp_path, monkeypatch, capsys, "", PUBLIC)
    assert code == 0
    assert (
        "digests and chat commands: app permissions ReadAccounts, SubscriptionWebhook, "
        "TeamMessaging, RingSense; user permissions ReadRingSenseInsights" in out
    )
    assert "analyze (AI API on recordings): app permissions AI, ReadCallRecording" in out
    assert "catch-up after downtime (company call log): app permissions ReadCallLog" in out
    assert "RingCX" not in out
    code, out, _ = run_check(
        tmp_path,
        monkeypatch,
        capsys,
        "ringcx:\n  enabled: true\n  sub_account_id: '123'\n",
        PUBLIC,
    )
    assert code == 0
    assert "RingCX transcripts: app permissions ReadAccounts" in out
    assert "RingCX Admin" in out


def test_metrics_bind_and_token_are_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_check(
        tmp_path,
        monkeypatch,
        capsys,
        "metrics:\n  bind: nowhere\n",
        {**PUBLIC, "BOT_METRICS_TOKEN": "short"},
    )
    assert code == 2
    assert "metrics.bind must be host:port" in err
    assert "BOT_METRICS_TOKEN must be at least 16 characters" in err
    assert "short'" not in err
    assert set(KNOWN_KEYS["metrics"]) == {"bind"}
