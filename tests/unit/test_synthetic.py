"""Synthetic demo prices and the sample bots: determinism, calendar, positivity, sane payloads,
and the demo's stock split (unadjusted bars, bots holding through it, a NAV without a jump)."""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal

import msgspec
import pytest

from botranks_domain.bars import Bar, Split
from botranks_domain.model import CashEvent, CashIn, CashRecorded, Order, OrderRecorded, OrdersBatchIn
from botranks_domain.nav import LedgerState, PriceBook, derive
from services.demo_live import live as demo_live
from services.demo_live import replay as demo_replay
from services.market_data.sample_bots import SAMPLE_BOTS, sample_bot_orders, sample_bots
from services.market_data.sample_bots import market as sample_bots_market
from services.market_data.synthetic import (
    CRYPTO,
    DEMO_SPLIT,
    DEMO_SPLITS,
    STOCKS,
    SYMBOLS,
    is_us_trading_day,
    source,
    synthetic_bars,
    synthetic_splits,
)
from services.market_data.synthetic_fx import synthetic_eur_bars
from tools import demo

START, END = date(2022, 1, 1), date(2024, 12, 31)


@pytest.fixture(scope="module")
def bars():
    return synthetic_bars(START, END)


@pytest.fixture(scope="module")
def items(bars):
    return sample_bot_orders(bars)


def d(x) -> Decimal:
    return Decimal(str(x))


SPLITS = synthetic_splits(START, END)


def _split_holdings(qty: dict[str, Decimal], done: set[Split], day: str, splits=SPLITS) -> None:
    """Apply the demo splits with ex-date on or before ``day`` (ISO) not applied yet: quantity x to/from,
    as the ledger does at the start of an ex-date."""
    for sp in splits:
        if sp not in done and sp.ex_date.isoformat() <= day[:10]:
            done.add(sp)
            if qty.get(sp.symbol):
                qty[sp.symbol] = qty[sp.symbol] * sp.split_to / sp.split_from


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
    holidays = {
        date(2022, 7, 4),
        date(2023, 7, 4),
        date(2023, 12, 25),
        date(2024, 1, 1),
        date(2024, 7, 4),
        date(2024, 12, 25),
    }
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
                assert d(o["fees"]) == max(
                    Decimal("0.01"),
                    (d(o["quantity"]) * d(o["price"]) * Decimal("0.0005")).quantize(Decimal("0.01"), "ROUND_HALF_UP"),
                )
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
    done: set[Split] = set()
    for item in items:
        if item["kind"] == "cash":
            p = item["payload"]
            _split_holdings(qty, done, p["occurred_at"])
            cash += d(p["amount"])
            kinds[p["event_type"]].append(p)
        else:
            for o in item["payload"]["orders"]:
                _split_holdings(qty, done, o["executed_at"])
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


def _replay(items, splits=SPLITS):
    """Cash and quantities (in the units of the order's day: ``splits`` applied at their ex-dates)
    after each order."""
    cash, qty, done = Decimal(0), defaultdict(Decimal), set()
    for item in items:
        if item["kind"] == "cash":
            _split_holdings(qty, done, item["payload"]["occurred_at"], splits)
            cash += d(item["payload"]["amount"])
        else:
            for o in item["payload"]["orders"]:
                _split_holdings(qty, done, o["executed_at"], splits)
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
    traded = [
        frozenset(o["symbol"] for i in items if i["kind"] == "orders" for o in i["payload"]["orders"])
        for _, items in every_bot
    ]
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
    closes = {(b.symbol, b.date): b.close for b in bars + synthetic_eur_bars(START, END)}
    for bot, items in every_bot:
        for cash, qty, o in _replay(items):
            assert d(o["price"]) == closes[(o["symbol"], date.fromisoformat(o["executed_at"][:10]))]
            if bot.slug != "momentum":
                # (a bot in another currency than USD: its cash in its own, test_synthetic_fx.py)
                assert cash >= 0 or bot.base_currency != "USD", (bot.slug, o)
                assert all(q >= 0 for q in qty.values()), (bot.slug, o)


