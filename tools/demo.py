"""``botranks demo``: synthetic (clearly labelled) prices and public sample bots replayed through the API.

Prices come from ``services.market_data.synthetic`` (seeded, so every install sees the same
market up to yesterday) under their own ``DEMO-`` symbols, never a real symbol's, and are
written by the market-data component with source ``synthetic-demo``: unadjusted closes (what
traded that day), plus the synthetic market's stock splits in the split table (one: DEMO-NVDA
4-for-1 in June 2023, which the concentrated tech bot holds through; the ledger converts its
holding at the ex-date, so its NAV has no jump there). Then every sample bot of
``SAMPLE_BOTS`` (momentum, mean reversion, index buy-and-hold, crypto trend, low-risk income,
concentrated tech, a scalper, a trend follower, and a EUR-based bot: different rules and risk)
gets a **public** strategy of its own, in its base currency, so the
leaderboard at ``/`` shows a ranking right away (the momentum bot and the tech bot, which holds
DEMO-NVDA through its split, publish their positions and orders live, the index bot with the 24 h
delay, the others not at all), and its cash events and orders go through
the public HTTP API with that strategy's keys, exactly as a real bot's would. The bots are
replayed side by side (one thread each; each bot's own payloads in time order).

A second currency: ``DEMO-SAP`` is a synthetic stock quoted in EUR (its currency recorded in the
price cache), and the "Euro balanced (demo)" bot keeps its cash and NAV in EUR while trading SAP
and two USD stocks, converted at the EUR/USD rate. The ledger reads that rate from the FX symbol
``C:EURUSD`` (no ``DEMO-`` name can be one), so this is the one exception to the rule above, and a
narrow one: the demo writes its synthetic EUR/USD (``synthetic_fx.synthetic_eurusd``, source
``synthetic-demo``) only into a price cache that has no ``C:EURUSD`` (nor ``C:USDEUR``) close but
its own from an earlier demo run; when real rates are there, it writes none and the EUR bot trades
at the real ones (the rates the ledger will use, so it never spends more EUR than it holds).

One key allows 60 requests a minute: each replay rotates keys of its own, and the key printed
for the user is a fresh one, with its whole rate budget left.

The replay is a back-fill of history: every order reaches the API long after its
``executed_at``, so the demo bots' live-reporting share is (truthfully) about 0 %.

A second run adds no bot: the demo's strategies are found by name (public, without an owner), their
prices are brought up to yesterday and each bot sends only what came after its last stored order (its
ids are deterministic, so anything sent twice is a duplicate, never a second fill); every bot says
whether it ``existed``. ``--reset`` deletes the demo's strategies first and starts over.

The output keeps the single-bot shape (``strategy_id``, ``api_key``, ``name``, ``replayed``,
``try`` of the first bot, the momentum bot) and lists every bot under ``bots`` (with its
``base_currency``); ``prices`` says what was written, the splits included (``splits``: symbol,
ex-date, ratio new:old), the recorded quote currencies (``currencies``) and where the EUR/USD
rate came from (``fx``: ``synthetic`` true when the demo wrote it).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx

from botranks_domain.bars import Bar
from libs.infra.db import Database
from services.market_data.sample_bots import SAMPLE_BOTS, SampleBot
from services.market_data.synthetic import (
    DEMO_PREFIX,
    source,
    synthetic_bars,
    synthetic_splits,
)
from services.market_data.synthetic_fx import (
    EUR_CURRENCIES,
    FX_SYMBOL,
    FX_SYMBOLS,
    synthetic_eur_bars,
    synthetic_eurusd,
)

DEMO_START = date(2022, 1, 3)
STRATEGY_NAME = SAMPLE_BOTS[0].name
KEY_BUDGET = 50  # requests per key, under the default limit of 60 a minute


def _replay(api: str, payloads: list[dict[str, Any]], keys: list[str]) -> dict[str, int]:
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


def _stamp(item: dict[str, Any]) -> str:
    """When a payload happened (ISO text, UTC 'Z'): its last order's execution, or the cash event's time."""
    if item["kind"] == "orders":
        return str(item["payload"]["orders"][-1]["executed_at"])
    return str(item["payload"]["occurred_at"])


def existing_bots(db: Database) -> dict[str, str]:
    """The demo's strategies already here: name -> id (public, no owner, a sample bot's name)."""
    names = {bot.name for bot in SAMPLE_BOTS}
    return {
        row["name"]: str(row["id"])
        for row in db.identity.all_strategies()
        if row["name"] in names and row["owner_email"] is None and row["visibility"] == "public"
    }


def _since(db: Database, strategy_id: str) -> str | None:
    """The last stored order's execution time of an existing demo strategy (ISO, UTC 'Z'), or None."""
    last = db.ledger.state(UUID(strategy_id)).last_order_at
    return None if last is None else last.astimezone(UTC).isoformat().replace("+00:00", "Z")


