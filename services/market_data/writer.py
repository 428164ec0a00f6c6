"""Upsert bars into the ``prices`` cache and record the change in the ``price_updates`` outbox.

Takes a cursor so that the caller owns the transaction: prices and outbox commit together.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from .bars import Bar

__all__ = ["upsert_bars", "BATCH_SIZE"]

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
RETURNING p.symbol, p.date
"""

_OUTBOX = """
INSERT INTO price_updates (symbol, from_date)
SELECT u.symbol, u.from_date FROM unnest(%s::text[], %s::date[]) AS u(symbol, from_date)
"""


def _field(row: Any, name: str, index: int) -> Any:
    return row[name] if isinstance(row, dict) else row[index]


def upsert_bars(curs: Any, bars: list[Bar], source: str) -> int:
    """Insert or update ``bars`` in ``prices`` (only rows whose values changed), in batches of 500,
    then add one ``price_updates`` row per changed symbol (from its earliest changed date).

    Duplicate (symbol, date) pairs keep the last bar. Returns the number of rows inserted or
    changed. Runs on the caller's cursor, inside the caller's transaction.
    """
    if not source:
        raise ValueError("source must be a non-empty string")
    latest: dict[tuple[str, date], Bar] = {}
    for bar in bars:
        latest[(bar.symbol, bar.date)] = bar
    ordered = [latest[key] for key in sorted(latest)]  # stable lock order across writers

    changed = 0
    earliest: dict[str, date] = {}
    for start in range(0, len(ordered), BATCH_SIZE):
        batch = ordered[start:start + BATCH_SIZE]
        params = {
            "source": source,
            "symbol": [b.symbol for b in batch],
            "date": [b.date for b in batch],
            "open": [b.open for b in batch],
            "high": [b.high for b in batch],
            "low": [b.low for b in batch],
            "close": [b.close for b in batch],
            "volume": [b.volume for b in batch],
        }
        curs.execute(_UPSERT, params)
        for row in curs.fetchall():
            symbol, day = _field(row, "symbol", 0), _field(row, "date", 1)
            changed += 1
            if symbol not in earliest or day < earliest[symbol]:
                earliest[symbol] = day
    if earliest:
        symbols = sorted(earliest)
        curs.execute(_OUTBOX, (symbols, [earliest[s] for s in symbols]))
    return changed
