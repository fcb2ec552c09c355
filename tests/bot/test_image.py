"""The production image (Dockerfile) and the install it makes: the bot without the sandbox.

No Docker engine runs here, so the Dockerfile is read as text and checked for what matters:
the sandbox is never copied in, /data is the bot user's alone, and the health check asks
`/readyz` on the configured port. The install without the sandbox is imitated by making
`sandbox` unimportable.
"""

from __future__ import annotations

import re
import sys

import pytest

from bot.__main__ import main
from tests.conftest import PROJECT_ROOT

DOCKERFILE = PROJECT_ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per Dockerfile instruction, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    result = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        result.append((keyword.upper(), rest.strip()))
    return result


def test_the_image_copies_the_bot_but_never_the_sandbox() -> None:
    copied = [args.split()[0] for keyword, args in instructions() if keyword in ("COPY", "ADD")]
    assert {"bot", "handlers", "templates"} <= set(copied)
    assert not any(source.rstrip("/").endswith("sandbox") or source == "." for source in copied)


def test_data_is_created_for_the_bot_user_only() -> None:
    runs = " ".join(args for keyword, args in instructions() if keyword == "RUN")
    assert re.search(r"install -d -m 0?700 -o bot -g bot /data\b", runs), runs
    assert ("USER", "bot") in instructions()


def test_the_health_check_asks_readyz_on_the_configured_port() -> None:
    [check] = [args for keyword, args in instructions() if keyword == "HEALTHCHECK"]
    assert "/readyz" in check
    assert "BOT_PORT" in check
    assert "healthz" not in check


def test_the_demo_without_the_sandbox_says_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # what an install from the image looks like: `import sandbox` fails
    monkeypatch.setitem(sys.modules, "sandbox", None)
    assert main(["demo"]) == 2
    err = capsys.readouterr().err
    assert "the demo needs the sandbox" in err
    assert "Traceback" not in err
