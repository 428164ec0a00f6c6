"""The ledger view: owner of every read model (``rm_*``), the projector's tracking row and its
price-outbox cursor.

Built as eventsourcing intends a projection's storage to be: a ``PostgresTrackingRecorder``
subclass whose writes and tracking position move in one transaction. The projector writes
through :meth:`LedgerView.writing` (a :class:`LedgerWriter` bound to one transaction that holds
the projector lock); the query API and read-your-writes read through the view's methods.
Nothing else runs SQL on these tables.

The projection is laid out in P partitions (``projector_layout``; a strategy's partition is
``botranks_domain.partition.partition_of``): each partition has its own position in the event log
(the tracking row ``projector.p<N>``: every event of that partition up to it is applied), its own
cursors in the price and strategy-update outboxes, and its own transaction lock, so partitions
project independently and in parallel. ``position()`` is the smallest of them: everything up to
it is applied in every partition.

Every committed projection also sends ``NOTIFY botranks_projected, '<partition>:<position>'``, so
a writer waiting for its own events (read-your-writes) is woken at once instead of polling.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timezone
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import Tracking
from psycopg.rows import args_row, tuple_row
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder

from .pg import reading

from botranks_domain.chain import Link, line as chain_line, to_hex
from botranks_domain.errors import BadParameter
from botranks_domain.ledger import Holding
from botranks_domain.model import (CashEvent, LedgerEvent, Order, Position, cash_of, decode_event, event_topic, order_of,
                                   position_id)
from botranks_domain.nav import Derivation, LedgerState, NavRow, decode_state, encode_state
from botranks_domain.partition import MAX_PARTITIONS, partition_of
from botranks_domain.views import (
    LEADERBOARD_DEFAULT_MIN_DAYS,
    LEADERBOARD_DEFAULT_SORT,
    LEADERBOARD_MAX_LIMIT,
    LEADERBOARD_SORTS,
    LIVE_ONLY_MIN_SHARE,
    LIVE_REPORTING_S,
    CashPage,
    ChainDay,
    CorporateAction,
    CorporateActions,
    ChainHead,
    LeaderboardPage,
    LeaderboardRow,
    Nav,
    NavSeries,
    OrdersPage,
    Quarantined,
    Readiness,
    ReconciliationEntry,
    ReconciliationPage,
    SnapshotOutcome,
    StateView,
    encode_cursor,
)

TRACKING_TABLE = "botranks_tracking"
#: the projector's name in the tracking table (eventsourcing's "application name"), before partitions
PROJECTOR = "projector"
#: a partition's name in the tracking table
PARTITION_TRACKING = "projector.p{}"
#: (class, partition) of the advisory lock every projection transaction of a partition holds
PROJECTOR_LOCK = 0x42_07_5A_03
NOTIFY_CHANNEL = "botranks_projected"
READ_MODEL_TABLES = ("rm_orders", "rm_cash_events", "rm_snapshots", "rm_positions", "rm_ledger",
                     "rm_reconciliation_log", "rm_checkpoints", "rm_nav_daily", "rm_strategy_symbols",
                     "rm_quarantine", "rm_leaderboard", "rm_chain", "rm_chain_days", "rm_corporate_actions")
#: where a rebuild builds the new read models before swapping them in
SHADOW_SCHEMA = "botranks_rebuild"
#: the quarantine row of events whose strategy cannot even be read
UNKNOWN_STRATEGY = UUID(int=0)

_LOG_TABLES = {
    "OrderRecorded.v1": ("rm_orders", "id, strategy_id, symbol, side, quantity, price, fees, order_type, status,"
                         " executed_at, created_at, external_order_id, details, notification_id, event"),
    "CashRecorded.v1": ("rm_cash_events", "id, strategy_id, event_type, amount, occurred_at, external_id,"
                        " related_symbol, note, created_at, notification_id, event"),
    "PositionsSnapshotted.v1": ("rm_snapshots", "id, strategy_id, taken_at, notification_id, event"),
}
_EPOCH = datetime.min.replace(tzinfo=timezone.utc)
#: the columns of a LeaderboardRow (after its rank), as stored in rm_leaderboard
_LEADERBOARD_ROW = ("strategy_id, name, total_return, cagr, sharpe, sortino, max_drawdown, volatility, track_days,"
                    " inception_date, latest_date, last_activity, orders, live_share")
#: what the projector writes into rm_leaderboard (refreshed_at is the clock of the write)
LEADERBOARD_COLUMNS = ("strategy_id", "name", "visibility", "total_return", "cagr", "sharpe", "sortino",
                       "max_drawdown", "volatility", "track_days", "inception_date", "latest_date", "last_activity",
                       "orders", "live_orders", "live_share", "nav_version")
_LOG_EVENTS = ("SELECT notification_id, event FROM rm_orders WHERE strategy_id = %(s)s"
               " UNION ALL SELECT notification_id, event FROM rm_cash_events WHERE strategy_id = %(s)s"
               " UNION ALL SELECT notification_id, event FROM rm_snapshots WHERE strategy_id = %(s)s")


#: every read model keyed by strategy (what a deleted strategy leaves behind)
_STRATEGY_TABLES = ("rm_orders", "rm_cash_events", "rm_snapshots", "rm_positions", "rm_ledger",
                    "rm_reconciliation_log", "rm_checkpoints", "rm_nav_daily", "rm_strategy_symbols",
                    "rm_quarantine", "rm_leaderboard", "rm_chain", "rm_chain_days", "rm_corporate_actions")


def _partitions(curs: psycopg.Cursor) -> int:
    return curs.execute("SELECT partitions FROM projector_layout").fetchone()["partitions"]


def _positions(curs: psycopg.Cursor) -> dict[int, int]:
    partitions = _partitions(curs)
    rows = curs.execute(f"SELECT application_name, notification_id FROM {TRACKING_TABLE}"
                        " WHERE application_name LIKE 'projector.p%%'").fetchall()
    found = {int(r["application_name"].removeprefix("projector.p")): r["notification_id"] for r in rows}
    return {p: found.get(p, 0) for p in range(partitions)}


def _plain(value) -> str:
    return format(value.normalize(), "f")


class LedgerView(PostgresTrackingRecorder):
    """The read models and the projector's position in the event log (see the module docstring)."""

    def __init__(self, datastore: PostgresDatastore) -> None:
        super().__init__(datastore, tracking_table_name=TRACKING_TABLE)

    # ------------------------------------------------------------ the projector's side

    def partitions(self) -> int:
        """How many partitions the projection is laid out in (changed only by a rebuild)."""
        with reading(self.datastore) as curs:
            return _partitions(curs)

    def partition_positions(self) -> dict[int, int]:
        """Each partition's position in the event log (0 before its first projection)."""
        with reading(self.datastore) as curs:
            return _positions(curs)

    def partition_cursors(self) -> dict[int, tuple[int, int]]:
        """Each partition's (price-outbox, strategy-update-outbox) cursor."""
        with reading(self.datastore) as curs:
            rows = curs.execute("SELECT partition, price_update_id, strategy_update_id"
                                " FROM projector_partition_cursors").fetchall()
        return {r["partition"]: (r["price_update_id"], r["strategy_update_id"]) for r in rows}

    def position(self) -> int:
        """The last notification id applied in every partition (the smallest partition position)."""
        return min(self.partition_positions().values())

    @contextmanager
    def writing(self, partition: int | None = None, *, shadow: bool = False, lock: bool = True,
                partitions: Sequence[int] | None = None) -> Iterator["LedgerWriter"]:
        """One committed transaction of projector writes, holding the lock of ``partition`` (None:
        of every partition, taken in order: a rebuild's swap, a change of layout; or of each of
        ``partitions``, in order, for moving several positions at once).

        ``shadow``: the unqualified read-model tables are the rebuild's new ones.
        """
        with self.datastore.transaction(commit=True) as curs:
            # read models and their tracking row commit together and are rebuilt from the log: a crash
            # may lose the last projections' commits, never half of one (the position rolls back with
            # them and they are applied again), so they need not wait for the disk
            curs.execute("SET LOCAL synchronous_commit = off")
            if lock and partitions is not None:
                curs.execute("SELECT pg_advisory_xact_lock(%s, p) FROM unnest(%s::int[]) AS p ORDER BY p",
                             (PROJECTOR_LOCK, sorted(partitions)))
            elif lock and partition is not None:
                curs.execute("SELECT pg_advisory_xact_lock(%s, %s)", (PROJECTOR_LOCK, partition))
            elif lock:
                curs.execute("SELECT pg_advisory_xact_lock(%s, g) FROM generate_series(0, %s - 1) AS g",
                             (PROJECTOR_LOCK, MAX_PARTITIONS))
            if shadow:
                curs.execute(f"SET LOCAL search_path TO {SHADOW_SCHEMA}, public")
            yield LedgerWriter(self, curs, partition)

    def rebuild_progress(self) -> float:
        """How far a running rebuild has read the log (0..1); 1.0 when none is running."""
        with reading(self.datastore) as curs:
            row = curs.execute("SELECT events_done, events_total, finished_at FROM projector_rebuild").fetchone()
        if row is None or row["finished_at"] is not None or not row["events_total"]:
            return 1.0
        return min(1.0, row["events_done"] / row["events_total"])

    def record_rebuild(self, done: int, total: int, finished: bool = False) -> None:
        """A rebuild's progress (its own short transaction; the rebuild's are long)."""
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                "INSERT INTO projector_rebuild (started_at, events_done, events_total, finished_at)"
                " VALUES (now(), %(d)s, %(t)s, CASE WHEN %(f)s THEN now() END) ON CONFLICT (singleton) DO UPDATE SET"
                " started_at = CASE WHEN %(d)s = 0 THEN now() ELSE projector_rebuild.started_at END,"
                " events_done = %(d)s, events_total = %(t)s, finished_at = CASE WHEN %(f)s THEN now() END",
                {"d": done, "t": total, "f": finished})

    def create_shadow(self) -> None:
        """Empty copies of every read model in the shadow schema, for a rebuild."""
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(f"DROP SCHEMA IF EXISTS {SHADOW_SCHEMA} CASCADE")
            curs.execute(f"CREATE SCHEMA {SHADOW_SCHEMA}")
            for table in READ_MODEL_TABLES:
                curs.execute(f"CREATE TABLE {SHADOW_SCHEMA}.{table} (LIKE public.{table} INCLUDING ALL)")
            # LIKE copies the serial default, which names the live table's sequence: give it its own
            curs.execute(f"CREATE SEQUENCE {SHADOW_SCHEMA}.rm_reconciliation_log_id_seq"
                         f" OWNED BY {SHADOW_SCHEMA}.rm_reconciliation_log.id")
            curs.execute(f"ALTER TABLE {SHADOW_SCHEMA}.rm_reconciliation_log ALTER COLUMN id"
                         f" SET DEFAULT nextval('{SHADOW_SCHEMA}.rm_reconciliation_log_id_seq')")

    def shadow_exists(self) -> bool:
        with reading(self.datastore) as curs:
            return curs.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s",
                                (SHADOW_SCHEMA,)).fetchone() is not None

    # ------------------------------------------------------------ reads

    def state(self, strategy_id: UUID) -> StateView:
        """GET /state: positions, current NAV and last order time, in ONE statement (one snapshot, never
        torn, one round trip)."""
        with reading(self.datastore) as curs:
            row = curs.execute(
                "SELECT l.total_equity, l.cash_balance, l.market_value, l.captured_at, l.last_order_at,"
                " p.symbols, p.quantities, p.bases, p.updated FROM (SELECT 1) AS one"
                " LEFT JOIN rm_ledger AS l ON l.strategy_id = %(s)s"
                " LEFT JOIN LATERAL (SELECT array_agg(symbol ORDER BY symbol) AS symbols,"
                " array_agg(quantity ORDER BY symbol) AS quantities, array_agg(cost_basis ORDER BY symbol) AS bases,"
                " array_agg(updated_at ORDER BY symbol) AS updated FROM rm_positions WHERE strategy_id = %(s)s) AS p"
                " ON true", {"s": strategy_id}).fetchone()
        positions = [Position(id=position_id(strategy_id, symbol), strategy_id=strategy_id, symbol=symbol,
                              quantity=quantity, cost_basis=basis, updated_at=updated)
                     for symbol, quantity, basis, updated in zip(row["symbols"] or (), row["quantities"] or (),
                                                                 row["bases"] or (), row["updated"] or ())]
        has_ledger = row["captured_at"] is not None
        return StateView(
            strategy_id=strategy_id,
            positions=positions,
            nav=Nav(row["total_equity"], row["cash_balance"], row["market_value"], row["captured_at"])
            if has_ledger else None,
            last_order_at=row["last_order_at"] if has_ledger else None,
        )

    def nav_series(self, strategy_id: UUID, start: date | None = None, end: date | None = None) -> NavSeries:
        """Daily NAV rows in [start, end] (either bound optional), oldest first."""
        with reading(self.datastore) as curs:
            rows = curs.execute(
                "SELECT date, cash, market_value, total_equity, external_flow FROM rm_nav_daily"
                " WHERE strategy_id = %s AND date >= %s AND date <= %s ORDER BY date",
                (strategy_id, start or date.min, end or date.max)).fetchall()
        return NavSeries(strategy_id, [NavRow(**r) for r in rows])

    def nav_version(self, strategy_id: UUID) -> datetime | None:
        """Moves with every projection or re-mark of the strategy (the /performance cache key)."""
        with reading(self.datastore) as curs:
            row = curs.execute("SELECT updated_at FROM rm_ledger WHERE strategy_id = %s", (strategy_id,)).fetchone()
        return None if row is None else row["updated_at"]

    def corporate_actions(self, strategy_id: UUID) -> CorporateActions:
        """The splits applied to the strategy's holdings, oldest first."""
        with reading(self.datastore) as curs:
            rows = curs.execute(
                "SELECT ex_date, symbol, split_from, split_to, quantity_before, quantity_after, cost_basis_before,"
                " cost_basis_after FROM rm_corporate_actions WHERE strategy_id = %s ORDER BY ex_date, symbol",
                (strategy_id,)).fetchall()
        return CorporateActions(strategy_id, [
            CorporateAction(kind="split", ratio=f"{_plain(r['split_to'])}:{_plain(r['split_from'])}", **r)
            for r in rows])

    def orders(self, strategy_id: UUID, after: int, limit: int) -> OrdersPage:
        """Orders in arrival order, a page at a time."""
        rows, nxt = self._page("SELECT notification_id AS cursor, event FROM rm_orders WHERE strategy_id = %s"
                               " AND notification_id > %s ORDER BY notification_id LIMIT %s", strategy_id, after, limit)
        return OrdersPage([order_of(decode_event(bytes(r["event"]))) for r in rows], nxt)

    def cash(self, strategy_id: UUID, after: int, limit: int) -> CashPage:
        """Cash events in arrival order, a page at a time."""
        rows, nxt = self._page("SELECT notification_id AS cursor, event FROM rm_cash_events WHERE strategy_id = %s"
                               " AND notification_id > %s ORDER BY notification_id LIMIT %s", strategy_id, after, limit)
        return CashPage([cash_of(decode_event(bytes(r["event"]))) for r in rows], nxt)

    def reconciliation(self, strategy_id: UUID, after: int, limit: int) -> ReconciliationPage:
        rows, nxt = self._page(
            "SELECT id AS cursor, snapshot_id, symbol, derived_quantity, derived_cost_basis, snapshot_quantity,"
            " snapshot_cost_basis, taken_at FROM rm_reconciliation_log WHERE strategy_id = %s AND id > %s"
            " ORDER BY id LIMIT %s", strategy_id, after, limit)
        return ReconciliationPage(
            [ReconciliationEntry(**{k: v for k, v in r.items() if k != "cursor"}) for r in rows], nxt)

    def snapshot_outcome(self, snapshot_id: UUID) -> SnapshotOutcome | None:
        """What the fold made of a snapshot (None until it has folded it)."""
        with reading(self.datastore) as curs:
            row = curs.execute("SELECT upserted, removed, reconciliation_entries FROM rm_snapshots WHERE id = %s",
                               (snapshot_id,)).fetchone()
        return None if row is None or row["upserted"] is None else SnapshotOutcome(**row)

    def readiness(self, last_notification_id: int) -> Readiness:
        """Projector lag behind ``last_notification_id`` and the quarantined strategies."""
        with self._snapshot() as curs:
            position = min(_positions(curs).values())
            halted = curs.execute("SELECT strategy_id, first_notification_id, skipped_events, error, quarantined_at"
                                  " FROM rm_quarantine ORDER BY quarantined_at LIMIT 100").fetchall()
        return Readiness("degraded" if halted else "ok", "ok", max(0, last_notification_id - position),
                         [Quarantined(**r) for r in halted])

    def symbols_in_use(self) -> dict[str, bool]:
        """Every symbol a strategy ever held, with whether one holds it now (for market data)."""
        with reading(self.datastore) as curs:
            rows = curs.execute("SELECT symbol, bool_or(held) AS held FROM ("
                                " SELECT symbol, false AS held FROM rm_strategy_symbols"
                                " UNION ALL SELECT symbol, true FROM rm_positions) AS s GROUP BY symbol").fetchall()
        return {r["symbol"]: r["held"] for r in rows}

    # ------------------------------------------------------------ subscribers' pages (issue 11)

    def leaderboard(self, sort: str, descending: bool, min_days: int, live_only: bool, limit: int,
                    offset: int) -> LeaderboardPage:
        """A page of public strategies with at least ``min_days`` of track record (``live_only``: at
        least ``LIVE_ONLY_MIN_SHARE`` of their orders reported live), by ``sort``, NULLs last in either
        direction, ties by strategy id; ``total`` counts the filtered board. One indexed statement."""
        if sort not in LEADERBOARD_SORTS:
            raise BadParameter(f"`sort` must be one of {', '.join(LEADERBOARD_SORTS)}; got {str(sort)[:40]!r}")
        if not 1 <= limit <= LEADERBOARD_MAX_LIMIT:
            raise BadParameter(f"`limit` must be between 1 and {LEADERBOARD_MAX_LIMIT}, got {limit}")
        if offset < 0 or min_days < 0:
            raise BadParameter("`offset` and `min_days` cannot be negative")
        filters = "visibility = 'public' AND track_days >= %(min_days)s" + (
            " AND live_share >= %(share)s" if live_only else "")
        direction = "DESC" if descending else "ASC"
        with reading(self.datastore) as curs:
            rows = curs.execute(
                f"SELECT t.total, p.* FROM (SELECT count(*) AS total FROM rm_leaderboard WHERE {filters}) AS t"
                f" LEFT JOIN LATERAL (SELECT {_LEADERBOARD_ROW} FROM rm_leaderboard WHERE {filters}"
                f" ORDER BY {sort} {direction} NULLS LAST, strategy_id LIMIT %(limit)s OFFSET %(offset)s) AS p ON true",
                {"min_days": min(min_days, 2**31 - 1), "share": LIVE_ONLY_MIN_SHARE, "limit": limit,
                 "offset": offset}).fetchall()
        items = [LeaderboardRow(rank=offset + i, **{k: v for k, v in r.items() if k != "total"})
                 for i, r in enumerate((r for r in rows if r["strategy_id"] is not None), start=1)]
        return LeaderboardPage(items, rows[0]["total"], sort, descending, min_days, live_only, limit, offset)

    def leaderboard_row(self, strategy_id: UUID) -> LeaderboardRow | None:
        """A strategy's leaderboard figures, whatever its visibility (None before its first event).

        ``rank`` is its place on the default board (``LEADERBOARD_DEFAULT_SORT`` descending, public
        strategies with at least ``LEADERBOARD_DEFAULT_MIN_DAYS`` days), 0 when it is not on it.
        """
        column = LEADERBOARD_DEFAULT_SORT
        with self._snapshot() as curs:
            row = curs.execute(f"SELECT {_LEADERBOARD_ROW}, visibility FROM rm_leaderboard WHERE strategy_id = %s",
                               (strategy_id,)).fetchone()
            if row is None:
                return None
            rank = 0
            if row["visibility"] == "public" and row["track_days"] >= LEADERBOARD_DEFAULT_MIN_DAYS:
                ahead = ("{c} > %(v)s OR ({c} = %(v)s AND strategy_id < %(s)s)" if row[column] is not None
                         else "{c} IS NOT NULL OR strategy_id < %(s)s").format(c=column)
                rank = 1 + curs.execute(
                    "SELECT count(*) AS n FROM rm_leaderboard WHERE visibility = 'public' AND track_days >= %(d)s"
                    f" AND ({ahead})", {"v": row[column], "s": strategy_id, "d": LEADERBOARD_DEFAULT_MIN_DAYS}
                ).fetchone()["n"]
        return LeaderboardRow(rank=rank, **{k: v for k, v in row.items() if k != "visibility"})

    def leaderboard_version(self) -> str:
        """Changes whenever any leaderboard row does (every write stamps ``refreshed_at`` with the clock;
        a rebuild swaps in another table): for ETags. Two index lookups."""
        with reading(self.datastore) as curs:
            row = curs.execute("SELECT 'rm_leaderboard'::regclass::oid AS t,"
                               " (SELECT max(refreshed_at) FROM rm_leaderboard) AS m").fetchone()
        return f"{row['t']}:{row['m'].isoformat() if row['m'] else '-'}"

    def chain(self, strategy_id: UUID) -> ChainHead:
        """The strategy's hash chain: event count, head digest, and the head at the end of every day."""
        with reading(self.datastore) as curs:
            rows = curs.execute("SELECT day, events, digest FROM rm_chain_days WHERE strategy_id = %s ORDER BY day",
                                (strategy_id,)).fetchall()
        days = [ChainDay(r["day"], r["events"], to_hex(bytes(r["digest"]))) for r in rows]
        return ChainHead(days[-1].events, days[-1].digest, days) if days else ChainHead(0, None, [])

    def chain_events(self, strategy_id: UUID, before: datetime | None = None) -> list[bytes]:
        """The chain as JSONL lines (each ending in a newline), in seq order: ``{"seq", "notification_id",
        "digest", "event": <the stored event JSON, verbatim>}``.

        ``before``: only the chain up to the first event that arrived (``created_at``) at or after it,
        so that the download is always a prefix that verifies from the start.
        """
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            rows = curs.execute(_chain_events_sql(before), {"s": strategy_id, "before": before}).fetchall()
        return [_chain_line(row) for row in rows]

    def recent_orders(self, strategy_id: UUID, limit: int, before: datetime | None = None) -> list[Order]:
        """The latest orders by execution time, newest first (``before``: only those that arrived before it)."""
        return [order_of(decode_event(e)) for e in self._recent(
            "rm_orders", "executed_at", strategy_id, limit, before)]

    def recent_cash(self, strategy_id: UUID, limit: int, before: datetime | None = None) -> list[CashEvent]:
        """The latest cash events by occurrence, newest first (``before``: only those that arrived before it)."""
        return [cash_of(decode_event(e)) for e in self._recent(
            "rm_cash_events", "occurred_at", strategy_id, limit, before)]

    def _recent(self, table: str, at: str, strategy_id: UUID, limit: int, before: datetime | None) -> list[bytes]:
        arrived = "" if before is None else " AND created_at < %(before)s"
        with reading(self.datastore) as curs:
            rows = curs.execute(f"SELECT event FROM {table} WHERE strategy_id = %(s)s{arrived}"
                                f" ORDER BY {at} DESC, notification_id DESC LIMIT %(limit)s",
                                {"s": strategy_id, "before": before, "limit": max(0, limit)}).fetchall()
        return [bytes(r["event"]) for r in rows]

    def chain_links(self, after: int, upto: int, strategy_id: UUID | None = None) -> dict[int, tuple[UUID, int, bytes]]:
        """``rm_chain`` rows with notification id in (after, upto] (of one strategy, or all), by
        notification id: (strategy, seq, digest). For ``botranks verify``."""
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            rows = curs.execute(
                "SELECT notification_id, strategy_id, seq, digest FROM rm_chain WHERE notification_id > %s"
                " AND notification_id <= %s AND (%s::uuid IS NULL OR strategy_id = %s)",
                (after, upto, strategy_id, strategy_id)).fetchall()
        return {nid: (sid, seq, bytes(d)) for nid, sid, seq, d in rows}

    def quarantined(self) -> set[UUID]:
        """Every strategy whose projection is halted."""
        with reading(self.datastore) as curs:
            return {r["strategy_id"] for r in curs.execute("SELECT strategy_id FROM rm_quarantine").fetchall()}

    async def positions_projected(self, database_url: str) -> AsyncIterator[tuple[int, int]]:
        """Each projection's (partition, new position), as it commits (LISTEN; the connection is this
        generator's)."""
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
            async for notify in conn.notifies():
                for pair in notify.payload.split(","):  # one or more "partition:position"
                    partition, _, position = pair.partition(":")
                    yield int(partition), int(position)

    # ------------------------------------------------------------ helpers

    @contextmanager
    def _snapshot(self) -> Iterator[psycopg.Cursor]:
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            curs.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield curs

    def _page(self, sql: str, strategy_id: UUID, after: int, limit: int) -> tuple[list[dict], str | None]:
        """Rows after the cursor (``sql`` selects a ``cursor`` column), and the next cursor if more exist."""
        with reading(self.datastore) as curs:
            rows = curs.execute(sql, (strategy_id, after, limit + 1)).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (encode_cursor(rows[-1]["cursor"]) if more and rows else None)


