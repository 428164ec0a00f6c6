"""Every end-to-end figure of BotRanks in one run, each next to its target and to this machine's
ceilings measured in the same run; prints a table and writes BENCHMARKS.md.

    .venv/bin/python bench/run_all.py            # the full run (~15 minutes on 2 cores)
    .venv/bin/python bench/run_all.py --quick    # a smoke run (~4 minutes), same figures, smaller

1. Ceilings (bench/ceilings.py): PostgreSQL COPY and 500-row executemany of order-sized rows,
   JetStream pipelined publish and pull + ack, and round-trip floors.
2. A fresh database: 1,000 public strategies with an API key each and a history (a deposit and
   orders at real closes over the last trading days of ../shared/data, appended straight into
   the event store, no HTTP), then the services as real processes (devtools.stack.Stack:
   command_api, query_api, relay, projector), which fold the history before anything is timed.
3. Load from separate spawned processes (bench/load.py) over loopback: batched ingest (read-your-
   writes off, then on), single-order POSTs, projection lag at a steady rate, GET /state,
   /performance and /p/leaderboard. After each write phase the projector catches up (timed).
4. The same database through `botranks up`'s base URL on its defaults (bench/through_up.py: Caddy in
   front, the limiters opened), the figures users meet, and the front door's cost per request.
5. Rebuild of every read model from a log of 1,000,000 events (bench/bench_rebuild.py's fill,
   on a second fresh database), as a child process.
Both databases and the NATS streams are removed at the end.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from psycopg.conninfo import conninfo_to_dict  # noqa: E402

from bench import bench_pages, bench_rebuild, load, through_up  # noqa: E402
from bench.ceilings import Ceilings, measure  # noqa: E402
from bench.common import (  # noqa: E402
    ROOT,
    CpuMeter,
    CpuUse,
    LoadPool,
    PgActivity,
    busy_share,
    descendants,
    fresh_database,
    machine,
    percentile_ms,
    pids_named,
    postgres_pids,
    servers,
    vm_hwm_mb,
)
from devtools.stack import Stack, sql, wait_until  # noqa: E402
from libs.infra.db import Database  # noqa: E402
from tools.processes import wait_for_port  # noqa: E402

RATE_LIMIT = "1000000"  # per key per minute: the load must measure the services, not the limiter
HISTORY_SYMBOLS = bench_rebuild.DEFAULT_SYMBOLS.split(",")  # the live orders trade the same (bench/load.py)


@dataclass
class Profile:
    """Sizes of a run (seconds are per phase; connections per load process)."""

    ceiling_rows: int = 200_000
    ceiling_messages: int = 100_000
    floor_seconds: float = 4.0
    strategies: int = 1_000
    history_orders: int = 40  # per strategy, over history_days
    history_days: int = 250
    load_processes: int = 2
    ingest_seconds: float = 30.0
    ingest_connections: int = 4
    single_seconds: float = 20.0
    single_connections: int = 8
    lag_seconds: float = 30.0
    lag_rate: float = 1_000.0  # orders/s
    lag_per_post: int = 20  # orders per POST (50 POSTs/s at 1,000 orders/s)
    lag_sample_every: int = 10  # 1 POST in 10 is followed until visible (5/s)
    lag_poll_s: float = 0.002
    read_closed_seconds: float = 15.0
    read_connections: int = 16
    read_open_seconds: float = 20.0
    read_rate: float = 500.0
    leaderboard_rate: float = 200.0
    rebuild_events: int = 1_000_000
    rebuild_strategies: int = 200


QUICK = Profile(
    ceiling_rows=40_000,
    ceiling_messages=20_000,
    floor_seconds=2.0,
    strategies=300,
    history_orders=10,
    history_days=40,
    ingest_seconds=5.0,
    single_seconds=4.0,
    lag_seconds=6.0,
    read_closed_seconds=4.0,
    read_open_seconds=5.0,
    rebuild_events=100_000,
)


@dataclass
class Row:
    """One figure: its value, its target and what it is compared with."""

    figure: str
    value: float
    unit: str
    target: float | None = None
    higher_is_better: bool = True
    ratio: str = ""
    lower_bound: bool = False  # the true value is at least this (samples that never resolved)

    @property
    def met(self) -> str:
        if self.target is None:
            return "–"
        ok = self.value >= self.target if self.higher_is_better else self.value <= self.target
        return "yes" if ok else "**NO**"

    @property
    def off_by(self) -> str:
        """How far from the target: ``6.1× too slow``."""
        if self.target is None or self.met == "yes" or not self.value:
            return ""
        factor = self.target / self.value if self.higher_is_better else self.value / self.target
        return f"{factor:,.1f}× off"

    def cells(self) -> list[str]:
        target = "–" if self.target is None else f"{'≥' if self.higher_is_better else '≤'} {_num(self.target)}"
        met = self.met + (f" ({self.off_by})" if self.off_by else "")
        measured = ("≥ " if self.lower_bound else "") + f"{_num(self.value)} {self.unit}"
        return [self.figure, measured, target, met, self.ratio]


@dataclass
class Phase:
    """What a phase did; CPU while the load ran and, for writes, until the projector caught up."""

    name: str
    detail: str
    during: CpuUse | None = None
    until_applied: CpuUse | None = None
    units: float = 0
    unit: str = ""
    postgres: list[tuple[float, str]] = field(default_factory=list)  # PgActivity's top statements


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    phases: list[Phase] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rss: dict[str, float] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


def _num(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.1f}" if abs(x) >= 10 else f"{x:,.2f}"


def _lat(latencies: list[float]) -> str:
    return f"p50 {percentile_ms(latencies, 0.5):,.1f} ms, p99 {percentile_ms(latencies, 0.99):,.1f} ms"


def _errors(results: list[dict]) -> str:
    errors = [e for r in results for e in r["errors"]]
    return f"; **{len(errors):,} errors**, e.g. `{errors[0][:160]}`" if errors else ""


# ---------------------------------------------------------------- the system under test


class System:
    """The Stack on its fresh database, the accounts, the load processes and the CPU meter."""

    def __init__(self, url: str, nats: str, home: Path, profile: Profile, report: Report, api_workers: int = 1) -> None:
        self.profile, self.report = profile, report
        self.url, self.database = url, conninfo_to_dict(url)["dbname"]
        self.stack = Stack(
            url,
            nats,
            home,
            BOTRANKS_READ_YOUR_WRITES_TIMEOUT="0",
            BOTRANKS_RATE_LIMIT_PER_MINUTE=RATE_LIMIT,
            BOTRANKS_API_WORKERS=str(api_workers),
        )
        self.command = f"http://127.0.0.1:{self.stack.command_port}"
        self.query = f"http://127.0.0.1:{self.stack.query_port}"
        self.accounts: list[tuple[str, str]] = []
        self.pool = LoadPool(profile.load_processes)
        self.meter = CpuMeter(self._cpu_groups)
        self.phase_number = 0
        self.lag_headers: dict[str, str] = {}  # added to the lag phase's POSTs

    def _cpu_groups(self) -> dict[str, list[int]]:
        groups = {name: descendants(p.pid) for name, p in self.stack.processes.items()}
        return {**groups, "postgres": postgres_pids(self.database), "nats-server": pids_named("nats-server")}

    def setup(self) -> None:
        """Strategies, prices and history straight into the database, then the services."""
        p, db = self.profile, self.stack.db
        t = time.perf_counter()
        ids = []
        for i in range(p.strategies):
            sid, key = db.identity.create_strategy(f"Bench bot {i:04d}", visibility="public")
            ids.append(sid)
            self.accounts.append((str(sid), key))
        closes = bench_rebuild.load_closes(HISTORY_SYMBOLS)
        bench_rebuild.write_closes(db, closes)
        days = sorted(closes[bench_rebuild.BENCHMARK])
        events = bench_rebuild.append_history(
            db, ids, closes, HISTORY_SYMBOLS, p.strategies * (p.history_orders + 1), 2000, 1, days[-p.history_days]
        )
        with sql(db) as curs:
            curs.execute("ANALYZE")
        self.report.timings["setup: strategies, prices, history (no HTTP)"] = time.perf_counter() - t
        t = time.perf_counter()
        self.stack.start()
        self.drain(timeout=900)
        self.report.timings[f"setup: services start and fold the history ({events:,} events)"] = time.perf_counter() - t
        self.report.notes.append(
            f"History: {p.strategies:,} public strategies, each a deposit and {p.history_orders} orders at real"
            f" closes of {', '.join(HISTORY_SYMBOLS)} over the {p.history_days} trading days up to {days[-1]}"
            f" (benchmark SPY), appended straight into the event store ({events:,} events) and folded by the"
            " projector before anything is timed."
        )

    def next_first_ts(self) -> float:
        """Executed-at of a write phase's first orders: after the last priced day (no NAV day is
        re-derived: the live case), each phase a month after the previous, never in the future."""
        self.phase_number += 1
        return load.first_ts_of("2022-06-01") + timedelta(days=30 * self.phase_number).total_seconds()

    def tag(self) -> str:
        """External order ids of the current phase start with this."""
        return f"p{self.phase_number}"

    def drain(self, timeout: float = 900) -> tuple[float, float]:
        """Wait until the projector has applied everything, then until the leaderboard is fresh;
        the seconds each took from now."""
        t = time.perf_counter()
        self.stack.wait_projected(timeout)
        projected = time.perf_counter() - t

        def fresh() -> bool:
            with sql(self.stack.db) as curs:
                return (
                    curs.execute(
                        "SELECT count(*) AS n FROM rm_ledger AS l LEFT JOIN rm_leaderboard AS b"
                        " USING (strategy_id) WHERE b.nav_version IS DISTINCT FROM l.updated_at"
                    ).fetchone()["n"]
                    == 0
                )

        wait_until(fresh, max(10.0, timeout - projected), "the leaderboard to be fresh")
        return projected, time.perf_counter() - t

    def settle(self, timeout: float = 60.0) -> None:
        """Wait until the services and PostgreSQL are idle (< 0.2 of a core over 0.5 s), so that work
        still queued from a phase does not load the next one."""
        t = time.perf_counter()
        while time.perf_counter() - t < timeout:
            before = self.meter.snapshot()
            time.sleep(0.5)
            use = self.meter.since(before)
            if sum(v for k, v in use.seconds.items() if k not in ("other", "nats-server")) / use.wall < 0.2:
                break
        key = "waiting for the services to be idle before each load (total)"
        self.report.timings[key] = self.report.timings.get(key, 0.0) + time.perf_counter() - t

    def run_load(self, target: Any, arg_lists: list[tuple], settle: bool = True) -> tuple[list[dict], CpuUse]:
        """Run the load processes (once the services are idle, unless the caller saw to it); their
        results and the CPU use while they ran."""
        if settle:
            self.settle()
        before = self.meter.snapshot()
        results = self.pool.run(target, arg_lists)
        return results, self.meter.since(before, sum(r["cpu"] for r in results))

    def pg_activity(self) -> PgActivity:
        """A sampler of what the run database's backends do, started."""
        return PgActivity(self.url, self.database).start()

    def split(self) -> list[list[tuple[str, str]]]:
        """The accounts, one share per load process (a strategy is written by one process only)."""
        n = self.profile.load_processes
        return [self.accounts[i::n] for i in range(n)]

    def restart_command_api(self, **env: str) -> None:
        """command_api again with other settings (its peak RSS so far is kept)."""
        self.record_rss()
        self.stack.extra_env.update(env)
        self.stack.kill("command_api", signal.SIGTERM)
        self.stack._spawn("command_api", "services.command_api.main", "--port", str(self.stack.command_port))
        wait_for_port(self.stack.command_port, 60)

    def record_rss(self) -> None:
        for name, process in self.stack.processes.items():
            peak = sum(vm_hwm_mb(pid) for pid in descendants(process.pid))
            self.report.rss[name] = max(self.report.rss.get(name, 0.0), peak)

    def close(self) -> None:
        self.pool.close()
        try:
            self.record_rss()
        finally:
            self.stack.stop()


