"""Read-model queries behind the query API (SELECTs only), returning the API's shapes."""

from __future__ import annotations

import base64
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

import msgspec
import polars as pl

from libs.domain.model import CashEvent, Order, Position, decode_event, position_id
from libs.domain.performance import compute_performance
from libs.infra.store import EVENTS_TABLE, PROJECTOR, TRACKING_TABLE, EventStore


class Nav(msgspec.Struct):
    total_equity: Decimal
    cash_balance: Decimal
    market_value: Decimal
    captured_at: datetime


class StateView(msgspec.Struct):
    strategy_id: UUID
    positions: list[Position]
    nav: Nav | None
    last_order_at: datetime | None


class NavPoint(msgspec.Struct):
    date: date
    cash: Decimal
    market_value: Decimal
    total_equity: Decimal
    external_flow: Decimal


class NavSeries(msgspec.Struct):
    strategy_id: UUID
    series: list[NavPoint]


class ReconciliationEntry(msgspec.Struct):
    snapshot_id: UUID
    symbol: str
    derived_quantity: Decimal
    derived_cost_basis: Decimal | None
    snapshot_quantity: Decimal
    snapshot_cost_basis: Decimal | None
    taken_at: datetime


class OrdersPage(msgspec.Struct):
    items: list[Order]
    next_cursor: str | None


class CashPage(msgspec.Struct):
    items: list[CashEvent]
    next_cursor: str | None


class ReconciliationPage(msgspec.Struct):
    items: list[ReconciliationEntry]
    next_cursor: str | None


NAV_COLUMNS = ("date", "cash", "market_value", "total_equity", "external_flow")


def strategy_state(store: EventStore, strategy_id: UUID) -> StateView:
    """GET /state: positions, current NAV and last order time, as the spec shows."""
    with store.snapshot() as curs:  # positions and NAV from one snapshot: never torn by a projection
        positions = curs.execute(
            "SELECT symbol, quantity, cost_basis, updated_at FROM rm_positions"
            " WHERE strategy_id = %s ORDER BY symbol", (strategy_id,)).fetchall()
        ledger = curs.execute("SELECT total_equity, cash_balance, market_value, captured_at, last_order_at"
                              " FROM rm_ledger WHERE strategy_id = %s", (strategy_id,)).fetchone()
    return StateView(
        strategy_id=strategy_id,
        positions=[Position(id=position_id(strategy_id, r["symbol"]), strategy_id=strategy_id, **r) for r in positions],
        nav=None if ledger is None else Nav(ledger["total_equity"], ledger["cash_balance"], ledger["market_value"],
                                            ledger["captured_at"]),
        last_order_at=None if ledger is None else ledger["last_order_at"],
    )


class Quarantined(msgspec.Struct):
    strategy_id: UUID
    first_notification_id: int
    skipped_events: int
    error: str
    quarantined_at: datetime


class Readiness(msgspec.Struct):
    """GET /readyz: the database answers; how far the projection is behind; what it had to isolate."""

    status: str
    database: str
    projector_lag: int
    quarantined: list[Quarantined]


def readiness(store: EventStore) -> Readiness:
    """Raises the database's error when it does not answer (the route turns that into a 503)."""
    with store.snapshot() as curs:
        lag = curs.execute(
            f"SELECT coalesce((SELECT max(notification_id) FROM {EVENTS_TABLE}), 0) - coalesce("
            f"(SELECT notification_id FROM {TRACKING_TABLE} WHERE application_name = %s), 0) AS lag",
            (PROJECTOR,)).fetchone()["lag"]
        halted = curs.execute("SELECT strategy_id, first_notification_id, skipped_events, error, quarantined_at"
                              " FROM rm_quarantine ORDER BY quarantined_at LIMIT 100").fetchall()
    return Readiness("degraded" if halted else "ok", "ok", max(0, lag), [Quarantined(**r) for r in halted])


def nav_series(store: EventStore, strategy_id: UUID, start: date | None, end: date | None) -> NavSeries:
    """Daily NAV rows in [start, end] (either bound optional), oldest first."""
    with store.cursor() as curs:
        rows = curs.execute(
            "SELECT date, cash, market_value, total_equity, external_flow FROM rm_nav_daily"
            " WHERE strategy_id = %s AND date >= %s AND date <= %s ORDER BY date",
            (strategy_id, start or date.min, end or date.max)).fetchall()
    return NavSeries(strategy_id, [NavPoint(**r) for r in rows])


