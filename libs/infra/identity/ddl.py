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
    23: """
    -- issue 25: the key checks of many concurrent requests in ONE statement (a group commit of rate-limit
    -- hits, docs/notes/read-path.md). Same rules as before, hit by hit in arrival order (p_hashes[i],
    -- p_strategies[i]): each key's row is locked once, in key order (no deadlock between replicas'
    -- batches), its window pruned, the batch's hits admitted while the window has room, written back once.
    -- A window keeps hits per second of arrival (slots: the LAST hit's time of each wall-clock second,
    -- ascending; slot_hits: how many), at most 61 slots whatever the limit (a timestamp per hit grew to
    -- 60,000 at a limit of 1,000/min). A second's hits count until its last hit leaves the window: never
    -- fewer hits than exact timestamps would count (the limit holds exactly), an earlier hit of the same
    -- second leaves < 1 s late; Retry-After stays within the window.
    -- The older hits array is no longer read (the window starts empty: ephemeral, like after a crash).
    ALTER TABLE rate_windows
        ADD COLUMN slots timestamptz[] NOT NULL DEFAULT '{}',
        ADD COLUMN slot_hits int[] NOT NULL DEFAULT '{}';
    UPDATE rate_windows SET hits = '{}';

    CREATE FUNCTION botranks_check_keys(p_hashes bytea[], p_strategies uuid[], p_limit int, p_window_s float8)
    RETURNS TABLE (i int, outcome text, remaining int, reset_s float8, base_currency text, benchmark text)
    LANGUAGE plpgsql AS $$
    DECLARE
        now_ts timestamptz := clock_timestamp();
        win interval := make_interval(secs => p_window_s);
        oldest timestamptz := now_ts - make_interval(secs => p_window_s);
        r record;
        cur uuid;
        admitted int := 0;
        counted int := 0;
        first_kept int;
        pruned boolean := false;
        s timestamptz[];
        n int[];
    BEGIN
        PERFORM set_config('synchronous_commit', 'off', true);
        FOR r IN
            SELECT h.ord::int AS ord, h.sid, k.id AS key_id, k.strategy_id AS key_strategy, k.revoked_at,
                   st.id IS NOT NULL AS known, st.base_currency AS currency, nullif(st.benchmark, '') AS bench
            FROM unnest(p_hashes, p_strategies) WITH ORDINALITY AS h(hash, sid, ord)
            LEFT JOIN api_keys AS k ON k.key_hash = h.hash
            LEFT JOIN strategies AS st ON st.id = h.sid
            ORDER BY k.id NULLS FIRST, h.ord
        LOOP
            IF r.key_id IS NULL OR r.revoked_at IS NOT NULL THEN
                RETURN QUERY SELECT r.ord, 'unauthorized'::text, 0, 0::float8, NULL::text, NULL::text;
                CONTINUE;
            END IF;
            IF cur IS DISTINCT FROM r.key_id THEN
                IF cur IS NOT NULL AND (admitted > 0 OR pruned) THEN
                    PERFORM botranks_record_hits(cur, s, n, admitted, now_ts);
                END IF;
                cur := r.key_id;
                admitted := 0;
                SELECT w.slots, w.slot_hits INTO s, n FROM rate_windows AS w WHERE w.key_id = cur FOR UPDATE;
                IF NOT FOUND THEN
                    INSERT INTO rate_windows (key_id) VALUES (cur) ON CONFLICT DO NOTHING;
                    SELECT w.slots, w.slot_hits INTO s, n FROM rate_windows AS w WHERE w.key_id = cur FOR UPDATE;
                END IF;
                first_kept := 1;
                WHILE first_kept <= cardinality(s) AND s[first_kept] <= oldest LOOP
                    first_kept := first_kept + 1;
                END LOOP;
                pruned := first_kept > 1;
                s := s[first_kept:];
                n := n[first_kept:];
                counted := coalesce((SELECT sum(x) FROM unnest(n) AS x), 0);
            END IF;
            IF counted + admitted >= p_limit THEN
                RETURN QUERY SELECT r.ord, 'limited'::text, 0,
                    greatest(extract(epoch FROM coalesce(s[1], now_ts) + win - now_ts), 0)::float8,
                    NULL::text, NULL::text;
                CONTINUE;
            END IF;
            admitted := admitted + 1;
            RETURN QUERY SELECT r.ord,
                CASE WHEN NOT r.known THEN 'not_found' WHEN r.key_strategy <> r.sid THEN 'forbidden' ELSE 'ok' END,
                p_limit - counted - admitted,
                extract(epoch FROM coalesce(s[1], now_ts) + win - now_ts)::float8,
                r.currency, r.bench;
        END LOOP;
        IF cur IS NOT NULL AND (admitted > 0 OR pruned) THEN
            PERFORM botranks_record_hits(cur, s, n, admitted, now_ts);
        END IF;
    END $$;

    -- a key's pruned window plus the hits a batch admitted at p_now (and when the key was last used)
    CREATE FUNCTION botranks_record_hits(
        p_key uuid, p_slots timestamptz[], p_hits int[], p_admitted int, p_now timestamptz)
    RETURNS void LANGUAGE plpgsql AS $$
    DECLARE
        last int := cardinality(p_slots);
    BEGIN
        IF p_admitted > 0 THEN
            -- into this second's slot, or a later one (a batch that waited for the row lock: counted later)
            IF last > 0 AND date_trunc('second', p_slots[last]) >= date_trunc('second', p_now) THEN
                p_hits[last] := p_hits[last] + p_admitted;
                p_slots[last] := greatest(p_slots[last], p_now);
            ELSE
                p_slots := p_slots || p_now;
                p_hits := p_hits || p_admitted;
            END IF;
            UPDATE api_keys SET last_used_at = p_now
                WHERE id = p_key AND (last_used_at IS NULL OR last_used_at < p_now - interval '5 seconds');
        END IF;
        UPDATE rate_windows SET slots = p_slots, slot_hits = p_hits WHERE key_id = p_key;
    END $$;

    -- the one-request check (an API key on a page's download) shares the windows of the batched one
    CREATE OR REPLACE FUNCTION botranks_check_key(p_hash bytea, p_strategy uuid, p_limit int, p_window_s float8)
    RETURNS TABLE (outcome text, remaining int, reset_s float8)
    LANGUAGE sql AS $$
        SELECT c.outcome, c.remaining, c.reset_s
        FROM botranks_check_keys(ARRAY[p_hash], ARRAY[p_strategy], p_limit, p_window_s) AS c
    $$;
    """,
}
