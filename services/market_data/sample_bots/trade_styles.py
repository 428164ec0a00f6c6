"""Two demo bots whose trade records differ on purpose (issue 22): a scalper that wins small and
often, and a trend follower that loses often and wins big. Both decide at the day's close on
split-adjusted closes and only open or close whole positions (no drift rebalancing), so every
round trip is one trade."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from botranks_domain.bars import Bar

from .account import Bot
from .market import Market
from .other_bots import _run

_SCALPED = ("DEMO-SPY", "DEMO-KO", "DEMO-MSFT")
_SCALP_WEIGHT = Decimal("0.30")
SCALP_DIP = -0.008  # the day's close-to-close move that buys the dip
SCALP_TARGET = 0.006  # take profit at +0.6 % over the entry close
SCALP_STOP = -0.03  # stop out at -3 %
SCALP_MAX_DAYS = 10  # trading days; then out at whatever the close is

_TRENDED = ("DEMO-AAPL", "DEMO-NVDA", "DEMO-XOM", "DEMO-BTC-USD")
_TREND_WEIGHT = Decimal("0.24")
TREND_ENTRY_DAYS = 50  # a close above the highest of the previous 50 closes opens
TREND_EXIT_DAYS = 20  # a close below the lowest of the previous 20 closes closes

_NO_DRIFT = Decimal(1)  # ``rebalance``'s min_trade: only openings and closings happen


def scalper_orders(bars: list[Bar]) -> list[dict[str, Any]]:
    """Many small wins, the odd larger loss: each trading day, for SPY, KO and MSFT, a holding is sold
    at +0.6 % over its entry close, at -3 %, or after 10 trading days; a symbol not held is bought
    (30 % of equity) after a down day of 0.8 % or more. 150,000 deposited in January 2023."""
    market = Market(bars)
    entries: dict[str, tuple[float, int]] = {}  # symbol: (adjusted entry close, trading index)

    def on_day(bot: Bot, day: date, index: int | None) -> None:
        if index is None:
            return
        weights: dict[str, Decimal] = {}
        for symbol in _SCALPED:
            closes = market.lookback(symbol, day, 1)
            if closes is None:
                continue
            if symbol in entries:
                entry, since = entries[symbol]
                move = closes[-1] / entry - 1
                if move >= SCALP_TARGET or move <= SCALP_STOP or index - since >= SCALP_MAX_DAYS:
                    del entries[symbol]
                else:
                    weights[symbol] = _SCALP_WEIGHT
            elif closes[-1] / closes[0] - 1 <= SCALP_DIP:
                entries[symbol] = (closes[-1], index)
                weights[symbol] = _SCALP_WEIGHT
        bot.rebalance(day, weights, min_trade=_NO_DRIFT)
        for symbol in [s for s in entries if not bot.qty[s]]:  # no cash for it: not bought after all
            del entries[symbol]

    return _run(market, "scalper", date(2023, 1, 3), Decimal(150_000), on_day)


def trend_follower_orders(bars: list[Bar]) -> list[dict[str, Any]]:
    """Few trades, a few big wins among many small losses: a Donchian breakout on AAPL, NVDA, XOM and
    BTC, checked every trading day: bought (24 % of equity) on a close above the previous 50 closes'
    highest, sold on a close below the previous 20 closes' lowest. 250,000 deposited in 2022."""
    market = Market(bars)
    held: set[str] = set()

    def on_day(bot: Bot, day: date, index: int | None) -> None:
        if index is None:
            return
        for symbol in _TRENDED:
            closes = market.lookback(symbol, day, TREND_ENTRY_DAYS)
            if closes is None:
                continue
            now, before = closes[-1], closes[:-1]
            if symbol in held and now < min(before[-TREND_EXIT_DAYS:]):
                held.discard(symbol)
            elif symbol not in held and now > max(before):
                held.add(symbol)
        bot.rebalance(day, {s: _TREND_WEIGHT for s in held}, min_trade=_NO_DRIFT)
        held.intersection_update(s for s in held if bot.qty[s])  # no cash for it: not bought after all

    return _run(market, "trend", date(2022, 1, 3), Decimal(250_000), on_day)
