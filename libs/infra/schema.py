"""Schema migrations: an ordered list of DDL steps, applied once each under an advisory lock.

The event store's own tables come from eventsourcing (``Database.create_tables``); the
tables here are the price cache, accounts/keys, the relay's position and the read models.
"""

from __future__ import annotations

import psycopg

from . import locks

MIGRATIONS: list[tuple[int, str]] = [
    (1, """
    CREATE TABLE botranks_meta (
        singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
        store_id text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
    );
    INSERT INTO botranks_meta (store_id) VALUES (substr(md5(random()::text || clock_timestamp()::text), 1, 12));

    CREATE TABLE strategies (
        id uuid PRIMARY KEY,
        name text NOT NULL,
        base_currency text NOT NULL DEFAULT 'USD',
        benchmark text NOT NULL DEFAULT 'SPY',
        visibility text NOT NULL DEFAULT 'private',
        owner_id uuid,
        created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE api_keys (
        id uuid PRIMARY KEY,
        strategy_id uuid NOT NULL REFERENCES strategies(id),
        name text NOT NULL,
        key_prefix text NOT NULL,
        key_hash bytea NOT NULL UNIQUE,
        created_at timestamptz NOT NULL DEFAULT now(),
        last_used_at timestamptz,
        revoked_at timestamptz
    );
    CREATE INDEX api_keys_strategy_idx ON api_keys (strategy_id);

    CREATE TABLE prices (
        symbol text NOT NULL,
        date date NOT NULL,
        open numeric, high numeric, low numeric,
        close numeric NOT NULL CHECK (close > 0),
        volume numeric,
        source text NOT NULL DEFAULT 'manual',
        fetched_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (symbol, date)
    );

    CREATE TABLE relay_position (
        singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
        notification_id bigint NOT NULL
    );
    INSERT INTO relay_position (notification_id) VALUES (0);

    -- read models: written only by the projector, in the same transaction as its tracking row
    CREATE TABLE rm_orders (
        id uuid PRIMARY KEY,
        strategy_id uuid NOT NULL,
        symbol text NOT NULL,
        side text NOT NULL,
        quantity numeric NOT NULL,
        price numeric NOT NULL,
        fees numeric NOT NULL,
        order_type text NOT NULL,
        status text NOT NULL,
        executed_at timestamptz NOT NULL,
        created_at timestamptz NOT NULL,
        external_order_id text,
        details jsonb,
        notification_id bigint NOT NULL,
        event bytea NOT NULL
    );
    CREATE INDEX rm_orders_fold_idx ON rm_orders (strategy_id, executed_at, notification_id);
    CREATE TABLE rm_cash_events (
        id uuid PRIMARY KEY,
        strategy_id uuid NOT NULL,
        event_type text NOT NULL,
        amount numeric NOT NULL,
        occurred_at timestamptz NOT NULL,
        external_id text,
        related_symbol text,
        note text,
        created_at timestamptz NOT NULL,
        notification_id bigint NOT NULL,
        event bytea NOT NULL
    );
    CREATE INDEX rm_cash_fold_idx ON rm_cash_events (strategy_id, occurred_at, notification_id);
    CREATE TABLE rm_snapshots (
        id uuid PRIMARY KEY,
        strategy_id uuid NOT NULL,
        taken_at timestamptz NOT NULL,
        notification_id bigint NOT NULL,
        event bytea NOT NULL
    );
    CREATE INDEX rm_snapshots_fold_idx ON rm_snapshots (strategy_id, taken_at, notification_id);
    CREATE TABLE rm_positions (
        strategy_id uuid NOT NULL,
        symbol text NOT NULL,
        quantity numeric NOT NULL,
        cost_basis numeric NOT NULL,
        updated_at timestamptz NOT NULL,
        PRIMARY KEY (strategy_id, symbol)
    );
    CREATE TABLE rm_ledger (
        strategy_id uuid PRIMARY KEY,
        cash_balance numeric NOT NULL,
        realized_pnl numeric NOT NULL,
        external_flows numeric NOT NULL,
        market_value numeric NOT NULL,
        total_equity numeric NOT NULL,
        captured_at timestamptz NOT NULL,
        last_order_at timestamptz,
        last_effective_at timestamptz NOT NULL,
        last_notification_id bigint NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE rm_reconciliation_log (
        id bigserial PRIMARY KEY,
        strategy_id uuid NOT NULL,
        snapshot_id uuid NOT NULL,
        symbol text NOT NULL,
        derived_quantity numeric NOT NULL,
        derived_cost_basis numeric,
        snapshot_quantity numeric NOT NULL,
        snapshot_cost_basis numeric,
        taken_at timestamptz NOT NULL,
        UNIQUE (snapshot_id, symbol)
    );
    """),
    (2, """
    -- market data: every write to `prices` also records which (symbol, from date) changed,
    -- so the projector can re-mark the strategies concerned (an outbox it follows by id)
    CREATE TABLE price_updates (
        id bigserial PRIMARY KEY,
        symbol text NOT NULL,
        from_date date NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE projector_price_cursor (
        singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
        price_update_id bigint NOT NULL
    );
    INSERT INTO projector_price_cursor (price_update_id) VALUES (0);

    ALTER TABLE rm_ledger ADD COLUMN state bytea;
    ALTER TABLE rm_ledger ADD COLUMN inception_date date;
    CREATE TABLE rm_checkpoints (
        strategy_id uuid NOT NULL,
        date date NOT NULL,
        state bytea NOT NULL,
        PRIMARY KEY (strategy_id, date)
    );
    CREATE TABLE rm_nav_daily (
        strategy_id uuid NOT NULL,
        date date NOT NULL,
        cash numeric NOT NULL,
        market_value numeric NOT NULL,
        total_equity numeric NOT NULL,
        external_flow numeric NOT NULL,
        PRIMARY KEY (strategy_id, date)
    );
    CREATE TABLE rm_strategy_symbols (
        symbol text NOT NULL,
        strategy_id uuid NOT NULL,
        PRIMARY KEY (symbol, strategy_id)
    );
    CREATE INDEX strategies_benchmark_idx ON strategies (benchmark);
    -- what the fold made of each snapshot (the POST /positions/snapshot response)
    ALTER TABLE rm_snapshots ADD COLUMN upserted int, ADD COLUMN removed int, ADD COLUMN reconciliation_entries int;
    CREATE INDEX rm_orders_list_idx ON rm_orders (strategy_id, notification_id);
    CREATE INDEX rm_cash_list_idx ON rm_cash_events (strategy_id, notification_id);
    CREATE INDEX rm_reconciliation_list_idx ON rm_reconciliation_log (strategy_id, id);
    """),
    (3, """
    -- the market-data component's own bookkeeping: what it fetched from Polygon, and when
    CREATE TABLE market_data_symbols (
        symbol text PRIMARY KEY,
        fetched_from date,
        fetched_through date,
        refreshed_at timestamptz,
        last_error text
    );
    """),
    (4, """
    CREATE TABLE users (
        id uuid PRIMARY KEY,
        email text NOT NULL,
        password_hash text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE UNIQUE INDEX users_email_idx ON users (lower(email));
    CREATE TABLE sessions (
        id uuid PRIMARY KEY,
        user_id uuid NOT NULL REFERENCES users(id),
        token_hash bytea NOT NULL UNIQUE,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        ended_at timestamptz
    );
    ALTER TABLE strategies ADD CONSTRAINT strategies_owner_fk FOREIGN KEY (owner_id) REFERENCES users(id);
    CREATE INDEX strategies_owner_idx ON strategies (owner_id);

    -- sliding-window rate limit, shared by every replica: the hits of the last window per key
    CREATE TABLE rate_windows (
        key_id uuid PRIMARY KEY REFERENCES api_keys(id),
        hits timestamptz[] NOT NULL DEFAULT '{}'
    );

    -- One round trip per request: key lookup, rate limit (row-locked per key), strategy check.
    CREATE FUNCTION botranks_check_key(p_hash bytea, p_strategy uuid, p_limit int, p_window_s float8)
    RETURNS TABLE (outcome text, remaining int, reset_s float8)
    LANGUAGE plpgsql AS $$
    DECLARE
        k record;
        now_ts timestamptz := clock_timestamp();
        win interval := make_interval(secs => p_window_s);
        all_hits timestamptz[];
        recent timestamptz[];
    BEGIN
        -- bookkeeping only (hits, last_used_at): do not wait for a disk flush on every request
        PERFORM set_config('synchronous_commit', 'off', true);
        SELECT id, strategy_id, revoked_at INTO k FROM api_keys WHERE key_hash = p_hash;
        IF NOT FOUND OR k.revoked_at IS NOT NULL THEN
            RETURN QUERY SELECT 'unauthorized'::text, 0, 0::float8;
            RETURN;
        END IF;
        INSERT INTO rate_windows (key_id) VALUES (k.id) ON CONFLICT DO NOTHING;
        SELECT hits INTO all_hits FROM rate_windows WHERE key_id = k.id FOR UPDATE;
        recent := array(SELECT h FROM unnest(all_hits) AS h WHERE h > now_ts - win ORDER BY h);
        IF cardinality(recent) >= p_limit THEN
            UPDATE rate_windows SET hits = recent WHERE key_id = k.id;
            RETURN QUERY SELECT 'limited'::text, 0, extract(epoch FROM recent[1] + win - now_ts)::float8;
            RETURN;
        END IF;
        recent := recent || now_ts;
        UPDATE rate_windows SET hits = recent WHERE key_id = k.id;
        UPDATE api_keys SET last_used_at = now_ts
            WHERE id = k.id AND (last_used_at IS NULL OR last_used_at < now_ts - interval '5 seconds');
        RETURN QUERY SELECT
            CASE WHEN NOT EXISTS (SELECT 1 FROM strategies WHERE id = p_strategy) THEN 'not_found'
                 WHEN k.strategy_id <> p_strategy THEN 'forbidden'
                 ELSE 'ok' END,
            p_limit - cardinality(recent),
            extract(epoch FROM recent[1] + win - now_ts)::float8;
    END $$;
    """),
    (5, """
    -- /performance caches on (NAV version, benchmark price version)
    CREATE INDEX price_updates_symbol_idx ON price_updates (symbol, id);
    -- rate-limit hits are ephemeral: no WAL, no fsync on the request path (a crash forgets a minute of hits)
    ALTER TABLE rate_windows SET UNLOGGED;
    """),
    (6, """
    -- strategies whose events the projector could not apply: isolated, reported, skipped
    -- (one row per strategy; the nil uuid stands for events whose strategy cannot be read)
    CREATE TABLE rm_quarantine (
        strategy_id uuid PRIMARY KEY,
        first_notification_id bigint NOT NULL,
        last_notification_id bigint NOT NULL,
        skipped_events int NOT NULL DEFAULT 1,
        error text NOT NULL,
        quarantined_at timestamptz NOT NULL DEFAULT now()
    );
    -- the state right after a strategy's last event (before that day's NAV row): appends on
    -- already-priced days continue from it instead of re-folding from a checkpoint
    ALTER TABLE rm_ledger ADD COLUMN tail_day date, ADD COLUMN tail_state bytea;
    """),
    (7, """
    -- sign-in throttles shared by every replica: login + register attempts per client address,
    -- failed logins per lower-cased email. Ephemeral like rate_windows (a crash forgets them).
    CREATE UNLOGGED TABLE auth_throttle (
        bucket text PRIMARY KEY,
        hits timestamptz[] NOT NULL DEFAULT '{}',
        expires_at timestamptz NOT NULL
    );
    CREATE INDEX auth_throttle_expiry_idx ON auth_throttle (expires_at);

    -- One round trip per attempt: each bucket is row-locked (in the order given) and checked
    -- against its own sliding window; only when none is full is the attempt recorded in all
    -- of them. Returns the 1-based index of the full bucket (0: none) and, for it, the seconds
    -- until its oldest hit leaves the window; `hit` identifies the recorded attempt.
    CREATE FUNCTION botranks_auth_attempt(p_buckets text[], p_limits int[], p_windows_s float8[])
    RETURNS TABLE (limited int, retry_after_s float8, hit timestamptz)
    LANGUAGE plpgsql AS $$
    DECLARE
        now_ts timestamptz := clock_timestamp();
        n int := coalesce(cardinality(p_buckets), 0);
        win interval;
        all_hits timestamptz[];
        recent timestamptz[];
    BEGIN
        PERFORM set_config('synchronous_commit', 'off', true);
        FOR i IN 1 .. n LOOP
            win := make_interval(secs => p_windows_s[i]);
            -- insert-or-lock in one statement (safe against the clean-up below deleting the row)
            INSERT INTO auth_throttle AS t (bucket, expires_at) VALUES (p_buckets[i], now_ts)
                ON CONFLICT (bucket) DO UPDATE SET bucket = t.bucket
                RETURNING t.hits INTO all_hits;
            recent := array(SELECT h FROM unnest(all_hits) AS h WHERE h > now_ts - win ORDER BY h);
            IF cardinality(recent) <> cardinality(all_hits) THEN
                UPDATE auth_throttle SET hits = recent WHERE bucket = p_buckets[i];
            END IF;
            IF cardinality(recent) >= p_limits[i] THEN
                RETURN QUERY SELECT i, greatest(extract(epoch FROM recent[1] + win - now_ts)::float8, 0), now_ts;
                RETURN;
            END IF;
        END LOOP;
        FOR i IN 1 .. n LOOP
            UPDATE auth_throttle
                SET hits = hits || now_ts,
                    expires_at = greatest(expires_at, now_ts + make_interval(secs => p_windows_s[i]))
                WHERE bucket = p_buckets[i];
        END LOOP;
        -- forget buckets whose every hit has left its window (a few per attempt, never blocking)
        DELETE FROM auth_throttle WHERE bucket IN (
            SELECT bucket FROM auth_throttle WHERE expires_at < now_ts LIMIT 20 FOR UPDATE SKIP LOCKED);
        RETURN QUERY SELECT 0, 0::float8, now_ts;
    END $$;
    """),
    (8, """
    -- what subscribers may see of a strategy's positions and orders: none, delayed (> 24 h), live
    ALTER TABLE strategies ADD COLUMN show_positions text NOT NULL DEFAULT 'none'
        CHECK (show_positions IN ('none', 'delayed', 'live'));
    -- changes to a strategy's public face (name, visibility, benchmark, show_positions), in the
    -- same transaction as the change: the projector follows it like price_updates (a new
    -- benchmark changes the NAV days, so the projector re-derives that strategy)
    CREATE TABLE strategy_updates (
        id bigserial PRIMARY KEY,
        strategy_id uuid NOT NULL,
        benchmark_changed boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now()
    );
    ALTER TABLE projector_price_cursor ADD COLUMN strategy_update_id bigint NOT NULL DEFAULT 0;

    -- the leaderboard: one row per strategy with events, refreshed by the projector when its NAV
    -- or its public face changes (never a scan of all strategies per request)
    CREATE TABLE rm_leaderboard (
        strategy_id uuid PRIMARY KEY,
        name text NOT NULL,
        visibility text NOT NULL,
        total_return float8,
        cagr float8,
        sharpe float8,
        sortino float8,
        max_drawdown float8,
        volatility float8,
        track_days int NOT NULL DEFAULT 0,
        inception_date date,
        latest_date date,
        last_activity timestamptz,
        orders int NOT NULL DEFAULT 0,
        live_orders int NOT NULL DEFAULT 0,
        live_share float8,
        nav_version timestamptz,
        refreshed_at timestamptz NOT NULL DEFAULT clock_timestamp()
    );
    -- the filtered count, and the version (max refreshed_at) behind the pages' ETags
    CREATE INDEX rm_leaderboard_public_idx ON rm_leaderboard (visibility, track_days);
    CREATE INDEX rm_leaderboard_refreshed_idx ON rm_leaderboard (refreshed_at);
    -- one page of any sort, either direction, NULLs last, is an index scan (public rows only)
    CREATE INDEX rm_lb_total_return_d ON rm_leaderboard (total_return DESC NULLS LAST, strategy_id) WHERE visibility = 'public';
    CREATE INDEX rm_lb_total_return_a ON rm_leaderboard (total_return ASC NULLS LAST, strategy_id) WHERE visibility = 'public';
    CREATE INDEX rm_lb_cagr_d ON rm_leaderboard (cagr DESC NULLS LAST, strategy_id) WHERE visibility = 'public';
    CREATE INDEX rm_lb_cagr_a ON rm_leaderboard (cagr ASC NULLS LAST, strategy_id) WHERE visibility = 'public';
    CREATE INDEX rm_lb_sharpe_d ON rm_leaderboard (sharpe DESC NULLS LAST, strategy_id) WHERE visibility = 'public';
    CREATE INDEX rm_lb_sharpe_a ON rm_leaderboard (sharpe ASC NULLS LAST, strategy_id) WHERE visibility = 'public';
    CREATE INDEX rm_lb_sortino_d ON rm_leaderboard (sortino DESC NULLS LAST, strategy_id) WHERE visibility = 'public';
    CREATE INDEX rm_lb_sortino_a ON rm_leaderboard (sortino ASC NULLS LAST, strategy_id) WHERE visibility = 'public';
    CREATE INDEX rm_lb_max_drawdown_d ON rm_leaderboard (max_drawdown DESC NULLS LAST, strategy_id) WHERE visibility = 'public';
    CREATE INDEX rm_lb_max_drawdown_a ON rm_leaderboard (max_drawdown ASC NULLS LAST, strategy_id) WHERE visibility = 'public';
    CREATE INDEX rm_lb_volatility_d ON rm_leaderboard (volatility DESC NULLS LAST, strategy_id) WHERE visibility = 'public';
    CREATE INDEX rm_lb_volatility_a ON rm_leaderboard (volatility ASC NULLS LAST, strategy_id) WHERE visibility = 'public';
    CREATE INDEX rm_lb_track_days_d ON rm_leaderboard (track_days DESC NULLS LAST, strategy_id) WHERE visibility = 'public';
    CREATE INDEX rm_lb_track_days_a ON rm_leaderboard (track_days ASC NULLS LAST, strategy_id) WHERE visibility = 'public';
    CREATE INDEX rm_lb_last_activity_d ON rm_leaderboard (last_activity DESC NULLS LAST, strategy_id) WHERE visibility = 'public';
    CREATE INDEX rm_lb_last_activity_a ON rm_leaderboard (last_activity ASC NULLS LAST, strategy_id) WHERE visibility = 'public';
    CREATE INDEX rm_lb_live_share_d ON rm_leaderboard (live_share DESC NULLS LAST, strategy_id) WHERE visibility = 'public';
    CREATE INDEX rm_lb_live_share_a ON rm_leaderboard (live_share ASC NULLS LAST, strategy_id) WHERE visibility = 'public';
    CREATE INDEX rm_lb_name_d ON rm_leaderboard (name DESC NULLS LAST, strategy_id) WHERE visibility = 'public';
    CREATE INDEX rm_lb_name_a ON rm_leaderboard (name ASC NULLS LAST, strategy_id) WHERE visibility = 'public';

    -- each strategy's events as a hash chain, in arrival order: digest = sha256(previous digest
    -- || the event's stored JSON); a back-dated event appends, it never rewrites. `day` is the
    -- UTC date of the event's arrival (created_at), never earlier than the previous link's day.
    CREATE TABLE rm_chain (
        strategy_id uuid NOT NULL,
        seq int NOT NULL,
        notification_id bigint NOT NULL,
        digest bytea NOT NULL,
        day date NOT NULL,
        created_at timestamptz NOT NULL,
        PRIMARY KEY (strategy_id, seq)
    );
    CREATE UNIQUE INDEX rm_chain_notification_idx ON rm_chain (notification_id);
    -- the chain's head at the end of each day (published for good): the strategy page reads
    -- these, the projector extends the chain from the latest one
    CREATE TABLE rm_chain_days (
        strategy_id uuid NOT NULL,
        day date NOT NULL,
        events int NOT NULL,
        digest bytea NOT NULL,
        last_created_at timestamptz NOT NULL,
        PRIMARY KEY (strategy_id, day)
    );
    """),
    (9, """
    -- stock splits (Polygon's /v3/reference/splits shape), owned by market data like prices: every
    -- write also records (symbol, ex_date) in price_updates, so the projector re-derives every
    -- strategy that held the symbol from the ex-date on
    CREATE TABLE splits (
        symbol text NOT NULL,
        ex_date date NOT NULL,
        split_from numeric NOT NULL CHECK (split_from > 0),
        split_to numeric NOT NULL CHECK (split_to > 0),
        source text NOT NULL DEFAULT 'manual',
        fetched_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (symbol, ex_date)
    );
    -- what each split did to a strategy's holding (GET /corporate-actions), written by the fold
    CREATE TABLE rm_corporate_actions (
        strategy_id uuid NOT NULL,
        ex_date date NOT NULL,
        symbol text NOT NULL,
        split_from numeric NOT NULL,
        split_to numeric NOT NULL,
        quantity_before numeric NOT NULL,
        quantity_after numeric NOT NULL,
        cost_basis_before numeric NOT NULL,
        cost_basis_after numeric NOT NULL,
        PRIMARY KEY (strategy_id, ex_date, symbol)
    );
    """),
    (10, """
    -- partitioned projection (docs/NOTES.md "Partitions"): a strategy's partition is the top 32
    -- bits of its id modulo P; an event's is its strategy's, read from its stored JSON (the first
    -- "strategy_id", named before any free-form field), 0 when it has none. The same rule as
    -- libs/domain/botranks_domain/partition.py, so the event store can be read by partition.
    CREATE FUNCTION botranks_strategy_partition(strategy text, p int) RETURNS int
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT (('x' || lpad(substr(replace(coalesce(strategy, ''), '-', ''), 1, 8), 16, '0'))::bit(64)::bigint
                % p)::int
    $$;
    CREATE FUNCTION botranks_event_partition(state bytea, p int) RETURNS int
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT botranks_strategy_partition(
            substring(encode(state, 'escape') from '"strategy_id":"([0-9a-fA-F-]{36})"'), p)
    $$;
    -- how many partitions the projection is laid out in (changed only by a rebuild), and each
    -- partition's cursors in the price and strategy-update outboxes; each partition's position in
    -- the event log is its own tracking row ('projector.p<N>')
    CREATE TABLE projector_layout (
        singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
        partitions int NOT NULL CHECK (partitions BETWEEN 1 AND 1024)
    );
    INSERT INTO projector_layout (partitions) VALUES (16);
    CREATE TABLE projector_partition_cursors (
        partition int PRIMARY KEY,
        price_update_id bigint NOT NULL,
        strategy_update_id bigint NOT NULL
    );
    -- a projection that ran unpartitioned goes on from where it was, in every partition
    INSERT INTO projector_partition_cursors (partition, price_update_id, strategy_update_id)
        SELECT g, c.price_update_id, c.strategy_update_id FROM projector_price_cursor AS c, generate_series(0, 15) AS g;
    INSERT INTO botranks_tracking (application_name, notification_id)
        SELECT 'projector.p' || g, t.notification_id FROM botranks_tracking AS t, generate_series(0, 15) AS g
        WHERE t.application_name = 'projector';
    """),
    (11, """
    -- a rebuild's progress (one row; /metrics' botranks_rebuild_progress_ratio): the log it has read
    -- of the log it found, until it finishes
    CREATE TABLE projector_rebuild (
        singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
        started_at timestamptz NOT NULL,
        events_done bigint NOT NULL,
        events_total bigint NOT NULL,
        finished_at timestamptz
    );
    """),
    (12, """
    -- each stored event's strategy key, the top 32 bits of its strategy id (0 when it names none),
    -- computed once as the event is stored: a read by partition filters on strategy_key % P instead of
    -- running a regex over every row's JSON once per partition (the busiest statement
    -- under ingest: ~350 µs of PostgreSQL per event with 16 partitions, now ~7). Read straight from the
    -- 8 bytes after the first "strategy_id":" (every event names its strategy before any free-form
    -- field, and a quote inside a JSON string is escaped); botranks_domain.partition.event_strategy_key
    -- is the same rule in Python. Inline, not a SQL function: a function call per inserted row costs
    -- ~50 µs, this ~15 µs, inside the append's table lock.
    ALTER TABLE botranks_events ADD COLUMN strategy_key bigint GENERATED ALWAYS AS (
        CASE WHEN encode(substring(state FROM position('"strategy_id":"'::bytea IN state) + 15 FOR 8), 'escape')
                  ~ '^[0-9a-fA-F]{8}$'
                  AND position('"strategy_id":"'::bytea IN state) > 0
             THEN ('x' || encode(substring(state FROM position('"strategy_id":"'::bytea IN state) + 15 FOR 8),
                                 'escape'))::bit(32)::bigint
             ELSE 0 END) STORED;
    """),
    (13, """
    -- an append in one statement: eventsourcing's table lock, its NOTIFY and the insert, called on an
    -- autocommit connection, so the lock is held for the server's work and the commit only. The
    -- recorder's own path pipelines the same statements but holds the lock across a client round trip
    -- (sync, fetch the ids, COMMIT), which on a busy machine waits for the API process's next turn
    -- (the busiest wait under ingest). Same lock, same order of notification ids, same NOTIFY.
    CREATE FUNCTION botranks_append(ids uuid[], topics text[], states bytea[]) RETURNS SETOF bigint
    LANGUAGE plpgsql AS $$
    BEGIN
        LOCK TABLE botranks_events IN EXCLUSIVE MODE;
        NOTIFY botranks_events;
        RETURN QUERY
            INSERT INTO botranks_events (originator_id, originator_version, topic, state)
            SELECT i, 1, t, s FROM unnest(ids, topics, states) AS e(i, t, s)
            RETURNING notification_id;
    END
    $$;
    """),
    (14, """
    -- the store is read by the stored strategy_key since migration 12: the regex function is unused
    DROP FUNCTION botranks_event_partition(bytea, int);
    """),
    (15, """
    -- an account's strategies, counted under the per-account limit and listed a page at a time in
    -- creation order: the owner index gains the order's columns
    DROP INDEX strategies_owner_idx;
    CREATE INDEX strategies_owner_idx ON strategies (owner_id, created_at, id);
    """),
]


def migrate(conn: psycopg.Connection) -> int:
    """Apply pending migrations; returns the schema version now in force."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (locks.MIGRATION,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
        current = row[0] if not isinstance(row, dict) else row["coalesce"]
        for version, ddl in MIGRATIONS:
            if version > current:
                conn.execute(ddl)
                conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
                current = version
    return current
