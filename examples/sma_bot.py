"""A moving-average crossover bot on BotRanks' demo market, reporting through ``botranks_client``.

With ``botranks up`` running::

    botranks demo                    # loads the demo market's prices (DEMO-*) into the price cache
    botranks strategy create --name sma-bot --benchmark DEMO-SPY     # prints strategy_id and api_key
    export FQ_STRATEGY_ID=<strategy_id> FQ_API_KEY=<api_key>  # BOTRANKS_URL: default http://127.0.0.1:8000
    python examples/sma_bot.py       # run it again every evening: only the new day's order is new

The rule: hold SYMBOL while its FAST-day average close is above its SLOW-day average, cash
otherwise; all in, whole shares, at the day's close. The bot walks the market day by day from
--start to yesterday, as if it had run every evening. Its closes come from the seeded generator
that ``botranks demo`` loaded (a real bot would ask its broker), so BotRanks marks it at the prices
it traded at.

Writes go through the client's outbox (a SQLite file): each one is on disk before it is sent,
then sent in the background and retried until the server has it, across crashes and restarts.
Every id is derived from the day, so a re-run stores nothing twice.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_DOWN, Decimal

from botranks_client import Client
from services.market_data.synthetic import synthetic_bars

DEMO_START = date(2022, 1, 3)  # the demo market's first day (`botranks demo` generates from it)
DEPOSIT = Decimal(100_000)
FEE_RATE = Decimal("0.0005")
CENT = Decimal("0.01")


def demo_closes(symbol: str) -> list[tuple[date, Decimal]]:
    """The demo market's daily closes of ``symbol`` up to yesterday (UTC)."""
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    return [(b.date, b.close) for b in synthetic_bars(DEMO_START, yesterday) if b.symbol == symbol]


def decide(closes: list[tuple[date, Decimal]], start: date, fast: int, slow: int, symbol: str) -> list[dict]:
    """The orders of the crossover rule from ``start`` on, filled at each day's close."""
    cash, shares, orders = DEPOSIT, Decimal(0), []
    for i in range(slow - 1, len(closes)):
        day, close = closes[i]
        if day < start:
            continue
        window = [c for _, c in closes[i - slow + 1 : i + 1]]
        above = sum(window[-fast:]) / fast > sum(window) / slow
        if above and shares == 0:
            side, quantity = "buy", (cash / (close * (1 + FEE_RATE))).to_integral_value(ROUND_DOWN)
        elif not above and shares > 0:
            side, quantity = "sell", shares
        else:
            continue
        if quantity <= 0:
            continue
        fees = max(CENT, (quantity * close * FEE_RATE).quantize(CENT))
        cash += (-quantity if side == "buy" else quantity) * close - fees
        shares += quantity if side == "buy" else -quantity
        orders.append(
            {
                "symbol": symbol,
                "side": side,
                "quantity": quantity,
                "price": close,
                "fees": fees,
                "executed_at": datetime.combine(day, time(21, 0), UTC),
                "external_order_id": f"sma-{symbol}-{day}-{side}",
            }
        )
    return orders


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbol", default="DEMO-SPY")
    parser.add_argument("--fast", type=int, default=20)
    parser.add_argument("--slow", type=int, default=50)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2025, 1, 2), help="first trading day")
    parser.add_argument("--outbox", default="sma_bot.outbox.sqlite", help="the client's outbox (SQLite file)")
    args = parser.parse_args()
    url = os.environ.get("BOTRANKS_URL", "http://127.0.0.1:8000")
    key, strategy = os.environ.get("FQ_API_KEY"), os.environ.get("FQ_STRATEGY_ID")
    if not key or not strategy:
        sys.exit("set FQ_API_KEY and FQ_STRATEGY_ID (botranks strategy create prints both)")

    closes = demo_closes(args.symbol)
    if not closes or closes[-1][0] < args.start:
        sys.exit(f"no closes of {args.symbol} on or after {args.start}")
    orders = decide(closes, args.start, args.fast, args.slow, args.symbol)
    first_day = next(day for day, _ in closes if day >= args.start)

    with Client(url, key, strategy, outbox=args.outbox) as client:
        client.record_cash(
            "deposit",
            DEPOSIT,
            occurred_at=datetime.combine(first_day, time(13, 0), UTC),
            external_id=f"sma-{args.symbol}-deposit",
        )
        if orders:
            client.submit_orders(orders)
        client.flush(timeout=120)  # everything acknowledged by the server (or refused: dead letters)
        for dead in client.dead_letters():
            print(f"refused by the server: {dead}", file=sys.stderr)
        state = client.state()

    print(f"{len(orders)} orders of {args.symbol} since {first_day} (SMA {args.fast}/{args.slow})")
    for p in state.positions:
        print(f"holding {p.quantity} {p.symbol} at {p.cost_basis}")
    if state.nav is not None:
        print(f"equity {state.nav.total_equity} (cash {state.nav.cash_balance})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