def test_bots_carry_their_income(every_bot):
    by_slug = {b.slug: items for b, items in every_bot}
    kinds = {
        slug: {i["payload"]["event_type"] for i in items if i["kind"] == "cash"} for slug, items in by_slug.items()
    }
    assert kinds["income"] == {"deposit", "dividend", "interest"}
    assert kinds["index"] == {"deposit", "dividend"}
    index_orders = [o for i in by_slug["index"] if i["kind"] == "orders" for o in i["payload"]["orders"]]
    assert {o["side"] for o in index_orders} == {"buy"}  # buy and hold: never sells


def test_bots_starting_later_send_nothing_over_an_earlier_market():
    few = synthetic_bars(date(2022, 1, 3), date(2022, 1, 14))
    out = {b.slug: items for b, items in sample_bots(few)}
    assert out["tech"] == [] and out["crypto"] == [] and out["meanrev"] == []
    assert out["momentum"] and out["index"] and out["income"]


# ---------------------------------------------------------------- the demo's stock split

EX = DEMO_SPLIT.ex_date
RATIO = DEMO_SPLIT.split_to / DEMO_SPLIT.split_from  # 4: new shares per old one
#: sha256 of the bars the generator drew over START..END before it knew splits (prices of every
#: bar, volumes of all but the pre-split DEMO-NVDA ones): the split-free view of today's bars must
#: still be exactly that market
SPLIT_FREE_DIGEST = "e7acdd3344c6de3b68b4fdb3d6ff08e706128b3ee7fa810459baef3055aa6323"


def _split_free(bars: list[Bar]) -> list[Bar]:
    """``bars`` split-adjusted (every bar in the share units after every split): the market as it was
    drawn, before its bars were made unadjusted."""
    out = []
    for b in bars:
        factor = Decimal(1)
        for sp in DEMO_SPLITS:
            if sp.symbol == b.symbol and b.date < sp.ex_date:
                factor = factor * sp.split_to / sp.split_from
        if factor == 1:
            out.append(b)
        else:
            cents = Decimal("0.01")
            out.append(
                Bar(
                    symbol=b.symbol,
                    date=b.date,
                    close=(b.close / factor).quantize(cents),
                    open=(b.open / factor).quantize(cents),
                    high=(b.high / factor).quantize(cents),
                    low=(b.low / factor).quantize(cents),
                    volume=b.volume * factor,
                )
            )
    return out


def _closes(bars) -> dict[str, list[tuple[date, Decimal]]]:
    by_symbol: dict[str, list[tuple[date, Decimal]]] = defaultdict(list)
    for b in bars:
        by_symbol[b.symbol].append((b.date, b.close))
    return dict(by_symbol)


def _adjusted(symbol: str, day: date, close: Decimal) -> Decimal:
    """A close in the share units after every demo split (what signals and the test's market moves use)."""
    for sp in DEMO_SPLITS:
        if sp.symbol == symbol and day < sp.ex_date:
            close = close * sp.split_from / sp.split_to
    return close


def test_the_demo_split_is_a_4_for_1_on_a_mid_month_demo_trading_day():
    assert DEMO_SPLITS == (DEMO_SPLIT,)
    assert (DEMO_SPLIT.symbol, DEMO_SPLIT.split_from, DEMO_SPLIT.split_to) == ("DEMO-NVDA", 1, 4)
    assert DEMO_SPLIT.symbol in STOCKS and is_us_trading_day(EX)
    assert demo.DEMO_START + timedelta(days=365) < EX < date(2024, 1, 1)
    assert EX.day > 7  # not the first trading day of a month: no monthly rebalance on it
    assert synthetic_splits(START, END) == [DEMO_SPLIT]
    assert synthetic_splits(EX, EX) == [DEMO_SPLIT]  # both ends inclusive
    assert synthetic_splits(START, EX - timedelta(days=1)) == []
    assert synthetic_splits(EX + timedelta(days=1), END) == []


