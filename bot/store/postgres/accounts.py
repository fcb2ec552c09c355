"""PostgreSQL storage: installs, subscriptions, ringsense_connections,
ringsense_connect_links; and forgetting an account.

Where two replicas could act at once the statement decides: a connect link is opened by one
conditional `UPDATE … RETURNING` and taken by one `DELETE … RETURNING` (the second replica
finds nothing), and a refresh token is replaced only while its connection still exists.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from bot.crypto import UndecryptableSecret
from bot.leases import advisory_key
from bot.store.interface import AccountStore
from bot.store.postgres.base import PgStoreBase
from bot.store.postgres.status import rows_affected
from bot.store.records import (
    ConnectLink,
    RingSenseConnection,
    StoredInstall,
    StoredSubscription,
    rate_limit_state_prefixes,
    ringsense_identity,
)
from bot.store.rows import connect_link_of, ringsense_connection_of

log = logging.getLogger(__name__)

FORGET_ATTEMPTS = 3
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})
"""A deadlock, a serialization failure: the server undid the transaction; running it again
is safe."""


def quoted_identifier(name: str) -> str:
    """A table name read from the catalogue, quoted so it can only ever name a table."""
    return '"' + name.replace('"', '""') + '"'


class PgAccounts(PgStoreBase):
    """The PostgreSQL side of `AccountStore` (see bot/store/interface.py)."""

    async def save_install(self, install: StoredInstall) -> None:
        """Store the install with its token encrypted; from now on notifications its bot's
        subscriptions bring belong to its account (on this replica at once)."""
        encrypted = self._require_cipher().encrypt(install.access_token)
        await self._pool.execute(
            "INSERT INTO installs (bot_extension_id, account_id, access_token, "
            "creator_extension_id, source, installed_at, token_encrypted) "
            "VALUES ($1, $2, $3, $4, $5, $6, 1) "
            "ON CONFLICT (bot_extension_id) DO UPDATE SET account_id = excluded.account_id, "
            "access_token = excluded.access_token, "
            "creator_extension_id = excluded.creator_extension_id, "
            "source = excluded.source, installed_at = excluded.installed_at, "
            "token_encrypted = 1",
            install.bot_extension_id,
            install.account_id,
            encrypted,
            install.creator_extension_id,
            install.source,
            time.time(),
        )
        self.attribute_owner(install.bot_extension_id, install.account_id)

    async def stored_installs(self) -> list[StoredInstall]:
        """The stored installs with their tokens decrypted. One whose token no configured key
        opens is left out (and said so): the bot cannot act for it until the key is back."""
        cipher = self._require_cipher()
        rows = await self._pool.fetch(
            "SELECT bot_extension_id, account_id, access_token, creator_extension_id, source, "
            "token_encrypted FROM installs ORDER BY installed_at"
        )
        installs: list[StoredInstall] = []
        for r in rows:
            try:
                token = cipher.decrypt(r["access_token"]) if r["token_encrypted"] else None
            except UndecryptableSecret as err:
                log.error("install of bot %s skipped: %s", r["bot_extension_id"], err)
                continue
            if token is None:
                log.error(
                    "install of bot %s skipped: its token is not encrypted", r["bot_extension_id"]
                )
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
        value = await self._pool.fetchval(
            "SELECT account_id FROM installs WHERE bot_extension_id = $1", bot_extension_id
        )
        return str(value) if value is not None else None

    async def forget_account(self, account_id: str, bot_extension_id: str) -> dict[str, int]:
        """Delete everything stored for an account the bot was removed from: every row of
        every table that carries `account_id` (found in the catalogue, so a table added later
        is covered), plus rows not attributed to an account, found through the account's
        people and the bot's own extension; all in one transaction. Returns rows deleted per
        table.

        The transaction touches every table, so it can deadlock with a replica's digest or
        delivery locking the same rows in another order; the server then aborts one of the
        two, and when that is this one it is run again from the start (nothing was kept)."""
        for attempt in range(1, FORGET_ATTEMPTS + 1):
            try:
                async with self._transaction() as conn:
                    deleted = await _forget_account_in(conn, account_id, bot_extension_id)
                break
            except Exception as err:
                if getattr(err, "sqlstate", None) not in RETRYABLE_SQLSTATES:
                    raise
                if attempt == FORGET_ATTEMPTS:
                    raise
                log.warning(
                    "forgetting account %s collided with other work (%s); trying again",
                    account_id,
                    type(err).__name__,
                )
        self._owner_accounts.pop(bot_extension_id, None)
        return deleted

    async def add_connect_link(self, state_hash: str, link: ConnectLink) -> None:
        async with self._transaction() as conn:
            await conn.execute(
                "DELETE FROM ringsense_connect_links WHERE expires_at <= $1", time.time()
            )
            await conn.execute(
                "INSERT INTO ringsense_connect_links (state_hash, account_id, "
                "admin_extension_id, code_verifier, expires_at) VALUES ($1, $2, $3, $4, $5)",
                state_hash,
                link.account_id,
                link.admin_extension_id,
                link.code_verifier_encrypted,
                link.expires_at,
            )

    async def open_connect_link(self, state_hash: str) -> ConnectLink | None:
        """The link, if it is live and was never opened; it counts as opened from now on
        (one statement: of two replicas opening it at once, one gets it)."""
        row = await self._pool.fetchrow(
            "UPDATE ringsense_connect_links SET opened = 1 "
            "WHERE state_hash = $1 AND opened = 0 AND expires_at > $2 RETURNING *",
            state_hash,
            time.time(),
        )
        return connect_link_of(row) if row else None

    async def take_connect_link(self, state_hash: str) -> ConnectLink | None:
        """The opened, live link for a callback's state, deleted so it can never serve again.

        One `DELETE … RETURNING`: of two callbacks racing on two replicas, one receives the
        row and the other finds it gone, so a link completes a connection at most once."""
        row = await self._pool.fetchrow(
            "DELETE FROM ringsense_connect_links WHERE state_hash = $1 RETURNING *", state_hash
        )
        if row is None or not row["opened"] or row["expires_at"] <= time.time():
            return None
        return connect_link_of(row)

    async def save_ringsense_connection(self, connection: RingSenseConnection) -> None:
        await self._pool.execute(
            "INSERT INTO ringsense_connections (account_id, owner_extension_id, "
            "refresh_token, connected_by, connected_at) VALUES ($1, $2, $3, $4, $5) "
            "ON CONFLICT (account_id) DO UPDATE SET "
            "owner_extension_id = excluded.owner_extension_id, "
            "refresh_token = excluded.refresh_token, "
            "connected_by = excluded.connected_by, connected_at = excluded.connected_at",
            connection.account_id,
            connection.owner_extension_id,
            connection.refresh_token_encrypted,
            connection.connected_by,
            connection.connected_at,
        )

    async def replace_ringsense_refresh_token(self, account_id: str, encrypted: str) -> bool:
        """Keep the newest refresh token (the old one is spent); False if disconnected: the
        update changes a row only while the connection exists, so a disconnect on another
        replica is never undone."""
        status = await self._pool.execute(
            "UPDATE ringsense_connections SET refresh_token = $1 WHERE account_id = $2",
            encrypted,
            account_id,
        )
        return rows_affected(status) == 1

    async def ringsense_connection(self, account_id: str) -> RingSenseConnection | None:
        row = await self._pool.fetchrow(
            "SELECT * FROM ringsense_connections WHERE account_id = $1", account_id
        )
        return ringsense_connection_of(row) if row else None

    async def ringsense_connections(self) -> list[RingSenseConnection]:
        rows = await self._pool.fetch("SELECT * FROM ringsense_connections ORDER BY account_id")
        return [ringsense_connection_of(r) for r in rows]

    async def forget_ringsense_connection(self, account_id: str) -> None:
        async with self._transaction() as conn:
            await conn.execute(
                "DELETE FROM ringsense_connections WHERE account_id = $1", account_id
            )
            await conn.execute(
                "DELETE FROM ringsense_connect_links WHERE account_id = $1", account_id
            )
            await conn.execute(
                "DELETE FROM subscriptions WHERE identity = $1", f"ringsense:{account_id}"
            )

    @asynccontextmanager
    async def ringsense_refresh_turn(self, account_id: str) -> AsyncIterator[None]:
        """Replicas refresh one account's RingSense token in turn: a transaction-scoped
        advisory lock, released by the commit (or by the server when this replica dies)."""
        async with self._transaction() as conn:
            await conn.execute(
                "SELECT pg_advisory_xact_lock($1)", advisory_key(f"ringsense-refresh:{account_id}")
            )
            yield

    async def subscriptions(self, identity: str) -> list[StoredSubscription]:
        rows = await self._pool.fetch(
            "SELECT id, identity, address, event_filters, token_fingerprint, expiration_time "
            "FROM subscriptions WHERE identity = $1 ORDER BY created_at, id",
            identity,
        )
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
        """Store a subscription, or move a known one's expiry on. A bot's subscription
        belongs to its install's account: as this replica knows it, else as `installs`
        says (an install another replica stored), so the account's removal takes it too."""
        kind, _, owner = subscription.identity.partition(":")
        await self._pool.execute(
            "INSERT INTO subscriptions (id, identity, address, event_filters, "
            "token_fingerprint, expiration_time, created_at, account_id) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, COALESCE($8::text, "
            "(SELECT account_id FROM installs WHERE bot_extension_id = $9::text))) "
            "ON CONFLICT (id) DO UPDATE SET expiration_time = excluded.expiration_time",
            subscription.id,
            subscription.identity,
            subscription.address,
            json.dumps(list(subscription.event_filters)),
            subscription.token_fingerprint,
            subscription.expiration_time,
            time.time(),
            self._account_of_identity(subscription.identity),
            owner if kind == "bot" else None,
        )

    def _account_of_identity(self, identity: str) -> str | None:
        """`bot:<extension>` belongs to that bot's account (and goes when it is removed).
        The service user's own subscriptions belong to the operator, not to an install."""
        kind, _, owner = identity.partition(":")
        return self._owner_accounts.get(owner) if kind == "bot" else None

    async def forget_subscription(self, subscription_id: str) -> None:
        await self._pool.execute("DELETE FROM subscriptions WHERE id = $1", subscription_id)


