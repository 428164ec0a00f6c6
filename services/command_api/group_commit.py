"""Group commit: the appends of concurrent requests in one statement, one lock and one commit.

Every append takes the event store's table lock and waits for its commit's disk flush while it
holds it, so appends run one at a time: with many single-order requests the log's throughput is
one flush per order. Here the requests that arrive while an append is running wait for it and then
go together, in one ``EventStore.append`` (each request's events stay contiguous and in order,
and still commit all or nothing). When the group fails on an id that exists (an idempotency race
of one of its requests), each request is appended on its own, so only that request sees the
``IntegrityError`` and resolves its duplicates as before. Leader/follower on a condition
variable: the thread that finds no append running does the group's work; no extra thread.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from uuid import UUID

from botranks_domain.model import LedgerEvent
from libs.infra.store import IntegrityError

from .ingest import EventLog

#: the most events one grouped append takes (a request's own batch is never split)
MAX_GROUP_EVENTS = 5_000


class _Pending:
    __slots__ = ("events", "ids", "error", "done")

    def __init__(self, events: list[tuple[UUID, LedgerEvent]]) -> None:
        self.events = events
        self.ids: list[int] = []
        self.error: BaseException | None = None
        self.done = False

    def settle(self, ids: Sequence[int] = (), error: BaseException | None = None) -> None:
        self.ids, self.error, self.done = list(ids), error, True


class GroupCommit:
    """An :class:`~services.command_api.ingest.EventLog` that groups concurrent appends."""

    def __init__(self, log: EventLog, max_events: int = MAX_GROUP_EVENTS) -> None:
        self.log, self.max_events = log, max_events
        self._cond = threading.Condition()
        self._queue: list[_Pending] = []
        self._appending = False

    def existing(self, aggregate_ids: Sequence[UUID]) -> dict[UUID, LedgerEvent]:
        return self.log.existing(aggregate_ids)

    def append(self, events: Sequence[tuple[UUID, LedgerEvent]]) -> Sequence[int]:
        """Append ``events`` in one transaction (with other requests' events); their notification ids."""
        mine = _Pending(list(events))
        with self._cond:
            self._queue.append(mine)
            while not mine.done:
                if self._appending:
                    self._cond.wait()
                    continue
                self._appending = True
                group = self._take()
                self._cond.release()
                try:
                    self._append(group)
                finally:
                    self._cond.acquire()
                    self._appending = False
                    self._cond.notify_all()
        if mine.error is not None:
            raise mine.error
        return mine.ids

    def _take(self) -> list[_Pending]:
        """The oldest waiting requests, up to ``max_events`` events (at least one request)."""
        size, count = 0, 0
        for pending in self._queue:
            if count and size + len(pending.events) > self.max_events:
                break
            size += len(pending.events)
            count += 1
        group, self._queue = self._queue[:count], self._queue[count:]
        return group

    def _append(self, group: list[_Pending]) -> None:
        if len(group) > 1:
            try:
                ids = sorted(self.log.append([event for pending in group for event in pending.events]))
            except IntegrityError:
                pass  # one of them collides: each on its own below, so only that one sees it
            except BaseException as exc:  # e.g. the database is down: every request answers it
                for pending in group:
                    pending.settle(error=exc)
                return
            else:
                start = 0
                for pending in group:
                    pending.settle(ids[start : start + len(pending.events)])
                    start += len(pending.events)
                return
        for pending in group:
            try:
                pending.settle(self.log.append(pending.events))
            except BaseException as exc:
                pending.settle(error=exc)