def test_split_symbol_close_drops_by_the_ratio_on_the_ex_date_others_do_not(bars):
    closes = {s: dict(rows) for s, rows in _closes(bars).items()}
    previous = max(x for x in closes["DEMO-SPY"] if x < EX)
    for symbol in SYMBOLS:
        ratio = closes[symbol][EX] / closes[symbol][previous]
        if symbol == DEMO_SPLIT.symbol:
            assert Decimal("0.85") / RATIO < ratio < Decimal("1.15") / RATIO, ratio  # ~1/4, up to the day's move
        else:
            assert Decimal("0.85") < ratio < Decimal("1.15"), (symbol, ratio)
    # before the ex-date every bar of the split symbol is in pre-split units: 4x a cent price, a quarter of the volume
    for b in bars:
        if b.symbol == DEMO_SPLIT.symbol and b.date < EX:
            for price in (b.open, b.high, b.low, b.close):
                assert price % (RATIO * Decimal("0.01")) == 0, b
    nvda = [b for b in bars if b.symbol == DEMO_SPLIT.symbol]
    before = [b.volume for b in nvda if EX - timedelta(days=90) <= b.date < EX]
    after = [b.volume for b in nvda if EX <= b.date < EX + timedelta(days=90)]
    assert 0.15 < float(sum(before) / len(before) / (sum(after) / len(after))) < 0.4


def test_the_walk_is_unchanged_only_the_units_before_the_ex_date_are(bars):
    free = _split_free(bars)
    rows = [
        f"{b.symbol} {b.date} {b.open} {b.high} {b.low} {b.close} "
        f"{'-' if b.symbol == DEMO_SPLIT.symbol and b.date < EX else b.volume}"
        for b in free
    ]
    assert hashlib.sha256("\n".join(rows).encode()).hexdigest() == SPLIT_FREE_DIGEST
    # every other symbol's bars are untouched (the split-free view changes the split symbol's only)
    assert [b for b in bars if b.symbol != DEMO_SPLIT.symbol] == [b for b in free if b.symbol != DEMO_SPLIT.symbol]
    # a range that ends before the ex-date has the same (pre-split) bars: a bar's units depend on its date only
    short = synthetic_bars(START, EX - timedelta(days=1))
    assert short == [b for b in bars if b.date < EX]


def _held_signs(items, splits=SPLITS) -> list[tuple[str, frozenset]]:
    """After each day with orders: which symbols are held, long or short (``splits``: the market's)."""
    out: dict[str, frozenset] = {}
    for _, qty, o in _replay(items, splits):
        out[o["executed_at"][:10]] = frozenset((s, q > 0) for s, q in qty.items() if q)
    return sorted(out.items())


def test_bots_signals_read_adjusted_closes_so_the_split_changes_no_decision(every_bot, bars, monkeypatch):
    """The bots over the split-free market (the walk as drawn, no splits known) hold the same symbols,
    long or short, after every trading day; the bots that never trade the split symbol send exactly
    the same payloads. Unadjusted signals would see a -75 % crash (the mean-reversion bot, which
    checks that very Monday, would buy it; the momentum bot would rank it last for months and short it)."""
    monkeypatch.setattr(sample_bots_market, "synthetic_splits", lambda start, end: [])
    free = sample_bots(_split_free(bars))
    for (bot, items), (_, free_items) in zip(every_bot, free):
        assert _held_signs(items) == _held_signs(free_items, splits=()), bot.slug
        traded = {o["symbol"] for i in items if i["kind"] == "orders" for o in i["payload"]["orders"]}
        if DEMO_SPLIT.symbol not in traded:
            assert items == free_items, bot.slug


def _day_before(bars, day: date) -> date:
    return max(b.date for b in bars if b.symbol == "DEMO-SPY" and b.date < day)


