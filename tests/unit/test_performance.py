"""Performance metrics: hand-worked examples and a property cross-check against empyrical.

empyrical-reloaded is the reference for every figure it defines (test-only dependency). The
two places DESIGN.md departs from it are checked against hand formulas instead:
``cagr`` (calendar days / 365.25, not ``len(returns) / 252``) and therefore ``calmar_ratio``;
``information_ratio`` is DESIGN's annualized ratio = ``empyrical.excess_sharpe * sqrt(252)``.
"""

from __future__ import annotations

import json
import math
import statistics
from datetime import date, timedelta

import empyrical as ep
import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from botranks_domain.performance import compute_performance as _compute_performance

SQRT252 = math.sqrt(252)


def compute_performance(*args, **kwargs):
    """The formulas on short series too: the short-history rule is tested in test_significance.py."""
    return _compute_performance(*args, min_annualised_returns=0, **kwargs)


TOP_KEYS = {
    "significance",
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
    "drawdown",
    "monthly_returns",
    "yearly_returns",
    "benchmark",
    "warnings",
}
DRAWDOWN_KEYS = {"max_drawdown", "max_drawdown_duration_days", "current_drawdown"}
BENCHMARK_KEYS = {
    "symbol",
    "beta",
    "alpha_annualized",
    "tracking_error_annualized",
    "information_ratio",
    "benchmark_total_return",
}
RATIOS = (
    "cagr",
    "volatility_annualized",
    "downside_volatility_annualized",
    "sharpe_ratio",
    "sortino_ratio",
    "calmar_ratio",
)


def nav_frame(days, equity, flows=None) -> pl.DataFrame:
    days = [date.fromisoformat(d) if isinstance(d, str) else d for d in days]
    return pl.DataFrame(
        {
            "date": days,
            "total_equity": [float(x) for x in equity],
            "external_flow": [float(x) for x in (flows or [0.0] * len(days))],
        },
        schema={"date": pl.Date, "total_equity": pl.Float64, "external_flow": pl.Float64},
    )


def bench_frame(days, closes) -> pl.DataFrame:
    days = [date.fromisoformat(d) if isinstance(d, str) else d for d in days]
    return pl.DataFrame(
        {"date": days, "close": [float(x) for x in closes]}, schema={"date": pl.Date, "close": pl.Float64}
    )


def close(actual, expected, rel=1e-9, abs_=1e-12) -> bool:
    if expected is None or not math.isfinite(expected):
        return actual is None
    return actual is not None and math.isclose(actual, expected, rel_tol=rel, abs_tol=abs_)


def assert_close(actual, expected, what=""):
    assert close(actual, expected), f"{what}: got {actual!r}, expected {expected!r}"


def assert_shape(res: dict, with_benchmark: bool) -> None:
    assert set(res) == TOP_KEYS
    assert set(res["drawdown"]) == DRAWDOWN_KEYS
    if with_benchmark:
        assert set(res["benchmark"]) == BENCHMARK_KEYS
    else:
        assert res["benchmark"] is None
    json.dumps(res, allow_nan=False)  # never NaN / Infinity


# --------------------------------------------------------------------------------------
# hand-worked examples
# --------------------------------------------------------------------------------------

# Ten NAV days (no flows), spanning a weekend and the January/February boundary.
# Daily returns (9 of them, starting on the second day):
#   +10%, -10%, 0, +10%, -5%, +5%, 0, -10%, +18%
# NAV: 100 -> 110 -> 99 -> 99 -> 108.9 -> 103.455 -> 108.62775 -> 108.62775 -> 97.764975
#      -> 115.3626705
HAND_DAYS = [
    "2024-01-26",
    "2024-01-29",
    "2024-01-30",
    "2024-01-31",
    "2024-02-01",
    "2024-02-02",
    "2024-02-05",
    "2024-02-06",
    "2024-02-07",
    "2024-02-08",
]
HAND_NAV = [100, 110, 99, 99, 108.9, 103.455, 108.62775, 108.62775, 97.764975, 115.3626705]