class LedgerWriter:
    """The projector's writes inside one transaction of the ledger view (see ``LedgerView.writing``),
    for one partition (``partition``) or for all of them (None)."""

    def __init__(self, view: LedgerView, curs: psycopg.Cursor, partition: int | None = None) -> None:
        self.view = view
        self.cursor = curs  # for the other owners' reads inside this transaction (prices, strategies)
        self.partition = partition
        self.partitions = _partitions(curs)

    def _mine(self) -> int:
        if self.partition is None:
            raise RuntimeError("a partition's position and cursors need a writer of that partition")
        return self.partition

    def in_partition(self, strategy_id: UUID) -> bool:
        """Whether ``strategy_id`` is this writer's to project (always, for a writer of every partition)."""
        return self.partition is None or partition_of(strategy_id, self.partitions) == self.partition

    # ------------------------------------------------------------ tracking

    def position(self, partition: int | None = None) -> int:
        """The position in the event log of the writer's partition (or of ``partition``, whose lock the
        writer must hold)."""
        partition = self._mine() if partition is None else partition
        return self.view._max_tracking_id(PARTITION_TRACKING.format(partition), self.cursor) or 0

    def track(self, notification_id: int, partition: int | None = None) -> None:
        """Record the new position of the writer's partition (or of ``partition``, whose lock the writer
        must hold), in this transaction (eventsourcing's exactly-once idiom: a position that does not move
        forward fails), and announce it at commit."""
        partition = self._mine() if partition is None else partition
        self.view._insert_tracking(self.cursor, Tracking(PARTITION_TRACKING.format(partition), notification_id))
        self.cursor.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, f"{partition}:{notification_id}"))

    def advance(self, partitions: Sequence[int], notification_id: int) -> list[int]:
        """Move each of ``partitions`` (whose locks the writer holds) that is behind ``notification_id``
        to it, in two statements whatever their number, and announce them at commit; returns those moved.
        For partitions with nothing to apply up to there (a position never moves back)."""
        names = [PARTITION_TRACKING.format(p) for p in partitions]
        moved = [int(r["application_name"].rsplit("p", 1)[1]) for r in self.cursor.execute(
            f"INSERT INTO {TRACKING_TABLE} (application_name, notification_id)"
            " SELECT name, %(id)s FROM unnest(%(names)s::text[]) AS name"
            f" ON CONFLICT (application_name) DO UPDATE SET notification_id = EXCLUDED.notification_id"
            f" WHERE {TRACKING_TABLE}.notification_id < EXCLUDED.notification_id RETURNING application_name",
            {"id": notification_id, "names": names}).fetchall()]
        if moved:  # NOTIFY payloads are at most 8000 bytes: 200 "partition:position" pairs a notification
            payloads = [",".join(f"{p}:{notification_id}" for p in moved[i:i + 200]) for i in range(0, len(moved), 200)]
            self.cursor.execute("SELECT pg_notify(%s, payload) FROM unnest(%s::text[]) AS payload",
                                (NOTIFY_CHANNEL, payloads))
        return sorted(moved)

    def reset_layout(self, partitions: int, notification_id: int, price_update_id: int,
                     strategy_update_id: int) -> None:
        """Lay the projection out in ``partitions`` partitions, every one at ``notification_id`` and at
        those outbox cursors (after a rebuild; the writer holds every partition's lock)."""
        if not 1 <= partitions <= MAX_PARTITIONS:
            raise ValueError(f"partitions must be between 1 and {MAX_PARTITIONS}, got {partitions}")
        self.cursor.execute(f"DELETE FROM {TRACKING_TABLE} WHERE application_name = %s"
                            " OR application_name LIKE 'projector.p%%'", (PROJECTOR,))
        self.cursor.execute("UPDATE projector_layout SET partitions = %s", (partitions,))
        self.cursor.execute("DELETE FROM projector_partition_cursors")
        self.cursor.execute(
            "INSERT INTO projector_partition_cursors (partition, price_update_id, strategy_update_id)"
            " SELECT g, %s, %s FROM generate_series(0, %s - 1) AS g", (price_update_id, strategy_update_id, partitions))
        if notification_id:
            self.cursor.execute(
                f"INSERT INTO {TRACKING_TABLE} (application_name, notification_id)"
                " SELECT 'projector.p' || g, %s FROM generate_series(0, %s - 1) AS g", (notification_id, partitions))
        self.partitions = partitions

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested transaction: an exception inside undoes only what was written inside."""
        with self.cursor.connection.transaction():
            yield

    # ------------------------------------------------------------ quarantine

    def halted(self) -> set[UUID]:
        return {r["strategy_id"] for r in self.cursor.execute("SELECT strategy_id FROM rm_quarantine").fetchall()}

    def quarantine(self, strategy_id: UUID, first: int, last: int, count: int, error: str | None) -> None:
        """Record that a strategy's projection is halted (``error`` None: more skipped events of a halted one)."""
        self.cursor.execute(
            "INSERT INTO rm_quarantine (strategy_id, first_notification_id, last_notification_id, skipped_events,"
            " error) VALUES (%s, %s, %s, %s, %s) ON CONFLICT (strategy_id) DO UPDATE SET"
            " last_notification_id = greatest(rm_quarantine.last_notification_id, EXCLUDED.last_notification_id),"
            " skipped_events = rm_quarantine.skipped_events + EXCLUDED.skipped_events",
            (strategy_id, first, last, count, "skipped" if error is None else error[:2000].replace("\x00", "")))

    # ------------------------------------------------------------ the log tables

    def insert_log_rows(self, events: Sequence[tuple[int, LedgerEvent, bytes]]) -> None:
        """Append events to the log tables with COPY (each notification arrives here once)."""
        rows: dict[str, list[tuple]] = defaultdict(list)
        for nid, event, raw in events:
            rows[event_topic(event)].append((*event.log_row(), nid, raw))
        for topic, topic_rows in rows.items():
            table, columns = _LOG_TABLES[topic]
            with self.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in topic_rows:
                    copy.write_row(row)

    def history(self, strategy_id: UUID, since: datetime | None) -> list[tuple[int, LedgerEvent]]:
        """A strategy's (notification id, event) pairs with effective time >= since, in fold order."""
        rows = self.cursor.execute(
            "SELECT notification_id, event FROM ("
            " SELECT notification_id, event, executed_at AS at FROM rm_orders WHERE strategy_id = %(s)s"
            " UNION ALL SELECT notification_id, event, occurred_at FROM rm_cash_events WHERE strategy_id = %(s)s"
            " UNION ALL SELECT notification_id, event, taken_at FROM rm_snapshots WHERE strategy_id = %(s)s"
            ") AS history WHERE at >= %(since)s ORDER BY at, notification_id",
            {"s": strategy_id, "since": since or _EPOCH},
        ).fetchall()
        return [(r["notification_id"], decode_event(bytes(r["event"]))) for r in rows]

    def logged_strategies(self) -> list[UUID]:
        return [r["strategy_id"] for r in self.cursor.execute(
            "SELECT strategy_id FROM rm_orders UNION SELECT strategy_id FROM rm_cash_events"
            " UNION SELECT strategy_id FROM rm_snapshots ORDER BY 1").fetchall()]

    # ------------------------------------------------------------ a strategy's derived state

    def remember_symbols(self, strategy_id: UUID, symbols: Iterable[str]) -> None:
        self.cursor.executemany("INSERT INTO rm_strategy_symbols (symbol, strategy_id) VALUES (%s, %s)"
                                " ON CONFLICT DO NOTHING", [(s, strategy_id) for s in sorted(symbols)])

    def ledger_row(self, strategy_id: UUID) -> dict[str, Any] | None:
        """The strategy's ``rm_ledger`` row, locked for this transaction."""
        return self.cursor.execute("SELECT * FROM rm_ledger WHERE strategy_id = %s FOR UPDATE",
                                   (strategy_id,)).fetchone()

    def last_nav_day(self, strategy_id: UUID, before: date | None = None) -> date | None:
        return self._last_day("rm_nav_daily", strategy_id, before)

    def last_checkpoint_day(self, strategy_id: UUID, before: date | None = None) -> date | None:
        return self._last_day("rm_checkpoints", strategy_id, before)

    def _last_day(self, table: str, strategy_id: UUID, before: date | None) -> date | None:
        return self.cursor.execute(f"SELECT max(date) AS d FROM {table} WHERE strategy_id = %s AND date < %s",
                                   (strategy_id, before or date.max)).fetchone()["d"]

    def checkpoint(self, strategy_id: UUID, on_or_before: date) -> tuple[date, LedgerState] | None:
        row = self.cursor.execute("SELECT date, state FROM rm_checkpoints WHERE strategy_id = %s AND date <= %s"
                                  " ORDER BY date DESC LIMIT 1", (strategy_id, on_or_before)).fetchone()
        return None if row is None else (row["date"], decode_state(row["state"]))

    def forget_after(self, strategy_id: UUID, nav_after: date | None, checkpoints_after: date | None,
                     reconciliation_since: datetime | None) -> None:
        """Drop what a re-derivation from those points on will write again."""
        self.cursor.execute("DELETE FROM rm_nav_daily WHERE strategy_id = %s AND date > %s",
                            (strategy_id, nav_after or date.min))
        self.cursor.execute("DELETE FROM rm_checkpoints WHERE strategy_id = %s AND date > %s",
                            (strategy_id, checkpoints_after or date.min))
        self.cursor.execute("DELETE FROM rm_reconciliation_log WHERE strategy_id = %s AND taken_at >= %s",
                            (strategy_id, reconciliation_since or _EPOCH))

    def forget_strategy(self, strategy_id: UUID) -> int:
        """Delete every read-model row of a deleted strategy; returns how many."""
        removed = 0
        for table in _STRATEGY_TABLES:
            self.cursor.execute(f"DELETE FROM {table} WHERE strategy_id = %s", (strategy_id,))
            removed += self.cursor.rowcount
            if table == "rm_leaderboard" and self.cursor.rowcount:
                # leaderboard_version() is the newest refreshed_at: restamp the newest row so it moves
                self.cursor.execute("UPDATE rm_leaderboard SET refreshed_at = clock_timestamp() WHERE strategy_id ="
                                    " (SELECT strategy_id FROM rm_leaderboard ORDER BY refreshed_at DESC LIMIT 1)")
        return removed

    def forget_nav_from(self, strategy_id: UUID, day: date) -> None:
        self.cursor.execute("DELETE FROM rm_nav_daily WHERE strategy_id = %s AND date >= %s", (strategy_id, day))

    def write_derivation(self, strategy_id: UUID, result: Derivation, published) -> None:
        """NAV rows, checkpoints, reconciliation entries and snapshot outcomes of one derivation.

        ``published`` rounds a derived number to the API's one precision.
        """
        if result.nav:
            with self.cursor.copy("COPY rm_nav_daily (strategy_id, date, cash, market_value, total_equity,"
                                  " external_flow) FROM STDIN") as copy:
                for n in result.nav:
                    copy.write_row((strategy_id, n.date, published(n.cash), published(n.market_value),
                                    published(n.total_equity), published(n.external_flow)))
        if result.checkpoints:  # replace from the first re-derived event day on (COPY: no conflicts left)
            self.cursor.execute("DELETE FROM rm_checkpoints WHERE strategy_id = %s AND date >= %s",
                                (strategy_id, result.checkpoints[0][0]))
            with self.cursor.copy("COPY rm_checkpoints (strategy_id, date, state) FROM STDIN") as copy:
                for d, st in result.checkpoints:
                    copy.write_row((strategy_id, d, encode_state(st)))
        if result.reconciliation:
            self.cursor.executemany(
                "INSERT INTO rm_reconciliation_log (strategy_id, snapshot_id, symbol, derived_quantity,"
                " derived_cost_basis, snapshot_quantity, snapshot_cost_basis, taken_at)"
                " VALUES (%s,%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (snapshot_id, symbol) DO NOTHING",
                [(strategy_id, e.snapshot.id, d.symbol, published(d.derived_quantity),
                  d.derived_cost_basis and published(d.derived_cost_basis), d.snapshot_quantity,
                  d.snapshot_cost_basis, e.snapshot.taken_at) for e, d in result.reconciliation])
        # the splits applied after the start state's day are the derivation's to record again
        self.cursor.execute("DELETE FROM rm_corporate_actions WHERE strategy_id = %s AND ex_date > %s",
                            (strategy_id, result.actions_after or date.min))
        if result.actions:
            self.cursor.executemany(
                "INSERT INTO rm_corporate_actions (strategy_id, ex_date, symbol, split_from, split_to, quantity_before,"
                " quantity_after, cost_basis_before, cost_basis_after) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s)"
                " ON CONFLICT (strategy_id, ex_date, symbol) DO UPDATE SET split_from = EXCLUDED.split_from,"
                " split_to = EXCLUDED.split_to, quantity_before = EXCLUDED.quantity_before,"
                " quantity_after = EXCLUDED.quantity_after, cost_basis_before = EXCLUDED.cost_basis_before,"
                " cost_basis_after = EXCLUDED.cost_basis_after",
                [(strategy_id, a.ex_date, a.symbol, a.split_from, a.split_to, published(a.quantity_before),
                  published(a.quantity_after), published(a.cost_basis_before), published(a.cost_basis_after))
                 for a in result.actions])
        if result.snapshots:
            self.cursor.executemany("UPDATE rm_snapshots SET upserted = %s, removed = %s, reconciliation_entries = %s"
                                    " WHERE id = %s", [(u, r, n, sid) for sid, u, r, n in result.snapshots])

    def positions(self, strategy_id: UUID) -> dict[str, Holding]:
        return {r["symbol"]: Holding(r["quantity"], r["cost_basis"], r["updated_at"])
                for r in self.cursor.execute("SELECT symbol, quantity, cost_basis, updated_at FROM rm_positions"
                                             " WHERE strategy_id = %s", (strategy_id,)).fetchall()}

    def write_positions(self, strategy_id: UUID, before: dict[str, Holding], after: dict[str, Holding]) -> None:
        """Make ``rm_positions`` go from ``before`` (as stored) to ``after``, touching only what changed."""
        removed = [s for s in before if s not in after]
        changed = [(strategy_id, s, h.quantity, h.cost_basis, h.updated_at) for s, h in after.items()
                   if s not in before or before[s] != h]
        if removed:
            self.cursor.execute("DELETE FROM rm_positions WHERE strategy_id = %s AND symbol = ANY(%s)",
                                (strategy_id, removed))
        if changed:
            self.cursor.executemany(
                "INSERT INTO rm_positions (strategy_id, symbol, quantity, cost_basis, updated_at)"
                " VALUES (%s,%s,%s,%s,%s) ON CONFLICT (strategy_id, symbol) DO UPDATE SET"
                " quantity = EXCLUDED.quantity, cost_basis = EXCLUDED.cost_basis, updated_at = EXCLUDED.updated_at",
                changed)

    def write_ledger(self, strategy_id: UUID, *, cash_balance, realized_pnl, external_flows, market_value,
                     total_equity, captured_at: datetime, last_order_at: datetime | None,
                     last_key: tuple[datetime, int], state: LedgerState, inception: date | None,
                     tail: tuple[date, LedgerState] | None) -> None:
        self.cursor.execute(
            "INSERT INTO rm_ledger (strategy_id, cash_balance, realized_pnl, external_flows, market_value,"
            " total_equity, captured_at, last_order_at, last_effective_at, last_notification_id, state,"
            " inception_date, tail_day, tail_state, updated_at)"
            " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s, now()) ON CONFLICT (strategy_id) DO UPDATE SET"
            " cash_balance = EXCLUDED.cash_balance, realized_pnl = EXCLUDED.realized_pnl,"
            " external_flows = EXCLUDED.external_flows, market_value = EXCLUDED.market_value,"
            " total_equity = EXCLUDED.total_equity, captured_at = EXCLUDED.captured_at,"
            " last_order_at = EXCLUDED.last_order_at, last_effective_at = EXCLUDED.last_effective_at,"
            " last_notification_id = EXCLUDED.last_notification_id, state = EXCLUDED.state,"
            " inception_date = EXCLUDED.inception_date, tail_day = EXCLUDED.tail_day,"
            " tail_state = EXCLUDED.tail_state, updated_at = now()",
            (strategy_id, cash_balance, realized_pnl, external_flows, market_value, total_equity, captured_at,
             last_order_at, last_key[0], last_key[1], encode_state(state), inception,
             tail and tail[0], tail and encode_state(tail[1])),
        )

    # ------------------------------------------------------------ re-marking for new prices

    def price_update_position(self) -> int:
        """The last price-outbox id the partition has re-marked for."""
        return self.cursor.execute("SELECT price_update_id FROM projector_partition_cursors WHERE partition = %s",
                                   (self._mine(),)).fetchone()["price_update_id"]

    def move_price_cursor(self, update_id: int) -> None:
        self.cursor.execute("UPDATE projector_partition_cursors SET price_update_id = %s WHERE partition = %s",
                            (update_id, self._mine()))

    def strategies_holding(self, symbols: Iterable[str]) -> dict[UUID, set[str]]:
        """The strategies that ever held any of ``symbols`` (and which of them)."""
        found: dict[UUID, set[str]] = defaultdict(set)
        for r in self.cursor.execute("SELECT strategy_id, symbol FROM rm_strategy_symbols WHERE symbol = ANY(%s)",
                                     (list(symbols),)).fetchall():
            found[r["strategy_id"]].add(r["symbol"])
        return found

    def projected(self, strategy_ids: Iterable[UUID]) -> set[UUID]:
        """Those of ``strategy_ids`` that have a ledger (at least one event folded)."""
        return {r["strategy_id"] for r in self.cursor.execute(
            "SELECT strategy_id FROM rm_ledger WHERE strategy_id = ANY(%s)", (list(strategy_ids),)).fetchall()}

    # ------------------------------------------------------------ the hash chain

    def chain_heads(self, strategy_ids: Iterable[UUID]) -> dict[UUID, Link]:
        """Each strategy's chain head (its latest day's row; ``notification_id`` 0), for extending it."""
        rows = self.cursor.execute(
            "SELECT DISTINCT ON (strategy_id) strategy_id, day, events, digest, last_created_at FROM rm_chain_days"
            " WHERE strategy_id = ANY(%s) ORDER BY strategy_id, day DESC", (list(strategy_ids),)).fetchall()
        return {r["strategy_id"]: Link(r["events"], 0, bytes(r["digest"]), r["day"], r["last_created_at"])
                for r in rows}

    def append_chain(self, links: dict[UUID, list[Link]]) -> None:
        """New links (COPY) and the new head of every day they reach."""
        heads: dict[tuple[UUID, date], Link] = {}
        with self.cursor.copy("COPY rm_chain (strategy_id, seq, notification_id, digest, day, created_at)"
                              " FROM STDIN") as copy:
            for strategy_id, chain in links.items():
                for link in chain:
                    copy.write_row((strategy_id, link.seq, link.notification_id, link.digest, link.day,
                                    link.created_at))
                    heads[(strategy_id, link.day)] = link
        if heads:
            self.cursor.executemany(
                "INSERT INTO rm_chain_days (strategy_id, day, events, digest, last_created_at)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (strategy_id, day) DO UPDATE SET"
                " events = EXCLUDED.events, digest = EXCLUDED.digest, last_created_at = EXCLUDED.last_created_at",
                [(s, day, link.seq, link.digest, link.created_at) for (s, day), link in heads.items()])

    # ------------------------------------------------------------ the leaderboard

    def strategy_update_position(self) -> int:
        """The last ``strategy_updates`` id the partition has applied to the leaderboard."""
        return self.cursor.execute("SELECT strategy_update_id FROM projector_partition_cursors WHERE partition = %s",
                                   (self._mine(),)).fetchone()["strategy_update_id"]

    def move_strategy_update_cursor(self, update_id: int) -> None:
        self.cursor.execute("UPDATE projector_partition_cursors SET strategy_update_id = %s WHERE partition = %s",
                            (update_id, self._mine()))

    def stale_leaderboard(self, limit: int) -> list[UUID]:
        """Strategies (of the writer's partition) whose leaderboard row is missing or was computed from
        another NAV version."""
        mine = "" if self.partition is None else \
            " AND botranks_strategy_partition(l.strategy_id::text, %(p)s) = %(mine)s"
        return [r["strategy_id"] for r in self.cursor.execute(
            "SELECT l.strategy_id FROM rm_ledger AS l LEFT JOIN rm_leaderboard AS b USING (strategy_id)"
            f" WHERE b.nav_version IS DISTINCT FROM l.updated_at{mine} LIMIT %(limit)s",
            {"limit": limit, "p": self.partitions, "mine": self.partition}).fetchall()]

    def leaderboard_inputs(self, strategy_id: UUID) -> dict[str, Any] | None:
        """What a strategy's leaderboard row is computed from (None without a ledger): its NAV version,
        NAV rows (``NavRow``), order counts, and its last arrival."""
        row = self.cursor.execute(
            "SELECT l.updated_at AS nav_version,"
            " (SELECT last_created_at FROM rm_chain_days WHERE strategy_id = %(s)s ORDER BY day DESC LIMIT 1)"
            " AS last_activity, o.orders, o.live_orders FROM rm_ledger AS l,"
            " LATERAL (SELECT count(*) AS orders, count(*) FILTER (WHERE created_at - executed_at"
            " <= make_interval(secs => %(live)s)) AS live_orders FROM rm_orders WHERE strategy_id = %(s)s) AS o"
            " WHERE l.strategy_id = %(s)s", {"s": strategy_id, "live": LIVE_REPORTING_S}).fetchone()
        if row is None:
            return None
        with self.cursor.connection.cursor(row_factory=args_row(NavRow)) as navs:
            row["nav"] = navs.execute("SELECT date, cash, market_value, total_equity, external_flow FROM rm_nav_daily"
                                      " WHERE strategy_id = %s ORDER BY date", (strategy_id,)).fetchall()
        return row

    def write_leaderboard(self, rows: Sequence[dict[str, Any]]) -> None:
        """Upsert leaderboard rows (``LEADERBOARD_COLUMNS``), each stamped with the clock of its write."""
        if not rows:
            return
        columns = ", ".join(LEADERBOARD_COLUMNS)
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in LEADERBOARD_COLUMNS[1:])
        self.cursor.executemany(
            f"INSERT INTO rm_leaderboard ({columns}, refreshed_at) VALUES"
            f" ({', '.join(['%s'] * len(LEADERBOARD_COLUMNS))}, clock_timestamp())"
            f" ON CONFLICT (strategy_id) DO UPDATE SET {updates}, refreshed_at = clock_timestamp()",
            [tuple(r[c] for c in LEADERBOARD_COLUMNS) for r in rows])

    # ------------------------------------------------------------ rebuild

    def swap_in_shadow(self) -> None:
        """Replace every live read model by the rebuild's (inside the caller's locked transaction)."""
        self.cursor.execute("SET LOCAL search_path TO public")
        for table in READ_MODEL_TABLES:
            self.cursor.execute(f"DROP TABLE public.{table}")
            self.cursor.execute(f"ALTER TABLE {SHADOW_SCHEMA}.{table} SET SCHEMA public")
        self.cursor.execute(f"DROP SCHEMA {SHADOW_SCHEMA}")