def merged(results: list[dict]) -> dict[str, Any]:
    """Closed-loop results of several load processes as one."""
    return {
        "units": sum(r["units"] for r in results),
        "requests": sum(r["requests"] for r in results),
        "latencies": [x for r in results for x in r["latencies"]],
        "elapsed": max(r["elapsed"] for r in results),
        "not_projected": sum(r.get("not_projected", 0) for r in results),
    }


# ---------------------------------------------------------------- phases


def ingest_phase(system: System, label: str, per_post: int, connections: int, seconds: float, ryw: bool) -> float:
    """Closed-loop POST /orders from every load process, then the catch-up; orders/s (or req/s for
    single orders) acknowledged."""
    n = system.profile.load_processes
    system.settle()
    before, postgres = system.meter.snapshot(), system.pg_activity()
    first_ts, start_at = system.next_first_ts(), time.time() + 0.5
    results, during = system.run_load(
        load.ingest,
        [
            (system.command, share, per_post, connections, seconds, start_at, system.tag(), first_ts)
            for share in system.split()
        ],
        settle=False,
    )
    out = merged(results)
    projected, fresh = system.drain()
    until_applied = system.meter.since(before, during.seconds.get("load generator", 0.0))
    top = postgres.stop()
    orders = out["units"]
    detail = (
        f"{orders:,} orders in {out['requests']:,} POSTs over {out['elapsed']:.1f} s from {n}×{connections}"
        f" connections; POST {_lat(out['latencies'])}; the projector had applied everything"
        f" {projected:.1f} s after the last answer ({orders / (out['elapsed'] + projected):,.0f} orders/s"
        f" acknowledged and applied), the leaderboard was fresh {fresh:.1f} s after it"
    )
    if ryw:
        detail += (
            f"; {out['not_projected']:,} of {out['requests']:,} answers said `BotRanks-Projected: false`"
            " (read-your-writes timed out)"
        )
    system.report.phases.append(Phase(label, detail + _errors(results), during, until_applied, orders, "order", top))
    return orders / out["elapsed"] if per_post > 1 else out["requests"] / out["elapsed"]


