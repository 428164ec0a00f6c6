"""How sure a Sharpe ratio is: PSR, DSR, its confidence interval and the minimum track record
(Bailey & López de Prado, "The Sharpe Ratio Efficient Frontier", 2012, and "The Deflated Sharpe
Ratio", 2014). docs/METHODOLOGY.md defines every figure; the formulas, with ``r`` the T daily returns
(minus the daily risk-free rate), SR the per-period Sharpe ``mean(r) / std(r, ddof=1)``, γ3 the
skewness and γ4 the (Pearson) kurtosis of ``r`` as population moments:

* σ(SR) = √((1 − γ3·SR + (γ4 − 1)/4·SR²) / (T − 1))
* ``psr`` = Φ(SR / σ(SR)); ``dsr`` = Φ((SR − SR₀) / σ(SR)), SR₀ the expected maximum Sharpe of the trials
* ``sharpe_ci_95`` = (SR ∓ 1.96·σ(SR))·√252
* ``min_track_record_days`` = ⌈1 + (1 − γ3·SR + (γ4 − 1)/4·SR²)·(1.6449 / SR)²⌉ (null when SR ≤ 0)
* ``expected_max_sharpe`` = √V·((1 − γ)·Φ⁻¹(1 − 1/N) + γ·Φ⁻¹(1 − 1/(N·e)))·√252 over N trials whose
  per-period Sharpes have the variance V (ddof=1); 0 when N < 2.

Pure: stdlib only (``statistics.NormalDist`` for Φ and Φ⁻¹). Nothing here is rounded; a figure that
cannot be computed (T < 2, zero dispersion, a negative variance term) is None.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from .series import SQRT_PERIODS

_NORMAL = NormalDist()
#: the Euler–Mascheroni constant
EULER_GAMMA = 0.5772156649
#: Φ⁻¹(0.975): the two-sided 95 % interval
Z_95 = 1.96
#: Φ⁻¹(0.95): one-sided 95 % confidence, for the minimum track record
Z_95_ONE_SIDED = 1.6449
#: daily returns a strategy needs to count as a trial of this instance
MIN_TRIAL_RETURNS = 30


@dataclass(frozen=True, slots=True)
class ReturnMoments:
    """What the significance of a return series is computed from: T (defined returns), mean, std
    (ddof=1, exactly 0 for identical returns), skewness and Pearson kurtosis (population moments, as
    scipy's ``skew(r)`` and ``kurtosis(r, fisher=False)``). With T < 2 or std 0 the rest may be None."""

    observations: int
    mean: float | None
    std: float | None
    skewness: float | None
    kurtosis: float | None

    @property
    def sharpe(self) -> float | None:
        """The per-period Sharpe ratio, or None (T < 2, zero or unknown dispersion)."""
        if self.observations < 2 or self.mean is None or not self.std:
            return None
        return _finite(self.mean / self.std)


@dataclass(frozen=True, slots=True)
class Trials:
    """Every strategy this instance has held long enough to count: N and √V of their per-period Sharpes."""

    count: int
    sharpe_std: float | None

    @property
    def expected_max_sharpe(self) -> float:
        """The per-period Sharpe luck alone would show at best among ``count`` skill-less strategies."""
        if self.count < 2 or not self.sharpe_std:
            return 0.0
        n = self.count
        z = (1 - EULER_GAMMA) * _NORMAL.inv_cdf(1 - 1 / n) + EULER_GAMMA * _NORMAL.inv_cdf(1 - 1 / (n * math.e))
        return self.sharpe_std * z


NO_TRIALS = Trials(0, None)


def trials(sharpes: Iterable[float]) -> Trials:
    """N and √V (ddof=1) of the trials' per-period Sharpe ratios."""
    values = list(sharpes)
    n = len(values)
    if n < 2:
        return Trials(n, None)
    mean = math.fsum(values) / n
    return Trials(n, math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)))


