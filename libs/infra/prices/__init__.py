"""The price cache: owner of ``prices``, ``splits``, ``price_updates``, ``market_data_symbols`` and
``symbol_currencies`` (``currencies.py``; the DDL in ``ddl.py``).

Closes are as traded (unadjusted); splits are kept beside them (DESIGN "Prices and splits").
Every write goes through :meth:`Prices.write_bars` or :meth:`Prices.write_splits`, which upsert
and record what changed in the ``price_updates`` outbox in the same transaction (the projector
follows that outbox to re-derive the strategies concerned from the first changed day). Reads: the
close of a day (orders sent without a price), the price book of a fold (closes and splits), the
outbox, a benchmark's existence and version, split-adjusted closes for return series, and the
market-data daemon's own bookkeeping. Nothing else runs SQL on these tables.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from eventsourcing.postgres import PostgresDatastore
from psycopg.rows import tuple_row

from botranks_domain.bars import Bar, Split
from botranks_domain.ledger import LEDGER_CONTEXT
from botranks_domain.nav import PriceBook

from ..pg import DictCursor, one, reading
from .currencies import CurrencyConflict, record_currencies, recorded_currencies
from .ddl import MIGRATIONS

__all__ = ["Prices", "upsert_bars", "upsert_splits", "BATCH_SIZE", "MIGRATIONS", "CurrencyConflict"]

BATCH_SIZE = 500

# Missing optional fields (NULL) keep what is stored: a close-only file does not erase the
# open/high/low/volume that Polygon gave. A row is touched only when something really changed.
_UPSERT = """
INSERT INTO prices AS p (symbol, date, open, high, low, close, volume, source, fetched_at)
SELECT u.symbol, u.date, u.open, u.high, u.low, u.close, u.volume, %(source)s, now()
FROM unnest(%(symbol)s::text[], %(date)s::date[], %(open)s::numeric[], %(high)s::numeric[],
            %(low)s::numeric[], %(close)s::numeric[], %(volume)s::numeric[])
     AS u(symbol, date, open, high, low, close, volume)
ON CONFLICT (symbol, date) DO UPDATE SET
    close = EXCLUDED.close,
    open = coalesce(EXCLUDED.open, p.open),
    high = coalesce(EXCLUDED.high, p.high),
    low = coalesce(EXCLUDED.low, p.low),
    volume = coalesce(EXCLUDED.volume, p.volume),
    source = EXCLUDED.source,
    fetched_at = now()
WHERE p.close IS DISTINCT FROM EXCLUDED.close
   OR p.open IS DISTINCT FROM coalesce(EXCLUDED.open, p.open)
   OR p.high IS DISTINCT FROM coalesce(EXCLUDED.high, p.high)
   OR p.low IS DISTINCT FROM coalesce(EXCLUDED.low, p.low)
   OR p.volume IS DISTINCT FROM coalesce(EXCLUDED.volume, p.volume)
RETURNING p.symbol, p.date AS day
"""

_OUTBOX = """
INSERT INTO price_updates (symbol, from_date)
SELECT u.symbol, u.from_date FROM unnest(%s::text[], %s::date[]) AS u(symbol, from_date)
"""


def _field(row: Any, name: str, index: int) -> Any:
    return row[name] if isinstance(row, dict) else row[index]


def _upsert_with_outbox(
    curs: Any, sql: str, rows: dict[tuple[str, date], Any], source: str, columns: dict[str, Any]
) -> int:
    """Run ``sql`` (an ``unnest`` upsert returning each (symbol, day) it changed) over ``rows`` in batches
    of 500, in key order (a stable lock order across writers), then add one ``price_updates`` row per
    changed symbol, from its earliest changed day. ``columns``: parameter name -> value of a row."""
    if not source:
        raise ValueError("source must be a non-empty string")
    ordered = [rows[key] for key in sorted(rows)]
    changed, earliest = 0, dict[str, date]()
    for start in range(0, len(ordered), BATCH_SIZE):
        batch = ordered[start : start + BATCH_SIZE]
        curs.execute(sql, {"source": source, **{name: [get(r) for r in batch] for name, get in columns.items()}})
        for row in curs.fetchall():
            symbol, day = _field(row, "symbol", 0), _field(row, "day", 1)
            changed += 1
            if symbol not in earliest or day < earliest[symbol]:
                earliest[symbol] = day
    if earliest:
        symbols = sorted(earliest)
        curs.execute(_OUTBOX, (symbols, [earliest[s] for s in symbols]))
    return changed


def upsert_bars(curs: Any, bars: list[Bar], source: str) -> int:
    """Insert or update ``bars`` in ``prices`` (only rows whose values changed), then one
    ``price_updates`` row per changed symbol (from its earliest changed date).

    Duplicate (symbol, date) pairs keep the last bar. Returns the number of rows inserted or
    changed. Runs on the caller's cursor, inside the caller's transaction.
    """
    return _upsert_with_outbox(
        curs,
        _UPSERT,
        {(b.symbol, b.date): b for b in bars},
        source,
        {
            name: (lambda b, name=name: getattr(b, name))
            for name in ("symbol", "date", "open", "high", "low", "close", "volume")
        },
    )


_UPSERT_SPLITS = """
INSERT INTO splits AS s (symbol, ex_date, split_from, split_to, source, fetched_at)
SELECT u.symbol, u.ex_date, u.split_from, u.split_to, %(source)s, now()
FROM unnest(%(symbol)s::text[], %(ex_date)s::date[], %(split_from)s::numeric[], %(split_to)s::numeric[])
     AS u(symbol, ex_date, split_from, split_to)
