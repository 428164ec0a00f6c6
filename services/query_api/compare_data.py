"""The comparison's data (``compare``'s routes serve it): each strategy's growth index on the common
dates rebased to 100, its drawdown there, its figures (its /performance and leaderboard row), and the
Pearson correlations of the returns between consecutive common dates, with one another and with each
one's own benchmark. Definitions: docs/NOTES.md "Compare"."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

import polars as pl

from botranks_domain.accounts import StrategyProfile
from botranks_domain.nav import NavRow
from botranks_domain.performance import MIN_ANNUALISED_RETURNS
from botranks_domain.series import closes_frame, drawdown_series, growth_index, nav_frame, nav_returns
from botranks_domain.views import LeaderboardRow, Performance
from libs.infra.db import Database

from . import readers
from .page_data import PageCache

#: paired returns a correlation needs (the project's rule for any figure made of daily returns)
MIN_PAIRS = MIN_ANNUALISED_RETURNS


# ---------------------------------------------------------------- the computation (pure)


def growth(rows: list[NavRow]) -> pl.DataFrame:
    """``date`` and ``index``: the time-weighted growth index of a NAV history (1.0 at inception)."""
    return nav_returns(nav_frame(rows)).select("date", index=growth_index(pl.col("r"))).collect()


def common_dates(frames: list[pl.DataFrame]) -> list[date]:
    """The dates present in every frame's ``date`` column, in order."""
    if not frames:
        return []
    days = set(frames[0]["date"].to_list())
    for frame in frames[1:]:
        days &= set(frame["date"].to_list())
    return sorted(days)


def on_dates(index: pl.DataFrame, days: list[date]) -> pl.Series:
    """``index`` on ``days`` (every one of them must be one of its dates)."""
    grid = pl.DataFrame({"date": days}, schema={"date": pl.Date})
    return grid.join(index, on="date", how="left", maintain_order="left")["index"]


def rebased(values: pl.Series) -> list[float]:
    """The series over its first value, × 100."""
    return (values / values[0] * 100.0).to_list() if len(values) else []


def drawdowns(equity: list[float]) -> list[float]:
    """``botranks_domain.series.drawdown_series`` of a curve (<= 0, from its running peak)."""
    return pl.DataFrame({"w": equity}, schema={"w": pl.Float64}).select(drawdown_series(pl.col("w")))["w"].to_list()


def period_returns(values: pl.Series) -> list[float | None]:
    """``v_t / v_{t-1} - 1`` (the first: None; a non-positive base: None)."""
    prev = values.shift(1)
    out = pl.select(pl.when(prev > 0).then(values / prev - 1.0).otherwise(None).fill_nan(None))
    return out.to_series().to_list()


@dataclass(frozen=True)
class Correlation:
    value: float | None
    #: paired returns it is computed from
    days: int
    warning: str | None = None


def pearson(a: list[float | None], b: list[float | None]) -> Correlation:
    """Pearson's correlation of the pairs where both are defined; None with a reason when fewer than
    ``MIN_PAIRS`` pairs, or when one side does not vary."""
    frame = pl.DataFrame({"a": a, "b": b}, schema={"a": pl.Float64, "b": pl.Float64}).drop_nulls()
    n = frame.height
    if n < MIN_PAIRS:
        return Correlation(None, n, f"{n} paired daily returns: a correlation needs at least {MIN_PAIRS}")
    stats = frame.select(sa=pl.col("a").std(), sb=pl.col("b").std(), r=pl.corr("a", "b")).row(0, named=True)
    if not stats["sa"] or not stats["sb"] or stats["sa"] < 1e-15 or stats["sb"] < 1e-15:
        return Correlation(None, n, "the returns do not vary on these days: no correlation")
    value = stats["r"]
    if value is None or not math.isfinite(value):
        return Correlation(None, n, "not computable")
    return Correlation(max(-1.0, min(1.0, value)), n)


def benchmark_pairs(
    index: pl.DataFrame, closes: list[tuple[date, Decimal]], days: list[date]
) -> tuple[list[float | None], list[float | None]]:
    """The strategy's and its benchmark's returns between consecutive ``days`` that have a close."""
    if not closes:
        return [], []
    bench = closes_frame(closes).unique(subset="date", keep="last").sort("date")
    grid = (
        pl.DataFrame({"date": days}, schema={"date": pl.Date})
        .join(bench, on="date", how="inner")
        .join(index, on="date", how="inner")
        .sort("date")
    )
    return period_returns(grid["index"]), period_returns(grid["close"])


# ---------------------------------------------------------------- reading the strategies


@dataclass
class Member:
    profile: StrategyProfile
    key: readers.PerformanceKey
    perf: Performance
    row: LeaderboardRow | None
    rows: list[NavRow]
    closes: list[tuple[date, Decimal]]

    @property
    def broken(self) -> bool:
        return any(w.code == "negative_equity" for w in self.perf.warnings)