# ---------------------------------------------------------------- downloads, streamed (issue 19)
#
# Self-contained: a download reads through a server-side cursor (a psycopg named cursor, which lives
# in a transaction) ``rows`` rows at a time, so a process's memory does not grow with a strategy's
# history. The generators hold a pooled connection until they finish or are closed.

#: rows a streamed download fetches from its server-side cursor at a time
STREAM_ROWS = 500


def _chain_events_sql(before: datetime | None) -> str:
    """The chain joined with the stored events, in seq order (``before``: the prefix that arrived before it)."""
    stop = ("" if before is None else
            " AND c.seq < coalesce((SELECT min(seq) FROM rm_chain WHERE strategy_id = %(s)s"
            " AND created_at >= %(before)s), 2147483647)")
    return (f"SELECT c.seq, c.notification_id, c.digest, e.event FROM rm_chain AS c JOIN ({_LOG_EVENTS}) AS e"
            f" USING (notification_id) WHERE c.strategy_id = %(s)s{stop} ORDER BY c.seq")


def _chain_line(row: tuple) -> bytes:
    seq, nid, digest, event = row
    return chain_line(Link(seq, nid, bytes(digest), date.min, _EPOCH), bytes(event))


@contextmanager
def _server_cursor(datastore: PostgresDatastore, name: str, sql: str, params: dict[str, Any], rows: int,
                   idle_timeout_s: float | None) -> Iterator[psycopg.Cursor]:
    """A named (server-side) cursor over ``sql`` in a read-only transaction on a pooled connection.

    ``idle_timeout_s``: PostgreSQL ends the transaction if nothing is fetched for that long (a stuck
    reader must not hold a snapshot, and with it vacuum, for ever)."""
    with datastore.get_connection() as conn, conn.transaction():
        conn.execute("SET TRANSACTION READ ONLY")
        # plan the cursor as a one-shot read (total cost, not the first rows'): the fast-start plan of the
        # chain's join with the log tables is a quadratic nested loop under stale statistics (measured:
        # 6.7 s per FETCH of 500 rows of a freshly loaded 100k-event strategy)
        conn.execute("SET LOCAL cursor_tuple_fraction = 1.0")
        if idle_timeout_s:
            conn.execute("SELECT set_config('idle_in_transaction_session_timeout', %s, true)",
                         (f"{int(idle_timeout_s * 1000)}ms",))
        with conn.cursor(name, row_factory=tuple_row) as curs:
            curs.itersize = rows
            curs.execute(sql, params)
            yield curs


