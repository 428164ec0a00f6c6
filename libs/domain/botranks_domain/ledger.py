"""The pure fold: ledger events, in effective-time order, into positions and cash.

Rules (DESIGN "Ledger semantics"): only filled/partial orders move anything; buy costs
``q*price*fx + fees``, sell yields ``q*price*fx - fees`` (``fx``: one unit of the instrument's
currency in the base currency on the fill's day, 1 when they are the same; prices and the cost
basis stay in the instrument's currency, fees and cash in the base); cost basis is the weighted-average
entry price (fees excluded, always positive): adding re-weights, reducing keeps it and
realizes P&L, crossing zero opens the remainder at the fill price, zero disappears.
A snapshot replaces the position set and leaves cash alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import ROUND_HALF_EVEN, Context, Decimal, DivisionByZero, InvalidOperation, Overflow, localcontext
from functools import singledispatch

from .model import (
    EFFECTIVE_STATUSES,
    CashEvent,
    CashRecorded,
    LedgerEvent,
    Order,
    OrderRecorded,
    PositionsSnapshot,
    PositionsSnapshotted,
)
from .trades import TradeBook

ZERO = Decimal(0)
ONE = Decimal(1)

#: the fold's arithmetic: wide enough that a sum of products of two in-bound inputs (15 digits
#: before the point, 18 after: MAX_ABS_AMOUNT, MAX_FRACTION_DIGITS) is exact; only a division
#: (the weighted-average cost basis) rounds, to BASIS_PLACES
LEDGER_CONTEXT = Context(
    prec=100, rounding=ROUND_HALF_EVEN, Emax=999_999, Emin=-999_999, traps=[InvalidOperation, DivisionByZero, Overflow]
)
BASIS_PLACES = Decimal(1).scaleb(-18)
#: what the API publishes of every derived number (positions, cash, NAV, reconciliation): at most
#: this many decimal places, half-even. What a bot sent comes back as it sent it.
PUBLISHED_PLACES = 10
_PUBLISHED_QUANTUM = Decimal(1).scaleb(-PUBLISHED_PLACES)


def exponent(value: Decimal) -> int:
    """The exponent of a finite decimal (``Decimal("1.25")``: -2); ValueError for NaN or an infinity,
    which the ledger's context never makes (it traps them)."""
    exp = value.as_tuple().exponent
    if isinstance(exp, int):
        return exp
    raise ValueError(f"not a finite number: {value}")


def published(value: Decimal) -> Decimal:
    """``value`` at the one precision the API publishes derived numbers with."""
    if exponent(value) >= -PUBLISHED_PLACES:
        return value
    return value.quantize(_PUBLISHED_QUANTUM, context=LEDGER_CONTEXT)


@dataclass(slots=True)
class Holding:
    quantity: Decimal
    cost_basis: Decimal
    updated_at: datetime


@dataclass(slots=True)
class SplitApplied:
    """What a split did to one holding (the strategy's corporate-actions list)."""

    ex_date: date
    symbol: str
    split_from: Decimal
    split_to: Decimal
    quantity_before: Decimal
    quantity_after: Decimal
    cost_basis_before: Decimal
    cost_basis_after: Decimal


@dataclass(slots=True)
class Delta:
    """One reconciliation entry: derived state before a snapshot vs. the snapshot."""

    symbol: str
    derived_quantity: Decimal
    derived_cost_basis: Decimal | None
    snapshot_quantity: Decimal
    snapshot_cost_basis: Decimal | None