def test_hand_computed_ten_day_example():
    res = compute_performance(nav_frame(HAND_DAYS, HAND_NAV), None, None)
    assert_shape(res, with_benchmark=False)
    assert res["inception_date"] == "2024-01-26"
    assert res["latest_date"] == "2024-02-08"
    # Jan 26 -> Feb 8: 5 days left in January + 8 in February = 13 calendar days
    assert res["days"] == 13
    assert res["years"] == 13 / 365.25
    assert res["starting_equity"] == 100.0
    assert res["ending_equity"] == 115.3626705
    # 1.1 * 0.9 * 1 * 1.1 * 0.95 * 1.05 * 1 * 0.9 * 1.18 = 1.153626705
    assert_close(res["total_return"], 0.153626705, "total_return")
    # CAGR over calendar time: 1.153626705 ** (365.25 / 13) - 1
    cagr = 1.153626705 ** (365.25 / 13) - 1
    assert_close(res["cagr"], cagr, "cagr")
    # sum of returns = 0.18, mean = 0.02; deviations from the mean:
    #   0.08, -0.12, -0.02, 0.08, -0.07, 0.03, -0.02, -0.12, 0.16
    # squares: .0064 .0144 .0004 .0064 .0049 .0009 .0004 .0144 .0256, sum = 0.0738
    # sample variance = 0.0738 / 8 = 0.009225
    assert_close(res["volatility_annualized"], math.sqrt(0.009225) * SQRT252, "volatility")
    assert_close(res["sharpe_ratio"], 0.02 / math.sqrt(0.009225) * SQRT252, "sharpe")
    # downside: negative returns -0.10, -0.05, -0.10 -> squares .01 + .0025 + .01 = .0225,
    # averaged over ALL 9 periods = .0025, sqrt = 0.05
    assert_close(res["downside_volatility_annualized"], 0.05 * SQRT252, "downside")
    # sortino = 0.02 * 252 / (0.05 * sqrt(252)) = 100.8 / sqrt(252) = 0.4 * sqrt(252)
    assert_close(res["sortino_ratio"], 0.4 * SQRT252, "sortino")
    # peak 110 on Jan 29; trough 97.764975 on Feb 7: 97.764975 / 110 - 1 = -0.1112275;
    # recovered on Feb 8 (115.36 > 110): under water Jan 29 -> Feb 8 = 10 days
    assert_close(res["drawdown"]["max_drawdown"], -0.1112275, "max_drawdown")
    assert res["drawdown"]["max_drawdown_duration_days"] == 10
    assert res["drawdown"]["current_drawdown"] == 0.0
    assert_close(res["calmar_ratio"], cagr / 0.1112275, "calmar")
    # January: 1.1 * 0.9 * 1 = 0.99; February: 1.1 * 0.95 * 1.05 * 1 * 0.9 * 1.18 = 1.1652795
    assert list(res["monthly_returns"]) == ["2024-01", "2024-02"]
    assert_close(res["monthly_returns"]["2024-01"], -0.01, "jan")
    assert_close(res["monthly_returns"]["2024-02"], 0.1652795, "feb")
    assert list(res["yearly_returns"]) == ["2024"]
    assert_close(res["yearly_returns"]["2024"], 0.153626705, "2024")


def test_risk_free_rate_shifts_sharpe_and_sortino_by_hand():
    rf = 0.0252  # 0.0001 a day
    res = compute_performance(nav_frame(HAND_DAYS, HAND_NAV), None, None, risk_free_rate=rf)
    # excess returns: mean 0.02 - 0.0001 = 0.0199; their std is the std of the returns
    assert_close(res["sharpe_ratio"], 0.0199 / math.sqrt(0.009225) * SQRT252, "sharpe")
    # below 0.0001: -0.1001, -0.0501, -0.0001 (both 0 days), -0.1001 ->
    # squares 0.01002001 * 2 + 0.00251001 + 0.00000001 * 2 = 0.02255005, / 9
    downside = math.sqrt(0.02255005 / 9)
    assert_close(res["downside_volatility_annualized"], downside * SQRT252, "downside")
    assert_close(res["sortino_ratio"], 0.0199 * 252 / (downside * SQRT252), "sortino")
    # volatility, drawdown and returns do not depend on the risk-free rate
    assert_close(res["volatility_annualized"], math.sqrt(0.009225) * SQRT252, "volatility")