def pooled_trials(groups: Iterable[tuple[int, float | None, float | None]]) -> Trials:
    """N and √V of trials given as groups of (count, mean, sample variance) of their per-day Sharpes
    (e.g. the live strategies and the deleted ones), pooled exactly as if taken together."""
    n, mean, m2 = 0, 0.0, 0.0
    for count, group_mean, variance in groups:
        if not count or group_mean is None:
            continue
        group_m2 = (variance or 0.0) * (count - 1)
        total = n + count
        delta = group_mean - mean
        mean += delta * count / total
        m2 += group_m2 + delta * delta * n * count / total
        n = total
    return Trials(n, math.sqrt(max(m2, 0.0) / (n - 1)) if n >= 2 else None)


def deflated_sharpe(sharpe_daily: float | None, sharpe_daily_std: float | None, of_instance: Trials) -> float | None:
    """``dsr`` from a stored per-day Sharpe and its standard error: Φ((SR − SR₀) / σ(SR))."""
    if sharpe_daily is None or not sharpe_daily_std:
        return None
    return _finite(_NORMAL.cdf((sharpe_daily - of_instance.expected_max_sharpe) / sharpe_daily_std))


def _variance_term(sr: float, m: ReturnMoments) -> float | None:
    """1 − γ3·SR + (γ4 − 1)/4·SR², or None when a moment is unknown or the term is not positive."""
    if m.skewness is None or m.kurtosis is None:
        return None
    term = 1 - m.skewness * sr + (m.kurtosis - 1) / 4 * sr * sr
    return term if term > 0 and math.isfinite(term) else None


def sharpe_std(m: ReturnMoments) -> float | None:
    """σ(SR): the standard error of the per-period Sharpe ratio under non-normal returns."""
    sr = m.sharpe
    if sr is None:
        return None
    term = _variance_term(sr, m)
    return None if term is None else math.sqrt(term / (m.observations - 1))


def probabilistic_sharpe(m: ReturnMoments, benchmark_sharpe: float = 0.0) -> float | None:
    """Φ((SR − SR*) / σ(SR)): the probability that the true per-period Sharpe exceeds ``benchmark_sharpe``."""
    sr, sigma = m.sharpe, sharpe_std(m)
    if sr is None or not sigma:
        return None
    return _finite(_NORMAL.cdf((sr - benchmark_sharpe) / sigma))


#: above this many daily returns (~40,000 years) the minimum track record is null: no record is that long
MAX_TRACK_RECORD_DAYS = 10_000_000


def min_track_record(m: ReturnMoments) -> int | None:
    """The daily returns needed for 95 % confidence that the true Sharpe is above 0 (None when SR ≤ 0)."""
    sr = m.sharpe
    if sr is None or sr <= 0:
        return None
    term = _variance_term(sr, m)
    if term is None:
        return None
    try:
        needed = 1 + term * (Z_95_ONE_SIDED / sr) ** 2
    except OverflowError:  # a Sharpe of 1e-300: no record is long enough
        return None
    # a Sharpe barely above 0: more daily returns than any record will have (and than a table column holds)
    return math.ceil(needed) if math.isfinite(needed) and needed <= MAX_TRACK_RECORD_DAYS else None


def significance(m: ReturnMoments, of_instance: Trials) -> dict[str, Any]:
    """The ``significance`` object of ``/performance`` (docs/METHODOLOGY.md)."""
    sr, sigma = m.sharpe, sharpe_std(m)
    bar = of_instance.expected_max_sharpe
    interval = None
    if sr is not None and sigma:
        interval = [(sr - Z_95 * sigma) * SQRT_PERIODS, (sr + Z_95 * sigma) * SQRT_PERIODS]
    known = sigma is not None
    return {
        "observations": m.observations,
        "skewness": _finite(m.skewness) if known else None,
        "kurtosis": _finite(m.kurtosis) if known else None,
        "psr": probabilistic_sharpe(m),
        "dsr": deflated_sharpe(sr, sigma, of_instance),  # the board re-judges through the same function
        "sharpe_ci_95": interval,
        "min_track_record_days": min_track_record(m),
        "trials": of_instance.count,
        "trials_sharpe_std": of_instance.sharpe_std,
        "expected_max_sharpe": bar * SQRT_PERIODS,
    }


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None