def _holdings_at_end_of(items, day: date) -> dict[str, Decimal]:
    """The replayed holdings at the end of ``day`` (in that day's units)."""
    qty: dict[str, Decimal] = defaultdict(Decimal)
    done: set[Split] = set()
    for item in items:
        p = item["payload"]
        stamp = p["occurred_at"] if item["kind"] == "cash" else p["orders"][0]["executed_at"]
        if stamp[:10] > day.isoformat():
            break
        if item["kind"] == "orders":
            for o in item["payload"]["orders"]:
                _split_holdings(qty, done, o["executed_at"])
                qty[o["symbol"]] += d(o["quantity"]) if o["side"] == "buy" else -d(o["quantity"])
    _split_holdings(qty, done, day.isoformat())
    return {s: q for s, q in qty.items() if q}


@pytest.fixture(scope="module")
def tech(every_bot):
    bot, items = next((b, i) for b, i in every_bot if b.slug == "tech")
    return bot, items


def test_the_tech_bot_holds_the_split_symbol_through_the_ex_date(tech, bars):
    bot, items = tech
    assert "split" in bot.rules and "NVDA" in bot.rules
    orders = [o for i in items if i["kind"] == "orders" for o in i["payload"]["orders"]]
    symbol = DEMO_SPLIT.symbol
    assert not [o for o in orders if o["executed_at"][:10] == EX.isoformat()]  # no trade at all that day
    before = _holdings_at_end_of(items, _day_before(bars, EX))
    on = _holdings_at_end_of(items, EX)
    assert before[symbol] > 0 and on[symbol] == before[symbol] * RATIO
    # it bought before the split (pre-split units, pre-split prices) and trades it after (post-split ones)
    closes = {(b.symbol, b.date): b.close for b in bars}
    nvda = [o for o in orders if o["symbol"] == symbol]
    assert any(o["executed_at"][:10] < EX.isoformat() for o in nvda)
    after = [o for o in nvda if o["executed_at"][:10] > EX.isoformat()]
    assert after and all(d(o["price"]) == closes[(symbol, date.fromisoformat(o["executed_at"][:10]))] for o in nvda)
    # its next rebalance is a small adjustment of the converted holding, not a 3x top-up of an unconverted one
    assert d(after[0]["quantity"]) < Decimal("0.1") * on[symbol]


SID = uuid.UUID(int=7)


