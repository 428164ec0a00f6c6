"""The relay records how far it published (``relay_position``) at most every ``RECORD_EVERY_S``, not once
per batch, and within that interval after its last publish; a relay that starts from the recorded position
re-publishes what came after it, and JetStream's duplicate window drops what comes out the same.
A real relay on a fresh database and the run's NATS server."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal

from botranks_domain.model import CashEvent, CashRecorded
from libs.infra import bus
from libs.infra.db import Database
from services.relay import relay as relay_module
from services.relay.relay import RECORD_EVERY_S, Relay


def _deposit(strategy_id: uuid.UUID) -> CashRecorded:
    at = datetime(2024, 1, 2, 15, tzinfo=UTC)
    return CashRecorded(CashEvent(id=uuid.uuid4(), strategy_id=strategy_id, event_type="deposit", amount=Decimal(1),
                                  occurred_at=at, external_id=None, related_symbol=None, note=None, created_at=at))  # fmt: skip


def _append(db: Database, n: int) -> None:
    events = [_deposit(uuid.uuid4()) for _ in range(n)]
    db.events.append([(e.cash.id, e) for e in events])


async def _stream_messages(nats_url: str, store_id: str) -> int:
    nc = await bus.connect(nats_url, "test-relay-position")
    try:
        info = await nc.jetstream().stream_info(bus.stream_name(store_id))
        return int(info.state.messages)
    finally:
        await nc.close()


def test_the_position_is_recorded_per_interval_not_per_batch(backends, make_database, monkeypatch) -> None:
    _, nats_url = backends
    db = Database(make_database(), pool_size=2, max_overflow=2).create_tables()
    records: list[int] = []
    record = db.events.record_relay_position
    monkeypatch.setattr(db.events, "record_relay_position", lambda n: (records.append(n), record(n))[1])
    published: list[int] = []
    publish_batch = Relay._publish_batch

    async def counted(self: Relay, js: object, store_id: str) -> int:
        moved = await publish_batch(self, js, store_id)
        if moved:
            published.append(self.position)
        return moved

    monkeypatch.setattr(relay_module.Relay, "_publish_batch", counted)
    relay = Relay(db, nats_url)

    async def scenario() -> None:
        task = asyncio.create_task(relay.run())
        # 12 appends, each woken by its own NOTIFY: one batch each, within well under a second
        for _ in range(12):
            await asyncio.to_thread(_append, db, 3)
            await asyncio.sleep(0.03)
        head = await asyncio.to_thread(db.events.max_notification_id)
        deadline = time.monotonic() + 10
        while relay.position < head and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        published_at = time.monotonic()
        assert relay.position == head  # published (what readiness reports) without waiting for the record
        while db.events.relay_position() < head and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert db.events.relay_position() == head
        assert time.monotonic() - published_at <= RECORD_EVERY_S + IDLE_SLACK_S  # recorded within the interval
        relay.stop()
        await task

    asyncio.run(scenario())
    assert len(published) >= 6  # the appends went out in many batches...
    assert len(records) < len(published)  # ...and far fewer records
    assert records == sorted(records)

    # a relay that starts from an older record publishes again what came after it: nothing new reaches the stream
    store_id = db.events.store_id
    before = asyncio.run(_stream_messages(nats_url, store_id))
    with db.events.datastore.transaction(commit=True) as curs:  # as if it crashed a few batches back
        curs.execute("UPDATE relay_position SET notification_id = %s", (published[len(published) // 2],))
    again = Relay(db, nats_url)

    async def restart() -> None:
        task = asyncio.create_task(again.run())
        deadline = time.monotonic() + 10
        head = db.events.max_notification_id()
        while db.events.relay_position() < head and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        again.stop()
        await task

    asyncio.run(restart())
    assert db.events.relay_position() == db.events.max_notification_id()
    # each strategy here has one event, so each message comes out with the id it had: all dropped
    assert asyncio.run(_stream_messages(nats_url, store_id)) == before
    db.close()


#: the relay checks its record after each publish and each idle poll (``IDLE_POLL_S``), plus scheduling
IDLE_SLACK_S = relay_module.IDLE_POLL_S + 0.5
