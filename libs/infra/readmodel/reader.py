"""The read models as the APIs and pages read them: :class:`LedgerReader` (``Database.ledger``)
and the streamed downloads. Reads only; the projector writes (``writer``)."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.postgres import PostgresDatastore
from psycopg.rows import tuple_row

from botranks_domain.chain import Link, to_hex
from botranks_domain.chain import line as chain_line
from botranks_domain.model import (
    CashEvent,
    Order,
    Position,
    PositionsSnapshotted,
    cash_of,
    decode_event,
    order_of,
    position_id,
)
from botranks_domain.nav import NavRow
from botranks_domain.views import (
    CashPage,
    ChainDay,
    ChainHead,
    CorporateAction,
    CorporateActions,
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

from ..pg import one, reading
from .board_reads import BoardReads
from .tables import EPOCH, LOG_EVENTS, positions_of
from .trade_reads import TradesReader


def _plain(value) -> str:
    return format(value.normalize(), "f")


class LedgerReader(BoardReads):
    """Every read of the read models the APIs and pages make (each its own snapshot)."""

    def __init__(self, datastore: PostgresDatastore) -> None:
        self.datastore = datastore
        self.trades = TradesReader(datastore)

    # ------------------------------------------------------------ reads

    def state(self, strategy_id: UUID) -> StateView:
        """GET /state: positions, current NAV and last order time, in ONE statement (one snapshot, never
        torn, one round trip)."""
        with reading(self.datastore) as curs:  # one row (``FROM (SELECT 1)``), with or without a ledger
            curs.execute(
                "SELECT l.total_equity, l.cash_balance, l.market_value, l.captured_at, l.last_order_at,"
                " p.symbols, p.quantities, p.bases, p.updated FROM (SELECT 1) AS one"
                " LEFT JOIN rm_ledger AS l ON l.strategy_id = %(s)s"
                " LEFT JOIN LATERAL (SELECT array_agg(symbol ORDER BY symbol) AS symbols,"
                " array_agg(quantity ORDER BY symbol) AS quantities, array_agg(cost_basis ORDER BY symbol) AS bases,"
                " array_agg(updated_at ORDER BY symbol) AS updated FROM rm_positions WHERE strategy_id = %(s)s) AS p"
                " ON true",
                {"s": strategy_id},
            )
            row = one(curs)
        positions = [
            Position(
                id=position_id(strategy_id, symbol),
                strategy_id=strategy_id,
                symbol=symbol,
                quantity=quantity,
                cost_basis=basis,
                updated_at=updated,
            )
            for symbol, quantity, basis, updated in zip(
                row["symbols"] or (), row["quantities"] or (), row["bases"] or (), row["updated"] or (), strict=True
            )
        ]
        has_ledger = row["captured_at"] is not None
        return StateView(
            strategy_id=strategy_id,
            positions=positions,
            nav=Nav(row["total_equity"], row["cash_balance"], row["market_value"], row["captured_at"])
            if has_ledger
            else None,
            last_order_at=row["last_order_at"] if has_ledger else None,
        )

    def nav_series(self, strategy_id: UUID, start: date | None = None, end: date | None = None) -> NavSeries:
        """Daily NAV rows in [start, end] (either bound optional), oldest first."""
        with reading(self.datastore) as curs:
            rows = curs.execute(
                "SELECT date, cash, market_value, total_equity, external_flow FROM rm_nav_daily"
                " WHERE strategy_id = %s AND date >= %s AND date <= %s ORDER BY date",
                (strategy_id, start or date.min, end or date.max),
            ).fetchall()
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
                (strategy_id,),
            ).fetchall()
        return CorporateActions(
            strategy_id,
            [
                CorporateAction(kind="split", ratio=f"{_plain(r['split_to'])}:{_plain(r['split_from'])}", **r)
                for r in rows
            ],
        )

    def orders(self, strategy_id: UUID, after: int, limit: int) -> OrdersPage:
        """Orders in arrival order, a page at a time."""
        rows, nxt = self._page(
            "SELECT notification_id AS cursor, event FROM rm_orders WHERE strategy_id = %s"
            " AND notification_id > %s ORDER BY notification_id LIMIT %s",
            strategy_id,
            after,
            limit,
        )
        return OrdersPage([order_of(decode_event(bytes(r["event"]))) for r in rows], nxt)

    def cash(self, strategy_id: UUID, after: int, limit: int) -> CashPage:
        """Cash events in arrival order, a page at a time."""
        rows, nxt = self._page(
            "SELECT notification_id AS cursor, event FROM rm_cash_events WHERE strategy_id = %s"
            " AND notification_id > %s ORDER BY notification_id LIMIT %s",
            strategy_id,
            after,
            limit,
        )
        return CashPage([cash_of(decode_event(bytes(r["event"]))) for r in rows], nxt)

    def reconciliation(self, strategy_id: UUID, after: int, limit: int) -> ReconciliationPage:
        rows, nxt = self._page(
            "SELECT id AS cursor, snapshot_id, symbol, derived_quantity, derived_cost_basis, snapshot_quantity,"
            " snapshot_cost_basis, taken_at FROM rm_reconciliation_log WHERE strategy_id = %s AND id > %s"
            " ORDER BY id LIMIT %s",
            strategy_id,
            after,
            limit,
        )
        return ReconciliationPage(
            [ReconciliationEntry(**{k: v for k, v in r.items() if k != "cursor"}) for r in rows], nxt
        )

    def snapshot_outcome(self, snapshot_id: UUID) -> SnapshotOutcome | None:
        """What the fold made of a snapshot (None until it has folded it)."""
        with reading(self.datastore) as curs:
            row = curs.execute(
                "SELECT upserted, removed, reconciliation_entries FROM rm_snapshots WHERE id = %s", (snapshot_id,)
            ).fetchone()
        return None if row is None or row["upserted"] is None else SnapshotOutcome(**row)

    def readiness(self, last_notification_id: int) -> Readiness:
        """Projector lag behind ``last_notification_id`` and the quarantined strategies."""
        with self._snapshot() as curs:
            position = min(positions_of(curs).values())
            halted = curs.execute(
                "SELECT strategy_id, first_notification_id, skipped_events, error, quarantined_at"
                " FROM rm_quarantine ORDER BY quarantined_at LIMIT 100"
            ).fetchall()
        return Readiness(
            "degraded" if halted else "ok",
            "ok",
            max(0, last_notification_id - position),
            [Quarantined(**r) for r in halted],
        )

    def symbols_in_use(self) -> dict[str, bool]:
        """Every symbol a strategy ever held, with whether one holds it now (for market data)."""
        with reading(self.datastore) as curs:
            rows = curs.execute(
                "SELECT symbol, bool_or(held) AS held FROM ("
                " SELECT symbol, false AS held FROM rm_strategy_symbols"
                " UNION ALL SELECT symbol, true FROM rm_positions) AS s GROUP BY symbol"
            ).fetchall()
        return {r["symbol"]: r["held"] for r in rows}

    def first_uses(self, strategy_id: UUID) -> set[tuple[str, date]]:
        """Each symbol's first filled / partial order day and every snapshot's (symbol, day) of a non-zero
        position, in UTC: what a change of base currency needs FX rates for."""
        with reading(self.datastore) as curs:
            rows = curs.execute(
                "SELECT symbol, min(executed_at) AS at FROM rm_orders WHERE strategy_id = %s"
                " AND status IN ('filled', 'partial') GROUP BY symbol",
                (strategy_id,),
            ).fetchall()
            snapshots = curs.execute("SELECT event FROM rm_snapshots WHERE strategy_id = %s", (strategy_id,)).fetchall()
        uses = {(r["symbol"], r["at"].astimezone(UTC).date()) for r in rows}
        for r in snapshots:
            event = decode_event(bytes(r["event"]))
            if isinstance(event, PositionsSnapshotted):
                day = event.snapshot.taken_at.astimezone(UTC).date()
                uses |= {(p.symbol, day) for p in event.snapshot.positions if p.quantity}
        return uses

    # ------------------------------------------------------------ subscribers' pages (issue 11)

    def chain(self, strategy_id: UUID) -> ChainHead:
        """The strategy's hash chain: event count, head digest, and the head at the end of every day."""
        with reading(self.datastore) as curs:
            rows = curs.execute(
                "SELECT day, events, digest FROM rm_chain_days WHERE strategy_id = %s ORDER BY day", (strategy_id,)
            ).fetchall()
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
        """The latest orders by execution time, newest first (``before``: only those executed before it)."""
        return [order_of(decode_event(e)) for e in self._recent("rm_orders", "executed_at", strategy_id, limit, before)]

    def recent_cash(self, strategy_id: UUID, limit: int, before: datetime | None = None) -> list[CashEvent]:
        """The latest cash events by occurrence, newest first (``before``: only those that occurred before it)."""
        return [
            cash_of(decode_event(e)) for e in self._recent("rm_cash_events", "occurred_at", strategy_id, limit, before)
        ]

    def orders_by_execution(
        self, strategy_id: UUID, offset: int, limit: int, before: datetime | None = None
    ) -> tuple[list[Order], int]:
        """A page of the orders, the latest executed first (ties: the latest arrived first, so the order
        is total and pages never overlap), and how many there are in all, from one snapshot
        (``before``: only those executed before it: delayed publication)."""
        happened = "" if before is None else " AND executed_at < %(before)s"
        args = {"s": strategy_id, "before": before, "limit": max(0, limit), "offset": max(0, offset)}
        with self._snapshot() as curs:
            total = curs.execute(
                f"SELECT count(*) AS n FROM rm_orders WHERE strategy_id = %(s)s{happened}", args
            ).fetchone()
            rows = curs.execute(
                f"SELECT event FROM rm_orders WHERE strategy_id = %(s)s{happened}"
                " ORDER BY executed_at DESC, notification_id DESC LIMIT %(limit)s OFFSET %(offset)s",
                args,
            ).fetchall()
        return [order_of(decode_event(bytes(r["event"]))) for r in rows], int(total["n"]) if total else 0

    def _recent(self, table: str, at: str, strategy_id: UUID, limit: int, before: datetime | None) -> list[bytes]:
        # delayed publication: what happened more than the delay ago (issue 24), whenever it was reported
        happened = "" if before is None else f" AND {at} < %(before)s"
        with reading(self.datastore) as curs:
            rows = curs.execute(
                f"SELECT event FROM {table} WHERE strategy_id = %(s)s{happened}"
                f" ORDER BY {at} DESC, notification_id DESC LIMIT %(limit)s",
                {"s": strategy_id, "before": before, "limit": max(0, limit)},
            ).fetchall()
        return [bytes(r["event"]) for r in rows]

    def chain_links(self, after: int, upto: int, strategy_id: UUID | None = None) -> dict[int, tuple[UUID, int, bytes]]:
        """``rm_chain`` rows with notification id in (after, upto] (of one strategy, or all), by
        notification id: (strategy, seq, digest). For ``botranks verify``."""
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            rows = curs.execute(
                "SELECT notification_id, strategy_id, seq, digest FROM rm_chain WHERE notification_id > %s"
                " AND notification_id <= %s AND (%s::uuid IS NULL OR strategy_id = %s)",
                (after, upto, strategy_id, strategy_id),
            ).fetchall()
        return {nid: (sid, seq, bytes(d)) for nid, sid, seq, d in rows}

    def quarantined(self) -> set[UUID]:
        """Every strategy whose projection is halted."""
        with reading(self.datastore) as curs:
            return {r["strategy_id"] for r in curs.execute("SELECT strategy_id FROM rm_quarantine").fetchall()}

    # ------------------------------------------------------------ helpers

    def _page(self, sql: str, strategy_id: UUID, after: int, limit: int) -> tuple[list[dict], str | None]:
        """Rows after the cursor (``sql`` selects a ``cursor`` column), and the next cursor if more exist."""
        with reading(self.datastore) as curs:
            rows = curs.execute(sql, (strategy_id, after, limit + 1)).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (encode_cursor(rows[-1]["cursor"]) if more and rows else None)


