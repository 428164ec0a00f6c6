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
from datetime import date, datetime, time as dtime, timedelta, timezone
from uuid import UUID

import msgspec
import structlog
from psycopg.rows import tuple_row
from eventsourcing.persistence import Tracking

from libs.domain.ledger import Holding, Ledger, ZERO
from libs.domain.nav import LedgerState, PriceBook, decode_state, derive, encode_state
from libs.domain.model import (
    CashRecorded,
    LedgerEvent,
    OrderRecorded,
    PositionsSnapshotted,
    decode_event,
    effective_at,
    event_strategy,
)
from libs.infra.store import PROJECTOR, EventStore, Notification

PROJECTOR_LOCK = 0x42_07_5A_03
READ_MODEL_TABLES = ("rm_orders", "rm_cash_events", "rm_snapshots", "rm_positions", "rm_ledger",
                     "rm_reconciliation_log", "rm_checkpoints", "rm_nav_daily", "rm_strategy_symbols")
#: NAV days are marked at the close; the spec shows captured_at as 16:00 (New York close, in UTC 21:00/20:00);
#: we write 21:00Z of the NAV date.
CLOSE_TIME = dtime(21, 0)

log = structlog.get_logger(component="projector")
_json = msgspec.json.Encoder()


def project(store: EventStore, notifications: Sequence[Notification]) -> int:
    """Apply notifications (any order, duplicates allowed) once; returns how many were new."""
    if not notifications:
        return 0
    started = time.perf_counter()
    with store.transaction() as curs:
        curs.execute("SELECT pg_advisory_xact_lock(%s)", (PROJECTOR_LOCK,))
        current = store.tracking._max_tracking_id(PROJECTOR, curs) or 0
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
        store.tracking._insert_tracking(curs, Tracking(PROJECTOR, fresh[-1].id))
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


def _load_history(curs, strategy_id: UUID, since: datetime | None) -> list[LedgerEvent]:
    """A strategy's events with effective time >= since, in fold order."""
    rows = curs.execute(
        "SELECT event FROM ("
        " SELECT notification_id, event, executed_at AS at FROM rm_orders WHERE strategy_id = %(s)s"
        " UNION ALL SELECT notification_id, event, occurred_at FROM rm_cash_events WHERE strategy_id = %(s)s"
        " UNION ALL SELECT notification_id, event, taken_at FROM rm_snapshots WHERE strategy_id = %(s)s"
        ") AS history WHERE at >= %(since)s ORDER BY at, notification_id",
        {"s": strategy_id, "since": since or datetime.min.replace(tzinfo=timezone.utc)},
    ).fetchall()
    return [decode_event(bytes(r["event"])) for r in rows]


def _symbols(events: Sequence[LedgerEvent]) -> set[str]:
    found: set[str] = set()
    for e in events:
        if isinstance(e, OrderRecorded):
            found.add(e.order.symbol)
        elif isinstance(e, PositionsSnapshotted):
            found.update(p.symbol for p in e.snapshot.positions)
    return found


def _price_book(curs, symbols: set[str], after: date | None, until: date) -> PriceBook:
    """Closes after ``after`` (all when None), plus each symbol's last close on or before it."""
    if not symbols:
        return PriceBook({})
    params = {"symbols": list(symbols), "after": after or date.min, "until": until}
    with curs.connection.cursor(row_factory=tuple_row) as tuples:  # thousands of rows: skip dict building
        rows = tuples.execute(
            "SELECT symbol, date, close FROM prices WHERE symbol = ANY(%(symbols)s)"
            " AND date > %(after)s AND date <= %(until)s"
            " UNION ALL (SELECT DISTINCT ON (symbol) symbol, date, close FROM prices"
            " WHERE symbol = ANY(%(symbols)s) AND date <= %(after)s AND date <= %(until)s ORDER BY symbol, date DESC)"
            " ORDER BY symbol, date",
            params,
        ).fetchall()
    closes: dict[str, list] = defaultdict(list)
    for symbol, day, close in rows:
        closes[symbol].append((day, close))
    return PriceBook(closes)


