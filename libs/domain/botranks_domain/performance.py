"""Risk/return metrics from a strategy's daily NAV (DESIGN.md "NAV and performance").

Pure and framework-free: stdlib, ``math`` and polars only; no I/O. The single entry point
is :func:`compute_performance`, which returns the JSON-ready body of
``GET /strategies/{id}/performance`` (minus ``strategy_id``).

Conventions (DESIGN.md, which follows empyrical; cross-checked against empyrical-reloaded
in ``tests/unit/test_performance.py``):

* Daily returns are time-weighted: ``r_t = NAV_t / (NAV_{t-1} + F_t) - 1`` where ``F_t`` is
  the day's external flow, taken at the start of the day. The series starts on the second
  NAV row. When ``NAV_{t-1} + F_t <= 0`` (the account was emptied, e.g. a full withdrawal)
  the return is undefined: it is null and is *skipped* everywhere (it is neither a gain nor
  a loss, is not counted as an observation, and the cumulative index stays flat that day).
  "The return series" below means the defined returns only.
* ``total_return = prod(1 + r) - 1`` (deposits are never gains); ``starting_equity`` /
  ``ending_equity`` are the first / last raw NAV.
* ``days`` = calendar days inception -> latest; ``years = days / 365.25``;
  ``cagr = (1 + total_return) ** (1 / years) - 1`` (null when ``years == 0``). This is the
  DESIGN (calendar) CAGR, *not* empyrical's ``annual_return``/``cagr``, which use
  ``len(returns) / 252`` years. ``calmar_ratio = cagr / |max_drawdown|`` uses this calendar
  CAGR too, so it differs from ``empyrical.calmar_ratio`` by exactly the CAGR definition.
* 252 periods a year, ``rf_d = risk_free_rate / 252``, ``std`` with ddof=1:
  ``volatility_annualized = std(r) * sqrt(252)`` (empyrical ``annual_volatility``);
  ``sharpe_ratio = mean(r - rf_d) / std(r - rf_d) * sqrt(252)`` (empyrical
  ``sharpe_ratio(r, risk_free=rf_d)``); ``downside_volatility_annualized =
  sqrt(mean(min(r - rf_d, 0) ** 2)) * sqrt(252)`` over *all* periods (empyrical
  ``downside_risk(r, required_return=rf_d)``); ``sortino_ratio = mean(r - rf_d) * 252 /
  downside`` (empyrical ``sortino_ratio(r, required_return=rf_d)``). As in empyrical,
  volatility/Sharpe/Sortino need two returns and downside risk one; identical returns have
  exactly zero deviation (empyrical's ``_zero_dispersion_std``, here applied to the
  volatility as well: it is 0.0, not a 1e-18 rounding residue), so their Sharpe is None.
* Drawdown is measured on the time-weighted cumulative index ``W`` (``W = 1`` at
  inception, ``W_t = W_{t-1} * (1 + r_t)``), never on raw NAV, so a deposit cannot fake a
  recovery: ``dd_t = (W_t - max_{s<=t} W_s) / max_{s<=t} W_s`` (empyrical
  ``max_drawdown``). ``max_drawdown = min(dd) <= 0``, ``current_drawdown = dd`` on the
  latest day, ``max_drawdown_duration_days`` = the longest spell under water in calendar
  days, from the peak's date to the recovery date (first day with ``W >= peak``), or to
  the latest date if not recovered; 0 when never under water.
* ``monthly_returns`` / ``yearly_returns`` compound the daily returns inside each calendar
  month / year present in the NAV (a month holding only the inception day is ``0.0``);
  months come from one polars ``group_by``, a year is the product of its months' growth.
* Benchmark statistics are computed on the common grid: the NAV rows whose date also has
  a benchmark close. Flows on strategy-only days are summed into the next common date's
  flow (flows after the last common date are dropped), then both return series are
  recomputed on that grid (a crypto strategy's weekend folds into Monday's return).
  Dates where either return is undefined are dropped pairwise. With ``b`` the benchmark
  returns:

  - ``beta = mean((b - mean(b)) * r) / mean((b - mean(b)) ** 2)`` exactly as empyrical
    ``beta`` (a ddof=0/ddof=0 ratio, identical to cov/var with any consistent ddof; null
    when var(b) < 1e-30 or fewer than 2 pairs; empyrical ignores ``risk_free`` here too);
  - ``alpha_annualized = (1 + mean((r - rf_d) - beta * (b - rf_d))) ** 252 - 1``
    (empyrical ``alpha``);
  - ``tracking_error_annualized = std(r - b, ddof=1) * sqrt(252)``;
  - ``information_ratio = mean(r - b) * 252 / tracking_error_annualized`` — the DESIGN
    (annualized) information ratio, which equals ``empyrical.excess_sharpe(r, b) *
    sqrt(252)``; empyrical's ``excess_sharpe`` itself is the *daily*, un-annualized ratio;
  - ``benchmark_total_return = last close / first close - 1`` on the common grid.

* ``short_history``: with fewer than 20 daily returns (``MIN_ANNUALISED_RETURNS``) every annualised
  figure (cagr, volatility, downside volatility, Sharpe, Sortino, Calmar, alpha, tracking error,
  information ratio) is None and ``warnings`` says so; beta needs 20 common days as well. Two days
  of returns annualised are not a figure (an alpha of 10^12 %).
* ``significance``: the Sharpe ratio's PSR, DSR, 95 % interval and minimum track record
  (:mod:`botranks_domain.significance`), from the same excess returns as ``sharpe_ratio``.
* Anything undefined (no returns, one return where two are needed, zero dispersion,
  no drawdown for Calmar, non-positive bases, overflow) is ``None``; the result never holds
  NaN or +-inf, so ``json.dumps(result, allow_nan=False)`` is safe. Nothing is rounded.

The base test is exactly ``<= 0`` as DESIGN says: a base that is positive only by rounding
(an account emptied and refunded with fractional amounts) yields a finite but meaningless
return; NAV derivation should make an emptied account's NAV exactly 0.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any

import polars as pl

from .series import PERIODS_PER_YEAR, SQRT_PERIODS, drawdown_series, growth_index, nav_returns, time_weighted_returns
from .significance import NO_TRIALS, ReturnMoments, Trials, significance

DAYS_PER_YEAR = 365.25
_MIN_BENCH_VARIANCE = 1.0e-30  # empyrical.beta_aligned: smaller variances are "no variance"
#: daily returns (and, for beta, common days) an annualised figure needs; fewer: null and ``short_history``
MIN_ANNUALISED_RETURNS = 20
#: what ``short_history`` nulls (besides the benchmark's beta, alpha, tracking error and information ratio)
_ANNUALISED = (
    "cagr",
    "volatility_annualized",
    "downside_volatility_annualized",
    "sharpe_ratio",
    "sortino_ratio",
    "calmar_ratio",
)

_FIGURES = (
    "inception_date",
    "latest_date",
    "days",
    "years",
    "starting_equity",
    "ending_equity",
    "total_return",
    "cagr",
    "volatility_annualized",
    "downside_volatility_annualized",
    "sharpe_ratio",
    "sortino_ratio",
    "calmar_ratio",
)


def _finite(x: Any) -> float | None:
    """``x`` as a Python float, or None when it is missing, NaN or infinite."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _div(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or den == 0:
        return None
    return _finite(num / den)