def encode_cursor(value: int) -> str:
    return base64.urlsafe_b64encode(f"n:{value}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    """Opaque cursors; raises ValueError on anything we did not hand out."""
    if not cursor:
        return 0
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    if not raw.startswith("n:"):
        raise ValueError(cursor)
    value = int(raw[2:])
    if not 0 <= value < 2**63:
        raise ValueError(cursor)
    return value


def _page(curs, sql: str, strategy_id: UUID, after: int, limit: int) -> tuple[list[dict], str | None]:
    """Rows after the cursor (``sql`` selects a ``cursor`` column), and the next cursor if more exist."""
    rows = curs.execute(sql, (strategy_id, after, limit + 1)).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (encode_cursor(rows[-1]["cursor"]) if more and rows else None)


def list_orders(store: EventStore, strategy_id: UUID, after: int, limit: int) -> OrdersPage:
    """Orders in arrival order, a page at a time."""
    with store.cursor() as curs:
        rows, nxt = _page(curs, "SELECT notification_id AS cursor, event FROM rm_orders WHERE strategy_id = %s"
                          " AND notification_id > %s ORDER BY notification_id LIMIT %s", strategy_id, after, limit)
    return OrdersPage([decode_event(bytes(r["event"])).order for r in rows], nxt)  # type: ignore[union-attr]


def list_cash(store: EventStore, strategy_id: UUID, after: int, limit: int) -> CashPage:
    """Cash events in arrival order, a page at a time."""
    with store.cursor() as curs:
        rows, nxt = _page(curs, "SELECT notification_id AS cursor, event FROM rm_cash_events WHERE strategy_id = %s"
                          " AND notification_id > %s ORDER BY notification_id LIMIT %s", strategy_id, after, limit)
    return CashPage([decode_event(bytes(r["event"])).cash for r in rows], nxt)  # type: ignore[union-attr]


def list_reconciliation(store: EventStore, strategy_id: UUID, after: int, limit: int) -> ReconciliationPage:
    with store.cursor() as curs:
        rows, nxt = _page(
            curs, "SELECT id AS cursor, snapshot_id, symbol, derived_quantity, derived_cost_basis, snapshot_quantity,"
            " snapshot_cost_basis, taken_at FROM rm_reconciliation_log WHERE strategy_id = %s AND id > %s"
            " ORDER BY id LIMIT %s", strategy_id, after, limit)
    return ReconciliationPage([ReconciliationEntry(**{k: v for k, v in r.items() if k != "cursor"}) for r in rows],
                              nxt)


class BenchmarkStats(msgspec.Struct):
    symbol: str
    beta: float | None
    alpha_annualized: float | None
    tracking_error_annualized: float | None
    information_ratio: float | None
    benchmark_total_return: float | None


class Drawdown(msgspec.Struct):
    max_drawdown: float | None
    max_drawdown_duration_days: int | None
    current_drawdown: float | None


class HistoryWarning(msgspec.Struct):
    code: str
    message: str


class Performance(msgspec.Struct):
    """GET /performance, every field of the spec (null where undefined), plus ``warnings``."""

    strategy_id: UUID
    inception_date: date | None
    latest_date: date | None
    days: int | None
    years: float | None
    starting_equity: Decimal | None
    ending_equity: Decimal | None
    total_return: float | None
    cagr: float | None
    volatility_annualized: float | None
    downside_volatility_annualized: float | None
    sharpe_ratio: float | None
    sortino_ratio: float | None
    calmar_ratio: float | None
    drawdown: Drawdown
    monthly_returns: dict[str, float | None]
    yearly_returns: dict[str, float | None]
    benchmark: BenchmarkStats | None
    warnings: list[HistoryWarning]


class PerformanceKey(msgspec.Struct, frozen=True):
    """Everything a /performance answer depends on; it changes whenever the NAV or the benchmark does."""

    strategy_id: UUID
    nav_version: datetime | None
    benchmark: str | None
    benchmark_version: int | None
    risk_free_rate: float
    #: the strategy's own benchmark when it has no price yet (then compared against nothing)
    unpriced_benchmark: str | None = None


def performance_key(store: EventStore, strategy_id: UUID, benchmark: str | None,
                    risk_free_rate: float) -> tuple[PerformanceKey, bool]:
    """The cache key, and whether the requested benchmark has any price (None = strategy default)."""
    with store.cursor() as curs:
        row = curs.execute(
            "SELECT (SELECT updated_at FROM rm_ledger WHERE strategy_id = %(s)s) AS nav_version,"
            " coalesce(%(b)s, (SELECT benchmark FROM strategies WHERE id = %(s)s)) AS benchmark", 
            {"s": strategy_id, "b": benchmark}).fetchone()
        symbol = row["benchmark"] or None
        known, version = True, None
        if symbol:
            bench = curs.execute(
                "SELECT EXISTS (SELECT 1 FROM prices WHERE symbol = %(b)s) AS known,"
                " (SELECT max(id) FROM price_updates WHERE symbol = %(b)s) AS version", {"b": symbol}).fetchone()
            known, version = bench["known"], bench["version"]
    return PerformanceKey(strategy_id, row["nav_version"], symbol, version, risk_free_rate), known


def performance(store: EventStore, key: PerformanceKey) -> Performance:
    """Load the NAV series and benchmark closes, and compute every metric (pure, in libs.domain)."""
    with store.cursor() as curs:
        rows = curs.execute("SELECT date, cash, total_equity, external_flow FROM rm_nav_daily"
                            " WHERE strategy_id = %s ORDER BY date", (key.strategy_id,)).fetchall()
        closes = []
        if key.benchmark and rows:
            closes = curs.execute("SELECT date, close FROM prices WHERE symbol = %s AND date BETWEEN %s AND %s"
                                  " ORDER BY date", (key.benchmark, rows[0]["date"], rows[-1]["date"])).fetchall()
    nav = pl.DataFrame({"date": [r["date"] for r in rows], "total_equity": [float(r["total_equity"]) for r in rows],
                        "external_flow": [float(r["external_flow"]) for r in rows],
                        "cash": [float(r["cash"]) for r in rows]},
                       schema={"date": pl.Date, "total_equity": pl.Float64, "external_flow": pl.Float64,
                               "cash": pl.Float64})
    bench = None
    if key.benchmark:
        bench = pl.DataFrame({"date": [r["date"] for r in closes], "close": [float(r["close"]) for r in closes]},
                             schema={"date": pl.Date, "close": pl.Float64})
    result = compute_performance(nav, bench, key.benchmark, key.risk_free_rate)
    if key.unpriced_benchmark:
        result["warnings"].append({"code": "benchmark_unpriced", "message": (
            f"The strategy's benchmark {key.unpriced_benchmark} has no prices yet: benchmark figures are null")})
    if rows:  # money as the NAV rows publish it, not through a float
        result["starting_equity"], result["ending_equity"] = rows[0]["total_equity"], rows[-1]["total_equity"]
    return msgspec.convert({"strategy_id": key.strategy_id, **result}, Performance)
