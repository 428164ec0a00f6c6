"""What subscribers read of the trades: each trade as published, and the trade statistics of
``/performance``'s ``trading`` (docs/METHODOLOGY.md#trades). Pure: from the trades' stored sums (the
rows ``rm_trades`` keeps, botranks_domain.trades), the NAV days and the open positions' marks.

Money (prices, P&L, fees) is Decimal at the API's one precision; ratios and days are floats.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, localcontext
from typing import Literal
from uuid import UUID

import msgspec

from .ledger import LEDGER_CONTEXT, ZERO, published

DAYS_PER_YEAR = 365.25
SECONDS_PER_DAY = 86_400.0
#: a page cursor of /trades: the last trade's opening time (µs since the epoch) and id
TRADE_CURSOR_PATTERN = r"^([0-9]{1,20}\.[0-9a-f]{32})?$"
_TRADE_CURSOR = re.compile(TRADE_CURSOR_PATTERN)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TRADE_STATUSES = ("open", "closed", "reset")


def encode_trade_cursor(opened_at: datetime, trade_id: UUID) -> str:
    """The cursor after this trade (opened_at, id: the order of the pages)."""
    return f"{(opened_at - _EPOCH) // timedelta(microseconds=1)}.{trade_id.hex}"


def decode_trade_cursor(cursor: str | None) -> tuple[datetime, UUID] | None:
    """The key behind a cursor (None: the first page); ValueError on anything else."""
    if not cursor:
        return None
    if not _TRADE_CURSOR.fullmatch(cursor):
        raise ValueError(cursor)
    micros, hex_id = cursor.split(".")
    return _EPOCH + timedelta(microseconds=int(micros)), UUID(hex=hex_id)


@dataclass(frozen=True, slots=True)
class TradeSums:
    """A trade as ``rm_trades`` keeps it: identity, status and running sums."""

    id: UUID
    symbol: str
    direction: Literal["long", "short"]
    status: Literal["open", "closed", "reset"]
    opened_at: datetime
    closed_at: datetime | None
    quantity: Decimal
    max_quantity: Decimal
    entry_value: Decimal
    entry_quantity: Decimal
    exit_value: Decimal
    exit_quantity: Decimal
    fees: Decimal
    gross: Decimal
    fills: int
    notional: Decimal
    #: the base-currency and instrument-currency sums (botranks_domain.trades): equal to gross, fees and
    #: notional when the instrument is quoted in the base currency
    gross_base: Decimal | None = None
    fees_local: Decimal | None = None
    notional_base: Decimal | None = None

    @property
    def realized_pnl(self) -> Decimal:
        """What the reducing fills realized, minus every fee of its fills (the instrument's currency)."""
        with localcontext(LEDGER_CONTEXT):
            return self.gross - (self.fees if self.fees_local is None else self.fees_local)

    @property
    def realized_pnl_base(self) -> Decimal:
        """The same in the base currency: each reducing fill's gross at its rate, minus the fees as sent."""
        with localcontext(LEDGER_CONTEXT):
            return (self.gross if self.gross_base is None else self.gross_base) - self.fees

    @property
    def turnover_base(self) -> Decimal:
        return self.notional if self.notional_base is None else self.notional_base


class Trade(msgspec.Struct, kw_only=True):
    """One trade as ``GET /trades`` publishes it (docs/METHODOLOGY.md#trades)."""

    id: UUID
    symbol: str
    direction: Literal["long", "short"]
    status: Literal["open", "closed", "reset"]
    opened_at: datetime
    closed_at: datetime | None
    quantity_open: Decimal
    max_quantity: Decimal
    entry_price: Decimal | None
    exit_price: Decimal | None
    quantity_closed: Decimal
    fees: Decimal
    realized_pnl: Decimal
    return_: float | None = msgspec.field(name="return")
    holding_days: float
    fills: int
    #: the instrument's quote currency: prices and ``realized_pnl`` are in it; ``fees`` are in the base
    currency: str = "USD"
    #: ``realized_pnl`` in the base currency, at the rates of its fills (what the statistics count)
    realized_pnl_base: Decimal | None = None


class TradesPage(msgspec.Struct):
    items: list[Trade]
    next_cursor: str | None


class TradingStats(msgspec.Struct, kw_only=True):
    """``/performance``'s ``trading``: statistics over closed trades, and over the NAV."""

    trades: int
    wins: int
    losses: int
    win_rate: float | None
    average_win: Decimal | None
    average_loss: Decimal | None
    payoff_ratio: float | None
    profit_factor: float | None
    expectancy: Decimal | None
    largest_win: Decimal | None
    largest_loss: Decimal | None
    average_holding_days: float | None
    max_consecutive_wins: int
    max_consecutive_losses: int
    long_trades: int
    long_win_rate: float | None
    short_trades: int
    short_win_rate: float | None
    open_trades: int
    exposure: float | None
    turnover_annualized: float | None
    realized_pnl: Decimal
    unrealized_pnl: Decimal


def _ratio(num: Decimal, den: Decimal) -> Decimal | None:
    if den == 0:
        return None
    with localcontext(LEDGER_CONTEXT):
        return num / den


def _holding_days(t: TradeSums, now: datetime) -> float:
    return ((t.closed_at or now) - t.opened_at).total_seconds() / SECONDS_PER_DAY


def published_trade(t: TradeSums, now: datetime, currency: str = "USD") -> Trade:
    """A trade as published: prices are quantity-weighted averages, ``return`` on the capital at entry."""
    entry = _ratio(t.entry_value, t.entry_quantity)
    exit_ = _ratio(t.exit_value, t.exit_quantity)
    realized = t.realized_pnl
    ret = None
    if entry is not None and t.exit_quantity:
        with localcontext(LEDGER_CONTEXT):
            ret = float(realized / (entry * t.exit_quantity)) if entry else None
    return Trade(
        id=t.id,
        symbol=t.symbol,
        direction=t.direction,
        status=t.status,
        opened_at=t.opened_at,
        closed_at=t.closed_at,
        quantity_open=published(t.quantity),
        max_quantity=published(t.max_quantity),
        entry_price=None if entry is None else published(entry),
        exit_price=None if exit_ is None else published(exit_),
        quantity_closed=published(t.exit_quantity),
        fees=published(t.fees),
        realized_pnl=published(realized),
        return_=ret,
        holding_days=_holding_days(t, now),
        fills=t.fills,
        currency=currency,
        realized_pnl_base=published(t.realized_pnl_base),
    )


def _mean(values: Sequence[Decimal]) -> Decimal | None:
    return published(_ratio(sum(values, ZERO), Decimal(len(values)))) if values else None  # type: ignore[arg-type]  # non-empty: a ratio


def _rate(wins: int, count: int) -> float | None:
    return wins / count if count else None


def _streaks(pnls: Iterable[Decimal]) -> tuple[int, int]:
    """The longest runs of wins and of losses (a trade that made exactly 0 ends both)."""
    best_w = best_l = run_w = run_l = 0
    for p in pnls:
        run_w, run_l = (run_w + 1, 0) if p > 0 else (0, run_l + 1) if p < 0 else (0, 0)
        best_w, best_l = max(best_w, run_w), max(best_l, run_l)
    return best_w, best_l


def exposure(trades: Sequence[TradeSums], nav_days: Sequence[date]) -> float | None:
    """The share of NAV days that ended with a position open (a trade opened on or before the day and
    not closed by its end)."""
    if not nav_days:
        return None
    covered = [0] * (len(nav_days) + 1)
    for t in trades:
        lo = bisect.bisect_left(nav_days, t.opened_at.date())
        hi = len(nav_days) if t.closed_at is None else bisect.bisect_left(nav_days, t.closed_at.date())
        if lo < hi:
            covered[lo] += 1
            covered[hi] -= 1
    running = days = 0
    for step in covered[:-1]:
        running += step
        days += running > 0
    return days / len(nav_days)


def trading_stats(
    trades: Sequence[TradeSums],
    nav: Sequence[tuple[date, Decimal]],
    unrealized_pnl: Decimal,
    now: datetime,
) -> TradingStats:
    """``trading`` from every trade of a strategy (in the order they were opened), its NAV days
    ``(date, total_equity)`` and the open positions' unrealized P&L at their current marks."""
    closed = sorted((t for t in trades if t.status == "closed"), key=lambda t: (t.closed_at, t.opened_at, t.id))
    pnls = [t.realized_pnl_base for t in closed]
    wins = [p for p in pnls if p > 0]
    losses = [p for p in pnls if p < 0]
    gross_win, gross_loss = sum(wins, ZERO), sum(losses, ZERO)
    avg_win, avg_loss = _mean(wins), _mean(losses)
    longs = [t for t in closed if t.direction == "long"]
    shorts = [t for t in closed if t.direction == "short"]
    streak_w, streak_l = _streaks(pnls)
    turnover = None
    if len(nav) >= 2:
        years = (nav[-1][0] - nav[0][0]).days / DAYS_PER_YEAR
        mean_nav = float(sum((e for _, e in nav), ZERO)) / len(nav)
        if years > 0 and mean_nav > 0:
            turnover = float(sum((t.turnover_base for t in trades), ZERO)) / mean_nav / years
    with localcontext(LEDGER_CONTEXT):
        realized_total = sum((t.realized_pnl_base for t in trades), ZERO)
    return TradingStats(
        trades=len(closed),
        wins=len(wins),
        losses=len(losses),
        win_rate=_rate(len(wins), len(closed)),
        average_win=avg_win,
        average_loss=avg_loss,
        payoff_ratio=None if avg_win is None or avg_loss is None else float(avg_win / -avg_loss),
        profit_factor=None if not losses else float(gross_win / -gross_loss),
        expectancy=_mean(pnls),
        largest_win=published(max(wins)) if wins else None,
        largest_loss=published(min(losses)) if losses else None,
        average_holding_days=(sum(_holding_days(t, now) for t in closed) / len(closed)) if closed else None,
        max_consecutive_wins=streak_w,
        max_consecutive_losses=streak_l,
        long_trades=len(longs),
        long_win_rate=_rate(sum(t.realized_pnl_base > 0 for t in longs), len(longs)),
        short_trades=len(shorts),
        short_win_rate=_rate(sum(t.realized_pnl_base > 0 for t in shorts), len(shorts)),
        open_trades=sum(t.status == "open" for t in trades),
        exposure=exposure(trades, [d for d, _ in nav]),
        turnover_annualized=turnover,
        realized_pnl=published(realized_total),
        unrealized_pnl=published(unrealized_pnl),
    )