def test_deposits_are_not_gains():
    # 1M deposited, +1%, another 1M deposited at the start of day 3, +1% on 2.01M
    res = compute_performance(
        nav_frame(
            ["2025-03-03", "2025-03-04", "2025-03-05"], [1_000_000, 1_010_000, 2_030_100], [1_000_000, 0, 1_000_000]
        ),
        None,
        None,
    )
    assert_close(res["total_return"], 0.0201, "total_return")  # 1.01 * 1.01 - 1, not 1.0301
    assert res["starting_equity"] == 1_000_000.0
    assert res["ending_equity"] == 2_030_100.0
    assert res["drawdown"]["max_drawdown"] == 0.0
    assert res["calmar_ratio"] is None  # no drawdown
    assert res["monthly_returns"].keys() == {"2025-03"}
    assert_close(res["monthly_returns"]["2025-03"], 0.0201, "march")


def test_deposit_does_not_fake_a_recovery():
    # -10%, then a deposit lifts raw NAV far above its old peak while performance is flat
    res = compute_performance(
        nav_frame(
            ["2025-01-01", "2025-01-02", "2025-01-03", "2025-01-06"], [1000, 900, 1900, 1900], [1000, 0, 1000, 0]
        ),
        None,
        None,
    )
    assert_close(res["total_return"], -0.1, "total_return")
    assert_close(res["drawdown"]["max_drawdown"], -0.1, "max_drawdown")
    assert_close(res["drawdown"]["current_drawdown"], -0.1, "current")
    # not recovered: Jan 1 (peak) -> Jan 6 (latest)
    assert res["drawdown"]["max_drawdown_duration_days"] == 5


def test_emptied_account_makes_that_return_undefined_and_skipped():
    # day 3: everything withdrawn (base 110 - 110 = 0 -> undefined); day 4: 50 deposited, +10%
    res = compute_performance(
        nav_frame(["2025-01-01", "2025-01-02", "2025-01-03", "2025-01-04"], [100, 110, 0, 55], [100, 0, -110, 50]),
        None,
        None,
    )
    assert_shape(res, with_benchmark=False)
    assert_close(res["total_return"], 0.21, "total_return")  # 1.1 * 1.1 - 1
    # two defined returns, both +10%: zero dispersion
    assert res["volatility_annualized"] == 0.0
    assert res["sharpe_ratio"] is None
    assert res["drawdown"]["max_drawdown"] == 0.0


def test_one_day_history_has_no_ratios():
    res = compute_performance(nav_frame(["2025-05-05"], [1000]), bench_frame(["2025-05-05"], [400]), "SPY", 0.045)
    assert_shape(res, with_benchmark=True)
    assert res["days"] == 0 and res["years"] == 0.0
    assert res["total_return"] == 0.0
    for key in RATIOS:
        assert res[key] is None, key
    assert res["drawdown"] == {"max_drawdown": 0.0, "max_drawdown_duration_days": 0, "current_drawdown": 0.0}
    assert res["monthly_returns"] == {"2025-05": 0.0}
    assert res["benchmark"] == {
        "symbol": "SPY",
        "beta": None,
        "alpha_annualized": None,
        "tracking_error_annualized": None,
        "information_ratio": None,
        "benchmark_total_return": 0.0,
    }


def test_constant_nav_has_zero_volatility_and_no_sharpe():
    days = [date(2025, 1, 1) + timedelta(days=i) for i in range(30)]
    res = compute_performance(nav_frame(days, [5000.0] * 30), None, None)
    assert_shape(res, with_benchmark=False)
    assert res["volatility_annualized"] == 0.0
    assert res["downside_volatility_annualized"] == 0.0
    assert res["sharpe_ratio"] is None
    assert res["sortino_ratio"] is None
    assert res["calmar_ratio"] is None
    assert res["total_return"] == 0.0 and res["cagr"] == 0.0
    assert res["drawdown"]["max_drawdown"] == 0.0


