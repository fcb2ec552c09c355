"""tools/split_storage.py, run on a copy of today's bot/: the package it writes holds every
method of the old `Storage` exactly once and verbatim, imports, lints, and works; and it
refuses (writing nothing) rather than guess where an unknown method goes."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = PROJECT_ROOT / "tools" / "split_storage.py"


def _copy_project(target: Path) -> Path:
    shutil.copytree(
        PROJECT_ROOT / "bot",
        target / "bot",
        ignore=shutil.ignore_patterns("__pycache__", "store"),
    )
    shutil.copy(PROJECT_ROOT / "pyproject.toml", target / "pyproject.toml")
    return target


def _split(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own script
        [sys.executable, str(SCRIPT), "--root", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _storage_methods(source: str) -> dict[str, str]:
    """Method name → its source text, of `class Storage` in a storage.py."""
    tree = ast.parse(source)
    (storage,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Storage"]
    return {
        node.name: ast.get_source_segment(source, node) or ""
        for node in storage.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


def _implemented_methods(package: Path) -> list[tuple[str, str]]:
    """(method, module) for every method of the classes `Storage` is made of (the mixins
    and itself; not the protocols, not the row dataclasses)."""
    found: list[tuple[str, str]] = []
    for module in sorted(package.glob("*.py")):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        for node in tree.body:
            if not isinstance(node, ast.ClassDef):
                continue
            if not node.name.startswith(("Sqlite", "StoreBase", "Storage")):
                continue
            if any(isinstance(b, ast.Name) and b.id == "Protocol" for b in node.bases):
                continue
            found += [
                (m.name, module.stem)
                for m in node.body
                if isinstance(m, ast.FunctionDef | ast.AsyncFunctionDef)
            ]
    return found


def _insert_method(storage_py: Path, method: str) -> None:
    """Put `method` into `class Storage`, before its last method."""
    source = storage_py.read_text(encoding="utf-8")
    anchor = "    async def forget_subscription("
    assert anchor in source
    text = textwrap.indent(textwrap.dedent(method).strip() + "\n\n", "    ")
    storage_py.write_text(source.replace(anchor, text + anchor), encoding="utf-8")


CHECK_IMPORTS = """
import asyncio, sys
from pathlib import Path

import bot
assert Path(bot.__file__).resolve().is_relative_to(Path(sys.argv[1]).resolve()), bot.__file__
import bot.storage as shim
from bot.store import Storage, StorageInterface

names = sys.argv[2].split(",")
missing = [n for n in names if not hasattr(shim, n)]
assert not missing, f"bot.storage lost {missing}"
methods = sys.argv[3].split(",")
for name in methods:
    owner = getattr(Storage, name).__qualname__.split(".")[0]
    assert owner.startswith(("Sqlite", "StoreBase", "Storage")), (name, owner)

async def main() -> None:
    storage = await Storage.open(":memory:")
    assert await storage.schema_version() == len(shim.MIGRATIONS)
    assert await storage.add_to_inbox("uuid-1", "message", {"text": "hello"})
    assert not await storage.add_to_inbox("uuid-1", "message", {"text": "hello"})
    (item,) = await storage.due_inbox(10)
    assert (item.uuid, item.payload) == ("uuid-1", {"text": "hello"})
    await storage.set_state("greeting", "hi")
    assert await storage.state("greeting") == "hi"
    await storage.close()

