"""Forgetting an account (the bot removed from it) as stored, on SQLite and on PostgreSQL
alike: every row of the account goes, in every table, including rows written without an
account (found through the account's people and its bot), and no other account's row is
touched. On PostgreSQL the tables are found in the catalogue, so the test does the same:
it fills every table that has an `account_id` column, whoever added it."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bot.crypto import TokenCipher, generate_key
from bot.store.records import AiJob, ConnectLink, RingSenseConnection, StoredInstall
from tests.raw_sql import insert, run_sql
from tests.stores import StoreFactory, postgres_rows

GONE, KEPT = "acct-gone", "acct-kept"
BOTS = {GONE: "bot-gone", KEPT: "bot-kept"}
PEOPLE = {GONE: "201", KEPT: "301"}


async def lay_out_an_account(factory: StoreFactory, storage: Any, account: str) -> None:
    """What a few days of an account leave behind, some of it without `account_id` (rows
    written before rows were attributed, or before the bot knew the account)."""
    bot, person = BOTS[account], PEOPLE[account]
    await storage.save_install(StoredInstall(bot, account, f"token-of-{bot}", person, "private"))
    storage.attribute_owner(bot, account)
    await storage.save_ringsense_connection(
        RingSenseConnection(account, person, "refresh-encrypted", person, 1.0)
    )
    await storage.add_connect_link(
        f"state-{account}",
        ConnectLink(account, person, "verifier-encrypted", time.time() + 600),
    )
    await storage.save_ai_job(
        AiJob(
            job_id=f"job-{account}",
            requester_id=person,
            account_id=account,
            destination={"kind": "direct", "extensionId": person},
            source_label="call.mp3",
            recording_id=None,
            entitled_ids=frozenset({person}),
            webhook_secret_hash=f"hash-{account}",
            state="done",
            requested_at=time.time(),
            expires_at=time.time() + 3600,
            result={"utterances": ["what was said"]},
        )
    )
    await storage.add_ringcx_segments(
        [(f"dialog-{account}", "seg", {"agentId": person}, person, None)],
        f"ringcx:position:{account}",
        "T1",
        account,
    )
    await insert(
        factory,
        "user_settings",
        [{"extension_id": person, "opted_in": 1, "updated_at": 1.0, "account_id": account}],
    )
    await insert(
        factory,
        "direct_chats",
        [{"extension_id": person, "chat_id": f"dm-{person}", "account_id": account}],
    )
    await insert(
        factory,
        "user_channels",
        [
            {
                "extension_id": person,
                "chat_id": f"chat-{account}-{n}",
                "chat_name": "Team",
                "added_at": 1.0,
                "account_id": attributed,
            }
            for n, attributed in enumerate((account, None))
        ],
    )
    call = f"call-{account}"
    await insert(
        factory,
        "calls",
        [
            {
                "call_key": call,
                "domain": "pbx",
                "source_record_id": call,
                "owner_extension_id": person,
                "insights": "{}",
                "updated_at": 1.0,
                "account_id": account,
            }
        ],
    )
    await insert(
        factory,
        "call_participants",
        [{"call_key": call, "extension_id": person, "account_id": account}],
    )
    await insert(
        factory,
        "feedback",
        [
            {
                "call_key": call,
                "extension_id": person,
                "verdict": "helpful",
                "created_at": 1.0,
                "account_id": None,
            }
        ],
    )
    await insert(
        factory,
        "posted_cards",
        [
            {
                "card_key": call,
                "destination": destination,
                "chat_id": "chat",
                "card_id": f"card-{account}-{n}",
                "updated_at": 1.0,
                "account_id": attributed,
            }
            for n, (destination, attributed) in enumerate(
                ((f"direct:{person}", None), (f"chat:chat-{account}-0", account))
            )
        ],
    )
    await insert(
        factory,
        "inbox",
        [
            {
                "uuid": f"n-{account}-{n}",
                "kind": "post.added",
                "payload": f'{{"ownerId":"{bot}","body":{{"text":"words"}}}}',
                "received_at": 1.0,
                "account_id": attributed,
            }
            for n, attributed in enumerate((account, None))
        ],
    )
    await insert(
        factory,
        "subscriptions",
        [
            {
                "id": f"sub-{account}",
                "identity": f"bot:{bot}",
                "address": "https://bot.example/webhook",
                "event_filters": "[]",
                "token_fingerprint": "fp",
                "created_at": 1.0,
                "account_id": None,
            }
        ],
    )


async def rows_of(factory: StoreFactory, account: str) -> dict[str, int]:
    """Rows that mention the account, its bot or its person, per table."""
    found: dict[str, int] = {}
    for table, condition in (
        ("installs", "account_id = ?"),
        ("ringsense_connections", "account_id = ?"),
        ("ringsense_connect_links", "account_id = ?"),
        ("ai_jobs", "account_id = ?"),
        ("ringcx_segments", "account_id = ?"),
        ("user_settings", "account_id = ?"),
        ("direct_chats", "account_id = ?"),
        ("user_channels", "chat_id LIKE '%' || ? || '%'"),
        ("calls", "account_id = ?"),
        ("call_participants", "account_id = ?"),
        ("feedback", "call_key = 'call-' || ?"),
        ("posted_cards", "card_key = 'call-' || ?"),
        ("inbox", "uuid LIKE 'n-' || ? || '%'"),
        ("subscriptions", "id = 'sub-' || ?"),
    ):
        sql = f"SELECT COUNT(*) FROM {table} WHERE {condition}"  # noqa: S608
        [(count,)] = await run_sql(factory, sql, account)
        if count:
            found[table] = int(count)
    return found


async def test_forgetting_an_account_deletes_its_rows_everywhere_and_counts_them(
    store_factory: StoreFactory,
) -> None:
    storage = await store_factory.open(TokenCipher([generate_key()]))
    for account in (GONE, KEPT):
        await lay_out_an_account(store_factory, storage, account)
    kept_before = await rows_of(store_factory, KEPT)
    assert await rows_of(store_factory, GONE) == kept_before  # both laid out alike

    deleted = await storage.forget_account(GONE, BOTS[GONE])

    assert deleted == {
        "installs": 1,
        "ringsense_connections": 1,
        "ringsense_connect_links": 1,
        "ai_jobs": 1,
        "ringcx_segments": 1,
        "user_settings": 1,
        "direct_chats": 1,
        "user_channels": 2,  # one attributed, one found through the account's person
        "calls": 1,
        "call_participants": 1,
        "feedback": 1,  # found through the person
        "posted_cards": 2,  # the person's direct copy (unattributed) and the channel's
        "inbox": 2,  # one attributed, one found through the bot's own subscription
        "subscriptions": 1,  # the bot's, by its identity
    }
    assert await rows_of(store_factory, GONE) == {}
    assert await rows_of(store_factory, KEPT) == kept_before
    assert [i.account_id for i in await storage.stored_installs()] == [KEPT]
    assert storage.account_of_owner(BOTS[GONE]) is None
    assert storage.account_of_owner(BOTS[KEPT]) == KEPT
    # What the bot keeps for itself (the RingCX window of the other account) stays.
    assert await run_sql(store_factory, "SELECT COUNT(*) FROM bot_state") == [(2,)]


# -- PostgreSQL: every table the catalogue lists --------------------------------------


async def account_tables(url: str) -> list[str]:
    rows = await postgres_rows(
        url,
        "SELECT c.table_name FROM information_schema.columns c "
        "JOIN information_schema.tables t USING (table_schema, table_name) "
        "WHERE c.table_schema = current_schema() AND c.column_name = 'account_id' "
        "AND t.table_type = 'BASE TABLE' ORDER BY 1",
    )
    return [str(r[0]) for r in rows]


def a_value(account: str, table: str, column: str, data_type: str, n: int) -> Any:
    """A value of the column's type that names the account (so a leftover is spotted)."""
    if column == "account_id":
        return account
    if column == "extension_id":
        return f"{PEOPLE[account]}-{table}"
    if data_type in ("text", "character varying"):
        return f"{account}:{table}:{column}:{n}"
    if data_type in ("integer", "bigint", "smallint"):
        return n
    if data_type in ("double precision", "real", "numeric"):
        return float(n)
    if data_type == "boolean":
        return True
    if data_type == "ARRAY":
        return []
    if data_type in ("json", "jsonb"):
        return "{}"
    raise AssertionError(f"{table}.{column}: no sample value for type {data_type}")


