"""Full rebuild of the read models at N events: wall time, peak memory, read availability.

    python bench/bench_rebuild.py [--events 1000000] [--strategies 200] [--keep-db URL]

Fills a fresh database (BOTRANKS_TEST_DATABASE_URL's server, default the local PostgreSQL)
WITHOUT HTTP: real closes of a few symbols and SPY from ../shared/data/prices-2017-2022.csv
into `prices`, one deposit per strategy on 2017-01-02, then orders spread over the
2017-01-03..2022-05-02 trading days (round-robin over the strategies, each at the day's
close), appended in time order with ``db.events.append`` in batches of --append-batch events.

Then runs `python -m services.projector.main rebuild` as a child process and measures its
wall time, CPU time (os.wait4) and peak RSS (its VmHWM, polled while it runs), while a thread reads
`rm_ledger` for one strategy every --read-interval seconds and records the longest time a
single read took (a read blocked by the rebuild's locks shows up there).

--keep-db URL: use (and keep) that database; it is created and filled when it does not
exist or holds no events, and reused as it is otherwise, so the rebuild can be rerun on a
filled database without filling it again. Without it the fresh database is dropped at the end.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from psycopg.conninfo import conninfo_to_dict, make_conninfo  # noqa: E402

from bench.common import vm_hwm_mb  # noqa: E402
from botranks_domain.model import CashEvent, CashRecorded, Order, OrderRecorded  # noqa: E402
from devtools.stack import code_version, create_database, drop_database, sql  # noqa: E402
from libs.infra.db import Database  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "prices-2017-2022.csv"
BENCHMARK = "SPY"
DEFAULT_SYMBOLS = "AAPL,MSFT,KO,JPM,XOM"
SESSION_OPEN = timedelta(hours=14, minutes=30)
SESSION_SECONDS = 6.5 * 3600


def load_closes(symbols: list[str]) -> dict[str, dict[date, Decimal]]:
    wanted = set(symbols) | {BENCHMARK}
    closes: dict[str, dict[date, Decimal]] = {s: {} for s in wanted}
    with open(DATA) as f:
        for row in csv.DictReader(f):
            if row["symbol"] in wanted:
                closes[row["symbol"]][date.fromisoformat(row["date"])] = Decimal(row["close"])
    missing = [s for s, c in closes.items() if not c]
    if missing:
        sys.exit(f"no closes for {', '.join(missing)} in {DATA}")
    return closes


def write_closes(db: Database, closes: dict[str, dict[date, Decimal]]) -> None:
    """The whole price history at once, straight into ``prices`` (before any event: no outbox rows)."""
    with sql(db) as curs:
        with curs.copy("COPY prices (symbol, date, close, source) FROM STDIN") as copy:
            for s, by_day in closes.items():
                for d, c in sorted(by_day.items()):
                    copy.write_row((s, d, c, "shared-data"))


def append_history(
    db: Database,
    strategies: list,
    closes: dict[str, dict[date, Decimal]],
    symbols: list[str],
    n_events: int,
    append_batch: int,
    seed: int,
    first_day: date | None = None,
) -> int:
    """One deposit per strategy the day before ``first_day`` (default: the first priced day), then
    ``n_events`` minus those orders spread over the trading days from ``first_day`` on (round-robin
    over the strategies, each at the day's close), appended in time order; returns events written."""
    rng = random.Random(seed)
    days = [d for d in sorted(closes[BENCHMARK]) if first_day is None or d >= first_day]
    opened = datetime.combine(days[0] - timedelta(days=1), datetime.min.time(), UTC) + timedelta(hours=12)
    batch: list = []
    written = 0

    def flush() -> None:
        nonlocal batch, written
        if batch:
            db.events.append(batch)
            written += len(batch)
            batch = []

    for sid in strategies:
        cash = CashEvent(
            id=uuid.uuid4(),
            strategy_id=sid,
            event_type="deposit",
            amount=Decimal(10_000_000),
            occurred_at=opened,
            external_id=None,
            related_symbol=None,
            note=None,
            created_at=opened,
        )
        batch.append((cash.id, CashRecorded(cash)))
        if len(batch) >= append_batch:
            flush()
    n_orders = max(0, n_events - len(strategies))
    fees = Decimal("1.00")
    k = 0
    for d_index, day in enumerate(days):
        count = (d_index + 1) * n_orders // len(days) - d_index * n_orders // len(days)
        if not count:
            continue
        start = datetime.combine(day, datetime.min.time(), UTC) + SESSION_OPEN
        priced = [s for s in symbols if day in closes[s]]
        for j in range(count):
            when = start + timedelta(seconds=SESSION_SECONDS * j / count)
            symbol = rng.choice(priced)
            order = Order(
                id=uuid.uuid4(),
                strategy_id=strategies[k % len(strategies)],
                symbol=symbol,
                side="buy" if rng.random() < 0.6 else "sell",
                quantity=Decimal(rng.randint(1, 20)),
                price=closes[symbol][day],
                fees=fees,
                order_type="market",
                status="filled",
                executed_at=when,
                created_at=when,
                external_order_id=f"r{k}",
                details=None,
            )
            batch.append((order.id, OrderRecorded(order)))
            k += 1
            if len(batch) >= append_batch:
                flush()
    flush()
    return written


def fill(
    db: Database, n_events: int, n_strategies: int, symbols: list[str], append_batch: int, seed: int
) -> tuple[int, int]:
    """Prices, strategies and ``n_events`` ledger events; returns (events, strategies)."""
    closes = load_closes(symbols)
    write_closes(db, closes)
    strategies = [
        db.identity.create_strategy(f"rebuild-{i}", benchmark=BENCHMARK, first_key=False)[0]
        for i in range(n_strategies)
    ]
    return append_history(db, strategies, closes, symbols, n_events, append_batch, seed), n_strategies


class RebuildRun(NamedTuple):
    wall: float
    usage: Any  # os.wait4's resource usage of the child: ru_utime, ru_stime (ru_maxrss: see peak_rss_mb)
    returncode: int
    output: str
    version: str
    started: float  # perf_counter when the child started
    #: the child's VmHWM, polled while it runs (ru_maxrss would include its parent's RSS at the fork)
    peak_rss_mb: float

    @property
    def rebuilt(self) -> dict:
        """The rebuild's own ``"event": "rebuilt"`` log line (duration_ms, ...), {} if none."""
        found: dict = {}
        for line in self.output.splitlines():
            if line.startswith("{"):
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if entry.get("event") == "rebuilt":
                    found = entry
        return found


def timed_rebuild(url: str, nats: str, code: Path = ROOT, timeout: float = 3600) -> RebuildRun:
    """``python -m services.projector.main rebuild`` as a child process (from checkout ``code``):
    its wall time, resource usage and log."""
    with tempfile.TemporaryDirectory() as home, open(Path(home) / "rebuild.log", "w+b") as log:
        env = {
            **os.environ,
            "BOTRANKS_DATABASE_URL": url,
            "BOTRANKS_NATS_URL": nats,
            "BOTRANKS_HOME": home,
            "BOTRANKS_LOG_LEVEL": "info",
        }
        env["PYTHONPATH"] = str(code)  # the checkout's packages before any installed copy
        version = code_version(code)
        started = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-m", "services.projector.main", "rebuild"],
            cwd=code,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        watchdog = threading.Timer(timeout, lambda: os.kill(child.pid, signal.SIGKILL))
        watchdog.start()
        peak = [0.0]
        done = threading.Event()

        def poll_rss() -> None:
            while not done.wait(0.2):
                peak[0] = max(peak[0], vm_hwm_mb(child.pid))

        poller = threading.Thread(target=poll_rss, daemon=True)
        poller.start()
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        done.set()
        watchdog.cancel()
        log.seek(0)
        return RebuildRun(
            wall,
            usage,
            os.waitstatus_to_exitcode(status),
            log.read().decode(errors="replace"),
            version,
            started,
            peak[0],
        )


class Reader(threading.Thread):
    """Reads one strategy's rm_ledger row every ``interval`` s; remembers the slowest read."""

    def __init__(self, url: str, strategy_ids: list, interval: float) -> None:
        super().__init__(daemon=True)
        self.url, self.strategy_ids, self.interval = url, strategy_ids, interval
        self.stop_event = threading.Event()
        self.durations: list[float] = []
        self.found = 0
        self.slowest_at = 0.0  # perf_counter when the slowest read was issued
        self.error: str | None = None

    def run(self) -> None:
        try:
            with psycopg.connect(self.url, autocommit=True) as conn:
                i = 0
                while not self.stop_event.is_set():
                    sid = self.strategy_ids[i % len(self.strategy_ids)]
                    i += 1
                    t = time.perf_counter()
                    row = conn.execute(
                        "SELECT cash_balance, total_equity FROM rm_ledger WHERE strategy_id = %s", (sid,)
                    ).fetchone()
                    dt = time.perf_counter() - t
                    if not self.durations or dt > max(self.durations):
                        self.slowest_at = t
                    self.durations.append(dt)
                    self.found += row is not None
                    self.stop_event.wait(max(0.0, self.interval - dt))
        except Exception as exc:  # report, do not hang the bench
            self.error = f"{type(exc).__name__}: {exc}"


def database_exists(admin: str, name: str) -> bool:
    with psycopg.connect(admin, autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--strategies", type=int, default=200)
    parser.add_argument("--symbols", default=DEFAULT_SYMBOLS, help="traded symbols (SPY is the benchmark)")
    parser.add_argument("--append-batch", type=int, default=2000, help="events per db.events.append")
    parser.add_argument("--keep-db", metavar="URL", help="use and keep this database (filled only if empty)")
    parser.add_argument("--read-interval", type=float, default=0.05, help="seconds between reads of rm_ledger")
    parser.add_argument("--timeout", type=float, default=3600, help="kill the rebuild after this many seconds")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--code",
        metavar="DIR",
        type=Path,
        default=ROOT,
        help="run the rebuild from this checkout (e.g. `git archive HEAD | tar -x -C DIR`)",
    )
    args = parser.parse_args()
    if not DATA.exists():
        sys.exit(f"missing {DATA} (see ../shared/data/README.md)")
    if args.strategies < 1 or args.events < args.strategies:
        parser.error("need --strategies >= 1 and --events >= --strategies")
    command_line = " ".join([".venv/bin/python", "bench/bench_rebuild.py", *sys.argv[1:]])
    code = args.code.resolve()
    if not (code / "services" / "projector" / "main.py").exists():
        parser.error(f"--code {code}: no services/projector/main.py there")
    admin = os.environ.get("BOTRANKS_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    nats = os.environ.get("BOTRANKS_TEST_NATS_URL", "nats://127.0.0.1:4222")

    if args.keep_db:
        url, drop = args.keep_db, None
        name = conninfo_to_dict(url)["dbname"]
        server = conninfo_to_dict(url)
        server["dbname"] = conninfo_to_dict(admin).get("dbname", "postgres")
        if not database_exists(make_conninfo(**server), name):
            create_database(make_conninfo(**server), name)
    else:
        name = f"botranks_bench_{uuid.uuid4().hex[:8]}"
        url, drop = create_database(admin, name), name

    db: Database | None = Database(url, pool_size=2)
    try:
        db.create_tables()
        fill_s = None
        if db.events.max_notification_id() == 0:
            t = time.perf_counter()
            fill(
                db,
                args.events,
                args.strategies,
                [s.strip().upper() for s in args.symbols.split(",")],
                args.append_batch,
                args.seed,
            )
            fill_s = time.perf_counter() - t
        with sql(db) as curs:
            events = curs.execute("SELECT count(*) AS n FROM botranks_events").fetchone()["n"]
            strategy_ids = [r["id"] for r in curs.execute("SELECT id FROM strategies ORDER BY id").fetchall()]
            had_models = curs.execute("SELECT count(*) AS n FROM rm_ledger").fetchone()["n"]
        db.close()
        db = None
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ANALYZE")  # as autovacuum soon would after a bulk fill

        reader = Reader(url, strategy_ids[:20], args.read_interval)
        reader.start()
        time.sleep(max(0.5, args.read_interval * 10))  # a few reads before, as a baseline
        baseline = list(reader.durations)
        run = timed_rebuild(url, nats, code, args.timeout)
        wall, usage, version, started = run.wall, run.usage, run.version, run.started
        time.sleep(max(0.2, args.read_interval * 4))  # the reads right after the commit
        reader.stop_event.set()
        reader.join(30)
        if run.returncode != 0:
            sys.exit(f"rebuild failed (exit {run.returncode}, timeout {args.timeout:.0f} s):\n{run.output[-4000:]}")
        rebuilt = run.rebuilt
        with psycopg.connect(url, autocommit=True) as conn:
            counts = {
                t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("rm_orders", "rm_cash_events", "rm_ledger", "rm_nav_daily", "rm_checkpoints")
            }
    finally:
        if db is not None:
            db.close()
        if drop:
            drop_database(admin, drop)

    during = reader.durations[len(baseline) :]
    print(f"command: {command_line}")
    print(f"rebuild code: {version}")
    print(
        f"database: {name} ({'kept' if not drop else 'dropped'}; "
        f"{'filled now' if fill_s is not None else 'reused, already filled'}; "
        f"read models before the rebuild: {had_models} rm_ledger rows)"
    )
    print()
    rows = [
        ("events", f"{events:,}"),
        ("strategies", f"{len(strategy_ids):,}"),
        ("fill time (no HTTP)", "reused" if fill_s is None else f"{fill_s:.1f} s  ({events / fill_s:,.0f} events/s)"),
        ("rebuild wall time (child process)", f"{wall:.2f} s"),
        ("  of which rebuild() itself (log)", f"{rebuilt.get('duration_ms', float('nan')) / 1000:.2f} s"),
        ("  child CPU user + sys", f"{usage.ru_utime:.1f} + {usage.ru_stime:.1f} s"),
        ("rebuild events/s", f"{events / wall:,.0f}"),
        ("peak RSS of the rebuild", f"{run.peak_rss_mb:,.0f} MB (VmHWM, polled every 0.2 s)"),
        ("max read stall (one rm_ledger read)", f"{max(during) * 1000:,.0f} ms" if during else "n/a"),
        ("  reads during / found a row", f"{len(during)} / {reader.found}"),
        ("  read before rebuild, median", f"{statistics.median(baseline) * 1000:.1f} ms" if baseline else "n/a"),
        ("  slowest read issued at", f"{reader.slowest_at - started:+.2f} s after the rebuild started"),
        ("read models after", ", ".join(f"{t} {n:,}" for t, n in counts.items())),
    ]
    width = max(len(k) for k, _ in rows) + 2
    for k, v in rows:
        print(f"{k:<{width}}{v}")
    if reader.error:
        print(f"reader error: {reader.error}")


if __name__ == "__main__":
    main()
