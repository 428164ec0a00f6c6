"""Folding event-store notifications into the read models, exactly once in effect.

Each batch is one PostgreSQL transaction that writes the read models AND moves the
tracking position (eventsourcing's tracking recorder): a crash anywhere leaves either
both or neither. A transaction-level advisory lock keeps the daemon and ``rebuild``
from interleaving.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time as dtime, timedelta, timezone
from uuid import UUID

import msgspec
import structlog
from psycopg.rows import tuple_row
from eventsourcing.persistence import Tracking

from libs.domain.ledger import LEDGER_CONTEXT, ZERO, Holding, Ledger, published
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
                     "rm_reconciliation_log", "rm_checkpoints", "rm_nav_daily", "rm_strategy_symbols",
                     "rm_quarantine")
#: where ``rebuild`` builds the new read models before swapping them in
SHADOW_SCHEMA = "botranks_rebuild"
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
        outcome = apply_batch(curs, fresh)
        # eventsourcing's exactly-once idiom: tracking in the same transaction
        store.tracking._insert_tracking(curs, Tracking(PROJECTOR, fresh[-1].id))
    log.info("projected", events=len(fresh), strategies=outcome.strategies, refolds=outcome.refolds,
             quarantined=outcome.quarantined, up_to=fresh[-1].id,
             duration_ms=round((time.perf_counter() - started) * 1000, 2))
    return len(fresh)


@dataclass
class BatchOutcome:
    strategies: int = 0
    refolds: int = 0
    quarantined: int = 0


def apply_batch(curs, notifications: Sequence[Notification]) -> BatchOutcome:
    """Log rows and folds for a batch of new notifications, each strategy isolated from the others.

    A strategy whose events cannot be applied (undecodable, refused by the database, or
    failing the fold) is rolled back to a savepoint, recorded in ``rm_quarantine`` and
    skipped from then on; every other strategy of the batch is projected as usual.
    """
    outcome = BatchOutcome()
    by_strategy = _log_batch(curs, notifications, _halted(curs))
    outcome.strategies = len(by_strategy)
    for strategy_id, events in by_strategy.items():
        try:
            with curs.connection.transaction():  # a savepoint: a failing fold undoes only itself
                outcome.refolds += _project_strategy(curs, strategy_id, events)
        except Exception as exc:  # noqa: BLE001 - any failure isolates this strategy only
            _quarantine(curs, strategy_id, events[0][0], events[-1][0], len(events), exc)
            outcome.quarantined += 1
    return outcome


def _log_batch(curs, notifications: Sequence[Notification],
               halted: set[UUID]) -> dict[UUID, list[tuple[int, LedgerEvent]]]:
    """Decode the notifications and append them to the log tables; returns them by strategy.

    Events of quarantined strategies (and undecodable ones) are left out. The log rows go
    in with one COPY per table; only if that fails are they retried strategy by strategy,
    so that one bad event costs its own strategy and nothing else.
    """
    decoded: dict[UUID, list[tuple[int, LedgerEvent, bytes]]] = defaultdict(list)
    for n in notifications:
        try:
            event = decode_event(n.state)
        except Exception as exc:  # noqa: BLE001 - whatever the bytes are, they stop nobody else
            strategy_id = _strategy_hint(n.state)
            _quarantine(curs, strategy_id, n.id, n.id, 1, exc)
            halted.add(strategy_id)
            continue
        decoded[event_strategy(event)].append((n.id, event, n.state))
    for strategy_id in [s for s in decoded if s in halted]:
        events = decoded.pop(strategy_id)
        _quarantine(curs, strategy_id, events[0][0], events[-1][0], len(events), None)
    try:
        with curs.connection.transaction():
            _insert_log_rows(curs, [row for rows in decoded.values() for row in rows])
    except Exception:  # noqa: BLE001 - find the strategy that caused it
        for strategy_id in list(decoded):
            try:
                with curs.connection.transaction():
                    _insert_log_rows(curs, decoded[strategy_id])
            except Exception as exc:  # noqa: BLE001
                events = decoded.pop(strategy_id)
                _quarantine(curs, strategy_id, events[0][0], events[-1][0], len(events), exc)
    return {s: [(nid, e) for nid, e, _ in rows] for s, rows in decoded.items()}


#: the quarantine row of events whose strategy cannot even be read
UNKNOWN_STRATEGY = UUID(int=0)


def _strategy_hint(raw: bytes) -> UUID:
    """The strategy id of a stored event that does not decode as a ledger event, if it has one."""
    try:
        body = msgspec.json.decode(raw)
        inner = next(v for k, v in body.items() if k in ("order", "cash", "snapshot"))
        return UUID(inner["strategy_id"])
    except Exception:  # noqa: BLE001
        return UNKNOWN_STRATEGY


def _halted(curs) -> set[UUID]:
    return {r["strategy_id"] for r in curs.execute("SELECT strategy_id FROM rm_quarantine").fetchall()}


def _quarantine(curs, strategy_id: UUID, first: int, last: int, count: int, error: Exception | None) -> None:
    """Record that a strategy's projection is halted (``error`` None: skipped events of a halted one)."""
    if error is not None:
        log.error("strategy_quarantined", strategy_id=str(strategy_id), notification_id=first,
                  error=f"{type(error).__name__}: {error}"[:2000])
    curs.execute(
        "INSERT INTO rm_quarantine (strategy_id, first_notification_id, last_notification_id, skipped_events, error)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (strategy_id) DO UPDATE SET"
        " last_notification_id = greatest(rm_quarantine.last_notification_id, EXCLUDED.last_notification_id),"
        " skipped_events = rm_quarantine.skipped_events + EXCLUDED.skipped_events",
        (strategy_id, first, last, count,
         "skipped" if error is None else f"{type(error).__name__}: {error}"[:2000].replace("\x00", "")))


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


