"""Latency of botranks_domain.performance.compute_performance against empyrical (and quantstats).

    python bench/bench_performance.py [--runs 500] [--warmup 50] [--years 10]

Builds a synthetic weekday NAV history (with occasional deposits/withdrawals) and a benchmark
that misses ~1 day in 13 (so flows fold onto the common grid), then times, per call:

* ``compute_performance``: the full /performance body from the polars frames;
* empyrical end-to-end: time-weighted returns with numpy, the common grid with pandas, then
  the empyrical calls for the same figures (CAGR/Calmar by the DESIGN calendar formula);
  max drawdown duration is not an empyrical figure and is left out, to its advantage;
* empyrical metric calls only, on returns already prepared (its best case);
* quantstats, only if it is installed (it is not a dependency; nothing is installed here).

Prints median and p99 in milliseconds and the ratio to compute_performance's median.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from botranks_domain.performance import compute_performance  # noqa: E402

RF = 0.045
RF_D = RF / 252


def synthetic(years: int, seed: int = 42):
    rng = np.random.default_rng(seed)
    days = [d for d in (date(2015, 1, 1) + timedelta(days=i) for i in range(int(years * 365.25))) if d.weekday() < 5]
    n = len(days)
    flows = np.where(rng.random(n) < 0.02, np.round(rng.normal(0, 50_000, n)), 0.0)
    flows[0] = 1_000_000.0
    equity = np.empty(n)
    equity[0] = 1_000_000.0
    rets = rng.normal(3e-4, 0.01, n)
    for i in range(1, n):
        equity[i] = (equity[i - 1] + flows[i]) * (1.0 + rets[i])
    bdays = [d for i, d in enumerate(days) if i % 13 != 5]
    closes = 100.0 * np.cumprod(1.0 + rng.normal(2e-4, 0.011, len(bdays)))
    nav = pl.DataFrame(
        {"date": days, "total_equity": equity, "external_flow": flows},
        schema={"date": pl.Date, "total_equity": pl.Float64, "external_flow": pl.Float64},
    )
    bench = pl.DataFrame({"date": bdays, "close": closes}, schema={"date": pl.Date, "close": pl.Float64})
    return nav, bench


def empyrical_metrics(ep, r: pd.Series, rg: np.ndarray, bg: np.ndarray, n_days: int) -> dict:
    """The same figure set from empyrical calls on prepared return series."""
    total = ep.cum_returns_final(r)
    cagr = (1 + total) ** (365.25 / n_days) - 1
    mdd = ep.max_drawdown(r)
    beta = ep.beta(rg, bg, risk_free=RF_D)
    return {
        "total_return": total,
        "cagr": cagr,
        "volatility": ep.annual_volatility(r),
        "downside": ep.downside_risk(r, required_return=RF_D),
        "sharpe": ep.sharpe_ratio(r, risk_free=RF_D),
        "sortino": ep.sortino_ratio(r, required_return=RF_D),
        "calmar": cagr / abs(mdd),
        "max_drawdown": mdd,
        "current_drawdown": ep.stats.drawdown_series(r).iloc[-1],
        "monthly": ep.aggregate_returns(r, "monthly"),
        "yearly": ep.aggregate_returns(r, "yearly"),
        "beta": beta,
        "alpha": ep.alpha(rg, bg, risk_free=RF_D, _beta=beta),
        "tracking_error": np.std(rg - bg, ddof=1) * np.sqrt(252),
        "information_ratio": ep.excess_sharpe(rg, bg) * np.sqrt(252),
    }


def prepare_pandas(nav_pd: pd.DataFrame, bench_pd: pd.DataFrame):
    """Time-weighted returns (numpy) and the common grid (pandas), as the module does."""
    eq, fl = nav_pd["total_equity"].to_numpy(), nav_pd["external_flow"].to_numpy()
    base = eq[:-1] + fl[1:]
    r = pd.Series(np.where(base > 0, eq[1:] / base - 1.0, np.nan), index=nav_pd.index[1:]).dropna()
    m = nav_pd.join(bench_pd, how="left")
    common = m["close"].notna().to_numpy()
    segment = np.cumsum(common) - common
    flow = m.groupby(segment)["external_flow"].transform("sum").to_numpy()[common]
    g_eq, g_close = eq[common], m["close"].to_numpy()[common]
    g_base = g_eq[:-1] + flow[1:]
    rg = np.where(g_base > 0, g_eq[1:] / g_base - 1.0, np.nan)
    bg = g_close[1:] / g_close[:-1] - 1.0
    ok = ~np.isnan(rg) & ~np.isnan(bg)
    return r, rg[ok], bg[ok]


def time_it(fn, runs: int, warmup: int) -> tuple[float, float]:
    for _ in range(warmup):
        fn()
    samples = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(runs):
            t0 = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t0)
    finally:
        if gc_was_enabled:
            gc.enable()
    samples.sort()
    p99 = samples[min(len(samples) - 1, int(0.99 * len(samples)))]
    return statistics.median(samples) * 1e3, p99 * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--years", type=int, default=10)
    args = parser.parse_args()

    import empyrical as ep

    nav, bench = synthetic(args.years)
    nav_pd = pd.DataFrame(
        {"total_equity": nav["total_equity"].to_numpy(), "external_flow": nav["external_flow"].to_numpy()},
        index=pd.DatetimeIndex(nav["date"].to_list()),
    )
    bench_pd = pd.DataFrame({"close": bench["close"].to_numpy()}, index=pd.DatetimeIndex(bench["date"].to_list()))
    n_days = (nav["date"][-1] - nav["date"][0]).days
    r, rg, bg = prepare_pandas(nav_pd, bench_pd)

    ours = compute_performance(nav, bench, "BENCH", RF)
    theirs = empyrical_metrics(ep, r, rg, bg, n_days)
    for key, ref in (("sharpe_ratio", "sharpe"), ("sortino_ratio", "sortino"), ("cagr", "cagr")):
        assert abs(ours[key] - theirs[ref]) <= 1e-9 * abs(theirs[ref]), (key, ours[key], theirs[ref])
    assert abs(ours["benchmark"]["beta"] - theirs["beta"]) <= 1e-9 * abs(theirs["beta"])

    rows = [
        ("compute_performance (polars, end-to-end)", lambda: compute_performance(nav, bench, "BENCH", RF)),
        (
            "empyrical end-to-end (numpy/pandas prep)",
            lambda: empyrical_metrics(ep, *prepare_pandas(nav_pd, bench_pd), n_days),
        ),
        ("empyrical metric calls only", lambda: empyrical_metrics(ep, r, rg, bg, n_days)),
    ]
    if importlib.util.find_spec("quantstats") is not None:
        import quantstats as qs

        def quantstats_metrics():
            return (
                qs.stats.comp(r),
                qs.stats.volatility(r),
                qs.stats.sharpe(r, rf=RF),
                qs.stats.sortino(r, rf=RF),
                qs.stats.max_drawdown(r),
                qs.stats.calmar(r),
                qs.stats.greeks(pd.Series(rg), pd.Series(bg)),
                qs.stats.information_ratio(pd.Series(rg), pd.Series(bg)),
                qs.stats.monthly_returns(r),
            )

        rows.append(("quantstats metric calls only", quantstats_metrics))
        quantstats_note = ""
    else:
        quantstats_note = "quantstats: not installed, skipped"

    print(
        f"{nav.height} NAV rows ({args.years} years of weekdays), {bench.height} benchmark closes, "
        f"{len(ours['monthly_returns'])} months; {args.runs} runs after {args.warmup} warm-up; "
        f"polars {pl.__version__}, empyrical {ep.__version__}"
    )
    results = [(name, *time_it(fn, args.runs, args.warmup)) for name, fn in rows]
    base = results[0][1]
    width = max(len(name) for name, *_ in results)
    print(f"{'':{width}}  {'median ms':>10}  {'p99 ms':>8}  {'x ours':>7}")
    for name, median, p99 in results:
        print(f"{name:{width}}  {median:10.3f}  {p99:8.3f}  {median / base:7.2f}")
    if quantstats_note:
        print(quantstats_note)


if __name__ == "__main__":
    main()
