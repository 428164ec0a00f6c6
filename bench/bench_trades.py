"""What trades cost (issue 22): the projector's extra time per order, and a strategy page with
10,000 closed trades.

    python bench/bench_trades.py [--orders 40000] [--strategies 20] [--closed 10000] [--views 50]

1. **Projector cost per order.** Two fresh databases get the same log WITHOUT HTTP (bench_rebuild's
   ``append_history``: real closes of 2017-2022, a deposit each, orders round-robin over the
   strategies at the day's close, 60 % buys), then the projector's own catch-up (``project`` over
   the log in 2,000-event runs, in this process) folds it: once as shipped, once with the trade book
   and the ``rm_trades`` writes switched off. The difference per order is what trades cost.
2. **A strategy with 10,000 closed trades** (one symbol, buy 10 then sell 10 on each trading day
   of 2017-2022 and again, at the day's close), projected, then served by a real query_api process on
   loopback: the strategy page ``/s/{id}``, its data ``/p/strategies/{id}``, ``/performance`` and the
   first page of ``/trades``: the first (cold) answer and the median / p95 of ``--views`` more (warm).

Needs the test PostgreSQL (``BOTRANKS_TEST_DATABASE_URL``, default the local one); NATS is given to
query_api but not used. Fresh databases, dropped at the end.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from unittest import mock

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_rebuild import SESSION_OPEN, append_history, load_closes, write_closes  # noqa: E402
from bench.common import fresh_database, servers  # noqa: E402
from botranks_domain.model import CashEvent, CashRecorded, Order, OrderRecorded  # noqa: E402
from devtools.stack import Stack  # noqa: E402
from libs.infra.db import Database  # noqa: E402
from services.projector.projection import project  # noqa: E402


def catch_up(db: Database, batch: int = 2000) -> int:
    """The projector's catch-up, in this process: every event of the log, a run at a time."""
    done = 0
    while notifications := db.events.notifications_after(db.projection.position(), batch):
        done += project(db, notifications)
    return done


@contextmanager
def trades_off():
    """The projection without trades: no trade book, no rm_trades writes."""
    from botranks_domain.trades import TradeBook
    from libs.infra.readmodel.trades import TradesWriter

    with ExitStack() as stack:
        for name in ("fill", "snapshot", "split"):
            stack.enter_context(mock.patch.object(TradeBook, name, lambda *a, **k: None))
        for name in ("write", "forget_ended"):
            stack.enter_context(mock.patch.object(TradesWriter, name, lambda *a, **k: None))
        yield


def projector_cost(orders: int, strategies: int) -> dict[str, float]:
    symbols = ["AAPL", "MSFT", "KO", "JPM", "XOM"]
    closes = load_closes(symbols)
    timings = {}
    for label, context in (("with trades", ExitStack), ("without trades", trades_off)):
        with fresh_database("botranks_bench_trades") as url, context():
            db = Database(url, pool_size=2).create_tables()
            try:
                write_closes(db, closes)
                ids = [db.identity.create_strategy(f"b{i}", first_key=False)[0] for i in range(strategies)]
                events = append_history(db, ids, closes, symbols, orders + strategies, 2000, seed=22)
                started = time.perf_counter()
                assert catch_up(db) == events
                timings[label] = time.perf_counter() - started
            finally:
                db.close()
    return timings


def many_trades(db: Database, closed: int) -> tuple[uuid.UUID, str]:
    """One strategy whose fills make ``closed`` closed trades (a buy and a sell each trading day)."""
    closes = load_closes(["SPY"])["SPY"]
    write_closes(db, {"SPY": closes})
    sid, key = db.identity.create_strategy("ten thousand trades", visibility="public", show_positions="live")
    assert key is not None
    days = sorted(closes)
    start = datetime.combine(days[0] - timedelta(days=1), datetime.min.time(), UTC)
    cash = CashEvent(
        id=uuid.uuid4(), strategy_id=sid, event_type="deposit", amount=Decimal(10_000_000), occurred_at=start,
        external_id=None, related_symbol=None, note=None, created_at=start,
    )  # fmt: skip
    batch: list = [(cash.id, CashRecorded(cash))]
    per_day = -(-closed // len(days))  # round trips a day, in time order (no back-dated re-fold)
    for k in range(closed):
        day = days[k // per_day]
        when = datetime.combine(day, datetime.min.time(), UTC) + SESSION_OPEN + timedelta(minutes=2 * (k % per_day))
        for side, offset in (("buy", 0), ("sell", 60)):
            order = Order(
                id=uuid.uuid4(), strategy_id=sid, symbol="SPY", side=side, quantity=Decimal(10),
                price=closes[day] + (Decimal("0.5") if side == "sell" and k % 3 else Decimal("-0.5")),
                fees=Decimal("0.35"), order_type="market", status="filled", executed_at=when + timedelta(seconds=offset),
                created_at=when, external_order_id=None, details=None,
            )  # fmt: skip
            batch.append((order.id, OrderRecorded(order)))
        if len(batch) >= 2000:
            db.events.append(batch)
            batch = []
    db.events.append(batch)
    catch_up(db)
    return sid, key


def page_times(closed: int, views: int) -> dict[str, tuple[float, float, float]]:
    _, nats = servers()
    with fresh_database("botranks_bench_trades_page") as url, ExitStack() as stack:
        home = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        s = Stack(url, nats, home)
        stack.callback(s.stop)
        sid, key = many_trades(s.db, closed)
        with s.sql() as curs:
            count = curs.execute("SELECT count(*) AS n FROM rm_trades WHERE status = 'closed'").fetchone()["n"]
        print(f"strategy {sid}: {count:,} closed trades")
        s._spawn("query_api", "services.query_api.main", "--port", str(s.query_port))
        from tools.processes import wait_for_port

        wait_for_port(s.query_port, 60)
        auth = {"Authorization": f"Bearer {key}"}
        out = {}
        with httpx.Client(base_url=f"http://127.0.0.1:{s.query_port}", timeout=120) as client:
            for label, path, headers in (
                ("/s/{id} (the page)", f"/s/{sid}", {}),
                ("/p/strategies/{id}", f"/p/strategies/{sid}", {}),
                ("/performance", f"/api/v1/strategies/{sid}/performance", auth),
                ("/trades (first 100)", f"/api/v1/strategies/{sid}/trades", auth),
            ):
                times = []
                for _ in range(views + 1):
                    t = time.perf_counter()
                    response = client.get(path, headers=headers)
                    times.append(time.perf_counter() - t)
                    assert response.status_code == 200, (path, response.status_code, response.text[:200])
                warm = sorted(times[1:])
                out[label] = (times[0], statistics.median(warm), warm[int(0.95 * (len(warm) - 1))])
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=40_000)
    parser.add_argument("--strategies", type=int, default=20)
    parser.add_argument("--closed", type=int, default=10_000)
    parser.add_argument("--views", type=int, default=50)
    args = parser.parse_args()
    cost = projector_cost(args.orders, args.strategies)
    extra = (cost["with trades"] - cost["without trades"]) / args.orders
    for label, seconds in cost.items():
        print(f"projector catch-up, {args.orders:,} orders, {label}: {seconds:.2f} s ({args.orders / seconds:,.0f}/s)")
    print(f"trades cost the projector {extra * 1e6:+.1f} µs per order")
    for label, (cold, median, p95) in page_times(args.closed, args.views).items():
        print(f"{label}: first {cold * 1000:.0f} ms, then median {median * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms")


if __name__ == "__main__":
    main()
