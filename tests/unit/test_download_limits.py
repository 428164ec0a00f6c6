"""The per-address page rate limit (a token bucket) and the download slots of query_api, on a fake clock."""

from __future__ import annotations

import pytest

from services.query_api.downloads import AddressBuckets, DownloadSlots, nav_csv_chunks


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_minute_rate():
    clock = Clock()
    buckets = AddressBuckets(per_minute=60, burst=3, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(1.0)  # a token a second
    assert buckets.take("b") == 0.0  # another address has its own bucket
    clock.now += 0.5
    assert buckets.take("a") == pytest.approx(0.5)  # a refusal spends nothing
    clock.now += 0.5
    assert buckets.take("a") == 0.0
    clock.now += 3600
    assert [buckets.take("a") for _ in range(4)][-1] > 0  # saved tokens never exceed the burst


def test_least_recently_seen_addresses_are_forgotten_first():
    clock = Clock()
    buckets = AddressBuckets(per_minute=60, burst=1, max_addresses=2, clock=clock)
    buckets.take("a")
    buckets.take("b")
    assert buckets.take("a") > 0  # "a" is now the most recent
    buckets.take("c")  # forgets "b"
    assert set(buckets._buckets) == {"a", "c"}


def test_download_slots_per_address_and_per_process():
    slots = DownloadSlots(per_process=3, per_address=2)
    assert slots.acquire("a") is None and slots.acquire("a") is None
    assert "from this address" in slots.acquire("a")
    assert slots.acquire("b") is None
    assert "in progress" in slots.acquire("c")
    slots.release("a")
    assert slots.acquire("c") is None
    for address in ("a", "b", "c"):
        slots.release(address)
    assert slots.running == 0 and not slots.by_address
    assert DownloadSlots(0, 0).acquire("a") is None  # 0: no cap


def test_nav_csv_chunks_close_their_source():
    closed = []

    def rows():
        try:
            yield []
            yield []
        finally:
            closed.append(True)

    chunks = nav_csv_chunks(rows())
    assert next(chunks).startswith(b"date,")
    chunks.close()
    assert closed == [True]
