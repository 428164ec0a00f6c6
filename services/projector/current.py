"""A strategy's current figures after a derivation (its ``rm_ledger`` row, what ``/state`` shows): the
positions marked at their latest closes, and the row itself."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal
from uuid import UUID

from botranks_domain.currency import FxRates
from botranks_domain.ledger import LEDGER_CONTEXT, ZERO, Holding, Ledger, published
from botranks_domain.nav import LedgerState, PriceBook, encode_state
from libs.infra.readmodel import LedgerRow

#: NAV days are marked at the close; the spec shows captured_at as 16:00 (New York close, in UTC 21:00/20:00);
#: we write 21:00Z of the NAV date.
CLOSE_TIME = time(21, 0)


def mark_now(
    positions: dict[str, Holding],
    prices: PriceBook,
    today: date,
    latest_nav: date | None,
    last_event_at: datetime,
    fx: FxRates | None = None,
) -> tuple[Decimal, datetime]:
    """Market value (in the base currency: each mark at the latest rate) at each symbol's latest close
    (cost basis where none is known), and ``captured_at``.

    ``captured_at`` is the close (21:00Z) of the latest priced day behind the marks, or of
    the latest NAV day, or else the last event's time: a function of log and prices only.
    """
    market_value, latest = ZERO, None
    for symbol, holding in positions.items():
        close = prices.close(symbol, today)
        value = LEDGER_CONTEXT.multiply(holding.quantity, holding.cost_basis if close is None else close)
        if fx is not None:
            value = LEDGER_CONTEXT.multiply(value, fx.required(symbol, today))
        market_value = LEDGER_CONTEXT.add(market_value, value)
        if close is not None:
            day = prices.latest([symbol], today)
            assert day is not None  # it has a close on or before today
            latest = day if latest is None or day > latest else latest
    if latest_nav is not None and (latest is None or latest_nav > latest):
        latest = latest_nav
    return market_value, datetime.combine(latest, CLOSE_TIME, tzinfo=UTC) if latest else last_event_at


def ledger_row(
    strategy_id: UUID,
    ledger: Ledger,
    final: LedgerState,
    market_value: Decimal,
    captured: datetime,
    last_key: tuple[datetime, int],
    inception: date | None,
    tail: tuple[date, LedgerState] | None,
) -> LedgerRow:
    """The ``rm_ledger`` row of a derivation's outcome, each figure at the published precision."""
    return LedgerRow(
        strategy_id=strategy_id,
        cash_balance=published(ledger.cash),
        realized_pnl=published(ledger.realized_pnl),
        external_flows=published(ledger.external_flows),
        market_value=published(market_value),
        total_equity=published(LEDGER_CONTEXT.add(ledger.cash, market_value)),
        captured_at=captured,
        last_order_at=ledger.last_order_at,
        last_effective_at=last_key[0],
        last_notification_id=last_key[1],
        state=encode_state(final),
        inception_date=inception,
        tail_day=tail and tail[0],
        tail_state=tail and encode_state(tail[1]),
    )
