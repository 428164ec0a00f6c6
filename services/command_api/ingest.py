"""Command handling: validate, resolve prices, and append ledger events idempotently.

Synchronous (the event store library is); the routes run these in worker threads. The
handlers talk to two narrow ports, :class:`EventLog` and :class:`CloseLookup` (the event store
and the price cache in production, in-memory fakes in the unit tests), and raise domain errors.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Literal, Protocol
from uuid import UUID

from botranks_domain.errors import NoMarketData, RuleBroken
from botranks_domain.model import (
    EFFECTIVE_STATUSES,
    CashEvent,
    CashIn,
    CashRecorded,
    LedgerEvent,
    Order,
    OrderRecorded,
    OrdersBatchIn,
    PositionsSnapshot,
    PositionsSnapshotted,
    SnapshotIn,
    SnapshotPosition,
    cash_aggregate_id,
    cash_of,
    normalize_symbol,
    order_aggregate_id,
    order_of,
)
from libs.infra.store import IntegrityError

MAX_FUTURE = timedelta(minutes=5)
APPEND_ATTEMPTS = 5


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


class EventLog(Protocol):
    """What command handling needs of the event store."""

    def append(self, events: Sequence[tuple[UUID, LedgerEvent]]) -> Sequence[int]:
        """All events in one transaction; IntegrityError (nothing stored) if any id exists."""

    def existing(self, aggregate_ids: Sequence[UUID]) -> dict[UUID, LedgerEvent]:
        """The stored events of those ids that exist."""


class CloseLookup(Protocol):
    """What command handling needs of the price cache: the close of a (symbol, UTC day)."""

    def closes_on(self, wanted: set[tuple[str, datetime]]) -> dict[tuple[str, date], Decimal]: ...


class RateCheck(Protocol):
    """The FX guard (``fx_check.RateGuard``): ``NoFxRate`` unless every (symbol, UTC day) quoted in
    another currency than the strategy's base has a rate on that day."""

    def check(self, strategy_id: UUID, wanted: Iterable[tuple[str, date]]) -> None: ...


def _not_future(ts: datetime, now: datetime, where: str) -> None:
    if ts > now + MAX_FUTURE:
        raise RuleBroken(f"`{where}` is more than 5 minutes in the future ({_iso(ts)})")


@dataclass
class AppendResult:
    accepted: list[LedgerEvent] = field(default_factory=list)
    duplicates: list[LedgerEvent] = field(default_factory=list)
    notification_ids: list[int] = field(default_factory=list)


def append_idempotently(log: EventLog, candidates: list[tuple[UUID, LedgerEvent]]) -> AppendResult:
    """Append the candidates whose aggregate ids are new; the rest come back as duplicates.

    The database decides: an insert that collides with a concurrent writer fails whole,
    after which we look up which ids now exist and try again with the others. Inserts are
    serialized by the event store's table lock, so a collision is always with a committed
    row: every failed round finds at least one more existing id, and the loop ends after at
    most ``len(candidates)`` rounds however many writers overlap.
    """
    result = AppendResult()
    order = {aggregate_id: i for i, (aggregate_id, _) in enumerate(candidates)}
    pending = list(candidates)
    found: dict[UUID, LedgerEvent] = {}
    stalled = 0
    while pending:
        try:
            result.notification_ids = list(log.append(pending))
            break
        except IntegrityError:
            known = len(found)
            found.update(log.existing([aggregate_id for aggregate_id, _ in pending]))
            pending = [(a, e) for a, e in pending if a not in found]
            stalled = stalled + 1 if len(found) == known else 0
            if stalled >= APPEND_ATTEMPTS:  # a conflict that no lookup explains: not an idempotency race
                raise
    accepted_ids = {a for a, _ in pending}
    result.accepted = [e for a, e in pending]
    result.duplicates = [found[a] for a in sorted(found, key=order.__getitem__) if a not in accepted_ids]
    return result


@dataclass
class IngestedOrders:
    accepted: list[Order]
    duplicates: list[Order]
    notification_ids: list[int]