def _events(items):
    """The bot's payloads as the ledger stores them."""

    def at(stamp: str) -> datetime:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00"))

    out = []
    for item in items:
        p = item["payload"]
        if item["kind"] == "cash":
            out.append(
                CashRecorded(
                    CashEvent(
                        id=uuid.uuid4(),
                        strategy_id=SID,
                        event_type=p["event_type"],
                        amount=d(p["amount"]),
                        occurred_at=at(p["occurred_at"]),
                        external_id=p["external_id"],
                        related_symbol=p.get("related_symbol"),
                        note=p.get("note"),
                        created_at=at(p["occurred_at"]),
                    )
                )
            )
        else:
            for o in p["orders"]:
                out.append(
                    OrderRecorded(
                        Order(
                            id=uuid.uuid4(),
                            strategy_id=SID,
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
                    )
                )
    return out


def _fold(items, book: PriceBook, benchmark: str):
    events = _events(items)
    return derive(LedgerState(), events, book, benchmark, None, END, events[0].effective_at.date())


def test_folding_the_tech_bot_through_the_split_gives_a_nav_without_a_jump(tech, bars):
    bot, items = tech
    previous = _day_before(bars, EX)
    closes = {(b.symbol, b.date): b.close for b in bars}
    held = _holdings_at_end_of(items, EX)  # post-split units (no trade on the ex-date)

    def around(result):
        rows = {r.date: r for r in result.nav}
        return rows[previous], rows[EX]

    def market_move() -> Decimal:  # the positions' move over the day, from split-adjusted closes
        return sum(
            (
                q * (_adjusted(s, EX, closes[(s, EX)]) - _adjusted(s, previous, closes[(s, previous)]))
                for s, q in held.items()
            ),
            Decimal(0),
        )

    split = _fold(items, PriceBook(_closes(bars), synthetic_splits(START, END)), bot.benchmark)
    prev, ex = around(split)
    assert ex.cash == prev.cash and ex.external_flow == 0  # nothing happened on the ex-date but the split
    change = ex.total_equity - prev.total_equity
    assert abs(change - (ex.external_flow + market_move())) <= Decimal("0.01"), (change, market_move())
    assert abs(change) < Decimal("0.1") * prev.total_equity
    [action] = [a for a in split.actions if a.ex_date == EX]
    assert action.symbol == DEMO_SPLIT.symbol and (action.split_from, action.split_to) == (1, 4)
    assert action.quantity_before == _holdings_at_end_of(items, previous)[DEMO_SPLIT.symbol] > 0
    assert action.quantity_after == action.quantity_before * 4 == held[DEMO_SPLIT.symbol]
    # the ledger's positions at the end agree with the bot's own (converted) holdings
    assert {s: h.quantity for s, h in split.current.positions.items()} == _holdings_at_end_of(items, END)

    # control: the same orders over a price book that does not know the split see a crash that is none
    blind = _fold(items, PriceBook(_closes(bars)), bot.benchmark)
    prev_b, ex_b = around(blind)
    assert (prev_b.total_equity, prev_b.cash) == (prev.total_equity, prev.cash)  # identical up to the day before
    jump = ex_b.total_equity - prev_b.total_equity - market_move()
    assert jump < -Decimal("0.25") * prev_b.total_equity, jump
    assert not blind.actions


def test_every_bot_folds_to_its_own_holdings_and_cash_through_the_split(every_bot, bars):
    """The ledger (with the split) and each bot's own bookkeeping agree: every bot's orders fold to
    the holdings and cash its payloads imply, and no NAV row jumps by the split."""
    book = PriceBook(_closes(bars), synthetic_splits(START, END))
    previous = _day_before(bars, EX)
    for bot, items in every_bot:
        result = _fold(items, book, bot.benchmark)
        assert {s: h.quantity for s, h in result.current.positions.items()} == _holdings_at_end_of(items, END), bot.slug
        rows = {r.date: r for r in result.nav}
        if previous in rows and EX in rows:
            prev, ex = rows[previous], rows[EX]
            change = ex.total_equity - prev.total_equity - ex.external_flow
            assert abs(change) < Decimal("0.15") * prev.total_equity, bot.slug


def test_the_demo_writes_the_splits_next_to_the_bars(monkeypatch):
    """``run_demo`` writes the synthetic splits of its range with the bars' source and reports them."""
    written: dict[str, object] = {}

    class Prices:
        def write_bars(self, bars, source):
            written["bars"] = (len(bars), source)
            return len(bars)

        def write_splits(self, splits, source):
            written["splits"] = (list(splits), source)
            return len(splits)

        def closes_between(self, symbol, start, end):
            return []

        def record_currencies(self, currencies, source):
            return len(currencies)

    class Identity:
        def all_strategies(self):  # a first demo: none of its bots exists yet
            return []

        def create_strategy(self, name, **kwargs):
            return uuid.uuid4(), None

        def add_keys(self, strategy_id, labels):
            return [f"key-{label}" for label in labels]

        def describe(self, strategy_id, description, tags):  # each bot's profile
            assert description and tags

    class Db:
        prices, identity = Prices(), Identity()

    monkeypatch.setattr(
        demo_replay, "synthetic_bars", lambda start, end: synthetic_bars(start, min(end, date(2023, 7, 31)))
    )
    for module in (demo, demo_live):  # the sample bots' replay and the live bots' first run
        monkeypatch.setattr(module, "post", lambda api, payloads, keys: {"orders": 1, "cash_events": 1})
    out = demo.run_demo(Db(), "http://demo.invalid")
    assert written["splits"] == ([DEMO_SPLIT], source)
    assert written["bars"][1] == source
    assert out["prices"]["splits"] == [{"symbol": "DEMO-NVDA", "ex_date": EX.isoformat(), "ratio": "4:1"}]
