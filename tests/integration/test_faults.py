"""Nothing acknowledged is lost: projector SIGKILL, NATS outage, and `rebuild` equality."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal

import pytest

from devtools.stack import ROOT, Stack, wait_until
from tools.embedded import NatsServer

pytestmark = pytest.mark.integration


def random_batch(rng: random.Random, n: int, day0: int = 1) -> dict:
    orders = []
    for _ in range(n):
        day = rng.randint(day0, 28)  # many orders are back-dated relative to earlier batches
        orders.append(
            {
                "symbol": rng.choice(["AAPL", "MSFT", "KO"]),
                "side": rng.choice(["buy", "sell"]),
                "quantity": rng.randint(1, 50),
                "price": round(rng.uniform(10, 500), 2),
                "fees": round(rng.uniform(0, 2), 2),
                "status": rng.choice(["filled", "filled", "partial", "cancelled"]),
                "executed_at": f"2026-02-{day:02d}T{rng.randint(14, 20)}:{rng.randint(0, 59):02d}:00Z",
            }
        )
    return {"orders": orders}


def rebuild_cli(stack: Stack) -> None:
    subprocess.run(
        [sys.executable, "-m", "tools.cli", "projector", "rebuild"],
        cwd=ROOT,
        env=stack.env,
        check=True,
        capture_output=True,
        timeout=120,
    )


def test_projector_sigkill_mid_stream_then_restart_equals_rebuild(backends, make_database, tmp_path):
    _, nats_url = backends
    stack = Stack(make_database(), nats_url, tmp_path, BOTRANKS_READ_YOUR_WRITES_TIMEOUT="0")
    stack.start()
    try:
        strategies = [stack.new_strategy(f"s{i}") for i in range(3)]
        rng = random.Random(7)
        accepted = []

        def ingest():
            for i in range(30):
                sid, auth = strategies[i % 3]
                r = stack.post(sid, "orders", random_batch(rng, 100), auth)
                assert r.status_code == 200
                accepted.append(r.json()["counts"]["accepted"])
                stack.post(
                    sid,
                    "cash",
                    {"event_type": "deposit", "amount": 1000 + i, "occurred_at": f"2026-02-{1 + i % 27:02d}T10:00:00Z"},
                    auth,
                )

        writer = threading.Thread(target=ingest)
        writer.start()
        wait_until(lambda: stack.db.projection.position() > 300, 30, "the projector to be mid-stream")
        stack.kill("projector", signal.SIGKILL)
        time.sleep(0.5)
        stack.start_projector()
        writer.join(120)
        stack.wait_projected()
        incremental = stack.read_models()
        assert len(incremental["orders"]) == sum(accepted) == 3000
        assert len(incremental["cash"]) == 30
        stack.kill("projector", signal.SIGTERM)
        rebuild_cli(stack)
        assert stack.read_models() == incremental
    finally:
        stack.stop()


def test_nats_outage_during_ingest_loses_nothing(make_database, tmp_path):
    nats = NatsServer(tmp_path / "nats").start()
    stack = Stack(make_database(), nats.url, tmp_path, BOTRANKS_READ_YOUR_WRITES_TIMEOUT="0")
    stack.start()
    try:
        sid, auth = stack.new_strategy()
        rng = random.Random(11)
        total = Decimal(0)

        def send(n_batches: int) -> None:
            nonlocal total
            for _ in range(n_batches):
                batch = random_batch(rng, 50)
                r = stack.post(sid, "orders", batch, auth)
                assert r.status_code == 200, r.text
                total += sum(
                    Decimal(str(o["quantity"])) * (1 if o["side"] == "buy" else -1)
                    for o in batch["orders"]
                    if o["status"] != "cancelled"
                )

        send(5)
        stack.wait_projected()
        nats.stop(kill=True)
        send(10)  # the bus is down: ingest must still acknowledge
        nats.start()  # same port, same storage
        send(5)
        stack.wait_projected(60)
        positions = stack.state(sid, auth)["positions"]
        assert sum(Decimal(str(p["quantity"])) for p in positions) == total
        assert len(stack.read_models()["orders"]) == 1000
        # the relay caught up too: everything stored was published once the bus came back
        wait_until(
            lambda: stack.db.events.relay_position() >= stack.event_count(), 60, "the relay to publish the backlog"
        )
    finally:
        stack.stop()
        nats.stop()


def test_every_process_killed_with_the_bus_down_loses_nothing(make_database, tmp_path):
    """Acknowledged while NATS is down, then SIGKILL of every service: all of it projects after restart."""
    nats = NatsServer(tmp_path / "nats").start()
    stack = Stack(make_database(), nats.url, tmp_path, BOTRANKS_READ_YOUR_WRITES_TIMEOUT="0")
    stack.start()
    try:
        sid, auth = stack.new_strategy()
        stack.kill("projector", signal.SIGKILL)  # so that nothing is projected before the restart
        nats.stop(kill=True)
        rng = random.Random(5)
        for _ in range(6):
            assert stack.post(sid, "orders", random_batch(rng, 50), auth).status_code == 200
        assert stack.db.projection.position() == 0
        for name in list(stack.processes):
            stack.kill(name, signal.SIGKILL)
        nats.start()
        stack.start()
        stack.wait_projected(60)
        assert len(stack.read_models()["orders"]) == 300
        incremental = stack.read_models()
        stack.kill("projector", signal.SIGTERM)
        rebuild_cli(stack)
        assert stack.read_models() == incremental
    finally:
        stack.stop()
        nats.stop()


def test_a_deleted_stream_is_recreated_and_nothing_is_missed(backends, make_database, tmp_path):
    import asyncio

    from libs.infra import bus

    _, nats_url = backends
    stack = Stack(make_database(), nats_url, tmp_path, BOTRANKS_READ_YOUR_WRITES_TIMEOUT="0")
    stack.start()
    try:
        sid, auth = stack.new_strategy()
        rng = random.Random(9)
        stack.post(sid, "orders", random_batch(rng, 100), auth)
        stack.wait_projected()

        async def delete() -> None:
            nc = await bus.connect(nats_url, "test")
            await nc.jetstream().delete_stream(bus.stream_name(stack.db.events.store_id))
            await nc.close()

        asyncio.run(delete())
        for _ in range(3):
            assert stack.post(sid, "orders", random_batch(rng, 100), auth).status_code == 200
        stack.wait_projected(60)
        assert len(stack.read_models()["orders"]) == 400
    finally:
        stack.stop()
