"""The projector's remembered histories (services/projector/history_cache.py): what they answer is what
the log tables would, for the chain head they are asked at, and they stay within their bound."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from botranks_domain.model import CashEvent, CashRecorded, LedgerEvent
from services.projector.history_cache import HistoryCache, Logged

T0 = datetime(2024, 1, 2, 15, tzinfo=UTC)
SID = uuid.uuid4()


def cash(minutes: int) -> CashRecorded:
    at = T0 + timedelta(minutes=minutes)
    return CashRecorded(CashEvent(id=uuid.uuid4(), strategy_id=SID, event_type="deposit", amount=Decimal(1),
                                  occurred_at=at, external_id=None, related_symbol=None, note=None, created_at=at))  # fmt: skip


class Log:
    """A stand-in for the log tables: events by notification id, read in fold order; a head per batch."""

    def __init__(self) -> None:
        self.events: list[tuple[int, LedgerEvent]] = []
        self.reads = 0
        self.head: bytes | None = None
        self.next_id = 1

    def append(self, minutes: list[int]) -> tuple[Logged, list[tuple[int, LedgerEvent]]]:
        new = []
        for m in minutes:
            new.append((self.next_id, cash(m)))
            self.next_id += 1
        before, self.head = self.head, uuid.uuid4().bytes
        self.events += new
        return Logged(before, self.head, len(self.events)), sorted(new, key=lambda i: (i[1].effective_at, i[0]))

    def read(self, strategy_id: uuid.UUID, since: datetime | None) -> list[tuple[int, LedgerEvent]]:
        assert strategy_id == SID
        self.reads += 1
        kept = [i for i in self.events if since is None or i[1].effective_at >= since]
        return sorted(kept, key=lambda i: (i[1].effective_at, i[0]))


def ids(history: list[tuple[int, LedgerEvent]]) -> list[int]:
    return [nid for nid, _ in history]


def test_back_dated_batches_are_merged_in_fold_order_and_read_once():
    rng, log, cache = random.Random(7), Log(), HistoryCache(10_000)
    for batch in range(20):
        logged, new = log.append([rng.randrange(0, 5000) for _ in range(rng.randrange(1, 40))])
        since = T0 + timedelta(minutes=rng.randrange(0, 5000)) if batch % 3 else None
        cache.advance(SID, logged, new)
        got = cache.history(SID, since, logged, log.read)
        reads = log.reads
        assert ids(got) == ids(log.read(SID, since))
        log.reads = reads
    assert log.reads == 1  # the first batch only: every later one followed its chain
    assert cache.hits == 19 and cache.misses == 1 and len(cache) == len(log.events)


def test_an_entry_at_another_head_is_not_used():
    log, cache = Log(), HistoryCache(10_000)
    logged, new = log.append([10, 20, 30])
    cache.history(SID, None, logged, log.read)
    log.append([5])  # logged by another process: this cache never saw it
    logged, new = log.append([1])
    cache.advance(SID, logged, new)
    assert ids(cache.history(SID, None, logged, log.read)) == ids(log.read(SID, None))
    assert cache.misses == 2
    # a batch whose transaction rolled back and is projected again: the entry is already at its head
    cache.advance(SID, logged, new)
    assert ids(cache.history(SID, None, logged, log.read)) == ids(log.read(SID, None))
    assert cache.hits == 1


def test_without_a_known_head_or_over_the_bound_the_log_is_read_and_nothing_kept():
    log, cache = Log(), HistoryCache(5)
    logged, new = log.append([1, 2, 3])
    assert ids(cache.history(SID, None, None, log.read)) == [1, 2, 3]
    assert len(cache) == 0
    logged, new = log.append([4, 5, 6])  # 6 events: more than the bound
    assert ids(cache.history(SID, None, logged, log.read)) == [1, 2, 3, 4, 5, 6]
    assert len(cache) == 0 and log.reads == 2


def test_the_least_recently_used_history_goes_first():
    cache = HistoryCache(6)
    logs = {}
    for sid in (uuid.uuid4(), uuid.uuid4(), uuid.uuid4()):
        log = Log()
        logs[sid] = log
        logged, new = log.append([1, 2, 3])
        cache.history(sid, None, logged, lambda _s, since, log=log: log.read(SID, since))
    assert len(cache) == 6  # the first strategy's 3 events went
    first = next(iter(logs))
    log = logs[first]
    cache.history(first, None, Logged(None, log.head or b"", 3), lambda _s, since: log.read(SID, since))
    assert cache.misses == 4
