"""bench/run_all.py's back-dated batches through ``botranks up`` (bench/through_up.py starts it): a
strategy's history posted as 500-order batches that each span three years, so that every batch lands
in the middle of what is already there; the figure is how much slower the last batches are than the first.
"""

from __future__ import annotations

import random
import statistics
import time
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import httpx

from bench import bench_backfill
from bench.ceilings import Ceilings
from botranks_domain.partition import partition_of

if TYPE_CHECKING:
    from bench.run_all import System

YEARS = (2019, 2020, 2021)
EDGE = 3  # samples of the first batch, and last batches whose median is compared


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def run(system: System, base: str, orders_total: int, c: Ceilings) -> list[Any]:
    """A new strategy's history of ``orders_total`` orders over ``YEARS`` (bench_backfill's
    orders: AAPL and MSFT at real closes), posted through up in 500-order batches that each span the
    three years (batch k holds orders k, k + n, k + 2n...), one after the other, read-your-writes on.
    Each batch is timed from its POST until the projector has applied it: the 2xx itself when it says
    ``BotRanks-Projected: true``, else when the strategy's partition has moved past it."""
    from bench.run_all import Phase, Row

    db, batch = system.stack.db, 500
    closes: dict[str, dict[date, Any]] = {}
    for year in YEARS:
        for symbol, by_day in bench_backfill.load_closes(year).items():
            closes.setdefault(symbol, {}).update(by_day)
    orders = bench_backfill.make_orders(closes, orders_total, random.Random(1))
    n = len(orders) // batch
    batches = [sorted(orders[k::n], key=lambda o: o["executed_at"]) for k in range(n)]
    for k, chunk in enumerate(batches):
        for j, o in enumerate(chunk):
            o["external_order_id"] = f"bf3-{k}-{j}"
    first_day = min(closes[bench_backfill.BENCHMARK])
    deposit = {
        "event_type": "deposit",
        "amount": 100_000_000,
        "external_id": "bf3-dep",
        "occurred_at": f"{first_day - timedelta(days=3)}T12:00:00Z",
    }
    edge = max(1, min(EDGE, n // 2))
    # the history's strategy, and edge - 1 more that only get the first batch (its time, sampled edge times)
    strategies = [db.identity.create_strategy(f"Bench backfill over three years {i}") for i in range(edge)]
    not_projected = 0

    def post(client: httpx.Client, sid: Any, key: str, chunk: list[dict]) -> float:
        nonlocal not_projected
        t = time.perf_counter()
        r = client.post(f"/api/v1/strategies/{sid}/orders", json={"orders": chunk}, headers=_auth(key))
        if r.status_code != 200:
            raise RuntimeError(f"backfill POST: {r.status_code} {r.text[:300]}")
        if r.headers.get("BotRanks-Projected") == "true":  # read-your-writes: applied when it answers
            return time.perf_counter() - t
        not_projected += 1
        # else until its partition has applied it (not every partition: the idle ones move on a timer)
        target, partition = db.events.max_notification_id(), partition_of(sid, db.projection.partitions())
        while db.projection.partition_positions().get(partition, 0) < target:
            time.sleep(0.002)
        return time.perf_counter() - t

    with httpx.Client(base_url=base, timeout=120) as client:
        for sid, key in strategies:
            client.post(f"/api/v1/strategies/{sid}/cash", json=deposit, headers=_auth(key)).raise_for_status()
        system.drain()
        system.settle()
        before = system.meter.snapshot()
        firsts = []
        for sid, key in strategies[1:]:  # each on an idle system: what follows a batch (leaderboard...) is done
            firsts.append(post(client, sid, key, batches[0]))
            system.drain()
            system.settle()
        sid, key = strategies[0]
        seconds = [post(client, sid, key, chunk) for chunk in batches]  # back to back, as an import does
    use = system.meter.since(before)
    firsts.append(seconds[0])
    first, last = statistics.median(firsts), statistics.median(seconds[-edge:])
    system.report.phases.append(
        Phase(
            "up: 500-order batches spread over three years into one strategy's history",
            f"{n} batches of {batch} orders ({n * batch:,} in all, AAPL and MSFT at real closes of"
            f" {YEARS[0]}–{YEARS[-1]}, each batch spanning the three years), posted one after"
            f" the other through `botranks up` with read-your-writes on; POST → applied: the first batch into"
            f" {edge} fresh strategies (each once the system was idle) {', '.join(f'{s:.2f}' for s in firsts)} s, the last {edge} batches"
            f" {', '.join(f'{s:.2f}' for s in seconds[-edge:])} s, every batch:"
            f" {' '.join(f'{s:.2f}' for s in seconds)}; {not_projected} of {n} answers said"
            " `BotRanks-Projected: false` (the bench then waited for the projector)",
            use,
            None,
            (n + edge - 1) * batch,
            "order",
        )
    )
    return [
        Row(
            f"up: a 500-order batch over 3 years into a {n * batch:,}-order history, vs the first batch",
            last / first,
            "×",
            1.2,
            False,
            f"median of the last {edge}: {last:.2f} s; of the first batch into {edge} fresh strategies: {first:.2f} s"
            f" ({batch / first:,.0f} orders/s; PG executemany {c.pg_executemany_rows_s:,.0f} rows/s)",
        )
    ]
