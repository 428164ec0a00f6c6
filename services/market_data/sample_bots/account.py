"""A sample bot's cash account: it trades at the day's close, converts its holdings at each split
as the ledger does, and records the API payloads it would send. Its cash is in its base currency;
a bot whose symbols are quoted in another one is given the rate (``fx``) the ledger will use."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, localcontext
from typing import Any

from botranks_domain.bars import Split
from botranks_domain.ledger import BASIS_PLACES, LEDGER_CONTEXT, exponent
from botranks_domain.model import MAX_BATCH

from ..synthetic import CENT, CRYPTO
from .market import Market

FEE_RATE = Decimal("0.0005")
_MIN_TRADE = Decimal("0.005")  # of equity: smaller adjustments are skipped


def _fee(notional: Decimal) -> Decimal:
    return max(CENT, (notional * FEE_RATE).quantize(CENT, ROUND_HALF_UP))


def _step(symbol: str) -> Decimal:
    return Decimal("0.0001") if symbol in CRYPTO else Decimal(1)


def _floor(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(ROUND_DOWN) * step


def _num(value: Decimal) -> int | float:
    """JSON-native number with the exact decimal text (ints stay ints)."""
    return int(value) if value == value.to_integral_value() else float(value)


def _ts(day: date, hhmm: str) -> str:
    return f"{day.isoformat()}T{hhmm}:00Z"


def _split_quantity(quantity: Decimal, split: Split) -> Decimal:
    """A holding after ``split``, exactly as the ledger converts it (``Ledger.apply_split``): quantity
    x to/from, at most 18 digits after the point; no cash in lieu."""
    with localcontext(LEDGER_CONTEXT):
        converted = quantity * split.split_to / split.split_from
        if exponent(converted) < -18:
            converted = converted.quantize(BASIS_PLACES)
    return converted


#: one unit of ``symbol``'s quote currency in the bot's base currency on ``day``
FxHook = Callable[[str, date], Decimal]


class Bot:
    """A cash account that trades at the day's close and records what it would send to the API.
    Its quantities are in the share units of the day it has reached (``as_of``).

    Cash, fees and equity are in the bot's base currency; ``fx`` (None: every symbol is quoted in it)
    converts a price into it, as the ledger does: a fill moves cash by q x price x fx(day) (exactly),
    fees are in the base currency."""

    def __init__(self, market: Market, slug: str, label: str, fx: FxHook | None = None) -> None:
        self.market = market
        self.slug, self.label = slug, label
        self.fx = fx
        self.cash = Decimal(0)
        self.qty: dict[str, Decimal] = defaultdict(Decimal)
        self.last: dict[str, Decimal] = {}
        self.as_of: date | None = None
        self.counter = 0
        self.items: list[dict[str, Any]] = []

    def begin_day(self, day: date) -> None:
        """Start ``day``: the splits with ex-date since the last day convert the holdings (and the
        last known closes) to the day's units, as the ledger does at the start of an ex-date;
        then the day's closes are known."""
        for split in self.market.splits_between(self.as_of, day):
            if self.qty.get(split.symbol):
                self.qty[split.symbol] = _split_quantity(self.qty[split.symbol], split)
            if split.symbol in self.last:
                self.last[split.symbol] = self.last[split.symbol] * split.split_from / split.split_to
        self.as_of = day
        self.last.update(self.market.closes[day])

    def in_base(self, symbol: str, day: date | None, amount: Decimal) -> Decimal:
        """``amount`` in ``symbol``'s quote currency, in the base currency on ``day`` (exact)."""
        if self.fx is None:
            return amount
        assert day is not None, "a rate needs a day"
        return LEDGER_CONTEXT.multiply(amount, self.fx(symbol, day))

    def next_id(self) -> str:
        self.counter += 1
        return f"{self.slug}-{self.counter:06d}"

    def cash_event(
        self, day: date, hhmm: str, event_type: str, amount: Decimal, note: str, related_symbol: str | None = None
    ) -> None:
        self.cash += amount
        payload: dict[str, Any] = {
            "event_type": event_type,
            "amount": _num(amount),
            "occurred_at": _ts(day, hhmm),
            "external_id": self.next_id(),
            "note": note,
        }
        if related_symbol:
            payload["related_symbol"] = related_symbol
        self.items.append({"kind": "cash", "payload": payload})

    def equity(self) -> Decimal:
        held = (self.in_base(s, self.as_of, q * self.last[s]) for s, q in self.qty.items() if q)
        return self.cash + sum(held, Decimal(0))

    def dividend(self, day: date, symbol: str, per_share: Decimal) -> None:
        if self.qty[symbol] > 0:
            amount = (self.qty[symbol] * per_share).quantize(CENT, ROUND_HALF_UP)
            if amount > 0:
                self.cash_event(day, "12:00", "dividend", amount, f"{symbol} quarterly dividend", symbol)

    def rebalance(
        self, day: date, weights: dict[str, Decimal], reserve: Decimal = Decimal(0), min_trade: Decimal = _MIN_TRADE
    ) -> None:
        """Trade towards ``weights`` (of equity less ``reserve``) at the day's closes: sells first,
        then covers, then buys, never spending more cash than there is. Adjustments smaller than
        ``min_trade`` of equity are skipped (opening or closing a position never is)."""
        prices = self.market.closes[day]
        equity = self.equity()
        investable = equity - reserve
        target: dict[str, Decimal] = {}
        for symbol in sorted(set(weights) | {s for s, q in self.qty.items() if q}):
            if symbol not in prices:
                continue  # no bar today: leave it alone
            w = weights.get(symbol, Decimal(0))
            raw = _floor(abs(w) * investable / self.in_base(symbol, day, prices[symbol]), _step(symbol))
            target[symbol] = raw if w >= 0 else -raw
        small = min_trade * equity
        orders: list[dict[str, Any]] = []

        def trade(symbol: str, side: str, quantity: Decimal, reason: str) -> None:
            if quantity <= 0:
                return
            price = prices[symbol]
            notional = self.in_base(symbol, day, quantity * price)
            fee = _fee(notional)
            self.cash += notional - fee if side == "sell" else -(notional + fee)
            self.qty[symbol] += quantity if side == "buy" else -quantity
            orders.append(
                {
                    "symbol": symbol,
                    "side": side,
                    "quantity": _num(quantity),
                    "price": _num(price),
                    "fees": _num(fee),
                    "order_type": "market",
                    "status": "filled",
                    "executed_at": _ts(day, "20:00"),
                    "external_order_id": self.next_id(),
                    "details": {"bot": self.label, "reason": reason},
                }
            )

        for symbol, want in target.items():
            have = self.qty[symbol]
            if want >= have:
                continue
            if have > 0 and want < 0:
                trade(symbol, "sell", have, "close long")
                trade(symbol, "sell", -want, "open short")
            elif want == 0 or want < 0 or self.in_base(symbol, day, (have - want) * prices[symbol]) >= small:
                trade(symbol, "sell", have - want, "open short" if have <= 0 else "rebalance")

        def affordable(symbol: str, wanted: Decimal) -> Decimal:
            price, step = self.in_base(symbol, day, prices[symbol]), _step(symbol)
            budget = self.cash - reserve
            q = min(wanted, _floor(budget / (price * (1 + FEE_RATE)), step))
            while q > 0 and (cost := self.in_base(symbol, day, q * prices[symbol])) + _fee(cost) > budget:
                q -= step
            return max(q, Decimal(0))

        for symbol, want in target.items():
            have = self.qty[symbol]
            if have < 0 and want > have:
                trade(symbol, "buy", affordable(symbol, min(-have, want - have)), "cover short")
        for symbol, want in target.items():
            have = self.qty[symbol]
            if want > have >= 0 and (self.in_base(symbol, day, (want - have) * prices[symbol]) >= small or have == 0):
                trade(symbol, "buy", affordable(symbol, want - have), "rebalance")
        for start in range(0, len(orders), MAX_BATCH):
            self.items.append({"kind": "orders", "payload": {"orders": orders[start : start + MAX_BATCH]}})
