"""The symbols of each strategy as market data reads them: which FX pairs a strategy's holdings need
(``MarketDataDaemon.wanted``). Reads of ``rm_strategy_symbols`` and ``rm_positions`` only."""

from __future__ import annotations

from collections import defaultdict
from uuid import UUID

from eventsourcing.postgres import PostgresDatastore

from ..pg import reading


class SymbolReads:
    """Per-strategy symbol reads (each its own snapshot)."""

    def __init__(self, datastore: PostgresDatastore) -> None:
        self.datastore = datastore

    def by_strategy(self) -> dict[UUID, dict[str, bool]]:
        """Every symbol each strategy ever held, with whether it holds it now."""
        with reading(self.datastore) as curs:
            rows = curs.execute(
                "SELECT strategy_id, symbol, bool_or(held) AS held FROM ("
                " SELECT strategy_id, symbol, false AS held FROM rm_strategy_symbols"
                " UNION ALL SELECT strategy_id, symbol, true FROM rm_positions) AS s"
                " GROUP BY strategy_id, symbol"
            ).fetchall()
        out: dict[UUID, dict[str, bool]] = defaultdict(dict)
        for r in rows:
            out[r["strategy_id"]][r["symbol"]] = r["held"]
        return dict(out)
