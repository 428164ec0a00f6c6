"""Read-your-writes: let a write wait (briefly) until the projector has applied it.

The spec promises that the next GET /state reflects an ingest. The write is durable at
commit; this only delays the 2xx until the projector's tracking position passes the
write's notification id, or a timeout expires (the response then says so in the
``BotRanks-Projected: false`` header — nothing is lost, the projection catches up).

The projector announces every committed position with PostgreSQL ``NOTIFY`` (the ledger
view's ``positions_projected``); one listener per process wakes the waiters. A waiter also
asks the ledger view once when it starts, so a notification missed while the listener was
(re)connecting costs nothing but that one read.
"""

from __future__ import annotations

import asyncio

import structlog

from libs.infra.ledger_view import LedgerView

RECONNECT_S = 1.0
RECHECK_S = 0.5

log = structlog.get_logger(component="read_your_writes")


class ProjectionWaiter:
    def __init__(self, ledger: LedgerView, database_url: str, timeout: float) -> None:
        self.ledger = ledger
        self.database_url = database_url
        self.timeout = timeout
        self.position = 0
        self._changed = asyncio.Condition()
        self._listener: asyncio.Task | None = None

    def start(self) -> None:
        if self.timeout > 0:
            self._listener = asyncio.create_task(self._listen())

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)

    async def wait_for(self, notification_id: int) -> bool:
        """True once the projector has applied ``notification_id``; False after the timeout."""
        if notification_id <= self.position:
            return True
        if self.timeout <= 0:
            return False
        try:
            async with asyncio.timeout(self.timeout):
                while notification_id > self.position:
                    await self._advance(await asyncio.to_thread(self.ledger.position))
                    try:  # woken by the listener; re-read now and then in case it missed one
                        async with asyncio.timeout(RECHECK_S):
                            async with self._changed:
                                await self._changed.wait_for(lambda: notification_id <= self.position)
                    except TimeoutError:
                        continue
            return True
        except TimeoutError:
            return False

    async def _advance(self, position: int) -> None:
        if position > self.position:
            async with self._changed:
                self.position = max(self.position, position)
                self._changed.notify_all()

    async def _listen(self) -> None:
        while True:
            try:
                async for position in self.ledger.positions_projected(self.database_url):
                    await self._advance(position)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - database restarting: waiters fall back on their first read
                log.warning("listen_failed", error=str(exc) or type(exc).__name__)
                await asyncio.sleep(RECONNECT_S)