def _pow(base: float, exponent: float) -> float | None:
    """Real ``base ** exponent`` or None (negative base with a fractional power, overflow)."""
    if base < 0 and not float(exponent).is_integer():
        return None
    try:
        return _finite(base**exponent)
    except (OverflowError, ZeroDivisionError):
        return None


def _empty_result(benchmark_symbol: str | None, with_benchmark: bool) -> dict[str, Any]:
    out: dict[str, Any] = {k: None for k in _FIGURES}
    out["drawdown"] = {"max_drawdown": None, "max_drawdown_duration_days": None, "current_drawdown": None}
    out["monthly_returns"] = {}
    out["yearly_returns"] = {}
    out["benchmark"] = _empty_benchmark(benchmark_symbol) if with_benchmark else None
    return out


def _empty_benchmark(symbol: str | None) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "beta": None,
        "alpha_annualized": None,
        "tracking_error_annualized": None,
        "information_ratio": None,
        "benchmark_total_return": None,
    }


def performance_with_moments(
    nav: pl.DataFrame,
    benchmark: pl.DataFrame | None,
    benchmark_symbol: str | None,
    risk_free_rate: float = 0.0,
    trials: Trials = NO_TRIALS,
    min_annualised_returns: int = MIN_ANNUALISED_RETURNS,
) -> tuple[dict[str, Any], ReturnMoments]:
    """:func:`compute_performance`, and the moments of the returns its Sharpe ratio was computed from (the
    leaderboard keeps the per-day Sharpe and its standard error to re-judge its DSR against new trials)."""
    result, observed = _compute(nav, benchmark, benchmark_symbol, risk_free_rate, min_annualised_returns)
    result["warnings"] = warnings = _history_warnings(nav, observed.observations, min_annualised_returns)
    codes = {w["code"] for w in warnings}
    if "negative_equity" in codes:
        observed = ReturnMoments(observed.observations, None, None, None, None)
    result["significance"] = significance(observed, trials)
    if "negative_equity" in codes:
        _null_return_figures(result)
    elif "short_history" in codes:
        _null_annualised_figures(result)
    return result, observed


