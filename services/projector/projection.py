"""Folding event-store notifications into the read models, exactly once in effect.

Each batch is one PostgreSQL transaction that writes the read models AND moves the
tracking position (eventsourcing's tracking recorder): a crash anywhere leaves either
both or neither. A transaction-level advisory lock keeps the daemon and ``rebuild``
from interleaving.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, time as dtime, timezone
from decimal import Decimal
from uuid import UUID

import msgspec
import structlog
from eventsourcing.persistence import Tracking

from libs.domain.ledger import Delta, Holding, Ledger, ZERO
from libs.domain.model import (
    CashRecorded,
    LedgerEvent,
    OrderRecorded,
    PositionsSnapshotted,
    decode_event,
    effective_at,
    event_strategy,
)
from libs.infra.store import EventStore, Notification

APPLICATION_NAME = "projector"
PROJECTOR_LOCK = 0x42_07_5A_03
READ_MODEL_TABLES = ("rm_orders", "rm_cash_events", "rm_snapshots", "rm_positions", "rm_ledger",
                     "rm_reconciliation_log")

log = structlog.get_logger(component="projector")
_json = msgspec.json.Encoder()


def tracked_position(store: EventStore) -> int:
    return store.tracking.max_tracking_id(APPLICATION_NAME) or 0


def project(store: EventStore, notifications: Sequence[Notification]) -> int:
    """Apply notifications (any order, duplicates allowed) once; returns how many were new."""
    if not notifications:
        return 0
    started = time.perf_counter()
    with store.transaction() as curs:
        curs.execute("SELECT pg_advisory_xact_lock(%s)", (PROJECTOR_LOCK,))
        current = store.tracking._max_tracking_id(APPLICATION_NAME, curs) or 0
        fresh = sorted({n.id: n for n in notifications if n.id > current}.values(), key=lambda n: n.id)
        if not fresh:
            return 0
        decoded = [(n.id, decode_event(n.state), n.state) for n in fresh]
        _insert_log_rows(curs, decoded)
        by_strategy: dict[UUID, list[tuple[int, LedgerEvent]]] = defaultdict(list)
        for nid, event, _ in decoded:
            by_strategy[event_strategy(event)].append((nid, event))
        refolds = 0
        for strategy_id, strategy_events in by_strategy.items():
            refolds += _project_strategy(curs, strategy_id, strategy_events)
        # eventsourcing's exactly-once idiom: tracking in the same transaction
        store.tracking._insert_tracking(curs, Tracking(APPLICATION_NAME, fresh[-1].id))
    log.info("projected", events=len(fresh), strategies=len(by_strategy), refolds=refolds,
             up_to=fresh[-1].id, duration_ms=round((time.perf_counter() - started) * 1000, 2))
    return len(fresh)


LOG_TABLES = {
    OrderRecorded: ("rm_orders", "id, strategy_id, symbol, side, quantity, price, fees, order_type, status,"
                    " executed_at, created_at, external_order_id, details, notification_id, event"),
    CashRecorded: ("rm_cash_events", "id, strategy_id, event_type, amount, occurred_at, external_id,"
                   " related_symbol, note, created_at, notification_id, event"),
    PositionsSnapshotted: ("rm_snapshots", "id, strategy_id, taken_at, notification_id, event"),
}


def _log_row(nid: int, event: LedgerEvent, raw: bytes) -> tuple:
    if isinstance(event, OrderRecorded):
        o = event.order
        details = None if o.details is None else _json.encode(o.details).decode()
        return (o.id, o.strategy_id, o.symbol, o.side, o.quantity, o.price, o.fees, o.order_type, o.status,
                o.executed_at, o.created_at, o.external_order_id, details, nid, raw)
    if isinstance(event, CashRecorded):
        c = event.cash
        return (c.id, c.strategy_id, c.event_type, c.amount, c.occurred_at, c.external_id, c.related_symbol,
                c.note, c.created_at, nid, raw)
    s = event.snapshot
    return (s.id, s.strategy_id, s.taken_at, nid, raw)


def _insert_log_rows(curs, events: list[tuple[int, LedgerEvent, bytes]]) -> None:
    """Append the events to the log tables with COPY (each notification arrives here once)."""
    rows: dict[type, list[tuple]] = defaultdict(list)
    for nid, event, raw in events:
        rows[type(event)].append(_log_row(nid, event, raw))
    for kind, kind_rows in rows.items():
        table, columns = LOG_TABLES[kind]
        with curs.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in kind_rows:
                copy.write_row(row)


def _key(nid: int, event: LedgerEvent) -> tuple[datetime, int]:
    return effective_at(event), nid


def _load_history(curs, strategy_id: UUID) -> list[tuple[int, LedgerEvent]]:
    rows = curs.execute(
        "SELECT notification_id, event, at FROM ("
        " SELECT notification_id, event, executed_at AS at FROM rm_orders WHERE strategy_id = %(s)s"
        " UNION ALL SELECT notification_id, event, occurred_at FROM rm_cash_events WHERE strategy_id = %(s)s"
        " UNION ALL SELECT notification_id, event, taken_at FROM rm_snapshots WHERE strategy_id = %(s)s"
        ") AS history ORDER BY at, notification_id",
        {"s": strategy_id},
    ).fetchall()
    return [(r["notification_id"], decode_event(bytes(r["event"]))) for r in rows]


def _project_strategy(curs, strategy_id: UUID, new_events: list[tuple[int, LedgerEvent]]) -> int:
    """Fold a strategy's new events; incremental when they all come after what is folded."""
    row = curs.execute("SELECT * FROM rm_ledger WHERE strategy_id = %s FOR UPDATE", (strategy_id,)).fetchone()
    stored_positions = {
        r["symbol"]: Holding(r["quantity"], r["cost_basis"], r["updated_at"])
        for r in curs.execute("SELECT symbol, quantity, cost_basis, updated_at FROM rm_positions"
                              " WHERE strategy_id = %s", (strategy_id,)).fetchall()
    }
    new_events.sort(key=lambda item: _key(*item))
    appended = row is None or _key(*new_events[0]) > (row["last_effective_at"], row["last_notification_id"])
    if appended:
        ledger = Ledger(positions={s: Holding(h.quantity, h.cost_basis, h.updated_at)
                                   for s, h in stored_positions.items()})
        if row is not None:
            ledger.cash, ledger.realized_pnl = row["cash_balance"], row["realized_pnl"]
            ledger.external_flows, ledger.last_order_at = row["external_flows"], row["last_order_at"]
        history = new_events
    else:
        ledger = Ledger()
        history = _load_history(curs, strategy_id)
        curs.execute("DELETE FROM rm_reconciliation_log WHERE strategy_id = %s", (strategy_id,))
    reconciliation = []
    for _, event in history:
        deltas = ledger.apply(event)
        if deltas and isinstance(event, PositionsSnapshotted) and event.snapshot.log_deltas:
            reconciliation.extend(_reconciliation_row(strategy_id, event, d) for d in deltas)
    if reconciliation:
        curs.executemany(
            "INSERT INTO rm_reconciliation_log (strategy_id, snapshot_id, symbol, derived_quantity,"
            " derived_cost_basis, snapshot_quantity, snapshot_cost_basis, taken_at)"
            " VALUES (%s,%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (snapshot_id, symbol) DO NOTHING", reconciliation)
    _write_positions(curs, strategy_id, stored_positions, ledger.positions)
    last_nid, last_event = history[-1]
    _write_ledger(curs, strategy_id, ledger, effective_at(last_event), last_nid)
    return 0 if appended else 1


