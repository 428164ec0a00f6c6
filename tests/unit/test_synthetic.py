"""Synthetic demo prices and the sample bots: determinism, calendar, positivity, sane payloads."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

import msgspec
import pytest

from libs.domain.model import CashIn, OrdersBatchIn
from services.market_data.synthetic import (
    CRYPTO,
    SAMPLE_BOTS,
    STOCKS,
    SYMBOLS,
    sample_bot_orders,
    sample_bots,
    source,
    synthetic_bars,
)

START, END = date(2022, 1, 1), date(2024, 12, 31)


@pytest.fixture(scope="module")
def bars():
    return synthetic_bars(START, END)


@pytest.fixture(scope="module")
def items(bars):
    return sample_bot_orders(bars)


def d(x) -> Decimal:
    return Decimal(str(x))


def test_source_constant():
    assert source == "synthetic-demo"


def test_same_seed_identical_other_seed_differs(bars):
    assert synthetic_bars(START, END, seed=42) == bars
    assert synthetic_bars(START, END, seed=7) != bars
    assert sample_bot_orders(synthetic_bars(START, END)) == sample_bot_orders(bars)
    assert sample_bots(synthetic_bars(START, END)) == sample_bots(bars)


def test_calendar(bars):
    by_symbol: dict[str, set[date]] = defaultdict(set)
    for b in bars:
        by_symbol[b.symbol].add(b.date)
    assert set(by_symbol) == set(SYMBOLS)
    all_days = {START + timedelta(days=i) for i in range((END - START).days + 1)}
    assert by_symbol["DEMO-BTC-USD"] == all_days
    weekdays = {x for x in all_days if x.weekday() < 5}
    # Jan 1, Jul 4 and Dec 25 when they fall on a weekday (2022-01-01 and 2022-12-25 do not)
    holidays = {date(2022, 7, 4), date(2023, 7, 4), date(2023, 12, 25),
                date(2024, 1, 1), date(2024, 7, 4), date(2024, 12, 25)}
    for symbol in STOCKS:
        days = by_symbol[symbol]
        assert not any(x.weekday() >= 5 for x in days), symbol
        assert days == weekdays - holidays, symbol
    assert date(2022, 12, 26) in by_symbol["DEMO-SPY"]  # Dec 25 on a Sunday is no weekday holiday here
    assert len(bars) == len({(b.symbol, b.date) for b in bars})


def test_prices_positive_rounded_and_consistent(bars):
    for b in bars:
        assert b.close > 0 and b.close == b.close.quantize(Decimal("0.01"))
        assert b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high
        assert b.low > 0 and b.volume >= 0


def test_long_run_stays_positive_and_correlated():
    long = synthetic_bars(date(2000, 1, 1), date(2029, 12, 31), seed=3)
    assert all(b.close > 0 for b in long)
    closes = defaultdict(dict)
    for b in long:
        closes[b.symbol][b.date] = float(b.close)
    days = sorted(closes["DEMO-SPY"])
    def rets(s):
        return [closes[s][b] / closes[s][a] - 1 for a, b in zip(days, days[1:])]
    spy, aapl, ko = rets("DEMO-SPY"), rets("DEMO-AAPL"), rets("DEMO-KO")
    def corr(x, y):
        mx, my = sum(x) / len(x), sum(y) / len(y)
        cov = sum((a - mx) * (b - my) for a, b in zip(x, y))
        return cov / (sum((a - mx) ** 2 for a in x) * sum((b - my) ** 2 for b in y)) ** 0.5
    assert 0.65 < corr(spy, aapl) < 0.85
    assert 0.3 < corr(spy, ko) < 0.6


def test_payloads_are_valid_api_input(items):
    for item in items:
        assert item["kind"] in ("cash", "orders")
        raw = msgspec.json.encode(item["payload"])  # JSON-native values only
        if item["kind"] == "cash":
            msgspec.json.decode(raw, type=CashIn)
        else:
            msgspec.json.decode(raw, type=OrdersBatchIn)


def test_batches_ids_and_time_order(items, bars):
    closes = {(b.symbol, b.date): b.close for b in bars}
    ids: list[str] = []
    last_time = ""
    for item in items:
        if item["kind"] == "orders":
            orders = item["payload"]["orders"]
            assert 1 <= len(orders) <= 500
            for o in orders:
                ids.append(o["external_order_id"])
                assert o["executed_at"].endswith("T20:00:00Z")
                day = date.fromisoformat(o["executed_at"][:10])
                assert d(o["price"]) == closes[(o["symbol"], day)]
                assert d(o["fees"]) == max(Decimal("0.01"), (d(o["quantity"]) * d(o["price"]) * Decimal("0.0005"))
                                           .quantize(Decimal("0.01"), "ROUND_HALF_UP"))
                assert o["executed_at"] >= last_time
                last_time = o["executed_at"]
        else:
            ids.append(item["payload"]["external_id"])
            assert item["payload"]["occurred_at"] >= last_time
            last_time = item["payload"]["occurred_at"]
    assert len(ids) == len(set(ids))
    assert all(i.startswith("demo-") for i in ids)


def test_replayed_cash_never_negative_and_shorts_covered(items):
    cash = Decimal(0)
    qty: dict[str, Decimal] = defaultdict(Decimal)
    kinds: dict[str, list] = defaultdict(list)
    shorted: set[str] = set()
    for item in items:
        if item["kind"] == "cash":
            p = item["payload"]
            cash += d(p["amount"])
            kinds[p["event_type"]].append(p)
        else:
            for o in item["payload"]["orders"]:
                notional = d(o["quantity"]) * d(o["price"])
                fee = d(o["fees"])
                if o["side"] == "buy":
                    cash -= notional + fee
                    qty[o["symbol"]] += d(o["quantity"])
                else:
                    cash += notional - fee
                    qty[o["symbol"]] -= d(o["quantity"])
                assert cash >= 0, (o, cash)
                short_now = {s for s, q in qty.items() if q < 0}
                assert len(short_now) <= 1 and short_now <= set(STOCKS) - set(CRYPTO)
                shorted |= short_now
        assert cash >= 0
    assert shorted, "the sample bot shorts now and then"
    assert all(q >= 0 for q in qty.values()), "every short is covered"
    assert [p["amount"] for p in kinds["deposit"]] == [1_000_000]
    assert kinds["deposit"][0]["occurred_at"].startswith(START.isoformat())
    assert [p["amount"] for p in kinds["withdraw"]] == [-50_000]
    assert date(2023, 4, 1) <= date.fromisoformat(kinds["withdraw"][0]["occurred_at"][:10]) <= date(2023, 9, 30)
    dividends = kinds["dividend"]
    assert dividends and all(p["related_symbol"] == "DEMO-KO" and p["amount"] > 0 for p in dividends)
    quarters = [(p["occurred_at"][:4], p["occurred_at"][5:7]) for p in dividends]
    assert len(quarters) == len(set(quarters)) and len(quarters) == 12
    assert set(kinds) == {"deposit", "withdraw", "dividend"}


def test_traded_symbols_and_sizes(items):
    orders = [o for i in items if i["kind"] == "orders" for o in i["payload"]["orders"]]
    assert {o["symbol"] for o in orders} <= set(SYMBOLS) and "DEMO-BTC-USD" in {o["symbol"] for o in orders}
    first_day = [o for o in orders if o["executed_at"] == orders[0]["executed_at"]]
    invested = sum(d(o["quantity"]) * d(o["price"]) for o in first_day)
    assert Decimal(500_000) < invested < Decimal(1_000_000)
    for o in orders:
        if o["symbol"] != "DEMO-BTC-USD":
            assert isinstance(o["quantity"], int) and o["quantity"] > 0


def test_short_period_and_empty_input():
    assert sample_bot_orders([]) == []
    few = synthetic_bars(date(2024, 3, 4), date(2024, 3, 8))
    items = sample_bot_orders(few)
    assert items[0]["kind"] == "cash" and items[0]["payload"]["event_type"] == "deposit"
    assert any(i["kind"] == "orders" for i in items)


# ---------------------------------------------------------------- every sample bot of the demo


@pytest.fixture(scope="module")
def every_bot(bars):
    return sample_bots(bars)


def _replay(items):
    """Cash and quantities after each item, asserting what every bot promises on the way."""
    cash, qty = Decimal(0), defaultdict(Decimal)
    for item in items:
        if item["kind"] == "cash":
            cash += d(item["payload"]["amount"])
        else:
            for o in item["payload"]["orders"]:
                notional, fee = d(o["quantity"]) * d(o["price"]), d(o["fees"])
                sign = 1 if o["side"] == "buy" else -1
                cash -= sign * notional + fee
                qty[o["symbol"]] += sign * d(o["quantity"])
                yield cash, qty, o


def test_at_least_five_bots_with_different_rules_and_risk(every_bot):
    assert len(SAMPLE_BOTS) >= 5 and [b for b, _ in every_bot] == list(SAMPLE_BOTS)
    assert SAMPLE_BOTS[0].orders is sample_bot_orders  # the first is the one the demo has always shown
    assert len({b.slug for b in SAMPLE_BOTS}) == len({b.name for b in SAMPLE_BOTS}) == len(SAMPLE_BOTS)
    assert {b.risk for b in SAMPLE_BOTS} == {"low", "medium", "high"}
    assert {b.show_positions for b in SAMPLE_BOTS} == {"none", "delayed", "live"}
    assert all(b.benchmark.startswith("DEMO-") and b.name.endswith("(demo)") for b in SAMPLE_BOTS)
    # different rules: different symbols, trade counts and first days
    traded = [frozenset(o["symbol"] for i in items if i["kind"] == "orders" for o in i["payload"]["orders"])
              for _, items in every_bot]
    assert len(set(traded)) == len(traded)
    assert frozenset({"DEMO-SPY"}) in traded and frozenset({"DEMO-BTC-USD"}) in traded
    starts = {items[0]["payload"]["occurred_at"][:10] for _, items in every_bot}
    assert len(starts) >= 3


def test_every_bot_sends_valid_ordered_payloads_with_its_own_ids(every_bot):
    seen_ids: set[str] = set()
    for bot, items in every_bot:
        assert items[0]["kind"] == "cash" and items[0]["payload"]["event_type"] == "deposit", bot.slug
        assert any(i["kind"] == "orders" for i in items), bot.slug
        last, ids = "", []
        for item in items:
            raw = msgspec.json.encode(item["payload"])
            if item["kind"] == "cash":
                msgspec.json.decode(raw, type=CashIn)
                ids.append(item["payload"]["external_id"])
                stamps = [item["payload"]["occurred_at"]]
            else:
                msgspec.json.decode(raw, type=OrdersBatchIn)
                ids += [o["external_order_id"] for o in item["payload"]["orders"]]
                stamps = [o["executed_at"] for o in item["payload"]["orders"]]
            assert all(s >= last for s in stamps), bot.slug
            last = stamps[-1]
        assert len(ids) == len(set(ids)) and not seen_ids & set(ids), bot.slug
        seen_ids |= set(ids)


def test_every_bot_but_momentum_is_long_only_and_never_overdrawn(every_bot, bars):
    closes = {(b.symbol, b.date): b.close for b in bars}
    for bot, items in every_bot:
        for cash, qty, o in _replay(items):
            assert d(o["price"]) == closes[(o["symbol"], date.fromisoformat(o["executed_at"][:10]))]
            if bot.slug != "momentum":
                assert cash >= 0, (bot.slug, o)
                assert all(q >= 0 for q in qty.values()), (bot.slug, o)


def test_bots_carry_their_income(every_bot):
    by_slug = {b.slug: items for b, items in every_bot}
    kinds = {slug: {i["payload"]["event_type"] for i in items if i["kind"] == "cash"} for slug, items in by_slug.items()}
    assert kinds["income"] == {"deposit", "dividend", "interest"}
    assert kinds["index"] == {"deposit", "dividend"}
    index_orders = [o for i in by_slug["index"] if i["kind"] == "orders" for o in i["payload"]["orders"]]
    assert {o["side"] for o in index_orders} == {"buy"}  # buy and hold: never sells


def test_bots_starting_later_send_nothing_over_an_earlier_market():
    few = synthetic_bars(date(2022, 1, 3), date(2022, 1, 14))
    out = {b.slug: items for b, items in sample_bots(few)}
    assert out["tech"] == [] and out["crypto"] == [] and out["meanrev"] == []
    assert out["momentum"] and out["index"] and out["income"]
