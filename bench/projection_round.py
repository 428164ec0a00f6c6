"""The projector's cost per strategy for live single orders, without HTTP or the bus:

    .venv/bin/python bench/projection_round.py [--strategies 16] [--rounds 40] [--board] [--profile]

A fresh database; ``--strategies`` strategies with a deposit and 47 orders over 200 days of closes,
projected; then ``--rounds`` rounds in which each strategy appends one order (executed now) and all of
them are projected together in one transaction (``project_partitions``, as the daemon does when
read-your-writes clients each wait for their order). Prints the median transaction and its share per
strategy; ``--profile`` adds cProfile's top functions (most of the time is waiting on PostgreSQL: the
number of round trips a strategy costs is the figure to watch). ``--board``: after each round, the
leaderboard upkeep the daemon runs once idle (``refresh_leaderboard`` of those partitions: each strategy's
row recomputed) is timed too, and profiled instead of the projection."""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import fresh_database  # noqa: E402
from botranks_domain.model import CashEvent, CashRecorded, Order, OrderRecorded  # noqa: E402
from botranks_domain.partition import partition_of  # noqa: E402
from devtools.stack import sql  # noqa: E402
from libs.infra.db import Database  # noqa: E402
from services.projector.leaderboard import refresh_leaderboard  # noqa: E402
from services.projector.projection import project_partitions  # noqa: E402

SYMBOLS = ("AAA", "BBB")


def _order(sid: uuid.UUID, i: int, at: datetime) -> OrderRecorded:
    return OrderRecorded(
        Order(id=uuid.uuid4(), strategy_id=sid, symbol=SYMBOLS[i % 2], side="buy" if i % 3 else "sell",
              quantity=D(1), price=D("10.5"), fees=D(0), order_type="market", status="filled", executed_at=at,
              external_order_id=None, details=None, created_at=at)
    )  # fmt: skip


def _deposit(sid: uuid.UUID, at: datetime) -> CashRecorded:
    return CashRecorded(
        CashEvent(id=uuid.uuid4(), strategy_id=sid, event_type="deposit", amount=D(100_000), occurred_at=at,
                  external_id=None, related_symbol=None, note=None, created_at=at)
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strategies", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--board", action="store_true", help="time (and profile) the leaderboard upkeep too")
    args = parser.parse_args()
    now = datetime.now(UTC).replace(microsecond=0)
    first = now - timedelta(days=200)
    with fresh_database("botranks_bench_round") as url:
        db = Database(url, pool_size=2, max_overflow=3).create_tables()
        with sql(db) as curs:
            curs.executemany(
                "INSERT INTO prices (symbol, date, close) VALUES (%s, %s, %s)",
                [
                    (s, first.date() + timedelta(days=d), D(10) + D(d % 7))
                    for s in (*SYMBOLS, "SPY")
                    for d in range(201)
                ],
            )
        partitions = db.projection.partitions()
        sids = [db.identity.create_strategy(f"round-{k}", first_key=False)[0] for k in range(args.strategies)]
        for sid in sids:
            history = [_deposit(sid, first)] + [
                _order(sid, i, first + timedelta(days=4 * i, hours=1)) for i in range(1, 48)
            ]
            db.events.append([(e.order.id if isinstance(e, OrderRecorded) else e.cash.id, e) for e in history])
        wanted = sorted({partition_of(s, partitions) for s in sids})

        def project_all() -> None:
            head = db.events.max_notification_id()
            shares = db.events.partitions_notifications(wanted, partitions, 0, 1_000_000, head)
            project_partitions(db, shares, partitions, head, wait=False)

        def board_all() -> None:
            for p in wanted:
                refresh_leaderboard(db, p, limit=len(sids), budget_s=60.0)

        project_all()
        board_all()
        profile, times, board_times = cProfile.Profile(), [], []
        for r in range(args.rounds):
            for sid in sids:
                order = _order(sid, r, now - timedelta(seconds=args.rounds - r))
                db.events.append([(order.order.id, order)])
            started = time.perf_counter()
            if args.profile and not args.board:
                profile.enable()
            project_all()
            if args.profile and not args.board:
                profile.disable()
            times.append(time.perf_counter() - started)
            if args.board:
                started = time.perf_counter()
                if args.profile:
                    profile.enable()
                board_all()
                if args.profile:
                    profile.disable()
                board_times.append(time.perf_counter() - started)
        db.close()
    median = statistics.median(times) * 1000
    print(
        f"{args.strategies} strategies with one new order each, projected together: median {median:.1f} ms a"
        f" transaction, {median / args.strategies:.2f} ms a strategy ({args.rounds} rounds)"
    )
    if board_times:
        board = statistics.median(board_times) * 1000
        print(f"then their leaderboard rows: median {board:.1f} ms a round, {board / args.strategies:.2f} ms a row")
    if args.profile:
        pstats.Stats(profile).sort_stats("cumulative").print_stats(30)


if __name__ == "__main__":
    main()