async def _forget_account_in(conn: Any, account_id: str, bot_extension_id: str) -> dict[str, int]:
    """`forget_account`'s deletions on one connection inside its transaction."""
    deleted: dict[str, int] = {}

    def count(table: str, status: str) -> None:
        changed = rows_affected(status)
        if changed > 0:
            deleted[table] = deleted.get(table, 0) + changed

    people: set[str] = set()
    for table in ("user_settings", "direct_chats", "call_participants"):
        # Table names come from the fixed tuple above, never from input.
        rows = await conn.fetch(
            f"SELECT extension_id FROM {table} WHERE account_id = $1",  # noqa: S608
            account_id,
        )
        people.update(str(r[0]) for r in rows)
    people.discard("")
    if people:
        everyone = sorted(people)
        for table, condition in (
            ("user_channels", "extension_id = ANY($1::text[]) AND account_id IS NULL"),
            ("feedback", "extension_id = ANY($1::text[]) AND account_id IS NULL"),
            (
                "posted_cards",
                "destination = ANY(SELECT 'direct:' || p FROM unnest($1::text[]) p) "
                "AND account_id IS NULL",
            ),
        ):
            count(
                table,
                await conn.execute(
                    f"DELETE FROM {table} WHERE {condition}",  # noqa: S608
                    everyone,
                ),
            )
    count("inbox", await _forget_unattributed_inbox(conn, bot_extension_id))
    count(
        "subscriptions",
        await conn.execute(
            "DELETE FROM subscriptions WHERE identity = $1", f"bot:{bot_extension_id}"
        ),
    )
    count(
        "installs",
        await conn.execute("DELETE FROM installs WHERE bot_extension_id = $1", bot_extension_id),
    )
    # The account's RingSense reader paces its requests in `rate_limits` (no account
    # column: one row per identity and group), and may have kept state in `bot_state`.
    count(
        "rate_limits",
        await conn.execute(
            "DELETE FROM rate_limits WHERE identity = $1", ringsense_identity(account_id)
        ),
    )
    for prefix in rate_limit_state_prefixes(account_id):
        count(
            "bot_state",
            await conn.execute("DELETE FROM bot_state WHERE starts_with(key, $1)", prefix),
        )
    for table in await _tables_with_account(conn):
        count(
            table,
            await conn.execute(
                f"DELETE FROM {quoted_identifier(table)} WHERE account_id = $1",  # noqa: S608
                account_id,
            ),
        )
    return deleted