ON CONFLICT (symbol, ex_date) DO UPDATE SET
    split_from = EXCLUDED.split_from, split_to = EXCLUDED.split_to, source = EXCLUDED.source, fetched_at = now()
WHERE s.split_from <> EXCLUDED.split_from OR s.split_to <> EXCLUDED.split_to
RETURNING s.symbol, s.ex_date AS day
"""


def upsert_splits(curs: Any, splits: list[Split], source: str) -> int:
    """Insert or update ``splits`` (only those new or changed), then one ``price_updates`` row per
    changed symbol from its earliest changed ex-date. Duplicate (symbol, ex_date) pairs keep the last.
    Returns the number of splits inserted or changed. Runs in the caller's transaction."""
    return _upsert_with_outbox(
        curs,
        _UPSERT_SPLITS,
        {(sp.symbol, sp.ex_date): sp for sp in splits},
        source,
        {name: (lambda sp, name=name: getattr(sp, name)) for name in ("symbol", "ex_date", "split_from", "split_to")},
    )


_SPLITS_OF = (
    "SELECT symbol, ex_date, split_from, split_to FROM splits WHERE symbol = ANY(%s)"
    " AND ex_date > %s AND ex_date <= %s ORDER BY symbol, ex_date"
)


def _splits_of(curs: Any, symbols: list[str], after: date, until: date) -> list[Split]:
    with curs.connection.cursor(row_factory=tuple_row) as tuples:
        rows = tuples.execute(_SPLITS_OF, (symbols, after, until)).fetchall()
    return [Split(*row) for row in rows]