def members_or_missing(db: Database, ids: list[UUID]) -> tuple[list[StrategyProfile], UUID | None]:
    """The public profiles of ``ids``, or the first id that is unknown or private (the same for both)."""
    profiles = []
    for sid in ids:
        profile = db.identity.profile(sid)
        if profile is None or profile.visibility != "public":
            return [], sid
        profiles.append(profile)
    return profiles, None


def load(db: Database, cache: PageCache, profiles: list[StrategyProfile], keys: list[Any]) -> list[Member]:
    """Each strategy's /performance (the page's cache), leaderboard row, NAV rows and converted closes."""
    out = []
    for profile, key in zip(profiles, keys, strict=True):
        rows, closes, _ = readers.load_inputs(db, key)
        out.append(
            Member(profile, key, cache.figures(key).performance, db.ledger.leaderboard_row(profile.id), rows, closes)
        )
    return out


def figures(m: Member) -> dict[str, Any]:
    """The figures shown side by side: the strategy's /performance and leaderboard row, as its page."""
    perf, row, sig, ts = m.perf, m.row, m.perf.significance, m.perf.trading
    return {
        "total_return": perf.total_return,
        "cagr": perf.cagr,
        "volatility": perf.volatility_annualized,
        "sharpe": perf.sharpe_ratio,
        "sortino": perf.sortino_ratio,
        "max_drawdown": perf.drawdown.max_drawdown,
        "dsr": sig.dsr if sig else None,
        "psr": sig.psr if sig else None,
        "trades": ts.trades if ts else None,
        "win_rate": ts.win_rate if ts else None,
        "track_days": perf.days,
        "inception_date": perf.inception_date,
        "latest_date": perf.latest_date,
        "base_currency": perf.base_currency,
        "live_share": row.live_share if row else None,
    }


def comparison(members: list[Member]) -> dict[str, Any]:
    """The whole answer of /p/compare (see the module doc)."""
    usable = [m for m in members if not m.broken and m.rows]
    indexes = {m.profile.id: growth(m.rows) for m in usable}
    days = common_dates(list(indexes.values())) if len(usable) == len(members) else []
    warnings: list[str] = []
    for m in members:
        if m.broken:
            warnings.append(f"{m.profile.name}: its equity went to zero or below, its returns are undefined")
        elif not m.rows:
            warnings.append(f"{m.profile.name}: no NAV history yet")
    if len(usable) == len(members) and not days:
        warnings.append("These strategies have no date in common: nothing to draw or correlate")
    currencies = sorted({m.perf.base_currency for m in members})
    if len(currencies) > 1:
        warnings.append(
            "Their base currencies differ (" + ", ".join(currencies) + "): each one's returns are in its own"
            " currency, not converted"
        )
    on_common = {sid: on_dates(ix, days) for sid, ix in indexes.items()} if days else {}
    equity = {sid: rebased(v) for sid, v in on_common.items()}
    returns = {sid: period_returns(v) for sid, v in on_common.items()}
    strategies = []
    for m in members:
        sid = m.profile.id
        bench = _benchmark(m, indexes.get(sid), days)
        strategies.append(
            {
                "id": sid,
                "name": m.profile.name,
                "benchmark": m.profile.benchmark or None,
                "figures": figures(m),
                "warnings": [w.message for w in m.perf.warnings],
                "equity": equity.get(sid),
                "drawdown": drawdowns(equity[sid]) if sid in equity else None,
                "benchmark_correlation": bench,
            }
        )
    matrix: list[list[dict[str, Any]]] = []
    for a in members:
        cells: list[dict[str, Any]] = []
        for b in members:
            if a.profile.id not in returns or b.profile.id not in returns:
                cells.append({"value": None, "days": 0, "warning": "no common returns"})
            elif a is b:
                cells.append({"value": 1.0, "days": max(len(days) - 1, 0), "warning": None})
            else:
                c = pearson(returns[a.profile.id], returns[b.profile.id])
                cells.append({"value": c.value, "days": c.days, "warning": c.warning})
        matrix.append(cells)
    return {
        "ids": [m.profile.id for m in members],
        "common": {
            "days": len(days),
            "returns": max(len(days) - 1, 0),
            "first": days[0] if days else None,
            "last": days[-1] if days else None,
            "dates": days,
        },
        "strategies": strategies,
        "correlation": matrix,
        "min_pairs": MIN_PAIRS,
        "warnings": warnings,
    }


def _benchmark(m: Member, index: pl.DataFrame | None, days: list[date]) -> dict[str, Any]:
    symbol = m.key.benchmark or m.key.unpriced_benchmark
    if symbol is None:
        return {"symbol": None, "value": None, "days": 0, "warning": "no benchmark"}
    if m.key.benchmark is None:
        return {"symbol": symbol, "value": None, "days": 0, "warning": f"{symbol} has no prices yet"}
    if index is None or not days:
        return {"symbol": symbol, "value": None, "days": 0, "warning": "no common dates"}
    r, b = benchmark_pairs(index, m.closes, days)
    c = pearson(r, b)
    return {"symbol": symbol, "value": c.value, "days": c.days, "warning": c.warning}