def test_empty_nav_gives_every_figure_none():
    res = compute_performance(nav_frame([], []), bench_frame(["2025-01-02"], [1.0]), "SPY")
    assert_shape(res, with_benchmark=True)
    for key in TOP_KEYS - {"drawdown", "monthly_returns", "yearly_returns", "benchmark", "warnings", "significance"}:
        assert res[key] is None, key
    assert all(v is None for v in res["drawdown"].values())
    assert res["monthly_returns"] == {} and res["yearly_returns"] == {}
    assert res["benchmark"]["symbol"] == "SPY"
    assert all(v is None for k, v in res["benchmark"].items() if k != "symbol")
    assert compute_performance(nav_frame([], []), None, None)["benchmark"] is None


def test_benchmark_without_common_dates():
    res = compute_performance(
        nav_frame(["2025-01-04", "2025-01-05"], [100, 101]), bench_frame(["2025-01-06"], [10]), "SPY"
    )
    assert res["benchmark"] == {
        "symbol": "SPY",
        "beta": None,
        "alpha_annualized": None,
        "tracking_error_annualized": None,
        "information_ratio": None,
        "benchmark_total_return": None,
    }


def test_crypto_strategy_against_weekday_benchmark_on_the_common_grid():
    # Strategy NAV every calendar day Mon 2024-01-01 .. Wed 2024-01-10, with a 500 deposit on
    # Sunday; the benchmark trades on weekdays (plus a Friday before inception, ignored).
    nav = nav_frame(
        [date(2024, 1, 1) + timedelta(days=i) for i in range(10)],
        [1000, 1010, 1005, 1020, 1030, 1040, 1550, 1560, 1545, 1570],
        [1000, 0, 0, 0, 0, 0, 500, 0, 0, 0],
    )
    bench = bench_frame(
        [
            "2023-12-29",
            "2024-01-01",
            "2024-01-02",
            "2024-01-03",
            "2024-01-04",
            "2024-01-05",
            "2024-01-08",
            "2024-01-09",
            "2024-01-10",
        ],
        [95, 100, 101, 100, 102, 103, 104, 103, 105],
    )
    res = compute_performance(nav, bench, "SPY")
    assert_shape(res, with_benchmark=True)
    # Common dates: Jan 1-5, 8, 9, 10. Friday -> Monday folds the weekend, and Sunday's
    # deposit becomes Monday's flow: 1560 / (1030 + 500) - 1.
    r = [
        1010 / 1000 - 1,
        1005 / 1010 - 1,
        1020 / 1005 - 1,
        1030 / 1020 - 1,
        1560 / 1530 - 1,
        1545 / 1560 - 1,
        1570 / 1545 - 1,
    ]
    b = [101 / 100 - 1, 100 / 101 - 1, 102 / 100 - 1, 103 / 102 - 1, 104 / 103 - 1, 103 / 104 - 1, 105 / 103 - 1]
    beta = statistics.covariance(r, b) / statistics.variance(b)
    active = [x - y for x, y in zip(r, b)]
    te = statistics.stdev(active) * SQRT252
    alpha = (1 + statistics.fmean([x - beta * y for x, y in zip(r, b)])) ** 252 - 1
    bm = res["benchmark"]
    assert bm["symbol"] == "SPY"
    assert_close(bm["beta"], beta, "beta")
    assert_close(bm["alpha_annualized"], alpha, "alpha")
    assert_close(bm["tracking_error_annualized"], te, "te")
    assert_close(bm["information_ratio"], statistics.fmean(active) * 252 / te, "ir")
    assert_close(bm["benchmark_total_return"], 105 / 100 - 1, "benchmark_total_return")
    # empyrical agrees on the same grid; DESIGN's IR is its excess_sharpe annualized
    assert_close(bm["beta"], ep.beta(np.array(r), np.array(b)), "ep beta")
    assert_close(bm["alpha_annualized"], ep.alpha(np.array(r), np.array(b)), "ep alpha")
    assert_close(bm["information_ratio"], ep.excess_sharpe(np.array(r), np.array(b)) * SQRT252, "ep ir")
    # the strategy's own figures still use every calendar day
    assert res["days"] == 9
    assert_close(res["total_return"], 1040 / 1000 * 1550 / 1540 * 1570 / 1550 - 1, "total_return")