def compute_performance(
    nav: pl.DataFrame,
    benchmark: pl.DataFrame | None,
    benchmark_symbol: str | None,
    risk_free_rate: float = 0.0,
    trials: Trials = NO_TRIALS,
    min_annualised_returns: int = MIN_ANNUALISED_RETURNS,
) -> dict[str, Any]:
    """Performance figures for one strategy (the ``/performance`` body minus ``strategy_id``).

    ``nav``: columns ``date`` (``pl.Date``, strictly increasing, unique), ``total_equity``
    (Float64) and ``external_flow`` (Float64: the day's deposits ``+`` / withdrawals ``-``,
    taken at the *start* of the day; null is read as 0). ``benchmark``: columns ``date``
    (``pl.Date``, any order; a duplicated date keeps its last row) and ``close`` (Float64;
    null/NaN closes are ignored), or None for no benchmark (then the result's ``benchmark``
    is None; otherwise it is a dict whose figures may be None, e.g. with fewer than two
    common dates). ``risk_free_rate`` is annual (0.045 = 4.5%).

    A time-weighted return whose base ``NAV_{t-1} + F_t`` is <= 0 is undefined: it is
    treated as null and skipped (see the module docstring for every convention and the
    empyrical function each figure matches). Empty ``nav`` gives every figure None and
    empty monthly/yearly dicts; a one-day history gives ``total_return`` 0.0, a zero
    drawdown (the index sits at its peak) and every ratio None.

    ``warnings`` lists what makes the history's figures not mean what they seem
    (:func:`_history_warnings`); with ``negative_equity`` every return-based figure is None, with
    ``short_history`` (fewer than ``MIN_ANNUALISED_RETURNS`` daily returns) every annualised one.
    ``significance`` (:mod:`botranks_domain.significance`) judges the Sharpe ratio against ``trials``,
    the strategies of the instance. ``min_annualised_returns`` (0: no such rule) is there for tests of the
    formulas on short series; the API and the board use the default.
    """
    return performance_with_moments(nav, benchmark, benchmark_symbol, risk_free_rate, trials, min_annualised_returns)[0]


