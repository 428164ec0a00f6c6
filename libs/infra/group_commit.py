"""A group commit of reads: requests' items wait in a queue, and whenever no round trip is in flight, every
waiting item (at most ``max_batch``) goes in ONE call of ``send`` (one pipeline, one round trip). Under load
the batches grow by themselves (items arrive while one is in flight); alone, an item goes at once (no timer,
no added latency). What ``libs.infra.key_gate`` does for API keys and ``libs.infra.page_gate`` for pages."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import psycopg

#: a gate's own connection gives up opening after this long (its requests answer 503)
CONNECT_TIMEOUT_S = 3

Item = TypeVar("Item")
Result = TypeVar("Result")


class GroupCommit(Generic[Item, Result]):
    """Batches of ``Item`` sent by ``send`` (its results in the items' order); a failed batch fails each of
    its waiters with the error (a database error: their requests answer 503) after ``reset`` ran."""

    def __init__(
        self,
        send: Callable[[list[Item]], Awaitable[list[Result]]],
        reset: Callable[[], Awaitable[None]],
        max_batch: int = 512,
    ) -> None:
        self._send, self._reset, self.max_batch = send, reset, max_batch
        self._waiting: list[tuple[Item, asyncio.Future]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        #: batches sent and items answered
        self.batches = self.items = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def submit(self, item: Item) -> Result:
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        self._wake.set()
        return await future

    async def _send_twice(self, items: list[Item]) -> list[Result]:
        """``send``; when the connection turns out dead (the database restarted since the last batch: the
        first use is what tells), ``reset`` and once more on a new one, so that no request pays for a
        connection that died while it was idle (a batch whose answer was lost after its commit counts its
        hits twice: the limit errs on the strict side). A second failure is the database's answer."""
        try:
            return await self._send(items)
        except psycopg.OperationalError:
            await self._reset()
        try:
            return await self._send(items)
        except Exception:
            await self._reset()
            raise

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._waiting:
                batch, self._waiting = self._waiting[: self.max_batch], self._waiting[self.max_batch :]
                try:
                    results = await self._send_twice([item for item, _ in batch])
                except Exception as exc:  # noqa: BLE001 - each waiting request answers 503 (database unavailable)
                    error = exc if isinstance(exc, psycopg.Error) else psycopg.OperationalError(str(exc))
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                self.batches += 1
                self.items += len(batch)
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():  # its request may have gone (client disconnected)
                        future.set_result(result)


class GateConnection:
    """A gate's own autocommit connection for its batches: opened at first use, and again after ``drop``
    (what a failed batch's ``reset`` does)."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self._conn: psycopg.AsyncConnection | None = None

    async def get(self) -> psycopg.AsyncConnection:
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(
                self.database_url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
            )
        return self._conn

    async def drop(self) -> None:
        if self._conn is not None:
            try:
                await self._conn.close()
            except Exception:  # noqa: BLE001 - already broken
                pass
            self._conn = None
