"""A small probe of the authenticated read path (issue 25): GET /state and warm /performance of one
query_api process (devtools.stack.Stack, its default of one worker) under wrk, 32 connections over
50 keys; req/s and the CPU per request of query_api and of the PostgreSQL backends of its database.

    .venv/bin/python bench/probe_read_path.py [--seconds 10] [--connections 32]

Needs wrk on the PATH and the test suite's PostgreSQL and NATS (bench/common.py's ``servers``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import fresh_database, servers  # noqa: E402
from devtools.stack import Stack  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
LUA = """
local paths = {%s}
local keys = {%s}
local i = 0
request = function()
  i = i + 1
  local n = (i %% #paths) + 1
  return wrk.format("GET", paths[n], {["Authorization"] = "Bearer " .. keys[n]})
end
"""


def cpu_of(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICKS


def tree(pid: int) -> list[int]:
    out = [pid]
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        out += tree(int(child))
    return out


def backends(stack: Stack) -> list[int]:
    with stack.sql() as curs:
        return [r["pid"] for r in curs.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")]


def wrk(url: str, script: Path, seconds: int, connections: int) -> float:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise SystemExit(f"wrk saw {non2xx.group(1)} errors:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--keys", type=int, default=50)
    args = parser.parse_args()
    _, nats = servers()
    with fresh_database("botranks_probe") as url, tempfile.TemporaryDirectory() as home:
        stack = Stack(url, nats, Path(home))
        stack.start()
        try:
            accounts = [stack.new_strategy(f"probe-{i}") for i in range(args.keys)]
            for sid, auth in accounts:
                orders = [
                    {"symbol": "AAPL", "side": "buy", "quantity": 1 + n, "price": 100 + n, "external_order_id": f"o{n}",
                     "executed_at": f"2024-01-{2 + n:02d}T15:00:00Z"}
                    for n in range(5)
                ]  # fmt: skip
                assert stack.post(sid, "orders", {"orders": orders}, auth).status_code in (200, 201)
            stack.wait_projected()
            query = [p for p in tree(stack.processes["query_api"].pid)]
            results = {}
            for what in ("state", "performance"):
                paths = [f"/api/v1/strategies/{sid}/{what}" for sid, _ in accounts]
                keys = [auth["Authorization"].split()[1] for _, auth in accounts]
                for path, (_, auth) in zip(paths, accounts, strict=True):  # warm
                    assert stack.query.get(path, headers=auth).status_code == 200
                script = Path(home) / f"{what}.lua"
                script.write_text(LUA % (",".join(json.dumps(p) for p in paths), ",".join(json.dumps(k) for k in keys)))
                pg = backends(stack)
                before_q, before_pg, t = cpu_of(query), cpu_of(pg), time.perf_counter()
                rate = wrk(f"http://127.0.0.1:{stack.query_port}", script, args.seconds, args.connections)
                elapsed = time.perf_counter() - t
                pg = sorted(set(pg) | set(backends(stack)))
                requests = rate * args.seconds
                results[what] = {
                    "req_s": round(rate),
                    "query_api_cpu_ms_per_req": round((cpu_of(query) - before_q) / requests * 1000, 3),
                    "postgres_cpu_ms_per_req": round((cpu_of(pg) - before_pg) / requests * 1000, 3),
                    "elapsed_s": round(elapsed, 1),
                }
                print(what, results[what], flush=True)
            print(json.dumps({"load": os.getloadavg(), **results}))
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
