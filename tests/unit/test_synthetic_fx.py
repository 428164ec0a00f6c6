"""The demo's second currency: the synthetic EUR/USD walk, the EUR-quoted DEMO-SAP, the EUR-based
sample bot (never overdrawn in EUR at the ledger's rates) and how ``botranks demo`` chooses between
real and synthetic EUR/USD rates."""

from __future__ import annotations

import math
import uuid
from bisect import bisect_right
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext

import msgspec
import pytest

from botranks_domain.bars import Bar
from botranks_domain.currency import FxRates
from botranks_domain.model import CashEvent, CashIn, CashRecorded, Order, OrderRecorded, OrdersBatchIn
from botranks_domain.nav import LedgerState, PriceBook, derive
from services.demo_live import live as demo_live
from services.demo_live import replay as demo_replay
from services.market_data.sample_bots import SAMPLE_BOTS, sample_bots
from services.market_data.sample_bots.euro_bot import CASH_BUFFER, EURO_DEPOSIT, EURO_WEIGHTS, euro_orders
from services.market_data.synthetic import SYMBOLS, is_us_trading_day, source, synthetic_bars
from services.market_data.synthetic_fx import (
    EUR_CURRENCIES,
    EUR_STOCK,
    FX_SYMBOL,
    synthetic_eur_bars,
    synthetic_eurusd,
)
from tools import demo

START, END = date(2022, 1, 3), date(2024, 12, 31)
EXACT = Context(prec=100)


def d(x) -> Decimal:
    return Decimal(str(x))


@pytest.fixture(scope="module")
def bars():
    return synthetic_bars(START, END)


@pytest.fixture(scope="module")
def eurusd():
    return synthetic_eurusd(START, END)


@pytest.fixture(scope="module")
def euro(bars):
    return euro_orders(bars)


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


# ---------------------------------------------------------------- the EUR/USD walk and DEMO-SAP


def test_the_eurusd_walk_is_deterministic_positive_and_plausible(eurusd):
    assert synthetic_eurusd(START, END) == eurusd and synthetic_eurusd(START, END, seed=7) != eurusd
    assert {b.symbol for b in eurusd} == {FX_SYMBOL} == {"C:EURUSD"}
    assert [b.date for b in eurusd] == [x for x in _days(START, END) if x.weekday() < 5]  # every weekday
    for b in eurusd:
        assert b.close > 0 and b.close == b.close.quantize(Decimal("0.00001"))
        assert b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high
    closes = [float(b.close) for b in eurusd]
    assert 0.85 < min(closes) and max(closes) < 1.35  # stays around 1.08
    moves = [math.log(b / a) for a, b in zip(closes, closes[1:])]
    vol = (sum(m * m for m in moves) / len(moves)) ** 0.5
    assert 0.004 < vol < 0.006, vol  # about 0.5 % a day
    long = synthetic_eurusd(date(2000, 1, 3), date(2039, 12, 30), seed=3)
    assert all(b.close > 0 for b in long) and 0.7 < min(float(b.close) for b in long)
    assert max(float(b.close) for b in long) < 1.6


def test_demo_sap_is_a_eur_stock_drawn_apart_from_the_usd_market(bars):
    sap = synthetic_eur_bars(START, END)
    assert sap == synthetic_eur_bars(START, END) and sap != synthetic_eur_bars(START, END, seed=7)
    assert EUR_CURRENCIES == {EUR_STOCK: "EUR"} and EUR_STOCK == "DEMO-SAP"
    assert [b.date for b in sap] == [x for x in _days(START, END) if is_us_trading_day(x)]
    for b in sap:
        assert b.symbol == EUR_STOCK and b.close > 0 and b.close == b.close.quantize(Decimal("0.01"))
        assert b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high and b.volume >= 0
    # its own Random: the USD market's bars do not know it
    assert EUR_STOCK not in SYMBOLS and EUR_STOCK not in {b.symbol for b in bars}


# ---------------------------------------------------------------- the EUR bot


def _rates(fx_bars: list[Bar]):
    """USD -> EUR on a day as the ledger computes it, written out independently: 1 / the last
    C:EURUSD close on or before the day, rounded half-even to 18 decimal places."""
    rows = sorted((b.date, b.close) for b in fx_bars if b.symbol == FX_SYMBOL)
    days = [x for x, _ in rows]

    def usd_in_eur(day: date) -> Decimal:
        close = rows[bisect_right(days, day) - 1][1]
        with localcontext(EXACT):
            return (Decimal(1) / close).quantize(Decimal("1e-18"), ROUND_HALF_EVEN)

    return usd_in_eur


