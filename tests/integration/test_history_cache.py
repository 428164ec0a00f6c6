"""A back-dated import re-derives from the projector's remembered history (no re-read of the log), and
the read models are exactly what a rebuild from the event store gives, also when another process logged
a batch meanwhile (real PostgreSQL)."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from botranks_domain.model import CashEvent, CashRecorded, LedgerEvent, Order, OrderRecorded
from devtools.stack import sql
from libs.infra.db import Database
from services.projector import projection
from services.projector.history_cache import HistoryCache
from services.projector.rebuild import rebuild

from .test_projection_properties import DAYS, create_strategy_with_id, snapshot_of_read_models

pytestmark = pytest.mark.integration

SYMBOLS = ("HCA", "HCB")
WEEKDAYS = [d for d in DAYS if d.weekday() < 5]


@pytest.fixture()
def db(make_database):
    d = Database(make_database(), pool_size=1, max_overflow=2).create_tables()
    with sql(d) as curs:
        curs.executemany(
            "INSERT INTO prices (symbol, date, close) VALUES (%s, %s, %s)",
            [(s, day, D(100 + 3 * k) + i) for k, s in enumerate(("SPY", *SYMBOLS)) for i, day in enumerate(WEEKDAYS)],
        )
    yield d
    d.close()


def orders(sid: uuid.UUID, n: int, rng: random.Random) -> list[LedgerEvent]:
    out: list[LedgerEvent] = []
    for i in range(n):
        day = WEEKDAYS[i * len(WEEKDAYS) // n]
        when = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=15, minutes=i % 300)
        out.append(OrderRecorded(Order(
            id=uuid.uuid4(), strategy_id=sid, symbol=rng.choice(SYMBOLS), side=rng.choice(["buy", "buy", "sell"]),
            quantity=D(rng.randint(1, 9)), price=D(rng.randint(90, 160)), fees=D("0.5"), order_type="market",
            status="filled", executed_at=when, created_at=when, external_order_id=f"hc{i}", details=None,
        )))  # fmt: skip
    return out


def trades(db: Database) -> list[tuple]:
    with sql(db) as curs:
        return [tuple(r.values()) for r in curs.execute("SELECT * FROM rm_trades ORDER BY 1, 2").fetchall()]


def test_a_back_dated_import_rederives_from_remembered_history_exactly(db):
    sid = uuid.uuid4()
    create_strategy_with_id(db, sid)
    start = datetime.combine(WEEKDAYS[0], datetime.min.time(), UTC)
    deposit = CashRecorded(CashEvent(id=uuid.uuid4(), strategy_id=sid, event_type="deposit", amount=D(1_000_000),
                                     occurred_at=start, external_id=None, related_symbol=None, note=None,
                                     created_at=start))  # fmt: skip
    history = orders(sid, 240, random.Random(3))
    batches = [history[k::6] for k in range(6)]  # each spans the whole history: every one after the first is back-dated
    remembered = projection.HISTORIES
    hits, misses = remembered.hits, remembered.misses
    for k, batch in enumerate([[deposit], *batches]):
        if k == 4:  # another projector process logs and folds this one: this process's memory does not follow it
            projection.HISTORIES = HistoryCache()
        try:
            db.events.append([(e.aggregate_id, e) for e in batch])
            projection.project(db, db.events.notifications_after(db.projection.position(), 1000))
        finally:
            projection.HISTORIES = remembered
    # batch 2 read the log and remembered it, 3 followed, 4 went elsewhere, 5 found its entry stale and read the
    # log again, 6 followed
    assert (remembered.hits - hits, remembered.misses - misses) == (2, 2)
    incremental, incremental_trades = snapshot_of_read_models(db), trades(db)
    assert len(incremental["nav"]) == len(WEEKDAYS) and incremental_trades
    rebuild(db)
    assert snapshot_of_read_models(db) == incremental
    assert trades(db) == incremental_trades
