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
``executed_at``, so these bots' live-reporting share starts (truthfully) at 0 %; while ``botranks
up`` runs, its ``demo_live`` process sends each new daily close's orders as they happen (live).
Two more bots, ``LIVE_BOTS`` (``services/market_data/sample_bots/live_bots.py``), trade the 24/7
DEMO-BTC-USD every hour and report live: the first run sends their back-filled prelude and their
first trade, executed at the run's clock and sent at once, so the board's "reported live only"
filter lists the one whose every order was live (share 1) and the other shows a partial share; the
``demo_live`` process keeps them trading each hour. They are listed under ``live_bots`` (not
``bots``: their history is weeks, not years).

A second run adds no bot: the demo's strategies are found by name (public, without an owner), their
prices are brought up to yesterday and each bot sends only what came after its last stored order (its
ids are deterministic, so anything sent twice is a duplicate, never a second fill); every bot says
whether it ``existed`` (a live bot that exists is the live loop's: the demo sends it nothing).
``--reset`` deletes the demo's strategies (the live bots' too) first and starts over.

The output keeps the single-bot shape (``strategy_id``, ``api_key``, ``name``, ``replayed``,
``try`` of the first bot, the momentum bot) and lists every bot under ``bots`` (with its
``base_currency``); ``prices`` says what was written, the splits included (``splits``: symbol,
ex-date, ratio new:old), the recorded quote currencies (``currencies``) and where the EUR/USD
rate came from (``fx``: ``synthetic`` true when the demo wrote it).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from libs.infra.db import Database
from services.demo_live.live import api_of, live_strategies, start_live_bot
from services.demo_live.replay import (
    DEMO_START,
    KEY_BUDGET,
    demo_strategies,
    keys_needed,
    new_payloads,
    post,
    write_market,
)
from services.market_data.sample_bots import SAMPLE_BOTS, SampleBot, bot_profile
from services.market_data.sample_bots.live_bots import LIVE_BOTS
from services.market_data.synthetic import DEMO_PREFIX, source
from services.market_data.synthetic_fx import EUR_CURRENCIES, FX_SYMBOL

__all__ = ["DEMO_START", "KEY_BUDGET", "STRATEGY_NAME", "existing_bots", "run_demo"]

STRATEGY_NAME = SAMPLE_BOTS[0].name


def existing_bots(db: Database) -> dict[str, str]:
    """The demo's sample bots already here: name -> id (public, no owner, a sample bot's name)."""
    return demo_strategies(db)


def run_demo(
    db: Database, base_url: str, reset: bool = False, clock: Callable[[], datetime] | None = None
) -> dict[str, object]:
    """The demo (see the module's text); ``clock``: now (the live bots' first trades), the real one by default."""
    now = clock or (lambda: datetime.now(UTC))
    base = base_url.rstrip("/")
    if reset:
        for stale in [*existing_bots(db).values(), *live_strategies(db).values()]:
            db.delete_strategy(UUID(stale))
    existing, live_existing = existing_bots(db), live_strategies(db)
    market = write_market(db, now().date() - timedelta(days=1))

    jobs: list[tuple[SampleBot, str, str, list[dict[str, Any]], list[str]]] = []
    for bot in SAMPLE_BOTS:
        payloads = bot.orders(market.bars)
        if bot.name in existing:  # sent before: only what came after its last stored order
            strategy_id = UUID(existing[bot.name])
            payloads = new_payloads(db, existing[bot.name], payloads)
        else:
            strategy_id, _ = db.identity.create_strategy(
                bot.name,
                benchmark=bot.benchmark,
                visibility="public",
                show_positions=bot.show_positions,
                first_key=False,
                base_currency=bot.base_currency,
            )
        db.identity.describe(strategy_id, *bot_profile(bot))  # its profile (a no-op when unchanged)
        # the replay's keys, used KEY_BUDGET times each, then the key printed for the user: never used
        *replay_keys, key = db.identity.add_keys(
            strategy_id, [f"demo-replay-{i}" for i in range(keys_needed(payloads))] + ["demo"]
        )
        jobs.append((bot, str(strategy_id), key, payloads, replay_keys))

    with ThreadPoolExecutor(max_workers=len(jobs) + len(LIVE_BOTS)) as pool:
        futures = [pool.submit(post, api_of(base, sid), payloads, keys) for _, sid, _, payloads, keys in jobs]
        starting = {
            bot.name: pool.submit(start_live_bot, db, base, bot, now)
            for bot in LIVE_BOTS
            if bot.name not in live_existing
        }
        replayed = [f.result() for f in futures]
        started = {name: f.result() for name, f in starting.items()}

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
    live_bots = []
    for live_bot in LIVE_BOTS:
        if live_bot.name in started:
            run = started[live_bot.name]
        else:  # the live loop's now: a fresh key to read it with, nothing sent
            sid = live_existing[live_bot.name]
            (key,) = db.identity.add_keys(UUID(sid), ["demo"])
            run = {"strategy_id": sid, "api_key": key, "replayed": {"orders": 0, "cash_events": 0}, "live_orders": 0}
        live_bots.append(
            {
                **run,
                "name": live_bot.name,
                "benchmark": live_bot.benchmark,
                "base_currency": live_bot.base_currency,
                "risk": live_bot.risk,
                "rules": live_bot.rules,
                "show_positions": live_bot.show_positions,
                "backfilled": live_bot.backfilled,
                "existed": live_bot.name not in started,
                "page": f"{base}/s/{run['strategy_id']}",
            }
        )
    first = bots[0]
    api = api_of(base, str(first["strategy_id"]))
    return {
        "strategy_id": first["strategy_id"],
        "api_key": first["api_key"],
        "name": first["name"],
        "prices": {
            "source": source,
            "symbols": f"{DEMO_PREFIX}*",
            "rows_written": market.written,
            "from": DEMO_START.isoformat(),
            "to": market.end.isoformat(),
            "splits": [
                {"symbol": sp.symbol, "ex_date": sp.ex_date.isoformat(), "ratio": sp.ratio} for sp in market.splits
            ],
            "currencies": EUR_CURRENCIES,
            "fx": {"symbol": FX_SYMBOL, "synthetic": market.invented, "rows": len(market.rates)},
        },
        "replayed": first["replayed"],
        "existed": sum(1 for b in bots if b["existed"]),
        "leaderboard": f"{base}/",
        "live_only": f"{base}/?live_only=1",
        "bots": bots,
        "live_bots": live_bots,
        "try": [
            f'curl -s -H "Authorization: Bearer {first["api_key"]}" {api}/{what}'
            for what in ("state", "nav", "performance")
        ],
    }
