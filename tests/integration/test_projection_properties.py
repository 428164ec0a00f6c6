"""Rebuild == incremental, for random event streams delivered in any arrival order (real PostgreSQL).

Events go straight into the event store and through ``project`` in random batches; late
prices go through the market-data outbox and ``apply_price_updates``. After every example
the read models must equal a from-scratch ``rebuild`` of the whole store.
"""

from __future__ import annotations

import itertools
import os
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from botranks_domain.bars import Bar
from botranks_domain.model import (
    CashEvent,
    CashRecorded,
    Order,
    OrderRecorded,
    PositionsSnapshot,
    PositionsSnapshotted,
    SnapshotPosition,
)
from devtools.stack import sql
from libs.infra.db import Database
from services.projector.projection import apply_price_updates, project
from services.projector.rebuild import rebuild

pytestmark = pytest.mark.integration

DAY0 = date(2025, 1, 6)  # a Monday
DAYS = [DAY0 + timedelta(days=i) for i in range(70)]  # spans several sparse checkpoints
_example = itertools.count()


@pytest.fixture(scope="module")
def db(make_database):
    d = Database(make_database(), pool_size=1, max_overflow=2).create_tables()
    with sql(d) as curs:  # a shared benchmark, weekdays only
        curs.executemany(
            "INSERT INTO prices (symbol, date, close) VALUES ('SPY', %s, %s)",
            [(day, D(500) + i) for i, day in enumerate(DAYS) if day.weekday() < 5],
        )
    yield d
    d.close()


def snapshot_of_read_models(db: Database) -> dict:
    queries = {
        "positions": "SELECT strategy_id, symbol, quantity, cost_basis, updated_at FROM rm_positions ORDER BY 1, 2",
        "ledger": "SELECT strategy_id, cash_balance, realized_pnl, external_flows, market_value, total_equity,"
        " captured_at, last_order_at, last_effective_at, last_notification_id, state, inception_date"
        " FROM rm_ledger ORDER BY 1",
        "nav": "SELECT * FROM rm_nav_daily ORDER BY 1, 2",
        "checkpoints": "SELECT * FROM rm_checkpoints ORDER BY 1, 2",
        "reconciliation": "SELECT strategy_id, snapshot_id, symbol, derived_quantity, derived_cost_basis,"
        " snapshot_quantity, snapshot_cost_basis FROM rm_reconciliation_log ORDER BY 1, 2, 3",
    }
    with sql(db) as curs:
        return {k: [tuple(r.values()) for r in curs.execute(q).fetchall()] for k, q in queries.items()}


def at(day_index: int, minute: int) -> datetime:
    return datetime.combine(DAYS[day_index], datetime.min.time(), UTC) + timedelta(hours=13, minutes=minute)


