"""The trades as the APIs and pages read them (``db.ledger.trades``): a page of trades in the order they
were opened, and every trade's sums for the statistics (botranks_domain.trade_stats)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from uuid import UUID

from eventsourcing.postgres import PostgresDatastore
from psycopg.rows import class_row

from botranks_domain.trade_stats import TradeSums

from ..pg import reading

#: a TradeSums of each row
TRADE_SUMS = (
    "trade_id AS id, symbol, direction, status, opened_at, closed_at, quantity, max_quantity, entry_value,"
    " entry_quantity, exit_value, exit_quantity, fees, gross, fills, notional,"
    " coalesce(gross_base, gross) AS gross_base, coalesce(fees_local, fees) AS fees_local,"
    " coalesce(notional_base, notional) AS notional_base"
)


class TradesReader:
    """Reads of ``rm_trades`` (each its own snapshot)."""

    def __init__(self, datastore: PostgresDatastore) -> None:
        self.datastore = datastore

    def page(
        self,
        strategy_id: UUID,
        *,
        after: tuple[datetime, UUID] | None,
        limit: int,
        status: str | None = None,
        symbol: str | None = None,
        opened_from: date | None = None,
        opened_to: date | None = None,
    ) -> list[TradeSums]:
        """Up to ``limit`` trades opened after the key ``after`` (opened_at, id), oldest first, filtered by
        status, symbol and the UTC day they were opened (both bounds inclusive)."""
        where: list[str] = ["strategy_id = %s"]
        params: list[object] = [strategy_id]
        if after is not None:
            where.append("(opened_at, trade_id) > (%s, %s)")
            params += list(after)
        for clause, value in (
            ("status = %s", status),
            ("symbol = %s", symbol),
            ("opened_at >= %s", opened_from and datetime.combine(opened_from, time(0), UTC)),
            ("opened_at < %s", opened_to and datetime.combine(opened_to + timedelta(days=1), time(0), UTC)),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        with reading(self.datastore) as curs, curs.connection.cursor(row_factory=class_row(TradeSums)) as rows:
            return rows.execute(
                f"SELECT {TRADE_SUMS} FROM rm_trades WHERE {' AND '.join(where)} ORDER BY opened_at, trade_id LIMIT %s",
                [*params, limit],
            ).fetchall()

    def all_sums(self, strategy_id: UUID) -> list[TradeSums]:
        """Every trade of the strategy, in the order they were opened."""
        with reading(self.datastore) as curs, curs.connection.cursor(row_factory=class_row(TradeSums)) as rows:
            return rows.execute(
                f"SELECT {TRADE_SUMS} FROM rm_trades WHERE strategy_id = %s ORDER BY opened_at, trade_id",
                (strategy_id,),
            ).fetchall()
