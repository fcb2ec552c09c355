"""Split `bot/storage.py` into the package `bot/store/`, one module per table family.

Why a script and not a hand-made split: while several branches change `bot/storage.py` at
once, a hand-made split would be lost in their merges. This script is run once, by whoever
merges, on the merged file: `python tools/split_storage.py [--root REPO]`.

What it writes (the code of every method and definition is sliced from the source text
verbatim, so nothing is reformatted or rewritten):

- `bot/store/records.py`: the row dataclasses, constants and row converters (no backend).
- `bot/store/interface.py`: one `typing.Protocol` per family with the signatures of its
  public methods, and `StorageInterface` combining them: what a second backend implements.
- `bot/store/migrations.py`: the numbered SQLite migrations.
- `bot/store/base.py`: the connection, pragmas, transactions, migrating, secrets (`StoreBase`).
- one module per table family, each a mixin class over `StoreBase` (see `FAMILIES`).
- `bot/store/sqlite.py`: `Storage`, the composition of the mixins, and its `open`.
- `bot/store/__init__.py` and a new `bot/storage.py` re-exporting every public name, so
  `from bot.storage import X` keeps working unchanged.

Where a method goes: the explicit `METHOD_FAMILY` table first, then the SQL tables it names
(`TABLE_FAMILY`), then words in its name (`NAME_RULES`), then (private helpers) the family
of the methods calling it. Anything still unplaced is printed and nothing is written. It
refuses to run when `bot/store/` exists, so running it twice cannot mix two splits.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import io
import re
import subprocess
import sys
import textwrap
import tokenize
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

FIRST_PARTY = frozenset({"bot", "handlers", "sandbox"})


@dataclass(frozen=True)
class Family:
    module: str
    mixin: str
    protocol: str
    tables: str
    """What the module docstring says lives there."""


FAMILIES: dict[str, Family] = {
    "base": Family(
        "base",
        "StoreBase",
        "CoreStore",
        "the connection, its pragmas, transactions, migrating, secret keys, and which "
        "account a subscription owner belongs to; tables `schema_version`",
    ),
    "inbox": Family("inbox", "SqliteInbox", "InboxStore", "notifications received: `inbox`"),
    "outbox": Family(
        "outbox",
        "SqliteOutbox",
        "OutboxStore",
        "messages to send and the cards already posted: `outbox`, `posted_cards`",
    ),
    "settings": Family(
        "settings",
        "SqliteSettings",
        "SettingsStore",
        "people's settings and small named values: `user_settings`, `user_channels`, "
        "`direct_chats`, `bot_state`, `daily_posts`",
    ),
    "calls": Family(
        "calls",
        "SqliteCalls",
        "CallStore",
        "calls and what came of them: `calls`, `call_participants`, `feedback`, "
        "`seen_submits`, and (when present) next steps, search, skipped digests, rollups",
    ),
    "accounts": Family(
        "accounts",
        "SqliteAccounts",
        "AccountStore",
        "installs, subscriptions and RingSense connections: `installs`, `subscriptions`, "
        "`ringsense_connections`, `ringsense_connect_links`; and forgetting an account",
    ),
    "ai_jobs": Family("ai_jobs", "SqliteAiJobs", "AiJobStore", "AI API jobs: `ai_jobs`"),
    "ringcx": Family("ringcx", "SqliteRingCx", "RingCxStore", "RingCX segments: `ringcx_segments`"),
    "upkeep": Family(
        "upkeep",
        "SqliteUpkeep",
        "UpkeepStore",
        "work across every table: retention (`prune`) and the levels the metrics read",
    ),
}
COMPOSITION = "storage"  # pseudo-family of the methods that stay on `Storage` itself

METHOD_FAMILY: dict[str, str] = {
    # base
    "__init__": "base",
    "attribute_owner": "base",
    "account_of_owner": "base",
    "_require_cipher": "base",
    "_encrypt_plaintext_tokens": "base",
    "rotate_secret_key": "base",
    "close": "base",
    "_transaction": "base",
    "_migrate": "base",
    "schema_version": "base",
    "checkpoint": "base",  # h12-intake: WAL checkpoints off the ack path
    "open": COMPOSITION,
    # inbox
    "add_notification": "inbox",
    "add_to_inbox": "inbox",
    "_flush_inbox": "inbox",
    "_insert_inbox_one_by_one": "inbox",
    "due_inbox": "inbox",
    "finish_inbox": "inbox",
    "retry_inbox_later": "inbox",
    "inbox_counts": "inbox",
    "ringsense_notification_handled": "inbox",
    "next_inbox_due_at": "inbox",
    # outbox and cards
    "enqueue": "outbox",
    "due_outbox": "outbox",
    "newer_version_sent": "outbox",
    "mark_sent": "outbox",
    "retry_outbox_later": "outbox",
    "postpone_outbox": "outbox",
    "mark_failed": "outbox",
    "outbox_counts": "outbox",
    "next_outbox_due_at": "outbox",
    "posted_card": "outbox",
    "remember_card": "outbox",
    "card_destinations": "outbox",
    "forget_pending_card": "outbox",
    "forget_card": "outbox",
    "mark_card_pending": "outbox",
    "requeue_failed": "outbox",
    "failed_deliveries": "outbox",
    "delivered": "outbox",  # h12-digest: a delivery's writes in one transaction
    # settings and small named values
    "state": "settings",
    "set_state": "settings",
    "states_with_prefix": "settings",
    "posts_today": "settings",
    "count_post": "settings",
    "direct_chat": "settings",
    "remember_direct_chat": "settings",
    "user_settings": "settings",
    "save_settings": "settings",
    "remove_channel_everywhere": "settings",
    "set_opted_in": "settings",
    # AI jobs
    "save_ai_job": "ai_jobs",
    "ai_job": "ai_jobs",
    "ai_job_with_webhook_secret": "ai_jobs",
    "ai_jobs_of": "ai_jobs",
    "pending_ai_jobs": "ai_jobs",
    # RingCX
    "add_ringcx_segments": "ringcx",
    "due_ringcx_segments": "ringcx",
    "ringcx_segment": "ringcx",
    "finish_ringcx_segment": "ringcx",
    "retry_ringcx_segment": "ringcx",
    "ringcx_counts": "ringcx",
    # calls, next steps, search, skipped digests, rollups
    "save_call": "calls",
    "call_insights": "calls",
    "call_of_account": "calls",
    "calls_of": "calls",
    "call_by_ringsense_url": "calls",
    "save_feedback": "calls",
    "feedback_for": "calls",
    "first_time_seen": "calls",
    "save_next_steps": "calls",
    "open_next_steps": "calls",
    "next_step": "calls",
    "mark_next_step_done": "calls",
    "index_call": "calls",
    "search_calls": "calls",
    "rollup_candidates": "calls",
    "last_rollup_day": "calls",
    "set_last_rollup_day": "calls",
    "note_skipped_digest": "calls",
    "take_skipped_digests": "calls",
    # installs, subscriptions, connections
    "save_install": "accounts",
    "stored_installs": "accounts",
    "install_account": "accounts",
    "forget_account": "accounts",
    "_tables_with_account": "accounts",
    "add_connect_link": "accounts",
    "open_connect_link": "accounts",
    "take_connect_link": "accounts",
    "save_ringsense_connection": "accounts",
    "replace_ringsense_refresh_token": "accounts",
    "ringsense_connection": "accounts",
    "ringsense_connections": "accounts",
    "forget_ringsense_connection": "accounts",
    "subscriptions": "accounts",
    "save_subscription": "accounts",
    "_account_of_identity": "accounts",
    "forget_subscription": "accounts",
    # across every table
    "prune": "upkeep",
    "operational_levels": "upkeep",
}

TABLE_FAMILY: dict[str, str] = {
    "schema_version": "base",
    "inbox": "inbox",
    "outbox": "outbox",
    "posted_cards": "outbox",
    "user_settings": "settings",
    "user_channels": "settings",
    "direct_chats": "settings",
    "bot_state": "settings",
    "daily_posts": "settings",
    "calls": "calls",
    "call_participants": "calls",
    "feedback": "calls",
    "seen_submits": "calls",
    "next_steps": "calls",
    "call_search": "calls",
    "skipped_digests": "calls",
    "rollup_days": "calls",
    "installs": "accounts",
    "subscriptions": "accounts",
    "ringsense_connections": "accounts",
    "ringsense_connect_links": "accounts",
    "ai_jobs": "ai_jobs",
    "ringcx_segments": "ringcx",
}
TABLE_PREFIX_FAMILY: tuple[tuple[str, str], ...] = (
    ("call_", "calls"),
    ("transcript", "calls"),
    ("insight", "calls"),
    ("next_step", "calls"),
    ("rollup", "calls"),
    ("ringcx", "ringcx"),
    ("ai_job", "ai_jobs"),
)

NAME_RULES: tuple[tuple[str, str], ...] = (
    ("inbox", "inbox"),
    ("outbox", "outbox"),
    ("card", "outbox"),
    ("ringcx", "ringcx"),
    ("ai_job", "ai_jobs"),
    ("subscription", "accounts"),
    ("install", "accounts"),
    ("connect", "accounts"),
    ("settings", "settings"),
    ("next_step", "calls"),
    ("transcript", "calls"),
    ("rollup", "calls"),
    ("search", "calls"),
    ("skipped", "calls"),
    ("call", "calls"),
)

TOP_LEVEL_MODULE: dict[str, str] = {
    "MIGRATIONS": "migrations",
    "PRAGMAS": "base",
    "_split_statements": "base",
    "_prepare_private_file": "base",
    "_tighten_files": "base",
    "_settings_columns": "settings",
}

SQL_TABLE = re.compile(
    r"\b(?:FROM|INTO|UPDATE|JOIN|TABLE(?:\s+IF\s+(?:NOT\s+)?EXISTS)?)\s+([a-z_][a-z0-9_]*)",
    re.IGNORECASE,
)
SECTION_COMMENT = re.compile(r"^\s*# -- .*-+\s*$")
NOT_TABLES = frozenset({"select", "set", "where", "values", "pragma_table_info", "excluded"})


class SplitRefused(Exception):
    """The source cannot be split without guessing; the message says why."""


@dataclass
class Piece:
    """A slice of the source: a top-level definition or a method, with its comments."""

    name: str
    node: ast.stmt
    text: str
    home: str = ""
    uses: set[str] = field(default_factory=set)
    self_calls: set[str] = field(default_factory=set)


@dataclass
class Imported:
    module: str
    name: str | None  # None: `import module`
    asname: str | None

    @property
    def bound(self) -> str:
        return self.asname or (self.name if self.name else self.module.split(".")[0])


def _slice(lines: Sequence[str], node: ast.stmt, *, next_docstring: ast.stmt | None) -> str:
    """The node's lines, with its decorators, the comment lines right above it and (for
    a constant) the string documenting it on the next line."""
    decorators = getattr(node, "decorator_list", [])
    start = min([node.lineno, *(d.lineno for d in decorators)]) - 1
    while start > 0 and lines[start - 1].strip().startswith("#"):
        if SECTION_COMMENT.match(lines[start - 1]):
            break
        start -= 1
    end = node.end_lineno or node.lineno
    if next_docstring is not None:
        end = next_docstring.end_lineno or end
    return "".join(lines[start:end]).rstrip("\n") + "\n"


def _is_docstring(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def _names_used(node: ast.AST) -> set[str]:
    """Names read and not bound inside `node`: what its module must define or import."""
    read: set[str] = set()
    bound: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            (read if isinstance(sub.ctx, ast.Load) else bound).add(sub.id)
        elif isinstance(sub, ast.arg):
            bound.add(sub.arg)
        elif isinstance(sub, ast.ExceptHandler) and sub.name:
            bound.add(sub.name)
        elif isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if sub is not node:
                bound.add(sub.name)
    return read - bound


def _self_calls(node: ast.AST) -> set[str]:
    """Attributes read on `self` (methods called and fields read)."""
    return {
        sub.attr
        for sub in ast.walk(node)
        if isinstance(sub, ast.Attribute)
        and isinstance(sub.value, ast.Name)
        and sub.value.id in ("self", "storage", "cls")
    }


def _tables_named(node: ast.AST) -> set[str]:
    tables: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            for match in SQL_TABLE.finditer(sub.value):
                name = match.group(1).lower()
                if name not in NOT_TABLES:
                    tables.add(name)
    return tables


def _family_of_table(table: str) -> str | None:
    if table in TABLE_FAMILY:
        return TABLE_FAMILY[table]
    for prefix, family in TABLE_PREFIX_FAMILY:
        if table.startswith(prefix):
            return family
    return None


def _place_by_tables(tables: set[str]) -> str | None:
    families = {_family_of_table(t) for t in tables}
    if len(families) == 1 and None not in families:
        return families.pop()
    return None


def _place_by_name(name: str) -> str | None:
    for word, family in NAME_RULES:
        if word in name:
            return family
    return None


def _top_level_name(node: ast.stmt) -> str | None:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return node.name
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        target = node.targets[0]
        return target.id if isinstance(target, ast.Name) else None
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return node.target.id
    return None


class Splitter:
    def __init__(self, source: str) -> None:
        self.source = source
        self.lines = source.splitlines(keepends=True)
        self.tree = ast.parse(source)
        self.docstring = ast.get_docstring(self.tree) or ""
        self.imports: dict[str, Imported] = {}
        self.top: list[Piece] = []
        self.methods: list[Piece] = []
        self.storage_class: ast.ClassDef | None = None
        self.dropped_comments: list[str] = []

    # -- reading ---------------------------------------------------------------------

    def read(self) -> None:
        body = self.tree.body
        problems: list[str] = []
        for index, node in enumerate(body):
            if index == 0 and _is_docstring(node):
                continue
            if isinstance(node, ast.Import):
                for alias in node.names:
                    entry = Imported(alias.name, None, alias.asname)
                    self.imports[entry.bound] = entry
                continue
            if isinstance(node, ast.ImportFrom):
                if node.module == "__future__":
                    continue
                for alias in node.names:
                    entry = Imported(node.module or "", alias.name, alias.asname)
                    self.imports[entry.bound] = entry
                continue
            if _is_docstring(node):
                continue  # attached to the constant above it
            name = _top_level_name(node)
            if name is None:
                problems.append(f"line {node.lineno}: a top-level statement the split can't place")
                continue
            if isinstance(node, ast.ClassDef) and name == "Storage":
                self.storage_class = node
                continue
            following = body[index + 1] if index + 1 < len(body) else None
            doc = following if following is not None and _is_docstring(following) else None
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                doc = None
            self.top.append(
                Piece(
                    name, node, _slice(self.lines, node, next_docstring=doc), uses=_names_used(node)
                )
            )
        if self.storage_class is None:
            problems.append("no `class Storage` in the source")
        if problems:
            raise SplitRefused("\n".join(problems))
        assert self.storage_class is not None
        covered: set[int] = set()
        for node in self.storage_class.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                piece = Piece(
                    node.name,
                    node,
                    _slice(self.lines, node, next_docstring=None),
                    uses=_names_used(node),
                    self_calls=_self_calls(node),
                )
                self.methods.append(piece)
                first = piece.text.count("\n")
                end = node.end_lineno or node.lineno
                covered.update(range(end - first + 1, end + 1))
            elif index_is_docstring(node):
                covered.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
            else:
                problems.append(f"line {node.lineno}: class-level statement in Storage")
        # Comments between methods that belong to none: section headers are replaced by the
        # modules themselves; anything else is reported so that nothing is lost silently.
        for number in range(self.storage_class.body[0].lineno, self.storage_class.end_lineno or 0):
            text = self.lines[number - 1]
            if number not in covered and text.strip().startswith("#"):
                if not SECTION_COMMENT.match(text):
                    self.dropped_comments.append(f"line {number}: {text.strip()}")
        if problems:
            raise SplitRefused("\n".join(problems))

    # -- placing ---------------------------------------------------------------------

    def place(self) -> None:
        method_names = {m.name for m in self.methods}
        for method in self.methods:
            method.home = (
                METHOD_FAMILY.get(method.name)
                or _place_by_tables(_tables_named(method.node))
                or ("" if method.name.startswith("_") else _place_by_name(method.name))
                or ""
            )
        # Private helpers without a home go where their callers are, when those agree.
        changed = True
        while changed:
            changed = False
            for method in self.methods:
                if method.home or not method.name.startswith("_"):
                    continue
                callers = {m.home for m in self.methods if method.name in m.self_calls}
                if len(callers) == 1 and "" not in callers:
                    method.home = callers.pop()
                    changed = True
        unplaced = [m for m in self.methods if not m.home]
        if unplaced:
            lines = [
                f"  {m.name} (line {m.node.lineno}; tables: "
                f"{', '.join(sorted(_tables_named(m.node))) or 'none'})"
                for m in unplaced
            ]
            raise SplitRefused(
                "these methods of Storage have no family; add them to METHOD_FAMILY in "
                "tools/split_storage.py (or TABLE_FAMILY for a new table):\n" + "\n".join(lines)
            )
        home_of = {m.name: m.home for m in self.methods}
        problems: list[str] = []
        for method in self.methods:
            for called in method.self_calls & method_names:
                target = home_of[called]
                if called.startswith("_") and target not in (method.home, "base"):
                    problems.append(
                        f"  {method.name} ({method.home}) uses the private {called} ({target})"
                    )
        if problems:
            raise SplitRefused(
                "private methods used across families (make them public or place both "
                "in one family):\n" + "\n".join(problems)
            )
        self._place_top_level(home_of)

    def _place_top_level(self, home_of: dict[str, str]) -> None:
        records = {
            p.name
            for p in self.top
            if isinstance(p.node, ast.ClassDef)
            or (p.name.isupper() and TOP_LEVEL_MODULE.get(p.name) is None)
        }
        problems: list[str] = []
        by_users: list[Piece] = []
        for piece in self.top:
            if piece.name in TOP_LEVEL_MODULE:
                piece.home = TOP_LEVEL_MODULE[piece.name]
            elif piece.name == "log":
                piece.home = "*"  # every module that logs gets its own logger
            elif piece.name in records:
                piece.home = "records"
            elif isinstance(piece.node, ast.FunctionDef | ast.AsyncFunctionDef):
                if not piece.name.startswith("_"):
                    piece.home = "records"  # public helpers, shared by every backend
                else:
                    by_users.append(piece)
        # Private helpers (row converters included: they read SQLite rows) go where they
        # are used, to base when several families use them. A helper used by another
        # helper waits until that one is placed.
        progress = True
        while by_users and progress:
            progress = False
            for piece in list(by_users):
                user_pieces = [p for p in self.top if piece.name in p.uses and p is not piece]
                if any(p in by_users for p in user_pieces):
                    continue
                users = {m.home for m in self.methods if piece.name in m.uses}
                users |= {p.home for p in user_pieces}
                users.discard("")
                users.discard("*")
                if not users:
                    continue
                only = users.pop() if len(users) == 1 else "base"
                piece.home = "base" if only == COMPOSITION else only
                by_users.remove(piece)
                progress = True
        for piece in self.top:
            if not piece.home:
                problems.append(f"  {piece.name} (line {piece.node.lineno})")
        if problems:
            raise SplitRefused(
                "top-level definitions with no module; add them to TOP_LEVEL_MODULE:\n"
                + "\n".join(problems)
            )

    # -- writing ---------------------------------------------------------------------

    def modules(self) -> dict[str, str]:
        """Module name → text, not yet sorted by ruff (the caller runs it)."""
        defined: dict[str, str] = {p.name: p.home for p in self.top if p.home != "*"}
        texts: dict[str, str] = {}
        texts["records"] = self._module(
            "records",
            "Rows, constants and helpers shared by every storage backend (no SQL here).",
            [p for p in self.top if p.home == "records"],
            defined,
        )
        texts["migrations"] = self._module(
            "migrations",
            "The numbered SQLite migrations: each is applied once, in one transaction, and "
            "recorded in `schema_version`. Append new ones at the end; never edit or renumber.",
            [p for p in self.top if p.home == "migrations"],
            defined,
        )
        texts["interface"] = self._interface(defined)
        for key, family in FAMILIES.items():
            methods = [m for m in self.methods if m.home == key]
            texts[family.module] = self._family_module(key, family, methods, defined)
        texts["sqlite"] = self._composition(defined)
        texts["__init__"] = self._package_init()
        return texts

    def _public_names(self) -> list[str]:
        return [p.name for p in self.top if not p.name.startswith("_") and p.home != "*"]

    def _imports_for(
        self, module: str, used: set[str], defined: dict[str, str], local: set[str]
    ) -> list[str]:
        straight: dict[str, set[str]] = {}
        from_lines: dict[str, set[str]] = {}
        problems: list[str] = []
        for name in sorted(used - local):
            if name in self.imports:
                entry = self.imports[name]
                if entry.name is None:
                    straight.setdefault(entry.module, set()).add(
                        f"import {entry.module}" + (f" as {entry.asname}" if entry.asname else "")
                    )
                else:
                    alias = f"{entry.name} as {entry.asname}" if entry.asname else entry.name
                    from_lines.setdefault(entry.module, set()).add(alias)
            elif name in defined:
                if defined[name] != module:
                    from_lines.setdefault(f"bot.store.{defined[name]}", set()).add(name)
            elif name in ("log", "self", "cls") or hasattr(builtins, name):
                continue
            else:
                problems.append(f"  {name} (used in bot/store/{module}.py)")
        if problems:
            raise SplitRefused("names defined nowhere:\n" + "\n".join(sorted(problems)))
        out = [line for lines in straight.values() for line in lines]
        out += [
            f"from {mod} import {', '.join(sorted(names))}" for mod, names in from_lines.items()
        ]
        return out

    def _head(self, docstring: str, imports: Iterable[str], logs: bool) -> str:
        text = f'"""{_wrap(docstring, 0)}"""\n\nfrom __future__ import annotations\n\n'
        text += "\n".join(imports) + "\n"
        if logs:
            text += "\nlog = logging.getLogger(__name__)\n"
        return text

    def _module(
        self, module: str, docstring: str, pieces: list[Piece], defined: dict[str, str]
    ) -> str:
        used: set[str] = set().union(*(p.uses for p in pieces)) if pieces else set()
        local = {p.name for p in pieces}
        imports = self._imports_for(module, used, defined, local)
        logs = "log" in used
        if logs and "logging" not in "".join(imports):
            imports.append("import logging")
        body = _join_top_level(pieces)
        return self._head(docstring, imports, logs) + "\n\n" + body

    def _family_module(
        self, key: str, family: Family, methods: list[Piece], defined: dict[str, str]
    ) -> str:
        helpers = [p for p in self.top if p.home == key]
        used: set[str] = set().union(*(p.uses for p in [*methods, *helpers]))
        local = {p.name for p in helpers}
        protocols = self._protocols_needed(key, methods)
        if key != "base":
            used.add("StoreBase")
            defined = {**defined, "StoreBase": "base"}
        for protocol in protocols:
            defined = {**defined, protocol: "interface"}
            used.add(protocol)
        imports = self._imports_for(family.module, used, defined, local)
        logs = "log" in used
        if logs and not any(line == "import logging" for line in imports):
            imports.append("import logging")
        bases = ([] if key == "base" else ["StoreBase"]) + protocols
        class_doc = (
            f'    """The SQLite side of `{family.protocol}` (see bot/store/interface.py)."""\n'
        )
        head = (
            f"class {family.mixin}({', '.join(bases)}):\n"
            if bases
            else (f"class {family.mixin}:\n")
        )
        body = head + class_doc + "".join("\n" + m.text for m in methods)
        docstring = f"SQLite storage of {family.tables}."
        if key == "base":
            docstring = f"SQLite storage basics: {family.tables}."
        functions = ast.FunctionDef | ast.AsyncFunctionDef
        top_pieces = [p for p in helpers if not isinstance(p.node, functions)]
        tail_pieces = [p for p in helpers if isinstance(p.node, functions)]
        front = "".join(p.text + "\n" for p in top_pieces)
        tail = "".join("\n\n" + p.text for p in tail_pieces)
        return (
            self._head(docstring, imports, logs)
            + ("\n" + front if front else "")
            + "\n\n"
            + body
            + tail
        )

    def _protocols_needed(self, key: str, methods: list[Piece]) -> list[str]:
        """The interfaces of other families whose public methods this family calls, as
        bases of the mixin so that mypy knows them (the real methods come first in
        `Storage`'s method order, so these empty declarations are never what runs)."""
        home_of = {m.name: m.home for m in self.methods}
        needed: set[str] = set()
        for method in methods:
            for called in method.self_calls:
                target = home_of.get(called)
                if target and target not in (key, "base", COMPOSITION):
                    needed.add(FAMILIES[target].protocol)
        return sorted(needed)

    def _signature(self, piece: Piece) -> str:
        """The method's `def …:` line(s) as written, followed by ` ...`: the header ends at
        the first `:` outside brackets (comments before the body are not part of it)."""
        node = piece.node
        assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        # Decorators too: a property must stay a property in the protocol.
        start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        text = "".join(self.lines[start - 1 : node.body[0].lineno])
        depth = 0
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type != tokenize.OP:
                continue
            if token.string in "([{":
                depth += 1
            elif token.string in ")]}":
                depth -= 1
            elif token.string == ":" and depth == 0:
                row, col = token.end
                header = "".join(text.splitlines(keepends=True)[: row - 1])
                header += text.splitlines(keepends=True)[row - 1][:col]
                return header.rstrip() + " ...\n"
        raise SplitRefused(f"cannot read the signature of {piece.name}")

    def _public_fields(self) -> list[tuple[str, ast.expr]]:
        """Name and type of the public attributes `__init__` gives a store."""
        fields: list[tuple[str, ast.expr]] = []
        for method in self.methods:
            if method.name != "__init__":
                continue
            for sub in ast.walk(method.node):
                if (
                    isinstance(sub, ast.AnnAssign)
                    and isinstance(sub.target, ast.Attribute)
                    and isinstance(sub.target.value, ast.Name)
                    and sub.target.value.id == "self"
                    and not sub.target.attr.startswith("_")
                ):
                    fields.append((sub.target.attr, sub.annotation))
        return fields

    def _interface(self, defined: dict[str, str]) -> str:
        used: set[str] = {"Protocol"}
        classes: list[str] = []
        for key, family in FAMILIES.items():
            public = [m for m in self.methods if m.home == key and not m.name.startswith("_")]
            offers = _wrap(f"What every storage backend offers for {family.tables}.", 4)
            lines = [f"class {family.protocol}(Protocol):\n", f'    """{offers}"""\n']
            for method in public:
                node = method.node
                assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                if method.name == "__init__":
                    continue
                used |= _names_used(node.args)
                for decorator in node.decorator_list:
                    # `@name.setter` names the property itself, not something to import.
                    used |= _names_used(decorator) - {m.name for m in self.methods}
                if node.returns is not None:
                    used |= _names_used(node.returns)
                lines.append("\n" + self._signature(method))
            if key == "base":
                for attribute, annotation in self._public_fields():
                    lines.append(f"\n    {attribute}: {ast.unparse(annotation)}\n")
                    used |= _names_used(annotation)
            classes.append("".join(lines))
        protocols = ", ".join(f.protocol for f in FAMILIES.values())
        classes.append(
            f"class StorageInterface({protocols}, Protocol):\n"
            '    """Everything the bot asks of its storage, whichever the backend."""\n'
        )
        typing_names = {"Protocol"}
        imports = self._imports_for("interface", used - typing_names, defined, set())
        imports.append("from typing import Protocol")
        docstring = (
            "What the bot asks of its storage, one protocol per table family.\n\n"
            "Generated from the SQLite `Storage` by tools/split_storage.py; a second backend "
            "implements the same protocols, and code that only needs one family can ask for it."
        )
        return self._head(docstring, imports, False) + "\n\n" + "\n\n".join(classes)

    def _composition(self, defined: dict[str, str]) -> str:
        own = [m for m in self.methods if m.home == COMPOSITION]
        mixins = [f.mixin for k, f in FAMILIES.items() if k != "base"]
        used: set[str] = set().union(*(m.uses for m in own)) if own else set()
        used |= set(mixins) | {"StoreBase", "StorageInterface"}
        all_defined = {
            **defined,
            **{f.mixin: f.module for f in FAMILIES.values()},
            "StorageInterface": "interface",
        }
        imports = self._imports_for("sqlite", used - {"Storage"}, all_defined, {"Storage"})
        logs = "log" in used
        if logs:
            imports.append("import logging")
        bases = ",\n    ".join([*mixins, "StoreBase"])
        body = (
            f"class Storage(\n    {bases},\n):\n"
            '    """The SQLite storage: every table family\'s mixin over one connection."""\n'
            + "".join("\n" + m.text for m in own)
        )
        check = (
            "\n\ndef _implements_interface(storage: Storage) -> StorageInterface:\n"
            '    """Never called: mypy checks here that `Storage` offers all of '
            '`StorageInterface`."""\n'
            "    return storage\n"
        )
        docstring = (
            "`Storage`: the SQLite backend, composed of one mixin per table family.\n\n"
            f"{self.docstring}\n"
        )
        return self._head(docstring, imports, logs) + "\n\n" + body + check

    def _package_init(self) -> str:
        public = sorted([*self._public_names(), "Storage", "StorageInterface"])
        public += [f.protocol for f in FAMILIES.values()]
        public = sorted(set(public))
        where = {p.name: p.home for p in self.top}
        where.update({"Storage": "sqlite", "StorageInterface": "interface"})
        where.update({f.protocol: "interface" for f in FAMILIES.values()})
        by_module: dict[str, list[str]] = {}
        for name in public:
            by_module.setdefault(where[name], []).append(name)
        imports = [
            f"from bot.store.{module} import {', '.join(sorted(names))}"
            for module, names in by_module.items()
        ]
        listing = "".join(f'    "{name}",\n' for name in public)
        families = "".join(
            f"- `{f.module}.py`: {f.tables}.\n" for k, f in FAMILIES.items() if k != "base"
        )
        docstring = (
            "Storage, one module per table family.\n\n"
            "- `records.py`: rows and constants; `interface.py`: the protocols a backend "
            "implements;\n  `migrations.py`: the numbered SQLite migrations; `base.py`: "
            "connection and transactions;\n  `sqlite.py`: `Storage`, the composition.\n" + families
        )
        return self._head(docstring, imports, False) + f"\n__all__ = [\n{listing}]\n"

    def shim(self) -> str:
        """The new bot/storage.py: every public name of the old module, from the package."""
        names = sorted(set(self._public_names()) | {"Storage"})
        listing = "".join(f'    "{name}",\n' for name in names)
        return (
            '"""Where the storage used to live: it is now the package `bot.store` (one module\n'
            "per table family). Every public name is re-exported here so that\n"
            '`from bot.storage import X` keeps working."""\n\n'
            "from __future__ import annotations\n\n"
            f"from bot.store import {', '.join(names)}\n\n"
            f"__all__ = [\n{listing}]\n"
        )


def _join_top_level(pieces: Sequence[Piece]) -> str:
    """Top-level pieces as ruff would space them: two blank lines around a definition,
    one between plain assignments."""
    out = ""
    for previous, piece in zip([None, *pieces], pieces, strict=False):
        if previous is not None:
            plain = not isinstance(previous.node, ast.ClassDef | ast.FunctionDef) and (
                not isinstance(piece.node, ast.ClassDef | ast.FunctionDef)
            )
            out += "\n" if plain else "\n\n"
        out += piece.text
    return out


def _wrap(text: str, indent: int) -> str:
    """A generated docstring's text wrapped to the line length, paragraphs kept; lines
    starting with `-` are list items (continued with two spaces)."""
    width = 92 - indent
    out: list[str] = []
    for line in text.split("\n"):
        if not line.strip() or len(line) <= width:
            out.append(line)
            continue
        rest = "  " if line.lstrip().startswith("- ") else ""
        out.extend(textwrap.wrap(line, width=width, subsequent_indent=rest))
    joined = ("\n" + " " * indent).join(out)
    return joined + ("\n" + " " * indent if len(out) > 1 and not joined.endswith("\n") else "")


def index_is_docstring(node: ast.stmt) -> bool:
    return _is_docstring(node)


def split(root: Path, *, ruff: Sequence[str] | None = None) -> list[Path]:
    """Write bot/store/ and the new bot/storage.py under `root`; the files written."""
    source_path = root / "bot" / "storage.py"
    package = root / "bot" / "store"
    if package.exists():
        raise SplitRefused(f"{package} exists already: the split has been done (or half done)")
    splitter = Splitter(source_path.read_text(encoding="utf-8"))
    splitter.read()
    splitter.place()
    texts = splitter.modules()
    shim = splitter.shim()
    for comment in splitter.dropped_comments:
        print(f"note: comment not carried over, {comment}")
    package.mkdir()
    written: list[Path] = []
    for module, text in texts.items():
        path = package / f"{module}.py"
        path.write_text(text, encoding="utf-8")
        written.append(path)
    source_path.write_text(shim, encoding="utf-8")
    written.append(source_path)
    # Import order and the generated lines (imports, signatures) as ruff writes them; the
    # sliced code is already formatted, so ruff leaves it as it was.
    command = list(ruff) if ruff else [sys.executable, "-m", "ruff"]
    files = [str(p) for p in written]
    subprocess.run(  # noqa: S603 - our own file names
        [*command, "check", "--quiet", "--select", "I,F401,RUF022", "--fix", *files],
        cwd=root,
        check=True,
    )
    subprocess.run([*command, "format", "--quiet", *files], cwd=root, check=True)  # noqa: S603
    for module, family in FAMILIES.items():
        count = sum(1 for m in splitter.methods if m.home == module)
        print(f"bot/store/{family.module}.py: {family.mixin}, {count} methods")
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args(argv)
    try:
        split(args.root)
    except SplitRefused as refusal:
        print(f"split_storage: refused, nothing written.\n{refusal}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