async def fill_every_account_table(url: str, account: str, n: int) -> None:
    """One row of `account` in every table with `account_id`, every column filled."""
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        for table in await account_tables(url):
            columns = await connection.fetch(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = $1 "
                "AND is_identity = 'NO' AND is_generated = 'NEVER' ORDER BY ordinal_position",
                table,
            )
            names = [str(c["column_name"]) for c in columns]
            values = [
                a_value(account, table, str(c["column_name"]), str(c["data_type"]), n)
                for c in columns
            ]
            placeholders = ", ".join(f"${i}" for i in range(1, len(names) + 1))
            await connection.execute(
                f'INSERT INTO "{table}" ({", ".join(names)}) VALUES ({placeholders})',  # noqa: S608
                *values,
            )
    finally:
        await connection.close()


async def every_row(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, as text, sorted: what an auditor reads."""
    tables = await postgres_rows(
        url,
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
    )
    found: dict[str, list[tuple[Any, ...]]] = {}
    for (table,) in tables:
        rows = await postgres_rows(url, f'SELECT * FROM "{table}"')  # noqa: S608
        found[str(table)] = sorted(tuple(str(v) for v in r.values()) for r in rows)
    return found


async def test_on_postgresql_no_row_of_a_forgotten_account_is_left_in_any_table(
    postgres_url: str,
) -> None:
    factory = StoreFactory("postgres", postgres_url)
    try:
        storage = await factory.open(TokenCipher([generate_key()]))
        tables = await account_tables(postgres_url)
        assert {"inbox", "outbox", "calls", "call_search", "installs", "ai_jobs"} <= set(tables)
        for n, account in enumerate((GONE, KEPT), start=1):
            await fill_every_account_table(postgres_url, account, n)
            await lay_out_an_account(factory, storage, account)
        # Unattributed inbox rows that merely mention the bot are not its: one the other
        # account's bot brought (someone wrote the id), and one that is not even JSON.
        await insert(
            factory,
            "inbox",
            [
                {
                    "uuid": "n-mention",
                    "kind": "post.added",
                    "payload": f'{{"ownerId":"{BOTS[KEPT]}","text":"ask {BOTS[GONE]}"}}',
                    "received_at": 1.0,
                    "account_id": None,
                },
                {
                    "uuid": "n-odd",
                    "kind": "raw",
                    "payload": f"not json {BOTS[GONE]}",
                    "received_at": 1.0,
                    "account_id": None,
                },
            ],
        )
        before = await every_row(postgres_url)

        deleted = await storage.forget_account(GONE, BOTS[GONE])

        after = await every_row(postgres_url)
        for table in tables:
            left = await postgres_rows(
                postgres_url,
                f'SELECT COUNT(*) FROM "{table}" WHERE account_id = $1',  # noqa: S608
                GONE,
            )
            assert left[0][0] == 0, f"{table} still holds rows of the forgotten account"
        traces = (GONE, BOTS[GONE], f"dm-{PEOPLE[GONE]}", f"direct:{PEOPLE[GONE]}")
        leftovers = [
            (table, row)
            for table, rows in after.items()
            for row in rows
            if any(trace in value for value in row for trace in traces)
            and not (table == "inbox" and ("n-odd" in row or "n-mention" in row))
            and table != "bot_state"
        ]
        assert leftovers == []
        # Every row that is gone was the account's, and the counts say how many went.
        assert sum(deleted.values()) == sum(len(before[t]) - len(after[t]) for t in before)
        for table, rows in after.items():
            gone = set(before[table]) - set(rows)
            assert not any(KEPT in value for row in gone for value in row), table
            assert set(rows) <= set(before[table]), table
        assert any(KEPT in value for row in after["inbox"] for value in row)
        kept_uuids = {row[1] for row in after["inbox"]}
        assert {"n-mention", "n-odd"} <= kept_uuids
    finally:
        await factory.close_all()


async def test_forgetting_an_account_that_deadlocks_with_other_work_is_done_again(
    postgres_url: str,
) -> None:
    """Only on PostgreSQL: another replica's transaction holds a row the forgetting needs
    and then waits for one the forgetting already deleted. The server aborts the forgetting
    (it waits with the shorter deadlock timeout); it runs again and deletes everything."""
    import asyncpg

    factory = StoreFactory("postgres", postgres_url)
    other_replica = await asyncpg.connect(postgres_url)
    try:
        storage = await factory.open(TokenCipher([generate_key()]))
        for account in (GONE, KEPT):
            await lay_out_an_account(factory, storage, account)
        async with other_replica.transaction():
            await other_replica.execute("SET LOCAL deadlock_timeout = '60s'")
            # user_settings comes late in the forgetting, ai_jobs early.
            await other_replica.execute(
                "SELECT * FROM user_settings WHERE account_id = $1 FOR UPDATE", GONE
            )
            forgetting = asyncio.create_task(storage.forget_account(GONE, BOTS[GONE]))
            for _ in range(500):
                waiting = await postgres_rows(
                    postgres_url, "SELECT COUNT(*) FROM pg_locks WHERE NOT granted"
                )
                if waiting[0][0]:
                    break
                await asyncio.sleep(0.01)
            assert waiting[0][0], "the forgetting never waited for the held row"
            await other_replica.execute(
                "UPDATE ai_jobs SET problem = 'late' WHERE account_id = $1", GONE
            )
        deleted = await asyncio.wait_for(forgetting, 30)
        assert deleted["ai_jobs"] == 1 and deleted["user_settings"] == 1
        assert await rows_of(factory, GONE) == {}
        assert await rows_of(factory, KEPT) != {}
    finally:
        await other_replica.close()
        await factory.close_all()


async def test_forgetting_an_account_forgets_the_rate_limits_of_its_readers(
    store_factory: StoreFactory,
) -> None:
    """The account's RingSense reader (identity `ringsense:<account>`) leaves rate-limit
    state behind: on PostgreSQL its `rate_limits` rows, on both backends any penalty or
    window kept in `bot_state`. None of it may outlive the account; another account's
    stays."""
    from bot.connections import identity_of
    from bot.ratelimit import PENALTY_KEY_PREFIX, WINDOW_KEY_PREFIX
    from bot.store.opening import replica_sharing

    storage = await store_factory.open(TokenCipher([generate_key()]))
    for account in (GONE, KEPT):
        await lay_out_an_account(store_factory, storage, account)
        identity = identity_of(account)
        await storage.set_state(f"{PENALTY_KEY_PREFIX}{identity}.light", "1e12")
        await storage.set_state(f"{WINDOW_KEY_PREFIX}{identity}.light", '{"limit": 50}')
        windows = replica_sharing(storage).windows
        if windows is not None:
            for group in ("light", "heavy"):
                await windows.penalise(
                    identity, group, 30.0, default_limit=50, default_window_s=60.0
                )

    deleted = await storage.forget_account(GONE, BOTS[GONE])

    assert deleted["bot_state"] == 2
    tables = ["bot_state"]
    if store_factory.backend == "postgres":
        assert deleted["rate_limits"] == 2
        tables.append("rate_limits")
    for table in tables:
        column = "key" if table == "bot_state" else "identity"
        rows = [
            row
            for row in await run_sql(store_factory, f"SELECT {column} FROM {table}")  # noqa: S608
            if table == "rate_limits" or str(row[0]).startswith("ratelimit.")
        ]
        assert [r for r in rows if GONE in str(r[0])] == [], table
        assert [r for r in rows if KEPT in str(r[0])] != [], table
