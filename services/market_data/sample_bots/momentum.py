"""The demo's first sample bot: monthly momentum / short-term reversal over the synthetic market."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from botranks_domain.bars import Bar

from ..synthetic import CRYPTO
from .account import Bot
from .market import KO_DIVIDEND_PER_SHARE, Market

INITIAL_DEPOSIT = Decimal(1_000_000)
WITHDRAWAL = Decimal(50_000)
_CORE = {"DEMO-SPY": Decimal("0.20"), "DEMO-KO": Decimal("0.10")}
_TACTICAL = ("DEMO-AAPL", "DEMO-MSFT", "DEMO-NVDA", "DEMO-XOM", "DEMO-BTC-USD")
_SHORTABLE = ("DEMO-AAPL", "DEMO-MSFT", "DEMO-NVDA", "DEMO-XOM")
_BTC_CAP = Decimal("0.10")
_PICK_WEIGHT = Decimal("0.25")
_SHORT_WEIGHT = Decimal("-0.05")


def _momentum_score(market: Market, symbol: str, index: int) -> float | None:
    """3-month momentum minus half the 1-month return (short-term reversal), on split-adjusted closes."""
    if index < 21:
        return None
    days = market.trading_days
    then, month, now = (market.adjusted[days[j]].get(symbol) for j in (max(0, index - 63), index - 21, index))
    if then is None or month is None or now is None:
        return None
    c63, c21, c0 = float(then), float(month), float(now)
    return (c0 / c63 - 1) - 0.5 * (c0 / c21 - 1)


def _momentum_targets(market: Market, index: int, short_allowed: bool) -> dict[str, Decimal]:
    present = market.closes[market.trading_days[index]]
    weights = {s: w for s, w in _CORE.items() if s in present}
    tactical = [s for s in _TACTICAL if s in present]
    known = {s: _momentum_score(market, s, index) for s in tactical}
    scores = {s: v for s, v in known.items() if v is not None}
    if len(scores) < len(known):  # a symbol without enough history yet
        for s in tactical:
            weights[s] = Decimal("0.10")
        return weights
    ranked = sorted(tactical, key=lambda s: (-scores[s], s))
    picks = [s for s in ranked[:2] if scores[s] > 0]
    for s in picks:
        weights[s] = min(_PICK_WEIGHT, _BTC_CAP) if s in CRYPTO else _PICK_WEIGHT
    if short_allowed:
        candidates = [s for s in reversed(ranked) if s in _SHORTABLE and s not in picks]
        if candidates:
            weights[candidates[0]] = _SHORT_WEIGHT
    return weights


def sample_bot_orders(bars: list[Bar]) -> list[dict[str, Any]]:
    """Payloads the demo's momentum bot would send over ``bars``, in time order.

    Each item is ``{"kind": "cash", "payload": <cash event>}`` or
    ``{"kind": "orders", "payload": {"orders": [...]}}`` (at most 500 orders). The bot deposits
    1,000,000 on the first day, rebalances monthly (core SPY/KO, the two best of AAPL, MSFT,
    NVDA, XOM, BTC-USD by momentum minus short-term reversal, now and then a small short in the
    weakest stock, covered at the next rebalance), receives a KO dividend each quarter while
    holding it and withdraws 50,000 mid-way. Fills at the day's close at 20:00:00Z, fees 5 bp.
    """
    market = Market(bars)
    if not market.days:
        return []
    bot = Bot(market, "demo", "demo-momentum")
    days = market.trading_days
    rebalance_idx = sorted(market.index_of[d] for d in market.month_starts())
    withdraw_idx = len(days) // 2 if len(days) >= 2 else None
    if withdraw_idx is not None and withdraw_idx not in rebalance_idx:
        rebalance_idx = sorted([*rebalance_idx, withdraw_idx])
    # a short is opened at every 6th rebalance (from the 4th) that has a later one to cover it
    short_at = {idx for k, idx in enumerate(rebalance_idx) if k % 6 == 3 and k < len(rebalance_idx) - 1}
    dividend_days = market.quarter_days()
    rebalance_set = set(rebalance_idx)

    for n, day in enumerate(market.days):
        bot.begin_day(day)
        if day in dividend_days:
            bot.dividend(day, "DEMO-KO", KO_DIVIDEND_PER_SHARE)
        if n == 0:
            bot.cash_event(day, "13:30", "deposit", INITIAL_DEPOSIT, "initial deposit")
        i = market.index_of.get(day)
        if i is not None and i in rebalance_set:
            withdraw = i == withdraw_idx
            bot.rebalance(
                day,
                _momentum_targets(market, i, short_allowed=i in short_at),
                reserve=WITHDRAWAL if withdraw else Decimal(0),
            )
            if withdraw:
                bot.cash_event(day, "20:30", "withdraw", -WITHDRAWAL, "demo withdrawal")
    return bot.items
