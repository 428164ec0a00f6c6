"""A bot importing a year of history: POST /orders in 500-order batches, oldest first.

    python bench/bench_backfill.py [--orders 40000] [--batch 500] [--year 2021]
                                   [--read-your-writes 2] [--shuffle] [--seed 1]

Loads the year's real closes of AAPL, MSFT and SPY (the benchmark) from
../shared/data/prices-2017-2022.csv into `prices`, so every order day is priced, then
starts command_api, query_api and projector on a fresh database (same backends as the
tests: BOTRANKS_TEST_DATABASE_URL / BOTRANKS_TEST_NATS_URL or the local defaults). One
strategy: a deposit dated before the first order, then the year's orders (spread evenly
over its trading days, each at that day's close) in batches posted one after the other.

--read-your-writes S is BOTRANKS_READ_YOUR_WRITES_TIMEOUT (0: each POST answers at commit
and the bench waits for the projection at the end). --shuffle posts the same batches in
random date order (each still holds --batch orders), i.e. back-dated imports.

Reports orders/s acknowledged and projected end to end, the per-batch POST latency at the
start vs the end of the import, and from the projector's log (`"event": "projected"`
lines, attributed to the batch holding their last notification id) its ms per batch and
re-derivations at the start vs the end.
"""

from __future__ import annotations

import argparse
import bisect
import csv
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from devtools.stack import Stack, code_version, create_database, drop_database  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "prices-2017-2022.csv"
SYMBOLS = ("AAPL", "MSFT")
BENCHMARK = "SPY"
SESSION_OPEN = timedelta(hours=14, minutes=30)  # 09:30 New York (EST) in UTC
SESSION_SECONDS = 6.5 * 3600


def load_closes(year: int) -> dict[str, dict[date, Decimal]]:
    wanted = set(SYMBOLS) | {BENCHMARK}
    closes: dict[str, dict[date, Decimal]] = {s: {} for s in wanted}
    with open(DATA) as f:
        for row in csv.DictReader(f):
            day = date.fromisoformat(row["date"])
            if row["symbol"] in wanted and day.year == year:
                closes[row["symbol"]][day] = Decimal(row["close"])
    return closes