def write_phases(system: System, c: Ceilings) -> None:
    """Batched and single-order ingest and the lag with read-your-writes off, then both ingests with it on."""
    p = system.profile
    batched_off = ingest_phase(
        system, "batched ingest, read-your-writes off", 500, p.ingest_connections, p.ingest_seconds, False
    )
    single_off = ingest_phase(
        system, "single-order POSTs, read-your-writes off", 1, p.single_connections, p.single_seconds, False
    )
    lag = lag_phase(system, c)
    system.restart_command_api(BOTRANKS_READ_YOUR_WRITES_TIMEOUT="2")
    batched_on = ingest_phase(
        system, "batched ingest, read-your-writes on (2 s)", 500, p.ingest_connections, p.ingest_seconds, True
    )
    single_on = ingest_phase(
        system, "single-order POSTs, read-your-writes on (2 s)", 1, p.single_connections, p.single_seconds, True
    )
    many = f"{{:.2f}} of PG executemany ({c.pg_executemany_rows_s:,.0f} rows/s)"
    commit = f"{{:.2f}} of PG 1-row commits ({c.pg_commit_tx_s:,.0f} tx/s, 1 connection)"
    system.report.rows += [
        Row(
            "Batched ingest (500/POST), read-your-writes off",
            batched_off,
            "orders/s",
            20_000,
            ratio=many.format(batched_off / c.pg_executemany_rows_s),
        ),
        Row(
            "Batched ingest (500/POST), read-your-writes on",
            batched_on,
            "orders/s",
            12_000,
            ratio=many.format(batched_on / c.pg_executemany_rows_s),
        ),
        Row(
            "Single-order POSTs, read-your-writes on (the default)",
            single_on,
            "req/s",
            1_500,
            ratio=commit.format(single_on / c.pg_commit_tx_s),
        ),
        Row(
            "Single-order POSTs, read-your-writes off",
            single_off,
            "req/s",
            None,
            ratio=commit.format(single_off / c.pg_commit_tx_s),
        ),
        *lag,
    ]


