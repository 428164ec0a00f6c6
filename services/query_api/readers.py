"""/performance: its cache key and its computation, from the owners' reads and the pure metrics."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal, localcontext
from uuid import UUID

import msgspec

from botranks_domain.currency import FxRates, quote_currency, rate_symbols
from botranks_domain.ledger import LEDGER_CONTEXT
from botranks_domain.nav import NavRow
from botranks_domain.performance import compute_performance
from botranks_domain.series import closes_frame, nav_frame
from botranks_domain.significance import Trials
from botranks_domain.trade_stats import TradeSums, TradingStats, trading_stats
from botranks_domain.views import HistoryWarning, Performance, StateView
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
    #: the currency the NAV is in; the benchmark is converted into it (unhedged) when quoted in another
    base_currency: str = "USD"
    #: the benchmark's quote currency, and the price version of the FX rates its conversion reads
    benchmark_currency: str = "USD"
    fx_version: int | None = None


def performance_key(
    db: Database, strategy_id: UUID, benchmark: str | None, risk_free_rate: float
) -> tuple[PerformanceKey, bool]:
    """The cache key, and whether the benchmark has any price (``benchmark`` None: the strategy's own)."""
    symbol = benchmark if benchmark is not None else db.identity.benchmark(strategy_id)
    symbol = symbol or None
    known, version = db.prices.benchmark_status(symbol) if symbol else (True, None)
    nav_version = db.ledger.nav_version(strategy_id)
    key = PerformanceKey(strategy_id, nav_version, symbol, version, risk_free_rate, db.ledger.trials())
    return with_currencies(db, key), known


def with_currencies(db: Database, key: PerformanceKey) -> PerformanceKey:
    """``key`` with the strategy's base currency, its benchmark's and the version of the rates between them."""
    base = db.identity.base_currency(key.strategy_id)
    bench_currency = base
    fx_version = None
    if key.benchmark:
        bench_currency = quote_currency(key.benchmark, db.prices.currencies([key.benchmark]))
        if bench_currency != base:
            fx_version = db.prices.version_of(rate_symbols(bench_currency, base))
    return msgspec.structs.replace(key, base_currency=base, benchmark_currency=bench_currency, fx_version=fx_version)


def in_base(
    db: Database, key: PerformanceKey, closes: list[tuple[date, Decimal]]
) -> tuple[list[tuple[date, Decimal]], str | None]:
    """The benchmark's closes in the base currency (each at its day's rate, unhedged), and a warning when
    some day has no rate (those days are left out)."""
    if not closes or key.benchmark_currency == key.base_currency:
        return closes, None
    symbols = set(rate_symbols(key.benchmark_currency, key.base_currency))
    fx = FxRates(db.prices.book(symbols, closes[-1][0]), key.base_currency, {})
    converted, missing = [], 0
    for day, close in closes:
        rate = fx.rate(key.benchmark_currency, day)
        if rate is None:
            missing += 1
            continue
        converted.append((day, LEDGER_CONTEXT.multiply(close, rate)))
    warning = None
    if missing:
        warning = (
            f"{missing} of the benchmark's {len(closes)} closes have no {key.benchmark_currency}/"
            f"{key.base_currency} rate on or before their day: left out of the benchmark figures"
        )
    return converted, warning


def state_view(db: Database, strategy_id: UUID) -> StateView:
    """/state: the projector's state, with the base currency and each position's quote currency."""
    view = db.ledger.state(strategy_id)
    recorded = db.prices.currencies([p.symbol for p in view.positions])
    for p in view.positions:
        p.currency = quote_currency(p.symbol, recorded)
    view.base_currency = db.identity.base_currency(strategy_id)
    return view


def rates_now(db: Database, base: str, currencies: set[str]) -> dict[str, Decimal | None]:
    """Each currency's latest rate into ``base`` (None: no rate known): today's marks in the base."""
    foreign = {c for c in currencies if c != base}
    out: dict[str, Decimal | None] = {c: Decimal(1) for c in currencies if c == base}
    if foreign:
        today = datetime.now(UTC).date()
        symbols = {s for c in foreign for s in rate_symbols(c, base)}
        fx = FxRates(db.prices.book(symbols, today), base, {})
        out.update({c: fx.rate(c, today) for c in foreign})
    return out


def trade_currencies(db: Database, trades: list[TradeSums]) -> dict[str, str]:
    """The quote currency of each symbol of ``trades``."""
    symbols = {t.symbol for t in trades}
    recorded = db.prices.currencies(symbols)
    return {s: quote_currency(s, recorded) for s in symbols}


def load_inputs(db: Database, key: PerformanceKey) -> tuple[list[NavRow], list[tuple[date, Decimal]], str | None]:
    """The NAV series, the benchmark's closes over its range in the base currency (empty without a priced
    benchmark), and a warning about closes without a rate."""
    rows = db.ledger.nav_series(key.strategy_id).series
    closes = db.prices.closes_between(key.benchmark, rows[0].date, rows[-1].date) if key.benchmark and rows else []
    closes, warning = in_base(db, key, closes)
    return rows, closes, warning


def performance(db: Database, key: PerformanceKey) -> Performance:
    """Load the NAV series and benchmark closes, and compute every metric (pure, in botranks_domain)."""
    return performance_with(db, key, *load_inputs(db, key))


def performance_with(
    db: Database,
    key: PerformanceKey,
    rows: list[NavRow],
    closes: list[tuple[date, Decimal]],
    warning: str | None,
    sums: list[TradeSums] | None = None,
) -> Performance:
    """Every metric from loaded inputs, with the trades (``sums``, read when not given) and the currencies."""
    sums = db.ledger.trades.all_sums(key.strategy_id) if sums is None else sums
    used = set(trade_currencies(db, sums).values()) | {key.base_currency}
    if key.benchmark:
        used.add(key.benchmark_currency)
    body = performance_from(key, rows, closes, trading(db, key.strategy_id, rows, sums), sorted(used))
    if warning:
        body.warnings.append(HistoryWarning("benchmark_fx", warning))
    return body


def trading(db: Database, strategy_id: UUID, rows: list[NavRow], sums: list[TradeSums] | None = None) -> TradingStats:
    """The trade statistics: every trade (``sums``, read when not given), the NAV days, and the open
    positions' unrealized P&L at the ledger's current marks (market value − Σ quantity × cost basis)."""
    view = state_view(db, strategy_id)
    rates = rates_now(db, view.base_currency, {p.currency for p in view.positions})
    with localcontext(LEDGER_CONTEXT):
        cost = sum((p.quantity * p.cost_basis * (rates[p.currency] or 0) for p in view.positions), Decimal(0))
        unrealized = (view.nav.market_value - cost) if view.nav is not None else Decimal(0)
    nav = [(r.date, r.total_equity) for r in rows]
    trades = db.ledger.trades.all_sums(strategy_id) if sums is None else sums
    return trading_stats(trades, nav, unrealized, datetime.now(UTC))


def performance_from(
    key: PerformanceKey,
    rows: list[NavRow],
    closes: list[tuple[date, Decimal]],
    trades: TradingStats | None = None,
    currencies: list[str] | None = None,
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
    return msgspec.convert(
        {
            "strategy_id": key.strategy_id,
            **result,
            "trading": trades,
            "base_currency": key.base_currency,
            "currencies": currencies or [key.base_currency],
        },
        Performance,
    )
