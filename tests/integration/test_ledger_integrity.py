"""The ledger cannot be stopped, fooled or torn: issue 8's projector-side guarantees, on the real services."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import msgspec
import pytest
from eventsourcing.persistence import StoredEvent

from botranks_domain.model import Order, OrderRecorded
from botranks_domain.partition import partition_of
from devtools.stack import ROOT, Stack, sql, wait_until
from libs.infra import bus
from libs.infra.db import Database
from libs.infra.readmodel import UNKNOWN_STRATEGY
from services.projector.projection import apply_batch, project
from services.projector.rebuild import rebuild

pytestmark = pytest.mark.integration


def _order(
    strategy_id, quantity: Decimal, price: Decimal = Decimal(100), day: date = date(2026, 1, 5), symbol: str = "AAPL"
) -> OrderRecorded:
    when = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=15)
    return OrderRecorded(
        Order(
            id=uuid.uuid4(),
            strategy_id=strategy_id,
            symbol=symbol,
            side="buy",
            quantity=quantity,
            price=price,
            fees=Decimal(0),
            order_type="market",
            status="filled",
            executed_at=when,
            created_at=when,
            external_order_id=None,
            details=None,
        )
    )


def _quarantine(stack: Stack) -> dict[uuid.UUID, dict]:
    with stack.sql() as curs:
        return {r["strategy_id"]: r for r in curs.execute("SELECT * FROM rm_quarantine").fetchall()}


def test_an_event_the_projector_cannot_apply_halts_only_its_own_strategy(stack):
    """A stored event PostgreSQL cannot hold (it got past an older door) and an undecodable one."""
    poisoned, poisoned_auth = stack.new_strategy("poisoned")
    healthy, healthy_auth = stack.new_strategy("healthy")
    assert (
        stack.post(
            healthy, "orders", {"orders": [{"symbol": "KO", "side": "buy", "quantity": 1, "price": 60}]}, healthy_auth
        ).status_code
        == 200
    )
    stack.db.events.append([(uuid.uuid4(), _order(uuid.UUID(poisoned), Decimal("1e-20000")))])
    stack.wait_projected()
    assert "numeric" in _quarantine(stack)[uuid.UUID(poisoned)]["error"]
    not_an_event = StoredEvent(
        originator_id=uuid.uuid4(),
        originator_version=1,
        topic="OrderRecorded.v1",
        state=b'{"order": {"strategy_id": "' + poisoned.encode() + b'", "quantity": []}}',
    )
    not_json = StoredEvent(
        originator_id=uuid.uuid4(), originator_version=1, topic="OrderRecorded.v1", state=b'\xff{"order": [}'
    )
    stack.db.events.recorder.insert_events([not_an_event])
    stack.db.events.recorder.insert_events([not_json])
    stack.db.events.append([(uuid.uuid4(), _order(uuid.UUID(poisoned), Decimal(5)))])  # skipped: the strategy is halted
    # every other strategy keeps projecting, through the real pipeline
    r = stack.post(
        healthy, "orders", {"orders": [{"symbol": "KO", "side": "buy", "quantity": 2, "price": 61}]}, healthy_auth
    )
    assert r.status_code == 200 and r.headers["BotRanks-Projected"] == "true"
    assert stack.state(healthy, healthy_auth)["positions"][0]["quantity"] == 3
    stack.wait_projected()
    halted = _quarantine(stack)
    assert set(halted) == {uuid.UUID(poisoned), UNKNOWN_STRATEGY}  # bytes naming no strategy stop none
    assert "numeric" in halted[uuid.UUID(poisoned)]["error"] and halted[uuid.UUID(poisoned)]["skipped_events"] == 3
    ready = stack.query.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "degraded"
    assert {q["strategy_id"] for q in ready.json()["quarantined"]} == {poisoned, str(UNKNOWN_STRATEGY)}
    # a rebuild meets the same event and isolates it the same way
    subprocess.run(
        [sys.executable, "-m", "tools.cli", "projector", "rebuild"],
        cwd=ROOT,
        env=stack.env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert set(_quarantine(stack)) == {uuid.UUID(poisoned), UNKNOWN_STRATEGY}
    assert stack.state(healthy, healthy_auth)["positions"][0]["quantity"] == 3
    with stack.sql() as curs:  # leave the module's shared stack clean for the other tests
        curs.execute("DELETE FROM rm_quarantine")


def test_forged_bus_message_is_not_truth(stack):
    """A message published straight to JetStream with the next notification id changes nothing."""
    sid, auth = stack.new_strategy()
    assert stack.post(sid, "cash", {"event_type": "deposit", "amount": 1000}, auth).status_code == 201
    stack.wait_projected()
    fake = _order(uuid.UUID(sid), Decimal(424242))
    store_id, next_id = stack.db.events.store_id, stack.event_count() + 1

    async def forge() -> None:
        nc = await bus.connect(stack.nats_url, "attacker")
        try:
            envelope = bus.Envelope(
                notification_id=next_id,
                originator_id=str(fake.order.id),
                topic="OrderRecorded.v1",
                state=msgspec.Raw(msgspec.json.encode(fake)),
            )
            payload = msgspec.json.encode(bus.Notifications([envelope]))
            partition = partition_of(uuid.UUID(sid), stack.db.projection.partitions())
            await nc.jetstream().publish(
                bus.subject_for(store_id, partition, sid),
                payload,
                headers={"Nats-Msg-Id": bus.message_id(store_id, next_id)},
            )
        finally:
            await nc.close()

    asyncio.run(forge())
    time.sleep(1.0)  # the projector has been woken by the forgery and looked at the store
    assert stack.state(sid, auth)["positions"] == []
    # the real event that gets that id is applied, although JetStream's dedupe drops its message
    r = stack.post(sid, "orders", {"orders": [{"symbol": "AAPL", "side": "buy", "quantity": 7, "price": 10}]}, auth)
    assert r.status_code == 200
    stack.wait_projected()
    assert [(p["symbol"], p["quantity"]) for p in stack.state(sid, auth)["positions"]] == [("AAPL", 7)]


def test_overlapping_idempotent_batches_from_many_clients_all_succeed(stack):
    sid, auth = stack.new_strategy()
    pool = [f"ext-{i}" for i in range(300)]
    rng = random.Random(3)
    batches = [rng.sample(pool, 200) for _ in range(120)]

    def send(ids: list[str]):
        orders = [
            {
                "symbol": "AAPL",
                "side": "buy",
                "quantity": 1,
                "price": 10,
                "external_order_id": i,
                "executed_at": "2026-01-05T15:00:00Z",
            }
            for i in ids
        ]
        return stack.post(sid, "orders", {"orders": orders}, auth)

    with ThreadPoolExecutor(40) as pool_executor:
        responses = list(pool_executor.map(send, batches))
    assert [r.status_code for r in responses] == [200] * len(batches), {
        r.text for r in responses if r.status_code != 200
    }
    accepted = [o["external_order_id"] for r in responses for o in r.json()["accepted"]]
    assert len(accepted) == len(set(accepted)) == len(set().union(*batches))
    stack.wait_projected()
    assert stack.state(sid, auth)["positions"][0]["quantity"] == len(accepted)


def test_state_is_one_snapshot_while_writes_land(stack):
    """positions and nav.market_value always agree (no prices: positions are marked at cost basis)."""
    sid, auth = stack.new_strategy()
    stop = threading.Event()

    def write() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            stack.post(
                sid,
                "orders",
                {"orders": [{"symbol": "ZZTORN", "side": "buy", "quantity": 1 + i % 7, "price": 10 + i % 13}]},
                auth,
            )

    writer = threading.Thread(target=write)
    writer.start()
    torn, reads = [], 0
    try:
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            body = stack.state(sid, auth)
            if body["nav"] is None:
                continue
            reads += 1
            value = sum(Decimal(str(p["quantity"])) * Decimal(str(p["cost_basis"])) for p in body["positions"])
            if abs(value - Decimal(str(body["nav"]["market_value"]))) > Decimal("0.000001"):
                torn.append(body)
    finally:
        stop.set()
        writer.join(30)
    assert reads > 50 and not torn, torn[:2]


def _places(value) -> int:
    exponent = Decimal(str(value)).as_tuple().exponent
    return max(0, -exponent)


def test_one_published_precision_and_reconciliation_at_that_precision(stack):
    """Derived numbers have at most 10 decimal places; echoing /state back reconciles clean."""
    sid, auth = stack.new_strategy()
    stack.post(sid, "cash", {"event_type": "deposit", "amount": "1000.123456789012345678"}, auth)
    stack.post(
        sid,
        "orders",
        {
            "orders": [
                {"symbol": "ZZPREC", "side": "buy", "quantity": 1, "price": "100"},
                {"symbol": "ZZPREC", "side": "buy", "quantity": 2, "price": "100.01"},
                {"symbol": "ZZPREC2", "side": "buy", "quantity": "0.123456789012345678", "price": "3.3333"},
            ]
        },
        auth,
    )
    state = stack.state(sid, auth)
    numbers = [p[k] for p in state["positions"] for k in ("quantity", "cost_basis")] + [
        state["nav"][k] for k in ("total_equity", "cash_balance", "market_value")
    ]
    assert max(_places(n) for n in numbers) == 10, numbers
    basis = {p["symbol"]: p["cost_basis"] for p in state["positions"]}
    assert Decimal(str(basis["ZZPREC"])) == Decimal("100.0066666667")
    # the bot sends back what it read, through its float-parsing JSON library
    echo = {
        "positions": [
            {"symbol": p["symbol"], "quantity": p["quantity"], "cost_basis": p["cost_basis"]}
            for p in state["positions"]
        ],
        "log_deltas": True,
    }
    r = stack.post(sid, "positions/snapshot", echo, auth)
    assert r.status_code == 200 and r.json()["reconciliation_entries"] == 0, r.text
    changed = {**echo, "positions": [{**echo["positions"][0], "cost_basis": 100.0067}, echo["positions"][1]]}
    assert stack.post(sid, "positions/snapshot", changed, auth).json()["reconciliation_entries"] == 1


# ---------------------------------------------------------------- the projector on its own


@pytest.fixture
def db(make_database):
    d = Database(make_database(), pool_size=2, max_overflow=4).create_tables()
    yield d
    d.close()


def test_a_year_backfilled_in_date_order_never_refolds(db):
    """Appends on days that already have NAV rows continue from the tail state: O(batch), not O(history)."""
    days = [date(2025, 1, 1) + timedelta(days=i) for i in range(365)]
    trading = [d for d in days if d.weekday() < 5]
    with sql(db) as curs:
        curs.executemany(
            "INSERT INTO prices (symbol, date, close) VALUES (%s, %s, %s)",
            [
                (s, d, Decimal(100 + i % 17 + (5 if s == "SPY" else 0)))
                for s in ("AAPL", "SPY")
                for i, d in enumerate(trading)
            ],
        )
    strategy, _ = db.identity.create_strategy("backfill", first_key=False)
    events = [_order(strategy, Decimal(1 + i % 3), Decimal(100 + i % 17), day=d) for d in trading for i in range(6)]
    refolds = []
    for i in range(0, len(events), 50):  # batches split inside days, as a bot's 500-order batches are
        ids = db.events.append([(uuid.uuid4(), e) for e in events[i : i + 50]])
        with db.projection.writing() as writer:
            refolds.append(apply_batch(writer, db.events.notifications_after(min(ids) - 1, 100)).refolds)
    assert sum(refolds) == 0, refolds
    with sql(db) as curs:
        incremental = [
            tuple(r.values())
            for r in curs.execute(
                "SELECT date, cash, market_value, total_equity, external_flow FROM rm_nav_daily ORDER BY date"
            )
        ]
    rebuild(db)
    with sql(db) as curs:
        rebuilt = [
            tuple(r.values())
            for r in curs.execute(
                "SELECT date, cash, market_value, total_equity, external_flow FROM rm_nav_daily ORDER BY date"
            )
        ]
    assert len(incremental) == len(trading) and incremental == rebuilt


def test_readers_are_not_blocked_while_rebuild_runs(db):
    strategies = [db.identity.create_strategy("r", first_key=False)[0] for _ in range(40)]
    for k in range(10):
        db.events.append(
            [
                (uuid.uuid4(), _order(s, Decimal(1), day=date(2026, 1, 5) + timedelta(days=k)))
                for s in strategies
                for _ in range(25)
            ]
        )
    while notifications := db.events.notifications_after(db.projection.position(), 2000):
        project(db, notifications)
    rebuilder = threading.Thread(target=rebuild, args=(db, 500, 2))
    rebuilder.start()
    wait_until(db.projection.shadow_exists, 30, "the rebuild to start")
    slowest, reads = 0.0, 0
    while rebuilder.is_alive() and db.projection.shadow_exists():
        started = time.perf_counter()
        with sql(db) as curs:
            curs.execute("SET LOCAL statement_timeout = '2s'")
            assert curs.execute("SELECT count(*) AS n FROM rm_ledger").fetchone()["n"] == len(strategies)
        slowest, reads = max(slowest, time.perf_counter() - started), reads + 1
    rebuilder.join(120)
    assert reads > 0 and slowest < 1.0
    with sql(db) as curs:
        assert curs.execute("SELECT count(*) AS n FROM rm_orders").fetchone()["n"] == 40 * 25 * 10


def test_an_unpriced_default_benchmark_is_a_warning_and_a_named_one_is_400(stack):
    strategy_id, key = stack.db.identity.create_strategy("fresh install", benchmark="ZZNOPRICE")
    auth = {"Authorization": f"Bearer {key}"}
    stack.post(str(strategy_id), "cash", {"event_type": "deposit", "amount": 100}, auth)
    perf = stack.query.get(f"/api/v1/strategies/{strategy_id}/performance", headers=auth)
    assert perf.status_code == 200 and perf.json()["benchmark"] is None
    assert [w["code"] for w in perf.json()["warnings"]] == ["benchmark_unpriced"]
    named = stack.query.get(
        f"/api/v1/strategies/{strategy_id}/performance", params={"benchmark": "ZZNOPRICE"}, headers=auth
    )
    assert named.status_code == 400 and named.json() == {"detail": "Unresolvable benchmark symbol: ZZNOPRICE"}