def test_duplicate_and_unsorted_benchmark_rows():
    nav = nav_frame(["2024-01-01", "2024-01-02", "2024-01-03"], [100, 101, 103])
    clean = compute_performance(nav, bench_frame(["2024-01-01", "2024-01-02", "2024-01-03"], [10, 11, 10.5]), "X")
    messy = compute_performance(
        nav, bench_frame(["2024-01-03", "2024-01-01", "2024-01-02", "2024-01-02"], [10.5, 10, 99, 11]), "X"
    )
    assert messy == clean


# --------------------------------------------------------------------------------------
# property cross-check against empyrical
# --------------------------------------------------------------------------------------


@st.composite
def histories(draw, with_flows: bool, with_benchmark: bool):
    n = draw(st.integers(min_value=1, max_value=60))
    start = draw(st.dates(min_value=date(2018, 1, 1), max_value=date(2030, 1, 1)))
    gaps = draw(st.lists(st.sampled_from([1, 1, 1, 2, 3, 4, 17, 40]), min_size=n - 1, max_size=n - 1))
    days = [start]
    for g in gaps:
        days.append(days[-1] + timedelta(days=g))
    returns = draw(
        st.lists(st.floats(min_value=-0.25, max_value=0.25, allow_nan=False), min_size=n - 1, max_size=n - 1)
    )
    equity = [draw(st.floats(min_value=100.0, max_value=1e7))]
    flows = [equity[0]]
    for ret in returns:
        flow = 0.0
        if with_flows:
            kind = draw(st.sampled_from(["none", "none", "none", "deposit", "withdraw", "empty"]))
            # whole-unit deposits/withdrawals: their sums on the benchmark grid are exact in
            # any summation order (see reference_grid)
            if kind == "deposit":
                flow = float(draw(st.integers(min_value=1, max_value=10**6)))
            elif kind == "withdraw":
                flow = -float(math.floor(draw(st.floats(min_value=0.0, max_value=0.9)) * equity[-1]))
            elif kind == "empty":  # take everything out: this return is undefined
                flow = -equity[-1]
        base = equity[-1] + flow
        equity.append(base * (1.0 + ret) if base > 0 else 0.0)
        flows.append(flow)
    bench = None
    if with_benchmark:
        keep = draw(st.lists(st.booleans(), min_size=n, max_size=n))
        extra = draw(st.lists(st.integers(min_value=-30, max_value=800), max_size=10))
        bdays = sorted({d for d, k in zip(days, keep) if k} | {start + timedelta(days=x) for x in extra})
        bret = draw(st.lists(st.floats(min_value=-0.2, max_value=0.2), min_size=len(bdays), max_size=len(bdays)))
        closes = list(100.0 * np.cumprod(1.0 + np.array(bret, dtype=float))) if bdays else []
        bench = (bdays, closes)
    rf = draw(st.sampled_from([0.0, 0.0, 0.045, 0.1]))
    return days, equity, flows, bench, rf


