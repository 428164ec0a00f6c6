"""Folding event-store notifications into the read models, exactly once in effect.

The decisions live here: which strategy a notification belongs to, whether new events
extend a strategy's history (append), continue after its last event on days already priced
(tail), or re-derive it from a past day (back-dated events, late prices), and how a failing
strategy is isolated. The storage is the owners': the ledger view's writer (read models and
the tracking position, one transaction per batch under the projector lock), the price cache's
price book and outbox, and the strategies' benchmarks.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence, Set
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from uuid import UUID

import structlog

from botranks_domain.chain import extend
from botranks_domain.currency import FxRates, needed_rate_symbols, quote_currency
from botranks_domain.ledger import ZERO, Holding, published
from botranks_domain.model import LedgerEvent, decode_event, stored_event_strategy, symbols_of
from botranks_domain.nav import LedgerState, PriceBook, decode_state, derive
from botranks_domain.partition import event_partition
from libs.infra.db import Database
from libs.infra.metrics import PROJECTED
from libs.infra.readmodel import UNKNOWN_STRATEGY, LedgerRow, LedgerWriter, StrategyReads
from libs.infra.store import IntegrityError, Notification

from .current import ledger_row, mark_now
from .history_cache import HISTORIES, Logged

log = structlog.get_logger(component="projector")


@dataclass
class BatchOutcome:
    strategies: int = 0
    refolds: int = 0
    quarantined: int = 0


def project(db: Database, notifications: Sequence[Notification]) -> int:
    """Apply a run of the log, every partition's share in its own transaction; returns how many were new.

    ``notifications`` must hold every event after the smallest partition position up to its last id
    (what ``notifications_after(db.projection.position(), n)`` reads), in any order, duplicates allowed:
    each partition then moves to that last id.
    """
    if not notifications:
        return 0
    partitions = db.projection.partitions()
    shares: dict[int, list[Notification]] = defaultdict(list)
    for n in notifications:
        shares[event_partition(n.state, partitions)].append(n)
    up_to = max(n.id for n in notifications)
    return sum(project_partition(db, p, partitions, shares.get(p, []), up_to) for p in range(partitions))


def advance_idle(db: Database, partitions: Sequence[int], layout: int, head: int) -> None:
    """Move each of ``partitions`` (none of which has an event after its position up to ``head``) to
    ``head``, in one transaction."""
    with db.projection.writing(partitions=partitions) as writer:
        if writer.partitions != layout:
            raise LayoutChanged(f"the projection is laid out in {writer.partitions} partitions, not {layout}")
        writer.advance(partitions, head)


class LayoutChanged(RuntimeError):
    """The projection was laid out anew (a rebuild) since the caller read the partition's events."""


def project_partition(
    db: Database, partition: int, partitions: int, notifications: Sequence[Notification], up_to: int
) -> int:
    """Apply a partition's events (those after its position) and move it to ``up_to`` (every event of the
    partition up to there, under a layout of ``partitions``, must be among ``notifications``), in one
    transaction. Returns how many were new; ``LayoutChanged`` (nothing written) if the layout is not that."""
    return project_partitions(db, {partition: notifications}, partitions, up_to)[0]


def project_partitions(
    db: Database, shares: Mapping[int, Sequence[Notification]], partitions: int, up_to: int, *, wait: bool = True
) -> tuple[int, list[int]]:
    """:func:`project_partition` for several partitions (``shares``: each one's events) in one transaction
    holding all their locks; each moves to ``up_to``. Without ``wait``, only those whose locks are free
    (the leaderboard's upkeep may hold one). Returns how many events were new, and the partitions left.

    Live traffic leaves a few events in each of many partitions: one commit (and one round of reads) for
    all of them instead of one per partition is what keeps read-your-writes waits short."""
    started = time.perf_counter()
    wanted = sorted(shares)
    with (
        db.projection.writing(wanted[0])
        if len(wanted) == 1 and wait
        else db.projection.writing(partitions=wanted, free_only=not wait)
    ) as writer:
        if writer.partitions != partitions:
            raise LayoutChanged(f"the projection is laid out in {writer.partitions} partitions, not {partitions}")
        left = [p for p in wanted if p not in writer.held]
        current = writer.partition_positions()
        behind = [p for p in writer.held if current.get(p, 0) < up_to]
        if not behind:
            return 0, left
        fresh = {p: {n.id: n for n in shares[p] if current.get(p, 0) < n.id <= up_to} for p in behind}
        batch = sorted((n for events in fresh.values() for n in events.values()), key=lambda n: n.id)
        outcome = apply_batch(writer, batch) if batch else BatchOutcome()
        if writer.advance(behind, up_to) != behind:  # under their locks, each was behind: never
            raise IntegrityError(f"a position of partitions {behind} did not move forward to {up_to}")
    for p, events in fresh.items():
        if events:
            PROJECTED.labels(partition=str(p)).inc(len(events))
    if batch:
        log.info(
            "projected",
            partition=behind[0] if len(behind) == 1 else None,
            partitions=len(behind),
            events=len(batch),
            strategies=outcome.strategies,
            refolds=outcome.refolds,
            quarantined=outcome.quarantined,
            up_to=up_to,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
        )
    return len(batch), left