async def _tables_with_account(conn: Any) -> list[str]:
    """Every table of ours with an `account_id` column, read from the catalogue."""
    rows = await conn.fetch(
        "SELECT c.table_name FROM information_schema.columns c "
        "JOIN information_schema.tables t "
        "ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
        "WHERE c.table_schema = current_schema() AND c.column_name = 'account_id' "
        "AND t.table_type = 'BASE TABLE' ORDER BY c.table_name"
    )
    return [str(r[0]) for r in rows]


async def _forget_unattributed_inbox(conn: Any, bot_extension_id: str) -> str:
    """Delete inbox rows with no account that the bot's own subscription brought (their
    `ownerId`). The payload is read in Python: a row that is not JSON is never matched and
    never stops the forgetting, on any server version."""
    candidates = await conn.fetch(
        "SELECT id, payload FROM inbox WHERE account_id IS NULL AND strpos(payload, $1) > 0 "
        "FOR UPDATE",
        bot_extension_id,
    )
    ids = [r["id"] for r in candidates if _owner_of(r["payload"]) == bot_extension_id]
    if not ids:
        return "DELETE 0"
    status: str = await conn.execute("DELETE FROM inbox WHERE id = ANY($1::bigint[])", ids)
    return status


def _owner_of(payload: str) -> str | None:
    try:
        parsed = json.loads(payload)
    except ValueError:
        return None
    owner = parsed.get("ownerId") if isinstance(parsed, dict) else None
    return owner if isinstance(owner, str) else None


def _offers_every_method_of_its_protocol(store: PgAccounts) -> AccountStore:
    """Never called: mypy checks here that this family matches `AccountStore` method for method."""
    return store