@st.composite
def scenario(draw):
    n = next(_example)
    symbols = [f"P{n}A", f"P{n}B"]
    sid = uuid.uuid4()
    events = []
    count = draw(st.integers(1, 25))
    for _ in range(count):
        kind = draw(st.sampled_from(["order", "order", "order", "cash", "snapshot"]))
        when = at(draw(st.integers(0, len(DAYS) - 1)), draw(st.integers(0, 600)))
        eid = uuid.uuid4()
        if kind == "order":
            events.append(
                OrderRecorded(
                    Order(
                        id=eid,
                        strategy_id=sid,
                        symbol=draw(st.sampled_from(symbols)),
                        side=draw(st.sampled_from(["buy", "sell"])),
                        quantity=D(draw(st.integers(1, 20))),
                        price=D(draw(st.integers(50, 150))),
                        fees=D(draw(st.integers(0, 3))),
                        order_type="market",
                        status=draw(st.sampled_from(["filled", "partial", "pending", "cancelled"])),
                        executed_at=when,
                        created_at=when,
                        external_order_id=None,
                        details=None,
                    )
                )
            )
        elif kind == "cash":
            kind_ = draw(st.sampled_from(["deposit", "withdraw", "dividend", "fee"]))
            amount = D(draw(st.integers(1, 5000)))
            events.append(
                CashRecorded(
                    CashEvent(
                        id=eid,
                        strategy_id=sid,
                        event_type=kind_,
                        amount=-amount if kind_ in ("withdraw", "fee") else amount,
                        occurred_at=when,
                        external_id=None,
                        related_symbol=None,
                        note=None,
                        created_at=when,
                    )
                )
            )
        else:
            positions = [
                SnapshotPosition(s, D(draw(st.integers(-10, 10))), D(draw(st.integers(50, 150))))
                for s in symbols
                if draw(st.booleans())
            ]
            events.append(
                PositionsSnapshotted(
                    PositionsSnapshot(
                        id=eid,
                        strategy_id=sid,
                        positions=[p for p in positions if p.quantity != 0],
                        log_deltas=draw(st.booleans()),
                        taken_at=when,
                        created_at=when,
                    )
                )
            )
    arrival = draw(st.permutations(range(count)))
    cuts = sorted(draw(st.sets(st.integers(1, max(1, count - 1)), max_size=4)))
    prices = {
        s: {d: D(draw(st.integers(60, 140))) for d in DAYS if d.weekday() < 5 and draw(st.booleans())} for s in symbols
    }
    late = {
        s: {d: D(draw(st.integers(60, 140))) for d in DAYS[-draw(st.integers(0, 10)) :] if d.weekday() < 5}
        for s in symbols
    }
    return sid, events, arrival, cuts, prices, late


@settings(
    max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario())
def test_incremental_equals_rebuild_in_any_arrival_order(db, case):
    sid, events, arrival, cuts, prices, late = case
    create_strategy_with_id(db, sid)
    with sql(db) as curs:  # prices known before the events
        curs.executemany(
            "INSERT INTO prices (symbol, date, close) VALUES (%s, %s, %s)",
            [(s, d, c) for s, rows in prices.items() for d, c in rows.items()],
        )
    ordered = [events[i] for i in arrival]
    bounds = [0, *cuts, len(ordered)]
    for lo, hi in zip(bounds, bounds[1:]):
        if lo < hi:
            db.events.append([(_aggregate_id(e), e) for e in ordered[lo:hi]])
            project(db, db.events.notifications_after(db.projection.position(), 1000))
    # prices that arrive after the events (new bars and corrections), through the outbox
    db.prices.write_bars([Bar(symbol=s, date=d, close=c) for s, rows in late.items() for d, c in rows.items()], "test")
    apply_price_updates(db)
    incremental = snapshot_of_read_models(db)
    rebuild(db)
    rebuilt = snapshot_of_read_models(db)
    for table in incremental:
        only_incremental = [r for r in incremental[table] if r not in rebuilt[table]]
        only_rebuilt = [r for r in rebuilt[table] if r not in incremental[table]]
        assert not only_incremental and not only_rebuilt, (
            f"{table}: incremental-only {only_incremental[:5]} rebuild-only {only_rebuilt[:5]}\n"
            f"events in arrival order: {[events[i] for i in arrival]}\ncuts: {cuts}"
        )
    with sql(db) as curs:  # cost basis is positive for every open position
        assert curs.execute("SELECT count(*) AS n FROM rm_positions WHERE cost_basis <= 0").fetchone()["n"] == 0


def _aggregate_id(event):
    if isinstance(event, OrderRecorded):
        return event.order.id
    if isinstance(event, CashRecorded):
        return event.cash.id
    return event.snapshot.id


def create_strategy_with_id(db: Database, sid: uuid.UUID) -> None:
    """The events of a scenario name their strategy, so it is created with that id (behind identity's back)."""
    with sql(db) as curs:
        curs.execute("INSERT INTO strategies (id, name) VALUES (%s, 'prop')", (sid,))
