"""The Sharpe ratio's significance (botranks_domain.significance) against scipy, and its properties."""

from __future__ import annotations

import math
from datetime import date, timedelta
from statistics import NormalDist

import numpy as np
import polars as pl
import pytest
import scipy.stats as st
from hypothesis import given, settings
from hypothesis import strategies as hs

from botranks_domain import significance
from botranks_domain.performance import compute_performance
from botranks_domain.significance import (
    EULER_GAMMA,
    MAX_TRACK_RECORD_DAYS,
    ReturnMoments,
    Trials,
    min_track_record,
    pooled_trials,
    probabilistic_sharpe,
    sharpe_std,
    trials,
)


def _nav(returns: np.ndarray) -> pl.DataFrame:
    equity = 100_000.0 * np.cumprod(np.r_[1.0, 1.0 + returns])
    days = [date(2021, 1, 4) + timedelta(days=i) for i in range(len(equity))]
    return pl.DataFrame({"date": days, "total_equity": equity, "external_flow": [0.0] * len(equity)})


def _scipy_significance(r: np.ndarray, trial_sharpes: list[float]) -> dict:
    """The issue's formulas, written independently on numpy/scipy."""
    t = len(r)
    sr = r.mean() / r.std(ddof=1)
    g3, g4 = st.skew(r), st.kurtosis(r, fisher=False)
    term = 1 - g3 * sr + (g4 - 1) / 4 * sr**2
    sigma = math.sqrt(term / (t - 1))
    n = len(trial_sharpes)
    sr0 = 0.0
    if n >= 2:
        v = np.var(trial_sharpes, ddof=1)
        sr0 = math.sqrt(v) * (
            (1 - EULER_GAMMA) * st.norm.ppf(1 - 1 / n) + EULER_GAMMA * st.norm.ppf(1 - 1 / (n * math.e))
        )
    return {
        "skewness": g3,
        "kurtosis": g4,
        "psr": st.norm.cdf(sr / sigma),
        "dsr": st.norm.cdf((sr - sr0) / sigma),
        "ci": [(sr - 1.96 * sigma) * math.sqrt(252), (sr + 1.96 * sigma) * math.sqrt(252)],
        "mintrl": math.ceil(1 + term * (1.6449 / sr) ** 2) if sr > 0 else None,
        "expected_max_sharpe": sr0 * math.sqrt(252),
    }


@pytest.mark.parametrize("seed", range(8))
def test_the_figures_match_an_independent_computation(seed: int) -> None:
    rng = np.random.default_rng(seed)
    r = rng.standard_t(4, size=int(rng.integers(25, 900))) * 0.012 + rng.normal(0.0005, 0.0008)
    sharpes = list(rng.normal(0.02, 0.05, size=int(rng.integers(0, 40))))
    got = compute_performance(_nav(r), None, None, 0.0, trials(sharpes))["significance"]
    want = _scipy_significance(r, sharpes)
    for key in ("skewness", "kurtosis", "psr", "dsr", "expected_max_sharpe"):
        assert got[key] == pytest.approx(want[key], rel=1e-9, abs=1e-12), key
    assert got["sharpe_ci_95"] == pytest.approx(want["ci"], rel=1e-9)
    assert got["min_track_record_days"] == want["mintrl"]
    assert got["observations"] == len(r) and got["trials"] == len(sharpes)


def test_a_normal_samples_psr_is_a_t_tests_confidence() -> None:
    # for normal returns PSR ≈ 1 - the one-sided p-value of "mean <= 0" (Bailey & López de Prado 2012)
    rng = np.random.default_rng(7)
    for mean in (0.0002, 0.0006, 0.001):
        r = rng.normal(mean, 0.01, size=2000)
        psr = compute_performance(_nav(r), None, None, 0.0)["significance"]["psr"]
        p = st.ttest_1samp(r, 0.0, alternative="greater").pvalue
        assert psr == pytest.approx(1 - p, abs=0.01)


_moments = hs.builds(
    ReturnMoments,
    observations=hs.integers(2, 5000),
    mean=hs.one_of(hs.just(0.0), hs.floats(1e-7, 0.01), hs.floats(-0.01, -1e-7)),
    std=hs.floats(0.001, 0.05),
    skewness=hs.floats(-3, 3),
    kurtosis=hs.floats(1, 30),
)


@given(_moments)
@settings(max_examples=300)
def test_psr_is_symmetric(m: ReturnMoments) -> None:
    mirrored = ReturnMoments(m.observations, -m.mean, m.std, -m.skewness, m.kurtosis)  # type: ignore[operator]
    a, b = probabilistic_sharpe(m), probabilistic_sharpe(mirrored)
    assert (a is None) == (b is None)
    if a is not None and b is not None:
        assert a + b == pytest.approx(1.0, abs=1e-12)


@given(_moments, hs.integers(1, 1000))
@settings(max_examples=300)
def test_a_longer_record_of_the_same_positive_sharpe_is_surer(m: ReturnMoments, more: int) -> None:
    longer = ReturnMoments(m.observations + more, m.mean, m.std, m.skewness, m.kurtosis)
    a, b = probabilistic_sharpe(m), probabilistic_sharpe(longer)
    if a is None or b is None:
        return
    if m.mean > 0:  # type: ignore[operator]
        assert b >= a
    elif m.mean < 0:  # type: ignore[operator]
        assert b <= a