def _project_strategy(curs, strategy_id: UUID, new_events: list[tuple[int, LedgerEvent]]) -> int:
    """Fold a strategy's new events and maintain its NAV history; returns 1 if it had to re-derive."""
    new_events.sort(key=lambda item: _key(*item))
    symbols = _symbols([e for _, e in new_events])
    if symbols:
        curs.executemany("INSERT INTO rm_strategy_symbols (symbol, strategy_id) VALUES (%s, %s)"
                         " ON CONFLICT DO NOTHING", [(s, strategy_id) for s in sorted(symbols)])
    row = curs.execute("SELECT * FROM rm_ledger WHERE strategy_id = %s FOR UPDATE", (strategy_id,)).fetchone()
    first_day = effective_at(new_events[0][1]).date()
    last_nav = _last_before(curs, "rm_nav_daily", strategy_id, None)
    appended = row is None or _key(*new_events[0]) > (row["last_effective_at"], row["last_notification_id"])
    if appended and (last_nav is None or first_day > last_nav) and (row is None or row["state"] is not None):
        # the common case: new events after everything folded, on days with no NAV row yet
        start = decode_state(row["state"]) if row is not None else LedgerState()
        last_checkpoint = _last_before(curs, "rm_checkpoints", strategy_id, None)
        _derive_and_write(curs, strategy_id, row, start, [e for _, e in new_events], last_nav, last_checkpoint,
                          new_last=new_events[-1])
        return 0
    rederive(curs, strategy_id, first_day, row=row, new_last=new_events[-1])
    return 1


def _last_before(curs, table: str, strategy_id: UUID, before: date | None) -> date | None:
    """Latest date of a strategy's rows in rm_nav_daily / rm_checkpoints before ``before``."""
    assert table in ("rm_nav_daily", "rm_checkpoints")
    row = curs.execute(f"SELECT max(date) AS d FROM {table} WHERE strategy_id = %s AND date < %s",
                       (strategy_id, before or date.max)).fetchone()
    return row["d"]


def rederive(curs, strategy_id: UUID, from_day: date, *, row=None, new_last=None) -> None:
    """Re-derive a strategy's state, checkpoints and NAV from ``from_day`` on (the general path).

    NAV rows after the last NAV day before ``from_day`` are rewritten; the fold restarts from
    the latest checkpoint on or before that day.
    """
    if row is None:
        row = curs.execute("SELECT * FROM rm_ledger WHERE strategy_id = %s FOR UPDATE", (strategy_id,)).fetchone()
    after = _last_before(curs, "rm_nav_daily", strategy_id, from_day)
    start, checkpoint_day = LedgerState(), None
    if after is not None:
        checkpoint = curs.execute(
            "SELECT date, state FROM rm_checkpoints WHERE strategy_id = %s AND date <= %s"
            " ORDER BY date DESC LIMIT 1", (strategy_id, after)).fetchone()
        if checkpoint is not None:
            start, checkpoint_day = decode_state(checkpoint["state"]), checkpoint["date"]
            start.pending_flow, start.pending_dq = ZERO, {}  # consumed by a NAV day on or before `after`
    since = None if checkpoint_day is None else datetime.combine(
        checkpoint_day + timedelta(days=1), dtime(0), tzinfo=timezone.utc)
    curs.execute("DELETE FROM rm_nav_daily WHERE strategy_id = %s AND date > %s", (strategy_id, after or date.min))
    curs.execute("DELETE FROM rm_checkpoints WHERE strategy_id = %s AND date > %s",
                 (strategy_id, checkpoint_day or date.min))
    curs.execute("DELETE FROM rm_reconciliation_log WHERE strategy_id = %s AND taken_at >= %s",
                 (strategy_id, since or datetime.min.replace(tzinfo=timezone.utc)))
    _derive_and_write(curs, strategy_id, row, start, _load_history(curs, strategy_id, since), after,
                      checkpoint_day, new_last=new_last)