def lag_phase(system: System, c: Ceilings) -> list[Row]:
    """Open loop of small POSTs at a steady order rate; a sample of them polled on GET /state until visible."""
    p = system.profile
    system.settle()
    before, postgres = system.meter.snapshot(), system.pg_activity()
    first_ts = system.next_first_ts()
    results, during = system.run_load(
        load.lag,
        [
            (
                system.command,
                system.query,
                system.accounts,
                p.lag_rate,
                p.lag_per_post,
                p.lag_seconds,
                p.lag_sample_every,
                p.lag_poll_s,
                time.time() + 0.5,
                system.tag(),
                first_ts,
                system.lag_headers,
            )
        ],
        settle=False,
    )
    r = results[0]
    lags, posts = r["latencies"].get("lag", []), r["latencies"].get("POST", [])
    by_time = [lag for _, lag in sorted(r["lag_series"])]
    quarter = max(1, len(by_time) // 4)
    first, last = percentile_ms(by_time[:quarter], 0.5), percentile_ms(by_time[-quarter:], 0.5)
    projected, _ = system.drain()
    until_applied = system.meter.since(before, during.seconds.get("load generator", 0.0))
    top = postgres.stop()
    system.report.phases.append(
        Phase(
            "projection lag",
            f"{len(posts):,} POSTs of {p.lag_per_post} orders in {p.lag_seconds:.0f} s (open loop,"
            f" {p.lag_rate / p.lag_per_post:,.0f} POSTs/s, read-your-writes off), POST {_lat(posts)}; lag of"
            f" {len(lags):,} sampled POSTs (1 in {p.lag_sample_every}): {_lat(lags)}, max {max(lags, default=0):,.1f} s;"
            f" lag p50 of the first quarter of the samples {first:,.0f} ms, of the last quarter {last:,.0f} ms"
            + (" (growing: the projector falls behind)" if last > 1.5 * first + 10 else "")
            + (
                f"; **{r['censored']} samples still not visible {load.GIVE_UP_S:.0f} s after their 2xx**, counted as"
                f" the time waited (the percentiles are lower bounds)"
                if r["censored"]
                else ""
            )
            + f"; the polls added {r['polls'] / p.lag_seconds:,.0f} GET /state a second; sender lag p99"
            f" {r['sender_lag_p99']:.1f} ms; the projector had applied everything {projected:.1f} s after the last"
            " sample" + _errors(results),
            during,
            until_applied,
            len(posts) * p.lag_per_post,
            "order",
            top,
        )
    )
    floor50, floor99 = c.pg_commit_ms[0] + c.js_hop_ms[0], c.pg_commit_ms[1] + c.js_hop_ms[1]
    return [
        Row(
            f"Projection lag p50 (2xx → visible in GET /state) at {p.lag_rate:,.0f} orders/s",
            percentile_ms(lags, 0.5),
            "ms",
            30,
            False,
            f"{percentile_ms(lags, 0.5) / floor50:,.0f}× the floor (PG commit + JetStream hop p50 = {floor50:.1f} ms)",
            r["censored"] > 0,
        ),
        Row(
            f"Projection lag p99 at {p.lag_rate:,.0f} orders/s",
            percentile_ms(lags, 0.99),
            "ms",
            100,
            False,
            f"{percentile_ms(lags, 0.99) / floor99:,.0f}× the floor (p99s: {floor99:.1f} ms)",
            r["censored"] > 0,
        ),
    ]


def read_phases(system: System, c: Ceilings) -> None:
    """GET /state and warm GET /performance: max throughput (closed loop), then p99 at the target's
    rate and at half the measured maximum (open loops); then the leaderboard at a steady rate."""
    p, report = system.profile, system.report
    t = time.perf_counter()
    performance = [(f"/api/v1/strategies/{sid}/performance", key) for sid, key in system.accounts]
    system.pool.run(load.get_each, [(system.query, performance, 8)])
    report.timings[f"warm-up: one GET /performance per strategy ({p.strategies:,}, cold)"] = time.perf_counter() - t
    select = f"{{:.2f}} of PG point SELECTs ({c.pg_select_qps:,.0f}/s, 1 connection)"
    for what, label in (("state", "GET /state"), ("performance", "GET /performance (warm)")):
        paths = [(f"/api/v1/strategies/{sid}/{what}", key) for sid, key in system.accounts]
        postgres = system.pg_activity()
        results, during = system.run_load(
            load.reads_closed,
            [
                (system.query, paths, p.read_connections, p.read_closed_seconds, time.time() + 0.5, i)
                for i in range(p.load_processes)
            ],
        )
        top_statements = postgres.stop()
        out = merged(results)
        top = out["requests"] / out["elapsed"]
        report.rows.append(
            Row(
                f"{label}, {p.strategies:,} keys: max throughput",
                top,
                "req/s",
                3_000,
                ratio=select.format(top / c.pg_select_qps),
            )
        )
        report.phases.append(
            Phase(
                f"{label}, closed loop",
                f"{p.load_processes}×{p.read_connections} connections,"
                f" {out['elapsed']:.1f} s, {_lat(out['latencies'])}" + _errors(results),
                during,
                None,
                out["requests"],
                "request",
                top_statements,
            )
        )
        for rate, target in ((p.read_rate, 5.0), (round(top / 2), None)):
            results, during = system.run_load(
                load.reads_open, [(system.query, paths, rate, p.read_open_seconds, time.time() + 0.5, 7)]
            )
            lat = results[0]["latencies"].get("GET", [])
            name = f"{label} p99 at {rate:,.0f} req/s" + ("" if target else " (half the max, no target)")
            report.rows.append(
                Row(
                    name,
                    percentile_ms(lat, 0.99),
                    "ms",
                    target,
                    False,
                    f"{percentile_ms(lat, 0.99) / c.pg_select_ms[1]:,.0f}× PG point SELECT p99"
                    f" ({c.pg_select_ms[1]:.2f} ms)",
                )
            )
            report.phases.append(
                Phase(
                    f"{label}, open loop at {rate:,.0f}/s",
                    f"{len(lat):,} requests,"
                    f" {_lat(lat)}, sender lag p99 {results[0]['sender_lag_p99']:.1f} ms" + _errors(results),
                    during,
                    None,
                    len(lat),
                    "request",
                )
            )
    results, during = system.run_load(
        bench_pages.leaderboard_load, [(system.query, p.leaderboard_rate, p.read_open_seconds, 1, 3)]
    )
    lat = results[0]["latencies"].get("leaderboard", [])
    report.rows.append(
        Row(
            f"Leaderboard JSON (/p/leaderboard) p99 at {p.leaderboard_rate:,.0f} req/s",
            percentile_ms(lat, 0.99),
            "ms",
            20,
            False,
            f"{percentile_ms(lat, 0.99) / c.pg_select_ms[1]:,.0f}× PG point SELECT p99",
        )
    )
    report.phases.append(
        Phase(
            "leaderboard, open loop",
            f"{len(lat):,} requests at {p.leaderboard_rate:,.0f}/s"
            f" (page 1, random sort and direction, min_days=30), {_lat(lat)}" + _errors(results),
            during,
            None,
            len(lat),
            "request",
        )
    )


def rebuild_phase(profile: Profile, c: Ceilings, report: Report) -> None:
    """bench_rebuild's log of ``rebuild_events`` on a fresh database, then the rebuild as a child."""
    _, nats = servers()
    with fresh_database("botranks_bench_rebuild") as url:
        db = Database(url, pool_size=2).create_tables()
        try:
            t = time.perf_counter()
            events, _ = bench_rebuild.fill(
                db, profile.rebuild_events, profile.rebuild_strategies, HISTORY_SYMBOLS, 2000, 1
            )
            with sql(db) as curs:
                curs.execute("ANALYZE")
            report.timings[f"rebuild: fill the log ({events:,} events, no HTTP)"] = time.perf_counter() - t
        finally:
            db.close()
        run = bench_rebuild.timed_rebuild(url, nats, timeout=1800)
    if run.returncode != 0:
        raise RuntimeError(f"rebuild failed (exit {run.returncode}):\n{run.output[-3000:]}")
    report.rows.append(
        Row(
            f"Rebuild of every read model from {events:,} events",
            run.wall,
            "s",
            60,
            False,
            f"{events / run.wall / c.pg_copy_rows_s:.2f} of PG COPY ({events / run.wall:,.0f}"
            f" events/s vs {c.pg_copy_rows_s:,.0f} rows/s)",
        )
    )
    report.rss["rebuild (projector main rebuild)"] = run.peak_rss_mb
    report.phases.append(
        Phase(
            "rebuild",
            f"{events:,} events of {profile.rebuild_strategies} strategies (5"
            f" symbols, 2017-2022 real closes); the child used {run.usage.ru_utime:.0f} s user +"
            f" {run.usage.ru_stime:.0f} s system CPU in {run.wall:.0f} s",
        )
    )


# ---------------------------------------------------------------- report


def table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def postgres_text(phase: Phase) -> str:
    """PostgreSQL's busiest statements in the phase (average number of backends in each)."""
    return (
        (
            "PostgreSQL, busiest statements (average number of backends in each, sampled every 20 ms): "
            + "; ".join(f"{n:.2f} in {what}" for n, what in phase.postgres)
        )
        if phase.postgres
        else ""
    )


def cpu_text(phase: Phase) -> str:
    """CPU shares while the load ran, and CPU per unit of work (until the projector caught up)."""
    parts = []
    if phase.during:
        shares = phase.during.shares()
        top = sorted(((v, k) for k, v in shares.items() if v >= 0.005 and k != "idle"), reverse=True)
        parts.append(
            "CPU while loading (share of all cores): "
            + ", ".join(f"{k} {v:.0%}" for v, k in top)
            + f"; idle {shares['idle']:.0%}"
        )
    use = phase.until_applied or phase.during
    if use and phase.units:
        per = use.per_unit_ms(phase.units)
        top = sorted(((v, k) for k, v in per.items() if v >= 0.005), reverse=True)
        scope = " until everything was applied" if phase.until_applied else ""
        parts.append(
            f"CPU per {phase.unit}{scope}: {sum(per.values()):.2f} ms ("
            + ", ".join(f"{k} {v:.2f}" for v, k in top)
            + ")"
        )
    return ". ".join(parts)


def render(
    report: Report,
    c: Ceilings,
    info: dict[str, str],
    command: str,
    profile: Profile,
    quick: bool,
    wall: float,
    api_workers: int,
) -> str:
    figures = table(["figure", "measured", "target", "met?", "ratio to ceiling"], [r.cells() for r in report.rows])
    ceilings = table(
        ["ceiling", "measured"],
        [
            ["PostgreSQL COPY, order-sized rows (1 connection, 1 transaction)", f"{c.pg_copy_rows_s:,.0f} rows/s"],
            [
                "PostgreSQL executemany, 500-row batches, 1 transaction each (1 connection)",
                f"{c.pg_executemany_rows_s:,.0f} rows/s",
            ],
            [
                "JetStream pipelined publish (batches of 1,000 in flight, then their acks)",
                f"{c.js_publish_msg_s:,.0f} msg/s",
            ],
            ["JetStream pull (500 a fetch) + ack", f"{c.js_pull_ack_msg_s:,.0f} msg/s"],
            [
                "PostgreSQL 1-row INSERT + COMMIT, back to back (1 connection)",
                f"{c.pg_commit_tx_s:,.0f} tx/s; p50 {c.pg_commit_ms[0]:.2f} ms, p99 {c.pg_commit_ms[1]:.2f} ms",
            ],
            [
                "PostgreSQL point SELECT by primary key (1 connection)",
                f"{c.pg_select_qps:,.0f}/s; p50 {c.pg_select_ms[0]:.2f} ms, p99 {c.pg_select_ms[1]:.2f} ms",
            ],
            ["JetStream hop: publish 1, fetch it, ack it", f"p50 {c.js_hop_ms[0]:.2f} ms, p99 {c.js_hop_ms[1]:.2f} ms"],
        ],
    )
    rss = table(["process", "peak RSS (VmHWM)"], [[k, f"{v:,.0f} MB"] for k, v in report.rss.items()])
    phases = "\n".join(
        f"- **{ph.name}**: {ph.detail}."
        + (f" {cpu_text(ph)}." if ph.during or ph.until_applied else "")
        + (f" {postgres_text(ph)}." if ph.postgres else "")
        for ph in report.phases
    )
    timings = "\n".join(f"- {k}: {v:.1f} s" for k, v in report.timings.items())
    missed = [r for r in report.rows if r.met == "**NO**"]
    verdict = (
        "Every target met."
        if not missed
        else f"{len(missed)} of {sum(r.target is not None for r in report.rows)} targets missed."
    )
    return f"""# BotRanks benchmarks
{
        chr(10) + "**QUICK smoke run (`--quick`): smaller sizes, shorter phases; not the reference figures.**" + chr(10)
        if quick
        else ""
    }
Measured on {info["nproc"]} cores ({info["cpu"]}), {info["memory"]} RAM, on {info["date"]}, code at commit
{info["commit"]} (Python {info["python"]}). PostgreSQL and NATS JetStream run on the same machine
(loopback), as do the load generator and the services: everything shares the {info["nproc"]} cores.
Before the run the machine was {info["background"]} busy with other work ("other" in the CPU shares
below is work that is not part of the run, e.g. someone else's tests on the same servers).
The run took {wall / 60:.1f} minutes.

```sh
{command}
```

## Figures

{figures}

{verdict} "ratio to ceiling": throughputs divided by the ceiling named (1.00 = as fast as PostgreSQL or
JetStream alone, measured in this run); latencies as a multiple of the matching round-trip floor.

## Ceilings of this machine (same run)

{ceilings}

## Peak RSS per service process

{rss}

## What each phase did, and where the CPU went

{phases}

Setup and other timings:

{timings}

## How the figures are measured

- **Services**: `devtools.stack.Stack` starts command_api, query_api, relay and one projector as real
  processes ({api_workers} uvicorn worker{"s" if api_workers > 1 else ""} each for the two APIs,
  `BOTRANKS_API_WORKERS`{", the default" if api_workers == 1 else ""}) on a database the run creates and drops, with
  **`BOTRANKS_RATE_LIMIT_PER_MINUTE={RATE_LIMIT}`** per key (the default, 60, would measure the rate
  limiter) and `BOTRANKS_LOG_LEVEL=warning`. Read-your-writes is off (`BOTRANKS_READ_YOUR_WRITES_TIMEOUT=0`)
  for the first write phases and the lag; command_api is then restarted with it on (2 s, the default).
- **Load**: {profile.load_processes} spawned load processes (`bench/load.py`) with the minimal keep-alive
  HTTP/1.1 client of `bench/common.py` (httpx costs too much CPU on a 2-core box), over loopback. Their
  own CPU is reported per phase ("load generator"); "postgres" counts the server's own processes and the
  backends of the run's database only; "other" is the rest of the machine's busy time. "CPU per order"
  is CPU seconds from the start of the phase until the projector had applied everything, divided by the
  orders (so it includes the projection of those orders). "PostgreSQL, busiest statements": the
  run's backends sampled from `pg_stat_activity` every 20 ms (from the start of a write phase until
  everything was applied; during the closed loop of a read phase); a number is the average count of
  backends in that statement and state ("idle in transaction": a client holding a transaction open).
- **Batched ingest**: closed loop, {profile.load_processes}×{profile.ingest_connections} connections, each
  posting 500-order batches back to back, round-robin over its own share of the {profile.strategies:,}
  strategies (one writer per strategy; each strategy's orders in time order, dated after the last priced
  day, so no NAV day is re-derived: the live case); orders/s = orders acknowledged as accepted / time from
  the first POST to the last answer ({profile.ingest_seconds:.0f} s of sending). The run then waits until
  the projector has applied everything (reported, not part of the figure).
- **Single-order POSTs**: the same with one order per POST, {profile.load_processes}×{profile.single_connections}
  connections, {profile.single_seconds:.0f} s.
- **Projection lag**: an open loop (requests leave on schedule whatever the answers do) of {profile.lag_rate:,.0f}
  orders/s as {profile.lag_rate / profile.lag_per_post:,.0f} POSTs/s of {profile.lag_per_post} orders, each to the
  next strategy, read-your-writes off (so the 2xx comes at commit), for {profile.lag_seconds:.0f} s. Batches
  rather than single-order POSTs, so that the command side (see its single-order rate) is not what is
  measured. For 1 POST in {profile.lag_sample_every} the load process polls GET /state of its strategy
  every {profile.lag_poll_s * 1000:.0f} ms (every 5 % of the time waited so far once that is longer, every 25 %
  after a second, so that a long lag does not turn the polls into load) from
  the 2xx on, until `last_order_at` reaches the POST's last `executed_at`; the lag is the time from the 2xx
  to the answer that shows it (it includes that GET). Floor: PostgreSQL commit + JetStream hop.
- **Reads**: every strategy has its history plus the orders of the write phases. GET /performance is
  warmed first (one request per strategy fills query_api's cache; NAV versions do not move during the
  reads). Max throughput: closed loop, {profile.load_processes}×{profile.read_connections} connections, a random
  strategy per request with its own key, {profile.read_closed_seconds:.0f} s. p99: open loop at
  {profile.read_rate:,.0f} req/s from one process, {profile.read_open_seconds:.0f} s, then again at half the
  measured maximum (no target: the latency when not saturated). Leaderboard: open loop at
  {profile.leaderboard_rate:,.0f} req/s of page 1 with a random sort and direction (min_days=30), as
  `bench/bench_pages.py` does.
- **Rebuild**: `bench/bench_rebuild.py`'s log ({profile.rebuild_strategies} strategies, a deposit each and
  orders at real closes over 2017-2022, appended without HTTP) on a second fresh database, then
  `python -m services.projector.main rebuild` as a child process: its wall time, and its peak RSS
  (its `VmHWM`, polled every 0.2 s) in the RSS table.
- **Peak RSS**: `VmHWM` of each process the Stack spawned (summed over its children, if any), read
  before it stops (command_api: the larger of its two incarnations).
{chr(10).join("- " + n for n in report.notes)}
"""


def print_table(report: Report) -> None:
    headers = ["figure", "measured", "target", "met?", "ratio to ceiling"]
    cells = [[c.replace("**", "") for c in r.cells()] for r in report.rows]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(headers)]
    print("\n" + "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a ~3-minute smoke run (smaller, shorter)")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--skip-rebuild", action="store_true", help="leave out the rebuild phase")
    parser.add_argument("--skip-up", action="store_true", help="leave out the phases through `botranks up`")
    parser.add_argument(
        "--api-workers",
        type=int,
        default=1,
        help="BOTRANKS_API_WORKERS: uvicorn worker processes of command_api and query_api",
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0,
        metavar="S",
        help="wait up to S seconds for the machine to be quiet (< 15%% busy) before starting",
    )
    args = parser.parse_args()
    profile = QUICK if args.quick else Profile()
    command = " ".join([".venv/bin/python", "bench/run_all.py", *map(shlex.quote, sys.argv[1:])])
    info = machine()
    report = Report()
    _, nats = servers()
    started = time.perf_counter()

    def step(what: str) -> None:
        print(f"[{time.perf_counter() - started:6.0f} s] {what}", flush=True)

    background = busy_share(3)
    while background > 0.15 and time.perf_counter() - started < args.wait_quiet:
        step(f"the machine is {background:.0%} busy before the run: waiting")
        background = busy_share(10)
    info["background"] = f"{background:.0%}"
    started = time.perf_counter()
    step("ceilings")
    with fresh_database("botranks_bench_all") as url:
        t = time.perf_counter()
        c = measure(url, nats, profile.ceiling_rows, profile.ceiling_messages, profile.floor_seconds)
        report.timings["ceilings"] = time.perf_counter() - t
        with tempfile.TemporaryDirectory(prefix="botranks-bench-") as home:
            step("setup: strategies, history, services")
            system = System(url, nats, Path(home), profile, report, args.api_workers)
            try:
                system.setup()
                step("write phases")
                write_phases(system, c)
                step("read phases")
                read_phases(system, c)
                if not args.skip_up:
                    step("through botranks up")
                    through_up.run(system, c, nats, Path(home), RATE_LIMIT, args.quick)
            except BaseException:
                traceback.print_exc()
                for log in sorted(Path(home).glob("*.log")):
                    print(f"--- {log.name} (tail)\n" + log.read_text(errors="replace")[-2000:])
                raise
            finally:
                system.close()
    if not args.skip_rebuild:
        step("rebuild")
        rebuild_phase(profile, c, report)
    wall = time.perf_counter() - started
    step("done")
    print_table(report)
    args.output.write_text(render(report, c, info, command, profile, args.quick, wall, args.api_workers))
    print(f"\nwrote {args.output} ({wall / 60:.1f} minutes)")


if __name__ == "__main__":
    main()