@given(_moments)
@settings(max_examples=300)
def test_the_minimum_track_record_reaches_95_percent(m: ReturnMoments) -> None:
    needed = min_track_record(m)
    if needed is None:
        sr = m.sharpe
        if sr is None or sr <= 0 or sharpe_std(m) is None:
            return
        term = significance._variance_term(sr, m)  # the rest: more than any record holds
        assert term is None or 1 + term * (significance.Z_95_ONE_SIDED / sr) ** 2 > MAX_TRACK_RECORD_DAYS
        return
    at = ReturnMoments(needed, m.mean, m.std, m.skewness, m.kurtosis)
    assert probabilistic_sharpe(at) >= 0.95 - 1e-12  # type: ignore[operator]
    if needed > 2:
        before = ReturnMoments(needed - 1, m.mean, m.std, m.skewness, m.kurtosis)
        # the constant 1.6449 is Φ⁻¹(0.95000478), not Φ⁻¹(0.95) exactly
        assert probabilistic_sharpe(before) < NormalDist().cdf(1.6449) + 1e-9  # type: ignore[operator]


@given(hs.integers(2, 100_000), hs.floats(0.001, 1.0))
def test_luck_grows_with_the_number_of_trials(n: int, sd: float) -> None:
    assert Trials(n + 1, sd).expected_max_sharpe > Trials(n, sd).expected_max_sharpe > 0
    assert Trials(1, sd).expected_max_sharpe == 0.0 and Trials(n, None).expected_max_sharpe == 0.0


def test_the_deflated_sharpe_is_below_the_probabilistic_one() -> None:
    r = np.random.default_rng(3).normal(0.001, 0.01, size=250)
    sig = compute_performance(_nav(r), None, None, 0.0, trials([0.0, 0.05, 0.1, -0.03]))["significance"]
    assert 0 < sig["dsr"] < sig["psr"] < 1
    assert sig["expected_max_sharpe"] > 0 and sig["trials"] == 4


def test_no_figure_without_dispersion_or_returns() -> None:
    flat = compute_performance(_nav(np.zeros(40)), None, None, 0.0)["significance"]
    one = compute_performance(_nav(np.array([0.01])), None, None, 0.0)["significance"]
    for sig in (flat, one):
        assert sig["psr"] is None and sig["dsr"] is None and sig["sharpe_ci_95"] is None
        assert sig["min_track_record_days"] is None and sig["skewness"] is None
    assert flat["observations"] == 40 and one["observations"] == 1


def test_a_two_day_history_has_no_annualised_figure_and_says_why() -> None:
    r = np.array([0.05, -0.02])
    bench = pl.DataFrame({"date": _nav(r)["date"], "close": [100.0, 99.0, 101.0]})
    out = compute_performance(_nav(r), bench, "SPY", 0.0)
    for key in ("cagr", "volatility_annualized", "downside_volatility_annualized", "sharpe_ratio", "sortino_ratio"):
        assert out[key] is None, key
    assert out["calmar_ratio"] is None
    assert {k: v for k, v in out["benchmark"].items() if v is not None} == {
        "symbol": "SPY",
        "benchmark_total_return": pytest.approx(0.01),
    }
    assert [w["code"] for w in out["warnings"]] == ["short_history"]
    assert out["total_return"] == pytest.approx(1.05 * 0.98 - 1)
    longer = compute_performance(_nav(np.resize(r, 20)), None, None, 0.0)
    assert longer["sharpe_ratio"] is not None and longer["warnings"] == []


@given(hs.lists(hs.lists(hs.floats(-0.5, 0.5), max_size=30), max_size=4))
def test_pooled_trials_are_the_trials_taken_together(groups: list[list[float]]) -> None:
    def described(values: list[float]) -> tuple[int, float | None, float | None]:
        if not values:
            return 0, None, None
        return len(values), float(np.mean(values)), float(np.var(values, ddof=1)) if len(values) > 1 else None

    pooled = pooled_trials(described(g) for g in groups)
    together = trials(x for g in groups for x in g)
    assert pooled.count == together.count
    if together.sharpe_std is None:
        assert pooled.sharpe_std is None
    else:
        assert pooled.sharpe_std == pytest.approx(together.sharpe_std, rel=1e-9, abs=1e-12)


def test_a_sharpe_barely_above_zero_has_no_minimum_track_record() -> None:
    """It would need more returns than any record (and than the board's integer column) holds: null, not
    a number that overflows the projector's write (it did: ``integer out of range``)."""
    tiny = ReturnMoments(observations=250, mean=1e-7, std=0.01, skewness=0.0, kurtosis=3.0)
    assert tiny.sharpe is not None and tiny.sharpe > 0 and min_track_record(tiny) is None
    fine = ReturnMoments(observations=250, mean=1e-3, std=0.01, skewness=0.0, kurtosis=3.0)
    assert 0 < min_track_record(fine) <= MAX_TRACK_RECORD_DAYS < 2**31  # type: ignore[operator]
