"""SQLite storage of people's settings and small named values: `user_settings`,
`user_channels`, `direct_chats`, `bot_state`, `daily_posts`.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import orjson

from bot.settings import Channel, UserSettings
from bot.store.base import (
    StoreBase,
    _compact_json,
    _replace_search_lines,
    _write_call,
    _write_next_steps,
)
from bot.store.records import OutboxItem, QueuedDelivery, SearchLine, StoredCall
from bot.store.rows import user_settings_of


class SqliteSettings(StoreBase):
    """The SQLite side of `SettingsStore` (see bot/store/interface.py)."""

    async def state(self, key: str) -> str | None:
        async with self._db.execute("SELECT value FROM bot_state WHERE key = ?", (key,)) as cur:
            row = await cur.fetchone()
        return str(row[0]) if row else None

    async def set_state(self, key: str, value: str) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO bot_state (key, value, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
                "updated_at = excluded.updated_at",
                (key, value, time.time()),
            )

    async def states_with_prefix(self, prefix: str) -> dict[str, str]:
        """Every named value whose key starts with `prefix` (taken literally)."""
        async with self._db.execute(
            "SELECT key, value FROM bot_state WHERE substr(key, 1, ?) = ?", (len(prefix), prefix)
        ) as cursor:
            return {str(r[0]): str(r[1]) for r in await cursor.fetchall()}

    async def posts_today(self, account_id: str, day: str) -> int:
        async with self._db.execute(
            "SELECT count FROM daily_posts WHERE account_id = ? AND day = ?", (account_id, day)
        ) as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def count_post(self, account_id: str, day: str) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO daily_posts (account_id, day, count) VALUES (?, ?, 1) "
                "ON CONFLICT (account_id, day) DO UPDATE SET count = count + 1",
                (account_id, day),
            )

    async def direct_chat(self, extension_id: str) -> str | None:
        async with self._db.execute(
            "SELECT chat_id FROM direct_chats WHERE extension_id = ?", (extension_id,)
        ) as cursor:
            row = await cursor.fetchone()
        return str(row[0]) if row else None

    async def remember_direct_chat(
        self, extension_id: str, chat_id: str, account_id: str | None = None
    ) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO direct_chats (extension_id, chat_id, account_id) VALUES (?, ?, ?) "
                "ON CONFLICT (extension_id) DO UPDATE SET chat_id = excluded.chat_id, "
                "account_id = excluded.account_id",
                (extension_id, chat_id, account_id),
            )

    async def user_settings(self, extension_id: str) -> UserSettings:
        """A person's settings with their channels: both read in one trip to the
        connection's thread (every digest reads its owner's)."""

        def read(db: sqlite3.Connection) -> tuple[Any, list[Any]]:
            # Every row read to its end: no statement is left open (bot/db_connection.py).
            found = db.execute(
                "SELECT * FROM user_settings WHERE extension_id = ?", (extension_id,)
            ).fetchall()
            row = found[0] if found else None
            channels = db.execute(
                "SELECT chat_id, chat_name, enabled FROM user_channels WHERE extension_id = ? "
                "ORDER BY added_at, chat_id",
                (extension_id,),
            ).fetchall()
            return row, channels

        row, rows = await self._db._execute(read, self._db._conn)  # type: ignore[no-untyped-call]
        channels = tuple(Channel(r["chat_id"], r["chat_name"], bool(r["enabled"])) for r in rows)
        return user_settings_of(extension_id, row, channels)

    async def save_settings(
        self, settings: UserSettings, *, before: UserSettings | None = None
    ) -> None:
        """Store a person's settings in one transaction.

        With `before` (what the change was made from), only the fields and channels that
        differ from it are written, so two changes one person makes at the same time in
        two chats (`optin` here, `channel add` there; Save on the settings card and
        `pause`) both survive. Without it, every field and channel is replaced.
        """
        columns = _settings_columns(settings)
        async with self._transaction() as db:
            if before is None:
                changed = columns
                baseline = columns
            else:
                baseline = _settings_columns(before)
                changed = {k: v for k, v in columns.items() if baseline[k] != v}
            names = ", ".join(baseline)
            marks = ", ".join("?" for _ in baseline)
            # Only fixed column names from _settings_columns are interpolated.
            await db.execute(
                f"INSERT INTO user_settings (extension_id, {names}, updated_at) "  # noqa: S608
                f"VALUES (?, {marks}, ?) ON CONFLICT (extension_id) DO NOTHING",
                (settings.extension_id, *baseline.values(), time.time()),
            )
            assignments = "".join(f"{name} = ?, " for name in changed)
            await db.execute(
                f"UPDATE user_settings SET {assignments}updated_at = ? "  # noqa: S608
                "WHERE extension_id = ?",
                (*changed.values(), time.time(), settings.extension_id),
            )
            if before is None:
                await db.execute(
                    "DELETE FROM user_channels WHERE extension_id = ?", (settings.extension_id,)
                )
                earlier: dict[str, Channel] = {}
            else:
                earlier = {c.chat_id: c for c in before.channels}
            now = {c.chat_id for c in settings.channels}
            for chat_id in earlier.keys() - now:
                await db.execute(
                    "DELETE FROM user_channels WHERE extension_id = ? AND chat_id = ?",
                    (settings.extension_id, chat_id),
                )
            for order, channel in enumerate(settings.channels):
                if earlier.get(channel.chat_id) == channel:
                    continue
                await db.execute(
                    "INSERT INTO user_channels (extension_id, chat_id, chat_name, enabled, "
                    "added_at, account_id) VALUES (?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (extension_id, chat_id) DO UPDATE SET "
                    "chat_name = excluded.chat_name, enabled = excluded.enabled",
                    (
                        settings.extension_id,
                        channel.chat_id,
                        channel.name,
                        int(channel.enabled),
                        time.time() + order * 1e-6,
                        settings.account_id,
                    ),
                )

    async def remove_channel_everywhere(self, chat_id: str) -> int:
        """The bot left a chat: nobody's digests can go there any more."""
        async with self._transaction() as db:
            cursor = await db.execute("DELETE FROM user_channels WHERE chat_id = ?", (chat_id,))
            return cursor.rowcount

    async def set_opted_in(self, extension_id: str, opted_in: bool) -> None:
        current = await self.user_settings(extension_id)
        await self.save_settings(replace(current, opted_in=opted_in), before=current)

    async def record_digest(
        self,
        call: StoredCall | None,
        deliveries: Sequence[QueuedDelivery],
        states: Mapping[str, str] | None = None,
        *,
        next_steps: Sequence[tuple[str, str, str | None]] | None = None,
        search_lines: Sequence[SearchLine] | None = None,
        finished_inbox_id: int | None = None,
    ) -> int:
        """A digest's writes in one transaction: the call with its participants and
        transcript, its next steps as to-do items and its lines in `find`'s index (when
        given: `call` must then have an account), every delivery it queued, small named
        values (when RingSense notifications last arrived), and the inbox row it came
        from marked done (`finished_inbox_id`). Either all of it is stored or none of it,
        so a crash in between leaves nothing half done for the retry. Returns deliveries
        newly queued, which are handed to the delivery worker in memory once committed
        (`on_outbox_queued`, as `enqueue` does: `record_digest_hands_over`).

        The search lines' transcript lines are indexed only when the transcript `call`
        carries is the one kept (no later one was stored); else the transcript lines
        already indexed stay, with the new lines of every other kind."""
        if call is None and not deliveries and not states and finished_inbox_id is None:
            return 0
        # Everything encoded here, on the loop; the thread only runs SQL.
        outbox_rows = _outbox_rows(deliveries)
        state_rows = [(key, value, time.time()) for key, value in (states or {}).items()]

        def write(db: sqlite3.Connection) -> list[tuple[int, tuple[Any, ...]]]:
            if call is not None:
                transcript_kept = _write_call(db, call)
                if call.account_id is not None:
                    if next_steps is not None:
                        _write_next_steps(db, call.call_key, call.account_id, next_steps)
                    if search_lines is not None:
                        _replace_search_lines(
                            db,
                            call.call_key,
                            call.account_id,
                            search_lines,
                            with_transcript=transcript_kept
                            or not _has_transcript(db, call.call_key),
                        )
            queued: list[tuple[int, tuple[Any, ...]]] = []
            for outbox_row in outbox_rows:
                inserted = db.execute(
                    "INSERT OR IGNORE INTO outbox (dedupe_key, destination, message, card_key, "
                    "account_id, created_at, priority) VALUES (?, ?, ?, ?, ?, ?, ?) "
                    "RETURNING id",
                    outbox_row,
                ).fetchall()
                if inserted:
                    queued.append((int(inserted[0][0]), outbox_row))
            if state_rows:
                db.executemany(
                    "INSERT INTO bot_state (key, value, updated_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
                    "updated_at = excluded.updated_at",
                    state_rows,
                )
            if finished_inbox_id is not None:
                db.execute(
                    "UPDATE inbox SET status = 'done', last_error = NULL, "
                    "attempts = attempts + 1 WHERE id = ?",
                    (finished_inbox_id,),
                )
            return queued

        queued = await self._in_one_trip(write)
        for item_id, (dedupe_key, destination, message, card_key, account, _, priority) in queued:
            # Exactly what a read from the database would give (as `enqueue`).
            self.on_outbox_queued(
                OutboxItem(
                    item_id,
                    dedupe_key,
                    orjson.loads(destination),
                    orjson.loads(message),
                    card_key,
                    0,
                    account,
                    priority,
                )
            )
        return len(queued)