def record_orders(
    log: EventLog, prices: CloseLookup, strategy_id: UUID, batch: OrdersBatchIn, rates: RateCheck | None = None
) -> IngestedOrders:
    """Store a batch of orders: accepted and duplicates, in request order. All-or-nothing on errors
    (``rates``: the FX guard of its fills)."""
    now = datetime.now(UTC)
    executed: list[datetime] = []  # an order without executed_at was executed now
    for i, o in enumerate(batch.orders):
        o.symbol = normalize_symbol(o.symbol, f"orders[{i}].symbol")
        executed.append(o.executed_at or now)
        _not_future(executed[i], now, f"orders[{i}].executed_at")
    if rates is not None:
        rates.check(
            strategy_id,
            {
                (o.symbol, at.astimezone(UTC).date())
                for o, at in zip(batch.orders, executed, strict=True)
                if o.status in EFFECTIVE_STATUSES
            },
        )
    closes = prices.closes_on({(o.symbol, at) for o, at in zip(batch.orders, executed, strict=True) if o.price is None})
    candidates: list[tuple[UUID, LedgerEvent]] = []
    first_by_external: dict[str, UUID] = {}
    in_batch_dupes: list[tuple[int, UUID]] = []
    for i, o in enumerate(batch.orders):
        price = o.price
        if price is None:
            price = closes.get((o.symbol, executed[i].date()))
            if price is None:
                raise NoMarketData(f"No market data available for {o.symbol} at {_iso(executed[i])} (orders[{i}])")
        if o.external_order_id is not None:
            aggregate_id = order_aggregate_id(strategy_id, o.external_order_id)
            if o.external_order_id in first_by_external:
                in_batch_dupes.append((i, aggregate_id))
                continue
            first_by_external[o.external_order_id] = aggregate_id
        else:
            aggregate_id = uuid.uuid4()
        order = Order(
            id=aggregate_id,
            strategy_id=strategy_id,
            symbol=o.symbol,
            side=o.side,
            quantity=o.quantity,
            price=price,
            fees=o.fees,
            order_type=o.order_type,
            status=o.status,
            executed_at=executed[i],
            created_at=now,
            external_order_id=o.external_order_id,
            details=o.details,
        )
        candidates.append((aggregate_id, OrderRecorded(order)))
    result = append_idempotently(log, candidates)
    accepted = [order_of(e) for e in result.accepted]
    duplicates = [order_of(e) for e in result.duplicates]
    if in_batch_dupes:
        by_id = {o.id: o for o in accepted + duplicates}
        duplicates.extend(by_id[aggregate_id] for _, aggregate_id in in_batch_dupes)
    return IngestedOrders(accepted, duplicates, result.notification_ids)


def record_cash(
    log: EventLog, strategy_id: UUID, cash: CashIn
) -> tuple[Literal["created", "duplicate"], CashEvent, list[int]]:
    """Store one cash event; returns ("created" | "duplicate", event, notification ids)."""
    now = datetime.now(UTC)
    occurred_at = cash.occurred_at or now
    _not_future(occurred_at, now, "occurred_at")
    related = normalize_symbol(cash.related_symbol, "related_symbol") if cash.related_symbol else None
    aggregate_id = cash_aggregate_id(strategy_id, cash.external_id) if cash.external_id else uuid.uuid4()
    event = CashEvent(
        id=aggregate_id,
        strategy_id=strategy_id,
        event_type=cash.event_type,
        amount=cash.amount,
        occurred_at=occurred_at,
        external_id=cash.external_id,
        related_symbol=related,
        note=cash.note,
        created_at=now,
    )
    result = append_idempotently(log, [(aggregate_id, CashRecorded(event))])
    if result.accepted:
        return "created", event, result.notification_ids
    return "duplicate", cash_of(result.duplicates[0]), []


def record_snapshot(
    log: EventLog, strategy_id: UUID, snapshot: SnapshotIn, rates: RateCheck | None = None
) -> tuple[PositionsSnapshot, list[int]]:
    """Store a positions snapshot event (the projector applies it at ``taken_at``; ``rates``: the FX
    guard of its positions)."""
    now = datetime.now(UTC)
    taken_at = snapshot.taken_at or now
    _not_future(taken_at, now, "taken_at")
    positions: dict[str, SnapshotPosition] = {}
    for i, p in enumerate(snapshot.positions):
        symbol = normalize_symbol(p.symbol, f"positions[{i}].symbol")
        if symbol in positions:
            raise RuleBroken(f"`positions[{i}].symbol` {symbol} appears twice in the snapshot")
        positions[symbol] = SnapshotPosition(symbol, p.quantity, p.cost_basis)
    if rates is not None:
        rates.check(strategy_id, {(s, taken_at.astimezone(UTC).date()) for s, p in positions.items() if p.quantity})
    event = PositionsSnapshot(
        id=uuid.uuid4(),
        strategy_id=strategy_id,
        positions=list(positions.values()),
        log_deltas=snapshot.log_deltas,
        taken_at=taken_at,
        created_at=now,
    )
    result = append_idempotently(log, [(event.id, PositionsSnapshotted(event))])
    return event, result.notification_ids
