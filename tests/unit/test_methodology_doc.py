"""docs/METHODOLOGY.md's worked example is what the code computes, and it names every published figure."""

from __future__ import annotations

import math
from pathlib import Path

from botranks_domain.significance import ReturnMoments, Trials, sharpe_std, significance

DOC = (Path(__file__).parents[2] / "docs" / "METHODOLOGY.md").read_text(encoding="utf-8")


def test_the_worked_example_is_what_the_code_computes() -> None:
    m, t = ReturnMoments(252, 0.0008, 0.01, -0.5, 5.0), Trials(40, 0.03)
    sig = significance(m, t)
    assert f"= {sharpe_std(m):.5f}." in DOC
    assert f"**{sig['psr']:.3f}**" in DOC
    lo, hi = sig["sharpe_ci_95"]
    assert f"**[{lo:.2f}, {hi:.2f}]**".replace("-", "−") in DOC
    assert f"**{sig['min_track_record_days']}** days" in DOC
    assert f"needs {sig['min_track_record_days'] - 252}" in DOC
    assert f"{t.expected_max_sharpe:.5f} a day, **{sig['expected_max_sharpe']:.2f}** a year" in DOC
    assert f"**{sig['dsr']:.3f}**" in DOC
    assert f"{m.sharpe * math.sqrt(252):.2f} a year" in DOC  # type: ignore[operator]


def test_every_published_figure_is_defined() -> None:
    figures = [
        "total_return", "cagr", "volatility_annualized", "downside_volatility_annualized", "sharpe_ratio",
        "sortino_ratio", "calmar_ratio", "max_drawdown", "current_drawdown", "max_drawdown_duration_days",
        "beta", "alpha_annualized", "tracking_error_annualized", "information_ratio", "benchmark_total_return",
        "observations", "skewness", "kurtosis", "psr", "dsr", "sharpe_ci_95", "min_track_record_days",
        "trials", "trials_sharpe_std", "expected_max_sharpe", "live_share", "track_days", "last_activity",
    ]  # fmt: skip
    assert [f for f in figures if f"`{f}`" not in DOC] == []
