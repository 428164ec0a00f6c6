"""Read-model queries behind the query API (SELECTs only)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from libs.domain.model import Position, position_id
from libs.infra.store import EventStore


def strategy_state(store: EventStore, strategy_id: UUID) -> dict[str, Any]:
    """GET /state: positions, current NAV and last order time, as the spec shows."""
    with store.cursor() as curs:
        positions = curs.execute(
            "SELECT symbol, quantity, cost_basis, updated_at FROM rm_positions"
            " WHERE strategy_id = %s ORDER BY symbol", (strategy_id,)).fetchall()
        ledger = curs.execute("SELECT * FROM rm_ledger WHERE strategy_id = %s", (strategy_id,)).fetchone()
    return {
        "strategy_id": strategy_id,
        "positions": [
            Position(id=position_id(strategy_id, r["symbol"]), strategy_id=strategy_id, symbol=r["symbol"],
                     quantity=r["quantity"], cost_basis=r["cost_basis"], updated_at=r["updated_at"])
            for r in positions
        ],
        "nav": None if ledger is None else {
            "total_equity": ledger["total_equity"],
            "cash_balance": ledger["cash_balance"],
            "market_value": ledger["market_value"],
            "captured_at": ledger["captured_at"],
        },
        "last_order_at": None if ledger is None else ledger["last_order_at"],
    }