def twr(equity: np.ndarray, flows: np.ndarray) -> np.ndarray:
    """Reference time-weighted returns for rows 1..n-1, NaN where the base is <= 0."""
    base = equity[:-1] + flows[1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(base > 0, equity[1:] / base - 1.0, np.nan)


def well_conditioned(x: np.ndarray) -> bool:
    """A ratio over std(x) is only reproducible to 1e-9 when std(x) is not rounding noise."""
    return len(x) >= 2 and float(np.std(x, ddof=1)) > 1e-7 * float(np.max(np.abs(x)))


def reference_duration(days: list[date], r_full: np.ndarray) -> int:
    """Longest spell under water (peak date -> recovery date or latest), by a plain loop."""
    w = np.cumprod(np.concatenate([[1.0], np.nan_to_num(r_full, nan=0.0) + 1.0]))
    peak, peak_day, longest, under = w[0], days[0], 0, False
    for value, day in zip(w[1:], days[1:]):
        if value >= peak:
            if under:
                longest = max(longest, (day - peak_day).days)
            peak, peak_day, under = value, day, False
        else:
            under = True
            longest = max(longest, (day - peak_day).days)
    return longest


def check_against_empyrical(days, equity, flows, rf, res) -> None:
    rf_d = rf / 252
    eq, fl = np.array(equity, dtype=float), np.array(flows, dtype=float)
    r_full = twr(eq, fl)
    defined = ~np.isnan(r_full)
    r = r_full[defined]
    r_series = pd.Series(r, index=pd.DatetimeIndex(days[1:])[defined])

    total = float(ep.cum_returns_final(r)) if len(r) else 0.0
    assert_close(res["total_return"], total, "total_return")
    n_days = (days[-1] - days[0]).days
    assert res["days"] == n_days
    assert res["starting_equity"] == eq[0] and res["ending_equity"] == eq[-1]
    cagr = (1.0 + total) ** (365.25 / n_days) - 1.0 if n_days else None  # DESIGN, by hand
    assert_close(res["cagr"], cagr, "cagr")

    vol = ep.annual_volatility(r) if len(r) >= 2 else None
    assert_close(res["volatility_annualized"], vol, "volatility")
    downside = ep.downside_risk(r, required_return=rf_d) if len(r) >= 1 else None
    assert_close(res["downside_volatility_annualized"], downside, "downside")
    if len(r) < 2:
        assert res["sharpe_ratio"] is None and res["sortino_ratio"] is None
    else:
        if well_conditioned(r - rf_d) or np.ptp(r) == 0:
            assert_close(res["sharpe_ratio"], ep.sharpe_ratio(r, risk_free=rf_d), "sharpe")
        assert_close(res["sortino_ratio"], ep.sortino_ratio(r, required_return=rf_d), "sortino")

    mdd = float(ep.max_drawdown(r)) if len(r) else 0.0
    assert_close(res["drawdown"]["max_drawdown"], mdd, "max_drawdown")
    cur = float(ep.stats.drawdown_series(r_series).iloc[-1]) if len(r) else 0.0
    assert_close(res["drawdown"]["current_drawdown"], cur, "current_drawdown")
    assert res["drawdown"]["max_drawdown_duration_days"] == reference_duration(days, r_full)
    calmar = cagr / abs(mdd) if cagr is not None and mdd < 0 else None  # DESIGN, by hand
    if mdd == 0 or abs(mdd) > 1e-6:  # a drawdown at rounding-noise level makes the ratio noise
        assert_close(res["calmar_ratio"], calmar, "calmar")

    # monthly / yearly: every period empyrical reports, plus 0.0 for NAV months without returns
    nav_months = list(dict.fromkeys(f"{d.year:04d}-{d.month:02d}" for d in days))
    nav_years = list(dict.fromkeys(f"{d.year:04d}" for d in days))
    assert list(res["monthly_returns"]) == nav_months
    assert list(res["yearly_returns"]) == nav_years
    monthly = ep.aggregate_returns(r_series, "monthly") if len(r) else {}
    yearly = ep.aggregate_returns(r_series, "yearly") if len(r) else {}
    ref_m = {f"{y:04d}-{m:02d}": float(v) for (y, m), v in dict(monthly).items()}
    ref_y = {f"{y:04d}": float(v) for y, v in dict(yearly).items()}
    for key, value in res["monthly_returns"].items():
        assert_close(value, ref_m.get(key, 0.0), f"month {key}")
    for key, value in res["yearly_returns"].items():
        assert_close(value, ref_y.get(key, 0.0), f"year {key}")


def reference_grid(days, equity, flows, bdays, closes):
    """Common-grid returns by pandas: flows of strategy-only days folded into the next common date.

    Also says whether the grid is *ill-conditioned*: a common date whose base
    ``NAV_{t-1} + F`` nearly cancels (|base| < 1e-3 of its terms) while ``F`` sums several
    fractional flows, so its sign and size depend on the summation order (e.g. the account
    emptied on a strategy-only day). No two implementations agree on such a return.
    """
    nav = pd.DataFrame({"date": days, "eq": equity, "flow": flows})
    bm = pd.DataFrame({"date": bdays, "close": closes})
    m = nav.merge(bm, on="date", how="left")
    common = m["close"].notna()
    segment = common.astype(int).cumsum() - common.astype(int)
    by_segment = m.groupby(segment)["flow"]
    m["F"] = by_segment.transform("sum")
    m["F_abs"] = by_segment.transform(lambda f: f.abs().sum())
    m["inexact"] = by_segment.transform(lambda f: (f != 0).sum() >= 2 and not all(float(x).is_integer() for x in f))
    g = m[common].reset_index(drop=True)
    eq, F, c = g["eq"].to_numpy(float), g["F"].to_numpy(float), g["close"].to_numpy(float)
    base = eq[:-1] + F[1:]
    ill = bool(
        np.any(
            g["inexact"].to_numpy(bool)[1:] & (np.abs(base) < 1e-3 * (np.abs(eq[:-1]) + g["F_abs"].to_numpy(float)[1:]))
        )
    )
    r = twr(eq, F)
    b = c[1:] / c[:-1] - 1.0
    ok = ~np.isnan(r) & ~np.isnan(b)
    return r[ok], b[ok], c, ill


def check_benchmark(days, equity, flows, bench, rf, res) -> bool:
    """Compare the benchmark figures; False (nothing compared) for an ill-conditioned grid."""
    rf_d = rf / 252
    bdays, closes = bench
    out = res["benchmark"]
    assert out["symbol"] == "BENCH"
    r, b, c, ill = reference_grid(days, equity, flows, bdays, closes)
    if ill:
        return False
    assert_close(out["benchmark_total_return"], c[-1] / c[0] - 1.0 if len(c) else None, "benchmark_total_return")
    if len(r) < 2:
        assert out["beta"] is None and out["alpha_annualized"] is None
        assert out["tracking_error_annualized"] is None and out["information_ratio"] is None
        return True
    if well_conditioned(b):
        assert_close(out["beta"], ep.beta(r, b, risk_free=rf_d), "beta")
        assert_close(out["alpha_annualized"], ep.alpha(r, b, risk_free=rf_d), "alpha")
    active = r - b
    assert_close(
        out["tracking_error_annualized"], float(np.std(active, ddof=1)) * SQRT252 if np.ptp(active) else 0.0, "te"
    )
    if well_conditioned(active) or np.ptp(active) == 0:
        assert_close(out["information_ratio"], ep.excess_sharpe(r, b) * SQRT252, "information_ratio")
    return True


@given(histories(with_flows=False, with_benchmark=False))
def test_matches_empyrical_without_flows(history):
    days, equity, flows, _, rf = history
    res = compute_performance(nav_frame(days, equity, flows), None, None, risk_free_rate=rf)
    assert_shape(res, with_benchmark=False)
    check_against_empyrical(days, equity, flows, rf, res)


@given(histories(with_flows=True, with_benchmark=False))
def test_matches_empyrical_with_flows(history):
    days, equity, flows, _, rf = history
    res = compute_performance(nav_frame(days, equity, flows), None, None, risk_free_rate=rf)
    assert_shape(res, with_benchmark=False)
    check_against_empyrical(days, equity, flows, rf, res)


@given(histories(with_flows=True, with_benchmark=True))
def test_matches_empyrical_with_benchmark(history):
    days, equity, flows, bench, rf = history
    res = compute_performance(nav_frame(days, equity, flows), bench_frame(*bench), "BENCH", risk_free_rate=rf)
    assert_shape(res, with_benchmark=True)
    check_against_empyrical(days, equity, flows, rf, res)
    assume(check_benchmark(days, equity, flows, bench, rf, res))


wild_floats = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300),
    st.sampled_from([0.0, -0.0, 1e-300, -1e-300, 1.0, 1e300]),
)


