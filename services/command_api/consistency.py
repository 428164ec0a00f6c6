"""Read-your-writes: let a write wait (briefly) until the projector has applied it.

The spec promises that the next GET /state reflects an ingest. The write is durable at
commit; this only delays the 2xx until the projector's tracking position passes the
write's notification id, or a timeout expires (the response then says so in the
``BotRanks-Projected: false`` header — nothing is lost, the projection catches up).
One poller per process, active only while someone waits.
"""

from __future__ import annotations

import asyncio

from libs.infra.store import EventStore

POLL_S = 0.005


class ProjectionWaiter:
    def __init__(self, store: EventStore, timeout: float) -> None:
        self.store = store
        self.timeout = timeout
        self.position = 0
        self._waiters: list[tuple[int, asyncio.Future]] = []
        self._poller: asyncio.Task | None = None

    async def wait_for(self, notification_id: int) -> bool:
        if notification_id <= self.position:
            return True
        if self.timeout <= 0:
            return False
        future = asyncio.get_running_loop().create_future()
        self._waiters.append((notification_id, future))
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll())
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.timeout)
        except asyncio.TimeoutError:
            return False
        finally:
            self._waiters = [(n, f) for n, f in self._waiters if f is not future]

    async def _poll(self) -> None:
        while self._waiters:
            try:
                self.position = await asyncio.to_thread(self.store.projected_up_to)
            except Exception:
                await asyncio.sleep(0.2)
                continue
            for n, future in self._waiters:
                if n <= self.position and not future.done():
                    future.set_result(True)
            await asyncio.sleep(POLL_S)