def apply_batch(writer: LedgerWriter, notifications: Sequence[Notification]) -> BatchOutcome:
    """Log rows and folds for a batch of new notifications, each strategy isolated from the others.

    A strategy whose events cannot be applied (undecodable, refused by the database, or
    failing the fold) is rolled back to a savepoint, recorded in the quarantine and skipped
    from then on; every other strategy of the batch is projected as usual.

    The folds first go together under one savepoint (two round trips for the batch instead of two per
    strategy); only when one of them fails is that undone and the batch folded again, each strategy
    under its own savepoint.
    """
    outcome, logged = BatchOutcome(), dict[UUID, Logged]()
    by_strategy = log_batch(writer, notifications, writer.halted(), logged)
    outcome.strategies = len(by_strategy)
    writer.prefetch(list(by_strategy), symbols_of([e for events in by_strategy.values() for _, e in events]))
    try:
        with writer.savepoint():
            outcome.refolds = sum(project_strategy(writer, s, ev, logged.get(s)) for s, ev in by_strategy.items())
        return outcome
    except Exception:  # noqa: BLE001 - one of them failed: all undone, and again one by one below
        outcome.refolds = 0
    for strategy_id, events in by_strategy.items():
        try:
            with writer.savepoint():  # a failing fold undoes only itself
                outcome.refolds += project_strategy(writer, strategy_id, events, logged.get(strategy_id))
        except Exception as exc:  # noqa: BLE001 - any failure isolates this strategy only
            quarantine(writer, strategy_id, events[0][0], events[-1][0], len(events), exc)
            outcome.quarantined += 1
    return outcome


def log_batch(
    writer: LedgerWriter,
    notifications: Sequence[Notification],
    halted: set[UUID],
    logged: dict[UUID, Logged] | None = None,
) -> dict[UUID, list[tuple[int, LedgerEvent]]]:
    """Decode the notifications and append them to the log tables; returns them by strategy (and in
    ``logged``, how each one's chain moved).

    Events of quarantined strategies (and undecodable ones) are left out. The log rows go
    in with one COPY per table; only if that fails are they retried strategy by strategy,
    so that one bad event costs its own strategy and nothing else. Each logged event extends its
    strategy's hash chain in the same savepoint (arrival order: the notifications come in id order).
    """
    decoded: dict[UUID, list[tuple[int, LedgerEvent, bytes]]] = defaultdict(list)
    for n in notifications:
        try:
            event = decode_event(n.state)
        except Exception as exc:  # noqa: BLE001 - whatever the bytes are, they stop nobody else
            strategy_id = stored_event_strategy(n.state) or UNKNOWN_STRATEGY
            quarantine(writer, strategy_id, n.id, n.id, 1, exc)
            halted.add(strategy_id)
            continue
        decoded[event.strategy_id].append((n.id, event, n.state))
    for strategy_id in [s for s in decoded if s in halted]:
        events = decoded.pop(strategy_id)
        writer.quarantine(strategy_id, events[0][0], events[-1][0], len(events), None)
    moved: dict[UUID, Logged] = {} if logged is None else logged
    try:
        with writer.savepoint():
            writer.insert_log_rows([row for rows in decoded.values() for row in rows])
            chains = _extend_chains(writer, decoded)
        moved.update(chains)
    except Exception:  # noqa: BLE001 - find the strategy that caused it
        for strategy_id in list(decoded):
            try:
                with writer.savepoint():
                    writer.insert_log_rows(decoded[strategy_id])
                    chains = _extend_chains(writer, {strategy_id: decoded[strategy_id]})
                moved.update(chains)
            except Exception as exc:  # noqa: BLE001 - this strategy's events are the cause: quarantined
                events = decoded.pop(strategy_id)
                quarantine(writer, strategy_id, events[0][0], events[-1][0], len(events), exc)
    return {s: [(nid, e) for nid, e, _ in rows] for s, rows in decoded.items()}