def _replay_eur(items, fx_bars):
    """(cash in EUR, holdings, order) after each order, fills converted at the ledger's rate."""
    usd_in_eur = _rates(fx_bars)
    cash, qty = Decimal(0), defaultdict(Decimal)
    with localcontext(EXACT):
        for item in items:
            if item["kind"] == "cash":
                cash += d(item["payload"]["amount"])
                continue
            for o in item["payload"]["orders"]:
                day = date.fromisoformat(o["executed_at"][:10])
                rate = Decimal(1) if o["symbol"] == EUR_STOCK else usd_in_eur(day)
                notional = d(o["quantity"]) * d(o["price"]) * rate
                assert d(o["fees"]) == max(Decimal("0.01"), (notional * Decimal("0.0005")).quantize(Decimal("0.01")))
                sign = 1 if o["side"] == "buy" else -1
                cash -= sign * notional + d(o["fees"])
                qty[o["symbol"]] += sign * d(o["quantity"])
                yield cash, qty, o


def test_the_euro_bot_is_in_the_roster_in_eur(bars, euro):
    [bot] = [b for b in SAMPLE_BOTS if b.base_currency != "USD"]
    assert (bot.slug, bot.name, bot.base_currency, bot.benchmark) == ("euro", "Euro balanced (demo)", "EUR", "DEMO-SPY")
    assert bot.orders is euro_orders and bot.show_positions == "live"
    assert all(b.base_currency == "USD" for b in SAMPLE_BOTS if b is not bot)
    assert dict(sample_bots(bars))[bot] == euro


def test_the_euro_bot_is_deterministic_and_trades_one_eur_and_two_usd_symbols(bars, euro):
    assert euro_orders(synthetic_bars(START, END)) == euro
    orders = [o for i in euro if i["kind"] == "orders" for o in i["payload"]["orders"]]
    traded = {o["symbol"] for o in orders}
    assert traded == {"DEMO-SAP", "DEMO-AAPL", "DEMO-KO"}
    assert {s for s in traded if EUR_CURRENCIES.get(s) == "EUR"} == {"DEMO-SAP"}
    assert euro[0]["kind"] == "cash" and euro[0]["payload"]["amount"] == EURO_DEPOSIT
    assert euro[0]["payload"]["occurred_at"] == "2022-04-01T13:30:00Z"
    for item in euro:
        raw = msgspec.json.encode(item["payload"])
        msgspec.json.decode(raw, type=CashIn if item["kind"] == "cash" else OrdersBatchIn)
    closes = {(b.symbol, b.date): b.close for b in bars + synthetic_eur_bars(START, END)}
    for o in orders:  # prices stay in the instrument's currency: the day's close
        assert d(o["price"]) == closes[(o["symbol"], date.fromisoformat(o["executed_at"][:10]))]
        assert o["executed_at"].endswith("T20:00:00Z") and isinstance(o["quantity"], int)


def test_the_euro_bot_never_spends_more_eur_than_it_holds(euro, eurusd):
    lowest = None
    for cash, qty, _ in _replay_eur(euro, eurusd):
        assert cash >= 0
        assert all(q >= 0 for q in qty.values())
        lowest = cash if lowest is None else min(lowest, cash)
    # the weights leave 10 % in cash and the buffer keeps another 0.5 % of equity: never near zero
    assert lowest is not None and lowest > CASH_BUFFER * EURO_DEPOSIT


def test_the_euro_bot_sizes_usd_positions_in_eur_at_the_given_rates(bars):
    """Over a flat EUR/USD of 1.25 (what ``botranks demo`` passes when real rates exist), a USD stock's
    weight is its EUR value: q x price / 1.25 is 30 % (AAPL) and 20 % (KO) of the 100,000 EUR."""
    flat = [Bar(symbol=FX_SYMBOL, date=x, close=Decimal("1.25")) for x in _days(START, END) if x.weekday() < 5]
    items = euro_orders(bars + flat)
    assert items != euro_orders(bars)  # the rates given, not the synthetic walk
    first = items[1]["payload"]["orders"]
    value = {
        o["symbol"]: d(o["quantity"]) * d(o["price"]) / (1 if o["symbol"] == EUR_STOCK else d("1.25")) for o in first
    }
    for symbol, weight in EURO_WEIGHTS.items():
        share = value[symbol] / EURO_DEPOSIT
        assert weight - Decimal("0.005") < share <= weight, (symbol, share)
    assert all(cash >= 0 for cash, _, _ in _replay_eur(items, flat))


