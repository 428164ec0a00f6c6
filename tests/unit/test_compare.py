"""The comparison's arithmetic (issue 24, services/query_api/compare_data.py) against an independent
computation by hand with numpy: time-weighted returns, common dates, rebasing to 100, the drawdown on the
rebased curve, Pearson's correlation, the benchmark pairs, and the 20-pair rule; plus the SVG helper."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import numpy as np
import pytest

from botranks_domain.accounts import StrategyProfile
from botranks_domain.nav import NavRow
from botranks_domain.significance import Trials
from services.query_api import compare, readers, svg_charts
from services.query_api import compare_data as cd

START = date(2024, 1, 1)


def _rows(days: list[date], equity: list[float], flows: dict[int, float] | None = None) -> list[NavRow]:
    flows = flows or {}
    return [
        NavRow(d, D(0), D(str(e)), D(str(e)), D(str(flows.get(i, 0.0)))) for i, (d, e) in enumerate(zip(days, equity))
    ]


def _by_hand(days: list[date], equity: list[float], flows: dict[int, float]) -> dict[date, float]:
    """The growth index: W_0 = 1, W_t = W_{t-1} * NAV_t / (NAV_{t-1} + F_t)."""
    out, w = {days[0]: 1.0}, 1.0
    for i in range(1, len(days)):
        w *= equity[i] / (equity[i - 1] + flows.get(i, 0.0))
        out[days[i]] = w
    return out


@pytest.fixture
def three():
    rng = np.random.default_rng(7)
    every = [START + timedelta(days=i) for i in range(90)]
    weekdays = [d for d in every if d.weekday() < 5]
    a_days, b_days, c_days = every, weekdays, weekdays[10:]  # A: crypto (7 days), C: starts later
    series = []
    for days, vol in ((a_days, 0.02), (b_days, 0.01), (c_days, 0.015)):
        eq = list(100_000 * np.cumprod(1 + rng.normal(0.0005, vol, len(days))))
        series.append((days, [round(x, 2) for x in eq]))
    flows = {5: 50_000.0}  # a deposit into B on its 6th day: not a gain
    b_days, b_eq = series[1]
    b_eq = [e + (50_000.0 if i >= 5 else 0.0) for i, e in enumerate(b_eq)]
    series[1] = (b_days, b_eq)
    return series, flows


def test_rebased_equity_drawdown_and_correlation_match_numpy(three):
    series, flows = three
    per_flows = [{}, flows, {}]
    indexes = [cd.growth(_rows(d, e, f)) for (d, e), f in zip(series, per_flows)]
    days = cd.common_dates(indexes)
    expected_days = sorted(set(series[0][0]) & set(series[1][0]) & set(series[2][0]))
    assert days == expected_days and days[0] == series[2][0][0]

    hand = [_by_hand(d, e, f) for (d, e), f in zip(series, per_flows)]
    for ix, h in zip(indexes, hand):
        on = cd.on_dates(ix, days)
        got = cd.rebased(on)
        want = np.array([h[d] for d in days]) / h[days[0]] * 100
        assert got[0] == pytest.approx(100.0) and np.allclose(got, want, rtol=1e-12)
        peak = np.maximum.accumulate(want)
        assert np.allclose(cd.drawdowns(got), (want - peak) / peak, atol=1e-12)

    # the deposit did not move B's index: its rebased equity has no 50 % jump
    b_on = cd.rebased(cd.on_dates(indexes[1], days))
    assert max(abs(b / a - 1) for a, b in zip(b_on, b_on[1:])) < 0.1

    returns = [cd.period_returns(cd.on_dates(ix, days)) for ix in indexes]
    hand_returns = [np.diff([h[d] for d in days]) / np.array([h[d] for d in days[:-1]]) for h in hand]
    for i in range(3):
        for j in range(3):
            c = cd.pearson(returns[i], returns[j])
            assert c.days == len(days) - 1
            assert c.value == pytest.approx(np.corrcoef(hand_returns[i], hand_returns[j])[0, 1], abs=1e-12)


def test_fewer_than_20_pairs_or_no_variation_is_null_with_a_reason():
    short = cd.pearson([None, *[0.01 * i for i in range(19)]], [None, *[0.02 * i for i in range(19)]])
    assert short.value is None and short.days == 19 and "at least 20" in short.warning
    flat = cd.pearson([0.0] * 30, [0.001 * i for i in range(30)])
    assert flat.value is None and flat.days == 30 and "do not vary" in flat.warning
    ok = cd.pearson([0.001 * i for i in range(25)], [-0.003 * i for i in range(25)])
    assert ok.value == pytest.approx(-1.0) and ok.warning is None


def test_benchmark_pairs_use_only_common_days_with_a_close():
    days = [START + timedelta(days=i) for i in range(40)]
    equity = [100.0 * 1.001**i * (1 + 0.01 * math.sin(i)) for i in range(40)]
    index = cd.growth(_rows(days, equity))
    closes = [(d, D(str(round(50 + i + 3 * math.cos(i), 4)))) for i, d in enumerate(days) if d.weekday() < 5]
    r, b = cd.benchmark_pairs(index, closes, days)
    grid = [d for d in days if d.weekday() < 5]
    assert len(r) == len(b) == len(grid) and r[0] is None and b[0] is None
    eq = {d: e for d, e in zip(days, equity)}
    cl = {d: float(c) for d, c in closes}
    want_r = [eq[y] / eq[x] - 1 for x, y in zip(grid, grid[1:])]  # no flows: the index's ratio is the NAV's
    want_b = [cl[y] / cl[x] - 1 for x, y in zip(grid, grid[1:])]
    assert np.allclose(r[1:], want_r, rtol=1e-12) and np.allclose(b[1:], want_b, rtol=1e-12)


def _member(name: str, rows: list[NavRow], benchmark: str | None, closes) -> cd.Member:
    sid = uuid.uuid4()
    profile = StrategyProfile(sid, name, "public", benchmark, "live", None, datetime(2024, 1, 1, tzinfo=UTC))
    key = readers.PerformanceKey(sid, None, benchmark, 1 if benchmark else None, 0.0, Trials(1, None))
    perf = readers.performance_from(key, rows, closes if benchmark else [])
    return cd.Member(profile, key, perf, None, rows, closes)


def test_comparison_of_members_with_and_without_a_benchmark():
    days = [START + timedelta(days=i) for i in range(60)]
    a = _rows(days, [100.0 + i + 2 * math.sin(i) for i in range(60)])
    b = _rows(days[30:], [200.0 - 0.5 * i + math.cos(i) for i in range(30)])
    closes = [(d, D(str(100 + i % 7))) for i, d in enumerate(days)]
    out = cd.comparison([_member("A", a, "BM", closes), _member("B", b, None, [])])
    assert out["common"]["days"] == 30 and out["common"]["returns"] == 29
    assert out["strategies"][0]["equity"][0] == pytest.approx(100.0) and len(out["strategies"][1]["equity"]) == 30
    assert out["correlation"][0][0]["value"] == 1.0 and out["correlation"][0][1]["days"] == 29
    assert out["correlation"][0][1]["value"] == pytest.approx(out["correlation"][1][0]["value"])
    bench = out["strategies"][0]["benchmark_correlation"]
    assert bench["symbol"] == "BM" and bench["days"] == 29 and bench["value"] is not None
    assert out["strategies"][1]["benchmark_correlation"] == {
        "symbol": None, "value": None, "days": 0, "warning": "no benchmark"
    }  # fmt: skip
    assert out["strategies"][0]["figures"]["track_days"] == 59


@pytest.mark.parametrize(
    "raw, fragment",
    [
        ("", "got none"),
        (" , ", "empty item"),
        (f"{uuid.UUID(int=1)},", "empty item"),
        (uuid.UUID(int=1).hex, "is not a strategy id"),
        ("not-a-uuid", "is not a strategy id"),
        (",".join(str(uuid.UUID(int=i)) for i in range(1, 8)), "at most 6"),
        (f"{uuid.UUID(int=1)},{uuid.UUID(int=1)}", "twice"),
        ("x" * 5000, "too long"),
    ],
)
def test_ids_are_checked_and_the_error_names_ids(raw, fragment):
    with pytest.raises(compare.BadParameter) as caught:
        compare.parse_ids(raw)
    assert "`ids`" in caught.value.detail and fragment in caught.value.detail


def test_svg_line_chart_is_static_svg_with_gaps_axes_and_legend():
    labels = [f"2024-01-{d:02d}" for d in range(1, 11)]
    svg = str(
        svg_charts.line_chart(
            labels,
            [
                svg_charts.Line("A <b>", [100, 101, None, 103, 104, 105, 104, 106, 107, 108]),
                svg_charts.Line("B", [100] * 10),
            ],
            title="Equity",
            baseline=100.0,
        )
    )
    assert "<script" not in svg and svg.count("<polyline") == 3  # A broken in two by its None, and B
    assert "A &lt;b&gt;" in svg and "2024-01-01" in svg and "2024-01-10" in svg
    # thinning keeps each bucket's extremes: a single deep trough survives
    values = [0.0] * 5000
    values[2345] = -0.5
    kept = svg_charts.thin(values, 200)
    assert len(kept) <= 210 and (2345, -0.5) in kept and kept[0][0] == 0 and kept[-1][0] == 4999
    assert svg_charts.nice_ticks(93.2, 117.9) == [90, 100, 110, 120]