def _reconciliation_row(strategy_id: UUID, event: PositionsSnapshotted, d: Delta) -> tuple:
    return (strategy_id, event.snapshot.id, d.symbol, d.derived_quantity, d.derived_cost_basis,
            d.snapshot_quantity, d.snapshot_cost_basis, event.snapshot.taken_at)


def _write_positions(curs, strategy_id: UUID, before: dict[str, Holding], after: dict[str, Holding]) -> None:
    removed = [s for s in before if s not in after]
    changed = [
        (strategy_id, s, h.quantity, h.cost_basis, h.updated_at)
        for s, h in after.items()
        if s not in before or (before[s].quantity, before[s].cost_basis, before[s].updated_at)
        != (h.quantity, h.cost_basis, h.updated_at)
    ]
    if removed:
        curs.execute("DELETE FROM rm_positions WHERE strategy_id = %s AND symbol = ANY(%s)", (strategy_id, removed))
    if changed:
        curs.executemany(
            "INSERT INTO rm_positions (strategy_id, symbol, quantity, cost_basis, updated_at)"
            " VALUES (%s,%s,%s,%s,%s) ON CONFLICT (strategy_id, symbol) DO UPDATE SET"
            " quantity = EXCLUDED.quantity, cost_basis = EXCLUDED.cost_basis, updated_at = EXCLUDED.updated_at",
            changed)


