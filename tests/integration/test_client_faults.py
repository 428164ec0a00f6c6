"""botranks_client through a fault-injecting proxy in front of `botranks up`: resets before and
after the server committed, 503s, 429s with Retry-After, answers held past the client's timeout.
5,000 orders in several submit_orders calls end up on the server exactly once each."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal
from uuid import UUID

import pytest

from botranks_client import AsyncClient, BadRequest, Client, TransportError, Unauthorized, _core

from .fault_proxy import FaultProxy, botranks_up, stored_orders

pytestmark = pytest.mark.integration

TOTAL = 5_000
PRICE = Decimal("101.25")


@pytest.fixture(scope="module")
def system(backends, make_database, tmp_path_factory):
    _, nats_url = backends
    url = make_database()
    # writes answer at commit (read-your-writes off) so that a normal answer is far below the client's timeout
    with botranks_up(
        tmp_path_factory.mktemp("client-faults"), url, nats_url, BOTRANKS_READ_YOUR_WRITES_TIMEOUT="0"
    ) as up:
        yield up, url


def new_strategy(up) -> tuple[str, str]:
    created = json.loads(up.cli("strategy", "create", "--name", "client-faults", timeout=60).strip().splitlines()[-1])
    return created["strategy_id"], created["api_key"]


def test_5000_orders_through_every_fault_are_stored_exactly_once(system):
    up, database_url = system
    strategy_id, key = new_strategy(up)
    # every other POST meets a fault, each kind in turn; some reads too
    schedule = {
        "POST": ["reset_after", None, "503", None, "429", None, "slow", None, "reset_before", None],
        "GET": [None, "503", None, "reset_after", None, "slow"],
    }
    lists = [
        [
            {"symbol": "AAPL", "side": "buy", "quantity": Decimal(n * 1000 + i + 1) / 100, "price": PRICE}
            for i in range(1000)
        ]
        for n in range(5)
    ]
    with (
        FaultProxy(up.base, schedule) as proxy,
        Client(proxy.url, key, strategy_id, timeout=4.0, max_retries=8) as client,
    ):
        started = time.monotonic()
        results = [client.submit_orders(orders) for orders in lists[:3]]

        # a call that gives up mid-way (after the server stored its first batch), then the same list again
        with Client(proxy.url, key, strategy_id, timeout=4.0, max_retries=1) as impatient:
            proxy.inject("reset_after", "reset_after")
            with pytest.raises(TransportError) as gave_up:
                impatient.submit_orders(lists[3])
            assert gave_up.value.partial.accepted_count == 0
        results.append(client.submit_orders(lists[3]))
        results.append(client.submit_orders(lists[4]))
        again = client.submit_orders(lists[1])  # a whole call repeated: nothing new
        elapsed = time.monotonic() - started

        assert sum(r.accepted_count for r in results) + sum(r.duplicates_count for r in results) == TOTAL
        assert (again.accepted_count, again.duplicates_count) == (0, 1000)
        # the answers lost after the server committed came back as duplicates on the retry
        assert sum(r.duplicates_count for r in results) >= 500
        for kind in ("reset_before", "503", "429", "reset_after", "slow"):
            assert proxy.injected[kind] >= 1, (kind, proxy.injected)

        # the truth: the event store holds each order once, under the id the client derived for it
        expected = {o.external_order_id for orders in lists for o in _core.prepare_orders(orders, UUID(strategy_id))}
        stored = stored_orders(database_url, strategy_id)
        assert len(stored) == TOTAL and set(stored) == expected

        # and the reads agree, through the faults as well (GETs are retried the same way)
        deadline = time.monotonic() + 60
        while True:
            listed = list(client.orders(limit=1000))
            if len(listed) >= TOTAL or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert len(listed) == TOTAL and {o.external_order_id for o in listed} == expected
        assert all(o.price == PRICE for o in listed)
        position = client.state().positions[0]
        assert position.quantity == sum((Decimal(i + 1) / 100 for i in range(TOTAL)), Decimal(0))
        assert proxy.injected["slow"] >= 2 and proxy.requests["GET"] > 5
    print(
        f"5,000 orders through {sum(proxy.injected.values())} injected faults in {elapsed:.1f} s:"
        f" {dict(proxy.injected)}"
    )


def test_every_method_against_the_real_server_sync_and_async(system):
    """No faults: each method's answer decodes into its botranks_domain shape, exactly."""
    up, _ = system
    strategy_id, key = new_strategy(up)
    with Client(up.base, key, strategy_id, read_your_writes=True) as client:
        deposit = client.record_cash("deposit", Decimal("1000000.01"), occurred_at="2026-04-20T13:00:00Z")
        assert deposit.status == "created" and deposit.event.amount == Decimal("1000000.01")
        assert (
            client.record_cash("deposit", Decimal("1000000.01"), occurred_at="2026-04-20T13:00:00Z").status
            == "duplicate"
        )
        result = client.submit_orders(
            [
                {
                    "symbol": "aapl",
                    "side": "buy",
                    "quantity": Decimal("0.1"),
                    "price": Decimal("90071992547409.93"),
                    "executed_at": "2026-04-20T14:31:22Z",
                }
            ]
        )
        assert result.projected is False  # this system answers at commit (read-your-writes off)
        state = client.state()  # ... so the client waited for the projection itself
        assert [(p.symbol, p.quantity, p.cost_basis) for p in state.positions] == [
            ("AAPL", Decimal("0.1"), Decimal("90071992547409.93"))
        ]
        assert [o.price for o in client.orders()] == [Decimal("90071992547409.93")]
        assert [c.amount for c in client.cash_events()] == [Decimal("1000000.01")]
        outcome = client.snapshot_positions(
            [{"symbol": "AAPL", "quantity": "0.2", "cost_basis": "100"}], log_deltas=True
        )
        assert outcome.upserted == 1
        entries = list(client.reconciliation())
        assert [(e.symbol, e.derived_quantity, e.snapshot_quantity) for e in entries] == [
            ("AAPL", Decimal("0.1"), Decimal("0.2"))
        ]
        assert client.nav().strategy_id == UUID(strategy_id)
        assert client.performance(benchmark="", risk_free_rate=Decimal("0.045")).benchmark is None
        with pytest.raises(BadRequest):
            client.performance(benchmark="NOSUCHBENCH")
        assert client.corporate_actions().items == []

    async def scenario() -> None:
        async with AsyncClient(up.base, key, strategy_id, read_your_writes=True) as client:
            again = await client.submit_orders(
                [{"symbol": "MSFT", "side": "buy", "quantity": 3, "price": 10, "external_order_id": "m-1"}]
            )
            assert again.accepted_count == 1
            assert len([o async for o in client.orders(limit=1)]) == 2
            assert (await client.state()).strategy_id == UUID(strategy_id)
        async with AsyncClient(up.base, "fq_live_" + "x" * 43, strategy_id) as stranger:
            with pytest.raises(Unauthorized):
                await stranger.state()

    asyncio.run(scenario())
