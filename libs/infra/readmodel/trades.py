"""The trades' writes in the projector's transaction (``LedgerWriter.trades``): ``rm_trades``, a row per
trade (open, closed or reset) with the running sums every published figure is computed from
(botranks_domain.trades; docs/NOTES.md "Trades")."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from botranks_domain.trades import ClosedTrade, OpenTrade

from ..pg import DictCursor
from .bulk import put_rows

#: rm_trades' columns as written, in order
TRADE_COLUMNS = (
    "strategy_id, trade_id, symbol, direction, status, opened_at, closed_at, quantity, max_quantity, entry_value,"
    " entry_quantity, exit_value, exit_quantity, fees, gross, fills, notional, gross_base, fees_local, notional_base"
)


def _row(strategy_id: UUID, t: OpenTrade, status: str, closed_at: datetime | None) -> tuple[object, ...]:
    return (
        strategy_id, t.id, t.symbol, "long" if t.long else "short", status, t.opened_at, closed_at, t.quantity,
        t.max_quantity, t.entry_value, t.entry_quantity, t.exit_value, t.exit_quantity, t.fees, t.gross, t.fills,
        t.notional, _or(t.gross_base, t.gross), _or(t.fees_local, t.fees), _or(t.notional_base, t.notional),
    )  # fmt: skip


def _or(value: Decimal | None, same: Decimal) -> Decimal:
    return same if value is None else value


class TradesWriter:
    """Keeps a strategy's ``rm_trades`` rows with its derivation."""

    def __init__(self, curs: DictCursor) -> None:
        self._cursor = curs

    def forget_ended(self, strategy_id: UUID, since: datetime | None) -> None:
        """Drop the trades that ended at or after ``since`` (None: every trade): a re-derivation from
        there ends them again."""
        if since is None:
            self._cursor.execute("DELETE FROM rm_trades WHERE strategy_id = %s", (strategy_id,))
        else:
            self._cursor.execute(
                "DELETE FROM rm_trades WHERE strategy_id = %s AND closed_at >= %s", (strategy_id, since)
            )

    def write(self, strategy_id: UUID, ended: Iterable[ClosedTrade], still_open: Iterable[OpenTrade]) -> None:
        """The trades a derivation ended, and the open ones as they stand now (replacing the open rows)."""
        self._cursor.execute("DELETE FROM rm_trades WHERE strategy_id = %s AND status = 'open'", (strategy_id,))
        rows = [_row(strategy_id, c.trade, c.status, c.closed_at) for c in ended]
        rows += [_row(strategy_id, t, "open", None) for t in still_open]
        put_rows(self._cursor, "rm_trades", TRADE_COLUMNS, rows)