def _history_warnings(nav: pl.DataFrame, observations: int, needed: int) -> list[dict[str, str]]:
    """What makes a history's figures not mean what they seem (DESIGN: say so, never print nonsense).

    ``negative_equity``: on some day the account was worth less than nothing, so its returns are
    not a track record (every return-based figure is then null). ``emptied_account``: worth
    exactly zero on some day (e.g. everything withdrawn): the return across that day is
    undefined and skipped, the rest stands. ``negative_cash``: cash
    below zero on some day — borrowed money, or a deposit recorded after the orders it paid for
    (e.g. dated "now" while the orders are back-dated); the figures stand, on the equity as
    reported. Needs a ``cash`` column for the latter. ``short_history``: fewer than
    ``needed`` daily returns, too few for an annualised figure to mean anything.
    """
    out: list[dict[str, str]] = []
    if nav.height == 0:
        return out
    if observations < needed:
        out.append(
            {
                "code": "short_history",
                "message": (
                    f"{observations} daily return(s): annualised figures (CAGR, volatility, Sharpe, Sortino, Calmar,"
                    f" alpha, beta, tracking error, information ratio) need at least {needed}"
                ),
            }
        )
    broke = nav.filter(pl.col("total_equity") < 0)
    if broke.height:
        out.append(
            {
                "code": "negative_equity",
                "message": (
                    f"Total equity was negative on {broke.height} day(s), first on {broke['date'][0]}: "
                    "returns are undefined there, so return-based figures are omitted"
                ),
            }
        )
    emptied = nav.filter(pl.col("total_equity") == 0)
    if emptied.height:
        out.append(
            {
                "code": "emptied_account",
                "message": (
                    f"Total equity was zero on {emptied.height} day(s), first on {emptied['date'][0]}: "
                    "the returns across those days are undefined and left out"
                ),
            }
        )
    if "cash" in nav.columns:
        short = nav.filter(pl.col("cash") < 0)
        if short.height:
            out.append(
                {
                    "code": "negative_cash",
                    "message": (
                        f"Cash was negative on {short.height} day(s), first on {short['date'][0]}: borrowed money, "
                        "or a deposit recorded with a later date than the orders it paid for; figures are computed "
                        "on the equity as reported"
                    ),
                }
            )
    return out


def _null_annualised_figures(result: dict[str, Any]) -> None:
    for key in _ANNUALISED:
        result[key] = None
    if result["benchmark"] is not None:
        kept = result["benchmark"]["benchmark_total_return"]
        result["benchmark"] = {**_empty_benchmark(result["benchmark"]["symbol"]), "benchmark_total_return": kept}


def _null_return_figures(result: dict[str, Any]) -> None:
    _null_annualised_figures(result)  # the benchmark's figures too, but its own total return
    result["total_return"] = None
    result["drawdown"] = {k: None for k in result["drawdown"]}
    result["monthly_returns"], result["yearly_returns"] = {}, {}


