"""The demo's live bots: two bots on the 24/7 synthetic ``DEMO-BTC-USD`` that trade once an hour
*as it happens* and report each order the moment they place it, so the board's live-reporting
share has something true to show (an order counts as live when it arrives within
``LIVE_REPORTING_S`` of its ``executed_at``).

Both were funded ``FUNDED_DAYS`` before the demo first ran (that deposit is back-filled: cash events
never count in the live share, and it gives them a track record long enough for the board's default
``min_days``):

* "Hourly BTC DCA (demo)" waited in cash and, since the demo first ran, buys a fixed dollar amount of
  BTC each hour (selling half its BTC when the cash runs out). Every order it has is live: share 1.
* "BTC 50/50 hourly (demo)" rebalanced BTC/cash to 50/50 at each daily close of those days, orders
  its reporter never sent at the time: the first demo run back-fills them (not live). Since then it
  rebalances every hour, live, so its share starts low and climbs while ``botranks up`` runs.

Everything here is pure and takes the clock as an argument: the price at a minute (``live_price``: a
deterministic Brownian bridge from the previous daily close to the day's close of the synthetic
market), what a bot does in an hour's slot given its holdings (``live_order``), and the back-filled
prelude (``prelude``). A slot is the UTC hour; a bot trades at most once per slot and the slot names
the order (``{slug}-{YYYYmmddTHH}``), so a resend is a duplicate, never a second fill.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Any

from ..synthetic import CENT, synthetic_bars

LIVE_SYMBOL = "DEMO-BTC-USD"
#: the synthetic market's first day (its random walk starts there: the same closes as the demo's)
MARKET_START = date(2022, 1, 3)
#: the live bots were funded this many days before the demo first ran (their track record)
FUNDED_DAYS = 45
DEPOSIT = Decimal(100_000)
#: the UTC hour of the demo market's daily close (when the sample bots trade)
CLOSE_HOUR = 20
STEP = Decimal("0.0001")  # BTC quantities
FEE_RATE = Decimal("0.0005")
_MINUTES = 24 * 60
_SIGMA_MINUTE = 0.65 / math.sqrt(365 * _MINUTES)  # DEMO-BTC-USD's volatility, per minute


@lru_cache(maxsize=16)
def _closes(day: date) -> tuple[Decimal, Decimal]:
    """DEMO-BTC-USD's close on the day before ``day`` and on ``day`` (the synthetic market's)."""
    closes = [b.close for b in synthetic_bars(MARKET_START, day) if b.symbol == LIVE_SYMBOL]
    return closes[-2], closes[-1]


@lru_cache(maxsize=16)
def _bridge(day: date) -> tuple[float, ...]:
    """A standard Brownian bridge over the day's minutes (0 at both ends), seeded by the day."""
    rng = random.Random(f"live-{day.isoformat()}")
    walk = [0.0]
    for _ in range(_MINUTES):
        walk.append(walk[-1] + rng.gauss(0.0, 1.0))
    end = walk[-1]
    return tuple(w - end * i / _MINUTES for i, w in enumerate(walk))


def live_price(at: datetime) -> Decimal:
    """DEMO-BTC-USD at the minute of ``at``: the demo's daily close is at 20:00 UTC (its sample bots
    trade then), so from day D-1's close at 20:00 UTC to day D's at 20:00 UTC the price follows a
    random (seeded: the same for everyone) path between the two closes."""
    session = at.astimezone(UTC) + timedelta(hours=24 - CLOSE_HOUR)  # D-1 20:00 -> D 00:00
    previous, close = _closes(session.date())
    minute = session.hour * 60 + session.minute
    f = minute / _MINUTES
    log_price = (1 - f) * math.log(previous) + f * math.log(close) + _SIGMA_MINUTE * _bridge(session.date())[minute]
    return max(CENT, Decimal(repr(math.exp(log_price))).quantize(CENT, ROUND_HALF_UP))


def slot_of(at: datetime) -> datetime:
    """The hour slot of ``at`` (UTC, minutes and seconds dropped)."""
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _fee(notional: Decimal) -> Decimal:
    return max(CENT, (notional * FEE_RATE).quantize(CENT, ROUND_HALF_UP))


def _floor(value: Decimal) -> Decimal:
    return (value / STEP).to_integral_value(ROUND_DOWN) * STEP


