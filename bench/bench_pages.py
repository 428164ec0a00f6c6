"""The subscribers' pages under load: 10,000 public strategies with 3 years of NAV each, then
warm HTTP at a constant 200 requests/s against query_api on loopback.

    python bench/bench_pages.py [--strategies 10000] [--years 3] [--seconds 20] [--rate 200] [--hot 200]
                                [--leaderboard direct|refresh] [--deep-pages] [--keep]

What it measures (open loop: requests leave on a fixed schedule, a slow answer does not slow
the sender; the load runs in a separate process with a minimal keep-alive HTTP/1.1 client, so
the client's own work stays small), latency as the client sees it, loopback HTTP included:

1. ``GET /p/leaderboard`` — one page of 50 of the public board (min_days=30), a random sort
   column and a random direction; the first page (``--deep-pages``: any page of the board).
   Target p99 <= 20 ms.
2. A view of the strategy page of one of ``--hot`` strategies: ``GET /s/{id}``, then, in
   parallel, its two JSON data endpoints ``/p/strategies/{id}`` and ``/p/strategies/{id}/series``.
   The page itself carries its chart data inline (a JSON data island) and its scripts are
   versioned static assets a browser caches for a year, so a browser needs the HTML only: the
   two data requests make the view heavier than a browser's, on purpose (a client of the JSON
   endpoints sees them). The time of the whole view (HTML + data) is what counts.
   Target p99 <= 30 ms. "Warm" means query_api's per-process caches hold the hot strategies'
   figures (every hot view is loaded once before measuring); ``--hot`` must stay under that
   cache's size (512 figures per process).

How the data is built, fast and WITHOUT HTTP (no event is replayed; the bench measures reads):

- ``strategies``: psycopg ``COPY`` straight into the table. ``Identity`` (its owner) has no bulk
  path (``create_strategy`` is one transaction per strategy).
- ``rm_nav_daily``, ``rm_ledger``, ``rm_chain_days`` (the read models the pages read):
  psycopg ``COPY`` straight into the tables. ``libs/infra/readmodel`` (their owner) has no bulk path: only
  the projector writes them, event by event. Each strategy's NAV is a seeded geometric random
  walk over weekdays (its own drift and volatility), one 100,000 deposit on its first day; one
  chain link per weekday.
- the benchmark's prices (``BENCH-SPY``): through their owner, ``db.prices.write_bars``.
- ``rm_leaderboard``: ``--leaderboard direct`` (default) computes the figures with numpy from the
  same arrays and COPYs them; ``--leaderboard refresh`` runs the projector's own refresh
  (``services.projector.leaderboard.refresh_leaderboard``, compute_performance per strategy),
  slower but exactly the production code path.

Needs the test servers (``BOTRANKS_TEST_DATABASE_URL``, default the local PostgreSQL; NATS is
not used by query_api's reads but the service wants a URL). A fresh database is created and
dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import random
import shlex
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import polars as pl
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import HttpClient, checked, in_processes, open_loop, percentile_ms, run_async  # noqa: E402
from botranks_domain.bars import Bar  # noqa: E402
from devtools.stack import create_database, drop_database, wait_until  # noqa: E402
from libs.infra.db import Database  # noqa: E402
from tools.processes import free_port, wait_for_port  # noqa: E402

BENCHMARK = "BENCH-SPY"
DEPOSIT = 100_000.0
CHUNK = 500  # strategies per COPY batch
SORTS = (
    "total_return",
    "cagr",
    "sharpe",
    "sortino",
    "max_drawdown",
    "volatility",
    "track_days",
    "last_activity",
    "live_share",
    "name",
)
LEADERBOARD_TARGET_MS = 20.0
PAGE_TARGET_MS = 30.0


# ---------------------------------------------------------------- building the data


def weekdays(end: date, years: float) -> list[date]:
    start = end - timedelta(days=round(365.25 * years))
    return [
        start + timedelta(days=i) for i in range((end - start).days + 1) if (start + timedelta(days=i)).weekday() < 5
    ]


def _copy(conn: psycopg.Connection, table: str, columns: str, frame: pl.DataFrame) -> None:
    buffer = io.BytesIO()
    frame.write_csv(buffer, include_header=False, float_precision=6, datetime_format="%Y-%m-%dT%H:%M:%S%.f+00:00")
    with conn.cursor() as curs, curs.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT csv)") as copy:
        copy.write(buffer.getvalue())


def _figures(equity: np.ndarray, days: list[date]) -> dict[str, np.ndarray]:
    """Leaderboard figures of each row of ``equity`` (no flows after the first day, risk-free 0)."""
    returns = equity[:, 1:] / equity[:, :-1] - 1
    total = equity[:, -1] / equity[:, 0] - 1
    span = (days[-1] - days[0]).days
    mean, std = returns.mean(axis=1), returns.std(axis=1, ddof=1)
    downside = np.sqrt(np.mean(np.minimum(returns, 0) ** 2, axis=1))
    peak = np.maximum.accumulate(equity, axis=1)
    return {
        "total_return": total,
        "cagr": (1 + total) ** (365.25 / span) - 1,
        "sharpe": mean / std * np.sqrt(252),
        "sortino": mean / downside * np.sqrt(252),
        "max_drawdown": (equity / peak - 1).min(axis=1),
        "volatility": std * np.sqrt(252),
    }


def build(database_url: str, db: Database, strategies: int, years: float, leaderboard: str) -> dict[str, float]:
    rng = np.random.default_rng(11)
    end = datetime.now(UTC).date() - timedelta(days=1)
    days = weekdays(end, years)
    n_days = len(days)
    timings: dict[str, float] = {}

    t = time.perf_counter()
    spy = 400 * np.exp(np.cumsum(rng.normal(0.0003, 0.01, n_days)))
    db.prices.write_bars(
        [Bar(symbol=BENCHMARK, date=d, close=Decimal(f"{c:.2f}")) for d, c in zip(days, spy, strict=True)], "bench"
    )
    timings["benchmark prices (owner)"] = time.perf_counter() - t

    ids = [str(uuid.UUID(bytes=rng.bytes(16), version=4)) for _ in range(strategies)]
    day_frame = pl.DataFrame({"date": days})
    digests = ["\\x" + rng.bytes(32).hex() for _ in range(4096)]  # what a digest looks like is all that matters
    created = datetime.combine(days[0], datetime.min.time(), UTC)
    copy_nav = copy_rest = 0.0
    board: list[pl.DataFrame] = []
    with psycopg.connect(database_url, autocommit=False) as conn:
        t = time.perf_counter()
        _copy(
            conn,
            "strategies",
            "id, name, benchmark, visibility, show_positions, created_at",
            pl.DataFrame(
                {
                    "id": ids,
                    "name": [f"Bench bot {i:05d}" for i in range(strategies)],
                    "benchmark": [BENCHMARK] * strategies,
                    "visibility": ["public"] * strategies,
                    "show_positions": ["none"] * strategies,
                    "created_at": [created] * strategies,
                }
            ),
        )
        conn.commit()
        timings["strategies (COPY)"] = time.perf_counter() - t
        for first in range(0, strategies, CHUNK):
            chunk = ids[first : first + CHUNK]
            n = len(chunk)
            drift = rng.normal(0.0003, 0.0005, n)[:, None]
            vol = rng.uniform(0.003, 0.03, n)[:, None]
            steps = rng.normal(drift, vol, (n, n_days))
            steps[:, 0] = 0.0
            equity = np.round(DEPOSIT * np.exp(np.cumsum(steps, axis=1)), 2)
            cash_share = rng.uniform(0.0, 0.5, n)[:, None]
            cash = np.round(equity * cash_share, 2)
            flow = np.zeros_like(equity)
            flow[:, 0] = DEPOSIT
            t = time.perf_counter()
            nav = (
                pl.DataFrame({"strategy_id": chunk})
                .join(day_frame, how="cross")
                .with_columns(
                    pl.Series("cash", cash.ravel()),
                    pl.Series("market_value", (equity - cash).ravel()),
                    pl.Series("total_equity", equity.ravel()),
                    pl.Series("external_flow", flow.ravel()),
                )
            )
            _copy(conn, "rm_nav_daily", "strategy_id, date, cash, market_value, total_equity, external_flow", nav)
            copy_nav += time.perf_counter() - t
            t = time.perf_counter()
            last_at = datetime.combine(days[-1], datetime.min.time(), UTC) + timedelta(hours=20)
            _copy(
                conn,
                "rm_ledger",
                "strategy_id, cash_balance, realized_pnl, external_flows, market_value,"
                " total_equity, captured_at, last_order_at, last_effective_at, last_notification_id,"
                " inception_date",
                pl.DataFrame(
                    {
                        "strategy_id": chunk,
                        "cash_balance": cash[:, -1],
                        "realized_pnl": [0.0] * n,
                        "external_flows": [DEPOSIT] * n,
                        "market_value": equity[:, -1] - cash[:, -1],
                        "total_equity": equity[:, -1],
                        "captured_at": [last_at] * n,
                        "last_order_at": [last_at] * n,
                        "last_effective_at": [last_at] * n,
                        "last_notification_id": [0] * n,
                        "inception_date": [days[0]] * n,
                    }
                ),
            )
            links = (
                pl.DataFrame({"strategy_id": chunk})
                .join(day_frame.with_row_index("events", offset=1), how="cross")
                .with_columns(
                    pl.Series("digest", digests).gather(rng.integers(0, len(digests), n * n_days)),
                    (pl.col("date").cast(pl.Datetime("us", "UTC")) + pl.duration(hours=20, minutes=5)).alias(
                        "last_created_at"
                    ),
                )
            )
            _copy(
                conn,
                "rm_chain_days",
                "strategy_id, events, day, digest, last_created_at",
                links.select("strategy_id", "events", "date", "digest", "last_created_at"),
            )
            if leaderboard == "direct":
                figures = _figures(equity, days)
                orders = rng.integers(50, 2000, n)
                live = np.round(orders * rng.uniform(0, 1, n)).astype(int)
                board.append(
                    pl.DataFrame(
                        {
                            "strategy_id": chunk,
                            "name": [f"Bench bot {i:05d}" for i in range(first, first + n)],
                            "visibility": ["public"] * n,
                            **{k: v for k, v in figures.items()},
                            "track_days": [(days[-1] - days[0]).days] * n,
                            "inception_date": [days[0]] * n,
                            "latest_date": [days[-1]] * n,
                            "last_activity": [last_at + timedelta(minutes=5)] * n,
                            "orders": orders,
                            "live_orders": live,
                            "live_share": live / orders,
                        }
                    )
                )
            conn.commit()
            copy_rest += time.perf_counter() - t
        timings[f"rm_nav_daily: {strategies * n_days:,} rows (COPY)"] = copy_nav
        timings["rm_ledger + rm_chain_days (COPY)"] = copy_rest
        t = time.perf_counter()
        with conn.cursor() as curs:
            # every row's nav_version is its ledger's updated_at, as the projector writes it
            if leaderboard == "direct":
                _copy(conn, "rm_leaderboard", ", ".join(board[0].columns), pl.concat(board))
                curs.execute(
                    "UPDATE rm_leaderboard AS b SET nav_version = l.updated_at FROM rm_ledger AS l"
                    " WHERE l.strategy_id = b.strategy_id"
                )
            curs.execute("ANALYZE")
        conn.commit()
    if leaderboard == "direct":
        timings["rm_leaderboard (numpy, COPY)"] = time.perf_counter() - t
    else:
        from services.projector.leaderboard import refresh_leaderboard

        t = time.perf_counter()
        while refresh_leaderboard(db, limit=200, budget_s=5.0):
            pass
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("ANALYZE rm_leaderboard")
        timings["rm_leaderboard (projector's refresh)"] = time.perf_counter() - t
    return timings


# ---------------------------------------------------------------- the load (its own process)


async def _load(base: str, rate: float, seconds: float, make: Any) -> dict[str, Any]:
    """``make(client, i)`` on a fixed schedule, on one lean keep-alive client."""
    client = HttpClient.for_base(base)
    try:
        return await open_loop(rate, seconds, lambda i: make(client, i))
    finally:
        client.close()


async def _get(client: HttpClient, url: str) -> float:
    t = time.perf_counter()
    await checked(client.get(url), url)
    return time.perf_counter() - t


def leaderboard_load(base: str, rate: float, seconds: float, pages: int, seed: int) -> dict[str, Any]:
    """``pages``: requests pick a page among the first ``pages`` (1: always the first)."""
    rng = random.Random(seed)
    urls = [
        f"/p/leaderboard?sort={rng.choice(SORTS)}&dir={rng.choice(('asc', 'desc'))}&min_days=30"
        f"&page={rng.randint(1, pages)}"
        for _ in range(int(rate * seconds))
    ]

    async def make(client: HttpClient, i: int) -> dict[str, float]:
        return {"leaderboard": await _get(client, urls[i])}

    return run_async(_load(base, rate, seconds, make))


def page_load(base: str, rate: float, seconds: float, views: list[list[str]], seed: int) -> dict[str, Any]:
    """``views``: per hot strategy, the page's URL then its data URLs. ``rate`` counts requests."""
    rng = random.Random(seed)
    per_view = len(views[0])
    order = [rng.randrange(len(views)) for _ in range(int(rate * seconds / per_view) + 1)]

    async def make(client: HttpClient, i: int) -> dict[str, float]:
        html, *data = views[order[i]]
        t = time.perf_counter()
        out = {"page html": await _get(client, html)}
        for url, latency in zip(data, await asyncio.gather(*(_get(client, u) for u in data)), strict=True):
            out[f"page data {url.split('/')[-1] if url.count('/') > 3 else 'summary'}"] = latency
        out["page view (html + data)"] = time.perf_counter() - t
        return out

    return run_async(_load(base, rate / per_view, seconds, make))