@given(
    st.lists(st.tuples(st.integers(min_value=0, max_value=5), wild_floats, wild_floats), min_size=1, max_size=25),
    st.lists(st.tuples(st.integers(min_value=0, max_value=60), wild_floats), max_size=25),
    st.floats(min_value=-1.0, max_value=1.0),
)
def test_never_emits_nan_or_infinity(rows, brows, rf):
    day, days, equity, flows = date(2020, 1, 1), [], [], []
    for gap, eq, flow in rows:
        day += timedelta(days=gap + 1)
        days.append(day)
        equity.append(eq)
        flows.append(flow)
    bench = bench_frame([date(2020, 1, 1) + timedelta(days=g) for g, _ in brows], [c for _, c in brows])
    for b in (bench, None):
        res = compute_performance(nav_frame(days, equity, flows), b, "X", risk_free_rate=rf)
        assert_shape(res, with_benchmark=b is not None)


@pytest.mark.parametrize("rf", [0.0, 0.045])
def test_ten_years_daily_against_empyrical(rf):
    rng = np.random.default_rng(7)
    days = [d for d in (date(2015, 1, 1) + timedelta(days=i) for i in range(3653)) if d.weekday() < 5]
    n = len(days)
    flows = np.where(rng.random(n) < 0.02, rng.normal(0, 5e4, n), 0.0)
    flows[0] = 1e6
    equity = [1e6]
    for ret, flow in zip(rng.normal(3e-4, 0.01, n - 1), flows[1:]):
        equity.append((equity[-1] + flow) * (1 + ret))
    bdays = [d for i, d in enumerate(days) if i % 13 != 5]  # benchmark holidays fold into the next day
    closes = list(100 * np.cumprod(1 + rng.normal(2e-4, 0.011, len(bdays))))
    res = compute_performance(nav_frame(days, equity, list(flows)), bench_frame(bdays, closes), "BENCH", rf)
    assert len(res["monthly_returns"]) == 120 and len(res["yearly_returns"]) == 10  # 2015-01 .. 2024-12
    check_against_empyrical(days, equity, list(flows), rf, res)
    assert check_benchmark(days, equity, list(flows), (bdays, closes), rf, res)


