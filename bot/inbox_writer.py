"""The inbox's own writer: every notification row is committed here, in batches.

Why a writer of its own: the webhook must answer RingCentral within 3 s (we aim for
milliseconds), and "stored before the 200" means the answer waits for a commit. On the
storage's shared connection that commit queued behind whatever the workers had sent
first (a digest's statements, a retention sweep), so one slow digest delayed every ack.
Here one task takes the rows waiting in memory and commits them together (group commit)
on a connection and a thread nobody else uses; a request awaits only its own row's commit.

Durability is decided here, not inherited: WAL with `synchronous=NORMAL`. A commit is in
the WAL file (written to the operating system) before a notification is acknowledged, so
an acknowledged notification survives the process crashing or being killed. The WAL is
synced to the disk by checkpoints, which run on the workers' connection within
`CHECKPOINT_EVERY_S` of a commit (`Storage.checkpoint`), never on this one
(`wal_autocheckpoint=0`): an ack never waits for an fsync. A power cut or kernel crash can
lose what was acknowledged in the last second or so. `synchronous=FULL` (an fsync per
batch) was measured: on this machine's disk an fsync takes 0.2 ms typically but 5-70 ms at
its 99th percentile when the disk is shared, which alone breaks a 10 ms ack.

Ids: every row gets an id above the largest one stored when the writer opened (the
watermark), so the inbox worker can tell rows handed to it in memory by this process
(above the watermark, first attempt) from rows left by an earlier one (at or below it).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
# The rows themselves, at DEBUG, only with `--log-content` (bot/logs.py CONTENT_LOGGERS).
content_log = logging.getLogger(__name__ + ".content")

BATCH_MAX = 500
"""Rows per transaction at most (SQLite allows 32,766 parameters; 7 per row)."""

WRITER_PRAGMAS = (
    "PRAGMA secure_delete=ON",
    "PRAGMA journal_mode=WAL",
    # A commit reaches the WAL (the operating system) before the ack; checkpoints sync it.
    "PRAGMA synchronous=NORMAL",
    # Never checkpoint on the ack path; the workers' connection does it.
    "PRAGMA wal_autocheckpoint=0",
    "PRAGMA busy_timeout=5000",
)


@dataclass(frozen=True)
class InboxRow:
    """One notification to store: `payload` is the JSON text exactly as it will be kept
    (for a webhook, the body as received)."""

    uuid: str
    kind: str
    payload: str
    received_at: float
    account_id: str | None
    # For RingSense insights, the recording the notification is about (catch-up asks
    # whether it was handled), kept in a column of its own.
    source_record_id: str | None = None
    # The same document already parsed (handed to the worker, so nobody parses it again).
    parsed: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Committed:
    """A row this writer committed (not a duplicate), with the id it got."""

    id: int
    row: InboxRow


class InboxWriter:
    def __init__(
        self,
        connection: sqlite3.Connection,
        executor: ThreadPoolExecutor,
        watermark: int,
    ) -> None:
        self._connection = connection
        self._executor = executor
        self.watermark = watermark
        self._waiting: list[tuple[InboxRow, asyncio.Future[int | None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._closed = False
        self.on_committed: Callable[[Sequence[Committed]], None] = lambda _rows: None
        # Called after every batch: something is in the WAL that a checkpoint should sync.
        self.on_batch_committed: Callable[[], None] = lambda: None

    @classmethod
    async def open(cls, path: Path) -> InboxWriter:
        """Open the writer's connection (in its own thread) on an existing database whose
        inbox table the migrations have created."""
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inbox-writer")

        def connect() -> tuple[sqlite3.Connection, int]:
            connection = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            for pragma in WRITER_PRAGMAS:
                connection.execute(pragma)
            (largest,) = connection.execute("SELECT COALESCE(MAX(id), 0) FROM inbox").fetchone()
            return connection, int(largest)

        loop = asyncio.get_running_loop()
        try:
            connection, watermark = await loop.run_in_executor(executor, connect)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(connection, executor, watermark)

    async def add(self, row: InboxRow) -> int | None:
        """Store `row`; its new id once committed, or None when its uuid was stored before.

        Raises what SQLite raised when this row (alone) could not be stored."""
        if self._closed:
            raise RuntimeError("the inbox writer is closed")
        future: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._waiting.append((row, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="inbox-writer")
        return await future

    async def close(self) -> None:
        """Commit what is waiting, then close the connection."""
        self._closed = True
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._connection.close)
        self._executor.shutdown(wait=True)

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiting:
            batch = self._waiting[:BATCH_MAX]
            del self._waiting[:BATCH_MAX]
            rows = [row for row, _ in batch]
            try:
                outcomes = await loop.run_in_executor(self._executor, self._commit, rows)
            except Exception as err:  # the thread itself failed: nothing was stored
                outcomes = [err] * len(rows)
            committed: list[Committed] = []
            for (row, future), outcome in zip(batch, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    if not future.done():
                        future.set_exception(outcome)
                    continue
                if outcome is not None:
                    committed.append(Committed(outcome, row))
                if not future.done():
                    future.set_result(outcome)
            if committed:
                try:
                    self.on_committed(committed)
                except Exception:
                    log.exception("inbox writer: handing committed rows over failed")
            if committed:
                self.on_batch_committed()

    # -- in the writer's thread -------------------------------------------------------

    def _commit(self, rows: Sequence[InboxRow]) -> list[int | BaseException | None]:
        if content_log.isEnabledFor(logging.DEBUG):
            for row in rows:
                content_log.debug("inbox row %r (%s): %s", row.uuid, row.kind, row.payload)
        return self._commit_batch(rows)

    def _commit_batch(self, rows: Sequence[InboxRow]) -> list[int | BaseException | None]:
        """Commit `rows` in one transaction; per row its id, None (a duplicate uuid) or
        the error that kept it out. A row SQLite will not take must not fail the rows
        committed with it: then they are stored one by one."""
        try:
            return self._insert(rows)
        except Exception:  # sqlite3.Error, or a value it cannot bind (UnicodeEncodeError)
            if len(rows) == 1:
                return [self._insert_alone(rows[0])]
            return [self._insert_alone(row) for row in rows]

    def _insert_alone(self, row: InboxRow) -> int | BaseException | None:
        try:
            return self._insert([row])[0]
        except Exception as err:
            return err

    def _insert(self, rows: Sequence[InboxRow]) -> list[int | BaseException | None]:
        connection = self._connection
        connection.execute("BEGIN IMMEDIATE")
        try:
            (largest,) = connection.execute("SELECT COALESCE(MAX(id), 0) FROM inbox").fetchone()
            first_id = max(int(largest), self.watermark) + 1
            values = ", ".join("(?, ?, ?, ?, ?, ?, ?)" for _ in rows)
            params: list[Any] = []
            for number, row in enumerate(rows):
                params.extend((first_id + number, row.uuid, row.kind, row.payload, row.received_at))
                params.extend((row.account_id, row.source_record_id))
            # Only "?" placeholders are interpolated. A uuid stored before (or twice in
            # this batch) is kept once: the first row wins.
            inserted = dict(
                connection.execute(
                    "INSERT INTO inbox (id, uuid, kind, payload, received_at, account_id, "  # noqa: S608
                    f"source_record_id) VALUES {values} "
                    "ON CONFLICT (uuid) DO NOTHING RETURNING uuid, id",
                    params,
                ).fetchall()
            )
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        outcomes: list[int | BaseException | None] = []
        for row in rows:
            outcomes.append(inserted.pop(row.uuid, None))
        return outcomes
