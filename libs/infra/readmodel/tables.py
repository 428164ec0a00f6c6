"""The read model's tables and names, each declared once.

Every ``rm_*`` table is keyed by strategy and rebuilt from the event log; the projection's
position is the tracking table's ``projector.p<N>`` rows (one per partition, laid out in
``projector_layout``) and its outbox cursors are ``projector_partition_cursors``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from ..pg import DictCursor, one

#: eventsourcing's tracking table (the projector's positions in the event log)
TRACKING_TABLE = "botranks_tracking"
#: the projector's name in the tracking table (eventsourcing's "application name"), before partitions
PROJECTOR = "projector"
#: a partition's name in the tracking table
PARTITION_TRACKING = "projector.p{}"
#: every committed projection sends ``NOTIFY botranks_projected, '<partition>:<position>'``
NOTIFY_CHANNEL = "botranks_projected"
#: every read model: what a rebuild replaces and a deleted strategy leaves behind (all keyed by strategy)
READ_MODEL_TABLES = (
    "rm_orders",
    "rm_cash_events",
    "rm_snapshots",
    "rm_positions",
    "rm_ledger",
    "rm_reconciliation_log",
    "rm_checkpoints",
    "rm_nav_daily",
    "rm_strategy_symbols",
    "rm_quarantine",
    "rm_leaderboard",
    "rm_chain",
    "rm_chain_days",
    "rm_corporate_actions",
    "rm_trades",
)
#: where a rebuild builds the new read models before swapping them in
SHADOW_SCHEMA = "botranks_rebuild"
#: the quarantine row of events whose strategy cannot even be read
UNKNOWN_STRATEGY = UUID(int=0)

#: the log tables by event topic: (table, columns of ``log_row()`` + notification id + event bytes)
LOG_TABLES = {
    "OrderRecorded.v1": (
        "rm_orders",
        "id, strategy_id, symbol, side, quantity, price, fees, order_type, status,"
        " executed_at, created_at, external_order_id, details, notification_id, event",
    ),
    "CashRecorded.v1": (
        "rm_cash_events",
        "id, strategy_id, event_type, amount, occurred_at, external_id,"
        " related_symbol, note, created_at, notification_id, event",
    ),
    "PositionsSnapshotted.v1": ("rm_snapshots", "id, strategy_id, taken_at, notification_id, event"),
}
#: a strategy's stored events, any order: (notification_id, event)
LOG_EVENTS = (
    "SELECT notification_id, event FROM rm_orders WHERE strategy_id = %(s)s"
    " UNION ALL SELECT notification_id, event FROM rm_cash_events WHERE strategy_id = %(s)s"
    " UNION ALL SELECT notification_id, event FROM rm_snapshots WHERE strategy_id = %(s)s"
)
#: the columns of a LeaderboardRow (after its rank), as stored in rm_leaderboard
LEADERBOARD_ROW = (
    "strategy_id, name, total_return, cagr, sharpe, sortino, max_drawdown, volatility, track_days,"
    " inception_date, latest_date, last_activity, orders, live_share, observations, psr, dsr,"
    " CASE WHEN sharpe_ci_low IS NULL THEN NULL ELSE ARRAY[sharpe_ci_low, sharpe_ci_high] END AS sharpe_ci_95,"
    " min_track_record_days, trades, win_rate, profit_factor, sparkline, owner_handle, base_currency, markets,"
    " tags, equity_bracket"
)
#: a sort's tie-breakers before the strategy id (same direction): DSR ties (e.g. all 1.0) by PSR
LEADERBOARD_TIEBREAKS = {"dsr": ("psr",)}
#: the columns of a row that are a function of the strategy's NAV rows alone (the DSR is judged anew):
#: what a refresh keeps when the NAV rows' digest (``nav_digest``) is the one they were computed from
NAV_FIGURES = (
    "total_return",
    "cagr",
    "sharpe",
    "sortino",
    "max_drawdown",
    "volatility",
    "track_days",
    "inception_date",
    "latest_date",
    "observations",
    "sharpe_daily",
    "sharpe_daily_std",
    "psr",
    "sharpe_ci_low",
    "sharpe_ci_high",
    "min_track_record_days",
    "sparkline",
    "equity_bracket",
)
#: what the projector writes into rm_leaderboard (refreshed_at is the clock of the write)
LEADERBOARD_COLUMNS = (
    "strategy_id",
    "name",
    "visibility",
    *NAV_FIGURES,
    "last_activity",
    "orders",
    "live_orders",
    "live_share",
    "nav_version",
    "dsr",
    "trials_version",
    "trades",
    "win_rate",
    "profit_factor",
    "owner_handle",
    "base_currency",
    "markets",
    "tags",
    "orders_counted_to",
    "order_symbols",
    "nav_digest",
)
EPOCH = datetime.min.replace(tzinfo=UTC)


def partitions_of(curs: DictCursor) -> int:
    """How many partitions the projection is laid out in (``projector_layout`` holds one row)."""
    return one(curs.execute("SELECT partitions FROM projector_layout"))["partitions"]


def positions_of(curs: DictCursor, partitions: int | None = None) -> dict[int, int]:
    """Each partition's position in the event log (0 before its first projection); ``partitions``: the
    layout, when the caller has read it already."""
    partitions = partitions_of(curs) if partitions is None else partitions
    rows = curs.execute(
        f"SELECT application_name, notification_id FROM {TRACKING_TABLE} WHERE application_name LIKE 'projector.p%%'"
    ).fetchall()
    found = {int(r["application_name"].removeprefix("projector.p")): r["notification_id"] for r in rows}
    return {p: found.get(p, 0) for p in range(partitions)}
