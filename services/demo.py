"""``botranks demo``: synthetic (clearly labelled) prices and a sample bot replayed through the API.

Prices come from ``services.market_data.synthetic`` (seeded, so every install sees the same
market up to yesterday) under their own ``DEMO-`` symbols, never a real symbol's, and are
written by the market-data component with source ``synthetic-demo``; the bot's cash events
and orders go through the public HTTP API with the strategy's keys, exactly as a real bot's
would. The key printed for the user is a fresh one, with its whole rate budget left.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import httpx

from libs.infra.db import Database
from services.market_data.synthetic import DEMO_PREFIX, sample_bot_orders, source, synthetic_bars

DEMO_START = date(2022, 1, 3)
STRATEGY_NAME = "Demo momentum bot (synthetic data)"
KEY_BUDGET = 50  # requests per key, under the default limit of 60 a minute


def run_demo(db: Database, base_url: str) -> dict[str, object]:
    end = datetime.now(timezone.utc).date() - timedelta(days=1)
    bars = synthetic_bars(DEMO_START, end)
    written = db.prices.write_bars(bars, source)
    strategy_id, _ = db.identity.create_strategy(STRATEGY_NAME, benchmark=f"{DEMO_PREFIX}SPY", first_key=False)
    api = f"{base_url.rstrip('/')}/api/v1/strategies/{strategy_id}"
    payloads = sample_bot_orders(bars)
    # one key allows 60 requests a minute: the replay rotates keys of its own, and the key
    # printed for the user has never been used, so its whole budget is left
    *replay_keys, key = db.identity.add_keys(
        strategy_id, [f"demo-replay-{i}" for i in range(len(payloads) // KEY_BUDGET + 1)] + ["demo"])
    orders = cash = 0
    with httpx.Client(timeout=60) as client:
        for i, item in enumerate(payloads):
            path = "/orders" if item["kind"] == "orders" else "/cash"
            headers = {"Authorization": f"Bearer {replay_keys[i // KEY_BUDGET]}"}
            response = client.post(api + path, json=item["payload"], headers=headers)
            if response.status_code not in (200, 201):
                raise RuntimeError(f"demo bot got {response.status_code} from {path}: {response.text}")
            if item["kind"] == "orders":
                orders += response.json()["counts"]["accepted"]
            else:
                cash += 1
    return {
        "strategy_id": str(strategy_id), "api_key": key, "name": STRATEGY_NAME,
        "prices": {"source": source, "symbols": f"{DEMO_PREFIX}*", "rows_written": written,
                   "from": DEMO_START.isoformat(), "to": end.isoformat()},
        "replayed": {"orders": orders, "cash_events": cash},
        "try": [f'curl -s -H "Authorization: Bearer {key}" {api}/{what}' for what in ("state", "nav", "performance")],
    }
