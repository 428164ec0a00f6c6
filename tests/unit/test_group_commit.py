"""services/command_api/group_commit.py with real threads and an in-memory log that behaves like
the event store (one append at a time, all or nothing, a duplicate id fails the whole append)."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from libs.infra.store import IntegrityError
from services.command_api.group_commit import GroupCommit
from services.command_api.ingest import append_idempotently


class SlowLog:
    """Appends take ``delay`` seconds under one lock, like the table lock plus a disk flush."""

    def __init__(self, delay: float = 0.01, fail: BaseException | None = None) -> None:
        self.delay, self.fail = delay, fail
        self.rows: dict[uuid.UUID, object] = {}
        self.calls: list[int] = []
        self._lock = threading.Lock()

    def append(self, events):
        with self._lock:
            time.sleep(self.delay)
            self.calls.append(len(events))
            if self.fail is not None:
                raise self.fail
            ids = [a for a, _ in events]
            if len(set(ids)) != len(ids) or any(a in self.rows for a in ids):
                raise IntegrityError("duplicate key")
            start = len(self.rows)
            for a, e in events:
                self.rows[a] = e
            return list(range(start + 1, start + 1 + len(events)))

    def existing(self, ids):
        with self._lock:
            return {a: self.rows[a] for a in ids if a in self.rows}


def _events(n: int, tag: str) -> list[tuple[uuid.UUID, str]]:
    return [(uuid.uuid4(), f"{tag}-{i}") for i in range(n)]


def test_concurrent_appends_share_statements_and_keep_each_request_contiguous():
    log = SlowLog()
    group = GroupCommit(log)
    requests = [_events(1 + i % 3, f"r{i}") for i in range(64)]
    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(group.append, requests))
    assert len(log.rows) == sum(map(len, requests))
    assert len(log.calls) < len(requests) / 3  # grouped: far fewer appends than requests
    for events, ids in zip(requests, answers):
        assert len(ids) == len(events) and ids == list(range(ids[0], ids[0] + len(ids)))
        assert [log_key for log_key in list(log.rows)[ids[0] - 1 : ids[-1]]] == [a for a, _ in events]


def test_a_duplicate_fails_only_its_own_request_and_resolves_as_a_duplicate():
    log = SlowLog()
    group = GroupCommit(log)
    taken = _events(1, "old")
    log.append(taken)
    fresh = [_events(1, f"n{i}") for i in range(20)]
    requests = fresh[:10] + [taken] + fresh[10:]
    with ThreadPoolExecutor(21) as pool:
        outcomes = list(pool.map(lambda evs: append_idempotently(group, evs), requests))
    assert len(log.rows) == 21
    for events, outcome in zip(requests, outcomes):
        if events is taken:
            assert outcome.accepted == [] and outcome.duplicates == ["old-0"]
        else:
            assert [e for e in outcome.accepted] == [e for _, e in events] and not outcome.duplicates


def test_a_database_error_reaches_every_request_of_the_group():
    log = SlowLog(fail=ConnectionError("database down"))
    group = GroupCommit(log)
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(group.append, _events(1, f"r{i}")) for i in range(8)]
    for f in futures:
        with pytest.raises(ConnectionError):
            f.result()
    log.fail = None
    assert group.append(_events(2, "after")) == [1, 2]  # and the next append goes through


def test_a_group_never_splits_a_request_and_stays_under_its_size():
    log = SlowLog(delay=0.02)
    group = GroupCommit(log, max_events=10)
    requests = [_events(4, f"r{i}") for i in range(12)]
    with ThreadPoolExecutor(12) as pool:
        list(pool.map(group.append, requests))
    assert all(n % 4 == 0 and n <= 10 for n in log.calls[1:]) and sum(log.calls) == 48
