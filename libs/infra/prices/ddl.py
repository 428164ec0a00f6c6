"""The price cache's DDL."""

#: The price cache's tables, by the migration version that creates or changes them (``schema`` applies
#: every owner's pieces of a version in one ordered sequence; the text is what was applied: never edited)
MIGRATIONS: dict[int, str] = {
    1: """
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
    """,
    2: """
    -- market data: every write to `prices` also records which (symbol, from date) changed,
    -- so the projector can re-mark the strategies concerned (an outbox it follows by id)
    CREATE TABLE price_updates (
        id bigserial PRIMARY KEY,
        symbol text NOT NULL,
        from_date date NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
    );
    """,
    3: """
    -- the market-data component's own bookkeeping: what it fetched from Polygon, and when
    CREATE TABLE market_data_symbols (
        symbol text PRIMARY KEY,
        fetched_from date,
        fetched_through date,
        refreshed_at timestamptz,
        last_error text
    );
    """,
    5: """
    -- /performance caches on (NAV version, benchmark price version)
    CREATE INDEX price_updates_symbol_idx ON price_updates (symbol, id);
    """,
    9: """
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
    """,
    18: """
    -- currencies (issue 23): the currency each symbol is quoted in, where a source said so (Polygon's
    -- ticker details, a price file's currency column, the demo); a symbol without a row is quoted in
    -- what its name says (C:EURUSD: USD, BTC-EUR: EUR), else USD. A row never changes silently.
    CREATE TABLE symbol_currencies (
        symbol text PRIMARY KEY,
        currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
        source text NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now()
    );
    """,
}