def _num(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass
class Holdings:
    """A live bot's account: USD cash and BTC."""

    cash: Decimal
    btc: Decimal = Decimal(0)

    def apply(self, side: str, quantity: Decimal, price: Decimal) -> Decimal:
        """Fill an order (fees included); returns the fee."""
        notional = quantity * price
        fee = _fee(notional)
        self.cash += notional - fee if side == "sell" else -(notional + fee)
        self.btc += quantity if side == "buy" else -quantity
        return fee


#: what a bot does at ``price`` with its holdings: (side, quantity, reason) or None
Rule = Callable[[Holdings, Decimal], tuple[str, Decimal, str] | None]


def _affordable(h: Holdings, price: Decimal, wanted: Decimal) -> Decimal:
    q = min(wanted, _floor(h.cash / (price * (1 + FEE_RATE))))
    while q > 0 and q * price + _fee(q * price) > h.cash:
        q -= STEP
    return max(q, Decimal(0))


def dca_rule(h: Holdings, price: Decimal) -> tuple[str, Decimal, str] | None:
    """Buy $250 of BTC; when the cash no longer pays for it, sell half the BTC."""
    q = _affordable(h, price, _floor(Decimal(250) / price))
    if q > 0 and q * price >= Decimal(200):
        return "buy", q, "hourly buy"
    half = _floor(h.btc / 2)
    return ("sell", half, "refill cash") if half > 0 else None


def balanced_rule(h: Holdings, price: Decimal) -> tuple[str, Decimal, str] | None:
    """Rebalance to half BTC, half cash (of equity)."""
    target = _floor((h.cash + h.btc * price) / 2 / price)
    if target > h.btc:
        q = _affordable(h, price, target - h.btc)
        return ("buy", q, "rebalance") if q > 0 else None
    return ("sell", h.btc - target, "rebalance") if target < h.btc else None


@dataclass(frozen=True)
class LiveBot:
    """A public demo bot that trades ``LIVE_SYMBOL`` each hour and reports it live; ``backfilled``:
    whether it traded (daily, at the 20:00 UTC close) before the demo first ran, orders sent late by that run."""

    slug: str
    name: str
    risk: str
    rules: str
    rule: Rule
    backfilled: bool
    benchmark: str = LIVE_SYMBOL
    show_positions: str = "live"
    base_currency: str = "USD"


LIVE_BOTS: tuple[LiveBot, ...] = (
    LiveBot(
        "livedca",
        "Hourly BTC DCA (demo)",
        "high",
        "every hour since the demo started: $250 of BTC, half the BTC sold when cash runs out; each order reported as"
        " it is placed",
        dca_rule,
        backfilled=False,
    ),
    LiveBot(
        "live5050",
        "BTC 50/50 hourly (demo)",
        "medium",
        "BTC/cash rebalanced to 50/50: daily before the demo started (sent late, all at once), every hour since,"
        " each order reported as it is placed",
        balanced_rule,
        backfilled=True,
    ),
)


def _order(bot: LiveBot, h: Holdings, at: datetime, price: Decimal, order_id: str) -> dict[str, Any] | None:
    decided = bot.rule(h, price)
    if decided is None:
        return None
    side, quantity, reason = decided
    fee = h.apply(side, quantity, price)
    return {
        "symbol": LIVE_SYMBOL,
        "side": side,
        "quantity": _num(quantity),
        "price": _num(price),
        "fees": _num(fee),
        "order_type": "market",
        "status": "filled",
        "executed_at": _iso(at),
        "external_order_id": order_id,
        "details": {"bot": bot.name, "reason": reason},
    }


def live_order(bot: LiveBot, holdings: Holdings, now: datetime) -> dict[str, Any] | None:
    """What ``bot`` does at ``now`` (its hour slot's trade, executed at ``now`` at ``live_price(now)``),
    or None; ``holdings`` are updated."""
    return _order(bot, holdings, now, live_price(now), f"{bot.slug}-{slot_of(now):%Y%m%dT%H}")


def prelude(bot: LiveBot, first_run: datetime) -> tuple[list[dict[str, Any]], Holdings]:
    """The payloads of ``bot``'s life before the demo first ran at ``first_run`` (its deposit
    ``FUNDED_DAYS`` earlier, and for a ``backfilled`` bot its trades at the synthetic daily closes,
    20:00 UTC, of the days before ``first_run``'s), in time order, and its holdings after them."""
    today = first_run.astimezone(UTC).date()
    start = today - timedelta(days=FUNDED_DAYS)
    funded = datetime.combine(start, time(12), UTC)
    items: list[dict[str, Any]] = [
        {
            "kind": "cash",
            "payload": {
                "event_type": "deposit",
                "amount": _num(DEPOSIT),
                "occurred_at": _iso(funded),
                "external_id": f"{bot.slug}-deposit",
                "note": "the live demo bot's funding",
            },
        }
    ]
    h = Holdings(DEPOSIT)
    if not bot.backfilled:
        return items, h
    closes = {
        b.date: b.close for b in synthetic_bars(MARKET_START, today - timedelta(days=1)) if b.symbol == LIVE_SYMBOL
    }
    orders = []
    for offset in range(FUNDED_DAYS):
        day = start + timedelta(days=offset)
        at = datetime.combine(day, time(CLOSE_HOUR), UTC)
        order = _order(bot, h, at, closes[day], f"{bot.slug}-{at:%Y%m%dT%H}")
        if order is not None:
            orders.append(order)
    if orders:
        items.append({"kind": "orders", "payload": {"orders": orders}})
    return items, h