def data_urls(strategy_id: str) -> list[str]:
    """The strategy page's JSON data endpoints (what a script-driven client of the page fetches)."""
    return [f"/p/strategies/{strategy_id}", f"/p/strategies/{strategy_id}/series"]


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strategies", type=int, default=10_000)
    parser.add_argument("--years", type=float, default=3.0)
    parser.add_argument("--seconds", type=float, default=20.0, help="of load, per phase")
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second")
    parser.add_argument("--hot", type=int, default=200, help="strategies whose pages are loaded (warm)")
    parser.add_argument("--leaderboard", choices=("direct", "refresh"), default="direct")
    parser.add_argument(
        "--deep-pages",
        action="store_true",
        help="leaderboard requests pick any page of the board (default: the first page)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database (its URL is printed) to look into it")
    args = parser.parse_args()
    command = "python bench/bench_pages.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    admin = os.environ.get("BOTRANKS_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    nats = os.environ.get("BOTRANKS_TEST_NATS_URL", "nats://127.0.0.1:4222")
    name = f"botranks_bench_pages_{uuid.uuid4().hex[:8]}"
    url = create_database(admin, name)
    query = None
    try:
        db = Database(url, pool_size=1, max_overflow=2).create_tables()
        started = time.perf_counter()
        timings = build(url, db, args.strategies, args.years, args.leaderboard)
        build_s = time.perf_counter() - started
        db.close()

        port = free_port()
        home = Path(tempfile.mkdtemp(prefix="bench-pages-"))
        env = {
            **os.environ,
            "BOTRANKS_DATABASE_URL": url,
            "BOTRANKS_NATS_URL": nats,
            "BOTRANKS_HOME": str(home),
            "BOTRANKS_LOG_LEVEL": "warning",
        }
        query = subprocess.Popen(
            [sys.executable, "-m", "services.query_api.main", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=open(home / "query_api.log", "wb"),
            stderr=subprocess.STDOUT,
        )
        wait_for_port(port, 60)
        base = f"http://127.0.0.1:{port}"
        http = httpx.Client(base_url=base, timeout=30)
        wait_until(lambda: http.get("/p/leaderboard").status_code == 200, 30, "query_api to answer")
        board = http.get("/p/leaderboard", params={"min_days": 30}).json()
        pages = board["pages"]
        hot = [row["strategy_id"] for row in http.get("/p/leaderboard", params={"sort": "name"}).json()["items"]]
        page = 2
        while len(hot) < args.hot:
            more = http.get("/p/leaderboard", params={"sort": "name", "page": page}).json()["items"]
            if not more:
                break
            hot += [row["strategy_id"] for row in more]
            page += 1
        hot = hot[: args.hot]

        # warm: every sort, both directions, and every hot strategy's page and data once
        t = time.perf_counter()
        for sort in SORTS:
            for direction in ("asc", "desc"):
                assert http.get("/p/leaderboard", params={"sort": sort, "dir": direction}).status_code == 200
        cold_page = None
        views: list[list[str]] = []
        for sid in hot:
            t0 = time.perf_counter()
            r = http.get(f"/s/{sid}")
            assert r.status_code == 200, (sid, r.status_code, r.text[:300])
            assert 'id="series-data"' in r.text, "the page carries its chart data"
            data = data_urls(sid)
            for u in data:
                assert http.get(u).status_code == 200, u
            cold_page = cold_page or (time.perf_counter() - t0)
            views.append([f"/s/{sid}", *data])
        warm_s = time.perf_counter() - t
        http.close()

        lb = in_processes(leaderboard_load, [(base, args.rate, args.seconds, pages if args.deep_pages else 1, 1)])[0]
        pv = in_processes(page_load, [(base, args.rate, args.seconds, views, 2)])[0]

        n_days = len(weekdays(datetime.now(UTC).date() - timedelta(days=1), args.years))
        print(f"\n$ {command}")
        print(
            f"{args.strategies:,} public strategies x {n_days} NAV days ({args.years:g} years of weekdays);"
            f" built in {build_s:.1f} s:"
        )
        for what, seconds in timings.items():
            print(f"  {what:<48} {seconds:8.1f} s")
        print(
            f"warm-up: {len(SORTS) * 2} leaderboard sorts + {len(hot)} strategy pages in {warm_s:.1f} s"
            f" (first page view, cold: {cold_page * 1000:.0f} ms); a page view = /s/{{id}}"
            f"{' + ' + ', '.join(u.split(hot[0])[-1] or '/p/strategies/{id}' for u in views[0][1:]) if len(views[0]) > 1 else ' (its data is inline)'}"
        )
        print(
            f"\nload: open loop, {args.rate:g} requests/s for {args.seconds:g} s per phase, from another process,"
            " loopback, no If-None-Match\n"
        )
        header = f"{'what':<34} {'n':>6} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} {'target':>8}  ok"
        print(header)
        print("-" * len(header))
        verdicts = []
        which = f"any of {pages} pages" if args.deep_pages else "page 1"
        for phase, result, targets in (
            (f"leaderboard JSON (50 rows, random sort and dir, {which})", lb, {"leaderboard": LEADERBOARD_TARGET_MS}),
            ("strategy page", pv, {"page view (html + data)": PAGE_TARGET_MS}),
        ):
            print(
                f"{phase}:  {result['elapsed']:.1f} s, errors {len(result['errors'])},"
                f" sender lag p99 {result['sender_lag_p99']:.1f} ms"
            )
            for kind, values in result["latencies"].items():
                target = targets.get(kind)
                ok = "" if target is None else ("yes" if percentile_ms(values, 0.99) <= target else "NO")
                if target is not None:
                    verdicts.append(ok == "yes" and not result["errors"])
                print(
                    f"  {kind:<32} {len(values):>6} {percentile_ms(values, 0.5):8.2f} {percentile_ms(values, 0.9):8.2f}"
                    f" {percentile_ms(values, 0.99):8.2f} {max(values) * 1000:8.2f} {'' if target is None else f'{target:.0f}':>8}"
                    f"  {ok}"
                )
            for error in result["errors"][:5]:
                print(f"    error: {error}")
        print("\nall targets met" if all(verdicts) else "\nsome target missed")
    finally:
        if query is not None:
            query.terminate()
            try:
                query.wait(20)
            except subprocess.TimeoutExpired:
                query.kill()
        if args.keep:
            print(f"database kept: {url}")
        else:
            drop_database(admin, name)


if __name__ == "__main__":
    main()
