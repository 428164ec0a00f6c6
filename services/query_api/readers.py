"""Read-model queries behind the query API (SELECTs only)."""

from __future__ import annotations

import base64
from datetime import date
from typing import Any
from uuid import UUID

from libs.domain.model import OrderRecorded, Position, decode_event, position_id
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


NAV_COLUMNS = ("date", "cash", "market_value", "total_equity", "external_flow")


def nav_series(store: EventStore, strategy_id: UUID, start, end) -> list[dict[str, Any]]:
    """Daily NAV rows in [start, end] (either bound optional), oldest first."""
    with store.cursor() as curs:
        return curs.execute(
            "SELECT date, cash, market_value, total_equity, external_flow FROM rm_nav_daily"
            " WHERE strategy_id = %s AND date >= %s AND date <= %s ORDER BY date",
            (strategy_id, start or date.min, end or date.max)).fetchall()


def _page(rows: list[dict[str, Any]], limit: int, decode) -> dict[str, Any]:
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "items": [decode(r) for r in rows],
        "next_cursor": encode_cursor(rows[-1]["cursor"]) if more and rows else None,
    }


def encode_cursor(value: int) -> str:
    return base64.urlsafe_b64encode(f"n:{value}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    """Opaque cursors; raises ValueError on anything we did not hand out."""
    if not cursor:
        return 0
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    if not raw.startswith("n:"):
        raise ValueError(cursor)
    return int(raw[2:])


def list_log(store: EventStore, strategy_id: UUID, table: str, after: int, limit: int) -> dict[str, Any]:
    """Orders or cash events in arrival order, a page at a time."""
    assert table in ("rm_orders", "rm_cash_events")
    with store.cursor() as curs:
        rows = curs.execute(
            f"SELECT notification_id AS cursor, event FROM {table}"
            " WHERE strategy_id = %s AND notification_id > %s ORDER BY notification_id LIMIT %s",
            (strategy_id, after, limit + 1)).fetchall()

    def decode(r):
        event = decode_event(bytes(r["event"]))
        return event.order if isinstance(event, OrderRecorded) else event.cash

    return _page(rows, limit, decode)


def list_reconciliation(store: EventStore, strategy_id: UUID, after: int, limit: int) -> dict[str, Any]:
    with store.cursor() as curs:
        rows = curs.execute(
            "SELECT id AS cursor, snapshot_id, symbol, derived_quantity, derived_cost_basis, snapshot_quantity,"
            " snapshot_cost_basis, taken_at FROM rm_reconciliation_log"
            " WHERE strategy_id = %s AND id > %s ORDER BY id LIMIT %s", (strategy_id, after, limit + 1)).fetchall()
    return _page(rows, limit, lambda r: {k: v for k, v in r.items() if k != "cursor"})
