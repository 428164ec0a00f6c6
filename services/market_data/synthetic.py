"""Deterministic synthetic market data and a sample trading bot, for the demo.

``synthetic_bars`` draws correlated geometric Brownian motions (``random.Random(seed)`` and
``math`` only): US stocks on weekdays except Jan 1, Jul 4 and Dec 25, DEMO-BTC-USD every
calendar day. Every symbol is named ``DEMO-<ticker>`` (``DEMO_PREFIX``): invented prices
never enter a real symbol's price history, so no real strategy is ever marked at them. ``sample_bot_orders`` replays a simple monthly momentum / short-term-reversal bot over
those bars and returns the API payloads it would send, in time order.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from datetime import date, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any

from libs.domain.model import MAX_BATCH

from libs.domain.bars import Bar

__all__ = ["SYMBOLS", "STOCKS", "CRYPTO", "source", "is_us_trading_day", "synthetic_bars",
           "sample_bot_orders", "DEMO_PREFIX"]

source = "synthetic-demo"
SOURCE = source
#: every synthetic symbol starts with it, so demo prices can never mark a real strategy
DEMO_PREFIX = "DEMO-"

STOCKS = ("DEMO-SPY", "DEMO-AAPL", "DEMO-MSFT", "DEMO-NVDA", "DEMO-KO", "DEMO-XOM")
CRYPTO = ("DEMO-BTC-USD",)
SYMBOLS = STOCKS + CRYPTO

# symbol: (start price, annual drift, annual volatility, correlation to SPY, typical daily volume)
_PARAMS: dict[str, tuple[float, float, float, float, float]] = {
    "DEMO-SPY": (400.0, 0.08, 0.16, 1.00, 80_000_000),
    "DEMO-AAPL": (170.0, 0.15, 0.28, 0.75, 60_000_000),
    "DEMO-MSFT": (330.0, 0.14, 0.26, 0.75, 25_000_000),
    "DEMO-NVDA": (450.0, 0.30, 0.50, 0.60, 45_000_000),
    "DEMO-KO": (60.0, 0.05, 0.15, 0.45, 12_000_000),
    "DEMO-XOM": (100.0, 0.06, 0.25, 0.40, 18_000_000),
    "DEMO-BTC-USD": (30_000.0, 0.35, 0.65, 0.30, 25_000),
}
_HOLIDAYS = ((1, 1), (7, 4), (12, 25))
CENT = Decimal("0.01")


def is_us_trading_day(day: date) -> bool:
    """Weekdays, except Jan 1, Jul 4 and Dec 25 (the demo calendar's only holidays)."""
    return day.weekday() < 5 and (day.month, day.day) not in _HOLIDAYS


def _cents(value: float) -> Decimal:
    return max(CENT, Decimal(repr(value)).quantize(CENT, ROUND_HALF_UP))


def synthetic_bars(start: date, end: date, seed: int = 42) -> list[Bar]:
    """Daily OHLCV bars for SYMBOLS from ``start`` to ``end`` inclusive, sorted by (date, symbol
    order). Same arguments → identical bars. Prices are rounded to cents and always > 0."""
    rng = random.Random(seed)
    price = {s: p[0] for s, p in _PARAMS.items()}
    bars: list[Bar] = []
    day = start
    while day <= end:
        trading = is_us_trading_day(day)
        z_spy = rng.gauss(0.0, 1.0) if trading else 0.0
        for symbol in SYMBOLS:
            is_crypto = symbol in CRYPTO
            if not (trading or is_crypto):
                continue
            _, mu, sigma, rho, base_volume = _PARAMS[symbol]
            dt = 1 / 365 if is_crypto else 1 / 252
            step = sigma * math.sqrt(dt)
            if symbol == "DEMO-SPY":
                z = z_spy
            elif trading:
                z = rho * z_spy + math.sqrt(1 - rho * rho) * rng.gauss(0.0, 1.0)
            else:
                z = rng.gauss(0.0, 1.0)
            previous = price[symbol]
            close = previous * math.exp((mu - 0.5 * sigma * sigma) * dt + step * z)
            price[symbol] = close
            open_ = previous * math.exp(0.25 * step * rng.gauss(0.0, 1.0))
            high = max(open_, close) * math.exp(0.4 * step * abs(rng.gauss(0.0, 1.0)))
            low = min(open_, close) * math.exp(-0.4 * step * abs(rng.gauss(0.0, 1.0)))
            volume = round(base_volume * (0.6 + 0.4 * abs(z)) * math.exp(0.2 * rng.gauss(0.0, 1.0)))
            bars.append(Bar(symbol=symbol, date=day, close=_cents(close), open=_cents(open_),
                            high=_cents(high), low=_cents(low), volume=Decimal(volume)))
        day += timedelta(days=1)
    return bars


# ---------------------------------------------------------------- the sample bot

INITIAL_DEPOSIT = Decimal(1_000_000)
WITHDRAWAL = Decimal(50_000)
FEE_RATE = Decimal("0.0005")
KO_DIVIDEND_PER_SHARE = Decimal("0.46")
_CORE = {"DEMO-SPY": Decimal("0.20"), "DEMO-KO": Decimal("0.10")}
_TACTICAL = ("DEMO-AAPL", "DEMO-MSFT", "DEMO-NVDA", "DEMO-XOM", "DEMO-BTC-USD")
_SHORTABLE = ("DEMO-AAPL", "DEMO-MSFT", "DEMO-NVDA", "DEMO-XOM")
_BTC_CAP = Decimal("0.10")
_PICK_WEIGHT = Decimal("0.25")
_SHORT_WEIGHT = Decimal("-0.05")
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


class _Bot:
    def __init__(self, closes: dict[date, dict[str, Decimal]], trading_days: list[date]) -> None:
        self.closes = closes
        self.trading_days = trading_days
        self.cash = Decimal(0)
        self.qty: dict[str, Decimal] = defaultdict(Decimal)
        self.last: dict[str, Decimal] = {}
        self.counter = 0
        self.items: list[dict[str, Any]] = []

    def next_id(self) -> str:
        self.counter += 1
        return f"demo-{self.counter:06d}"

    def cash_event(self, day: date, hhmm: str, event_type: str, amount: Decimal,
                   note: str, related_symbol: str | None = None) -> None:
        self.cash += amount
        payload: dict[str, Any] = {"event_type": event_type, "amount": _num(amount),
                                   "occurred_at": _ts(day, hhmm), "external_id": self.next_id(),
                                   "note": note}
        if related_symbol:
            payload["related_symbol"] = related_symbol
        self.items.append({"kind": "cash", "payload": payload})

    def equity(self) -> Decimal:
        return self.cash + sum((q * self.last[s] for s, q in self.qty.items() if q), Decimal(0))

    def score(self, symbol: str, index: int) -> float | None:
        """3-month momentum minus half the 1-month return (short-term reversal)."""
        if index < 21:
            return None
        series = [self.closes[self.trading_days[j]].get(symbol) for j in (max(0, index - 63), index - 21, index)]
        if any(c is None for c in series):
            return None
        c63, c21, c0 = (float(c) for c in series)  # type: ignore[arg-type]
        return (c0 / c63 - 1) - 0.5 * (c0 / c21 - 1)

    def targets(self, index: int, short_allowed: bool) -> dict[str, Decimal]:
        present = self.closes[self.trading_days[index]]
        weights = {s: w for s, w in _CORE.items() if s in present}
        tactical = [s for s in _TACTICAL if s in present]
        scores = {s: self.score(s, index) for s in tactical}
        if any(v is None for v in scores.values()):
            for s in tactical:
                weights[s] = Decimal("0.10")
            return weights
        ranked = sorted(tactical, key=lambda s: (-scores[s], s))  # type: ignore[operator]
        picks = [s for s in ranked[:2] if scores[s] > 0]  # type: ignore[operator]
        for s in picks:
            weights[s] = min(_PICK_WEIGHT, _BTC_CAP) if s in CRYPTO else _PICK_WEIGHT
        if short_allowed:
            candidates = [s for s in reversed(ranked) if s in _SHORTABLE and s not in picks]
            if candidates:
                weights[candidates[0]] = _SHORT_WEIGHT
        return weights

    def rebalance(self, day: date, index: int, short_allowed: bool, withdraw: bool) -> None:
        prices = self.closes[day]
        equity = self.equity()
        investable = equity - (WITHDRAWAL if withdraw else 0)
        weights = self.targets(index, short_allowed)
        target: dict[str, Decimal] = {}
        for symbol in sorted(set(weights) | {s for s, q in self.qty.items() if q}):
            if symbol not in prices:
                continue  # no bar today: leave it alone
            w = weights.get(symbol, Decimal(0))
            raw = _floor(abs(w) * investable / prices[symbol], _step(symbol))
            target[symbol] = raw if w >= 0 else -raw
        small = _MIN_TRADE * equity
        orders: list[dict[str, Any]] = []

        def trade(symbol: str, side: str, quantity: Decimal, reason: str) -> None:
            if quantity <= 0:
                return
            price = prices[symbol]
            notional = quantity * price
            fee = _fee(notional)
            self.cash += notional - fee if side == "sell" else -(notional + fee)
            self.qty[symbol] += quantity if side == "buy" else -quantity
            orders.append({
                "symbol": symbol, "side": side, "quantity": _num(quantity), "price": _num(price),
                "fees": _num(fee), "order_type": "market", "status": "filled",
                "executed_at": _ts(day, "20:00"), "external_order_id": self.next_id(),
                "details": {"bot": "demo-momentum", "reason": reason},
            })

        # sells first (they raise the cash the buys spend)
        for symbol, want in target.items():
            have = self.qty[symbol]
            if want >= have:
                continue
            if have > 0 and want < 0:
                trade(symbol, "sell", have, "close long")
                trade(symbol, "sell", -want, "open short")
            elif want == 0 or want < 0 or (have - want) * prices[symbol] >= small:
                trade(symbol, "sell", have - want, "open short" if have <= 0 else "rebalance")
        reserve = WITHDRAWAL if withdraw else Decimal(0)

        def affordable(symbol: str, wanted: Decimal) -> Decimal:
            price, step = prices[symbol], _step(symbol)
            budget = self.cash - reserve
            q = min(wanted, _floor(budget / (price * (1 + FEE_RATE)), step))
            while q > 0 and q * price + _fee(q * price) > budget:
                q -= step
            return max(q, Decimal(0))

        # then covers, then buys, each limited by the cash left
        for symbol, want in target.items():
            have = self.qty[symbol]
            if have < 0 and want > have:
                trade(symbol, "buy", affordable(symbol, min(-have, want - have)), "cover short")
        for symbol, want in target.items():
            have = self.qty[symbol]
            if want > have >= 0 and ((want - have) * prices[symbol] >= small or have == 0):
                trade(symbol, "buy", affordable(symbol, want - have), "rebalance")
        for start in range(0, len(orders), MAX_BATCH):
            self.items.append({"kind": "orders", "payload": {"orders": orders[start:start + MAX_BATCH]}})
        if withdraw:
            self.cash_event(day, "20:30", "withdraw", -WITHDRAWAL, "demo withdrawal")


def sample_bot_orders(bars: list[Bar]) -> list[dict[str, Any]]:
    """Payloads a deterministic demo bot would send over ``bars``, in time order.

    Each item is ``{"kind": "cash", "payload": <cash event>}`` or
    ``{"kind": "orders", "payload": {"orders": [...]}}`` (at most 500 orders). The bot deposits
    1,000,000 on the first day, rebalances monthly (core SPY/KO, the two best of AAPL, MSFT,
    NVDA, XOM, BTC-USD by momentum minus short-term reversal, now and then a small short in the
    weakest stock, covered at the next rebalance), receives a KO dividend each quarter while
    holding it and withdraws 50,000 mid-way. Fills at the day's close at 20:00:00Z, fees 5 bp.
    """
    closes: dict[date, dict[str, Decimal]] = defaultdict(dict)
    for bar in bars:
        closes[bar.date][bar.symbol] = bar.close
    if not closes:
        return []
    days = sorted(closes)
    trading_days = [d for d in days if "DEMO-SPY" in closes[d]] or days
    trading_set = set(trading_days)
    bot = _Bot(dict(closes), trading_days)

    rebalance_idx = [i for i, d in enumerate(trading_days)
                     if i == 0 or (d.year, d.month) != (trading_days[i - 1].year, trading_days[i - 1].month)]
    withdraw_idx = len(trading_days) // 2 if len(trading_days) >= 2 else None
    if withdraw_idx is not None and withdraw_idx not in rebalance_idx:
        rebalance_idx = sorted([*rebalance_idx, withdraw_idx])
    # a short is opened at every 6th rebalance (from the 4th) that has a later one to cover it
    short_at = {idx for k, idx in enumerate(rebalance_idx) if k % 6 == 3 and k < len(rebalance_idx) - 1}
    dividend_days: set[date] = set()
    seen_quarters: set[tuple[int, int]] = set()
    for d in trading_days:
        if d.month in (3, 6, 9, 12) and d.day >= 15 and (d.year, d.month) not in seen_quarters:
            seen_quarters.add((d.year, d.month))
            dividend_days.add(d)
    index_of = {d: i for i, d in enumerate(trading_days)}
    rebalance_set = set(rebalance_idx)

    for n, day in enumerate(days):
        bot.last.update(closes[day])
        if day in dividend_days and bot.qty["DEMO-KO"] > 0:
            amount = (bot.qty["DEMO-KO"] * KO_DIVIDEND_PER_SHARE).quantize(CENT, ROUND_HALF_UP)
            bot.cash_event(day, "12:00", "dividend", amount, "KO quarterly dividend", "DEMO-KO")
        if n == 0:
            bot.cash_event(day, "13:30", "deposit", INITIAL_DEPOSIT, "initial deposit")
        if day in trading_set and index_of[day] in rebalance_set:
            i = index_of[day]
            bot.rebalance(day, i, short_allowed=i in short_at, withdraw=i == withdraw_idx)
    return bot.items