def _extend_chains(
    writer: LedgerWriter, decoded: dict[UUID, list[tuple[int, LedgerEvent, bytes]]]
) -> dict[UUID, Logged]:
    """Append the events (in arrival order) to their strategies' hash chains; returns how each head moved."""
    if not decoded:
        return {}
    heads = writer.chain.heads(decoded)
    links = {
        strategy_id: extend(heads.get(strategy_id), [(nid, event.arrived_at, raw) for nid, event, raw in rows])
        for strategy_id, rows in decoded.items()
        if rows
    }
    writer.chain.append(links)
    return {
        s: Logged(heads[s].digest if s in heads else None, chain[-1].digest, chain[-1].seq)
        for s, chain in links.items()
        if chain
    }


def quarantine(writer: LedgerWriter, strategy_id: UUID, first: int, last: int, count: int, error: Exception) -> None:
    message = f"{type(error).__name__}: {error}"
    log.error("strategy_quarantined", strategy_id=str(strategy_id), notification_id=first, error=message[:2000])
    writer.quarantine(strategy_id, first, last, count, message)


def _key(nid: int, event: LedgerEvent) -> tuple[datetime, int]:
    return event.effective_at, nid


def project_strategy(
    writer: LedgerWriter, strategy_id: UUID, new_events: list[tuple[int, LedgerEvent]], logged: Logged | None = None
) -> int:
    """Fold a strategy's new events and maintain its NAV history; returns 1 if it had to re-derive.
    ``logged``: how logging them moved its chain (when known, a re-derivation may take the history from
    memory)."""
    new_events.sort(key=lambda item: _key(*item))
    if logged is not None:  # its remembered history, if any, follows
        HISTORIES.advance(strategy_id, logged, new_events)
    symbols = symbols_of([e for _, e in new_events])
    reads = writer.strategy_reads(strategy_id)
    row, last_nav = reads.row, reads.last_nav
    first_day = new_events[0][1].effective_at.date()
    appended = row is None or _key(*new_events[0]) > row.last_key
    if row is not None and _before_trades(row):
        rederive(writer, strategy_id, date.min, reads=reads, new_last=new_events[-1], logged=logged, remember=symbols)
        return 1
    if appended and (last_nav is None or first_day > last_nav) and (row is None or row.state is not None):
        # the common case: new events after everything folded, on days with no NAV row yet
        if row is None:
            start = LedgerState()
        else:
            assert row.state is not None  # the condition above
            start = decode_state(row.state).dated(
                max(row.last_effective_at.astimezone(UTC).date(), last_nav or date.min)
            )
        _derive_and_write(
            writer,
            strategy_id,
            reads,
            start,
            [e for _, e in new_events],
            last_nav,
            reads.last_checkpoint,
            new_last=new_events[-1],
            remember=symbols,
        )
        return 0
    if (
        appended
        and row is not None  # always here: NAV rows are written with the ledger row
        and row.tail_state is not None
        and row.tail_day is not None
        and first_day >= row.tail_day
    ):
        # after everything folded, but on days already priced (a bot back-filling its history in
        # date order): continue from the state right after the last event, rewriting NAV from its day
        tail_day = row.tail_day
        _derive_and_write(
            writer,
            strategy_id,
            reads,
            decode_state(row.tail_state).dated(tail_day),
            [e for _, e in new_events],
            tail_day - timedelta(days=1),
            reads.checkpoint_through_tail,
            new_last=new_events[-1],
            nav_after=reads.nav_before_tail,
            remember=symbols,
            nav_from=tail_day,
        )
        return 0
    rederive(writer, strategy_id, first_day, reads=reads, new_last=new_events[-1], logged=logged, remember=symbols)
    return 1