asyncio.run(main())
print("ok")
"""


def test_the_split_package_has_every_method_once_verbatim_and_works(tmp_path: Path) -> None:
    root = _copy_project(tmp_path)
    original_source = (root / "bot" / "storage.py").read_text(encoding="utf-8")
    original = _storage_methods(original_source)
    public = [
        name
        for node in ast.parse(original_source).body
        if (name := getattr(node, "name", None) or _assigned(node))
        and not name.startswith("_")
        and name != "log"  # each module has its own logger
    ]

    result = _split(root)
    assert result.returncode == 0, result.stderr
    package = root / "bot" / "store"

    implemented = _implemented_methods(package)
    assert sorted(name for name, _ in implemented) == sorted(original)
    generated = {p.stem: p.read_text(encoding="utf-8") for p in package.glob("*.py")}
    homes = dict(implemented)
    for name, text in original.items():
        assert text in generated[homes[name]], f"{name} was not carried over verbatim"
    assert homes["due_inbox"] == "inbox"
    assert homes["enqueue"] == "outbox"
    assert homes["save_ai_job"] == "ai_jobs"
    assert homes["open"] == "sqlite"
    # Short modules, each saying what lives there.
    for stem, text in generated.items():
        assert ast.get_docstring(ast.parse(text)), f"{stem}.py has no docstring"

    checked = subprocess.run(  # noqa: S603 - our own check
        [sys.executable, "-c", CHECK_IMPORTS, str(root), ",".join(public), ",".join(original)],
        capture_output=True,
        text=True,
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip() == "ok"

    files = [str(package), str(root / "bot" / "storage.py")]
    for command in (["check", *files], ["format", "--check", *files]):
        linted = subprocess.run(  # noqa: S603 - ruff on our files
            [sys.executable, "-m", "ruff", *command],
            capture_output=True,
            text=True,
            cwd=root,
            timeout=60,
            check=False,
        )
        assert linted.returncode == 0, linted.stdout + linted.stderr


def _assigned(node: ast.stmt) -> str | None:
    if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
        return node.targets[0].id
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return node.target.id
    return None


def test_a_method_of_an_unknown_table_stops_the_split_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    root = _copy_project(tmp_path)
    storage_py = root / "bot" / "storage.py"
    _insert_method(
        storage_py,
        """
        async def frobnicate(self) -> None:
            async with self._transaction() as db:
                await db.execute("DELETE FROM widgets")
        """,
    )
    before = storage_py.read_text(encoding="utf-8")

    result = _split(root)

    assert result.returncode == 1
    assert "frobnicate" in result.stderr and "widgets" in result.stderr
    assert "nothing written" in result.stderr
    assert not (root / "bot" / "store").exists()
    assert storage_py.read_text(encoding="utf-8") == before


def test_a_new_method_on_a_known_table_goes_to_that_tables_module(tmp_path: Path) -> None:
    root = _copy_project(tmp_path)
    _insert_method(
        root / "bot" / "storage.py",
        """
        @property
        def inbox_batch_size(self) -> int:
            return len(self._inbox_batch)

        async def oldest_pending_arrival(self) -> float | None:
            # A comment before the body is not part of the signature.
            async with self._db.execute(
                "SELECT MIN(received_at) FROM inbox WHERE status = 'pending'"
            ) as cursor:
                row = await cursor.fetchone()
            return float(row[0]) if row and row[0] is not None else None
        """,
    )

    result = _split(root)

    assert result.returncode == 0, result.stderr
    homes = dict(_implemented_methods(root / "bot" / "store"))
    assert homes["oldest_pending_arrival"] == homes["inbox_batch_size"] == "inbox"
    interface = (root / "bot" / "store" / "interface.py").read_text(encoding="utf-8")
    assert "async def oldest_pending_arrival(self) -> float | None: ..." in interface
    assert "@property\n    def inbox_batch_size(self) -> int: ..." in interface


def test_a_second_run_is_refused(tmp_path: Path) -> None:
    root = _copy_project(tmp_path)
    assert _split(root).returncode == 0
    shim = (root / "bot" / "storage.py").read_text(encoding="utf-8")

    again = _split(root)

    assert again.returncode == 1
    assert "exists already" in again.stderr
    assert (root / "bot" / "storage.py").read_text(encoding="utf-8") == shim


@pytest.fixture(autouse=True)
def _script_exists() -> None:
    assert SCRIPT.exists()
