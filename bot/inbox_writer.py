"""The inbox's own writer: every notification row is committed here, in batches.

Why a writer of its own: the webhook must answer RingCentral within 3 s (we aim for
milliseconds), and "stored before the 200" means the answer waits for a commit. On the
storage's shared connection that commit queued behind whatever the workers had sent
first (a digest's statements, a retention sweep), so one slow digest delayed every ack.
Here the rows waiting in memory are committed together (group commit) on a connection and
a thread nobody else uses; a request awaits only the commit of its own batch.

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
import queue
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
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
    """Commits inbox rows on a thread and a connection of its own, in batches.

    Requests wait in `_waiting` (touched by the event loop only). One batch at a time is
    with the thread; when it is committed the thread wakes the loop once for the whole
    batch (`call_soon_threadsafe`), which answers its requests, hands the committed rows
    to the workers together, and sends what arrived meanwhile as the next batch. Per batch
    that is one hand-off to the thread and one wake-up of the loop, per request one
    future; no task or executor work item (their bookkeeping showed in profiles).
    """

    def __init__(
        self,
        connection: sqlite3.Connection,
        watermark: int,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._connection = connection
        self._loop = loop
        self.watermark = watermark
        self._waiting: list[tuple[InboxRow, asyncio.Future[int | None]]] = []
        # The batch the thread is committing (None: the thread is idle).
        self._sent: list[tuple[InboxRow, asyncio.Future[int | None]]] | None = None
        self._send_scheduled = False
        self._closed = False
        self._drained = asyncio.Event()
        self._drained.set()
        self._batches: queue.SimpleQueue[list[InboxRow] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="inbox-writer", daemon=True)
        self._thread.start()
        self.on_committed: Callable[[Sequence[Committed]], None] = lambda _rows: None
        # Called after every batch: something is in the WAL that a checkpoint should sync.
        self.on_batch_committed: Callable[[], None] = lambda: None

    @classmethod
    async def open(cls, path: Path) -> InboxWriter:
        """Open the writer's connection (in a thread: it may wait for a lock) on an existing
        database whose inbox table the migrations have created."""

        def connect() -> tuple[sqlite3.Connection, int]:
            connection = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            try:
                for pragma in WRITER_PRAGMAS:
                    connection.execute(pragma)
                (largest,) = connection.execute("SELECT COALESCE(MAX(id), 0) FROM inbox").fetchone()
            except BaseException:
                connection.close()
                raise
            return connection, int(largest)

        connection, watermark = await asyncio.to_thread(connect)
        return cls(connection, watermark, asyncio.get_running_loop())

    async def add(self, row: InboxRow) -> int | None:
        """Store `row`; its new id once committed, or None when its uuid was stored before.

        Raises what SQLite raised when this row (alone) could not be stored."""
        if self._closed:
            raise RuntimeError("the inbox writer is closed")
        future: asyncio.Future[int | None] = self._loop.create_future()
        self._waiting.append((row, future))
        if self._sent is None and not self._send_scheduled:
            # Sent at the loop's next turn, so the requests read in this turn go together.
            self._send_scheduled = True
            self._drained.clear()
            self._loop.call_soon(self._send_next)
        return await future

    async def close(self) -> None:
        """Commit what is waiting, then close the connection."""
        self._closed = True
        await self._drained.wait()
        self._batches.put(None)
        await asyncio.to_thread(self._thread.join)

    # -- on the event loop ------------------------------------------------------------

    def _send_next(self) -> None:
        self._send_scheduled = False
        if self._sent is not None:
            return
        if not self._waiting:
            self._drained.set()
            return
        batch = self._waiting[:BATCH_MAX]
        del self._waiting[:BATCH_MAX]
        self._sent = batch
        self._batches.put([row for row, _ in batch])

    def _settle(self, outcomes: Sequence[int | BaseException | None]) -> None:
        """The thread committed the batch sent: answer its requests, send the next one,
        hand the committed rows over."""
        batch, self._sent = self._sent, None
        assert batch is not None
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
        self._send_next()
        if committed:
            try:
                self.on_committed(committed)
            except Exception:
                log.exception("inbox writer: handing committed rows over failed")
            self.on_batch_committed()

    # -- in the writer's thread -------------------------------------------------------

    def _run(self) -> None:
        try:
            while (rows := self._batches.get()) is not None:
                outcomes: list[int | BaseException | None]
                try:
                    outcomes = self._commit(rows)
                except Exception as err:  # nothing was stored
                    outcomes = [err] * len(rows)
                try:
                    self._loop.call_soon_threadsafe(self._settle, outcomes)
                except RuntimeError:  # the loop is closed: nobody waits any more
                    return
        finally:
            self._connection.close()

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