def _derive_and_write(curs, strategy_id: UUID, row, start: LedgerState, events: list[LedgerEvent],
                      after: date | None, last_checkpoint: date | None, *, new_last) -> None:
    today = datetime.now(timezone.utc).date()
    bench = curs.execute("SELECT benchmark FROM strategies WHERE id = %s", (strategy_id,)).fetchone()
    benchmark = (bench["benchmark"] or None) if bench else None
    held = {p.symbol for p in start.positions} | set(start.pending_dq) | _symbols(events)
    prices = _price_book(curs, held | ({benchmark} if benchmark else set()), after, today)
    inception = row["inception_date"] if row is not None else None
    if events and (inception is None or effective_at(events[0]).date() < inception):
        inception = effective_at(events[0]).date()
    result = derive(start, events, prices, benchmark, after, today, inception, last_checkpoint)
    if result.nav:
        with curs.copy("COPY rm_nav_daily (strategy_id, date, cash, market_value, total_equity, external_flow)"
                       " FROM STDIN") as copy:
            for n in result.nav:
                copy.write_row((strategy_id, n.date, n.cash, n.market_value, n.total_equity, n.external_flow))
    if result.checkpoints:  # replace from the first re-derived event day on (COPY: no conflicts left)
        curs.execute("DELETE FROM rm_checkpoints WHERE strategy_id = %s AND date >= %s",
                     (strategy_id, result.checkpoints[0][0]))
        with curs.copy("COPY rm_checkpoints (strategy_id, date, state) FROM STDIN") as copy:
            for d, st in result.checkpoints:
                copy.write_row((strategy_id, d, encode_state(st)))
    if result.reconciliation:
        curs.executemany(
            "INSERT INTO rm_reconciliation_log (strategy_id, snapshot_id, symbol, derived_quantity,"
            " derived_cost_basis, snapshot_quantity, snapshot_cost_basis, taken_at)"
            " VALUES (%s,%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (snapshot_id, symbol) DO NOTHING",
            [(strategy_id, e.snapshot.id, d.symbol, d.derived_quantity, d.derived_cost_basis,
              d.snapshot_quantity, d.snapshot_cost_basis, e.snapshot.taken_at) for e, d in result.reconciliation])
    if result.snapshots:
        curs.executemany("UPDATE rm_snapshots SET upserted = %s, removed = %s, reconciliation_entries = %s"
                         " WHERE id = %s", [(u, r, n, sid) for sid, u, r, n in result.snapshots])
    final = result.final
    ledger = final.ledger()
    stored = {
        r["symbol"]: Holding(r["quantity"], r["cost_basis"], r["updated_at"])
        for r in curs.execute("SELECT symbol, quantity, cost_basis, updated_at FROM rm_positions"
                              " WHERE strategy_id = %s", (strategy_id,)).fetchall()
    }
    _write_positions(curs, strategy_id, stored, ledger.positions)
    if new_last is not None:
        last_nid, last_event = new_last
        last_key = _key(last_nid, last_event)
        if row is not None and (row["last_effective_at"], row["last_notification_id"]) > last_key:
            last_key = (row["last_effective_at"], row["last_notification_id"])
    else:
        last_key = (row["last_effective_at"], row["last_notification_id"])
    latest_nav = result.nav[-1].date if result.nav else after
    _write_ledger(curs, strategy_id, ledger, final, prices, today, inception, last_key, latest_nav)


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


