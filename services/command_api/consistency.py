"""Read-your-writes: let a write wait (briefly) until the projector has applied it.

The spec promises that the next GET /state reflects an ingest. The write is durable at
commit; this only delays the 2xx until the position of the strategy's partition passes the
write's notification id, or a timeout expires (the response then says so in the
``BotRanks-Projected: false`` header — nothing is lost, the projection catches up).

The projectors announce every committed partition position with PostgreSQL ``NOTIFY`` (the
projection's ``positions_projected``); one listener per process wakes the waiters. A waiter
also asks the projection when it starts (and every ``RECHECK_S``), so a notification missed
while the listener was (re)connecting costs nothing but that read.
"""

from __future__ import annotations

import asyncio
import time
from uuid import UUID

import structlog

from botranks_domain.partition import partition_of
from libs.infra.readmodel import ReadModelTracking

RECONNECT_S = 1.0
RECHECK_S = 0.5
#: how long the partition count is trusted (it changes only with a rebuild)
LAYOUT_TTL_S = 5.0

log = structlog.get_logger(component="read_your_writes")


class ProjectionWaiter:
    def __init__(self, projection: ReadModelTracking, database_url: str, timeout: float) -> None:
        self.projection = projection
        self.database_url = database_url
        self.timeout = timeout
        self.positions: dict[int, int] = {}
        self._partitions, self._layout_read = 0, 0.0
        self._changed = asyncio.Condition()
        self._listener: asyncio.Task | None = None

    def start(self) -> None:
        if self.timeout > 0:
            self._listener = asyncio.create_task(self._listen())

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)

    async def _partition(self, strategy_id: UUID) -> int:
        if time.monotonic() - self._layout_read > LAYOUT_TTL_S:
            self._partitions, self._layout_read = await asyncio.to_thread(self.projection.partitions), time.monotonic()
        return partition_of(strategy_id, self._partitions)

    async def wait_for(self, strategy_id: UUID, notification_id: int) -> bool:
        """True once the strategy's partition has applied ``notification_id``; False after the timeout."""
        if notification_id <= 0:
            return True
        if self.timeout <= 0:
            return False
        try:
            async with asyncio.timeout(self.timeout):
                partition = await self._partition(strategy_id)
                while notification_id > self.positions.get(partition, 0):
                    for p, position in (await asyncio.to_thread(self.projection.partition_positions)).items():
                        await self._advance(p, position)
                    try:  # woken by the listener; re-read now and then in case it missed one
                        async with asyncio.timeout(RECHECK_S):
                            async with self._changed:
                                await self._changed.wait_for(
                                    lambda: notification_id <= self.positions.get(partition, 0)
                                )
                    except TimeoutError:
                        continue
            return True
        except TimeoutError:
            return False

    async def _advance(self, partition: int, position: int) -> None:
        if position > self.positions.get(partition, 0):
            async with self._changed:
                self.positions[partition] = max(self.positions.get(partition, 0), position)
                self._changed.notify_all()

    async def _listen(self) -> None:
        while True:
            try:
                async for partition, position in self.projection.positions_projected(self.database_url):
                    await self._advance(partition, position)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - database restarting: waiters fall back on their reads
                log.warning("listen_failed", error=str(exc) or type(exc).__name__)
                await asyncio.sleep(RECONNECT_S)