class Prices:
    """The price cache's one door (see the module docstring)."""

    def __init__(self, datastore: PostgresDatastore) -> None:
        self.datastore = datastore

    # ------------------------------------------------------------ writes (market data)

    def write_bars(self, bars: list[Bar], source: str) -> int:
        """Upsert bars and their outbox rows in one transaction; returns the rows changed."""
        with self.datastore.transaction(commit=True) as curs:
            return upsert_bars(curs, bars, source)

    def write_splits(self, splits: list[Split], source: str) -> int:
        """Upsert splits and their outbox rows in one transaction; returns the splits new or changed."""
        with self.datastore.transaction(commit=True) as curs:
            return upsert_splits(curs, splits, source)

    def record_currencies(self, currencies: dict[str, str], source: str) -> int:
        """Record the quote currency of symbols (``CurrencyConflict``, nothing written, on a disagreement)."""
        with self.datastore.transaction(commit=True) as curs:
            return record_currencies(curs, currencies, source)

    def currencies(self, symbols: Iterable[str]) -> dict[str, str]:
        """The recorded quote currency of each of ``symbols`` that has one."""
        with reading(self.datastore) as curs:
            return recorded_currencies(curs, symbols)

    def first_closes(self, symbols: Iterable[str]) -> dict[str, date]:
        """Each symbol's earliest close day (those with any): whether a rate exists on a day."""
        with reading(self.datastore) as curs:
            rows = curs.execute(
                "SELECT s.symbol, (SELECT min(date) FROM prices p WHERE p.symbol = s.symbol) AS first"
                " FROM unnest(%s::text[]) AS s(symbol)",
                (sorted(set(symbols)),),
            ).fetchall()
        return {r["symbol"]: r["first"] for r in rows if r["first"] is not None}

    def version_of(self, symbols: Iterable[str]) -> int | None:
        """The latest outbox id of any of ``symbols`` (None: never written): a cache key's price version."""
        with reading(self.datastore) as curs:
            return one(
                curs.execute("SELECT max(id) AS v FROM price_updates WHERE symbol = ANY(%s)", (sorted(set(symbols)),))
            )["v"]

    def book(self, symbols: set[str], until: date) -> PriceBook:
        """Every close of ``symbols`` up to ``until`` (with their splits), on its own connection."""
        with reading(self.datastore) as curs:
            return PricesTx(curs).price_book(symbols, None, until)

    def splits(self, symbols: Iterable[str]) -> list[Split]:
        """The known splits of ``symbols``, by symbol and ex-date."""
        with reading(self.datastore) as curs:
            return _splits_of(curs, sorted(symbols), date.min, date.max)

    def record_fetch(self, symbol: str, start: date, end: date) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                "INSERT INTO market_data_symbols (symbol, fetched_from, fetched_through, refreshed_at)"
                " VALUES (%s, %s, %s, now()) ON CONFLICT (symbol) DO UPDATE SET"
                " fetched_from = least(market_data_symbols.fetched_from, EXCLUDED.fetched_from),"
                " fetched_through = greatest(market_data_symbols.fetched_through, EXCLUDED.fetched_through),"
                " refreshed_at = now(), last_error = NULL",
                (symbol, start, end),
            )

    def record_fetch_error(self, symbol: str, error: str) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                "INSERT INTO market_data_symbols (symbol, refreshed_at, last_error) VALUES (%s, now(), %s)"
                " ON CONFLICT (symbol) DO UPDATE SET refreshed_at = now(), last_error = EXCLUDED.last_error",
                (symbol, error),
            )

    def fetch_status(self, symbols: Iterable[str]) -> dict[str, tuple[date | None, datetime | None]]:
        """(fetched_through, refreshed_at) of each symbol the daemon has fetched or tried."""
        with reading(self.datastore) as curs:
            rows = curs.execute(
                "SELECT symbol, fetched_through, refreshed_at FROM market_data_symbols WHERE symbol = ANY(%s)",
                (list(symbols),),
            ).fetchall()
        return {r["symbol"]: (r["fetched_through"], r["refreshed_at"]) for r in rows}

    # ------------------------------------------------------------ reads

    def closes_on(self, wanted: set[tuple[str, datetime]]) -> dict[tuple[str, date], Decimal]:
        """Closes for (symbol, UTC date of the timestamp) pairs: the price of an order sent without one."""
        if not wanted:
            return {}
        symbols = [s for s, _ in wanted]
        dates = [ts.astimezone(UTC).date() for _, ts in wanted]
        with reading(self.datastore) as curs:
            rows = curs.execute(
                "SELECT p.symbol, p.date, p.close FROM prices p"
                " JOIN unnest(%s::text[], %s::date[]) AS w(symbol, date) USING (symbol, date)",
                (symbols, dates),
            ).fetchall()
        return {(r["symbol"], r["date"]): r["close"] for r in rows}

    def latest_update(self) -> int:
        """The last ``price_updates`` id (0: none), on its own connection."""
        with reading(self.datastore) as curs:
            return PricesTx(curs).last_update_id()

    def benchmark_status(self, symbol: str) -> tuple[bool, int | None]:
        """Whether ``symbol`` has any price, and its price version (the latest outbox id)."""
        with reading(self.datastore) as curs:
            row = one(
                curs.execute(
                    "SELECT EXISTS (SELECT 1 FROM prices WHERE symbol = %(b)s) AS known,"
                    " (SELECT max(id) FROM price_updates WHERE symbol = %(b)s) AS version",
                    {"b": symbol},
                )
            )
        return row["known"], row["version"]

    def closes_between(self, symbol: str, start: date, end: date) -> list[tuple[date, Decimal]]:
        """Closes in [start, end], split-adjusted into the share units of ``end`` (a close before a
        split's ex-date x from/to): a return series without the split's jump."""
        with reading(self.datastore) as curs:
            rows = curs.execute(
                "SELECT date, close FROM prices WHERE symbol = %s AND date BETWEEN %s AND %s ORDER BY date",
                (symbol, start, end),
            ).fetchall()
            splits = _splits_of(curs, [symbol], start, end) if rows else []
        closes = []
        for r in rows:
            close = r["close"]
            for split in splits:
                if split.ex_date > r["date"]:
                    close = LEDGER_CONTEXT.divide(LEDGER_CONTEXT.multiply(close, split.split_from), split.split_to)
            closes.append((r["date"], close))
        return closes


