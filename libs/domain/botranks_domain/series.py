"""A strategy's daily series on polars: the NAV as a frame, time-weighted returns, the growth index,
drawdown, and the rolling figures of the charts.

:mod:`botranks_domain.performance` folds these series into /performance's figures; the strategy
page draws them. Both read a NAV history through :func:`nav_frame`, so they see the same numbers.
Like ``performance``, this needs polars (the ``metrics`` extra); the wire shapes do not.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import date
from decimal import Decimal

import polars as pl

from .nav import NavRow

#: trading days a year: the annualization of every daily figure
PERIODS_PER_YEAR = 252
SQRT_PERIODS = math.sqrt(PERIODS_PER_YEAR)

NAV_SCHEMA = {"date": pl.Date, "total_equity": pl.Float64, "external_flow": pl.Float64, "cash": pl.Float64}
CLOSES_SCHEMA = {"date": pl.Date, "close": pl.Float64}


def nav_frame(rows: Iterable[NavRow]) -> pl.DataFrame:
    """NAV rows (in date order) as the frame the metrics read: ``date``, ``total_equity``,
    ``external_flow`` and ``cash``, money as floats (the figures are ratios)."""
    dates: list[date] = []
    equity: list[float] = []
    flow: list[float] = []
    cash: list[float] = []
    for r in rows:
        dates.append(r.date)
        equity.append(float(r.total_equity))
        flow.append(float(r.external_flow))
        cash.append(float(r.cash))
    return pl.DataFrame({"date": dates, "total_equity": equity, "external_flow": flow, "cash": cash}, schema=NAV_SCHEMA)


def closes_frame(closes: Iterable[tuple[date, Decimal]]) -> pl.DataFrame:
    """A benchmark's closes, ``(day, close)``, as a frame of ``date`` and ``close`` (as given, not sorted)."""
    days: list[date] = []
    values: list[float] = []
    for day, close in closes:
        days.append(day)
        values.append(float(close))
    return pl.DataFrame({"date": days, "close": values}, schema=CLOSES_SCHEMA)


def time_weighted_returns(equity: pl.Expr, flow: pl.Expr) -> pl.Expr:
    """Daily time-weighted return ``NAV_t / (NAV_{t-1} + F_t) - 1`` (the day's flow ``F_t`` taken at
    its start); null on the first row and wherever the base ``NAV_{t-1} + F_t`` is <= 0 (undefined)."""
    base = equity.shift(1) + flow
    return pl.when(base > 0).then(equity / base - 1.0).otherwise(None).fill_nan(None)


def growth_index(returns: pl.Expr) -> pl.Expr:
    """The cumulative time-weighted index ``W``: 1.0 at inception, ``W_t = W_{t-1} * (1 + r_t)``; an
    undefined (null) return keeps it flat."""
    return (1.0 + returns).fill_null(1.0).cum_prod()


def drawdown_series(index: pl.Expr) -> pl.Expr:
    """``(W_t - max_{s<=t} W_s) / max_{s<=t} W_s`` (<= 0), as empyrical's drawdown series, on the
    growth index (never on raw NAV, so a deposit cannot fake a recovery)."""
    return (index - index.cum_max()) / index.cum_max()


def rolling_volatility(returns: pl.Expr, window: int) -> pl.Expr:
    """Annualized standard deviation (ddof=1) of the last ``window`` daily returns; null until a
    full window of returns."""
    return returns.rolling_std(window, min_samples=window) * SQRT_PERIODS


def rolling_sharpe(returns: pl.Expr, window: int) -> pl.Expr:
    """Annualized Sharpe ratio (risk-free rate 0) of the last ``window`` daily returns; null until a
    full window, and where the window's returns do not vary."""
    mean = returns.rolling_mean(window, min_samples=window)
    std = returns.rolling_std(window, min_samples=window)
    return pl.when(std > 0).then(mean / std * SQRT_PERIODS).otherwise(None)


def nav_returns(nav: pl.DataFrame) -> pl.LazyFrame:
    """``date`` and the day's time-weighted return ``r`` of a :func:`nav_frame` (a null flow is 0)."""
    return nav.lazy().select(
        pl.col("date"),
        time_weighted_returns(pl.col("total_equity"), pl.col("external_flow").fill_null(0.0)).alias("r"),
    )


def daily_series(nav: pl.DataFrame, window: int) -> pl.LazyFrame:
    """Per NAV day: ``date``, the return ``r``, the growth ``index`` (1.0 at inception), its
    ``drawdown``, and the ``rolling_sharpe`` and ``rolling_volatility`` over ``window`` days."""
    r, w = pl.col("r"), pl.col("index")
    return (
        nav_returns(nav)
        .with_columns(index=growth_index(r))
        .with_columns(
            drawdown=drawdown_series(w),
            rolling_sharpe=rolling_sharpe(r, window),
            rolling_volatility=rolling_volatility(r, window),
        )
    )


def sparkline(rows: Iterable[NavRow], points: int = 48) -> str | None:
    """A strategy's growth index (time-weighted, as the figures: deposits are no gains) at up to ``points``
    evenly spaced NAV days, the last included, each to 4 decimals, comma-separated: the board's
    sparkline (None under two NAV days). An undefined day (an emptied account) keeps the index flat."""
    navs = list(rows)
    if len(navs) < 2:
        return None
    index, level = [1.0], 1.0
    for prev, row in zip(navs, navs[1:], strict=False):
        base = float(prev.total_equity) + float(row.external_flow)
        if base > 0:
            level *= float(row.total_equity) / base
        index.append(level)
    step = (len(index) - 1) / (min(points, len(index)) - 1)
    picked = [index[round(i * step)] for i in range(min(points, len(index)))]
    return ",".join(f"{v:.4f}" for v in picked)
