"""Render every card the tests render to a PNG, the way a phone shows it, for the README.

The cards are the golden files in `tests/templates/golden/` (exactly what the template tests
render and compare), so the pictures in `docs/cards/` show what the bot posts. Each one is
drawn by Microsoft's own Adaptive Cards renderer (the `adaptivecards` npm package, the one
Teams and the designer use) in headless Chromium, 340 CSS pixels wide (a phone), at twice
the pixel density so text stays sharp.

    python tools/render_cards.py               # every golden card into docs/cards/
    python tools/render_cards.py digest.card.json --out /tmp/cards

What it needs, and installs when missing: `npm install` in `tools/` (package.json is
committed, node_modules is not) and Debian's `chromium` (`apt-get install -y chromium`,
which needs root). Not part of the test run: nothing here is imported by the tests.

How: a small HTML page loads the renderer, renders the card with the renderer's default host
config into a 340 px wide box and writes the box's height into the page title. Chromium is run
twice per card: once with `--dump-dom` to read that height, once with `--screenshot` at
exactly that size.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / "tools"
GOLDEN = ROOT / "tests" / "templates" / "golden"
OUT = ROOT / "docs" / "cards"
WIDTH = 340
SCALE = 2
RENDERER_JS = TOOLS / "node_modules" / "adaptivecards" / "dist" / "adaptivecards.min.js"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
# Enough time for the page's script; no network is involved (file:// only).
VIRTUAL_TIME_MS = "3000"

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>rendering</title>
<style>
  html, body {{ margin: 0; background: #f3f2f1; font-family: "Segoe UI", "Noto Sans",
    "DejaVu Sans", sans-serif; }}
  #card {{ width: {width}px; background: #fff; }}
</style>
<script src="{renderer}"></script>
</head><body><div id="card"></div>
<script>
  const card = new AdaptiveCards.AdaptiveCard();
  // the renderer's default host config, only with fonts a Debian box has
  card.hostConfig = new AdaptiveCards.HostConfig({{
    fontFamily: "'Segoe UI', 'Noto Sans', 'DejaVu Sans', sans-serif"
  }});
  card.parse({card_json});
  const box = document.getElementById("card");
  box.appendChild(card.render());
  document.title = "height:" + Math.ceil(box.getBoundingClientRect().height);
</script></body></html>
"""


def find_chromium() -> str:
    """The Chromium binary, installed with apt when missing (needs root)."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    print("chromium is missing; installing it with apt-get", file=sys.stderr)
    subprocess.run(["apt-get", "install", "-y", "chromium"], check=True)  # noqa: S607
    found = shutil.which("chromium")
    if not found:
        raise SystemExit("apt-get installed chromium but it is not on PATH")
    return found


def ensure_renderer() -> None:
    """`npm install` in tools/ when the renderer is not there yet."""
    if RENDERER_JS.exists():
        return
    print("installing the adaptivecards renderer with npm", file=sys.stderr)
    subprocess.run(["npm", "install", "--no-audit", "--no-fund"], cwd=TOOLS, check=True)  # noqa: S607
    if not RENDERER_JS.exists():
        raise SystemExit(f"npm install did not produce {RENDERER_JS}")


def chromium_run(chromium: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Chromium headless on a page of ours (the card JSON comes from our golden files)."""
    return subprocess.run(  # noqa: S603
        [
            chromium,
            "--headless=new",
            "--no-sandbox",  # root in a container has no user namespace to sandbox with
            "--disable-gpu",
            "--hide-scrollbars",
            "--allow-file-access-from-files",
            f"--virtual-time-budget={VIRTUAL_TIME_MS}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def render_png(chromium: str, card: dict[str, object], target: Path, workdir: Path) -> None:
    """One card to one PNG, exactly as tall as the rendered card."""
    page = workdir / f"{target.stem}.html"
    page.write_text(
        PAGE.format(
            width=WIDTH,
            renderer=html.escape(RENDERER_JS.as_uri()),
            # `</` cannot end the script early; the rest is plain JSON
            card_json=json.dumps(card).replace("</", "<\\/"),
        ),
        encoding="utf-8",
    )
    dom = chromium_run(chromium, "--dump-dom", page.as_uri())
    match = re.search(r"<title>height:(\d+)</title>", dom.stdout)
    if not match:
        raise RuntimeError(f"{target.name}: the renderer did not finish: {dom.stderr[-500:]}")
    height = int(match.group(1))
    shot = chromium_run(
        chromium,
        f"--window-size={WIDTH},{height}",
        f"--force-device-scale-factor={SCALE}",
        f"--screenshot={target}",
        page.as_uri(),
    )
    if shot.returncode != 0 or not target.exists():
        raise RuntimeError(f"{target.name}: chromium failed: {shot.stderr[-500:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "cards", nargs="*", help="golden file names or card JSON paths (default: every golden)"
    )
    parser.add_argument("--out", type=Path, default=OUT, help="where the PNGs go")
    options = parser.parse_args(argv)
    names = options.cards or sorted(p.name for p in GOLDEN.glob("*.card.json"))
    ensure_renderer()
    chromium = find_chromium()
    options.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as workdir:
        for name in names:
            source = Path(name) if Path(name).is_file() else GOLDEN / name
            card = json.loads(source.read_text(encoding="utf-8"))
            stem = source.name.removesuffix(".json").removesuffix(".card")
            target = options.out / f"{stem}.png"
            render_png(chromium, card, target, Path(workdir))
            print(f"{target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
