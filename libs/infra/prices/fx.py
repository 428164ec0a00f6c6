"""FX closes as ``GET /api/v1/fx`` reads them (issue 23): the closes of some FX symbols (``C:EURUSD``:
one EUR in USD, stored as ordinary closes in ``prices``) over a range of days, and the latest day any
of them has a close. Reads only, each its own statement; part of the price cache (its tables)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from eventsourcing.postgres import PostgresDatastore
from psycopg.rows import tuple_row

from botranks_domain.nav import PriceBook

from ..pg import reading

if TYPE_CHECKING:  # the package imports this module's users, not this module
    from . import Prices

__all__ = ["fx_closes", "latest_close_day"]


def _datastore(source: Prices | PostgresDatastore) -> PostgresDatastore:
    store: Any = getattr(source, "datastore", source)
    return store


def fx_closes(source: Prices | PostgresDatastore, symbols: Iterable[str], start: date, end: date) -> PriceBook:
    """The closes of ``symbols`` from ``start`` to ``end`` (inclusive), plus each one's last close
    before ``start``: a book that answers "the last close on or before d" for every d in the range.
    FX symbols have no splits."""
    wanted = sorted(set(symbols))
    if not wanted or end < start:
        return PriceBook({})
    with reading(_datastore(source)) as curs, curs.connection.cursor(row_factory=tuple_row) as tuples:
        rows = tuples.execute(
            "SELECT symbol, date, close FROM prices WHERE symbol = ANY(%(symbols)s)"
            " AND date BETWEEN %(start)s AND %(end)s"
            " UNION ALL SELECT s.symbol, last.date, last.close FROM unnest(%(symbols)s::text[]) AS s(symbol)"
            " CROSS JOIN LATERAL (SELECT date, close FROM prices WHERE symbol = s.symbol AND date < %(start)s"
            " ORDER BY date DESC LIMIT 1) AS last"
            " ORDER BY 1, 2",
            {"symbols": wanted, "start": start, "end": end},
        ).fetchall()
    closes: dict[str, list[tuple[date, Decimal]]] = defaultdict(list)
    for symbol, day, close in rows:
        closes[symbol].append((day, close))
    return PriceBook(dict(closes))


def latest_close_day(source: Prices | PostgresDatastore, symbols: Iterable[str]) -> date | None:
    """The latest day on which any of ``symbols`` has a close (None: none has any)."""
    wanted = sorted(set(symbols))
    if not wanted:
        return None
    with reading(_datastore(source)) as curs, curs.connection.cursor(row_factory=tuple_row) as tuples:
        row = tuples.execute(
            "SELECT max(last.date) FROM unnest(%s::text[]) AS s(symbol) CROSS JOIN LATERAL"
            " (SELECT date FROM prices WHERE symbol = s.symbol ORDER BY date DESC LIMIT 1) AS last",
            (wanted,),
        ).fetchone()
    return None if row is None else row[0]