def _compute(
    nav: pl.DataFrame,
    benchmark: pl.DataFrame | None,
    benchmark_symbol: str | None,
    risk_free_rate: float,
    min_common_days: int,
) -> tuple[dict[str, Any], ReturnMoments]:
    """The figures, and the moments of the excess returns the Sharpe ratio is computed from."""
    with_benchmark = benchmark is not None
    for frame, name in ((nav, "nav"), (benchmark, "benchmark")):
        if frame is not None and frame.schema.get("date") != pl.Date:
            raise TypeError(f"{name}.date must be pl.Date, got {frame.schema.get('date')}")
    if nav.height == 0:
        return _empty_result(benchmark_symbol, with_benchmark), ReturnMoments(0, None, None, None, None)

    rf_d = risk_free_rate / PERIODS_PER_YEAR
    queries = [_series_query(nav, rf_d), _monthly_query(nav)]
    if benchmark is not None:
        queries.append(_benchmark_query(nav, benchmark, rf_d))
    # The in-memory engine: for a few thousand rows the default (streaming) engine's
    # start-up dominates the run time.
    collected = pl.collect_all(queries, engine="in-memory")
    s = collected[0].row(0, named=True)

    first_day: date = nav["date"][0]
    last_day: date = nav["date"][-1]
    days = (last_day - first_day).days
    years = days / DAYS_PER_YEAR
    n = s["n"]
    total_return = _finite(s["growth"] - 1.0)  # no returns: growth 1.0 -> 0.0

    cagr = None
    if days > 0 and total_return is not None:
        cagr = _pow_minus_one(1.0 + total_return, 1.0 / years)

    volatility = sharpe = sortino = std_ex = None
    if n >= 2:
        # empyrical._zero_dispersion_std: identical values have exactly zero deviation
        std_r = 0.0 if s["min_r"] == s["max_r"] else s["std_r"]
        volatility = _finite(std_r * SQRT_PERIODS)
        std_ex = std_r if "std_ex" not in s else 0.0 if s["min_ex"] == s["max_ex"] else s["std_ex"]
        sharpe = _div(s["mean_ex"] * SQRT_PERIODS, std_ex)
        sortino = _div(s["mean_ex"] * PERIODS_PER_YEAR, s["downside"])
    observed = ReturnMoments(n, _finite(s["mean_ex"]), std_ex, _finite(s["skew_ex"]), _finite(s["kurt_ex"]))
    downside = _finite(s["downside"]) if n >= 1 else None

    max_dd = _finite(s["max_dd"])
    calmar = _div(cagr, -max_dd) if max_dd is not None and max_dd < 0 else None

    monthly: dict[str, float | None] = {}
    yearly_growth: dict[str, float] = {}
    for month_start, growth in collected[1].iter_rows():  # one row per month, in order
        monthly[f"{month_start.year:04d}-{month_start.month:02d}"] = _finite(growth - 1.0)
        year = f"{month_start.year:04d}"
        yearly_growth[year] = yearly_growth.get(year, 1.0) * growth

    return {
        "inception_date": first_day.isoformat(),
        "latest_date": last_day.isoformat(),
        "days": days,
        "years": years,
        "starting_equity": _finite(nav["total_equity"][0]),
        "ending_equity": _finite(nav["total_equity"][-1]),
        "total_return": total_return,
        "cagr": cagr,
        "volatility_annualized": volatility,
        "downside_volatility_annualized": downside,
        "sharpe_ratio": sharpe,
        "sortino_ratio": sortino,
        "calmar_ratio": calmar,
        "drawdown": {
            "max_drawdown": max_dd,
            "max_drawdown_duration_days": int(s["dd_days"] or 0),
            "current_drawdown": _finite(s["cur_dd"]),
        },
        "monthly_returns": monthly,
        "yearly_returns": {y: _finite(g - 1.0) for y, g in yearly_growth.items()},
        "benchmark": (
            _benchmark_figures(collected[2].row(0, named=True), benchmark_symbol, min_common_days)
            if with_benchmark
            else None
        ),
    }, observed


def _series_query(nav: pl.DataFrame, rf_d: float) -> pl.LazyFrame:
    """One-row frame: return-series moments and drawdown figures."""
    r, w, dd = pl.col("r"), pl.col("w"), pl.col("dd")
    ex = r - rf_d
    day = pl.col("date").cast(pl.Int32)  # days since the epoch
    under = dd < 0
    last_high_day = pl.when(dd == 0).then(day).otherwise(None).forward_fill()
    # empyrical's Sharpe takes the deviation of the *excess* returns; with rf = 0 those are
    # the returns themselves, so the three aggregates are only added when rf != 0
    excess_dispersion = (
        [] if rf_d == 0 else [ex.std(ddof=1).alias("std_ex"), ex.min().alias("min_ex"), ex.max().alias("max_ex")]
    )
    return (
        nav_returns(nav)
        .with_columns(w=growth_index(r))  # an undefined return keeps it flat
        .with_columns(dd=drawdown_series(w))  # as empyrical's
        .select(
            *excess_dispersion,
            n=r.count(),
            growth=w.last(),
            mean_ex=ex.mean(),
            skew_ex=ex.skew(bias=True),
            kurt_ex=ex.kurtosis(fisher=False, bias=True),
            std_r=r.std(ddof=1),
            min_r=r.min(),
            max_r=r.max(),
            downside=(ex.clip(upper_bound=0.0) ** 2).mean().sqrt() * SQRT_PERIODS,
            max_dd=dd.min(),
            cur_dd=dd.last(),
            # a spell under water runs from the last high before it to the first day back at
            # the high (that day is still counted through `under.shift(1)`), or to the latest day
            dd_days=pl.when(under | under.shift(1)).then(day - last_high_day.shift(1)).otherwise(None).max(),
        )
    )