def _load_history(curs, strategy_id: UUID, since: datetime | None) -> list[tuple[int, LedgerEvent]]:
    """A strategy's (notification id, event) pairs with effective time >= since, in fold order."""
    rows = curs.execute(
        "SELECT notification_id, event FROM ("
        " SELECT notification_id, event, executed_at AS at FROM rm_orders WHERE strategy_id = %(s)s"
        " UNION ALL SELECT notification_id, event, occurred_at FROM rm_cash_events WHERE strategy_id = %(s)s"
        " UNION ALL SELECT notification_id, event, taken_at FROM rm_snapshots WHERE strategy_id = %(s)s"
        ") AS history WHERE at >= %(since)s ORDER BY at, notification_id",
        {"s": strategy_id, "since": since or datetime.min.replace(tzinfo=timezone.utc)},
    ).fetchall()
    return [(r["notification_id"], decode_event(bytes(r["event"]))) for r in rows]


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
    if appended and row["tail_state"] is not None and first_day >= row["tail_day"]:
        # after everything folded, but on days already priced (a bot back-filling its history in
        # date order): continue from the state right after the last event, rewriting NAV from its day
        tail_day = row["tail_day"]
        curs.execute("DELETE FROM rm_nav_daily WHERE strategy_id = %s AND date >= %s", (strategy_id, tail_day))
        last_checkpoint = _last_before(curs, "rm_checkpoints", strategy_id, tail_day + timedelta(days=1))
        _derive_and_write(curs, strategy_id, row, decode_state(row["tail_state"]), [e for _, e in new_events],
                          tail_day - timedelta(days=1), last_checkpoint, new_last=new_events[-1],
                          nav_after=_last_before(curs, "rm_nav_daily", strategy_id, tail_day))
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
    history = [event for _, event in _load_history(curs, strategy_id, since)]
    _derive_and_write(curs, strategy_id, row, start, history, after, checkpoint_day, new_last=new_last)


