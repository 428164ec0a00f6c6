"""uvicorn against granian on the same query_api handlers (issue 25: "compare uvicorn with granian").

    .venv/bin/python bench/server_compare.py [--seconds 10] [--connections 32]

A fresh database with one strategy (a deposit and a few orders, folded by a projector run), then
query_api served by each server in turn with one worker, on the same port kind, each hit by wrk
(closed loop) on ``GET /api/v1/strategies/{id}/state`` (API key, read model) and on ``GET
/p/strategies/{id}`` (public JSON, answered from the page cache); req/s, p99, and the server's CPU
seconds per 1,000 requests. granian is not a dependency: ``pip install granian`` first (the script
says so when it is missing).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import fresh_database, servers  # noqa: E402
from devtools.stack import ROOT, Stack, wait_until  # noqa: E402
from tools.processes import free_port, wait_for_port  # noqa: E402

APP = "services.query_api.app:create_app"


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its children so far (/proc)."""
    total = 0.0
    pids = [pid] + [
        int(p) for p in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    ]
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _wrk(url: str, key: str | None, seconds: int, connections: int) -> tuple[float, float]:
    args = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if key:
        args[1:1] = ["-H", f"Authorization: Bearer {key}"]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"{url}: answers that are not 2xx/3xx:\n{out}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    return rate, (float(p99.group(1)) * scale[p99.group(2)]) if p99 else float("nan")


def _serve(kind: str, port: int, env: dict[str, str]) -> subprocess.Popen:
    if kind == "uvicorn":
        args = [sys.executable, "-m", "services.query_api.main", "--port", str(port), "--workers", "1"]
    else:
        args = [
            str(Path(sys.executable).parent / "granian"), "--interface", "asgi", "--factory", "--host", "127.0.0.1",
            "--port", str(port), "--workers", "1", "--log-level", "warning", "libs.infra.serve:app_factory",
        ]  # fmt: skip
    return subprocess.Popen(args, cwd=ROOT, env={**env, "BOTRANKS_APP_FACTORY": APP}, stdout=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if shutil.which("wrk") is None or not (Path(sys.executable).parent / "granian").exists():
        sys.exit("needs wrk (apt-get install -y wrk) and granian (pip install granian)")
    _, nats_url = servers()
    with fresh_database("botranks_servers") as url, tempfile.TemporaryDirectory() as home:
        stack = Stack(url, nats_url, Path(home), BOTRANKS_PAGE_REQUESTS_PER_MINUTE_PER_IP="0")
        stack.start()
        try:
            sid, headers = stack.new_strategy("servers")
            day = "2026-11-02T15:00:00Z"
            cash = {"event_type": "deposit", "amount": 100000, "occurred_at": "2026-11-02T14:00:00Z"}
            stack.post(sid, "cash", cash, headers)
            order = {"symbol": "AAPL", "side": "buy", "quantity": 10, "price": 190, "executed_at": day}
            stack.post(sid, "orders", {"orders": [order]}, headers)
            stack.wait_projected()
            with stack.sql() as curs:
                curs.execute("UPDATE strategies SET visibility = 'public' WHERE id = %s", (sid,))
            key = headers["Authorization"].removeprefix("Bearer ")
            env = stack.env
            print(f"{'server':8} {'path':28} {'req/s':>8} {'p99 ms':>8} {'CPU ms/1k':>10}")
            for kind in ("uvicorn", "granian", "uvicorn", "granian"):
                port = free_port()
                server = _serve(kind, port, env)
                try:
                    wait_for_port(port, 60)
                    base = f"http://127.0.0.1:{port}"
                    wait_until(lambda b=base: httpx.get(f"{b}/p/strategies/{sid}").status_code == 200, 30, "query_api")
                    for path, auth in ((f"/api/v1/strategies/{sid}/state", key), (f"/p/strategies/{sid}", None)):
                        first = httpx.get(base + path, headers={"Authorization": f"Bearer {key}"} if auth else {})
                        if first.status_code != 200:
                            raise SystemExit(f"{kind} {path}: {first.status_code} {first.text[:300]}")
                        _wrk(base + path, auth, 2, args.connections)  # warm
                        before = _cpu_s(server.pid)
                        rate, p99 = _wrk(base + path, auth, args.seconds, args.connections)
                        cpu = _cpu_s(server.pid) - before
                        per_k = cpu / (rate * args.seconds) * 1e6
                        print(f"{kind:8} {path[:28]:28} {rate:8.0f} {p99:8.1f} {per_k:10.1f}")
                finally:
                    server.send_signal(signal.SIGTERM)
                    server.wait(30)
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
