"""PostgreSQL storage: user_settings, user_channels, direct_chats, bot_state, daily_posts.

The same behaviour as the SQLite mixin (bot/store/settings.py). Several replicas may
change one person's settings at once (`optin` in one chat, `channel add` in another):
each change writes only what it changed, under the row's lock, so both survive.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from bot.settings import Channel, UserSettings
from bot.store.base import _json_text
from bot.store.postgres.base import PgStoreBase
from bot.store.postgres.calls import replace_search_lines, write_call, write_next_steps
from bot.store.postgres.claims import CHANNELS
from bot.store.records import QueuedDelivery, SearchLine, StoredCall, destination_key
from bot.store.rows import user_settings_of
from bot.store.settings import _settings_columns


class PgSettings(PgStoreBase):
    """The PostgreSQL side of `SettingsStore` (see bot/store/interface.py)."""

    async def state(self, key: str) -> str | None:
        value = await self._pool.fetchval("SELECT value FROM bot_state WHERE key = $1", key)
        return str(value) if value is not None else None

    async def set_state(self, key: str, value: str) -> None:
        await self._pool.execute(
            "INSERT INTO bot_state (key, value, updated_at) VALUES ($1, $2, $3) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
            "updated_at = excluded.updated_at",
            key,
            value,
            time.time(),
        )

    async def states_with_prefix(self, prefix: str) -> dict[str, str]:
        """Every named value whose key starts with `prefix` (taken literally: no LIKE, so
        `%` and `_` in it are just characters)."""
        rows = await self._pool.fetch(
            "SELECT key, value FROM bot_state WHERE starts_with(key, $1)", prefix
        )
        return {str(r["key"]): str(r["value"]) for r in rows}

    async def posts_today(self, account_id: str, day: str) -> int:
        count = await self._pool.fetchval(
            "SELECT count FROM daily_posts WHERE account_id = $1 AND day = $2", account_id, day
        )
        return int(count) if count is not None else 0

    async def count_post(self, account_id: str, day: str) -> None:
        await self._pool.execute(
            "INSERT INTO daily_posts (account_id, day, count) VALUES ($1, $2, 1) "
            "ON CONFLICT (account_id, day) DO UPDATE SET count = daily_posts.count + 1",
            account_id,
            day,
        )

    async def direct_chat(self, extension_id: str) -> str | None:
        chat_id = await self._pool.fetchval(
            "SELECT chat_id FROM direct_chats WHERE extension_id = $1", extension_id
        )
        return str(chat_id) if chat_id is not None else None

    async def remember_direct_chat(
        self, extension_id: str, chat_id: str, account_id: str | None = None
    ) -> None:
        await self._pool.execute(
            "INSERT INTO direct_chats (extension_id, chat_id, account_id) VALUES ($1, $2, $3) "
            "ON CONFLICT (extension_id) DO UPDATE SET chat_id = excluded.chat_id, "
            "account_id = excluded.account_id",
            extension_id,
            chat_id,
            account_id,
        )

    async def user_settings(self, extension_id: str) -> UserSettings:
        # One snapshot for the row and its channels (a change committed in between by
        # another replica is seen whole or not at all).
        async with (
            self._pool.acquire() as connection,
            connection.transaction(isolation="repeatable_read", readonly=True),
        ):
            row = await connection.fetchrow(
                "SELECT * FROM user_settings WHERE extension_id = $1", extension_id
            )
            channel_rows = await connection.fetch(
                "SELECT chat_id, chat_name, enabled FROM user_channels WHERE extension_id = $1 "
                "ORDER BY added_at, chat_id",
                extension_id,
            )
        channels = tuple(
            Channel(r["chat_id"], r["chat_name"], bool(r["enabled"])) for r in channel_rows
        )
        return user_settings_of(extension_id, row, channels)

    async def save_settings(
        self, settings: UserSettings, *, before: UserSettings | None = None
    ) -> None:
        """Store a person's settings in one transaction.

        With `before` (what the change was made from), only the fields and channels that
        differ from it are written, so two changes one person makes at the same time in
        two chats (`optin` here, `channel add` there; Save on the settings card and
        `pause`), on one replica or two, both survive. Without it, every field and channel
        is replaced.
        """
        columns = _settings_columns(settings)
        if columns["min_ai_score"] is not None:
            columns["min_ai_score"] = float(columns["min_ai_score"])
        if before is None:
            changed = columns
            baseline = columns
        else:
            baseline = _settings_columns(before)
            if baseline["min_ai_score"] is not None:
                baseline["min_ai_score"] = float(baseline["min_ai_score"])
            changed = {k: v for k, v in columns.items() if baseline[k] != v}
        async with self._transaction() as connection:
            names = ", ".join(baseline)
            marks = ", ".join(f"${n}" for n in range(2, len(baseline) + 2))
            # Only fixed column names from _settings_columns and placeholders are
            # interpolated.
            await connection.execute(
                f"INSERT INTO user_settings (extension_id, {names}, updated_at) "  # noqa: S608
                f"VALUES ($1, {marks}, ${len(baseline) + 2}) "
                "ON CONFLICT (extension_id) DO NOTHING",
                settings.extension_id,
                *baseline.values(),
                time.time(),
            )
            # The row is locked from here on: a change from another replica waits.
            assignments = "".join(f"{name} = ${n}, " for n, name in enumerate(changed, start=3))
            await connection.execute(
                f"UPDATE user_settings SET {assignments}updated_at = $2 "  # noqa: S608
                "WHERE extension_id = $1",
                settings.extension_id,
                time.time(),
                *changed.values(),
            )
            if before is None:
                await connection.execute(
                    "DELETE FROM user_channels WHERE extension_id = $1", settings.extension_id
                )
                earlier: dict[str, Channel] = {}
            else:
                earlier = {c.chat_id: c for c in before.channels}
            now = {c.chat_id for c in settings.channels}
            for chat_id in earlier.keys() - now:
                await connection.execute(
                    "DELETE FROM user_channels WHERE extension_id = $1 AND chat_id = $2",
                    settings.extension_id,
                    chat_id,
                )
            for order, channel in enumerate(settings.channels):
                if earlier.get(channel.chat_id) == channel:
                    continue
                await connection.execute(
                    "INSERT INTO user_channels (extension_id, chat_id, chat_name, enabled, "
                    "added_at, account_id) VALUES ($1, $2, $3, $4, $5, $6) "
                    "ON CONFLICT (extension_id, chat_id) DO UPDATE SET "
                    "chat_name = excluded.chat_name, enabled = excluded.enabled",
                    settings.extension_id,
                    channel.chat_id,
                    channel.name.replace("\x00", ""),
                    int(channel.enabled),
                    time.time() + order * 1e-6,
                    settings.account_id,
                )

    async def remove_channel_everywhere(self, chat_id: str) -> int:
        """The bot left a chat: nobody's digests can go there any more."""
        removed = await self._pool.fetch(
            "DELETE FROM user_channels WHERE chat_id = $1 RETURNING extension_id", chat_id
        )
        return len(removed)

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
        given, for a call of an account), every delivery it queued, small named values
        (when RingSense notifications last arrived), and the inbox row it came from marked
        done (`finished_inbox_id`, only while this replica still holds it). Either all of
        it is stored or none of it, so a crash in between leaves nothing half done for the
        retry. Returns deliveries newly queued (a delivery another replica queued first is
        not counted).

        The search lines' transcript lines are indexed only when the transcript `call`
        carries is the one kept (no later one was stored); else the transcript lines
        already indexed stay, with the new lines of every other kind."""
        if call is None and not deliveries and not states and finished_inbox_id is None:
            return 0
        async with self._transaction() as connection:
            if call is not None:
                transcript_kept = await write_call(connection, call)
                if call.account_id is not None:
                    if next_steps is not None:
                        await write_next_steps(
                            connection, call.call_key, call.account_id, next_steps
                        )
                    if search_lines is not None:
                        has_transcript = await connection.fetchval(
                            "SELECT EXISTS (SELECT 1 FROM call_transcripts WHERE call_key = $1)",
                            call.call_key,
                        )
                        await replace_search_lines(
                            connection,
                            call.call_key,
                            call.account_id,
                            search_lines,
                            with_transcript=transcript_kept or not has_transcript,
                        )
            queued = await _write_deliveries(connection, deliveries)
            if states:
                now = time.time()
                await connection.executemany(
                    "INSERT INTO bot_state (key, value, updated_at) VALUES ($1, $2, $3) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
                    "updated_at = excluded.updated_at",
                    [(key, value, now) for key, value in states.items()],
                )
            if finished_inbox_id is not None:
                # Fenced like every finish: a replica whose claim lapsed (another took the
                # row over) leaves the row to its new holder. Rows of the same call waiting
                # behind it are the other replicas' to take at once: they hear at commit.
                waiting = await connection.fetchval(
                    "WITH changed AS (UPDATE inbox SET status = 'done', last_error = NULL, "
                    "attempts = attempts + 1, claimed_by = NULL, lease_until = NULL "
                    "WHERE id = $1 AND status = 'pending' "
                    "AND (claimed_by IS NULL OR claimed_by = $2) RETURNING id, order_key) "
                    "SELECT EXISTS (SELECT 1 FROM inbox AS n, changed "
                    "WHERE n.order_key = changed.order_key AND n.status = 'pending' "
                    "AND n.id > changed.id)",
                    finished_inbox_id,
                    self.replica_id,
                )
                if waiting:
                    await connection.execute("SELECT pg_notify($1, '')", CHANNELS["inbox"])
        return queued


async def _write_deliveries(connection: Any, deliveries: Sequence[QueuedDelivery]) -> int:
    """Queue deliveries in one statement; how many were new (the rest were queued before,
    on this replica or another). Each row's line (`order_key`) is its destination, so
    replies to one chat keep their order across replicas."""
    if not deliveries:
        return 0
    # The destination's text is compared by `newer_version_sent`: encoded as SQLite does.
    inserted = await connection.fetch(
        "INSERT INTO outbox (dedupe_key, destination, message, card_key, account_id, "
        "created_at, priority, order_key) "
        "SELECT d.dedupe_key, d.destination, d.message, d.card_key, d.account_id, $1, "
        "d.priority, d.order_key FROM unnest($2::text[], $3::text[], $4::text[], "
        "$5::text[], $6::text[], $7::integer[], $8::text[]) WITH ORDINALITY "
        "AS d (dedupe_key, destination, message, card_key, account_id, priority, order_key, n) "
        "ORDER BY d.n ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
        time.time(),
        [d.dedupe_key for d in deliveries],
        [json.dumps(d.destination, separators=(",", ":")) for d in deliveries],
        [_json_text(d.message) for d in deliveries],
        [d.card_key for d in deliveries],
        [d.account_id for d in deliveries],
        [d.priority for d in deliveries],
        [destination_key(d.destination) for d in deliveries],
    )
    return len(inserted)
