"""Trades: the round trips of a strategy's positions, folded with the ledger (docs/NOTES.md "Trades").

Per symbol, in the ledger's order (effective time, ties by arrival), filled and partial orders only:
a trade opens when the position leaves zero and closes when it is exactly zero again. A fill that
crosses zero closes the trade with the part that reaches zero and opens the next one (the other
direction) with the rest; its fees are split in proportion to quantity (the closing part's share
rounded half-even to 18 places, the opening part gets the rest, so the two add up exactly). The cost
basis is the ledger's weighted-average entry price (fees excluded); a reducing fill realizes
``(price − basis) × q`` for a long, ``(basis − price) × q`` for a short; a trade's ``realized_pnl`` is
what its reducing fills realized minus every fee of its fills. A snapshot that changes a symbol's
quantity or basis ends its open trade as ``reset`` and opens one at the snapshot's quantity and basis; a
split converts an open trade to the new units (quantities × to/from; values, hence prices × from/to).

Currencies: prices, values and ``gross`` are in the instrument's currency, ``fees`` in the base currency
(as sent). ``fees_local`` is every fee converted at its fill's rate (fee / fx, half-even to 18 places;
the fee itself when fx is 1) and ``gross_base`` every reducing fill's gross × its rate: a trade's
``realized_pnl`` (instrument currency) is ``gross − fees_local``, its ``realized_pnl_base`` is
``gross_base − fees``. None in a state written before currencies: the same as ``gross`` / ``fees``.

Pure: the :class:`~botranks_domain.ledger.Ledger` calls :class:`TradeBook` from its fold; the open
trades travel in the ledger's state (checkpoints), closed ones are emitted.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Literal

import msgspec

ZERO = Decimal(0)
ONE = Decimal(1)
_FEE_PLACES = Decimal(1).scaleb(-18)
#: the namespace of trade ids: uuid5(namespace, "<opening event id>:<symbol>"), the same in every re-fold
TRADE_NAMESPACE = uuid.UUID("6f1c4d2e-9b7a-4e5f-8a21-3c0d5e7b9f14")

Status = Literal["open", "closed", "reset"]


class OpenTrade(msgspec.Struct, array_like=True):
    """A trade while its position is open: running sums, in the symbol's current share units."""

    id: uuid.UUID
    symbol: str
    long: bool
    opened_at: datetime
    quantity: Decimal  # the open size, unsigned
    max_quantity: Decimal
    entry_value: Decimal  # Σ q × price of adding fills (a snapshot's opening: q × basis)
    entry_quantity: Decimal
    exit_value: Decimal  # Σ q × price of reducing fills
    exit_quantity: Decimal
    fees: Decimal
    gross: Decimal  # what the reducing fills realized, before fees
    fills: int
    notional: Decimal  # Σ |q × price| of its fills (turnover; a snapshot's opening is no fill)
    gross_base: Decimal | None = None  # Σ each reducing fill's gross × its rate (None: = gross)
    fees_local: Decimal | None = None  # Σ each fee / its fill's rate (None: = fees)
    notional_base: Decimal | None = None  # Σ |q × price × rate| of its fills (None: = notional)


class ClosedTrade(msgspec.Struct):
    """A trade that ended (``closed`` by a fill, ``reset`` by a snapshot) and when."""

    trade: OpenTrade
    status: Status
    closed_at: datetime


def _places(value: Decimal) -> int:
    exp = value.as_tuple().exponent
    return -exp if isinstance(exp, int) else 0


def _local(fees: Decimal, fx: Decimal) -> Decimal:
    """A fee (base currency) in the instrument's currency at its fill's rate."""
    return fees if fx == ONE else (fees / fx).quantize(_FEE_PLACES, ROUND_HALF_EVEN)


def _in_currencies(trade: OpenTrade) -> None:
    """Fill the currency sums of a trade from a state written before currencies (then everything was in
    one currency)."""
    if trade.gross_base is None:
        trade.gross_base = trade.gross
    if trade.fees_local is None:
        trade.fees_local = trade.fees
    if trade.notional_base is None:
        trade.notional_base = trade.notional


def trade_id(opening_event: uuid.UUID, symbol: str) -> uuid.UUID:
    return uuid.uuid5(TRADE_NAMESPACE, f"{opening_event}:{symbol}")


