"""What the read side answers: the shapes of ``/state``, ``/nav``, ``/performance``, the paginated logs and ``/readyz``.

Declared once, here: the ledger view returns them and the query API serializes them.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

import msgspec

from .model import CashEvent, Order, Position
from .nav import NavRow
from .trade_stats import TradingStats


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
    #: every money amount (cash, market value, NAV) is in it; positions' prices are in their ``currency``
    base_currency: str = "USD"


class NavSeries(msgspec.Struct):
    strategy_id: UUID
    series: list[NavRow]
    base_currency: str = "USD"


class ReconciliationEntry(msgspec.Struct):
    snapshot_id: UUID
    symbol: str
    derived_quantity: Decimal
    derived_cost_basis: Decimal | None
    snapshot_quantity: Decimal
    snapshot_cost_basis: Decimal | None
    taken_at: datetime


class CorporateAction(msgspec.Struct):
    """A split applied to the strategy's holding: ``ratio`` is new shares for old (``"4:1"``)."""

    ex_date: date
    symbol: str
    kind: str
    ratio: str
    split_from: Decimal
    split_to: Decimal
    quantity_before: Decimal
    quantity_after: Decimal
    cost_basis_before: Decimal
    cost_basis_after: Decimal


class CorporateActions(msgspec.Struct):
    strategy_id: UUID
    items: list[CorporateAction]


class OrdersPage(msgspec.Struct):
    items: list[Order]
    next_cursor: str | None


class CashPage(msgspec.Struct):
    items: list[CashEvent]
    next_cursor: str | None


class ReconciliationPage(msgspec.Struct):
    items: list[ReconciliationEntry]
    next_cursor: str | None


class SnapshotOutcome(msgspec.Struct):
    """What the fold made of a positions snapshot (the POST /positions/snapshot answer)."""

    upserted: int
    removed: int | None
    reconciliation_entries: int | None


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


#: a page cursor: the log position after which the next page starts, in decimal (empty: the start);
#: any such position is a valid cursor, so the OpenAPI document can say exactly which are
CURSOR_PATTERN = r"^[0-9]{0,18}$"
_CURSOR = re.compile(r"[0-9]{0,18}")


def encode_cursor(value: int) -> str:
    """The page cursor for a position in a log."""
    return str(value)


def decode_cursor(cursor: str | None) -> int:
    """The position behind a cursor (CURSOR_PATTERN); ValueError on anything else."""
    if not cursor:
        return 0
    if not _CURSOR.fullmatch(cursor):
        raise ValueError(cursor)
    return int(cursor)


# ---------------------------------------------------------------- subscribers' pages (issue 11)

#: an order counts as reported live when it arrived within this many seconds of its execution
LIVE_REPORTING_S = 15 * 60
#: the leaderboard's "reported live only" filter: at least this share of orders reported live
LIVE_ONLY_MIN_SHARE = 0.95
#: the leaderboard's columns a subscriber may sort by
LEADERBOARD_SORTS = (
    "total_return",
    "cagr",
    "sharpe",
    "sortino",
    "max_drawdown",
    "volatility",
    "track_days",
    "last_activity",
    "live_share",
    "name",
    "psr",
    "dsr",
    "trades",
    "win_rate",
    "profit_factor",
)


class LeaderboardRow(msgspec.Struct):
    rank: int
    strategy_id: UUID
    name: str
    total_return: float | None
    cagr: float | None
    sharpe: float | None
    sortino: float | None
    max_drawdown: float | None
    volatility: float | None
    track_days: int
    inception_date: date | None
    latest_date: date | None
    last_activity: datetime | None
    orders: int
    live_share: float | None
    #: docs/METHODOLOGY.md#significance, on a risk-free rate of 0
    observations: int = 0
    psr: float | None = None
    dsr: float | None = None
    sharpe_ci_95: list[float] | None = None
    min_track_record_days: int | None = None
    #: closed trades, and their win rate and profit factor (docs/METHODOLOGY.md#trades)
    trades: int = 0
    win_rate: float | None = None
    profit_factor: float | None = None
    #: the growth index at up to 48 NAV days, comma-separated (series.sparkline); None under two days
    sparkline: str | None = None
    #: its profile (botranks_domain.profiles): the owner's public handle (None: none chosen), the base
    #: currency, the markets derived from its symbols, the owner's tags, the equity bracket's index
    owner_handle: str | None = None
    base_currency: str = "USD"
    markets: list[str] = msgspec.field(default_factory=list)
    tags: list[str] = msgspec.field(default_factory=list)
    equity_bracket: int | None = None


class LeaderboardPage(msgspec.Struct):
    items: list[LeaderboardRow]
    total: int
    sort: str
    descending: bool
    min_days: int
    live_only: bool
    limit: int
    offset: int
    #: the search and filters it was asked for (issue 24)
    text: str = ""
    min_trades: int = 0
    max_drawdown: float | None = None
    market: str = ""
    currency: str = ""
    min_live_share: float | None = None


class ChainDay(msgspec.Struct):
    """The chain's head at the end of a day (UTC, by arrival): published for good."""

    day: date
    events: int
    digest: str


class ChainHead(msgspec.Struct):
    events: int
    digest: str | None
    days: list[ChainDay]


#: the board a strategy's own rank (``LedgerReader.leaderboard_row``) is counted on: best Deflated Sharpe
#: Ratio first (ties by PSR), among public strategies with at least this many days of track record
LEADERBOARD_DEFAULT_SORT = "dsr"
LEADERBOARD_DEFAULT_MIN_DAYS = 30
#: at most this many rows per leaderboard page
LEADERBOARD_MAX_LIMIT = 500


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


class Significance(msgspec.Struct):
    """How sure the Sharpe ratio is (docs/METHODOLOGY.md#significance)."""

    observations: int
    skewness: float | None
    kurtosis: float | None
    psr: float | None
    dsr: float | None
    sharpe_ci_95: list[float] | None
    min_track_record_days: int | None
    trials: int
    trials_sharpe_std: float | None
    expected_max_sharpe: float


class HistoryWarning(msgspec.Struct):
    code: str
    message: str


class Performance(msgspec.Struct):
    """GET /performance: the body :func:`compute_performance` builds, plus the strategy id.

    Every field of the spec (null where undefined), plus ``warnings``; the unit tests check that
    every body ``compute_performance`` returns converts to it exactly.
    """

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
    #: always sent by the server; None only from a server older than the field
    significance: Significance | None = None
    #: the trade statistics (docs/METHODOLOGY.md#trades); None from a server older than the field
    trading: TradingStats | None = None
    #: the currency of every money figure (the NAV's), and every currency converted into it (sorted)
    base_currency: str = "USD"
    currencies: list[str] = msgspec.field(default_factory=lambda: ["USD"])