def test_rejects_datetime_dates():
    nav = nav_frame(["2025-01-01"], [1.0]).with_columns(pl.col("date").cast(pl.Datetime("us")))
    with pytest.raises(TypeError, match="nav.date must be pl.Date"):
        compute_performance(nav, None, None)


def test_negative_equity_nulls_every_return_figure_and_says_why():
    nav = pl.DataFrame(
        {
            "date": [date(2026, 1, d) for d in (5, 6, 7, 8)],
            "total_equity": [1000.0, -50.0, 900.0, 950.0],
            "external_flow": [1000.0, 0.0, 900.0, 0.0],
            "cash": [1000.0, -50.0, 900.0, 950.0],
        }
    )
    bench = pl.DataFrame({"date": [date(2026, 1, d) for d in (5, 6, 7, 8)], "close": [10.0, 11.0, 12.0, 13.0]})
    res = compute_performance(nav, bench, "SPY")
    assert [w["code"] for w in res["warnings"]] == ["negative_equity", "negative_cash"]
    assert "2026-01-06" in res["warnings"][0]["message"]
    assert res["total_return"] is res["sharpe_ratio"] is res["drawdown"]["max_drawdown"] is None
    assert res["monthly_returns"] == {} and res["benchmark"]["beta"] is None
    assert res["starting_equity"] == 1000.0 and res["benchmark"]["benchmark_total_return"] == pytest.approx(0.3)
    json.dumps(res, allow_nan=False)


def test_negative_cash_is_a_warning_and_the_figures_stand():
    nav = pl.DataFrame(
        {
            "date": [date(2026, 1, d) for d in (5, 6, 7)],
            "total_equity": [100.0, 110.0, 121.0],
            "external_flow": [100.0, 0.0, 0.0],
            "cash": [-18000.0, -18000.0, -18000.0],
        }
    )
    res = compute_performance(nav, None, None)
    assert [w["code"] for w in res["warnings"]] == ["negative_cash"]
    assert res["total_return"] == pytest.approx(0.21)
    clean = compute_performance(nav.with_columns(cash=pl.lit(5.0)), None, None)
    assert clean["warnings"] == [] and clean["total_return"] == res["total_return"]