def _has_transcript(db: sqlite3.Connection, call_key: str) -> bool:
    found = db.execute("SELECT 1 FROM call_transcripts WHERE call_key = ?", (call_key,))
    return found.fetchone() is not None


def _outbox_rows(deliveries: Sequence[QueuedDelivery]) -> list[tuple[Any, ...]]:
    """Outbox rows of the deliveries a handler queued (`INSERT OR IGNORE`: a delivery
    queued before stays as it is)."""
    now = time.time()
    return [
        (
            d.dedupe_key,
            json.dumps(d.destination, separators=(",", ":")),
            _compact_json(d.message),
            d.card_key,
            d.account_id,
            now,
            d.priority,
        )
        for d in deliveries
    ]


def _settings_columns(settings: UserSettings) -> dict[str, Any]:
    """The `user_settings` columns (but the key and `updated_at`) as stored."""
    return {
        "account_id": settings.account_id,
        "opted_in": int(settings.opted_in),
        "timezone": settings.timezone,
        "direct_messages": int(settings.direct_messages),
        "sections": json.dumps(list(settings.sections)),
        "directions": json.dumps(sorted(settings.directions)),
        "internal_calls": int(settings.internal_calls),
        "external_calls": int(settings.external_calls),
        "min_duration_s": settings.min_duration_s,
        "min_ai_score": settings.min_ai_score,
        "external_to_channels": int(settings.external_to_channels),
        "paused_until": settings.paused_until.isoformat() if settings.paused_until else None,
        "digest_scope": settings.digest_scope,
        "rollup_time": settings.rollup_time or "off",
    }