def _before_trades(row: LedgerRow) -> bool:
    """Whether the strategy's state was written before trades existed (its trades need the whole history)."""
    return row.state is not None and decode_state(row.state).trades is None


def rederive(
    writer: LedgerWriter,
    strategy_id: UUID,
    from_day: date,
    *,
    reads: StrategyReads | None = None,
    new_last: tuple[int, LedgerEvent] | None = None,
    logged: Logged | None = None,
    remember: Set[str] = frozenset(),
) -> None:
    """Re-derive a strategy's state, checkpoints and NAV from ``from_day`` on (the general path).

    NAV rows after the last NAV day before ``from_day`` are rewritten; the fold restarts from
    the latest checkpoint on or before that day. ``reads``: what is stored of it, when read already;
    ``logged``: how logging this batch's events moved its chain (its history may then come from memory).
    """
    if reads is None:
        reads = writer.strategy_reads(strategy_id)
    after = writer.last_nav_day(strategy_id, from_day)
    start, checkpoint_day = LedgerState(), None
    if after is not None:
        checkpoint = writer.checkpoint(strategy_id, after)
        if checkpoint is not None and checkpoint[1].trades is None:  # written before trades: from the start
            after, checkpoint = None, None
        if checkpoint is not None:
            checkpoint_day, start = checkpoint
            start.dated(checkpoint_day)
            start.pending_flow, start.pending_dq = ZERO, {}  # consumed by a NAV day on or before `after`
    since = (
        None if checkpoint_day is None else datetime.combine(checkpoint_day + timedelta(days=1), dtime(0), tzinfo=UTC)
    )
    writer.forget_after(strategy_id, after, checkpoint_day, since)
    writer.trades.forget_ended(strategy_id, since)
    history = [event for _, event in HISTORIES.history(strategy_id, since, logged, writer.history)]
    _derive_and_write(
        writer,
        strategy_id,
        reads,
        start,
        history,
        after,
        checkpoint_day,
        new_last=new_last,
        remember=remember,
    )


def _derive_and_write(
    writer: LedgerWriter,
    strategy_id: UUID,
    reads: StrategyReads,
    start: LedgerState,
    events: list[LedgerEvent],
    after: date | None,
    last_checkpoint: date | None,
    *,
    new_last: tuple[int, LedgerEvent] | None,
    nav_after: date | None = None,
    remember: Set[str] = frozenset(),
    nav_from: date | None = None,
) -> None:
    """Derive from ``start`` (the state at the end of day ``after``) and write every read model.

    ``nav_after`` is the last NAV day kept, when ``after`` is not one (the tail path), whose NAV rows
    from ``nav_from`` on are rewritten; ``reads``: what is stored of it (ledger row, positions);
    ``remember``: the symbols of the new events (``rm_strategy_symbols``). The writes read nothing: they
    go in one pipeline when they are few.
    """
    today, row = datetime.now(UTC).date(), reads.row
    benchmark = writer.identity.benchmark_of(strategy_id)
    held = {p.symbol for p in start.positions} | set(start.pending_dq) | symbols_of(events)
    base, recorded = writer.identity.base_currency_of(strategy_id), writer.prices.currencies(held)
    foreign = {s for s in held if quote_currency(s, recorded) != base}
    rate_symbols = needed_rate_symbols(foreign, base, recorded)
    prices = _price_book(writer, held | rate_symbols | ({benchmark} if benchmark else set()), after, today)
    fx = FxRates(prices, base, recorded) if foreign else None
    inception = row.inception_date if row is not None else None
    if events and (inception is None or events[0].effective_at.date() < inception):
        inception = events[0].effective_at.date()
    result = derive(start, events, prices, benchmark, after, today, inception, last_checkpoint, fx)
    final = result.final
    ledger = result.current  # in today's share units: a split whose ex-date has come is applied
    assert final is not None and ledger is not None  # derive() sets both
    if new_last is not None:
        last_key = _key(*new_last)
        if row is not None and row.last_key > last_key:
            last_key = row.last_key
    else:
        assert row is not None  # without new events (a re-mark, a new benchmark): a strategy with a ledger
        last_key = row.last_key
    latest_nav = result.nav[-1].date if result.nav else (after if nav_after is None else nav_after)
    market_value, captured = mark_now(ledger.positions, prices, today, latest_nav, last_key[0], fx)
    tail = result.tail or _kept_tail(row, after)
    with writer.writes_together(len(result.nav), len(result.checkpoints), len(result.ended) + len(ledger.trades.open)):
        # late rates re-derive it like late closes (apply_price_updates): its rate symbols are remembered too
        if remember or rate_symbols:
            writer.remember_symbols(strategy_id, remember | rate_symbols)
        if nav_from is not None:
            writer.forget_nav_from(strategy_id, nav_from)
        writer.write_derivation(strategy_id, result, published)
        writer.trades.write(strategy_id, result.ended, ledger.trades.open.values())
        writer.write_positions(
            strategy_id,
            reads.positions,
            {s: Holding(published(h.quantity), published(h.cost_basis), h.updated_at)
             for s, h in ledger.positions.items()},
        )  # fmt: skip
        writer.write_ledger(ledger_row(strategy_id, ledger, final, market_value, captured, last_key, inception, tail))