# ---------------------------------------------------------------- downloads, streamed (issue 19)
#
# Self-contained: a download reads through a server-side cursor (a psycopg named cursor, which lives
# in a transaction) ``rows`` rows at a time, so a process's memory does not grow with a strategy's
# history. The generators hold a pooled connection until they finish or are closed.

#: rows a streamed download fetches from its server-side cursor at a time
STREAM_ROWS = 500


def _chain_events_sql(before: datetime | None) -> str:
    """The chain joined with the stored events, in seq order (``before``: the prefix that arrived before it)."""
    stop = (
        ""
        if before is None
        else " AND c.seq < coalesce((SELECT min(seq) FROM rm_chain WHERE strategy_id = %(s)s"
        " AND created_at >= %(before)s), 2147483647)"
    )
    return (
        f"SELECT c.seq, c.notification_id, c.digest, e.event FROM rm_chain AS c JOIN ({LOG_EVENTS}) AS e"
        f" USING (notification_id) WHERE c.strategy_id = %(s)s{stop} ORDER BY c.seq"
    )


def _chain_line(row: tuple) -> bytes:
    seq, nid, digest, event = row
    return chain_line(Link(seq, nid, bytes(digest), date.min, EPOCH), bytes(event))


@contextmanager
def _server_cursor(
    datastore: PostgresDatastore, name: str, sql: str, params: dict[str, Any], rows: int, idle_timeout_s: float | None
) -> Iterator[psycopg.Cursor]:
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
            conn.execute(
                "SELECT set_config('idle_in_transaction_session_timeout', %s, true)",
                (f"{int(idle_timeout_s * 1000)}ms",),
            )
        with conn.cursor(name, row_factory=tuple_row) as curs:
            curs.itersize = rows
            curs.execute(sql, params)
            yield curs


