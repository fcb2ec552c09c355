"""`python -m bot demo` as a new user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.demo import run_demo
from tests.conftest import FIXTURES_DIR
from tests.templates.adaptive_cards import assert_valid_card


async def test_the_demo_prints_the_digest(capsys: pytest.CaptureFixture[str]) -> None:
    assert await run_demo(timeout_s=20) == 0
    out = capsys.readouterr().out
    assert "You're in" in out
    in_order = [
        "Call from Alex Rivera to Jordan Lee  AI score ",
        "12 min 34 s · ",
        "With Alex Rivera, Jordan Lee (external)",
        "Next steps",
        "\nAlex Rivera · ",
        "Key points",
        "Highlights",
        "Call notes",
        "[Show transcript]",
        "[More ▾] [Helpful] [Not helpful]",
    ]
    positions = [out.find(expected) for expected in in_order]
    assert -1 not in positions, [e for e, p in zip(in_order, positions, strict=True) if p < 0]
    assert positions == sorted(positions), "the digest reads in the order of use"


async def test_the_demo_replays_an_event_file_and_writes_the_cards(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "cards"
    code = await run_demo(
        event_file=FIXTURES_DIR / "ringsense-event-pbx.json", out_dir=out_dir, timeout_s=20
    )
    assert code == 0
    assert "Call from John Smith to Tracy Debolah" in capsys.readouterr().out
    [written] = sorted(out_dir.glob("*.json"))
    card = json.loads(written.read_text(encoding="utf-8"))
    assert_valid_card(card)
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.3"


async def test_a_bad_event_file_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "event.json"
    bad.write_text('{"uuid": "1"}')
    assert await run_demo(event_file=bad) == 2
    assert "not a RingSense notification" in capsys.readouterr().err
    assert await run_demo(event_file=tmp_path / "missing.json") == 2
    said = capsys.readouterr().err
    # A mistyped domain is told which domains exist.
    assert "missing.json is neither a file nor a RingSense domain" in said
    assert "ms-teams" in said and "pbx" in said


async def test_an_event_of_another_documented_domain_is_subscribed_and_digested(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The demo subscribes to whatever domain the event names (every documented one)."""
    event = json.loads((FIXTURES_DIR / "ringsense-event-pbx.json").read_text(encoding="utf-8"))
    event["body"]["domain"] = "rcv"
    event["event"] = event["event"].replace("/domains/pbx/", "/domains/rcv/")
    path = tmp_path / "rcv.json"
    path.write_text(json.dumps(event), encoding="utf-8")
    assert await run_demo(event_file=path, timeout_s=20) == 0
    assert "Call from John Smith to Tracy Debolah" in capsys.readouterr().out


@pytest.mark.parametrize("domain", ["rcv", "ms-teams"])
async def test_event_can_name_a_documented_domain_instead_of_a_file(
    domain: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`python -m bot demo --event rcv`: the built-in call, in that domain, no file needed."""
    assert await run_demo(event_domain=domain, timeout_s=20) == 0
    out = capsys.readouterr().out
    assert "Call from Alex Rivera to Jordan Lee" in out
    assert f"domain {domain}" in out
