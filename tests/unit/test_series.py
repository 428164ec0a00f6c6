"""The domain's public daily series (``botranks_domain.series``): hand-worked examples, a cross-check of
the rolling figures against empyrical, and agreement with /performance's figures."""

from __future__ import annotations

import math
from datetime import date, timedelta
from decimal import Decimal as D

import empyrical as ep
import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from botranks_domain.nav import NavRow
from botranks_domain.performance import compute_performance
from botranks_domain.series import (
    SQRT_PERIODS,
    closes_frame,
    daily_series,
    drawdown_series,
    growth_index,
    nav_frame,
    rolling_sharpe,
    rolling_volatility,
    time_weighted_returns,
)

DAY0 = date(2024, 1, 1)


def rows_of(equity: list[str], flows: list[str] | None = None) -> list[NavRow]:
    flows = flows or ["0"] * len(equity)
    return [
        NavRow(DAY0 + timedelta(days=i), D(e) - D(1), D(1), D(e), D(f)) for i, (e, f) in enumerate(zip(equity, flows))
    ]


def test_nav_frame_holds_every_column_the_metrics_read_as_floats():
    frame = nav_frame(rows_of(["100", "110.5"], ["0", "10"]))
    assert frame.schema == {
        "date": pl.Date,
        "total_equity": pl.Float64,
        "external_flow": pl.Float64,
        "cash": pl.Float64,
    }
    assert frame.rows() == [(DAY0, 100.0, 0.0, 99.0), (DAY0 + timedelta(days=1), 110.5, 10.0, 109.5)]
    assert nav_frame([]).schema == frame.schema and nav_frame([]).height == 0


def test_closes_frame_keeps_the_given_order():
    frame = closes_frame([(date(2024, 1, 3), D("2.5")), (date(2024, 1, 2), D("2"))])
    assert frame.schema == {"date": pl.Date, "close": pl.Float64}
    assert frame.rows() == [(date(2024, 1, 3), 2.5), (date(2024, 1, 2), 2.0)]


def test_returns_index_and_drawdown_by_hand():
    # a deposit of 100 on day 2 is no gain; day 3 loses 10%; day 4 withdraws everything at its start
    # (base 180 - 180 = 0: undefined, the index stays flat); day 5 is refunded to 50 (base 50: return 0)
    rows = rows_of(["100", "200", "180", "0", "50"], ["0", "100", "0", "-180", "50"])
    out = daily_series(nav_frame(rows), 2).collect()
    assert out["r"].to_list() == [None, 0.0, pytest.approx(-0.1), None, 0.0]
    assert out["index"].to_list() == [1.0, 1.0, pytest.approx(0.9), pytest.approx(0.9), pytest.approx(0.9)]
    assert out["drawdown"].to_list() == [0.0, 0.0, pytest.approx(-0.1), pytest.approx(-0.1), pytest.approx(-0.1)]
    # a window of 2 is full from the third day on (the first day has no return), and not across day 4
    vol = out["rolling_volatility"].to_list()
    assert vol[:2] == [None, None] and vol[3:] == [None, None]
    assert vol[2] == pytest.approx(np.std([0.0, -0.1], ddof=1) * SQRT_PERIODS)


def test_an_undefined_return_keeps_the_index_flat():
    frame = pl.DataFrame({"e": [100.0, 0.0, 0.0, 10.0], "f": [0.0, -100.0, 0.0, 0.0]})
    out = frame.select(r=time_weighted_returns(pl.col("e"), pl.col("f"))).with_columns(w=growth_index(pl.col("r")))
    assert out["r"].to_list() == [None, None, None, None]  # bases 0, 0 and 0: nothing defined
    assert out["w"].to_list() == [1.0, 1.0, 1.0, 1.0]


def test_a_window_without_variation_has_no_sharpe():
    out = pl.DataFrame({"r": [0.01] * 5}).select(s=rolling_sharpe(pl.col("r"), 3), v=rolling_volatility(pl.col("r"), 3))
    assert out["s"].to_list() == [None] * 5
    assert out["v"].to_list()[2:] == [0.0, 0.0, 0.0]


returns = st.lists(st.floats(-0.2, 0.2, allow_nan=False).filter(lambda x: abs(x) > 1e-9), min_size=2, max_size=60)


@settings(max_examples=60, deadline=None)
@given(returns, st.integers(2, 10))
def test_rolling_figures_match_empyrical(rs, window):
    series = pd.Series(rs)
    out = pl.DataFrame({"r": rs}).select(
        s=rolling_sharpe(pl.col("r"), window), v=rolling_volatility(pl.col("r"), window)
    )
    assert out["s"][: window - 1].null_count() == min(window - 1, len(rs))
    if len(rs) < window:
        return
    expected_vol = np.asarray(ep.roll_annual_volatility(series, window))
    expected_sharpe = np.asarray(ep.roll_sharpe_ratio(series, window))
    got_vol, got_sharpe = out["v"].to_list()[window - 1 :], out["s"].to_list()[window - 1 :]
    assert len(got_vol) == len(expected_vol)
    for got, want in zip(got_vol, expected_vol):
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12)
    for got, want, vol in zip(got_sharpe, expected_sharpe, got_vol):
        if vol > 1e-9:  # polars' rolling std of identical values may be a rounding residue, not 0
            assert got == pytest.approx(want, rel=1e-6)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.5, 1.5, allow_nan=False), min_size=1, max_size=80))
def test_the_series_agree_with_performance(growth):
    equity = [100.0]
    for g in growth:
        equity.append(equity[-1] * g)
    rows = rows_of([f"{e:.6f}" for e in equity])
    nav = nav_frame(rows)
    out = daily_series(nav, 5).collect()
    perf = compute_performance(nav, None, None)
    # the same expressions, evaluated twice by polars: equal up to the last bit (one run of CI saw
    # -0.2500000022706117 against -0.25000000227061175 for the same input; locally both were the latter)
    assert out["drawdown"].min() == pytest.approx(perf["drawdown"]["max_drawdown"], rel=1e-12, abs=1e-15)
    assert out["drawdown"][-1] == pytest.approx(perf["drawdown"]["current_drawdown"], rel=1e-12, abs=1e-15)
    assert out["index"][-1] - 1.0 == pytest.approx(perf["total_return"], rel=1e-12, abs=1e-15)
    # drawdown is empyrical's, on the returns
    assert out["drawdown"].min() == pytest.approx(ep.max_drawdown(pd.Series(out["r"][1:].to_list())), abs=1e-12)
    assert all(math.isfinite(x) and x <= 0 for x in out["drawdown"])


def test_drawdown_series_is_relative_to_the_running_peak():
    out = pl.DataFrame({"w": [1.0, 2.0, 1.0, 3.0, 1.5]}).select(d=drawdown_series(pl.col("w")))
    assert out["d"].to_list() == [0.0, 0.0, -0.5, 0.0, -0.5]