def run_demo(db: Database, base_url: str, reset: bool = False) -> dict[str, object]:
    base = base_url.rstrip("/")
    if reset:
        for stale in existing_bots(db).values():
            db.delete_strategy(UUID(stale))
    existing = existing_bots(db)
    end = datetime.now(UTC).date() - timedelta(days=1)
    bars = synthetic_bars(DEMO_START, end) + synthetic_eur_bars(DEMO_START, end)
    splits = synthetic_splits(DEMO_START, end)
    rates, invented = _eurusd(db, end)
    db.prices.record_currencies(EUR_CURRENCIES, source)
    written = db.prices.write_bars(bars + rates if invented else bars, source)
    db.prices.write_splits(splits, source)
    market = bars + rates  # what the bots trade on: the EUR bot pays for USD stocks at these rates

    jobs: list[tuple[SampleBot, str, str, list[dict[str, Any]], list[str]]] = []
    for bot in SAMPLE_BOTS:
        payloads = bot.orders(market)
        if bot.name in existing:  # sent before: only what came after its last stored order
            strategy_id = UUID(existing[bot.name])
            since = _since(db, existing[bot.name])
            payloads = [item for item in payloads if since is None or _stamp(item) > since]
        else:
            strategy_id, _ = db.identity.create_strategy(
                bot.name,
                benchmark=bot.benchmark,
                visibility="public",
                show_positions=bot.show_positions,
                first_key=False,
                base_currency=bot.base_currency,
            )
        # the replay's keys, used KEY_BUDGET times each, then the key printed for the user: never used
        *replay_keys, key = db.identity.add_keys(
            strategy_id, [f"demo-replay-{i}" for i in range(len(payloads) // KEY_BUDGET + 1)] + ["demo"]
        )
        jobs.append((bot, str(strategy_id), key, payloads, replay_keys))

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = [
            pool.submit(_replay, f"{base}/api/v1/strategies/{sid}", payloads, keys)
            for _, sid, _, payloads, keys in jobs
        ]
        replayed = [f.result() for f in futures]

    bots = [
        {
            "strategy_id": sid,
            "name": bot.name,
            "api_key": key,
            "benchmark": bot.benchmark,
            "base_currency": bot.base_currency,
            "risk": bot.risk,
            "rules": bot.rules,
            "show_positions": bot.show_positions,
            "replayed": counts,
            "existed": bot.name in existing,
            "page": f"{base}/s/{sid}",
        }
        for (bot, sid, key, _, _), counts in zip(jobs, replayed, strict=True)
    ]
    first = bots[0]
    api = f"{base}/api/v1/strategies/{first['strategy_id']}"
    return {
        "strategy_id": first["strategy_id"],
        "api_key": first["api_key"],
        "name": first["name"],
        "prices": {
            "source": source,
            "symbols": f"{DEMO_PREFIX}*",
            "rows_written": written,
            "from": DEMO_START.isoformat(),
            "to": end.isoformat(),
            "splits": [{"symbol": sp.symbol, "ex_date": sp.ex_date.isoformat(), "ratio": sp.ratio} for sp in splits],
            "currencies": EUR_CURRENCIES,
            "fx": {"symbol": FX_SYMBOL, "synthetic": invented, "rows": len(rates)},
        },
        "replayed": first["replayed"],
        "existed": sum(1 for b in bots if b["existed"]),
        "leaderboard": f"{base}/",
        "bots": bots,
        "try": [
            f'curl -s -H "Authorization: Bearer {first["api_key"]}" {api}/{what}'
            for what in ("state", "nav", "performance")
        ],
    }