def test_the_euro_bot_starts_when_its_rates_do(bars):
    late = [b for b in synthetic_eurusd(START, END) if b.date >= date(2023, 2, 15)]
    items = euro_orders(bars + late)
    assert items[0]["payload"]["occurred_at"] == "2023-02-15T13:30:00Z"
    assert all(cash >= 0 for cash, _, _ in _replay_eur(items, late))
    assert euro_orders(bars[:0]) == []


def _events(items):
    def at(stamp: str) -> datetime:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00"))

    sid, out = uuid.UUID(int=23), []
    for item in items:
        p = item["payload"]
        if item["kind"] == "cash":
            event = CashEvent(
                id=uuid.uuid4(),
                strategy_id=sid,
                event_type=p["event_type"],
                amount=d(p["amount"]),
                occurred_at=at(p["occurred_at"]),
                external_id=p["external_id"],
                related_symbol=None,
                note=p.get("note"),
                created_at=at(p["occurred_at"]),
            )
            out.append(CashRecorded(event))
            continue
        for o in p["orders"]:
            order = Order(
                id=uuid.uuid4(),
                strategy_id=sid,
                symbol=o["symbol"],
                side=o["side"],
                quantity=d(o["quantity"]),
                price=d(o["price"]),
                fees=d(o["fees"]),
                order_type=o["order_type"],
                status=o["status"],
                executed_at=at(o["executed_at"]),
                created_at=at(o["executed_at"]),
                external_order_id=o["external_order_id"],
                details=o["details"],
            )
            out.append(OrderRecorded(order))
    return out


def test_the_ledger_folds_the_euro_bot_in_eur_without_ever_borrowing(bars, euro, eurusd):
    """The ledger's own fold in EUR (its rates, its arithmetic): cash never below zero on any day,
    and it ends with the bot's holdings and cash (to the cent)."""
    closes: dict[str, list[tuple[date, Decimal]]] = defaultdict(list)
    for b in bars + synthetic_eur_bars(START, END) + eurusd:
        closes[b.symbol].append((b.date, b.close))
    book = PriceBook(dict(closes))
    events = _events(euro)
    fx = FxRates(book, "EUR", EUR_CURRENCIES)
    result = derive(LedgerState(), events, book, "DEMO-SPY", None, END, events[0].effective_at.date(), fx=fx)
    assert result.nav and all(row.cash >= 0 for row in result.nav)
    *_, (cash, qty, _) = _replay_eur(euro, eurusd)
    assert {s: h.quantity for s, h in result.current.positions.items()} == {s: q for s, q in qty.items() if q}
    assert abs(result.nav[-1].cash - cash) < Decimal("0.01")


# ---------------------------------------------------------------- botranks demo: which rates


CAP = date(2023, 7, 31)


class _Db:
    """The demo's doors into the price cache and identity, recording what it writes."""

    def __init__(self, cached: dict[str, list[tuple[date, Decimal]]]) -> None:
        self.cached, self.bars, self.currencies, self.created = cached, [], [], {}
        self.prices, self.identity = self, self

    def write_bars(self, bars, source):
        self.bars += [(b, source) for b in bars]
        return len(bars)

    def write_splits(self, splits, source):
        return len(splits)

    def closes_between(self, symbol, start, end):
        return [(x, c) for x, c in self.cached.get(symbol, []) if start <= x <= end]

    def record_currencies(self, currencies, source):
        self.currencies.append((dict(currencies), source))
        return len(currencies)

    def create_strategy(self, name, **kwargs):
        sid = uuid.uuid4()
        self.created[str(sid)] = (name, kwargs)
        return sid, None

    def all_strategies(self):  # a first demo: none of its bots exists yet
        return []

    def add_keys(self, strategy_id, labels):
        return [f"key-{label}" for label in labels]

    def describe(self, strategy_id, description, tags):  # each bot's profile
        assert description and tags