#: a rebuild's price books of whole histories, by (symbols, last day): every strategy folded from
#: the start over the same few symbols reads the same closes. Set only while a rebuild folds its
#: strategies (:func:`sharing_price_books`); prices that change meanwhile come through the price outbox
#: after the swap.
_WHOLE_HISTORY_BOOKS: ContextVar[dict | None] = ContextVar("whole_history_books", default=None)


@contextmanager
def sharing_price_books() -> Iterator[None]:
    """While open, folds from the start of a history share their price books (a rebuild's step 2)."""
    books = _WHOLE_HISTORY_BOOKS.set({})
    try:
        yield
    finally:
        _WHOLE_HISTORY_BOOKS.reset(books)


def _price_book(writer: LedgerWriter, symbols: set[str], after: date | None, until: date) -> PriceBook:
    books = _WHOLE_HISTORY_BOOKS.get()
    if books is None or after is not None:
        return writer.prices.price_book(symbols, after, until)
    key = (frozenset(symbols), until)
    if key not in books:
        books[key] = writer.prices.price_book(symbols, None, until)
    return books[key]


def _kept_tail(row: LedgerRow | None, after: date | None) -> tuple[date, LedgerState] | None:
    """The stored tail, when the derivation re-derived only days after it (a late price or split after
    the last event): it is still the state right after the last event."""
    if row is None or row.tail_state is None or row.tail_day is None or after is None or row.tail_day > after:
        return None
    return row.tail_day, decode_state(row.tail_state)


def apply_price_updates(db: Database, partition: int | None = None, limit: int = 10_000) -> int:
    """Re-mark every strategy of ``partition`` (None: of each partition in turn) that holds (or benchmarks
    against) a symbol whose prices or splits changed; returns how many strategies were re-derived."""
    if partition is None:
        return sum(apply_price_updates(db, p, limit) for p in range(db.projection.partitions()))
    started = time.perf_counter()
    with db.projection.writing(partition) as writer:
        updates = writer.prices.updates_after(writer.price_update_position(), limit)
        if not updates:
            return 0
        earliest: dict[str, date] = {}
        for _, symbol, from_date in updates:
            if symbol not in earliest or from_date < earliest[symbol]:
                earliest[symbol] = from_date
        touched: dict[UUID, set[str]] = writer.strategies_holding(earliest)
        benchmarking = writer.identity.strategies_benchmarking(earliest)
        for strategy_id in writer.projected(benchmarking):
            touched.setdefault(strategy_id, set()).add(benchmarking[strategy_id])
        touched = {s: symbols for s, symbols in touched.items() if writer.in_partition(s)}
        halted = writer.halted()
        for strategy_id in sorted(touched):
            if strategy_id in halted:
                continue
            try:
                with writer.savepoint():
                    rederive(writer, strategy_id, min(earliest[s] for s in touched[strategy_id]))
            except Exception as exc:  # noqa: BLE001 - one strategy's failure stops no other
                quarantine(writer, strategy_id, 0, 0, 0, exc)
        writer.move_price_cursor(updates[-1][0])
    if touched:
        log.info(
            "remarked",
            partition=partition,
            price_updates=len(updates),
            symbols=len(earliest),
            strategies=len(touched),
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
        )
    return len(touched)