def stream_chain_events(datastore: PostgresDatastore, strategy_id: UUID, before: datetime | None = None,
                        rows: int = STREAM_ROWS, idle_timeout_s: float | None = None) -> Iterator[bytes]:
    """``LedgerView.chain_events``' lines, byte for byte, joined ``rows`` lines a chunk."""
    with _server_cursor(datastore, "botranks_chain_download", _chain_events_sql(before),
                        {"s": strategy_id, "before": before}, rows, idle_timeout_s) as curs:
        while batch := curs.fetchmany(rows):
            yield b"".join(_chain_line(row) for row in batch)


def stream_nav_rows(datastore: PostgresDatastore, strategy_id: UUID, start: date | None = None,
                    end: date | None = None, rows: int = STREAM_ROWS,
                    idle_timeout_s: float | None = None) -> Iterator[list[NavRow]]:
    """``LedgerView.nav_series``' rows, oldest first, up to ``rows`` a chunk."""
    with _server_cursor(datastore, "botranks_nav_download",
                        "SELECT date, cash, market_value, total_equity, external_flow FROM rm_nav_daily"
                        " WHERE strategy_id = %(s)s AND date >= %(start)s AND date <= %(end)s ORDER BY date",
                        {"s": strategy_id, "start": start or date.min, "end": end or date.max}, rows,
                        idle_timeout_s) as curs:
        while batch := curs.fetchmany(rows):
            yield [NavRow(*row) for row in batch]
