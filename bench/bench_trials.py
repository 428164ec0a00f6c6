"""The leaderboard upkeep when the instance's trials change (issue 21): N strategies on the board,
one more trial (a strategy deleted, or one reaching 30 daily returns), and every row's Deflated
Sharpe Ratio re-judged against the new count.

    python bench/bench_trials.py [--strategies 10000] [--partitions 16] [--repeat 3]

Fills a fresh database (BOTRANKS_TEST_DATABASE_URL's server, default the local PostgreSQL) WITHOUT
HTTP: ``rm_leaderboard`` rows COPYed straight in (each a per-day Sharpe, its standard error and 252
daily returns, judged against the current trials), then counts the trials once through the upkeep.
Each repetition then adds a tombstone (what a deletion leaves) and runs exactly what the projector
daemon runs when the trials version moves: ``refresh_leaderboard`` for each partition in turn, the
first one recounting (``judge_against_trials``), until no partition has a row of an older version.
It reports the recount's time and the whole re-judging's wall time (what a subscriber waits for
the board to be current), with the rows re-judged.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import fresh_database  # noqa: E402
from libs.infra.db import Database  # noqa: E402
from services.projector.leaderboard import judge_against_trials, refresh_leaderboard  # noqa: E402


def fill(db: Database, url: str, strategies: int, seed: int = 21) -> None:
    """``strategies`` public rows with figures of 252 daily returns (the board's shape, not a replay)."""
    import psycopg

    rng = np.random.default_rng(seed)
    sharpe = rng.normal(0.03, 0.06, strategies)
    sigma = np.full(strategies, 1 / np.sqrt(251)) * rng.uniform(1.0, 1.3, strategies)
    buffer = io.StringIO()
    for i in range(strategies):
        buffer.write(f"{uuid.uuid4()}\tBench {i:05d}\tpublic\t365\t252\t{float(sharpe[i])!r}\t{float(sigma[i])!r}\n")
    with psycopg.connect(url) as conn, conn.cursor() as curs:
        with curs.copy(
            "COPY rm_leaderboard (strategy_id, name, visibility, track_days, observations, sharpe_daily,"
            " sharpe_daily_std) FROM STDIN"
        ) as copy:
            copy.write(buffer.getvalue())
        curs.execute("ANALYZE rm_leaderboard")


def upkeep_until_judged(db: Database) -> tuple[float, float, int]:
    """A new trial (a tombstone), then the daemon's upkeep over every partition until all rows are
    judged against it: (recount seconds, total seconds, rows re-judged)."""
    started = time.perf_counter()
    with db.projection.writing() as writer:
        writer.identity.bury(uuid.uuid4(), 0.02, 300)
        writer.board.recount_trials(writer.identity)  # what a deletion does in its own transaction
    recounted = time.perf_counter() - started
    rejudged = 0
    while done := sum(refresh_leaderboard(db, p, scan=False) for p in range(db.projection.partitions())):
        rejudged += done
    return recounted, time.perf_counter() - started, rejudged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strategies", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with fresh_database("botranks_bench_trials") as url:
        db = Database(url, pool_size=2).create_tables()
        try:
            fill(db, url, args.strategies)
            with db.projection.writing() as writer:
                judge_against_trials(writer, recount=True)
            while sum(refresh_leaderboard(db, p, scan=False) for p in range(db.projection.partitions())):
                pass
            print(f"{args.strategies:,} strategies on the board, {db.projection.partitions()} partitions")
            for i in range(args.repeat):
                recount, total, rows = upkeep_until_judged(db)
                trials = db.ledger.trials()
                print(
                    f"run {i + 1}: N = {trials.count:,}: recount {recount * 1000:.1f} ms (the deletion's transaction),"
                    f" every row re-judged in {total * 1000:.0f} ms ({rows:,} rows)"
                )
                assert rows == args.strategies, rows
        finally:
            db.close()


if __name__ == "__main__":
    main()
