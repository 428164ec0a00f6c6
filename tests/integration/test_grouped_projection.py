"""One projection transaction for several partitions (``project_partitions``): it projects those whose
lock is free and leaves, without waiting, those another transaction holds (the leaderboard's upkeep);
what it leaves is projected afterwards, and the read models then equal a projection one partition at a
time (real PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import psycopg
import pytest

from botranks_domain.model import CashEvent, CashRecorded, Order, OrderRecorded
from botranks_domain.partition import partition_of
from devtools.stack import sql
from libs.infra.db import Database
from libs.infra.locks import PROJECTOR
from services.projector.projection import project_partition, project_partitions

pytestmark = pytest.mark.integration

T0 = datetime(2025, 3, 3, 14, 30, tzinfo=UTC)


def _strategies_in_distinct_partitions(db: Database, partitions: int, count: int) -> list[uuid.UUID]:
    found: dict[int, uuid.UUID] = {}
    while len(found) < count:
        sid, _ = db.identity.create_strategy(f"g-{uuid.uuid4().hex[:6]}", first_key=False)
        found.setdefault(partition_of(sid, partitions), sid)
    return list(found.values())


def _events(sid: uuid.UUID) -> list:
    cash = CashRecorded(
        CashEvent(
            id=uuid.uuid4(),
            strategy_id=sid,
            event_type="deposit",
            amount=D(10_000),
            occurred_at=T0,
            external_id=None,
            related_symbol=None,
            note=None,
            created_at=T0,
        )
    )
    orders = [
        OrderRecorded(
            Order(
                id=uuid.uuid4(),
                strategy_id=sid,
                symbol="GRPA",
                side="buy",
                quantity=D(i + 1),
                price=D("10.5"),
                fees=D(0),
                order_type="market",
                status="filled",
                executed_at=T0 + timedelta(minutes=i + 1),
                external_order_id=None,
                details=None,
                created_at=T0 + timedelta(minutes=i + 1),
            )
        )
        for i in range(3)
    ]
    return [cash, *orders]


def _read_models(db: Database) -> dict[str, list]:
    with sql(db) as curs:
        return {
            table: curs.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
            for table in ("rm_positions", "rm_nav_daily", "rm_chain")
        } | {
            "rm_ledger": curs.execute(
                "SELECT strategy_id, cash_balance, total_equity FROM rm_ledger ORDER BY 1"
            ).fetchall()
        }


def _setup(make_database) -> tuple[Database, int, list[uuid.UUID], dict[int, list], int]:
    db = Database(make_database(), pool_size=1, max_overflow=3).create_tables()
    with sql(db) as curs:
        curs.executemany(
            "INSERT INTO prices (symbol, date, close) VALUES (%s, %s, %s)",
            [(symbol, T0.date() + timedelta(days=d), D(11 + d)) for symbol in ("GRPA", "SPY") for d in range(3)],
        )
    partitions = db.projection.partitions()
    sids = _strategies_in_distinct_partitions(db, partitions, 3)
    for sid in sids:
        db.events.append([(e.order.id if isinstance(e, OrderRecorded) else e.cash.id, e) for e in _events(sid)])
    head = db.events.max_notification_id()
    wanted = sorted(partition_of(s, partitions) for s in sids)
    shares = db.events.partitions_notifications(wanted, partitions, 0, 1000, head)
    return db, partitions, sids, shares, head


def test_a_held_partition_is_left_without_waiting_and_projected_after(make_database):
    db, partitions, sids, shares, head = _setup(make_database)
    busy = min(shares)
    with psycopg.connect(db.url, autocommit=False) as other:  # the board's upkeep, say, holds one partition
        other.execute("SELECT pg_advisory_xact_lock(%s, %s)", (PROJECTOR, busy))
        projected, left = project_partitions(db, shares, partitions, head, wait=False)
        assert left == [busy]
        assert projected == sum(len(v) for p, v in shares.items() if p != busy)
        positions = db.projection.partition_positions()
        assert positions[busy] < head and all(positions[p] == head for p in shares if p != busy)
        other.rollback()
    assert project_partition(db, busy, partitions, shares[busy], head) == len(shares[busy])
    grouped = _read_models(db)
    db.close()

    # the same log projected one partition at a time gives the same read models
    alone, partitions2, sids2, shares2, head2 = _setup(make_database)
    for p, events in shares2.items():
        project_partition(alone, p, partitions2, events, head2)
    by_one = _read_models(alone)
    alone.close()
    assert len(grouped["rm_ledger"]) == len(by_one["rm_ledger"]) == 3
    for table in ("rm_positions", "rm_nav_daily"):
        strip = lambda rows: sorted((r["quantity"] if "quantity" in r else r["total_equity"]) for r in rows)  # noqa: E731
        assert strip(grouped[table]) == strip(by_one[table]), table
    assert sorted(r["cash_balance"] for r in grouped["rm_ledger"]) == sorted(
        r["cash_balance"] for r in by_one["rm_ledger"]
    )
    assert len(grouped["rm_chain"]) == len(by_one["rm_chain"]) == 12  # every event applied once


def test_all_free_partitions_move_together_in_one_transaction(make_database):
    db, partitions, sids, shares, head = _setup(make_database)
    projected, left = project_partitions(db, shares, partitions, head, wait=False)
    assert (projected, left) == (12, [])
    assert all(db.projection.partition_positions()[p] == head for p in shares)
    assert project_partitions(db, shares, partitions, head, wait=False) == (0, [])  # nothing twice
    db.close()


def test_a_write_failing_inside_a_strategys_pipeline_costs_that_strategy_only(make_database):
    """A strategy's few writes go in one pipeline (libs/infra/readmodel/bulk.py), so an error comes back
    only when the pipeline ends: still inside its savepoint, which undoes them all and quarantines it,
    while the others of the same transaction are projected."""
    db, partitions, sids, shares, head = _setup(make_database)
    boom = sids[1]
    with sql(db) as curs:  # the database refuses that strategy's positions (as a full disk or a bug would)
        curs.execute(
            "CREATE FUNCTION refuse_position() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            f" IF NEW.strategy_id = '{boom}' THEN RAISE EXCEPTION 'refused in the test'; END IF; RETURN NEW; END $$"
        )
        curs.execute(
            "CREATE TRIGGER refuse_position BEFORE INSERT ON rm_positions FOR EACH ROW EXECUTE FUNCTION refuse_position()"
        )
    projected, left = project_partitions(db, shares, partitions, head, wait=False)
    assert (projected, left) == (12, [])
    assert set(db.ledger.quarantined()) == {boom}
    models = _read_models(db)
    ledgers = {r["strategy_id"] for r in models["rm_ledger"]}
    assert ledgers == set(sids) - {boom}  # its ledger row (written in the same pipeline) was undone too
    assert {r["strategy_id"] for r in models["rm_positions"]} == set(sids) - {boom}
    assert {r["strategy_id"] for r in models["rm_nav_daily"]} == set(sids) - {boom}
    assert all(db.projection.partition_positions()[p] == head for p in shares)
    db.close()
