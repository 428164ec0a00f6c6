"""The read model's tables (``rm_*``, the projector's cursors, layout and rebuild progress), by the
migration version that creates or changes them (``schema`` applies every owner's pieces of a version in
one ordered sequence; the text is what was applied: never edited)."""

from __future__ import annotations

MIGRATIONS: dict[int, str] = {
    1: """
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
    """,
    2: """
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
    -- what the fold made of each snapshot (the POST /positions/snapshot response)
    ALTER TABLE rm_snapshots ADD COLUMN upserted int, ADD COLUMN removed int, ADD COLUMN reconciliation_entries int;
    CREATE INDEX rm_orders_list_idx ON rm_orders (strategy_id, notification_id);
    CREATE INDEX rm_cash_list_idx ON rm_cash_events (strategy_id, notification_id);
    CREATE INDEX rm_reconciliation_list_idx ON rm_reconciliation_log (strategy_id, id);
    """,
    6: """
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
    """,
    8: """
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
    """,  # noqa: E501 - a migration's text is what was applied: never re-wrapped
    9: """
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
    """,
    10: """
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
    """,
    11: """
    -- a rebuild's progress (one row; /metrics' botranks_rebuild_progress_ratio): the log it has read
    -- of the log it found, until it finishes
    CREATE TABLE projector_rebuild (
        singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
        started_at timestamptz NOT NULL,
        events_done bigint NOT NULL,
        events_total bigint NOT NULL,
        finished_at timestamptz
    );
    """,
    16: """
    -- issue 21: how sure each row's Sharpe ratio is (docs/METHODOLOGY.md#significance), on a risk-free
    -- rate of 0. sharpe_daily is the per-day SR the trials' variance is taken over, sharpe_daily_std its
    -- standard error; dsr was computed against the trials of rm_trials' trials_version.
    ALTER TABLE rm_leaderboard
        ADD COLUMN observations int NOT NULL DEFAULT 0,
        ADD COLUMN sharpe_daily float8,
        ADD COLUMN sharpe_daily_std float8,
        ADD COLUMN psr float8,
        ADD COLUMN dsr float8,
        ADD COLUMN sharpe_ci_low float8,
        ADD COLUMN sharpe_ci_high float8,
        ADD COLUMN min_track_record_days int,
        ADD COLUMN trials_version bigint NOT NULL DEFAULT 0;
    CREATE INDEX rm_lb_trials_version ON rm_leaderboard (trials_version);
    CREATE INDEX rm_lb_psr_d ON rm_leaderboard (psr DESC NULLS LAST, strategy_id) WHERE visibility = 'public';
    CREATE INDEX rm_lb_psr_a ON rm_leaderboard (psr ASC NULLS LAST, strategy_id) WHERE visibility = 'public';
    CREATE INDEX rm_lb_dsr_d ON rm_leaderboard (dsr DESC NULLS LAST, psr DESC NULLS LAST, strategy_id)
        WHERE visibility = 'public';
    CREATE INDEX rm_lb_dsr_a ON rm_leaderboard (dsr ASC NULLS LAST, psr ASC NULLS LAST, strategy_id)
        WHERE visibility = 'public';
    -- every row is recomputed with its new figures
    UPDATE rm_leaderboard SET nav_version = NULL;
    -- the instance's trials (strategies with >= 30 daily returns, deleted ones' tombstones included): N and
    -- the std of their per-day Sharpes; version moves when either changes. A cache of an aggregate (not a
    -- rebuilt read model: a rebuild's rows are judged against it, and the upkeep recomputes it)
    CREATE TABLE rm_trials (
        singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
        trials int NOT NULL,
        sharpe_std float8,
        version bigint NOT NULL,
        refreshed_at timestamptz NOT NULL
    );
    INSERT INTO rm_trials VALUES (true, 0, NULL, 1, clock_timestamp());
    """,
    17: """
    -- issue 22: a strategy's trades (open, closed, reset), with the running sums every published figure is
    -- computed from; written with the strategy's derivation (the open ones replaced each time)
    CREATE TABLE rm_trades (
        strategy_id uuid NOT NULL,
        trade_id uuid NOT NULL,
        symbol text NOT NULL,
        direction text NOT NULL,
        status text NOT NULL,
        opened_at timestamptz NOT NULL,
        closed_at timestamptz,
        quantity numeric NOT NULL,
        max_quantity numeric NOT NULL,
        entry_value numeric NOT NULL,
        entry_quantity numeric NOT NULL,
        exit_value numeric NOT NULL,
        exit_quantity numeric NOT NULL,
        fees numeric NOT NULL,
        gross numeric NOT NULL,
        fills int NOT NULL,
        notional numeric NOT NULL,
        PRIMARY KEY (strategy_id, trade_id)
    );
    CREATE INDEX rm_trades_opened_idx ON rm_trades (strategy_id, opened_at, trade_id);
    CREATE INDEX rm_trades_closed_idx ON rm_trades (strategy_id, closed_at);
    -- the board sorts by closed trades, their win rate and profit factor too
    ALTER TABLE rm_leaderboard
        ADD COLUMN trades int NOT NULL DEFAULT 0,
        ADD COLUMN win_rate float8,
        ADD COLUMN profit_factor float8;
    CREATE INDEX rm_lb_trades_d ON rm_leaderboard (trades DESC NULLS LAST, strategy_id) WHERE visibility = 'public';
    CREATE INDEX rm_lb_trades_a ON rm_leaderboard (trades ASC NULLS LAST, strategy_id) WHERE visibility = 'public';
    CREATE INDEX rm_lb_win_rate_d ON rm_leaderboard (win_rate DESC NULLS LAST, strategy_id)
        WHERE visibility = 'public';
    CREATE INDEX rm_lb_win_rate_a ON rm_leaderboard (win_rate ASC NULLS LAST, strategy_id)
        WHERE visibility = 'public';
    CREATE INDEX rm_lb_profit_factor_d ON rm_leaderboard (profit_factor DESC NULLS LAST, strategy_id)
        WHERE visibility = 'public';
    CREATE INDEX rm_lb_profit_factor_a ON rm_leaderboard (profit_factor ASC NULLS LAST, strategy_id)
        WHERE visibility = 'public';
    UPDATE rm_leaderboard SET nav_version = NULL;
    """,
    18: """
    -- currencies (issue 23): a trade's sums in the base currency beside those in the instrument's
    -- (NULL in rows written before: the same as gross / fees / notional, all in one currency then)
    ALTER TABLE rm_trades
        ADD COLUMN gross_base numeric,
        ADD COLUMN fees_local numeric,
        ADD COLUMN notional_base numeric;
    """,
    20: """
    -- the board's sparklines (issue 24): each row's growth index at up to 48 NAV days, written by the
    -- projector with the row; every row is refreshed once to get one
    ALTER TABLE rm_leaderboard ADD COLUMN sparkline text;
    UPDATE rm_leaderboard SET nav_version = NULL;
    """,
    22: """
    -- profiles (issue 24): what the board searches and filters by besides its figures: the owner's
    -- handle, the base currency, the markets derived from the symbols ordered, the owner's tags and
    -- the equity bracket (botranks_domain.profiles); every row is refreshed once to get them
    ALTER TABLE rm_leaderboard
        ADD COLUMN owner_handle text,
        ADD COLUMN base_currency text NOT NULL DEFAULT 'USD',
        ADD COLUMN markets text[] NOT NULL DEFAULT '{}',
        ADD COLUMN tags text[] NOT NULL DEFAULT '{}',
        ADD COLUMN equity_bracket smallint;
    CREATE INDEX rm_lb_owner_handle ON rm_leaderboard (owner_handle) WHERE visibility = 'public';
    UPDATE rm_leaderboard SET nav_version = NULL;
    """,
    24: """
    -- speed (issue 25): a row's order counts and symbols go on from where its last refresh counted
    -- (rm_orders' notification id) instead of counting every order of the strategy again; 0: not yet
    -- counted that way (the next refresh counts everything once)
    ALTER TABLE rm_leaderboard
        ADD COLUMN orders_counted_to bigint NOT NULL DEFAULT 0,
        ADD COLUMN order_symbols text[] NOT NULL DEFAULT '{}';
    """,
    25: """
    -- speed (issue 25): the md5 of the NAV rows a row's figures were computed from; a refresh that finds
    -- the same digest (an order after the last priced day) keeps those figures instead of computing them
    -- again from the whole history; NULL: computed at the next refresh
    ALTER TABLE rm_leaderboard ADD COLUMN nav_digest text;
    """,
}
