"""Command handling against in-memory fakes of its two ports (the event log and the price cache).

In the style of cosmicpython's handler tests: the rules of ingest (idempotency, in-batch
duplicates, all-or-nothing batches, price resolution, the append retry) are checked without
PostgreSQL; the integration tests check the same through the real services.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import UUID, uuid4

import msgspec
import pytest

from botranks_domain.errors import InvalidSymbol, NoMarketData, RuleBroken
from botranks_domain.model import CashIn, LedgerEvent, OrdersBatchIn, SnapshotIn
from libs.infra.store import IntegrityError
from services.command_api import ingest

STRATEGY = uuid4()
DAY = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


class FakeEventLog:
    """The event store's contract: all-or-nothing appends, unique aggregate ids, ordered ids."""

    def __init__(self) -> None:
        self.events: dict[UUID, LedgerEvent] = {}
        self.next_id = 1
        self.appends = 0
        #: ids "committed by another writer" just before our next append (a race)
        self.racing: list[tuple[UUID, LedgerEvent]] = []

    def append(self, events):
        self.appends += 1
        if self.racing:
            for aggregate_id, event in self.racing:
                self.events[aggregate_id] = event
            self.racing = []
        if any(aggregate_id in self.events for aggregate_id, _ in events):
            raise IntegrityError("duplicate aggregate id")
        ids = []
        for aggregate_id, event in events:
            self.events[aggregate_id] = event
            ids.append(self.next_id)
            self.next_id += 1
        return ids

    def existing(self, aggregate_ids):
        return {a: self.events[a] for a in aggregate_ids if a in self.events}


class FakePrices:
    def __init__(self, closes: dict[tuple[str, date], Decimal] | None = None) -> None:
        self.closes = closes or {}

    def closes_on(self, wanted):
        return {(s, ts.date()): self.closes[(s, ts.date())] for s, ts in wanted if (s, ts.date()) in self.closes}


def orders(*items: dict) -> OrdersBatchIn:
    defaults = {"symbol": "AAPL", "side": "buy", "quantity": "1", "executed_at": DAY.isoformat()}
    return msgspec.convert({"orders": [{**defaults, **i} for i in items]}, OrdersBatchIn, strict=False)


def test_orders_are_appended_and_a_resubmission_is_a_duplicate():
    log, prices = FakeEventLog(), FakePrices()
    first = ingest.record_orders(log, prices, STRATEGY, orders({"price": "10", "external_order_id": "a"}))
    again = ingest.record_orders(log, prices, STRATEGY, orders({"price": "10", "external_order_id": "a"}))
    assert len(first.accepted) == 1 and first.duplicates == [] and first.notification_ids == [1]
    assert again.accepted == [] and again.duplicates == first.accepted and len(log.events) == 1


def test_a_second_order_with_the_same_external_id_in_one_batch_is_its_first_row():
    log = FakeEventLog()
    result = ingest.record_orders(
        log,
        FakePrices(),
        STRATEGY,
        orders({"price": "10", "external_order_id": "x"}, {"price": "99", "external_order_id": "x"}, {"price": "11"}),
    )
    assert [o.price for o in result.accepted] == [Decimal(10), Decimal(11)]
    assert [o.price for o in result.duplicates] == [Decimal(10)]
    assert len(log.events) == 2


def test_an_omitted_price_is_the_close_of_the_day_or_nothing_is_stored():
    log = FakeEventLog()
    prices = FakePrices({("AAPL", DAY.date()): Decimal("189.42")})
    result = ingest.record_orders(log, prices, STRATEGY, orders({}, {"symbol": "aapl", "price": "5"}))
    assert [o.price for o in result.accepted] == [Decimal("189.42"), Decimal(5)]
    with pytest.raises(
        NoMarketData, match=r"No market data available for MSFT at 2026-03-02T15:00:00Z \(orders\[1\]\)"
    ):
        ingest.record_orders(log, prices, STRATEGY, orders({"external_order_id": "ok"}, {"symbol": "MSFT"}))
    assert len(log.events) == 2 and log.appends == 1  # the whole failing batch stored nothing


def test_bad_symbols_and_future_times_refuse_the_whole_batch():
    log = FakeEventLog()
    with pytest.raises(InvalidSymbol, match=r"orders\[1\]\.symbol"):
        ingest.record_orders(log, FakePrices(), STRATEGY, orders({"price": "1"}, {"symbol": "no way", "price": "1"}))
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    with pytest.raises(RuleBroken, match=r"orders\[0\]\.executed_at"):
        ingest.record_orders(log, FakePrices(), STRATEGY, orders({"price": "1", "executed_at": future}))
    assert log.events == {}


def test_a_race_with_another_writer_ends_with_every_order_once():
    """Another writer commits some of our ids between our lookups: retried until it goes through."""
    log, prices = FakeEventLog(), FakePrices()
    batch = orders(*({"price": "1", "external_order_id": f"id-{i}"} for i in range(6)))
    theirs = ingest.record_orders(
        FakeEventLog(),
        prices,
        STRATEGY,
        orders({"price": "1", "external_order_id": "id-2"}, {"price": "1", "external_order_id": "id-4"}),
    )
    log.racing = [(o.id, ev) for o, ev in zip(theirs.accepted, _events(theirs.accepted))]
    result = ingest.record_orders(log, prices, STRATEGY, batch)
    assert sorted(o.external_order_id for o in result.accepted) == ["id-0", "id-1", "id-3", "id-5"]
    assert sorted(o.external_order_id for o in result.duplicates) == ["id-2", "id-4"]
    assert len(log.events) == 6 and log.appends == 2


def test_a_conflict_that_no_lookup_explains_is_not_retried_for_ever():
    class Broken(FakeEventLog):
        def append(self, events):
            self.appends += 1
            raise IntegrityError("something else")

    log = Broken()
    with pytest.raises(IntegrityError):
        ingest.record_orders(log, FakePrices(), STRATEGY, orders({"price": "1", "external_order_id": "a"}))
    assert log.appends == ingest.APPEND_ATTEMPTS


def test_cash_is_created_once_and_a_snapshot_refuses_a_symbol_twice():
    log = FakeEventLog()
    cash = msgspec.convert({"event_type": "deposit", "amount": "100", "external_id": "d"}, CashIn)
    assert ingest.record_cash(log, STRATEGY, cash)[0] == "created"
    status, event, ids = ingest.record_cash(log, STRATEGY, cash)
    assert (status, ids, event.amount) == ("duplicate", [], Decimal(100))
    snapshot = msgspec.convert(
        {
            "positions": [
                {"symbol": "ko", "quantity": 1, "cost_basis": 50},
                {"symbol": "KO", "quantity": 2, "cost_basis": 51},
            ]
        },
        SnapshotIn,
    )
    with pytest.raises(RuleBroken, match=r"positions\[1\]\.symbol"):
        ingest.record_snapshot(log, STRATEGY, snapshot)
    assert len(log.events) == 1


def _events(orders_):
    from botranks_domain.model import OrderRecorded

    return [OrderRecorded(o) for o in orders_]
