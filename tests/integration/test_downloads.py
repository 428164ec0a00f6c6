"""Downloads stream in bounded memory, are capped per process and per client address, and the pages
are rate-limited per client address (issue 19), on the real services.

One strategy of 100,000 events (appended straight into the event store in batches, then projected by
the real projector). Client addresses are set with X-Forwarded-For, which query_api believes from
127.0.0.1 (``BOTRANKS_TRUSTED_PROXIES``' default), as it does from the reverse proxy of ``botranks up``.
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import httpx
import pytest

from botranks_domain.model import CashEvent, CashRecorded, Order, OrderRecorded, stored_event_strategy
from botranks_domain.nav import NAV_COLUMNS
from devtools.stack import Stack, wait_until
from services.query_api import assets

pytestmark = pytest.mark.integration

EVENTS = 100_000
#: long enough for the cap test's held (stalled) downloads to outlive its steps on a loaded machine
SEND_TIMEOUT_S = 30
T0 = datetime(2020, 1, 6, 14, 30, tzinfo=UTC)
MB = 1024 * 1024


def _history(sid: uuid.UUID) -> Iterator[tuple[uuid.UUID, object]]:
    """A deposit, then buys and sells of one share, 64 a day over ~4 years (arrival order = time order)."""
    cash = CashEvent(
        id=uuid.uuid4(),
        strategy_id=sid,
        event_type="deposit",
        amount=D("1000000"),
        occurred_at=T0,
        external_id="dep",
        related_symbol=None,
        note=None,
        created_at=T0,
    )
    yield cash.id, CashRecorded(cash)
    for i in range(EVENTS - 1):
        at = T0 + timedelta(days=i // 64, seconds=60 + i % 64)
        order = Order(
            id=uuid.uuid4(),
            strategy_id=sid,
            symbol="DLS",
            side="buy" if i % 2 == 0 else "sell",
            quantity=D(1),
            price=D("10.25"),
            fees=D("0.01"),
            order_type="market",
            status="filled",
            executed_at=at,
            created_at=at + timedelta(seconds=1),
            external_order_id=f"o-{i:06d}",
            details={"note": "caf\u00e9", "i": i},
        )
        yield order.id, OrderRecorded(order)


def _expected(stack: Stack, sid: uuid.UUID) -> tuple[int, int, str]:
    """(lines, bytes, sha256) of the download recomputed from the event store alone."""
    digest, sha, lines, size, last = None, hashlib.sha256(), 0, 0, 0
    while batch := stack.db.events.notifications_after(last, 20_000):
        for n in batch:
            if stored_event_strategy(n.state) != sid:
                continue
            digest = hashlib.sha256((digest or b"") + n.state).digest()
            lines += 1
            line = b'{"seq":%d,"notification_id":%d,"digest":"%s","event":%s}\n' % (
                lines,
                n.id,
                digest.hex().encode(),
                n.state,
            )
            sha.update(line)
            size += len(line)
        last = batch[-1].id
    return lines, size, sha.hexdigest()


@pytest.fixture(scope="module")
def big(backends, make_database):
    _, nats_url = backends
    with tempfile.TemporaryDirectory() as home:
        stack = Stack(
            make_database(),
            nats_url,
            Path(home),
            BOTRANKS_DOWNLOADS_PER_PROCESS="4",
            BOTRANKS_DOWNLOADS_PER_ADDRESS="2",
            BOTRANKS_DOWNLOAD_SEND_TIMEOUT_S=str(SEND_TIMEOUT_S),
            BOTRANKS_PAGE_REQUESTS_PER_MINUTE_PER_IP="60",
            BOTRANKS_PAGE_BURST_PER_IP="5",
        )
        stack.start()
        try:
            sid, key = stack.db.identity.create_strategy("Big", visibility="public", show_positions="live")
            days = EVENTS // 64 + 2
            stack.add_prices(
                [
                    (symbol, (T0 + timedelta(days=d)).date().isoformat(), 10 + d % 7 / 4)
                    for symbol in ("DLS", "SPY")
                    for d in range(days)
                ]
            )
            started = time.perf_counter()
            events = list(_history(sid))
            for i in range(0, len(events), 5_000):
                stack.db.events.append(events[i : i + 5_000])
            del events
            appended = time.perf_counter()
            stack.wait_projected(timeout=600)
            print(
                f"\n{EVENTS:,} events appended in {appended - started:.1f} s,"
                f" projected {time.perf_counter() - appended:.1f} s later"
            )
            stack.sid, stack.key = sid, {"Authorization": f"Bearer {key}"}
            stack.expected = _expected(stack, sid)
            yield stack
        finally:
            stack.stop()


def _from(address: str, **headers: str) -> dict[str, str]:
    return {"X-Forwarded-For": address, **headers}


def _vm(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in bytes."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {k: int(fields[k].split()[0]) * 1024 for k in ("VmRSS", "VmHWM")}


def _download(client: httpx.Client, url: str, headers: dict[str, str]) -> tuple[int, int, int, str]:
    """(status, lines, bytes, sha256) of a download read as it comes."""
    sha, lines, size = hashlib.sha256(), 0, 0
    with client.stream("GET", url, headers=headers) as r:
        for chunk in r.iter_raw():
            sha.update(chunk)
            lines += chunk.count(b"\n")
            size += len(chunk)
        return r.status_code, lines, size, sha.hexdigest()


def test_concurrent_downloads_are_complete_and_memory_stays_flat(big):
    url = f"/p/strategies/{big.sid}/events.jsonl"
    lines, size, sha = big.expected
    assert lines == EVENTS and size > 40 * MB
    # the non-streamed read (the whole chain in one list) gives the same bytes
    assert hashlib.sha256(b"".join(big.db.ledger.chain_events(big.sid))).hexdigest() == sha
    # warm up (first use of every code path), then measure the peak from here on
    assert _download(big.query, url, _from("10.1.0.9")) == (200, lines, size, sha)
    pid = big.processes["query_api"].pid
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current VmRSS
    before = _vm(pid)
    results: list = [None] * 4

    def run(i: int) -> None:
        with httpx.Client(base_url=big.query.base_url, timeout=120) as client:
            results[i] = _download(client, url, _from(f"10.1.0.{i + 1}"))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    elapsed = time.perf_counter() - started
    after = _vm(pid)
    grew = after["VmHWM"] - before["VmRSS"]
    print(
        f"\nquery_api RSS before {before['VmRSS'] / MB:.1f} MB, peak during 4 concurrent downloads of"
        f" {size / MB:.1f} MB each {after['VmHWM'] / MB:.1f} MB (+{grew / MB:.1f} MB), after"
        f" {after['VmRSS'] / MB:.1f} MB; {elapsed:.1f} s"
    )
    assert results == [(200, lines, size, sha)] * 4
    assert grew < 50 * MB
    # the key holder's API download is the same bytes
    assert _download(big.query, f"/api/v1/strategies/{big.sid}/events", _from("10.1.0.10", **big.key)) == (
        200,
        lines,
        size,
        sha,
    )


def test_nav_csv_streams_the_same_rows(big):
    series = big.db.ledger.nav_series(big.sid).series
    assert len(series) > 1000  # several chunks of the server-side cursor
    expected = (
        "\n".join([",".join(NAV_COLUMNS), *(",".join(str(getattr(r, c)) for c in NAV_COLUMNS) for r in series)]) + "\n"
    )
    page = big.query.get(f"/p/strategies/{big.sid}/nav.csv", headers=_from("10.5.0.1"))
    api = big.query.get(f"/api/v1/strategies/{big.sid}/nav", headers=_from("10.5.0.2", Accept="text/csv", **big.key))
    assert page.status_code == api.status_code == 200
    assert page.text == api.text == expected
    assert (
        page.headers["content-type"] == "text/csv; charset=utf-8"
        and "attachment" in page.headers["content-disposition"]
    )
    assert api.headers["content-type"].startswith("text/csv") and "inline" in api.headers["content-disposition"]


def _hold(stack: ExitStack, base: str, url: str, headers: dict[str, str]) -> httpx.Response:
    """A download (on a connection of its own) whose headers are in and whose body is left unread: its
    slot stays taken."""
    client = stack.enter_context(httpx.Client(base_url=base, timeout=30))
    r = stack.enter_context(client.stream("GET", url, headers=headers))
    assert r.status_code == 200, r.read()
    return r


def _refused(r: httpx.Response) -> str:
    assert r.status_code == 429, r.text
    assert int(r.headers["retry-after"]) >= 1 and set(r.json()) == {"detail"}
    return r.json()["detail"]


def test_downloads_are_capped_per_address_and_per_process(big):
    url = f"/p/strategies/{big.sid}/events.jsonl"
    with (
        ExitStack() as held,
        httpx.Client(base_url=big.query.base_url, timeout=30) as client,
        httpx.Client(base_url=big.query.base_url, timeout=30) as other,
    ):
        for _ in range(2):
            _hold(held, big.query.base_url, url, _from("10.2.0.1"))
        assert "from this address" in _refused(client.get(url, headers=_from("10.2.0.1")))
        # the NAV CSV is a download too; the address's pages are not
        assert "from this address" in _refused(
            client.get(f"/p/strategies/{big.sid}/nav.csv", headers=_from("10.2.0.1"))
        )
        assert client.get(f"/p/strategies/{big.sid}", headers=_from("10.2.0.1")).status_code == 200
        _hold(held, big.query.base_url, url, _from("10.2.0.2"))
        _hold(held, big.query.base_url, url, _from("10.2.0.3"))
        # four running: the process is full, for the API's key holders too
        assert "in progress" in _refused(client.get(url, headers=_from("10.2.0.4")))
        assert "in progress" in _refused(
            other.get(f"/api/v1/strategies/{big.sid}/events", headers=_from("10.2.0.4", **big.key))
        )
        # the JSON NAV is no download
        assert other.get(f"/api/v1/strategies/{big.sid}/nav", headers=_from("10.2.0.4", **big.key)).status_code == 200
    # the clients went away: their slots come back
    wait_until(lambda: client_ok(big, url, "10.2.0.4"), 20, "the slots to be freed")


def client_ok(stack: Stack, url: str, address: str) -> bool:
    with (
        httpx.Client(base_url=stack.query.base_url, timeout=30) as client,
        client.stream("GET", url, headers=_from(address)) as r,
    ):
        return r.status_code == 200


def test_a_stalled_download_is_cut_and_frees_its_slot(big):
    url = f"/p/strategies/{big.sid}/events.jsonl"
    with ExitStack() as held:
        stalled = [_hold(held, big.query.base_url, url, _from("10.3.0.1")) for _ in range(2)]
        _refused(big.query.get(url, headers=_from("10.3.0.1")))
        time.sleep(SEND_TIMEOUT_S + 2)
        assert client_ok(big, url, "10.3.0.1")  # the stalled ones were cut
        for r in stalled:  # and their clients see a cut transfer, not a short file
            with pytest.raises(httpx.RemoteProtocolError):
                for _ in r.iter_raw():
                    pass


def test_pages_are_rate_limited_per_address(big):
    q = big.query
    for _ in range(5):  # the burst
        assert q.get("/p/leaderboard", headers=_from("10.4.0.1")).status_code == 200
    detail = _refused(q.get("/p/leaderboard", headers=_from("10.4.0.1")))
    assert "at most 60 a minute" in detail
    _refused(q.get(f"/s/{big.sid}", headers=_from("10.4.0.1")))  # one bucket for the pages and their data
    asset = next(iter(assets.FILES))
    assert q.get(f"/static/{asset}", headers=_from("10.4.0.1")).status_code == 200  # assets are not counted
    assert q.get(f"/api/v1/strategies/{big.sid}/state", headers=_from("10.4.0.1", **big.key)).status_code == 200
    assert q.get("/p/leaderboard", headers=_from("10.4.0.2")).status_code == 200  # another address
    time.sleep(1.1)  # a token a second comes back
    assert q.get("/p/leaderboard", headers=_from("10.4.0.1")).status_code == 200
    # IPv6 by /64: one subscriber's addresses share a bucket
    for i in range(5):
        assert q.get("/p/leaderboard", headers=_from(f"2001:db8:1:2::{i + 1}")).status_code == 200
    _refused(q.get("/p/leaderboard", headers=_from("2001:db8:1:2::99")))
    assert q.get("/p/leaderboard", headers=_from("2001:db8:1:3::1")).status_code == 200
