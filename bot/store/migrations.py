"""The numbered SQLite migrations: each is applied once, in one transaction, and recorded in
`schema_version`. Append new ones at the end; never edit or renumber.
"""

from __future__ import annotations

from collections.abc import Sequence

MIGRATIONS: Sequence[str] = (
    # 1: the first schema
    """
    CREATE TABLE inbox (
        id INTEGER PRIMARY KEY,
        uuid TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        received_at REAL NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL DEFAULT 0,
        last_error TEXT
    );
    CREATE INDEX inbox_due ON inbox(status, next_attempt_at, id);

    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        dedupe_key TEXT NOT NULL UNIQUE,
        destination TEXT NOT NULL,
        message TEXT NOT NULL,
        card_key TEXT,
        status TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL DEFAULT 0,
        last_error TEXT,
        created_at REAL NOT NULL,
        sent_at REAL
    );
    CREATE INDEX outbox_due ON outbox(status, next_attempt_at, id);

    CREATE TABLE posted_cards (
        card_key TEXT NOT NULL,
        destination TEXT NOT NULL,
        chat_id TEXT NOT NULL,
        card_id TEXT NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (card_key, destination)
    );

    CREATE TABLE direct_chats (
        extension_id TEXT PRIMARY KEY,
        chat_id TEXT NOT NULL
    );

    CREATE TABLE user_settings (
        extension_id TEXT PRIMARY KEY,
        opted_in INTEGER NOT NULL DEFAULT 0,
        timezone TEXT,
        updated_at REAL NOT NULL
    );

    CREATE TABLE calls (
        call_key TEXT PRIMARY KEY,
        domain TEXT NOT NULL,
        source_record_id TEXT NOT NULL,
        source_session_id TEXT,
        owner_extension_id TEXT NOT NULL,
        recording_start_time TEXT,
        insights TEXT NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX calls_owner ON calls(owner_extension_id, recording_start_time);
    CREATE INDEX calls_session ON calls(source_session_id);

    CREATE TABLE subscriptions (
        id TEXT PRIMARY KEY,
        identity TEXT NOT NULL,
        address TEXT NOT NULL,
        event_filters TEXT NOT NULL,
        token_fingerprint TEXT NOT NULL,
        expiration_time TEXT,
        created_at REAL NOT NULL
    );
    """,
    # 2: full settings, channels, installs per account, feedback
    """
    ALTER TABLE user_settings ADD COLUMN account_id TEXT;
    ALTER TABLE user_settings ADD COLUMN direct_messages INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE user_settings ADD COLUMN sections TEXT;
    ALTER TABLE user_settings ADD COLUMN directions TEXT;
    ALTER TABLE user_settings ADD COLUMN internal_calls INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE user_settings ADD COLUMN external_calls INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE user_settings ADD COLUMN min_duration_s INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE user_settings ADD COLUMN min_ai_score REAL;
    ALTER TABLE user_settings ADD COLUMN external_to_channels INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE user_settings ADD COLUMN paused_until TEXT;
    CREATE INDEX user_settings_account ON user_settings(account_id);

    CREATE TABLE user_channels (
        extension_id TEXT NOT NULL,
        chat_id TEXT NOT NULL,
        chat_name TEXT NOT NULL,
        enabled INTEGER NOT NULL DEFAULT 1,
        added_at REAL NOT NULL,
        PRIMARY KEY (extension_id, chat_id)
    );

    CREATE TABLE installs (
        bot_extension_id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL,
        access_token TEXT NOT NULL,
        creator_extension_id TEXT,
        source TEXT NOT NULL,
        installed_at REAL NOT NULL
    );
    CREATE INDEX installs_account ON installs(account_id);

    CREATE TABLE feedback (
        call_key TEXT NOT NULL,
        extension_id TEXT NOT NULL,
        verdict TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (call_key, extension_id)
    );

    CREATE TABLE call_participants (
        call_key TEXT NOT NULL,
        extension_id TEXT NOT NULL,
        PRIMARY KEY (call_key, extension_id)
    );
    CREATE INDEX call_participants_extension ON call_participants(extension_id);

    CREATE TABLE seen_submits (
        uuid TEXT PRIMARY KEY,
        seen_at REAL NOT NULL
    );

    ALTER TABLE calls ADD COLUMN account_id TEXT;
    ALTER TABLE calls ADD COLUMN ringsense_url TEXT;
    CREATE INDEX calls_ringsense_url ON calls(ringsense_url);
    ALTER TABLE direct_chats ADD COLUMN account_id TEXT;
    ALTER TABLE outbox ADD COLUMN account_id TEXT;
    """,
    # 3: reliability: small named values, the daily post budget
    """
    CREATE TABLE bot_state (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_at REAL NOT NULL
    );

    CREATE TABLE daily_posts (
        account_id TEXT NOT NULL,
        day TEXT NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (account_id, day)
    );
    """,
    # 4: AI API jobs and RingCX transcript segments
    """
    CREATE TABLE ai_jobs (
        job_id TEXT PRIMARY KEY,
        requester_id TEXT NOT NULL,
        account_id TEXT,
        destination TEXT NOT NULL,
        source_label TEXT NOT NULL,
        recording_id TEXT,
        entitled_ids TEXT NOT NULL,
        webhook_secret_hash TEXT NOT NULL,
        state TEXT NOT NULL,
        requested_at REAL NOT NULL,
        finished_at REAL,
        expires_at REAL NOT NULL,
        result TEXT,
        problem TEXT
    );
    CREATE INDEX ai_jobs_requester ON ai_jobs(requester_id, requested_at);
    CREATE INDEX ai_jobs_pending ON ai_jobs(state, requested_at);

    CREATE TABLE ringcx_segments (
        dialog_id TEXT NOT NULL,
        segment_id TEXT NOT NULL,
        metadata TEXT NOT NULL,
        agent_extension_id TEXT,
        agent_group_id TEXT,
        state TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL DEFAULT 0,
        last_error TEXT,
        found_at REAL NOT NULL,
        PRIMARY KEY (dialog_id, segment_id)
    );
    CREATE INDEX ringcx_segments_due ON ringcx_segments(state, next_attempt_at);
    """,
    # 5: every row attributable to an account (uninstall deletes all of it); install tokens
    # encrypted (rows written before this are encrypted by `Storage.open` once it has a key)
    """
    ALTER TABLE inbox ADD COLUMN account_id TEXT;
    ALTER TABLE posted_cards ADD COLUMN account_id TEXT;
    ALTER TABLE user_channels ADD COLUMN account_id TEXT;
    ALTER TABLE feedback ADD COLUMN account_id TEXT;
    ALTER TABLE call_participants ADD COLUMN account_id TEXT;
    ALTER TABLE seen_submits ADD COLUMN account_id TEXT;
    ALTER TABLE ringcx_segments ADD COLUMN account_id TEXT;
    ALTER TABLE subscriptions ADD COLUMN account_id TEXT;
    ALTER TABLE installs ADD COLUMN token_encrypted INTEGER NOT NULL DEFAULT 0;
    UPDATE user_channels SET account_id = (SELECT s.account_id FROM user_settings s
        WHERE s.extension_id = user_channels.extension_id);
    UPDATE call_participants SET account_id = (SELECT c.account_id FROM calls c
        WHERE c.call_key = call_participants.call_key);
    UPDATE feedback SET account_id = (SELECT c.account_id FROM calls c
        WHERE c.call_key = feedback.call_key);
    UPDATE posted_cards SET account_id = COALESCE(
        (SELECT c.account_id FROM calls c WHERE c.call_key = posted_cards.card_key),
        (SELECT j.account_id FROM ai_jobs j WHERE 'ai:' || j.job_id = posted_cards.card_key));
    UPDATE subscriptions SET account_id = (SELECT i.account_id FROM installs i
        WHERE 'bot:' || i.bot_extension_id = subscriptions.identity);
    CREATE INDEX inbox_account ON inbox(account_id);
    CREATE INDEX outbox_account ON outbox(account_id);
    CREATE INDEX posted_cards_account ON posted_cards(account_id);
    CREATE INDEX calls_account ON calls(account_id, updated_at);
    CREATE INDEX call_participants_account ON call_participants(account_id);
    """,
    # 6: the AI webhook finds its job by the secret in its path, before reading any body
    """
    CREATE INDEX IF NOT EXISTS ai_jobs_webhook_secret ON ai_jobs(webhook_secret_hash);
    """,
    # 7: each account's own RingSense reader (an admin's OAuth consent). Secrets
    # (the refresh token, the PKCE verifier) are stored encrypted; a link's state only
    # as its SHA-256.
    """
    CREATE TABLE ringsense_connections (
        account_id TEXT PRIMARY KEY,
        owner_extension_id TEXT NOT NULL,
        refresh_token TEXT NOT NULL,
        connected_by TEXT NOT NULL,
        connected_at REAL NOT NULL
    );

    CREATE TABLE ringsense_connect_links (
        state_hash TEXT PRIMARY KEY,
        account_id TEXT NOT NULL,
        admin_extension_id TEXT NOT NULL,
        code_verifier TEXT NOT NULL,
        expires_at REAL NOT NULL,
        opened INTEGER NOT NULL DEFAULT 0
    );
    """,
    # 8: catch-up asks whether a call's RingSense notification was handled
    # and which destinations its digest was queued for
    """
    CREATE INDEX outbox_card_key ON outbox(card_key);
    CREATE INDEX inbox_ringsense_record
        ON inbox(json_extract(payload, '$.body.sourceRecordId'))
        WHERE kind = 'ringsense.insights';
    """,
    # 9: digests go ahead of replies in the outbox
    """
    ALTER TABLE outbox ADD COLUMN priority INTEGER NOT NULL DEFAULT 1;
    CREATE INDEX outbox_due_priority ON outbox(status, next_attempt_at, priority, id);
    """,
    # 10: around the digest. Which calls a person gets digests of (own, or
    # own and taken part in).
    """
    ALTER TABLE user_settings ADD COLUMN digest_scope TEXT NOT NULL DEFAULT 'owned';

    CREATE TABLE next_steps (
        item_id INTEGER PRIMARY KEY AUTOINCREMENT,
        account_id TEXT NOT NULL,
        call_key TEXT NOT NULL,
        position INTEGER NOT NULL,
        assignee_extension_id TEXT NOT NULL,
        owner_name TEXT,
        text TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'open',
        done_by TEXT,
        done_at REAL,
        created_at REAL NOT NULL,
        UNIQUE (call_key, text)
    );
    CREATE INDEX next_steps_assignee ON next_steps(account_id, assignee_extension_id, state);

    CREATE VIRTUAL TABLE call_search USING fts5(
        text,
        account_id UNINDEXED,
        call_key UNINDEXED,
        kind UNINDEXED,
        position UNINDEXED,
        offset_s UNINDEXED,
        speaker UNINDEXED,
        tokenize = 'porter unicode61 remove_diacritics 2'
    );

    ALTER TABLE user_settings ADD COLUMN rollup_time TEXT NOT NULL DEFAULT '17:00';
    CREATE TABLE skipped_digests (
        account_id TEXT NOT NULL,
        extension_id TEXT NOT NULL,
        call_key TEXT NOT NULL,
        skipped_at REAL NOT NULL,
        PRIMARY KEY (account_id, extension_id, call_key)
    );
    CREATE TABLE rollup_days (
        account_id TEXT NOT NULL,
        extension_id TEXT NOT NULL,
        day TEXT NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (account_id, extension_id)
    );
    """,
    # 11: the people an AI job asked RingCentral to recognise by voice,
    # {speaker id: name}, so the result's cards can name them
    """
    ALTER TABLE ai_jobs ADD COLUMN speaker_names TEXT NOT NULL DEFAULT '{}';
    """,
    # 12: a call's transcript stored once, apart from the insights its cards
    # use; `last` reads a person's newest calls from one index walk; retention finds what
    # it prunes through indexes instead of scanning whole tables.
    """
    CREATE TABLE call_transcripts (
        call_key TEXT PRIMARY KEY,
        account_id TEXT,
        utterances TEXT NOT NULL,
        modified TEXT,
        updated_at REAL NOT NULL
    );
    ALTER TABLE call_participants ADD COLUMN recording_start_time TEXT;
    ALTER TABLE call_participants ADD COLUMN updated_at REAL;
    UPDATE call_participants SET
        recording_start_time = (SELECT c.recording_start_time FROM calls c
            WHERE c.call_key = call_participants.call_key),
        updated_at = (SELECT c.updated_at FROM calls c
            WHERE c.call_key = call_participants.call_key);
    CREATE INDEX call_participants_newest ON call_participants(
        extension_id, account_id, recording_start_time DESC, updated_at DESC);
    CREATE INDEX calls_updated ON calls(updated_at);
    CREATE INDEX inbox_words_kept ON inbox(received_at)
        WHERE status != 'pending' AND payload != '{}';
    CREATE INDEX inbox_finished ON inbox(received_at) WHERE status != 'pending';
    CREATE INDEX outbox_words_kept ON outbox(created_at)
        WHERE status = 'sent' AND message != '{}';
    CREATE INDEX outbox_age ON outbox(status, created_at);
    CREATE INDEX seen_submits_age ON seen_submits(seen_at);
    """,
    # 13: the inbox's RingSense lookup on a real column instead of json_extract over
    # the payload (filled when a row is stored; existing rows backfilled); each call gets
    # a fixed range of rowids in `find`'s index, so its lines are replaced by rowid instead
    # of by a scan of every call's lines (FTS5 cannot look up an UNINDEXED column).
    """
    ALTER TABLE inbox ADD COLUMN source_record_id TEXT;
    UPDATE inbox SET source_record_id = json_extract(payload, '$.body.sourceRecordId')
        WHERE kind = 'ringsense.insights' AND json_valid(payload)
        AND json_type(payload, '$.body.sourceRecordId') = 'text';
    DROP INDEX inbox_ringsense_record;
    CREATE INDEX inbox_source_record ON inbox(source_record_id)
        WHERE kind = 'ringsense.insights';
    ALTER TABLE calls ADD COLUMN search_id INTEGER;
    UPDATE calls SET search_id = rowid;
    CREATE UNIQUE INDEX calls_search_id ON calls(search_id);
    CREATE VIRTUAL TABLE call_search_by_call USING fts5(
        text,
        account_id UNINDEXED,
        call_key UNINDEXED,
        kind UNINDEXED,
        position UNINDEXED,
        offset_s UNINDEXED,
        speaker UNINDEXED,
        tokenize = 'porter unicode61 remove_diacritics 2'
    );
    INSERT INTO call_search_by_call (rowid, text, account_id, call_key, kind, position,
        offset_s, speaker)
        SELECT (search_id << 20) + CASE WHEN kind = 'transcript' THEN 524288 ELSE 0 END + n,
            text, account_id, call_key, kind, position, offset_s, speaker
        FROM (SELECT c.search_id, s.*, ROW_NUMBER() OVER (
                PARTITION BY s.call_key, s.kind = 'transcript' ORDER BY s.rowid) - 1 AS n
            FROM call_search s JOIN calls c ON c.call_key = s.call_key)
        WHERE n < 524288;
    DROP TABLE call_search;
    ALTER TABLE call_search_by_call RENAME TO call_search;
    """,
)