def _derive_and_write(curs, strategy_id: UUID, row, start: LedgerState, events: list[LedgerEvent],
                      after: date | None, last_checkpoint: date | None, *, new_last,
                      nav_after: date | None = None) -> None:
    """Derive from ``start`` (the state at the end of day ``after``) and write every read model.

    ``nav_after`` is the last NAV day kept, when ``after`` is not one (the tail path).
    """
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
                copy.write_row((strategy_id, n.date, published(n.cash), published(n.market_value),
                                published(n.total_equity), published(n.external_flow)))
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
            [(strategy_id, e.snapshot.id, d.symbol, published(d.derived_quantity),
              d.derived_cost_basis and published(d.derived_cost_basis), d.snapshot_quantity, d.snapshot_cost_basis,
              e.snapshot.taken_at) for e, d in result.reconciliation])
    if result.snapshots:
        curs.executemany("UPDATE rm_snapshots SET upserted = %s, removed = %s, reconciliation_entries = %s"
                         " WHERE id = %s", [(u, r, n, sid) for sid, u, r, n in result.snapshots])
    final = result.final
    ledger = final.ledger()
    stored = {  # as written: published precision
        r["symbol"]: Holding(r["quantity"], r["cost_basis"], r["updated_at"])
        for r in curs.execute("SELECT symbol, quantity, cost_basis, updated_at FROM rm_positions"
                              " WHERE strategy_id = %s", (strategy_id,)).fetchall()
    }
    _write_positions(curs, strategy_id, stored, {
        s: Holding(published(h.quantity), published(h.cost_basis), h.updated_at) for s, h in ledger.positions.items()})
    if new_last is not None:
        last_nid, last_event = new_last
        last_key = _key(last_nid, last_event)
        if row is not None and (row["last_effective_at"], row["last_notification_id"]) > last_key:
            last_key = (row["last_effective_at"], row["last_notification_id"])
    else:
        last_key = (row["last_effective_at"], row["last_notification_id"])
    latest_nav = result.nav[-1].date if result.nav else (after if nav_after is None else nav_after)
    _write_ledger(curs, strategy_id, ledger, final, prices, today, inception, last_key, latest_nav, result.tail)


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
                  inception: date | None, last_key: tuple[datetime, int], latest_nav: date | None,
                  tail: tuple[date, LedgerState] | None) -> None:
    """Current state, marked at each symbol's latest close (cost basis where none is known).

    ``captured_at`` is the close (21:00Z) of the latest priced day behind the marks, or of
    the latest NAV day, or else the last event's time: a function of log and prices only.
    """
    market_value, latest = ZERO, None
    for symbol, holding in ledger.positions.items():
        close = prices.close(symbol, today)
        market_value = LEDGER_CONTEXT.add(market_value, LEDGER_CONTEXT.multiply(
            holding.quantity, holding.cost_basis if close is None else close))
        if close is not None:
            day = prices.latest([symbol], today)
            latest = day if latest is None or day > latest else latest
    if latest_nav is not None and (latest is None or latest_nav > latest):
        latest = latest_nav
    captured = datetime.combine(latest, CLOSE_TIME, tzinfo=timezone.utc) if latest else last_key[0]
    curs.execute(
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
        (strategy_id, published(ledger.cash), published(ledger.realized_pnl), published(ledger.external_flows),
         published(market_value), published(LEDGER_CONTEXT.add(ledger.cash, market_value)), captured, ledger.last_order_at, last_key[0], last_key[1],
         encode_state(state), inception, tail and tail[0], tail and encode_state(tail[1])),
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
        halted = _halted(curs)
        for r in affected:
            if r["strategy_id"] in halted:
                continue
            try:
                with curs.connection.transaction():
                    rederive(curs, r["strategy_id"], r["from_date"])
            except Exception as exc:  # noqa: BLE001 - one strategy's failure stops no other
                _quarantine(curs, r["strategy_id"], 0, 0, 0, exc)
        curs.execute("UPDATE projector_price_cursor SET price_update_id = %s", (updates[-1]["id"],))
    log.info("remarked", price_updates=len(updates), symbols=len(earliest), strategies=len(affected),
             duration_ms=round((time.perf_counter() - started) * 1000, 2))
    return len(affected)


@contextmanager
def _shadow(store: EventStore) -> Iterator:
    """A transaction whose unqualified read-model tables are the rebuild's new ones."""
    with store.transaction() as curs:
        curs.execute(f"SET LOCAL search_path TO {SHADOW_SCHEMA}, public")
        yield curs


def rebuild(store: EventStore, batch: int = 5000, strategies_per_commit: int = 200) -> int:
    """Rebuild every read model from the event store alone, then swap them in at once.

    Readers keep the current read models until the swap (one short transaction); memory is
    bounded by one batch of the log or one strategy's history, never the whole log.
    The live projector keeps running meanwhile; it is paused only for the final catch-up
    and swap, under the projector lock.
    """
    started = time.perf_counter()
    with store.transaction() as curs:
        curs.execute(f"DROP SCHEMA IF EXISTS {SHADOW_SCHEMA} CASCADE")
        curs.execute(f"CREATE SCHEMA {SHADOW_SCHEMA}")
        for table in READ_MODEL_TABLES:
            curs.execute(f"CREATE TABLE {SHADOW_SCHEMA}.{table} (LIKE public.{table} INCLUDING ALL)")
        # LIKE copies the serial default, which names the live table's sequence: give it its own
        curs.execute(f"CREATE SEQUENCE {SHADOW_SCHEMA}.rm_reconciliation_log_id_seq"
                     f" OWNED BY {SHADOW_SCHEMA}.rm_reconciliation_log.id")
        curs.execute(f"ALTER TABLE {SHADOW_SCHEMA}.rm_reconciliation_log ALTER COLUMN id"
                     f" SET DEFAULT nextval('{SHADOW_SCHEMA}.rm_reconciliation_log_id_seq')")
        # prices that change while we work are re-marked by the live projector after the swap
        price_cursor = curs.execute("SELECT coalesce(max(id), 0) AS m FROM price_updates").fetchone()["m"]
    # 1. the log tables, a batch at a time
    last, total = 0, 0
    while notifications := store.notifications_after(last, batch):
        with _shadow(store) as curs:
            _log_batch(curs, notifications, _halted(curs))
        last, total = notifications[-1].id, total + len(notifications)
    # 2. every strategy folded from its own history, one strategy in memory at a time
    with _shadow(store) as curs:
        strategies = [r["strategy_id"] for r in curs.execute(
            "SELECT strategy_id FROM rm_orders UNION SELECT strategy_id FROM rm_cash_events"
            " UNION SELECT strategy_id FROM rm_snapshots ORDER BY 1").fetchall()]
        halted = _halted(curs)
    for i in range(0, len(strategies), strategies_per_commit):
        with _shadow(store) as curs:
            for strategy_id in strategies[i:i + strategies_per_commit]:
                if strategy_id in halted:
                    continue
                history = _load_history(curs, strategy_id, None)
                try:
                    with curs.connection.transaction():
                        _project_strategy(curs, strategy_id, history)
                except Exception as exc:  # noqa: BLE001
                    _quarantine(curs, strategy_id, history[0][0], history[-1][0], len(history), exc)
    # 3. what arrived meanwhile, then the swap, with the live projector paused
    with store.transaction() as curs:
        curs.execute("SELECT pg_advisory_xact_lock(%s)", (PROJECTOR_LOCK,))
        curs.execute(f"SET LOCAL search_path TO {SHADOW_SCHEMA}, public")
        while notifications := store.notifications_after(last, batch):
            apply_batch(curs, notifications)
            last, total = notifications[-1].id, total + len(notifications)
        curs.execute("SET LOCAL search_path TO public")
        for table in READ_MODEL_TABLES:
            curs.execute(f"DROP TABLE public.{table}")
            curs.execute(f"ALTER TABLE {SHADOW_SCHEMA}.{table} SET SCHEMA public")
        curs.execute(f"DROP SCHEMA {SHADOW_SCHEMA}")
        curs.execute(f"DELETE FROM {store.tracking.tracking_table_name} WHERE application_name = %s",
                     (PROJECTOR,))
        if last:
            store.tracking._insert_tracking(curs, Tracking(PROJECTOR, last))
        curs.execute("UPDATE projector_price_cursor SET price_update_id = %s", (price_cursor,))
    log.info("rebuilt", events=total, strategies=len(strategies),
             duration_ms=round((time.perf_counter() - started) * 1000, 2))
    return total