def make_orders(closes: dict[str, dict[date, Decimal]], n: int, rng: random.Random) -> list[dict]:
    """``n`` orders spread evenly over the days on which every traded symbol has a close, in time order."""
    days = sorted(set.intersection(*(set(closes[s]) for s in SYMBOLS)))
    per_day: dict[int, int] = {}
    for k in range(n):
        per_day[k * len(days) // n] = per_day.get(k * len(days) // n, 0) + 1
    orders = []
    for d_index, count in sorted(per_day.items()):
        day = days[d_index]
        start = datetime.combine(day, datetime.min.time(), UTC) + SESSION_OPEN
        for j in range(count):
            symbol = rng.choice(SYMBOLS)
            when = start + timedelta(seconds=SESSION_SECONDS * j / count)
            orders.append(
                {
                    "symbol": symbol,
                    "side": "buy" if rng.random() < 0.55 else "sell",
                    "quantity": rng.randint(1, 10),
                    "price": float(closes[symbol][day]),
                    "fees": 0.5,
                    "executed_at": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                }
            )
    return orders


def mean_ms(values: list[float]) -> float:
    return statistics.fmean(values) * 1000 if values else float("nan")


def log_lines(log_path: Path, event: str) -> list[dict]:
    """The structlog JSON lines of ``event`` in a service's log."""
    lines = []
    if not log_path.exists():
        return lines
    for raw in log_path.read_text(errors="replace").splitlines():
        if not raw.startswith("{"):
            continue
        try:
            entry = json.loads(raw)
        except ValueError:
            continue
        if entry.get("event") == event:
            lines.append(entry)
    return lines


def batch_of(his: list[int], first_nid: int, up_to: int) -> int | None:
    """Index (in post order) of the batch holding notification ``up_to``; None for warm-up/deposit."""
    if up_to < first_nid:
        return None
    k = bisect.bisect_left(his, up_to)
    return k if k < len(his) else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=40_000)
    parser.add_argument("--batch", type=int, default=500, help="orders per POST (1..500)")
    parser.add_argument("--year", type=int, default=2021, help="year of real closes (2017..2021)")
    parser.add_argument(
        "--read-your-writes",
        type=float,
        default=2.0,
        help="BOTRANKS_READ_YOUR_WRITES_TIMEOUT in s (0 = answer at commit, wait at the end)",
    )
    parser.add_argument("--shuffle", action="store_true", help="post the batches in random date order")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--edge", type=int, default=10, help="batches averaged at the start and at the end")
    parser.add_argument(
        "--timeout",
        type=float,
        default=1800,
        help="give up (and clean up) after this many seconds of posting + projecting",
    )
    args = parser.parse_args()
    if not 1 <= args.batch <= 500:
        parser.error("--batch must be 1..500")
    if not DATA.exists():
        sys.exit(f"missing {DATA} (see ../shared/data/README.md)")
    command_line = " ".join([".venv/bin/python", "bench/bench_backfill.py", *sys.argv[1:]])
    version = code_version(ROOT)  # at start: the services are started from this tree

    rng = random.Random(args.seed)
    closes = load_closes(args.year)
    if not all(closes[s] for s in (*SYMBOLS, BENCHMARK)):
        sys.exit(f"no closes for {args.year} in {DATA}")
    orders = make_orders(closes, args.orders, rng)
    chunks = [orders[i : i + args.batch] for i in range(0, len(orders), args.batch)]
    for c, chunk in enumerate(chunks):
        for j, o in enumerate(chunk):
            o["external_order_id"] = f"bf-{c}-{j}"
    post_order = list(range(len(chunks)))
    if args.shuffle:
        rng.shuffle(post_order)
    first_day = min(closes[BENCHMARK])

    admin = os.environ.get("BOTRANKS_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    nats = os.environ.get("BOTRANKS_TEST_NATS_URL", "nats://127.0.0.1:4222")
    name = f"botranks_bench_{uuid.uuid4().hex[:8]}"
    url = create_database(admin, name)
    with tempfile.TemporaryDirectory() as home:
        # info level: the projector's "projected" lines (duration_ms, refolds) go to <home>/projector.log
        stack = Stack(
            url,
            nats,
            Path(home),
            BOTRANKS_READ_YOUR_WRITES_TIMEOUT=str(args.read_your_writes),
            BOTRANKS_LOG_LEVEL="info",
        )
        try:
            stack.add_prices([(s, d, c) for s, by_day in closes.items() for d, c in sorted(by_day.items())])
            stack.start()
            # warm-up on another strategy: first requests of each endpoint, first projection
            warm_sid, warm_auth = stack.new_strategy("warm-up")
            stack.post(
                warm_sid,
                "cash",
                {"event_type": "deposit", "amount": 1000, "occurred_at": f"{first_day - timedelta(days=1)}T12:00:00Z"},
                warm_auth,
            )
            warm = stack.post(warm_sid, "orders", {"orders": [dict(orders[0], external_order_id="warm")]}, warm_auth)
            assert warm.status_code == 200, warm.text

            sid, auth = stack.new_strategy("backfill")
            r = stack.post(
                sid,
                "cash",
                {
                    "event_type": "deposit",
                    "amount": 100_000_000,
                    "external_id": "dep-1",
                    "occurred_at": f"{first_day - timedelta(days=1)}T12:00:00Z",
                },
                auth,
            )
            assert r.status_code in (200, 201), r.text
            stack.wait_projected(60)

            latencies: list[float] = []
            not_projected = 0
            accepted = 0
            deadline = time.monotonic() + args.timeout
            started = time.perf_counter()
            for c in post_order:
                if time.monotonic() > deadline:
                    raise SystemExit(f"timed out after {args.timeout:.0f} s ({len(latencies)} batches posted)")
                t = time.perf_counter()
                r = stack.post(sid, "orders", {"orders": chunks[c]}, auth)
                latencies.append(time.perf_counter() - t)
                assert r.status_code == 200, r.text
                accepted += r.json()["counts"]["accepted"]
                not_projected += r.headers.get("BotRanks-Projected") != "true"
            acked = time.perf_counter() - started
            stack.wait_projected(max(1.0, deadline - time.monotonic()))
            projected = time.perf_counter() - started

            # attribute projector log lines to batches by their last notification id
            with stack.sql() as curs:
                rows = curs.execute(
                    "SELECT split_part(external_order_id, '-', 2)::int AS chunk, max(notification_id) AS hi"
                    " FROM rm_orders WHERE strategy_id = %s AND external_order_id LIKE 'bf-%%' GROUP BY 1",
                    (sid,),
                ).fetchall()
                nav_days = curs.execute(
                    "SELECT count(*) AS n FROM rm_nav_daily WHERE strategy_id = %s", (sid,)
                ).fetchone()["n"]
                checkpoints = curs.execute(
                    "SELECT count(*) AS n FROM rm_checkpoints WHERE strategy_id = %s", (sid,)
                ).fetchone()["n"]
            hi_by_chunk = {r["chunk"]: r["hi"] for r in rows}
            his = [hi_by_chunk[c] for c in post_order]  # increasing: one client, batches in post order
            first_nid = his[0] - len(chunks[post_order[0]]) + 1
            proj_ms = [0.0] * len(post_order)
            proj_events = [0] * len(post_order)
            proj_refolds = [0] * len(post_order)
            proj_count = [0] * len(post_order)
            relay_ms = [0.0] * len(post_order)
            lines = log_lines(Path(home) / "projector.log", "projected")
            for entry in lines:
                k = batch_of(his, first_nid, entry.get("up_to", 0))
                if k is not None:
                    proj_ms[k] += entry.get("duration_ms", 0.0)
                    proj_events[k] += entry.get("events", 0)
                    proj_refolds[k] += entry.get("refolds", 0)
                    proj_count[k] += 1
            for entry in log_lines(Path(home) / "command_api.log", "relay_published"):
                k = batch_of(his, first_nid, entry.get("up_to", 0))
                if k is not None:
                    relay_ms[k] += entry.get("duration_ms", 0.0)
            ticks = os.sysconf("SC_CLK_TCK")
            cpu = {}
            for service, process in stack.processes.items():
                fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
                cpu[service] = (int(fields[11]) + int(fields[12])) / ticks
        finally:
            stack.stop()
            drop_database(admin, name)

    n = len(latencies)
    edge = max(1, min(args.edge, n // 2))
    with_proj = [k for k in range(n) if proj_count[k]]
    head, tail = with_proj[:edge], with_proj[-edge:]

    def per_batch(values: list, ks: list[int]) -> float:
        return statistics.fmean(values[k] for k in ks) if ks else float("nan")

    def per_500(ks: list[int]) -> float:
        events = sum(proj_events[k] for k in ks)
        return sum(proj_ms[k] for k in ks) / events * 500 if events else float("nan")

    mode = "shuffled batches (random date order)" if args.shuffle else "chronological"
    print(f"command: {command_line}")
    print(f"code:    {version}")
    print(
        f"backfill {args.year}: {accepted:,} orders accepted in {n} batches of {args.batch}, {mode}, "
        f"read-your-writes {args.read_your_writes:g}s ({not_projected} of {n} answers BotRanks-Projected: false)"
    )
    print(
        f"read models: {nav_days} NAV days, {checkpoints} checkpoints; "
        f"{len(lines)} projector 'projected' lines, {sum(proj_refolds)} refolds"
    )
    print()
    print(f"{'':34}{'total':>12}{'orders/s':>12}")
    print(f"{'acknowledged (last POST answered)':34}{acked:>10.2f} s{accepted / acked:>12,.0f}")
    print(f"{'projected (tracking reached end)':34}{projected:>10.2f} s{accepted / projected:>12,.0f}")
    print()
    print(f"{'per batch':34}{'first ' + str(edge):>12}{'last ' + str(edge):>12}{'ratio':>8}")
    lat_head, lat_tail = mean_ms(latencies[:edge]), mean_ms(latencies[-edge:])
    print(f"{'POST latency, mean ms':34}{lat_head:>12.0f}{lat_tail:>12.0f}{lat_tail / lat_head:>8.1f}")
    ph, pt = per_batch(proj_ms, head), per_batch(proj_ms, tail)
    print(f"{'projector ms per batch':34}{ph:>12.0f}{pt:>12.0f}{pt / ph if ph else float('nan'):>8.1f}")
    h5, t5 = per_500(head), per_500(tail)
    print(f"{'projector ms per 500 events':34}{h5:>12.0f}{t5:>12.0f}{t5 / h5 if h5 else float('nan'):>8.1f}")
    rh, rt = per_batch(relay_ms, head), per_batch(relay_ms, tail)
    print(f"{'relay (publish to NATS) ms/batch':34}{rh:>12.0f}{rt:>12.0f}")
    print(
        f"{'projector refolds per batch':34}{per_batch(proj_refolds, head):>12.1f}"
        f"{per_batch(proj_refolds, tail):>12.1f}"
    )
    print(f"{'projections per batch':34}{per_batch(proj_count, head):>12.1f}{per_batch(proj_count, tail):>12.1f}")
    ordered = sorted(latencies)
    print(
        f"POST latency p50 / p99 / max: {ordered[n // 2] * 1000:.0f} / "
        f"{ordered[min(n - 1, -(-n * 99 // 100) - 1)] * 1000:.0f} / {ordered[-1] * 1000:.0f} ms"
    )
    print(
        "CPU seconds by service: "
        + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items())
        + f", bench client {time.process_time():.1f}"
    )


if __name__ == "__main__":
    main()
