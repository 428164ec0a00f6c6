"""The projector's memory of the histories it re-derives, so that a back-dated import does not re-read them.

A back-dated batch re-folds its strategy's events from the checkpoint before its earliest event: an
import that posts three years in batches that each span the three years re-reads (and decodes) the
whole history on every batch, which costs more than folding it. This process keeps the decoded
histories of the strategies it re-derived, in fold order, up to a bound on the events kept in all
(least recently used first out).

An entry is addressed by its strategy's hash-chain head (``rm_chain_days``: a sha256 over every logged
event's stored bytes in arrival order), never by a position or a time: it is the decoding of exactly
the events that head covers, so it is right whichever process logged them, whatever transaction rolled
back, and across a rebuild (which chains the same bytes to the same digests). When the projector logs a
strategy's new events it moves the entry from the old head to the new one (those events merged in);
an entry whose head is not the one read under the partition's lock is not used, and the history is read
from the log tables as before.
"""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from botranks_domain.model import LedgerEvent

#: events kept in all by default (about 1 kB each, decoded)
DEFAULT_MAX_EVENTS = 100_000

History = list[tuple[int, LedgerEvent]]
#: reads a strategy's history from the log tables from a time on (``LedgerWriter.history``)
Reader = Callable[[UUID, datetime | None], History]


@dataclass(frozen=True, slots=True)
class Logged:
    """What logging a batch did to one strategy's chain: the head before (None: no event yet) and after."""

    before: bytes | None
    after: bytes
    events: int  # the chain's length after


@dataclass
class _Entry:
    digest: bytes
    events: History
    keys: list[tuple[datetime, int]] = field(default_factory=list)


def _fold_key(item: tuple[int, LedgerEvent]) -> tuple[datetime, int]:
    return item[1].effective_at, item[0]


class HistoryCache:
    """Decoded histories by strategy, each valid for one chain head; at most ``max_events`` events in all."""

    def __init__(self, max_events: int = DEFAULT_MAX_EVENTS) -> None:
        self.max_events = max_events
        self._entries: OrderedDict[UUID, _Entry] = OrderedDict()
        self._size = 0
        self.hits = 0
        self.misses = 0
        # the daemon projects one batch at a time, but a process may project from several threads
        self._lock = threading.RLock()

    def __len__(self) -> int:
        return self._size

    def history(
        self,
        strategy_id: UUID,
        since: datetime | None,
        logged: Logged | None,
        read: Reader,
    ) -> History:
        """The strategy's (notification id, event) pairs with effective time >= ``since``, in fold order.

        ``logged``: how logging this batch's events moved its chain, in this transaction (its entry has
        followed through :meth:`advance`; None: not known here, e.g. a re-mark: read from the log tables,
        ``read``, and nothing kept)."""
        if logged is None or self.max_events <= 0:
            return read(strategy_id, since)
        with self._lock:
            return self._history(strategy_id, since, logged, read)

    def _history(self, strategy_id: UUID, since: datetime | None, logged: Logged, read: Reader) -> History:
        entry = self._entries.get(strategy_id)
        if entry is None or entry.digest != logged.after:
            self.misses += 1
            if logged.events > self.max_events:
                self._drop(strategy_id)
                return read(strategy_id, since)
            entry = self._store(strategy_id, logged.after, read(strategy_id, None))
        else:
            self.hits += 1
            self._entries.move_to_end(strategy_id)
        if since is None:
            return list(entry.events)
        return entry.events[bisect.bisect_left(entry.keys, (since, -1)) :]

    def advance(self, strategy_id: UUID, logged: Logged, new: Sequence[tuple[int, LedgerEvent]]) -> None:
        """Logging ``new`` moved the strategy's chain as ``logged`` says: its entry, if it is at the head
        before, follows with them merged in (an entry at another head stays until it is asked for). The
        projector calls it for every strategy it logs events of, re-derived or not."""
        with self._lock:
            entry = self._entries.get(strategy_id)
            if entry is not None and entry.digest == logged.before and logged.before != logged.after:
                self._merge(entry, new, logged.after)

    def _merge(self, entry: _Entry, new: Sequence[tuple[int, LedgerEvent]], digest: bytes) -> None:
        # one pass of slices (a back-dated batch lands all over the history: an insert each would move it all)
        keys: list[tuple[datetime, int]] = []
        events: History = []
        done = 0
        for item in sorted(new, key=_fold_key):
            key = _fold_key(item)
            at = bisect.bisect_right(entry.keys, key, lo=done)
            keys += entry.keys[done:at]
            events += entry.events[done:at]
            keys.append(key)
            events.append(item)
            done = at
        entry.keys, entry.events = keys + entry.keys[done:], events + entry.events[done:]
        entry.digest = digest
        self._size += len(new)
        self._evict()

    def _store(self, strategy_id: UUID, digest: bytes, events: History) -> _Entry:
        self._drop(strategy_id)
        entry = _Entry(digest, events, [_fold_key(item) for item in events])
        self._entries[strategy_id] = entry
        self._size += len(events)
        self._evict(keep=strategy_id)
        return entry

    def _drop(self, strategy_id: UUID) -> None:
        entry = self._entries.pop(strategy_id, None)
        if entry is not None:
            self._size -= len(entry.events)

    def _evict(self, keep: UUID | None = None) -> None:
        while self._size > self.max_events and self._entries:
            oldest = next(iter(self._entries))
            if oldest == keep:
                if len(self._entries) == 1:
                    return
                self._entries.move_to_end(oldest)
                continue
            self._drop(oldest)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._size = 0


#: this process's cache (the projector daemon sets its bound from BOTRANKS_PROJECTOR_HISTORY_CACHE_EVENTS)
HISTORIES = HistoryCache()
