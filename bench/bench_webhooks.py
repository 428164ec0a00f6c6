"""Ingest with webhook receivers that never answer: the notifier must not slow it down.

    python bench/bench_webhooks.py [--batches 60] [--clients 4] [--hooks 40]

Starts command_api, query_api, projector and the notifier (``BOTRANKS_WEBHOOKS_ALLOW_PRIVATE=1``)
on a fresh database (the tests' backends). Two rounds of the same load (``--batches`` batches of
500 orders from ``--clients`` bots, each on strategies of its own):

1. no webhook at all;
2. ``--hooks`` webhooks, all pointing at a receiver on 127.0.0.1 that reads the request and never
   answers, each following every strategy of the round and with a backlog of test events: the
   notifier's 16 threads spend the whole round waiting out 5 s deadlines.

Reports orders/s acknowledged and projected in each round, and the notifier's attempts. Nothing
leaves loopback.
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
from devtools.webhook_receiver import Receiver  # noqa: E402
from libs.infra.follows import Follows  # noqa: E402
from libs.infra.follows.events import ping_event  # noqa: E402


def batch(i: int, tag: str) -> dict:
    return {
        "orders": [
            {
                "symbol": ("AAPL", "MSFT", "KO", "SPY")[j % 4],
                "side": "buy" if j % 3 else "sell",
                "quantity": 1 + j % 7,
                "price": 100 + j % 13,
                "fees": 0.5,
                "executed_at": f"2026-03-{1 + (i * 500 + j) // 20000 % 28:02d}T15:00:00Z",
                "external_order_id": f"{tag}-{i}-{j}",
            }
            for j in range(500)
        ]
    }


def round_of(stack: Stack, args: argparse.Namespace, tag: str, strategies: list) -> tuple[float, float, int]:
    def client(k: int) -> int:
        sid, auth = strategies[k]
        accepted = 0
        for i in range(k, args.batches, args.clients):
            r = stack.post(sid, "orders", batch(i, tag), auth)
            assert r.status_code == 200, r.text
            accepted += r.json()["counts"]["accepted"]
        return accepted

    started = time.perf_counter()
    with ThreadPoolExecutor(args.clients) as pool:
        accepted = sum(pool.map(client, range(args.clients)))
    acked = time.perf_counter() - started
    stack.wait_projected(600)
    return accepted / acked, accepted / (time.perf_counter() - started), accepted


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--hooks", type=int, default=40)
    args = parser.parse_args()
    admin = os.environ.get("BOTRANKS_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    nats = os.environ.get("BOTRANKS_TEST_NATS_URL", "nats://127.0.0.1:4222")
    name = f"botranks_bench_{uuid.uuid4().hex[:8]}"
    url = create_database(admin, name)
    with tempfile.TemporaryDirectory() as home, Receiver(hang=True) as hanging:
        stack = Stack(url, nats, Path(home), BOTRANKS_WEBHOOKS_ALLOW_PRIVATE="1", BOTRANKS_READ_YOUR_WRITES_TIMEOUT="2")
        stack.start()
        stack._spawn("notifier", "services.notifier.main")
        try:
            warm_sid, warm_auth = stack.new_strategy("warm-up")
            stack.post(warm_sid, "orders", batch(10**6, "warm"), warm_auth)
            quiet = [stack.new_strategy(f"quiet{i}") for i in range(args.clients)]
            base = round_of(stack, args, "quiet", quiet)

            busy = [stack.new_strategy(f"busy{i}") for i in range(args.clients)]
            follows = Follows(stack.db.datastore)
            for h in range(args.hooks):
                user = stack.db.identity.insert_user(f"bench-{h}-{uuid.uuid4().hex[:6]}@example.com", "x").id
                hook, _ = follows.create_webhook(user, hanging.url)
                for sid, _ in busy:
                    follows.follow(user, uuid.UUID(sid))
                for _ in range(5):
                    event_id, body = ping_event(hook.id, "http://bench")
                    follows.enqueue(hook.id, event_id, None, "ping", body)
            time.sleep(1)  # the notifier's threads are all waiting on the receiver by now
            loaded = round_of(stack, args, "busy", busy)
            print(f"orders per round:                 {base[2]}")
            print(f"no webhooks:            acked {base[0]:,.0f} orders/s, projected {base[1]:,.0f} orders/s")
            print(
                f"{args.hooks} hanging webhooks:   acked {loaded[0]:,.0f} orders/s, projected {loaded[1]:,.0f} orders/s"
            )
            print(f"ratio (hanging / none): acked {loaded[0] / base[0]:.2f}, projected {loaded[1] / base[1]:.2f}")
            print(f"requests the hanging receiver got: {len(hanging.requests)}")
        finally:
            stack.stop()
            drop_database(admin, name)


if __name__ == "__main__":
    main()
