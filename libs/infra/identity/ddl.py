"""Identity's tables, by the migration version that creates or changes them (``schema`` applies
every owner's pieces of a version in one ordered sequence; the text is what was applied: never edited)."""

from __future__ import annotations

MIGRATIONS: dict[int, str] = {
    1: """
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
    """,
    2: """
    CREATE INDEX strategies_benchmark_idx ON strategies (benchmark);
    """,
    4: """
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
    """,
    5: """
    -- rate-limit hits are ephemeral: no WAL, no fsync on the request path (a crash forgets a minute of hits)
    ALTER TABLE rate_windows SET UNLOGGED;
    """,
    7: """
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
    """,
    8: """
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
    """,
    15: """
    -- an account's strategies, counted under the per-account limit and listed a page at a time in
    -- creation order: the owner index gains the order's columns
    DROP INDEX strategies_owner_idx;
    CREATE INDEX strategies_owner_idx ON strategies (owner_id, created_at, id);
    """,
    16: """
    -- issue 21: a deleted strategy still counts as a trial of the instance (its last per-day Sharpe and
    -- daily returns, keyed by a digest of its id, nothing else of it) and in its owner's record
    CREATE TABLE strategy_tombstones (
        digest bytea PRIMARY KEY,
        sharpe_daily float8,
        observations int NOT NULL,
        deleted_at timestamptz NOT NULL DEFAULT now()
    );
    ALTER TABLE users ADD COLUMN strategies_deleted int NOT NULL DEFAULT 0;
    """,
    21: """
    -- issue 24, profiles: an owner's public handle (stored lower-cased, unique; never the email), a
    -- strategy's description (Markdown, shown without raw HTML) and the owner's tags for it
    ALTER TABLE users ADD COLUMN handle text;
    CREATE UNIQUE INDEX users_handle_idx ON users (handle);
    ALTER TABLE strategies ADD COLUMN description text NOT NULL DEFAULT '';
    ALTER TABLE strategies ADD COLUMN tags text[] NOT NULL DEFAULT '{}';
    """,
}
