"""The figures users meet: everything of bench/run_all.py's direct run again, but through the base URL
of ``botranks up`` on its defaults (Caddy in front, the API workers the settings give), on the same
database once the direct phases are done (its history, accounts and orders), so that both sets of
figures and the ceilings come from one run.

Only the limiters are opened (``LIMITERS_OFF``: the bench measures the services, not the limiters);
``botranks up`` is started with the run's PostgreSQL database and NATS server (the ceilings were
measured there), every other ``BOTRANKS_*`` setting at its default.

The closed-loop GETs use ``wrk`` when it is on PATH (``apt-get install wrk``; it costs a fraction of
the CPU of a Python client on the same 2 cores), else ``bench/load.py``'s Python client.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import backfill_spread, load
from bench.ceilings import Ceilings
from bench.common import CpuMeter, descendants, percentile_ms, pids_named, postgres_pids, vm_hwm_mb
from devtools.stack import BotranksUp
from libs.infra.settings import Settings

if TYPE_CHECKING:
    from bench.run_all import System

KEYS = 50  # the wrk probe: 32 connections over 50 keys
CONNECTIONS = 32
OPEN_RATE = 1_000.0  # req/s of the open loop on GET /state
RYW_OFF = {"BotRanks-Read-Your-Writes": "off"}


def limiters_off(rate_limit: str) -> dict[str, str]:
    """The settings (libs/infra/settings.py) that open the limiters: per-key rate limit, the pages'
    per-address limit (0: none), the downloads per address (0: no cap)."""
    return {
        "BOTRANKS_RATE_LIMIT_PER_MINUTE": rate_limit,
        "BOTRANKS_PAGE_REQUESTS_PER_MINUTE_PER_IP": "0",
        "BOTRANKS_DOWNLOADS_PER_ADDRESS": "0",
    }


class Up:
    """``botranks up`` (devtools.stack.BotranksUp) on the run's servers; who is who from its pids.json."""

    def __init__(self, url: str, nats: str, workdir: Path, rate_limit: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.up = BotranksUp(
            workdir, timeout=300, BOTRANKS_DATABASE_URL=url, BOTRANKS_NATS_URL=nats, **limiters_off(rate_limit)
        )
        self.base = self.up.base
        self.database = url

    def __enter__(self) -> Up:
        self.up.__enter__()
        port = self._cmdline(self.pids()["query_api"]).split("--port")[1].split()[0]
        self.query_direct = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.up.__exit__(None, None, None)

    def pids(self) -> dict[str, int]:
        pids = json.loads((self.up.home / "run" / "pids.json").read_text())
        return {k: v for k, v in pids.items() if v}

    @staticmethod
    def _cmdline(pid: int) -> str:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()

    def groups(self, database: str) -> dict[str, list[int]]:
        groups = {("caddy" if k == "gateway" else k): descendants(v) for k, v in self.pids().items()}
        groups["supervisor"] = [self.pids()["supervisor"]]  # its children are the services above
        return {**groups, "postgres": postgres_pids(database), "nats-server": pids_named("nats-server")}

    def rss(self) -> dict[str, float]:
        return {
            f"{k} (botranks up)": sum(vm_hwm_mb(p) for p in descendants(v))
            for k, v in self.pids().items()
            if k != "supervisor"
        }

    def log_tail(self) -> str:
        return self.up.log.read_text(errors="replace")[-3000:] if self.up.log.exists() else ""


# ---------------------------------------------------------------- closed-loop GETs


WRK_SCRIPT = """
local targets = %s
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
request = function()
  local t = targets[math.random(#targets)]
  if t[2] == "" then return wrk.format("GET", t[1]) end
  return wrk.format("GET", t[1], {["Authorization"] = "Bearer " .. t[2]})
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('\\nRESULT {"requests": %%d, "duration_us": %%d, "status": %%d, "connect": %%d, "read": %%d,'
    .. ' "write": %%d, "timeout": %%d, "p50_us": %%d, "p99_us": %%d}\\n', summary.requests, summary.duration,
    e.status, e.connect, e.read, e.write, e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


def wrk_closed(base: str, paths: list[tuple[str, str]], seconds: float, workdir: Path) -> dict[str, Any]:
    """wrk, 2 threads, ``CONNECTIONS`` connections, a random ``(path, key)`` per request (a Lua script)."""
    script = workdir / "wrk.lua"
    script.write_text(WRK_SCRIPT % ("{" + ",".join(f"{{{json.dumps(p)},{json.dumps(k)}}}" for p, k in paths) + "}"))
    argv = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{max(1, round(seconds))}s", "--timeout", "10s", "-s", str(script)]
    process = subprocess.Popen([*argv, base + paths[0][0]], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert process.stdout is not None
    output = process.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    line = next((x for x in output.splitlines() if x.startswith("RESULT ")), None)
    if process.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed (exit {process.returncode}): {output[-2000:]}")
    r = json.loads(line.removeprefix("RESULT "))
    errors = {k: r[k] for k in ("status", "connect", "read", "write", "timeout") if r[k]}
    return {
        "requests": r["requests"] - sum(errors.values()),
        "elapsed": r["duration_us"] / 1e6,
        "latency": f"p50 {r['p50_us'] / 1000:,.1f} ms, p99 {r['p99_us'] / 1000:,.1f} ms (wrk)",
        "errors": f"; **errors: {errors}** (wrk; status: answers ≥ 400)" if errors else "",
        "cpu": usage.ru_utime + usage.ru_stime,
    }


def python_closed(system: System, base: str, paths: list[tuple[str, str]], seconds: float) -> dict[str, Any]:
    """bench/load.py's closed loop: ``CONNECTIONS`` connections over the load processes."""
    n = system.profile.load_processes
    start = time.time() + 0.5
    results = system.pool.run(load.reads_closed, [(base, paths, CONNECTIONS // n, seconds, start, i) for i in range(n)])
    latencies = [x for r in results for x in r["latencies"]]
    errors = [e for r in results for e in r["errors"]]
    return {
        "requests": sum(r["requests"] for r in results),
        "elapsed": max(r["elapsed"] for r in results),
        "latency": f"p50 {percentile_ms(latencies, 0.5):,.1f} ms, p99 {percentile_ms(latencies, 0.99):,.1f} ms"
        " (bench/load.py)",
        "errors": f"; **{len(errors):,} errors**, e.g. `{errors[0][:160]}`" if errors else "",
        "cpu": sum(r["cpu"] for r in results),
    }


def closed_get(
    system: System, base: str, paths: list[tuple[str, str]], label: str, workdir: Path, use_wrk: bool
) -> tuple[float, dict[str, float]]:
    """One closed-loop GET phase (its CPU per request by process in the report); req/s and the CPU ms
    per request by process."""
    from bench.run_all import Phase

    seconds = system.profile.read_closed_seconds
    system.settle()
    before, postgres = system.meter.snapshot(), system.pg_activity()
    out = wrk_closed(base, paths, seconds, workdir) if use_wrk else python_closed(system, base, paths, seconds)
    during = system.meter.since(before, out["cpu"])
    top = postgres.stop()
    rate = out["requests"] / out["elapsed"]
    system.report.phases.append(
        Phase(
            label,
            f"{CONNECTIONS} connections over {len(paths)} {'keys' if paths[0][1] else 'strategies'},"
            f" {out['elapsed']:.1f} s, {out['requests']:,} requests ({rate:,.0f}/s), {out['latency']}" + out["errors"],
            during,
            None,
            out["requests"],
            "request",
            top,
        )
    )
    return rate, during.per_unit_ms(out["requests"])


# ---------------------------------------------------------------- the phases


def run(system: System, c: Ceilings, nats: str, workdir: Path, rate_limit: str, quick: bool) -> None:
    """Stop the direct Stack's services, start ``botranks up`` on the same database and measure."""
    from bench import run_all
    from bench.run_all import Row

    report = system.report
    system.record_rss()
    for name in list(system.stack.processes):
        system.stack.kill(name, 15)
    up = Up(system.url, nats, workdir / "up", rate_limit)
    t = time.perf_counter()
    saved = system.meter, system.command, system.query
    use_wrk = shutil.which("wrk") is not None
    try:
        with up:
            report.timings["through up: `botranks up` starts (healthy)"] = time.perf_counter() - t
            system.meter = CpuMeter(lambda: up.groups(str(system.database)))
            system.command = system.query = up.base
            accounts = system.accounts[:KEYS]
            state = [(f"/api/v1/strategies/{sid}/state", key) for sid, key in accounts]
            perf = [(f"/api/v1/strategies/{sid}/performance", key) for sid, key in accounts]
            t = time.perf_counter()
            system.pool.run(load.get_each, [(up.base, perf, 8)])
            report.timings[f"through up: warm-up, one GET /performance per key ({KEYS})"] = time.perf_counter() - t
            how = "wrk" if use_wrk else "bench/load.py"

            cpu: dict[str, dict[str, float]] = {}

            def get(base: str, paths: list[tuple[str, str]], label: str, python: bool = False) -> float:
                rate, cpu[label] = closed_get(system, base, paths, label, workdir, use_wrk and not python)
                return rate

            rates = {
                "state": get(up.base, state, f"up: GET /state through `botranks up`, closed loop ({how})"),
                "direct": get(up.query_direct, state, f"up: GET /state at query_api's own port, closed loop ({how})"),
                "performance": get(up.base, perf, f"up: GET /performance (warm) through `botranks up` ({how})"),
                "p": get(
                    up.base,
                    [(f"/p/strategies/{sid}", "") for sid, _ in accounts],
                    f"up: GET /p/strategies/{{id}} ({how})",
                ),
                "s": get(up.base, [(f"/s/{sid}", "") for sid, _ in accounts], f"up: GET /s/{{id}}, the page ({how})"),
            }
            if use_wrk:
                rates["python"] = get(up.base, state, "up: GET /state through `botranks up`, bench/load.py", True)
            open_rows = open_state(system, up.base, state, c)
            write_rows = writes(system, c, run_all)
            backfill_rows = backfill_spread.run(system, up.base, 40_000 if not quick else 5_000, c)
            report.rss.update(up.rss())
    except BaseException:
        print("--- botranks up (tail)\n" + up.log_tail())
        raise
    finally:
        system.meter, system.command, system.query = saved
    select = f"{{:.2f}} of PG point SELECTs ({c.pg_select_qps:,.0f}/s, 1 connection)"
    keys = f"{CONNECTIONS} conns, {KEYS} keys"
    report.rows += [
        Row(
            f"up: GET /state through `botranks up`, {keys}",
            rates["state"],
            "req/s",
            3_000,
            ratio=select.format(rates["state"] / c.pg_select_qps),
        ),
        *open_rows,
        Row(
            "up: GET /performance (warm) through `botranks up`",
            rates["performance"],
            "req/s",
            2_000,
            ratio=select.format(rates["performance"] / c.pg_select_qps),
        ),
        Row(
            "up: public strategy data /p/strategies/{id}",
            rates["p"],
            "req/s",
            3_000,
            ratio=select.format(rates["p"] / c.pg_select_qps),
        ),
        Row(
            "up: the strategy page /s/{id}",
            rates["s"],
            "req/s",
            3_000,
            ratio=select.format(rates["s"] / c.pg_select_qps),
        ),
        *write_rows,
        *backfill_rows,
        Row(
            f"up: GET /state at up's query_api port directly (no front door), {keys}",
            rates["direct"],
            "req/s",
            ratio=f"through the front door: {rates['state'] / rates['direct']:.2f} of this",
        ),
        front_door_row(cpu),
    ]
    if "python" in rates:
        report.rows.append(
            Row(
                "up: GET /state through `botranks up`, load from bench/load.py instead of wrk",
                rates["python"],
                "req/s",
                ratio=f"{rates['python'] / rates['state']:.2f} of wrk's",
            )
        )
    workers = Settings.from_env(up.up.env).api_workers
    report.notes.append(
        NOTE.format(how=how, keys=KEYS, conns=CONNECTIONS, rate=OPEN_RATE, limit=rate_limit, workers=workers)
    )


def front_door_row(cpu: dict[str, dict[str, float]]) -> Any:
    """CPU per GET /state through up minus at query_api's port (same load): the front door's cost."""
    from bench.run_all import Row

    through, direct = (next(v for k, v in cpu.items() if what in k) for what in ("/state through", "own port"))
    total_up, total_direct = sum(through.values()), sum(direct.values())
    return Row(
        "up: the front door's cost: CPU per GET /state through up minus at query_api's port",
        total_up - total_direct,
        "ms",
        ratio=f"{total_up:.2f} ms vs {total_direct:.2f} ms per request (all processes); Caddy"
        f" {through.get('caddy', 0.0):.2f} ms, query_api {through.get('query_api', 0.0):.2f} vs"
        f" {direct.get('query_api', 0.0):.2f} ms, postgres {through.get('postgres', 0.0):.2f} vs"
        f" {direct.get('postgres', 0.0):.2f} ms, load generator {through.get('load generator', 0.0):.2f} vs"
        f" {direct.get('load generator', 0.0):.2f} ms",
    )


def open_state(system: System, base: str, paths: list[tuple[str, str]], c: Ceilings) -> list[Any]:
    """GET /state at a fixed ``OPEN_RATE`` (open loop, split over the load processes)."""
    from bench.run_all import Phase, Row

    n, seconds = system.profile.load_processes, system.profile.read_open_seconds
    start = time.time() + 0.5
    results, during = system.run_load(
        load.reads_open, [(base, paths, OPEN_RATE / n, seconds, start, 11 + i) for i in range(n)]
    )
    lat = [x for r in results for x in r["latencies"].get("GET", [])]
    errors = [e for r in results for e in r["errors"]]
    p50, p99 = percentile_ms(lat, 0.5), percentile_ms(lat, 0.99)
    system.report.phases.append(
        Phase(
            f"up: GET /state through `botranks up`, open loop at {OPEN_RATE:,.0f}/s",
            f"{len(lat):,} requests from {n} load processes, p50 {p50:,.1f} ms, p99 {p99:,.1f} ms, sender lag p99"
            f" {max(r['sender_lag_p99'] for r in results):.1f} ms"
            + (f"; **{len(errors):,} errors**, e.g. `{errors[0][:160]}`" if errors else ""),
            during,
            None,
            len(lat),
            "request",
        )
    )
    floor = "{:,.0f}× PG point SELECT p{} ({:.2f} ms)"
    return [
        Row(
            f"up: GET /state p50 at {OPEN_RATE:,.0f} req/s",
            p50,
            "ms",
            None,
            False,
            floor.format(p50 / c.pg_select_ms[0], 50, c.pg_select_ms[0]),
        ),
        Row(
            f"up: GET /state p99 at {OPEN_RATE:,.0f} req/s",
            p99,
            "ms",
            10,
            False,
            floor.format(p99 / c.pg_select_ms[1], 99, c.pg_select_ms[1]),
        ),
    ]


def writes(system: System, c: Ceilings, run_all: Any) -> list[Any]:
    """run_all's write phases through up: batched and single-order ingest with read-your-writes on (the
    default), then the lag at 1,000 orders/s with ``BotRanks-Read-Your-Writes: off`` (2xx at commit)."""
    p, Row = system.profile, run_all.Row
    batched = run_all.ingest_phase(
        system,
        "up: batched ingest through `botranks up`, read-your-writes on",
        500,
        p.ingest_connections,
        p.ingest_seconds,
        True,
    )
    single = run_all.ingest_phase(
        system,
        "up: single-order POSTs through `botranks up`, read-your-writes on",
        1,
        p.single_connections,
        p.single_seconds,
        True,
    )
    system.lag_headers = RYW_OFF
    try:
        lag = run_all.lag_phase(system, c)
    finally:
        system.lag_headers = {}
    system.report.phases[-1].name = "up: projection lag through `botranks up`"
    for row in lag:
        row.figure = "up: " + row.figure + " (POST and GET through `botranks up`)"
    return [
        Row(
            "up: batched ingest (500/POST), read-your-writes on",
            batched,
            "orders/s",
            15_000,
            ratio=f"{batched / c.pg_executemany_rows_s:.2f} of PG executemany ({c.pg_executemany_rows_s:,.0f} rows/s)",
        ),
        Row(
            "up: single-order POSTs, read-your-writes on",
            single,
            "req/s",
            600,
            ratio=f"{single / c.pg_commit_tx_s:.2f} of PG 1-row commits ({c.pg_commit_tx_s:,.0f} tx/s)",
        ),
        *[r for r in lag if "p99" in r.figure],
    ]


NOTE = """**Through `botranks up`** (rows "up: …", bench/through_up.py): once the direct phases are done, their
  services stop and `botranks up` (devtools.stack.BotranksUp: `python -m tools.cli up`, Caddy as the front door
  and the services it starts: command_api, query_api, relay, projector, market_data, notifier, demo_live) starts
  on the same database and NATS server, with every `BOTRANKS_*` setting at its default (API workers included:
  {workers} uvicorn worker(s) each for command_api and query_api in this run)
  except the limiters, opened so that the load measures the services, not the limiters:
  `BOTRANKS_RATE_LIMIT_PER_MINUTE={limit}` (per key), `BOTRANKS_PAGE_REQUESTS_PER_MINUTE_PER_IP=0` (the pages'
  per-address limit: 0 is none) and `BOTRANKS_DOWNLOADS_PER_ADDRESS=0` (0: no cap), all three read by
  libs/infra/settings.py. Every request goes to up's base URL, except the "query_api port directly" row: the
  same GET /state load at the query_api process that up started, without Caddy (the front door's cost is the
  difference; the CPU per request by process, Caddy's included, is in the phases below). Closed-loop GETs:
  {conns} connections over the first {keys} strategies (a random one per request, with its own key; /p/ and
  /s/ without a key), load from **{how}** (`wrk -t2 -c{conns}` with a Lua script, when `wrk` is on PATH:
  `apt-get install wrk`, optional; else bench/load.py's Python client in 2 processes). GET /performance is
  warmed first (one request per key). The open loop on GET /state ({rate:,.0f} req/s) is bench/load.py's,
  split over the load processes. Writes: the direct run's batched and single-order phases again, read-your-
  writes on (up's default, 2 s); the lag phase again with `BotRanks-Read-Your-Writes: off` on its POSTs (so
  the 2xx comes at commit, as in the direct run). The back-dated batches: a new strategy, a deposit, then its
  history posted as 500-order batches that each span three years (bench/bench_backfill.py's orders, AAPL and
  MSFT at real closes), one after the other, each timed from its POST until the projector has applied it (the
  2xx, which says so with read-your-writes on; else its strategy's partition's position); the
  figure is the median of the last three over that of the first batch (the same 500 orders posted into three
  fresh strategies, each after its deposit and once the system is idle: the one above and two that get nothing
  else); the other batches follow each other back to back, as an import does."""
