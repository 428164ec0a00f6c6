"""The demo, live: what the demo's bots report as it happens.

* ``start_live_bot``: a live bot's first run (``botranks demo``): its strategy, its back-filled
  prelude (``live_bots.prelude``: sent late, so not live), then its first hourly trade, executed at
  the run's clock and sent at once (live).
* ``live_tick``: each existing live bot's trade of the current hour's slot, executed at ``now``
  and sent at once, unless it already traded in that slot. A bot whose loop was down for hours
  simply did not trade then (it was offline): nothing is ever sent late, so its orders stay live.
* ``daily_close``: the sample bots at each new daily close of the demo market (20:00 UTC): the
  day's bars are written and each bot's orders of the day sent at once (live, when the loop runs
  at the close; a loop started later sends the missed days late, and they count as back-filled).

Every function takes the clock (``now``) as an argument; the process (``main.py``) passes the
real one. Every order is named by its bot and slot (or the sample bot's counter), so anything
sent twice is a duplicate, never a second fill.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import httpx

from libs.infra.db import Database
from services.market_data.sample_bots import SAMPLE_BOTS, bot_profile
from services.market_data.sample_bots.live_bots import (
    CLOSE_HOUR,
    LIVE_BOTS,
    LIVE_SYMBOL,
    Holdings,
    LiveBot,
    live_order,
    prelude,
    slot_of,
)

from .replay import demo_strategies, keys_needed, new_payloads, post, write_market

Clock = Callable[[], datetime]


def api_of(base: str, strategy_id: str) -> str:
    return f"{base.rstrip('/')}/api/v1/strategies/{strategy_id}"


def live_strategies(db: Database, bots: Sequence[LiveBot] = LIVE_BOTS) -> dict[str, str]:
    """The live bots already here: name -> strategy id."""
    return demo_strategies(db, (bot.name for bot in bots))


def holdings(db: Database, strategy_id: str) -> tuple[Holdings, datetime | None]:
    """A live bot's cash and BTC as the ledger has them, and its last order's execution time."""
    state = db.ledger.state(UUID(strategy_id))
    btc = next((p.quantity for p in state.positions if p.symbol == LIVE_SYMBOL), Decimal(0))
    cash = state.nav.cash_balance if state.nav is not None else Decimal(0)
    return Holdings(cash, btc), state.last_order_at


def start_live_bot(db: Database, base: str, bot: LiveBot, clock: Clock) -> dict[str, Any]:
    """Create ``bot``'s strategy, send its prelude (late) and its first trade (live, at ``clock()``)."""
    strategy_id, _ = db.identity.create_strategy(
        bot.name,
        benchmark=bot.benchmark,
        visibility="public",
        show_positions=bot.show_positions,
        first_key=False,
        base_currency=bot.base_currency,
    )
    db.identity.describe(strategy_id, *bot_profile(bot))
    sid = str(strategy_id)
    items, h = prelude(bot, clock())
    *keys, key = db.identity.add_keys(strategy_id, [f"demo-replay-{i}" for i in range(keys_needed(items))] + ["demo"])
    counts = post(api_of(base, sid), items, keys)
    order = live_order(bot, h, clock())  # the clock read right before the send: it arrives at once
    if order is not None:
        counts["orders"] += post(api_of(base, sid), [{"kind": "orders", "payload": {"orders": [order]}}], keys)[
            "orders"
        ]
    return {"strategy_id": sid, "api_key": key, "replayed": counts, "live_orders": 0 if order is None else 1}


class Keys:
    """One API key per demo strategy for the loop's requests, made on first use (a process's lifetime)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.made: dict[str, list[str]] = {}

    def of(self, strategy_id: str, n: int = 1) -> list[str]:
        have = self.made.setdefault(strategy_id, [])
        if len(have) < n:
            have += self.db.identity.add_keys(UUID(strategy_id), [f"demo-live-{i}" for i in range(len(have), n)])
        return have[:n]


def live_tick(
    db: Database, base: str, now: datetime, keys: Keys, bots: Sequence[LiveBot] = LIVE_BOTS
) -> dict[str, int | str]:
    """Each existing live bot's trade of ``now``'s hour slot, sent at once (name -> orders accepted, or
    why the API refused it: the next poll tries the slot again)."""
    here = live_strategies(db, bots)
    accepted: dict[str, int | str] = {}
    for bot in bots:
        sid = here.get(bot.name)
        if sid is None:
            continue
        h, last = holdings(db, sid)
        if last is None or slot_of(last) >= slot_of(now):
            continue  # its first trade is the demo's (still under way), or it traded in this slot already
        order = live_order(bot, h, now)
        if order is None:
            continue
        try:
            sent = post(api_of(base, sid), [{"kind": "orders", "payload": {"orders": [order]}}], keys.of(sid))
            accepted[bot.name] = sent["orders"]
        except (RuntimeError, httpx.HTTPError) as error:
            accepted[bot.name] = str(error)[:300]
    return accepted


def last_close(now: datetime) -> date:
    """The latest day whose demo close (``CLOSE_HOUR`` UTC) is not after ``now``."""
    now = now.astimezone(UTC)
    today = now.date()
    return today if now >= datetime.combine(today, time(CLOSE_HOUR), UTC) else today - timedelta(days=1)


def daily_close(db: Database, base: str, now: datetime, keys: Keys) -> dict[str, int | str] | None:
    """Bring the existing sample bots to ``last_close(now)``: the market written up to that day and
    each bot's orders since its last stored one sent at once (name -> orders accepted, or why the API
    refused the bot's payloads: that bot sends them with a later close, late); None when the demo has
    no sample bot here."""
    here = demo_strategies(db)
    if not here:
        return None
    market = write_market(db, last_close(now))
    accepted: dict[str, int | str] = {}
    for bot in SAMPLE_BOTS:
        sid = here.get(bot.name)
        if sid is None:
            continue
        payloads = new_payloads(db, sid, bot.orders(market.bars))
        if payloads:
            try:
                accepted[bot.name] = post(api_of(base, sid), payloads, keys.of(sid, keys_needed(payloads)))["orders"]
            except (RuntimeError, httpx.HTTPError) as error:  # e.g. no EUR/USD rate of the day yet
                accepted[bot.name] = str(error)[:300]
    return accepted