class TradeBook:
    """The open trades of one ledger and the trades it ended since it was made (``ended``)."""

    __slots__ = ("open", "ended")

    def __init__(self, open_trades: dict[str, OpenTrade] | None = None) -> None:
        self.open: dict[str, OpenTrade] = open_trades or {}
        self.ended: list[ClosedTrade] = []

    def copy(self) -> TradeBook:
        return TradeBook({s: msgspec.structs.replace(t) for s, t in self.open.items()})

    def fill(
        self, order_id: uuid.UUID, symbol: str, at: datetime, signed: Decimal, price: Decimal, fees: Decimal,
        old: Decimal, basis: Decimal | None, fx: Decimal = ONE,
    ) -> None:  # fmt: skip
        """One effective fill of ``signed`` shares (buy +, sell −) on a position of ``old`` shares at
        ``basis`` (the ledger's, before the fill); ``fx``: one unit of its currency in the base currency."""
        qty = abs(signed)
        if old == 0:
            self._open(order_id, symbol, at, signed, price, fees, qty, fx)
            return
        trade = self.open.get(symbol)
        if trade is None:  # a position the book never saw open (cannot happen from a full fold)
            trade = self._adopt(order_id, symbol, at, old, basis if basis is not None else price)
        _in_currencies(trade)
        assert trade.gross_base is not None and trade.fees_local is not None and trade.notional_base is not None
        if (old > 0) == (signed > 0):  # adding
            trade.quantity += qty
            trade.entry_value += qty * price
            trade.entry_quantity += qty
            trade.max_quantity = max(trade.max_quantity, trade.quantity)
            trade.fees += fees
            trade.fees_local += _local(fees, fx)
            trade.fills += 1
            trade.notional += qty * price
            trade.notional_base += qty * price * fx
            return
        closing = min(qty, abs(old))
        closing_fees = fees if closing == qty else (fees * closing / qty).quantize(_FEE_PLACES, ROUND_HALF_EVEN)
        assert basis is not None  # a reduced position has a basis
        gross = (price - basis) * closing if trade.long else (basis - price) * closing
        trade.gross += gross
        trade.gross_base += gross * fx
        trade.quantity -= closing
        trade.exit_value += closing * price
        trade.exit_quantity += closing
        trade.fees += closing_fees
        trade.fees_local += _local(closing_fees, fx)
        trade.fills += 1
        trade.notional += closing * price
        trade.notional_base += closing * price * fx
        if trade.quantity == 0:
            self._end(symbol, "closed", at)
        if qty > closing:  # crossed zero: the rest opens the next trade, the other way
            self._open(order_id, symbol, at, signed, price, fees - closing_fees, qty - closing, fx)

    def _open(
        self, event_id: uuid.UUID, symbol: str, at: datetime, signed: Decimal, price: Decimal, fees: Decimal,
        qty: Decimal, fx: Decimal,
    ) -> None:  # fmt: skip
        value = qty * price
        self.open[symbol] = OpenTrade(
            trade_id(event_id, symbol), symbol, signed > 0, at, qty, qty, value, qty, ZERO, ZERO, fees, ZERO, 1, value,
            ZERO, _local(fees, fx), value * fx,
        )  # fmt: skip

    def _adopt(self, event_id: uuid.UUID, symbol: str, at: datetime, quantity: Decimal, basis: Decimal) -> OpenTrade:
        qty = abs(quantity)
        trade = OpenTrade(
            trade_id(event_id, symbol), symbol, quantity > 0, at, qty, qty, qty * basis, qty,
            ZERO, ZERO, ZERO, ZERO, 0, ZERO, ZERO, ZERO, ZERO,
        )  # fmt: skip
        self.open[symbol] = trade
        return trade

    def _end(self, symbol: str, status: Status, at: datetime) -> None:
        trade = self.open.pop(symbol, None)
        if trade is not None:
            self.ended.append(ClosedTrade(trade, status, at))

    def snapshot(
        self, snapshot_id: uuid.UUID, at: datetime, changed: dict[str, tuple[Decimal, Decimal | None]]
    ) -> None:
        """A snapshot changed these symbols to (quantity, basis): their trades end as ``reset``, and a
        trade opens at each non-zero quantity."""
        for symbol, (quantity, basis) in sorted(changed.items()):
            self._end(symbol, "reset", at)
            if quantity != 0:
                self._adopt(snapshot_id, symbol, at, quantity, basis if basis is not None else ZERO)

    def split(self, symbol: str, ratio_to: Decimal, ratio_from: Decimal, new_quantity: Decimal, at: datetime) -> None:
        """A split of ``symbol`` (``new_quantity``: the position's, as the ledger rounded it; 0: rounded away)."""
        trade = self.open.get(symbol)
        if trade is None:
            return
        if new_quantity == 0:
            self._end(symbol, "reset", at)
            return

        def units(q: Decimal) -> Decimal:  # as the ledger converts a position: exact, else 18 places
            converted = q * ratio_to / ratio_from
            return converted if _places(converted) <= 18 else converted.quantize(_FEE_PLACES)

        trade.quantity = abs(new_quantity)
        trade.max_quantity = units(trade.max_quantity)
        trade.entry_quantity = units(trade.entry_quantity)
        trade.exit_quantity = units(trade.exit_quantity)
