"""The strategy page's current positions: each with its last close, market value, weight and unrealized
P&L, in the base currency at the latest rate of the instrument's currency (prices stay in it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import msgspec

from libs.infra.db import Database

from . import readers


class PositionLine(msgspec.Struct):
    symbol: str
    quantity: Decimal
    cost_basis: Decimal
    last_close: Decimal | None
    #: market value and unrealized P&L in the base currency (at the latest rate); prices in ``currency``
    market_value: Decimal
    weight: float | None
    unrealized_pnl: Decimal | None
    currency: str = "USD"


class Holdings(msgspec.Struct):
    as_of: datetime | None
    total_equity: Decimal | None
    cash: Decimal | None
    positions: list[PositionLine]


def holdings(db: Database, strategy_id: UUID) -> Holdings:
    """Current positions with their last close, market value, weight and unrealized P&L
    (quantity × (last close − cost basis)); a symbol without any close is valued at its cost basis. Values
    are in the base currency, at the latest rate of the instrument's currency (prices stay in it)."""
    state = readers.state_view(db, strategy_id)
    rates = readers.rates_now(db, state.base_currency, {p.currency for p in state.positions})
    today = datetime.now(UTC).date()
    total = state.nav.total_equity if state.nav else None
    lines = []
    for p in state.positions:
        if p.quantity == 0:
            continue
        closes = db.prices.closes_between(p.symbol, today - timedelta(days=400), today)
        close = closes[-1][1] if closes else None
        mark = close if close is not None else p.cost_basis
        rate = rates.get(p.currency) or Decimal(1)  # no rate at all: the fold would have refused it
        value = p.quantity * mark * rate
        weight = float(value / total) if total else None
        pnl = p.quantity * (close - p.cost_basis) * rate if close is not None else None
        lines.append(PositionLine(p.symbol, p.quantity, p.cost_basis, close, value, weight, pnl, p.currency))
    lines.sort(key=lambda line: -abs(line.market_value))
    return Holdings(
        state.nav.captured_at if state.nav else None, total, state.nav.cash_balance if state.nav else None, lines
    )