def _run(monkeypatch, cached):
    """``run_demo`` over a market capped at CAP (no dependence on today), with payloads captured."""
    for name, make in (
        ("synthetic_bars", synthetic_bars),
        ("synthetic_eur_bars", synthetic_eur_bars),
        ("synthetic_eurusd", synthetic_eurusd),
    ):
        monkeypatch.setattr(demo_replay, name, lambda start, end, make=make: make(start, min(end, CAP)))
    sent: dict[str, list] = {}

    def replay(api, payloads, keys):
        sent[api.rsplit("/", 1)[1]] = payloads
        return {"orders": 1, "cash_events": 1}

    monkeypatch.setattr(demo, "post", replay)
    monkeypatch.setattr(demo_live, "post", lambda api, payloads, keys: {"orders": 1, "cash_events": 1})  # live bots
    db = _Db(cached)
    out = demo.run_demo(db, "http://demo.invalid")
    [euro_bot] = [b for b in out["bots"] if b["base_currency"] == "EUR"]
    return db, out, euro_bot, sent


def _market():
    return synthetic_bars(demo.DEMO_START, CAP) + synthetic_eur_bars(demo.DEMO_START, CAP)


def test_the_demo_writes_synthetic_eurusd_only_into_a_cache_without_real_rates(monkeypatch):
    db, out, euro_bot, sent = _run(monkeypatch, {})
    payloads = sent[euro_bot["strategy_id"]]
    walk = synthetic_eurusd(demo.DEMO_START, CAP)
    assert [b for b, _ in db.bars if b.symbol == FX_SYMBOL] == walk
    assert {s for _, s in db.bars} == {source} and {b.symbol for b, _ in db.bars} == {*SYMBOLS, EUR_STOCK, FX_SYMBOL}
    assert db.currencies == [({"DEMO-SAP": "EUR"}, source)]
    assert out["prices"]["fx"] == {"symbol": "C:EURUSD", "synthetic": True, "rows": len(walk)}
    assert out["prices"]["currencies"] == {"DEMO-SAP": "EUR"}
    assert euro_bot["name"] == "Euro balanced (demo)" and euro_bot["benchmark"] == "DEMO-SPY"
    assert db.created[euro_bot["strategy_id"]][1]["base_currency"] == "EUR"
    assert all(b["base_currency"] == "USD" for b in out["bots"] if b is not euro_bot)
    assert all(kw["base_currency"] == "USD" for sid, (_, kw) in db.created.items() if sid != euro_bot["strategy_id"])
    assert payloads == euro_orders(_market() + walk)
    # the USD bots trade exactly as they did over the USD market alone (SAP and the rate change nothing)
    usd_market = synthetic_bars(demo.DEMO_START, CAP)
    for bot, entry in zip(SAMPLE_BOTS, out["bots"], strict=True):
        assert (entry["name"], entry["base_currency"]) == (bot.name, bot.base_currency)
        if bot.base_currency == "USD":
            assert sent[entry["strategy_id"]] == bot.orders(usd_market), bot.slug

    # a second run (the cache now holds the demo's own walk, and a day more): rewritten, still synthetic
    again, out2, _, _ = _run(monkeypatch, {FX_SYMBOL: [(b.date, b.close) for b in walk[:-1]]})
    assert out2["prices"]["fx"]["synthetic"] is True
    assert [b for b, _ in again.bars if b.symbol == FX_SYMBOL] == walk


def test_the_demo_trades_at_real_rates_and_invents_none_when_the_cache_has_them(monkeypatch):
    real = [(x, Decimal("1.1")) for x in _days(date(2021, 6, 1), CAP) if x.weekday() < 5]
    db, out, euro_bot, sent = _run(monkeypatch, {FX_SYMBOL: real})
    payloads = sent[euro_bot["strategy_id"]]
    assert not [b for b, _ in db.bars if not b.symbol.startswith("DEMO-")]  # nothing under a real symbol
    assert out["prices"]["fx"] == {"symbol": "C:EURUSD", "synthetic": False, "rows": len(real)}
    rates = [Bar(symbol=FX_SYMBOL, date=x, close=c) for x, c in real]
    assert payloads == euro_orders(_market() + rates) != euro_orders(_market())
    assert all(cash >= 0 for cash, _, _ in _replay_eur(payloads, rates))
    # the inverse pair alone is a real rate too (the ledger reads it first): nothing invented either
    db2, out2, _, _ = _run(monkeypatch, {"C:USDEUR": [(date(2022, 1, 3), Decimal("0.9"))]})
    assert out2["prices"]["fx"]["synthetic"] is False and not [b for b, _ in db2.bars if b.symbol.startswith("C:")]