@dataclass(slots=True)
class Ledger:
    """Positions and cash of one strategy at some point of its event history."""

    positions: dict[str, Holding] = field(default_factory=dict)
    cash: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    external_flows: Decimal = ZERO
    last_order_at: datetime | None = None
    #: the open trades, and the trades this ledger ended (``trades.ended``): botranks_domain.trades
    trades: TradeBook = field(default_factory=TradeBook)

    def copy(self) -> Ledger:
        return Ledger(
            positions={s: Holding(h.quantity, h.cost_basis, h.updated_at) for s, h in self.positions.items()},
            cash=self.cash,
            realized_pnl=self.realized_pnl,
            external_flows=self.external_flows,
            last_order_at=self.last_order_at,
            trades=self.trades.copy(),
        )

    # ------------------------------------------------------------ events

    def apply(self, event: LedgerEvent, fx: Decimal = ONE) -> list[Delta] | None:
        """Apply one event (``fx``: an order's rate into the base currency); a snapshot returns its
        reconciliation deltas (anything else None)."""
        with localcontext(LEDGER_CONTEXT):
            return self.apply_in_context(event, fx)

    def apply_in_context(self, event: LedgerEvent, fx: Decimal = ONE) -> list[Delta] | None:
        """:meth:`apply`, for a caller that holds ``LEDGER_CONTEXT`` already (a fold's loop: entering the
        context for each event, and dispatching an order through singledispatch, cost a fifth of a fold)."""
        if type(event) is OrderRecorded:
            self.apply_order(event.order, fx)
            return None
        return _apply(event, self)

    def apply_order(self, order: Order, fx: Decimal = ONE) -> None:
        if self.last_order_at is None or order.executed_at > self.last_order_at:
            self.last_order_at = order.executed_at
        if order.status not in EFFECTIVE_STATUSES:
            return
        qty, price = order.quantity, order.price
        if order.side == "buy":
            self.cash -= qty * price * fx + order.fees
            signed = qty
        else:
            self.cash += qty * price * fx - order.fees
            signed = -qty
        held = self.positions.get(order.symbol)
        old = held.quantity if held is not None else ZERO
        new = old + signed
        self.trades.fill(
            order.id,
            order.symbol,
            order.executed_at,
            signed,
            price,
            order.fees,
            old,
            None if held is None else held.cost_basis,
            fx,
        )
        if new == 0:
            if held is not None:
                self.realized_pnl += (price - held.cost_basis) * old * fx
                del self.positions[order.symbol]
            return
        if held is None or old == 0:
            self.positions[order.symbol] = Holding(new, price, order.executed_at)
            return
        if (old > 0) == (signed > 0):  # adding to the position: re-weight
            basis = ((abs(old) * held.cost_basis + qty * price) / abs(new)).quantize(BASIS_PLACES)
        elif (old > 0) == (new > 0):  # reducing: basis kept, P&L realized
            basis = held.cost_basis
            self.realized_pnl += (price - held.cost_basis) * (-signed) * fx
        else:  # crossing zero: close all, open the remainder at the fill price
            self.realized_pnl += (price - held.cost_basis) * old * fx
            basis = price
        held.quantity, held.cost_basis, held.updated_at = new, basis, order.executed_at

    def apply_split(self, symbol: str, ex_date: date, split_from: Decimal, split_to: Decimal) -> SplitApplied | None:
        """A split at the start of ``ex_date``: quantity x to/from, basis x from/to; cash and realized P&L
        unchanged. None when ``symbol`` is not held.

        The quantity is exact whenever it has at most 18 digits after the point (always, when
        ``split_from`` has no prime factor but 2 and 5); a ratio like 2-for-3 rounds it there (half-even),
        the precision a bot can send back. So does the basis (like every average basis)."""
        held = self.positions.get(symbol)
        if held is None:
            return None
        with localcontext(LEDGER_CONTEXT):
            quantity = held.quantity * split_to / split_from
            if exponent(quantity) < -18:
                quantity = quantity.quantize(BASIS_PLACES)
            basis = held.cost_basis * split_from / split_to
            if exponent(basis) < -18:
                basis = basis.quantize(BASIS_PLACES)
        applied = SplitApplied(ex_date, symbol, split_from, split_to, held.quantity, quantity, held.cost_basis, basis)
        with localcontext(LEDGER_CONTEXT):
            self.trades.split(symbol, split_to, split_from, quantity, datetime.combine(ex_date, time(0), tzinfo=UTC))
        if quantity == 0:  # a dust position that a reverse split rounds away
            del self.positions[symbol]
            return applied
        held.quantity, held.cost_basis = quantity, basis
        held.updated_at = datetime.combine(ex_date, time(0), tzinfo=UTC)
        return applied

    def apply_cash(self, cash: CashEvent) -> None:
        self.cash += cash.amount
        self.external_flows += CashRecorded(cash).external_flow

    def apply_snapshot(self, snapshot: PositionsSnapshot) -> list[Delta]:
        new_positions = {
            p.symbol: Holding(p.quantity, p.cost_basis, snapshot.taken_at)
            for p in snapshot.positions
            if p.quantity != 0
        }
        deltas: list[Delta] = []
        for symbol in sorted(set(self.positions) | set(new_positions)):
            before, after = self.positions.get(symbol), new_positions.get(symbol)
            bq, bb = (before.quantity, before.cost_basis) if before else (ZERO, None)
            aq, ab = (after.quantity, after.cost_basis) if after else (ZERO, None)
            # compared as published: a bot that sends back what /state showed is in agreement
            same = published(bq) == published(aq) and (bb and published(bb)) == (ab and published(ab))
            if not same:
                deltas.append(Delta(symbol, bq, bb, aq, ab))
            elif before is not None and after is not None:
                after.updated_at = before.updated_at
        self.positions = new_positions
        self.trades.snapshot(
            snapshot.id, snapshot.taken_at, {d.symbol: (d.snapshot_quantity, d.snapshot_cost_basis) for d in deltas}
        )
        return deltas


# The dispatch on the other event types (orders, nearly every event, go straight to apply_order in
# Ledger.apply_in_context; a module-level singledispatch: ~0.3 us a call, where
# functools.singledispatchmethod rebuilds its wrapper on every access, ~1.8 us).
@singledispatch
def _apply(event: LedgerEvent, ledger: Ledger) -> list[Delta] | None:
    raise TypeError(f"not a ledger event: {type(event).__name__}")


@_apply.register
def _(event: CashRecorded, ledger: Ledger) -> None:
    ledger.apply_cash(event.cash)


@_apply.register
def _(event: PositionsSnapshotted, ledger: Ledger) -> list[Delta]:
    return ledger.apply_snapshot(event.snapshot)


def fold(events: Iterable[LedgerEvent], ledger: Ledger | None = None) -> Ledger:
    """Fold events (already in effective-time, then arrival, order) onto ``ledger``."""
    ledger = ledger if ledger is not None else Ledger()
    with localcontext(LEDGER_CONTEXT):
        for event in events:
            ledger.apply_in_context(event)
    return ledger