def mark_to_market(curs, positions: dict[str, Holding]) -> tuple[Decimal, datetime | None]:
    """Market value at each symbol's latest close (cost basis where none is known)."""
    if not positions:
        return ZERO, None
    rows = curs.execute(
        "SELECT DISTINCT ON (symbol) symbol, date, close FROM prices"
        " WHERE symbol = ANY(%s) AND date <= (now() AT TIME ZONE 'UTC')::date ORDER BY symbol, date DESC",
        (list(positions),),
    ).fetchall()
    closes = {r["symbol"]: (r["close"], r["date"]) for r in rows}
    value, latest = ZERO, None
    for symbol, holding in positions.items():
        close, day = closes.get(symbol, (holding.cost_basis, None))
        value += holding.quantity * close
        if day is not None and (latest is None or day > latest):
            latest = day
    captured = datetime.combine(latest, dtime(21, 0), tzinfo=timezone.utc) if latest else None
    return value, captured


def _write_ledger(curs, strategy_id: UUID, ledger: Ledger, last_effective: datetime, last_nid: int) -> None:
    market_value, captured = mark_to_market(curs, ledger.positions)
    curs.execute(
        "INSERT INTO rm_ledger (strategy_id, cash_balance, realized_pnl, external_flows, market_value,"
        " total_equity, captured_at, last_order_at, last_effective_at, last_notification_id, updated_at)"
        " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s, now()) ON CONFLICT (strategy_id) DO UPDATE SET"
        " cash_balance = EXCLUDED.cash_balance, realized_pnl = EXCLUDED.realized_pnl,"
        " external_flows = EXCLUDED.external_flows, market_value = EXCLUDED.market_value,"
        " total_equity = EXCLUDED.total_equity, captured_at = EXCLUDED.captured_at,"
        " last_order_at = EXCLUDED.last_order_at, last_effective_at = EXCLUDED.last_effective_at,"
        " last_notification_id = EXCLUDED.last_notification_id, updated_at = now()",
        (strategy_id, ledger.cash, ledger.realized_pnl, ledger.external_flows, market_value,
         ledger.cash + market_value, captured or datetime.now(timezone.utc), ledger.last_order_at,
         last_effective, last_nid),
    )


def rebuild(store: EventStore, batch: int = 5000) -> int:
    """Rebuild every read model from the event store alone, atomically."""
    started = time.perf_counter()
    with store.transaction() as curs:
        curs.execute("SELECT pg_advisory_xact_lock(%s)", (PROJECTOR_LOCK,))
        curs.execute("TRUNCATE " + ", ".join(READ_MODEL_TABLES))
        curs.execute(f"DELETE FROM {store.tracking.tracking_table_name} WHERE application_name = %s",
                     (APPLICATION_NAME,))
        last, total = 0, 0
        by_strategy: dict[UUID, list[tuple[int, LedgerEvent]]] = defaultdict(list)
        while True:
            notifications = store.notifications_after(last, batch)
            if not notifications:
                break
            decoded = [(n.id, decode_event(n.state), n.state) for n in notifications]
            _insert_log_rows(curs, decoded)
            for nid, event, _ in decoded:
                by_strategy[event_strategy(event)].append((nid, event))
            last, total = notifications[-1].id, total + len(notifications)
        for strategy_id, strategy_events in by_strategy.items():
            _project_strategy(curs, strategy_id, strategy_events)
        if last:
            store.tracking._insert_tracking(curs, Tracking(APPLICATION_NAME, last))
    log.info("rebuilt", events=total, strategies=len(by_strategy),
             duration_ms=round((time.perf_counter() - started) * 1000, 2))
    return total