class PricesTx:
    """The price cache's reads inside another owner's transaction: a unit of work's ``prices``
    (``LedgerWriter.prices``)."""

    def __init__(self, curs: DictCursor) -> None:
        self._curs = curs
        #: symbol -> recorded currency (None: none recorded), read at most once a transaction
        self._currencies: dict[str, str | None] = {}

    def price_book(self, symbols: set[str], after: date | None, until: date) -> PriceBook:
        """Closes after ``after`` (all when None) up to ``until``, plus each symbol's last close on or
        before ``after``: what a fold from ``after`` on marks with. Runs in the caller's transaction."""
        if not symbols:
            return PriceBook({})
        params = {"symbols": list(symbols), "after": after or date.min, "until": until}
        conn = self._curs.connection
        # thousands of rows: skip dict building; the closes and the splits in one round trip (a pipeline)
        with conn.cursor(row_factory=tuple_row) as tuples, conn.cursor(row_factory=tuple_row) as split_rows:
            with conn.pipeline():
                tuples.execute(
                    "SELECT symbol, date, close FROM prices WHERE symbol = ANY(%(symbols)s)"
                    " AND date > %(after)s AND date <= %(until)s"
                    # each symbol's last close on or before `after`: one index probe per symbol (a DISTINCT ON
                    # walked every earlier close of every symbol)
                    " UNION ALL SELECT s.symbol, last.date, last.close FROM unnest(%(symbols)s::text[]) AS s(symbol)"
                    " CROSS JOIN LATERAL (SELECT date, close FROM prices WHERE symbol = s.symbol"
                    " AND date <= least(%(after)s, %(until)s) ORDER BY date DESC LIMIT 1) AS last"
                    " ORDER BY 1, 2",
                    params,
                )
                split_rows.execute(_SPLITS_OF, (params["symbols"], date.min, until))
            rows = tuples.fetchall()
            splits = [Split(*row) for row in split_rows.fetchall()]
        closes: dict[str, list] = defaultdict(list)
        for symbol, day, close in rows:
            closes[symbol].append((day, close))
        return PriceBook(closes, splits)

    def prefetch_currencies(self, symbols: Iterable[str]) -> None:
        """Read the recorded currencies of ``symbols`` in one statement; :meth:`currencies` then answers
        for them without a query (for the rest of the caller's transaction: a projection batch's)."""
        wanted = set(symbols)
        found = recorded_currencies(self._curs, wanted)
        self._currencies.update({s: found.get(s) for s in wanted})

    def currencies(self, symbols: Iterable[str]) -> dict[str, str]:
        """The recorded quote currency of each of ``symbols`` that has one. Caller's transaction."""
        wanted = set(symbols)
        missing = wanted.difference(self._currencies)
        if missing:
            self.prefetch_currencies(missing)
        return {s: c for s in wanted if (c := self._currencies[s]) is not None}

    def updates_after(self, update_id: int, limit: int) -> list[tuple[int, str, date]]:
        """Outbox rows (id, symbol, from date) after ``update_id``, in order. Caller's transaction."""
        rows = self._curs.execute(
            "SELECT id, symbol, from_date FROM price_updates WHERE id > %s ORDER BY id LIMIT %s", (update_id, limit)
        ).fetchall()
        return [(r["id"], r["symbol"], r["from_date"]) for r in rows]

    def last_update_id(self) -> int:
        return one(self._curs.execute("SELECT coalesce(max(id), 0) AS m FROM price_updates"))["m"]
