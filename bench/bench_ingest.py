"""Ingest throughput through the real services: POST /orders with 500-order batches.

    python bench/bench_ingest.py [--batches 200] [--clients 4]

Starts command_api, query_api and projector on a fresh database (same backends as the
tests: BOTRANKS_TEST_DATABASE_URL / BOTRANKS_TEST_NATS_URL or the local defaults), posts
batches from concurrent clients, and reports acknowledged orders/s and the time until the
projector has applied everything.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from devtools.stack import Stack, create_database, drop_database  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument(
        "--read-your-writes",
        type=float,
        default=2.0,
        help="seconds a write may wait for its projection (0 = answer at commit)",
    )
    args = parser.parse_args()
    admin = os.environ.get("BOTRANKS_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    nats = os.environ.get("BOTRANKS_TEST_NATS_URL", "nats://127.0.0.1:4222")
    name = f"botranks_bench_{uuid.uuid4().hex[:8]}"
    url = create_database(admin, name)
    with tempfile.TemporaryDirectory() as home:
        stack = Stack(url, nats, Path(home), BOTRANKS_READ_YOUR_WRITES_TIMEOUT=str(args.read_your_writes))
        stack.start()
        try:
            strategies = [stack.new_strategy(f"bench{i}") for i in range(args.clients)]

            def batch(i: int) -> dict:
                return {
                    "orders": [
                        {
                            "symbol": ("AAPL", "MSFT", "KO", "SPY")[j % 4],
                            "side": "buy" if j % 3 else "sell",
                            "quantity": 1 + j % 7,
                            "price": 100 + j % 13,
                            "fees": 0.5,
                            "executed_at": f"2026-03-{1 + (i * 500 + j) // 20000 % 28:02d}T15:00:00Z",
                            "external_order_id": f"b{i}-{j}",
                        }
                        for j in range(500)
                    ]
                }

            payloads = [batch(i) for i in range(args.batches)]
            warm_sid, warm_auth = stack.new_strategy("warm-up")
            stack.post(warm_sid, "orders", batch(10**6), warm_auth)
            latencies: list[float] = []

            def client(k: int) -> int:
                """One bot: its own strategy, batches in time order."""
                sid, auth = strategies[k]
                accepted = 0
                for i in range(k, args.batches, args.clients):
                    t = time.perf_counter()
                    r = stack.post(sid, "orders", payloads[i], auth)
                    latencies.append(time.perf_counter() - t)
                    assert r.status_code == 200, r.text
                    accepted += r.json()["counts"]["accepted"]
                return accepted

            started = time.perf_counter()
            with ThreadPoolExecutor(args.clients) as pool:
                accepted = sum(pool.map(client, range(args.clients)))
            acked = time.perf_counter() - started
            stack.wait_projected(600)
            projected = time.perf_counter() - started
            latencies.sort()
            print(f"orders accepted:          {accepted}")
            print(
                f"acknowledged in:          {acked:.2f} s  -> {accepted / acked:,.0f} orders/s "
                f"({args.clients} clients, 500/batch, read-your-writes {args.read_your_writes}s)"
            )
            print(f"projected (all) in:       {projected:.2f} s  -> {accepted / projected:,.0f} orders/s")
            print(
                f"batch latency p50 / p99:  {latencies[len(latencies) // 2] * 1000:.0f} ms / "
                f"{latencies[int(len(latencies) * 0.99) - 1] * 1000:.0f} ms"
            )
            ticks = os.sysconf("SC_CLK_TCK")
            cpu = {}
            for name, process in stack.processes.items():
                fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
                cpu[name] = (int(fields[11]) + int(fields[12])) / ticks
            print(
                "CPU seconds by service:   "
                + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items())
                + f", bench client {time.process_time():.1f}"
            )
        finally:
            stack.stop()
            drop_database(admin, name)


if __name__ == "__main__":
    main()
