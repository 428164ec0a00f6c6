"""The projector daemon: folds the event store's notifications, woken up by JetStream.

The event store is the only truth: every event the projector applies is read from the
store (``notifications_after`` its tracked position), never taken from a bus message. The
bus is a wake-up call: a durable JetStream pull consumer whose deliveries only say "there
is something new", so a forged, replayed or lost message changes nothing but latency.
When the bus is idle or down, the daemon polls the store every ``IDLE_POLL_S``.
"""

from __future__ import annotations

import asyncio
import time

import structlog
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from libs.infra import bus
from libs.infra.db import Database

from .leaderboard import SCAN_EVERY_S, refresh_leaderboard
from .projection import apply_price_updates, project

FETCH_BATCH = 500
FETCH_TIMEOUT_S = 0.5
REBIND_AFTER_IDLE_FETCHES = 100  # ~50 s of empty fetches: re-bind (pull subscriptions can stall)
STORE_BATCH = 2000
IDLE_POLL_S = 0.5
RETRY_S = 1.0

log = structlog.get_logger(component="projector")


class ProjectorDaemon:
    def __init__(self, db: Database, nats_url: str) -> None:
        self.db = db
        self.nats_url = nats_url
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        #: the projector changed NAVs since the leaderboard's last stale scan (True at start: catch up)
        self._leaderboard_dirty = True
        self._last_scan = 0.0

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    async def run(self) -> None:
        store_id = await asyncio.to_thread(lambda: self.db.events.store_id)
        listener = asyncio.create_task(self._listen(store_id))
        try:
            while not self._stop.is_set():
                self._wake.clear()
                try:
                    await self.catch_up()
                    more = await self.refresh_leaderboard()
                except Exception as exc:  # noqa: BLE001 - database trouble: keep trying
                    log.warning("projection_retry", error=str(exc) or type(exc).__name__)
                    await self._sleep(RETRY_S)
                    continue
                if more:
                    continue  # more leaderboard work: catch up with new events first, then go on
                try:
                    await asyncio.wait_for(self._wake.wait(), IDLE_POLL_S)
                except asyncio.TimeoutError:
                    pass
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    async def catch_up(self) -> int:
        """Project everything the store has beyond the tracked position, then re-mark for new prices."""
        total = 0
        while not self._stop.is_set():
            last = await asyncio.to_thread(self.db.ledger.position)
            notifications = await asyncio.to_thread(self.db.events.notifications_after, last, STORE_BATCH)
            if not notifications:
                if await asyncio.to_thread(apply_price_updates, self.db):
                    self._leaderboard_dirty = True
                break
            projected = await asyncio.to_thread(project, self.db, notifications)
            if projected:
                self._leaderboard_dirty = True
            total += projected
        return total

    async def refresh_leaderboard(self) -> bool:
        """One bounded transaction of leaderboard upkeep; True when there may be more to do."""
        scan = self._leaderboard_dirty or time.monotonic() - self._last_scan > SCAN_EVERY_S
        done = await asyncio.to_thread(refresh_leaderboard, self.db, scan=scan)
        if scan:  # scan again until nothing is stale (an exception above leaves the flag as it was)
            self._leaderboard_dirty, self._last_scan = done > 0, time.monotonic()
        return done > 0

    async def _listen(self, store_id: str) -> None:
        """Turn JetStream deliveries into wake-ups, reconnecting for as long as the daemon runs."""
        while not self._stop.is_set():
            try:
                await self._consume(store_id)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - bus unreachable: the store poll carries on
                log.warning("bus_unavailable", error=str(exc) or type(exc).__name__)
                await self._sleep(RETRY_S)

    async def _consume(self, store_id: str) -> None:
        nc = await bus.connect(self.nats_url, "botranks-projector")
        try:
            await bus.ensure_stream(nc, store_id)
            js = nc.jetstream()
            durable = f"projector_{store_id}"
            config = ConsumerConfig(
                durable_name=durable, ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL,
                max_deliver=20, ack_wait=30, max_ack_pending=20_000,
            )
            sub = await js.pull_subscribe(f"{bus.subject_root(store_id)}.>", durable=durable,
                                          stream=bus.stream_name(store_id), config=config)
            idle = 0
            while not self._stop.is_set():
                try:
                    msgs = await sub.fetch(FETCH_BATCH, timeout=FETCH_TIMEOUT_S)
                except NatsTimeout:
                    idle += 1
                    if idle >= REBIND_AFTER_IDLE_FETCHES:
                        return  # the caller connects and binds again
                    continue
                idle = 0
                self._wake.set()  # what the messages say is read from the store, not from them
                await asyncio.gather(*(msg.ack() for msg in msgs))
        finally:
            await nc.close()
