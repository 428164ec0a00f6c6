"""The relay: publishes every stored event, in notification order, to JetStream.

One relay is active per event store (a PostgreSQL advisory lock elects it among
command_api replicas). It records how far it got in ``relay_position``; a crash between
publish and that record re-publishes, and JetStream's duplicate window (message id =
store id + notification id) plus the projector's own tracking make that harmless.
NATS being down only delays publication: ingest never waits for the bus.
"""

from __future__ import annotations

import asyncio
import time

import msgspec
import psycopg
import structlog

from libs.infra import bus
from libs.infra.store import EventStore

RELAY_LOCK = 0x42_07_5A_02
BATCH = 1000
IDLE_POLL_S = 0.25

log = structlog.get_logger(component="relay")


class _StrategyOnly(msgspec.Struct):
    strategy_id: str


class _EventStrategy(msgspec.Struct):
    """Just enough of a stored event to route it: the strategy id, wherever the event keeps it."""

    order: _StrategyOnly | None = None
    cash: _StrategyOnly | None = None
    snapshot: _StrategyOnly | None = None

    @property
    def strategy_id(self) -> str:
        return (self.order or self.cash or self.snapshot).strategy_id  # type: ignore[union-attr]


_strategy_of = msgspec.json.Decoder(_EventStrategy)


class Relay:
    def __init__(self, store: EventStore, nats_url: str) -> None:
        self.store = store
        self.nats_url = nats_url
        self.wakeup = asyncio.Event()
        self._stop = asyncio.Event()

    def poke(self) -> None:
        """Called after an append commits, so publication does not wait for the poll."""
        self.wakeup.set()

    def stop(self) -> None:
        self._stop.set()
        self.wakeup.set()

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                await self._run_as_leader()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # NATS or PostgreSQL trouble: back off, try again
                log.warning("relay_error", error=str(exc))
                await self._sleep(1.0)

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.wakeup.wait(), seconds)
        except asyncio.TimeoutError:
            pass
        self.wakeup.clear()

    async def _run_as_leader(self) -> None:
        lock_conn = await asyncio.to_thread(psycopg.connect, self.store.database_url, autocommit=True)
        try:
            while not self._stop.is_set():
                got = await asyncio.to_thread(
                    lambda: lock_conn.execute("SELECT pg_try_advisory_lock(%s)", (RELAY_LOCK,)).fetchone()[0])
                if got:
                    break
                await self._sleep(2.0)
            if self._stop.is_set():
                return
            store_id = await asyncio.to_thread(lambda: self.store.store_id)
            nc = await bus.connect(self.nats_url, "botranks-relay")
            try:
                await bus.ensure_stream(nc, store_id)
                js = nc.jetstream()
                while not self._stop.is_set():
                    moved = await self._publish_batch(js, store_id)
                    if not moved:
                        await self._sleep(IDLE_POLL_S)
            finally:
                await nc.close()
        finally:
            await asyncio.to_thread(lock_conn.close)

    async def _publish_batch(self, js, store_id: str) -> int:
        position = await asyncio.to_thread(self._position)
        notifications = await asyncio.to_thread(self.store.notifications_after, position, BATCH)
        if not notifications:
            return 0
        started = time.perf_counter()
        publishes = []
        for n in notifications:
            strategy = _strategy_of.decode(n.state).strategy_id
            payload = msgspec.json.encode(bus.Envelope(
                notification_id=n.id, originator_id=str(n.originator_id), topic=n.topic,
                state=msgspec.Raw(n.state),
            ))
            publishes.append(js.publish(
                bus.subject_for(store_id, strategy), payload,
                headers={"Nats-Msg-Id": bus.message_id(store_id, n.id)},
                timeout=5,
            ))
        await asyncio.gather(*publishes)  # pipelined: all in flight, then all acks
        last = notifications[-1].id
        await asyncio.to_thread(self._record_position, last)
        log.info("relay_published", count=len(notifications), up_to=last,
                 duration_ms=round((time.perf_counter() - started) * 1000, 2))
        return len(notifications)

    def _position(self) -> int:
        with self.store.cursor() as curs:
            return curs.execute("SELECT notification_id FROM relay_position").fetchone()["notification_id"]

    def _record_position(self, notification_id: int) -> None:
        with self.store.transaction() as curs:
            curs.execute("UPDATE relay_position SET notification_id = %s WHERE notification_id < %s",
                         (notification_id, notification_id))