def stream_chain_events(
    datastore: PostgresDatastore,
    strategy_id: UUID,
    before: datetime | None = None,
    rows: int = STREAM_ROWS,
    idle_timeout_s: float | None = None,
) -> Generator[bytes, None, None]:
    """``LedgerReader.chain_events``' lines, byte for byte, joined ``rows`` lines a chunk."""
    with _server_cursor(
        datastore,
        "botranks_chain_download",
        _chain_events_sql(before),
        {"s": strategy_id, "before": before},
        rows,
        idle_timeout_s,
    ) as curs:
        while batch := curs.fetchmany(rows):
            yield b"".join(_chain_line(row) for row in batch)


def stream_nav_rows(
    datastore: PostgresDatastore,
    strategy_id: UUID,
    start: date | None = None,
    end: date | None = None,
    rows: int = STREAM_ROWS,
    idle_timeout_s: float | None = None,
) -> Generator[list[NavRow], None, None]:
    """``LedgerReader.nav_series``' rows, oldest first, up to ``rows`` a chunk."""
    with _server_cursor(
        datastore,
        "botranks_nav_download",
        "SELECT date, cash, market_value, total_equity, external_flow FROM rm_nav_daily"
        " WHERE strategy_id = %(s)s AND date >= %(start)s AND date <= %(end)s ORDER BY date",
        {"s": strategy_id, "start": start or date.min, "end": end or date.max},
        rows,
        idle_timeout_s,
    ) as curs:
        while batch := curs.fetchmany(rows):
            yield [NavRow(*row) for row in batch]
