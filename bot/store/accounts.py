"""SQLite storage of installs, subscriptions and RingSense connections: `installs`,
`subscriptions`, `ringsense_connections`, `ringsense_connect_links`; and forgetting an
account.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiosqlite

from bot.crypto import UndecryptableSecret
from bot.store.base import StoreBase, _optimise_search_index
from bot.store.records import (
    SEARCH_TABLE,
    ConnectLink,
    RingSenseConnection,
    StoredInstall,
    StoredSubscription,
    rate_limit_state_prefixes,
)
from bot.store.rows import connect_link_of, ringsense_connection_of

log = logging.getLogger(__name__)


class SqliteAccounts(StoreBase):
    """The SQLite side of `AccountStore` (see bot/store/interface.py)."""

    async def save_install(self, install: StoredInstall) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO installs (bot_extension_id, account_id, access_token, "
                "creator_extension_id, source, installed_at, token_encrypted) "
                "VALUES (?, ?, ?, ?, ?, ?, 1) "
                "ON CONFLICT (bot_extension_id) DO UPDATE SET account_id = excluded.account_id, "
                "access_token = excluded.access_token, "
                "creator_extension_id = excluded.creator_extension_id, "
                "source = excluded.source, installed_at = excluded.installed_at, "
                "token_encrypted = 1",
                (
                    install.bot_extension_id,
                    install.account_id,
                    self._require_cipher().encrypt(install.access_token),
                    install.creator_extension_id,
                    install.source,
                    time.time(),
                ),
            )

    async def stored_installs(self) -> list[StoredInstall]:
        """The stored installs with their tokens decrypted. One whose token no configured key
        opens is left out (and said so): the bot cannot act for it until the key is back."""
        cipher = self._require_cipher()
        async with self._db.execute(
            "SELECT bot_extension_id, account_id, access_token, creator_extension_id, source, "
            "token_encrypted FROM installs ORDER BY installed_at"
        ) as cursor:
            rows = await cursor.fetchall()
        installs: list[StoredInstall] = []
        for r in rows:
            try:
                token = cipher.decrypt(r["access_token"]) if r["token_encrypted"] else None
            except UndecryptableSecret as err:
                log.error("install of bot %s skipped: %s", r["bot_extension_id"], err)
                continue
            if token is None:
                log.error("install of bot %s skipped: its token is not encrypted", r[0])
                continue
            installs.append(
                StoredInstall(
                    r["bot_extension_id"],
                    r["account_id"],
                    token,
                    r["creator_extension_id"],
                    r["source"],
                )
            )
        return installs

    async def install_account(self, bot_extension_id: str) -> str | None:
        """The account a stored install belongs to (no token needed)."""
        async with self._db.execute(
            "SELECT account_id FROM installs WHERE bot_extension_id = ?", (bot_extension_id,)
        ) as cursor:
            row = await cursor.fetchone()
        return str(row[0]) if row else None

    async def forget_account(self, account_id: str, bot_extension_id: str) -> dict[str, int]:
        """Delete everything stored for an account the bot was removed from: every row of
        every table that carries `account_id` (found in the schema, so a table added later
        is covered), plus rows written before rows were attributed, found through the
        account's people and the bot's own extension. Returns rows deleted per table."""
        deleted: dict[str, int] = {}

        def count(table: str, cursor: aiosqlite.Cursor) -> None:
            if cursor.rowcount > 0:
                deleted[table] = deleted.get(table, 0) + cursor.rowcount

        async with self._transaction() as db:
            people = {
                str(r[0])
                for table in ("user_settings", "direct_chats", "call_participants")
                for r in await (
                    await db.execute(
                        f"SELECT extension_id FROM {table} WHERE account_id = ?",  # noqa: S608
                        (account_id,),
                    )
                ).fetchall()
            }
            people.discard("")
            for extension_id in people:
                for table, condition in (
                    ("user_channels", "extension_id = ? AND account_id IS NULL"),
                    ("feedback", "extension_id = ? AND account_id IS NULL"),
                    ("posted_cards", "destination = 'direct:' || ? AND account_id IS NULL"),
                ):
                    count(
                        table,
                        await db.execute(
                            f"DELETE FROM {table} WHERE {condition}",  # noqa: S608
                            (extension_id,),
                        ),
                    )
            count(
                "inbox",
                await db.execute(
                    "DELETE FROM inbox WHERE account_id IS NULL "
                    "AND json_extract(payload, '$.ownerId') = ?",
                    (bot_extension_id,),
                ),
            )
            count(
                "subscriptions",
                await db.execute(
                    "DELETE FROM subscriptions WHERE identity = ?", (f"bot:{bot_extension_id}",)
                ),
            )
            count(
                "installs",
                await db.execute(
                    "DELETE FROM installs WHERE bot_extension_id = ?", (bot_extension_id,)
                ),
            )
            for prefix in rate_limit_state_prefixes(account_id):
                count(
                    "bot_state",
                    await db.execute(
                        "DELETE FROM bot_state WHERE substr(key, 1, ?) = ?", (len(prefix), prefix)
                    ),
                )
            for table in await self._tables_with_account(db):
                count(
                    table,
                    await db.execute(
                        f"DELETE FROM {table} WHERE account_id = ?",  # noqa: S608
                        (account_id,),
                    ),
                )
            if deleted.get(SEARCH_TABLE):
                await _optimise_search_index(db)
        self._owner_accounts.pop(bot_extension_id, None)
        return deleted

    @staticmethod
    async def _tables_with_account(db: aiosqlite.Connection) -> list[str]:
        """Every table of ours with an `account_id` column, read from the schema."""
        async with db.execute(
            "SELECT m.name FROM sqlite_master m, pragma_table_info(m.name) c "
            "WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND c.name = 'account_id' "
            "ORDER BY m.name"
        ) as cursor:
            return [str(r[0]) for r in await cursor.fetchall()]

    async def add_connect_link(self, state_hash: str, link: ConnectLink) -> None:
        async with self._transaction() as db:
            await db.execute(
                "DELETE FROM ringsense_connect_links WHERE expires_at <= ?", (time.time(),)
            )
            await db.execute(
                "INSERT INTO ringsense_connect_links (state_hash, account_id, "
                "admin_extension_id, code_verifier, expires_at) VALUES (?, ?, ?, ?, ?)",
                (
                    state_hash,
                    link.account_id,
                    link.admin_extension_id,
                    link.code_verifier_encrypted,
                    link.expires_at,
                ),
            )

    async def open_connect_link(self, state_hash: str) -> ConnectLink | None:
        """The link, if it is live and was never opened; it counts as opened from now on."""
        async with self._transaction() as db:
            cursor = await db.execute(
                "UPDATE ringsense_connect_links SET opened = 1 "
                "WHERE state_hash = ? AND opened = 0 AND expires_at > ?",
                (state_hash, time.time()),
            )
            if cursor.rowcount != 1:
                return None
            row = await (
                await db.execute(
                    "SELECT * FROM ringsense_connect_links WHERE state_hash = ?", (state_hash,)
                )
            ).fetchone()
        return connect_link_of(row) if row else None

    async def take_connect_link(self, state_hash: str) -> ConnectLink | None:
        """The opened, live link for a callback's state, deleted so it can never serve again."""
        async with self._transaction() as db:
            row = await (
                await db.execute(
                    "SELECT * FROM ringsense_connect_links WHERE state_hash = ?", (state_hash,)
                )
            ).fetchone()
            await db.execute(
                "DELETE FROM ringsense_connect_links WHERE state_hash = ?", (state_hash,)
            )
        if row is None or not row["opened"] or row["expires_at"] <= time.time():
            return None
        return connect_link_of(row)

    async def save_ringsense_connection(self, connection: RingSenseConnection) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO ringsense_connections (account_id, owner_extension_id, "
                "refresh_token, connected_by, connected_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (account_id) DO UPDATE SET "
                "owner_extension_id = excluded.owner_extension_id, "
                "refresh_token = excluded.refresh_token, "
                "connected_by = excluded.connected_by, connected_at = excluded.connected_at",
                (
                    connection.account_id,
                    connection.owner_extension_id,
                    connection.refresh_token_encrypted,
                    connection.connected_by,
                    connection.connected_at,
                ),
            )

    async def replace_ringsense_refresh_token(self, account_id: str, encrypted: str) -> bool:
        """Keep the newest refresh token (the old one is spent); False if disconnected."""
        async with self._transaction() as db:
            cursor = await db.execute(
                "UPDATE ringsense_connections SET refresh_token = ? WHERE account_id = ?",
                (encrypted, account_id),
            )
            return cursor.rowcount == 1

    async def ringsense_connection(self, account_id: str) -> RingSenseConnection | None:
        async with self._db.execute(
            "SELECT * FROM ringsense_connections WHERE account_id = ?", (account_id,)
        ) as cursor:
            row = await cursor.fetchone()
        return ringsense_connection_of(row) if row else None

    async def ringsense_connections(self) -> list[RingSenseConnection]:
        async with self._db.execute("SELECT * FROM ringsense_connections") as cursor:
            rows = await cursor.fetchall()
        return [ringsense_connection_of(r) for r in rows]

    async def forget_ringsense_connection(self, account_id: str) -> None:
        async with self._transaction() as db:
            await db.execute(
                "DELETE FROM ringsense_connections WHERE account_id = ?", (account_id,)
            )
            await db.execute(
                "DELETE FROM ringsense_connect_links WHERE account_id = ?", (account_id,)
            )
            await db.execute(
                "DELETE FROM subscriptions WHERE identity = ?", (f"ringsense:{account_id}",)
            )

    @asynccontextmanager
    async def ringsense_refresh_turn(self, account_id: str) -> AsyncIterator[None]:
        """One process uses an SQLite file: the account's in-memory lock
        (bot/connections.py) already gives each refresh its turn."""
        yield

    async def subscriptions(self, identity: str) -> list[StoredSubscription]:
        async with self._db.execute(
            "SELECT id, identity, address, event_filters, token_fingerprint, expiration_time "
            "FROM subscriptions WHERE identity = ?",
            (identity,),
        ) as cursor:
            rows = await cursor.fetchall()
        return [
            StoredSubscription(
                r["id"],
                r["identity"],
                r["address"],
                tuple(json.loads(r["event_filters"])),
                r["token_fingerprint"],
                r["expiration_time"],
            )
            for r in rows
        ]

    async def save_subscription(self, subscription: StoredSubscription) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO subscriptions (id, identity, address, event_filters, "
                "token_fingerprint, expiration_time, created_at, account_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET expiration_time = excluded.expiration_time",
                (
                    subscription.id,
                    subscription.identity,
                    subscription.address,
                    json.dumps(list(subscription.event_filters)),
                    subscription.token_fingerprint,
                    subscription.expiration_time,
                    time.time(),
                    self._account_of_identity(subscription.identity),
                ),
            )

    def _account_of_identity(self, identity: str) -> str | None:
        """`bot:<extension>` belongs to that bot's account (and goes when it is removed).
        The service user's own subscriptions belong to the operator, not to an install."""
        kind, _, owner = identity.partition(":")
        return self._owner_accounts.get(owner) if kind == "bot" else None

    async def forget_subscription(self, subscription_id: str) -> None:
        async with self._transaction() as db:
            await db.execute("DELETE FROM subscriptions WHERE id = ?", (subscription_id,))
