"""The relay: publishes every stored event, in notification order, to JetStream.

Its own process (``botranks relay``); one relay is active per event store, elected by a PostgreSQL
advisory lock among all that run (the others wait for the lock: failover is the lock passing to one
of them when the leader's connection goes). It records how far it got in ``relay_position`` (at most
every ``RECORD_EVERY_S``, and within it after the last publish). A batch's events go out as one
message per strategy (``bus.Notifications``, in id order, split only past ``bus.MAX_MESSAGE_BYTES``)
on the strategy's subject under its partition (``bus.subject_for``), so every partition is its own
ordered stream of work. A crash between publish and that record re-publishes: JetStream's duplicate
window (message id = store id + the first and last notification ids) drops the messages that come
out the same, and a batch cut differently only wakes the projector once more (it reads the store,
never the message). It wakes on the store's ``NOTIFY`` of every append (and polls every
``IDLE_POLL_S``); NATS being down only delays publication: ingest never waits for the bus.
"""

from __future__ import annotations

import asyncio
import time

import msgspec
import structlog

from botranks_domain.model import stored_event_strategy
from botranks_domain.partition import event_partition
from libs.infra import bus, locks
from libs.infra.db import Database
from libs.infra.metrics import PUBLISHED
from libs.infra.pg import Leadership
from libs.infra.readmodel import UNKNOWN_STRATEGY
from libs.infra.store import Notification

BATCH = 1000
IDLE_POLL_S = 0.25
LAYOUT_TTL_S = 5.0
#: the position is recorded at most this often (within it after the last publish): under live traffic a
#: transaction per batch was a tenth of the relay's work, and what a crash re-publishes past the record is
#: dropped by JetStream's duplicate window or wakes a projector once more
RECORD_EVERY_S = 0.5

log = structlog.get_logger(component="relay")


class Relay:
    def __init__(self, db: Database, nats_url: str, stream_replicas: int = 1) -> None:
        self.db = db
        self.stream_replicas = stream_replicas
        self.events = db.events
        self.database_url = db.url  # the leader lock's and the LISTEN's own connections
        self.nats_url = nats_url
        self.wakeup = asyncio.Event()
        self._stop = asyncio.Event()
        self.is_leader = False
        #: leading with a live JetStream connection
        self.publishing = False
        self._position = 0
        #: the position as last recorded in ``relay_position``, and when
        self._recorded, self._recorded_at = 0, 0.0
        self._layout, self._layout_read = 0, -LAYOUT_TTL_S

    def poke(self) -> None:
        """Publish now rather than at the next poll (an append committed)."""
        self.wakeup.set()

    def stop(self) -> None:
        self._stop.set()
        self.wakeup.set()

    async def run(self) -> None:
        listener = asyncio.create_task(self._listen())
        try:
            await self._lead()
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)

    async def _listen(self) -> None:
        """Every append's NOTIFY pokes the relay (reconnecting while it runs)."""
        while not self._stop.is_set():
            try:
                async for _ in self.events.appended(self.database_url):
                    self.poke()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - database restarting: the poll carries on
                log.warning("listen_failed", error=str(exc) or type(exc).__name__)
                await asyncio.sleep(1.0)

    async def _lead(self) -> None:
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
        except TimeoutError:
            pass
        self.wakeup.clear()

    async def _run_as_leader(self) -> None:
        leadership = Leadership(self.database_url, locks.RELAY)
        try:
            while not self._stop.is_set():
                if await asyncio.to_thread(leadership.try_acquire):
                    break
                await self._sleep(2.0)
            if self._stop.is_set():
                return
            self.is_leader = True
            log.info("relay_leading")
            store_id = await asyncio.to_thread(lambda: self.events.store_id)
            nc = await bus.connect(self.nats_url, "botranks-relay")
            try:
                await bus.ensure_stream(nc, store_id, self.stream_replicas)
                self.publishing = True
                js = nc.jetstream()
                # the leader alone moves the position: read it once, then keep it in memory
                self._position = self._recorded = await asyncio.to_thread(self.events.relay_position)
                while not self._stop.is_set():
                    moved = await self._publish_batch(js, store_id)
                    if time.monotonic() - self._recorded_at >= RECORD_EVERY_S:
                        await self._record_position()
                    if not moved:
                        await self._sleep(IDLE_POLL_S)
                await self._record_position()  # stopping
            finally:
                self.publishing = False
                await nc.close()
        finally:
            self.is_leader = False
            await asyncio.to_thread(leadership.release)

    @property
    def position(self) -> int:
        """The last notification id published (recorded in ``relay_position`` within ``RECORD_EVERY_S``)."""
        return self._position

    async def _record_position(self) -> None:
        """Record the position published so far, if it moved since the last record."""
        if self._position > self._recorded:
            await asyncio.to_thread(self.events.record_relay_position, self._position)
            self._recorded = self._position
        self._recorded_at = time.monotonic()

    async def _partitions(self) -> int:
        """The projection's layout (re-read every ``LAYOUT_TTL_S``: only a rebuild changes it, and a
        message on an old partition's subject only wakes a projector up late)."""
        if time.monotonic() - self._layout_read > LAYOUT_TTL_S:
            self._layout = await asyncio.to_thread(self.db.projection.partitions)
            self._layout_read = time.monotonic()
        return self._layout

    async def _publish_batch(self, js, store_id: str) -> int:
        notifications = await asyncio.to_thread(self.events.notifications_after, self._position, BATCH)
        if not notifications:
            return 0
        started = time.perf_counter()
        partitions = await self._partitions()
        by_strategy: dict[tuple[int, str], list[Notification]] = {}
        for n in notifications:
            strategy = str(stored_event_strategy(n.state) or UNKNOWN_STRATEGY)
            by_strategy.setdefault((event_partition(n.state, partitions), strategy), []).append(n)
        publishes = [
            js.publish(
                bus.subject_for(store_id, partition, strategy),
                msgspec.json.encode(bus.Notifications([_envelope(n) for n in chunk])),
                headers={"Nats-Msg-Id": bus.message_id(store_id, chunk[0].id, chunk[-1].id)},
                timeout=5,
            )
            for (partition, strategy), members in by_strategy.items()
            for chunk in _chunks(members)
        ]
        await asyncio.gather(*publishes)  # pipelined: all in flight, then all acks
        last = notifications[-1].id
        self._position = last
        PUBLISHED.inc(len(notifications))
        log.info(
            "relay_published",
            count=len(notifications),
            messages=len(publishes),
            up_to=last,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
        )
        return len(notifications)


def _envelope(n: Notification) -> bus.Envelope:
    return bus.Envelope(
        notification_id=n.id, originator_id=str(n.originator_id), topic=n.topic, state=msgspec.Raw(n.state)
    )


def _chunks(members: list[Notification]) -> list[list[Notification]]:
    """A strategy's notifications of a batch as messages of at most ``bus.MAX_MESSAGE_BYTES`` (an event over
    that travels alone: the store, not the bus, is what the projector reads)."""
    chunks: list[list[Notification]] = [[]]
    size = 0
    for n in members:
        cost = len(n.state) + 200  # the envelope around it
        if chunks[-1] and size + cost > bus.MAX_MESSAGE_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(n)
        size += cost
    return chunks
