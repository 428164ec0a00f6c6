"""The demo's market and replay: the synthetic prices written up to a day (``write_market``), the
sample bots' payloads sent through the public API with their strategy's keys (``post``), and what
the demo already holds (``demo_strategies``, ``last_order_at``). Shared by ``botranks demo``
(``tools/demo.py``) and the live loop (``live.py``), which brings the sample bots to each new close."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date
from typing import Any
from uuid import UUID

import httpx

from botranks_domain.bars import Bar, Split
from libs.infra import locks
from libs.infra.db import Database
from libs.infra.pg import Leadership
from services.market_data.sample_bots import SAMPLE_BOTS
from services.market_data.synthetic import source, synthetic_bars, synthetic_splits
from services.market_data.synthetic_fx import (
    EUR_CURRENCIES,
    FX_SYMBOLS,
    synthetic_eur_bars,
    synthetic_eurusd,
)

DEMO_START = date(2022, 1, 3)
KEY_BUDGET = 50  # requests per key, under the default limit of 60 a minute


@contextmanager
def exclusively(database_url: str, wait_s: float | None) -> Iterator[bool]:
    """Hold the demo's advisory lock (``locks.DEMO``) for the block, so that ``botranks demo`` and the
    live loop never send the same bots' payloads side by side: the demo waits up to ``wait_s`` for it
    (then TimeoutError); the loop (``wait_s`` None) gets False at once while the demo holds it."""
    lock = Leadership(database_url, locks.DEMO)
    try:
        held = lock.try_acquire()
        deadline = time.monotonic() + (wait_s or 0)
        while not held and wait_s is not None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the demo's lock is still held after {wait_s:.0f}s (another botranks demo?)")
            time.sleep(0.5)
            held = lock.try_acquire()
        yield held
    finally:
        lock.release()


def post(api: str, payloads: list[dict[str, Any]], keys: list[str]) -> dict[str, int]:
    """Send ``payloads`` (``{"kind": "orders" | "cash", "payload": ...}``) in order to the strategy
    at ``api``, each key used ``KEY_BUDGET`` times; counts of accepted orders and cash events sent."""
    orders = cash = 0
    with httpx.Client(timeout=60) as client:
        for i, item in enumerate(payloads):
            path = "/orders" if item["kind"] == "orders" else "/cash"
            headers = {"Authorization": f"Bearer {keys[i // KEY_BUDGET]}"}
            response = client.post(api + path, json=item["payload"], headers=headers)
            if response.status_code not in (200, 201):
                raise RuntimeError(f"demo bot got {response.status_code} from {path}: {response.text}")
            if item["kind"] == "orders":
                orders += response.json()["counts"]["accepted"]
            else:
                cash += 1
    return {"orders": orders, "cash_events": cash}


def keys_needed(payloads: list[dict[str, Any]]) -> int:
    return len(payloads) // KEY_BUDGET + 1


def _eurusd(db: Database, end: date) -> tuple[list[Bar], bool]:
    """The EUR/USD rates the demo's bots trade at, and whether the demo writes them: the price
    cache's own ``C:EURUSD`` / ``C:USDEUR`` closes when it has any that are not the synthetic walk's
    (real rates: nothing invented is written under their symbol), else the synthetic walk."""
    synthetic = synthetic_eurusd(DEMO_START, end)
    walk = {(b.symbol, b.date): b.close for b in synthetic}
    cached = [
        Bar(symbol=symbol, date=day, close=close)
        for symbol in FX_SYMBOLS
        for day, close in db.prices.closes_between(symbol, date.min, date.max)
    ]
    if any(walk.get((b.symbol, b.date)) != b.close for b in cached):
        return cached, False
    return synthetic, True


@dataclass(frozen=True)
class DemoMarket:
    """What ``write_market`` wrote and what the bots trade on (``bars``: the stocks, BTC and the rates)."""

    end: date
    bars: list[Bar]
    splits: list[Split]
    rates: list[Bar]
    invented: bool
    written: int


def write_market(db: Database, end: date) -> DemoMarket:
    """The synthetic market from ``DEMO_START`` to ``end`` into the price cache (source
    ``synthetic-demo``): bars, splits, the EUR quote currencies, and the synthetic EUR/USD only when
    the cache has no real rate."""
    bars = synthetic_bars(DEMO_START, end) + synthetic_eur_bars(DEMO_START, end)
    splits = synthetic_splits(DEMO_START, end)
    rates, invented = _eurusd(db, end)
    db.prices.record_currencies(EUR_CURRENCIES, source)
    written = db.prices.write_bars(bars + rates if invented else bars, source)
    db.prices.write_splits(splits, source)
    return DemoMarket(end, bars + rates, splits, rates, invented, written)


def stamp(item: dict[str, Any]) -> str:
    """When a payload happened (ISO text, UTC 'Z'): its last order's execution, or the cash event's time."""
    if item["kind"] == "orders":
        return str(item["payload"]["orders"][-1]["executed_at"])
    return str(item["payload"]["occurred_at"])


def demo_strategies(db: Database, names: Iterable[str] | None = None) -> dict[str, str]:
    """The demo's strategies already here: name -> id (public, no owner, one of ``names``: by default
    the sample bots')."""
    wanted = {bot.name for bot in SAMPLE_BOTS} if names is None else set(names)
    return {
        row["name"]: str(row["id"])
        for row in db.identity.all_strategies()
        if row["name"] in wanted and row["owner_email"] is None and row["visibility"] == "public"
    }


def last_order_at(db: Database, strategy_id: str) -> str | None:
    """The last stored order's execution time of an existing demo strategy (ISO, UTC 'Z'), or None."""
    last = db.ledger.state(UUID(strategy_id)).last_order_at
    return None if last is None else last.astimezone(UTC).isoformat().replace("+00:00", "Z")


def new_payloads(db: Database, strategy_id: str, payloads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Those of an existing strategy's ``payloads`` that came after its last stored order."""
    since = last_order_at(db, strategy_id)
    return [item for item in payloads if since is None or stamp(item) > since]
