"""Deterministic synthetic market data and sample trading bots, for the demo.

``synthetic_bars`` draws correlated geometric Brownian motions (``random.Random(seed)`` and
``math`` only): US stocks on weekdays except Jan 1, Jul 4 and Dec 25, DEMO-BTC-USD every
calendar day. Every symbol is named ``DEMO-<ticker>`` (``DEMO_PREFIX``): invented prices
never enter a real symbol's price history, so no real strategy is ever marked at them.

The bars are UNADJUSTED (what traded that day), like the price cache: the market has one stock
split, ``DEMO_SPLIT`` (DEMO-NVDA 4-for-1, ex-date Monday 2023-06-12; ``synthetic_splits`` gives
the splits of a date range, for the price cache's split table). The random walk is split-adjusted
(post-split units); every DEMO-NVDA bar before the ex-date is that bar in pre-split units: prices
x split_to/split_from (4x), volume / split_to/split_from. So its close falls to about a quarter on
the ex-date, while the market's economics (and every other symbol's bars) are the same as without it.

The sample bots that trade this market are in ``sample_bots/``.
"""

from __future__ import annotations

import math
import random
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from botranks_domain.bars import Bar, Split

__all__ = [
    "SYMBOLS",
    "STOCKS",
    "CRYPTO",
    "source",
    "is_us_trading_day",
    "synthetic_bars",
    "DEMO_PREFIX",
    "DEMO_SPLIT",
    "DEMO_SPLITS",
    "synthetic_splits",
]

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

#: the demo market's stock split: DEMO-NVDA 4-for-1 (1 old share becomes 4), from the start of
#: Monday 2023-06-12, a demo trading day mid-month (no monthly rebalance falls on it)
DEMO_SPLIT = Split(symbol="DEMO-NVDA", ex_date=date(2023, 6, 12), split_from=Decimal(1), split_to=Decimal(4))
DEMO_SPLITS: tuple[Split, ...] = (DEMO_SPLIT,)


def synthetic_splits(start: date, end: date) -> list[Split]:
    """The demo market's splits with ex-date in [``start``, ``end``], by ex-date."""
    return sorted((sp for sp in DEMO_SPLITS if start <= sp.ex_date <= end), key=lambda sp: (sp.ex_date, sp.symbol))


def _pre_split_factor(symbol: str, day: date) -> Decimal:
    """How many of ``day``'s shares of ``symbol`` make one share of the random walk (post every
    split): the product of split_to/split_from over its splits with ex-date after ``day``."""
    factor = Decimal(1)
    for sp in DEMO_SPLITS:
        if sp.symbol == symbol and sp.ex_date > day:
            factor = factor * sp.split_to / sp.split_from
    return factor


def is_us_trading_day(day: date) -> bool:
    """Weekdays, except Jan 1, Jul 4 and Dec 25 (the demo calendar's only holidays)."""
    return day.weekday() < 5 and (day.month, day.day) not in _HOLIDAYS


def _cents(value: float) -> Decimal:
    return max(CENT, Decimal(repr(value)).quantize(CENT, ROUND_HALF_UP))


def _unadjusted(bar: Bar, factor: Decimal) -> Bar:
    """``bar`` (post-split units) in the units of its day: prices x ``factor``, volume / ``factor``."""

    def scaled(value: Decimal) -> Decimal:
        return max(CENT, (value * factor).quantize(CENT, ROUND_HALF_UP))

    def price(value: Decimal | None) -> Decimal | None:
        return None if value is None else scaled(value)

    volume = None if bar.volume is None else (bar.volume / factor).quantize(Decimal(1), ROUND_HALF_UP)
    return Bar(
        symbol=bar.symbol,
        date=bar.date,
        close=scaled(bar.close),
        open=price(bar.open),
        high=price(bar.high),
        low=price(bar.low),
        volume=volume,
    )


def synthetic_bars(start: date, end: date, seed: int = 42) -> list[Bar]:
    """Daily OHLCV bars for SYMBOLS from ``start`` to ``end`` inclusive, sorted by (date, symbol
    order). Same arguments → identical bars. Prices are rounded to cents and always > 0.

    Unadjusted: a bar of a split symbol (``DEMO_SPLITS``) dated before an ex-date is in that
    day's (pre-split) units, whatever the range asked for; the walk itself is the same."""
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
            bar = Bar(
                symbol=symbol,
                date=day,
                close=_cents(close),
                open=_cents(open_),
                high=_cents(high),
                low=_cents(low),
                volume=Decimal(volume),
            )
            factor = _pre_split_factor(symbol, day)
            bars.append(bar if factor == 1 else _unadjusted(bar, factor))
        day += timedelta(days=1)
    return bars