def _write_ledger(curs, strategy_id: UUID, ledger: Ledger, state: LedgerState, prices: PriceBook, today: date,
                  inception: date | None, last_key: tuple[datetime, int], latest_nav: date | None) -> None:
    """Current state, marked at each symbol's latest close (cost basis where none is known).

    ``captured_at`` is the close (21:00Z) of the latest priced day behind the marks, or of
    the latest NAV day, or else the last event's time: a function of log and prices only.
    """
    market_value, latest = ZERO, None
    for symbol, holding in ledger.positions.items():
        close = prices.close(symbol, today)
        market_value += holding.quantity * (holding.cost_basis if close is None else close)
        if close is not None:
            day = prices.latest([symbol], today)
            latest = day if latest is None or day > latest else latest
    if latest_nav is not None and (latest is None or latest_nav > latest):
        latest = latest_nav
    captured = datetime.combine(latest, CLOSE_TIME, tzinfo=timezone.utc) if latest else last_key[0]
    curs.execute(
        "INSERT INTO rm_ledger (strategy_id, cash_balance, realized_pnl, external_flows, market_value,"
        " total_equity, captured_at, last_order_at, last_effective_at, last_notification_id, state,"
        " inception_date, updated_at)"
        " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s, now()) ON CONFLICT (strategy_id) DO UPDATE SET"
        " cash_balance = EXCLUDED.cash_balance, realized_pnl = EXCLUDED.realized_pnl,"
        " external_flows = EXCLUDED.external_flows, market_value = EXCLUDED.market_value,"
        " total_equity = EXCLUDED.total_equity, captured_at = EXCLUDED.captured_at,"
        " last_order_at = EXCLUDED.last_order_at, last_effective_at = EXCLUDED.last_effective_at,"
        " last_notification_id = EXCLUDED.last_notification_id, state = EXCLUDED.state,"
        " inception_date = EXCLUDED.inception_date, updated_at = now()",
        (strategy_id, ledger.cash, ledger.realized_pnl, ledger.external_flows, market_value,
         ledger.cash + market_value, captured, ledger.last_order_at, last_key[0], last_key[1],
         encode_state(state), inception),
    )


def apply_price_updates(store: EventStore, limit: int = 10_000) -> int:
    """Re-mark every strategy that holds (or benchmarks against) a symbol whose prices changed."""
    started = time.perf_counter()
    with store.transaction() as curs:
        curs.execute("SELECT pg_advisory_xact_lock(%s)", (PROJECTOR_LOCK,))
        cursor = curs.execute("SELECT price_update_id FROM projector_price_cursor").fetchone()["price_update_id"]
        updates = curs.execute("SELECT id, symbol, from_date FROM price_updates WHERE id > %s ORDER BY id LIMIT %s",
                               (cursor, limit)).fetchall()
        if not updates:
            return 0
        earliest: dict[str, date] = {}
        for u in updates:
            if u["symbol"] not in earliest or u["from_date"] < earliest[u["symbol"]]:
                earliest[u["symbol"]] = u["from_date"]
        affected = curs.execute(
            "SELECT strategy_id, min(from_date) AS from_date FROM ("
            " SELECT s.strategy_id, u.from_date FROM unnest(%(sym)s::text[], %(day)s::date[]) AS u(symbol, from_date)"
            " JOIN rm_strategy_symbols s USING (symbol)"
            " UNION ALL SELECT l.strategy_id, u.from_date"
            " FROM unnest(%(sym)s::text[], %(day)s::date[]) AS u(symbol, from_date)"
            " JOIN strategies st ON st.benchmark = u.symbol JOIN rm_ledger l ON l.strategy_id = st.id"
            ") AS touched GROUP BY strategy_id ORDER BY strategy_id",
            {"sym": list(earliest), "day": list(earliest.values())},
        ).fetchall()
        for r in affected:
            rederive(curs, r["strategy_id"], r["from_date"])
        curs.execute("UPDATE projector_price_cursor SET price_update_id = %s", (updates[-1]["id"],))
    log.info("remarked", price_updates=len(updates), symbols=len(earliest), strategies=len(affected),
             duration_ms=round((time.perf_counter() - started) * 1000, 2))
    return len(affected)


def rebuild(store: EventStore, batch: int = 5000) -> int:
    """Rebuild every read model from the event store alone, atomically."""
    started = time.perf_counter()
    with store.transaction() as curs:
        curs.execute("SELECT pg_advisory_xact_lock(%s)", (PROJECTOR_LOCK,))
        curs.execute("TRUNCATE " + ", ".join(READ_MODEL_TABLES))
        curs.execute(f"DELETE FROM {store.tracking.tracking_table_name} WHERE application_name = %s",
                     (PROJECTOR,))
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
            store.tracking._insert_tracking(curs, Tracking(PROJECTOR, last))
        # NAV was just derived from the prices as they are now
        curs.execute("UPDATE projector_price_cursor SET price_update_id ="
                     " (SELECT coalesce(max(id), 0) FROM price_updates)")
    log.info("rebuilt", events=total, strategies=len(by_strategy),
             duration_ms=round((time.perf_counter() - started) * 1000, 2))
    return total
