"""Ledger and NAV speed: pure fold, a back-dated order into 5 years, a late price for 1,000 strategies.

    python bench/bench_ledger.py [--fold-events 300000] [--late-strategies 1000]

Uses real daily closes from ../shared/data/prices-2017-2022.csv and a fresh database on
BOTRANKS_TEST_DATABASE_URL (default: the local PostgreSQL). Targets (issue "Ledger you can
trust to the cent"): fold >= 200k events/s on one core; back-dated order re-derived and
committed < 50 ms; late price re-marking 1,000 strategies < 5 s.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from botranks_domain.bars import Bar  # noqa: E402
from botranks_domain.ledger import fold  # noqa: E402
from botranks_domain.model import CashEvent, CashRecorded, Order, OrderRecorded  # noqa: E402
from botranks_domain.nav import LedgerState, PriceBook, derive  # noqa: E402
from devtools.stack import create_database, drop_database, sql  # noqa: E402
from libs.infra.db import Database  # noqa: E402
from libs.infra.logs import configure_logging  # noqa: E402
from services.projector.projection import apply_price_updates, project  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "prices-2017-2022.csv"
SYMBOLS = ["AAPL", "MSFT", "KO", "JPM", "XOM"]


def load_prices() -> dict[str, list[tuple[date, D]]]:
    closes: dict[str, list] = {}
    with open(DATA) as f:
        for row in csv.DictReader(f):
            closes.setdefault(row["symbol"], []).append((date.fromisoformat(row["date"]), D(row["close"])))
    return closes


def order(sid, symbol, side, qty, price, when, i) -> OrderRecorded:
    return OrderRecorded(
        Order(
            id=uuid.uuid4(),
            strategy_id=sid,
            symbol=symbol,
            side=side,
            quantity=D(qty),
            price=price,
            fees=D("1.00"),
            order_type="market",
            status="filled",
            executed_at=when,
            created_at=when,
            external_order_id=f"o{i}",
            details=None,
        )
    )


def deposit(sid, amount, when) -> CashRecorded:
    return CashRecorded(
        CashEvent(
            id=uuid.uuid4(),
            strategy_id=sid,
            event_type="deposit",
            amount=D(amount),
            occurred_at=when,
            external_id=None,
            related_symbol=None,
            note=None,
            created_at=when,
        )
    )


def daily_bot(sid, closes, rng) -> list:
    """One small trade a trading day over the whole data set."""
    days = [d for d, _ in closes["SPY"]]
    by_symbol = {s: dict(closes[s]) for s in SYMBOLS}
    events = [deposit(sid, 1_000_000, datetime.combine(days[0], datetime.min.time(), UTC))]
    for i, d in enumerate(days):
        s = rng.choice(SYMBOLS)
        if d in by_symbol[s]:
            when = datetime.combine(d, datetime.min.time(), UTC) + timedelta(hours=20)
            events.append(
                order(sid, s, "buy" if rng.random() < 0.6 else "sell", rng.randint(1, 20), by_symbol[s][d], when, i)
            )
    return events


def bench_fold(closes, n_events: int = 300_000) -> None:
    rng = random.Random(1)
    sid = uuid.uuid4()
    events = []
    while len(events) < n_events:
        events += daily_bot(sid, closes, rng)
    t = time.perf_counter()
    fold(events)
    dt = time.perf_counter() - t
    print(f"pure ledger fold:            {len(events) / dt:>12,.0f} events/s  ({len(events):,} events, one core)")
    one = daily_bot(sid, closes, random.Random(2))
    book = PriceBook({s: closes[s] for s in SYMBOLS + ["SPY"]})
    t = time.perf_counter()
    result = derive(LedgerState(), one, book, "SPY", None, date(2022, 5, 2), date(2017, 1, 3))
    dt = time.perf_counter() - t
    print(
        f"fold + daily NAV (5.3 years): {len(one) / dt:>11,.0f} events/s  ({len(result.nav)} NAV days "
        f"in {dt * 1000:.1f} ms)"
    )


def fresh_db() -> tuple[Database, str, str]:
    admin = os.environ.get("BOTRANKS_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"botranks_bench_{uuid.uuid4().hex[:8]}"
    return Database(create_database(admin, name), pool_size=2).create_tables(), admin, name


def load_into(db: Database, closes) -> None:
    with sql(db) as curs:  # the whole price history at once, before any event (no outbox rows)
        with curs.copy("COPY prices (symbol, date, close, source) FROM STDIN") as copy:
            for s, rows in closes.items():
                for d, c in rows:
                    copy.write_row((s, d, c, "shared-data"))


def new_strategy(db: Database) -> uuid.UUID:
    return db.identity.create_strategy("bench", first_key=False)[0]


def drain(db: Database) -> None:
    while notifications := db.events.notifications_after(db.projection.position(), 5000):
        project(db, notifications)


def bench_back_dated(db: Database, closes) -> None:
    sid = new_strategy(db)
    events = daily_bot(sid, closes, random.Random(3))
    db.events.append([(e.order.id if isinstance(e, OrderRecorded) else e.cash.id, e) for e in events])
    drain(db)
    timings = []
    by_day = dict(closes["AAPL"])
    for k, d in enumerate([date(2017, 6, 1), date(2017, 3, 1), date(2017, 9, 5), date(2018, 1, 3), date(2017, 4, 3)]):
        when = datetime.combine(d, datetime.min.time(), UTC) + timedelta(hours=15)
        e = order(sid, "AAPL", "buy", 5, by_day[d], when, f"late{k}")
        db.events.append([(e.order.id, e)])
        notifications = db.events.notifications_after(db.projection.position(), 10)
        t = time.perf_counter()
        project(db, notifications)  # re-derive from that date and commit
        timings.append(time.perf_counter() - t)
    days = len(db.ledger.nav_series(sid).series)
    print(
        f"back-dated order, 5y history: median {statistics.median(timings) * 1000:.1f} ms, "
        f"max {max(timings) * 1000:.1f} ms  ({len(events):,} events, {days} NAV days, ~4.5-5 years re-derived)"
    )


def bench_late_price(db: Database, closes, n: int = 1000) -> None:
    batch = []
    for i in range(n):
        sid = new_strategy(db)
        start = datetime(2022, 3, 1, 15, tzinfo=UTC)
        batch += [
            (uuid.uuid4(), deposit(sid, 100_000, start)),
            (uuid.uuid4(), order(sid, "XOM", "buy", 100, D(80), start + timedelta(hours=1), f"x{i}")),
        ]
        batch[-2] = (batch[-2][1].cash.id, batch[-2][1])
        batch[-1] = (batch[-1][1].order.id, batch[-1][1])
        if len(batch) >= 1000:
            db.events.append(batch)
            batch = []
    if batch:
        db.events.append(batch)
    drain(db)
    apply_price_updates(db)
    # a late correction of XOM's close two days before the end, through the price writer and its outbox
    day = date(2022, 4, 28)
    db.prices.write_bars([Bar(symbol="XOM", date=day, close=dict(closes["XOM"])[day] + 1)], "bench-correction")
    t = time.perf_counter()
    touched = apply_price_updates(db)
    dt = time.perf_counter() - t
    print(f"late price, {touched:,} strategies:  re-marked and committed in {dt:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fold-events", type=int, default=300_000, help="events of the pure fold")
    parser.add_argument("--late-strategies", type=int, default=1000, help="strategies re-marked by the late price")
    args = parser.parse_args()
    configure_logging("bench", "warning")
    if not DATA.exists():
        sys.exit(f"missing {DATA}")
    closes = load_prices()
    bench_fold(closes, args.fold_events)
    db, admin, name = fresh_db()
    try:
        load_into(db, closes)
        bench_back_dated(db, closes)
        bench_late_price(db, closes, args.late_strategies)
    finally:
        db.close()
        drop_database(admin, name)


if __name__ == "__main__":
    main()