def _monthly_query(nav: pl.DataFrame) -> pl.LazyFrame:
    """Growth factor ``prod(1 + r)`` of each calendar month present, in date order."""
    return (
        nav_returns(nav)
        .group_by(pl.col("date").dt.month_start(), maintain_order=True)
        .agg((1.0 + pl.col("r")).product())
    )


def _benchmark_query(nav: pl.DataFrame, benchmark: pl.DataFrame, rf_d: float) -> pl.LazyFrame:
    """One-row frame of the aggregates the benchmark figures need, on the common grid."""
    closes = benchmark.lazy()
    if benchmark["date"].n_unique() != benchmark.height:
        closes = closes.unique(subset="date", keep="last", maintain_order=True)
    closes = closes.select(pl.col("date"), pl.col("close").cast(pl.Float64).fill_nan(None).alias("_close"))
    common = pl.col("_close").is_not_null()
    common_i = common.cast(pl.Int32)
    # rows in (previous common date, this common date] share a segment number, so a
    # segment's flows are summed into its common date
    segment = common_i.cum_sum() - common_i
    close = pl.col("_close")
    grid = (
        nav.lazy()
        .select("date", "total_equity", pl.col("external_flow").fill_null(0.0))
        .join(closes, on="date", how="left", maintain_order="left")
        .with_columns(pl.col("external_flow").sum().over(segment).alias("_flow"))
        .filter(common)
        .select(
            close,
            r=time_weighted_returns(pl.col("total_equity"), pl.col("_flow")),
            b=pl.when(close.shift(1) > 0).then(close / close.shift(1) - 1.0).otherwise(None).fill_nan(None),
        )
        .with_columns(pair=pl.col("r").is_not_null() & pl.col("b").is_not_null())
    )
    rp, bp = pl.col("r").filter("pair"), pl.col("b").filter("pair")
    b_res = bp - bp.mean()
    cov, var = (b_res * rp).mean(), (b_res * b_res).mean()  # as empyrical.beta_aligned
    active = rp - bp
    return grid.select(
        n=pl.col("pair").sum(),
        cov=cov,
        var=var,
        alpha_mean=((rp - rf_d) - (cov / var) * (bp - rf_d)).mean(),
        active_mean=active.mean(),
        active_std=active.std(ddof=1),
        active_min=active.min(),
        active_max=active.max(),
        first_close=close.first(),
        last_close=close.last(),
    )


def _benchmark_figures(s: dict[str, Any], symbol: str | None, min_common_days: int) -> dict[str, Any]:
    out = _empty_benchmark(symbol)
    if s["first_close"] is not None and s["first_close"] > 0:
        out["benchmark_total_return"] = _finite(s["last_close"] / s["first_close"] - 1.0)
    if not s["n"] or s["n"] < max(2, min_common_days):
        return out
    if s["var"] is not None and s["var"] >= _MIN_BENCH_VARIANCE:
        beta = _finite(s["cov"] / s["var"])
        out["beta"] = beta
        if beta is not None and s["alpha_mean"] is not None:
            out["alpha_annualized"] = _pow_minus_one(1.0 + s["alpha_mean"], PERIODS_PER_YEAR)
    te_daily = 0.0 if s["active_min"] == s["active_max"] else s["active_std"]
    te = _finite(te_daily * SQRT_PERIODS)
    out["tracking_error_annualized"] = te
    out["information_ratio"] = _div(s["active_mean"] * PERIODS_PER_YEAR, te)
    return out


def _pow_minus_one(base: float, exponent: float) -> float | None:
    p = _pow(base, exponent)
    return None if p is None else _finite(p - 1.0)
