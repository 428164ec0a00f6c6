"""The projector daemon: a durable JetStream pull consumer, backed by the event store.

NATS is the transport, never the truth. Messages are applied when they continue the
tracked position without a gap; otherwise (lost messages, a gap left by a rolled-back
insert, a deleted stream) the missing range is read from the event store, which commits
notification ids in order. When the bus is idle or down, the daemon polls the store.
"""

from __future__ import annotations

import asyncio

import msgspec
import structlog
from eventsourcing.persistence import Notification
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from libs.infra import bus
from libs.infra.store import EventStore

from .projection import apply_price_updates, project

FETCH_BATCH = 500
FETCH_TIMEOUT_S = 0.5
REBIND_AFTER_IDLE_FETCHES = 100  # ~50 s of empty fetches: re-bind (pull subscriptions can stall)
STORE_BATCH = 2000

log = structlog.get_logger(component="projector")
_envelope = msgspec.json.Decoder(bus.Envelope)


class ProjectorDaemon:
    def __init__(self, store: EventStore, nats_url: str) -> None:
        self.store = store
        self.nats_url = nats_url
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        store_id = await asyncio.to_thread(lambda: self.store.store_id)
        await self.catch_up()
        while not self._stop.is_set():
            try:
                await self._consume(store_id)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # bus unreachable: keep projecting from the store
                log.warning("bus_unavailable", error=str(exc) or type(exc).__name__)
                await self.catch_up()
                await self._pause(1.0)

    async def _pause(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    async def catch_up(self) -> int:
        """Project everything the store has beyond the tracked position, then re-mark for new prices."""
        total = 0
        while True:
            last = await asyncio.to_thread(self.store.projected_up_to)
            notifications = await asyncio.to_thread(self.store.notifications_after, last, STORE_BATCH)
            if not notifications:
                await asyncio.to_thread(apply_price_updates, self.store)
                return total
            total += await asyncio.to_thread(project, self.store, notifications)

    async def _consume(self, store_id: str) -> None:
        nc = await bus.connect(self.nats_url, "botranks-projector")
        try:
            await bus.ensure_stream(nc, store_id)
            js = nc.jetstream()
            durable = f"projector_{store_id}"
            # a message that fails keeps coming back with growing pauses, then is dropped by the
            # bus: harmless, since every notification is also read from the event store
            config = ConsumerConfig(
                durable_name=durable, ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL,
                max_deliver=20, ack_wait=30, backoff=[1.0, 5.0, 15.0, 30.0], max_ack_pending=20_000,
            )
            sub = await js.pull_subscribe(f"{bus.subject_root(store_id)}.>", durable=durable,
                                          stream=bus.stream_name(store_id), config=config)
            idle = 0
            while not self._stop.is_set():
                try:
                    msgs = await sub.fetch(FETCH_BATCH, timeout=FETCH_TIMEOUT_S)
                except NatsTimeout:
                    idle += 1
                    await self.catch_up()  # idle: make sure nothing was lost on the way
                    if idle >= REBIND_AFTER_IDLE_FETCHES:
                        return  # the caller connects and binds again
                    continue
                idle = 0
                await self._apply(msgs)
        finally:
            await nc.close()

    async def _apply(self, msgs) -> None:
        last = await asyncio.to_thread(self.store.projected_up_to)
        notifications: list[Notification] = []
        for msg in msgs:
            env = _envelope.decode(msg.data)
            if env.notification_id > last:
                notifications.append(Notification(
                    id=env.notification_id, originator_id=env.originator_id, originator_version=1,
                    topic=env.topic, state=bytes(env.state),
                ))
        notifications.sort(key=lambda n: n.id)
        if notifications:
            contiguous = all(n.id == last + 1 + i for i, n in enumerate(notifications))
            if not contiguous:  # fill the gap from the store, which is complete below any id we saw
                notifications = list(await asyncio.to_thread(
                    self.store.notifications_after, last, len(notifications) + STORE_BATCH,
                    notifications[-1].id,
                ))
            await asyncio.to_thread(project, self.store, notifications)
        await asyncio.gather(*(msg.ack() for msg in msgs))
