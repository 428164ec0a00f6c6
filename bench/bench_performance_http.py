"""Warm GET /performance under a constant 200 requests/s, through the real query_api.

    python bench/bench_performance_http.py [--rate 200] [--seconds 15]

Starts the services on a fresh database, replays the demo bot (synthetic prices from 2022
to yesterday), warms the cache, then sends requests on a fixed schedule (open loop: a slow
answer does not slow the sender) from one asyncio client with several keys, and reports
latency percentiles as the client sees them (loopback HTTP included).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from devtools.stack import Stack, create_database, drop_database  # noqa: E402


async def load(url: str, keys: list[str], rate: float, seconds: float) -> list[float]:
    latencies: list[float] = []
    errors = 0
    async with httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=64)) as client:

        async def one(i: int) -> None:
            nonlocal errors
            t = time.perf_counter()
            r = await client.get(url, headers={"Authorization": f"Bearer {keys[i % len(keys)]}"})
            latencies.append(time.perf_counter() - t)
            errors += r.status_code != 200

        tasks = []
        start = time.perf_counter()
        for i in range(int(rate * seconds)):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    if errors:
        raise SystemExit(f"{errors} requests failed")
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=15)
    args = parser.parse_args()
    admin = os.environ.get("BOTRANKS_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    nats = os.environ.get("BOTRANKS_TEST_NATS_URL", "nats://127.0.0.1:4222")
    name = f"botranks_bench_{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as home:
        # the default limit (60 a minute per key): 200 req/s takes a few hundred keys, as the spec advises
        stack = Stack(create_database(admin, name), nats, Path(home), BOTRANKS_RATE_LIMIT_PER_MINUTE="60")
        stack.start()
        try:
            out = subprocess.run(
                [sys.executable, "-m", "tools.cli", "demo", "--base-url", f"http://127.0.0.1:{stack.command_port}"],
                cwd=ROOT,
                env=stack.env,
                capture_output=True,
                text=True,
                check=True,
            )
            demo = json.loads(out.stdout[out.stdout.index("{") :])
            url = f"http://127.0.0.1:{stack.query_port}/api/v1/strategies/{demo['strategy_id']}/performance"
            headers = {"Authorization": f"Bearer {demo['api_key']}"}
            keys = stack.db.identity.add_keys(
                uuid.UUID(demo["strategy_id"]), [f"bench-{i}" for i in range(int(args.rate * 60 / 50) + 1)]
            )
            days = len(stack.query.get(url.replace("/performance", "/nav"), headers=headers).json()["series"])
            cold = time.perf_counter()
            assert stack.query.get(url, headers=headers).status_code == 200
            cold = time.perf_counter() - cold
            lat = sorted(asyncio.run(load(url, keys, args.rate, args.seconds)))
            pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000  # noqa: E731
            print(f"NAV days: {days}; cold request {cold * 1000:.1f} ms")
            print(
                f"warm /performance at {args.rate:.0f} req/s for {args.seconds:.0f} s ({len(lat)} requests): "
                f"p50 {pct(0.5):.2f} ms, p90 {pct(0.9):.2f} ms, p99 {pct(0.99):.2f} ms, max {lat[-1] * 1000:.2f} ms, "
                f"mean {statistics.mean(lat) * 1000:.2f} ms"
            )
        finally:
            stack.stop()
            drop_database(admin, name)


if __name__ == "__main__":
    main()
