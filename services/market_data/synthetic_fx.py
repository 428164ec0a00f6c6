"""The demo's other currency: a EUR-quoted synthetic stock and a synthetic EUR/USD rate.

``synthetic_eur_bars`` draws ``DEMO-SAP`` (quoted in EUR, ``EUR_CURRENCIES``), a geometric Brownian
motion on the demo calendar (``is_us_trading_day``) from a ``random.Random`` of its own: the bars
of ``synthetic_bars`` (one Random for the whole correlated market) stay exactly what they were.

``synthetic_eurusd`` draws ``C:EURUSD`` (``FX_SYMBOL``: one EUR in USD, the FX symbol the ledger's
rate lookup reads), every calendar weekday, 5 decimal places: a random walk on the log rate with
about 0.5 % daily volatility, pulled gently back towards 1.08 so it stays a plausible EUR/USD. It
is the only invented price under a real symbol: ``botranks demo`` writes it only into a price
cache without any real EUR/USD rate (``tools/demo.py``).
"""

from __future__ import annotations

import math
import random
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from botranks_domain.bars import Bar
from botranks_domain.currency import fx_symbol

from .synthetic import _cents, is_us_trading_day

__all__ = [
    "EUR_STOCK",
    "EUR_CURRENCIES",
    "FX_SYMBOL",
    "FX_SYMBOLS",
    "synthetic_eur_bars",
    "synthetic_eurusd",
]

EUR_STOCK = "DEMO-SAP"
#: the quote currency of each synthetic symbol not in USD (what the demo records in the price cache)
EUR_CURRENCIES: dict[str, str] = {EUR_STOCK: "EUR"}
FX_SYMBOL = fx_symbol("EUR", "USD")  # C:EURUSD
#: every symbol a USD -> EUR conversion may read directly (the ledger prefers C:USDEUR when it has one)
FX_SYMBOLS = (FX_SYMBOL, fx_symbol("USD", "EUR"))

# DEMO-SAP: start price (EUR), annual drift, annual volatility, typical daily volume
_SAP = (130.0, 0.10, 0.24, 1_500_000)
EURUSD_CENTRE = 1.08
EURUSD_DAILY_VOL = 0.005
_EURUSD_PULL = 0.004  # of the log distance to the centre, each day
_PIP = Decimal("0.00001")


def synthetic_eur_bars(start: date, end: date, seed: int = 42) -> list[Bar]:
    """Daily OHLCV bars of ``DEMO-SAP`` (EUR) on the demo calendar, ``start`` to ``end`` inclusive.
    Same arguments → identical bars; prices in cents, always > 0."""
    rng = random.Random(f"{EUR_STOCK}/{seed}")
    price, (_, mu, sigma, base_volume) = _SAP[0], _SAP
    dt = 1 / 252
    step = sigma * math.sqrt(dt)
    bars: list[Bar] = []
    day = start
    while day <= end:
        if is_us_trading_day(day):
            z = rng.gauss(0.0, 1.0)
            previous, price = price, price * math.exp((mu - 0.5 * sigma * sigma) * dt + step * z)
            open_ = previous * math.exp(0.25 * step * rng.gauss(0.0, 1.0))
            high = max(open_, price) * math.exp(0.4 * step * abs(rng.gauss(0.0, 1.0)))
            low = min(open_, price) * math.exp(-0.4 * step * abs(rng.gauss(0.0, 1.0)))
            volume = round(base_volume * (0.6 + 0.4 * abs(z)) * math.exp(0.2 * rng.gauss(0.0, 1.0)))
            bars.append(
                Bar(
                    symbol=EUR_STOCK,
                    date=day,
                    close=_cents(price),
                    open=_cents(open_),
                    high=_cents(high),
                    low=_cents(low),
                    volume=Decimal(volume),
                )
            )
        day += timedelta(days=1)
    return bars


def _pips(value: float) -> Decimal:
    return max(_PIP, Decimal(repr(value)).quantize(_PIP, ROUND_HALF_EVEN))


def synthetic_eurusd(start: date, end: date, seed: int = 42) -> list[Bar]:
    """Daily ``C:EURUSD`` bars (one EUR in USD), every weekday from ``start`` to ``end`` inclusive,
    5 decimal places. Same arguments → identical bars; always > 0."""
    rng = random.Random(f"{FX_SYMBOL}/{seed}")
    centre = math.log(EURUSD_CENTRE)
    level = centre
    bars: list[Bar] = []
    day = start
    while day <= end:
        if day.weekday() < 5:
            previous = level
            level += _EURUSD_PULL * (centre - level) + EURUSD_DAILY_VOL * rng.gauss(0.0, 1.0)
            close, open_ = math.exp(level), math.exp(previous)
            high = max(open_, close) * math.exp(0.3 * EURUSD_DAILY_VOL * abs(rng.gauss(0.0, 1.0)))
            low = min(open_, close) * math.exp(-0.3 * EURUSD_DAILY_VOL * abs(rng.gauss(0.0, 1.0)))
            bars.append(
                Bar(symbol=FX_SYMBOL, date=day, close=_pips(close), open=_pips(open_), high=_pips(high), low=_pips(low))
            )
        day += timedelta(days=1)
    return bars
