"""/performance: its cache key and its computation, from the owners' reads and the pure metrics."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal, localcontext
from uuid import UUID

import msgspec

from botranks_domain.ledger import LEDGER_CONTEXT
from botranks_domain.nav import NavRow
from botranks_domain.performance import compute_performance
from botranks_domain.series import closes_frame, nav_frame
from botranks_domain.significance import Trials
from botranks_domain.trade_stats import TradeSums, TradingStats, trading_stats
from botranks_domain.views import Performance
from libs.infra.db import Database


class PerformanceKey(msgspec.Struct, frozen=True):
    """Everything a /performance answer depends on; it changes whenever the NAV or the benchmark does."""

    strategy_id: UUID
    nav_version: datetime | None
    benchmark: str | None
    benchmark_version: int | None
    risk_free_rate: float
    #: the instance's trials the Deflated Sharpe Ratio is judged against (a new trial is a new key)
    trials: Trials
    #: the strategy's own benchmark when it has no price yet (then compared against nothing)
    unpriced_benchmark: str | None = None


def performance_key(
    db: Database, strategy_id: UUID, benchmark: str | None, risk_free_rate: float
) -> tuple[PerformanceKey, bool]:
    """The cache key, and whether the benchmark has any price (``benchmark`` None: the strategy's own)."""
    symbol = benchmark if benchmark is not None else db.identity.benchmark(strategy_id)
    symbol = symbol or None
    known, version = db.prices.benchmark_status(symbol) if symbol else (True, None)
    nav_version = db.ledger.nav_version(strategy_id)
    return PerformanceKey(strategy_id, nav_version, symbol, version, risk_free_rate, db.ledger.trials()), known


def load_inputs(db: Database, key: PerformanceKey) -> tuple[list[NavRow], list[tuple[date, Decimal]]]:
    """The NAV series and the benchmark's closes over its range (empty without a priced benchmark)."""
    rows = db.ledger.nav_series(key.strategy_id).series
    closes = db.prices.closes_between(key.benchmark, rows[0].date, rows[-1].date) if key.benchmark and rows else []
    return rows, closes


def performance(db: Database, key: PerformanceKey) -> Performance:
    """Load the NAV series and benchmark closes, and compute every metric (pure, in botranks_domain)."""
    rows, closes = load_inputs(db, key)
    return performance_from(key, rows, closes, trading(db, key.strategy_id, rows))


def trading(db: Database, strategy_id: UUID, rows: list[NavRow], sums: list[TradeSums] | None = None) -> TradingStats:
    """The trade statistics: every trade (``sums``, read when not given), the NAV days, and the open
    positions' unrealized P&L at the ledger's current marks (market value − Σ quantity × cost basis)."""
    view = db.ledger.state(strategy_id)
    with localcontext(LEDGER_CONTEXT):
        cost = sum((p.quantity * p.cost_basis for p in view.positions), Decimal(0))
        unrealized = (view.nav.market_value - cost) if view.nav is not None else Decimal(0)
    nav = [(r.date, r.total_equity) for r in rows]
    trades = db.ledger.trades.all_sums(strategy_id) if sums is None else sums
    return trading_stats(trades, nav, unrealized, datetime.now(UTC))


def performance_from(
    key: PerformanceKey, rows: list[NavRow], closes: list[tuple[date, Decimal]], trades: TradingStats | None = None
) -> Performance:
    """Every metric of ``/performance`` from loaded inputs."""
    bench = closes_frame(closes) if key.benchmark else None
    result = compute_performance(nav_frame(rows), bench, key.benchmark, key.risk_free_rate, key.trials)
    if key.unpriced_benchmark:
        result["warnings"].append(
            {
                "code": "benchmark_unpriced",
                "message": (
                    f"The strategy's benchmark {key.unpriced_benchmark} has no prices yet: benchmark figures are null"
                ),
            }
        )
    if rows:  # money as the NAV rows publish it, not through a float
        result["starting_equity"], result["ending_equity"] = rows[0].total_equity, rows[-1].total_equity
    return msgspec.convert({"strategy_id": key.strategy_id, **result, "trading": trades}, Performance)
