"""The demo's sample trading bots, over the synthetic market of ``synthetic.py``.

``sample_bot_orders`` replays a simple monthly momentum / short-term-reversal bot over
those bars and returns the API payloads it would send, in time order; ``SAMPLE_BOTS`` are the
demo's public bots (momentum, mean reversion, index buy-and-hold, crypto trend, low-risk
income, concentrated tech), each a deterministic function of the bars. They only go long and
never spend more cash than they hold (the momentum bot's small shorts excepted). Their signals
(momentum, look-backs, averages) read split-ADJUSTED closes, so a split is no crash to them; their
orders carry the day's unadjusted close and quantities in the day's share units, and their
holdings convert at the start of an ex-date exactly as the ledger does (quantity x to/from, no
cash in lieu). The concentrated tech bot holds DEMO-NVDA through the split without trading it
that day.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, localcontext
from typing import Any

from botranks_domain.bars import Bar, Split
from botranks_domain.ledger import BASIS_PLACES, LEDGER_CONTEXT, exponent
from botranks_domain.model import MAX_BATCH

from .synthetic import CENT, CRYPTO, DEMO_SPLIT, synthetic_splits

__all__ = ["sample_bot_orders", "SampleBot", "SAMPLE_BOTS", "sample_bots"]


# ---------------------------------------------------------------- the sample bots

INITIAL_DEPOSIT = Decimal(1_000_000)
WITHDRAWAL = Decimal(50_000)
FEE_RATE = Decimal("0.0005")
KO_DIVIDEND_PER_SHARE = Decimal("0.46")
XOM_DIVIDEND_PER_SHARE = Decimal("0.91")
SPY_DIVIDEND_YIELD = Decimal("0.0035")  # of the holding's value, each quarter
CASH_RATE = Decimal("0.04")  # a year, paid monthly on the cash balance (the low-risk bot)
_CORE = {"DEMO-SPY": Decimal("0.20"), "DEMO-KO": Decimal("0.10")}
_TACTICAL = ("DEMO-AAPL", "DEMO-MSFT", "DEMO-NVDA", "DEMO-XOM", "DEMO-BTC-USD")
_SHORTABLE = ("DEMO-AAPL", "DEMO-MSFT", "DEMO-NVDA", "DEMO-XOM")
_REVERSION = ("DEMO-AAPL", "DEMO-MSFT", "DEMO-NVDA", "DEMO-KO", "DEMO-XOM")
_BTC_CAP = Decimal("0.10")
_PICK_WEIGHT = Decimal("0.25")
_SHORT_WEIGHT = Decimal("-0.05")
_MIN_TRADE = Decimal("0.005")  # of equity: smaller adjustments are skipped


def _fee(notional: Decimal) -> Decimal:
    return max(CENT, (notional * FEE_RATE).quantize(CENT, ROUND_HALF_UP))


def _step(symbol: str) -> Decimal:
    return Decimal("0.0001") if symbol in CRYPTO else Decimal(1)


def _floor(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(ROUND_DOWN) * step


def _num(value: Decimal) -> int | float:
    """JSON-native number with the exact decimal text (ints stay ints)."""
    return int(value) if value == value.to_integral_value() else float(value)


def _ts(day: date, hhmm: str) -> str:
    return f"{day.isoformat()}T{hhmm}:00Z"


def _split_quantity(quantity: Decimal, split: Split) -> Decimal:
    """A holding after ``split``, exactly as the ledger converts it (``Ledger.apply_split``): quantity
    x to/from, at most 18 digits after the point; no cash in lieu."""
    with localcontext(LEDGER_CONTEXT):
        converted = quantity * split.split_to / split.split_from
        if exponent(converted) < -18:
            converted = converted.quantize(BASIS_PLACES)
    return converted


class _Market:
    """The bars as the bots see them: closes by day as traded (``closes``: what orders carry and
    holdings are marked at), split-adjusted closes (``adjusted``: what signals read), the splits of
    the bars' range, the US trading days, and look-backs (adjusted)."""

    def __init__(self, bars: list[Bar]) -> None:
        closes: dict[date, dict[str, Decimal]] = defaultdict(dict)
        for bar in bars:
            closes[bar.date][bar.symbol] = bar.close
        self.closes = dict(closes)
        self.days = sorted(closes)
        self.splits = synthetic_splits(self.days[0], self.days[-1]) if self.days else []

        def adjust(symbol: str, day: date, close: Decimal) -> Decimal:
            for sp in self.splits:
                if sp.symbol == symbol and sp.ex_date > day:
                    close = close * sp.split_from / sp.split_to
            return close

        self.adjusted = {day: {s: adjust(s, day, c) for s, c in row.items()} for day, row in self.closes.items()}
        self.trading_days = [d for d in self.days if "DEMO-SPY" in closes[d]] or self.days
        self.index_of = {d: i for i, d in enumerate(self.trading_days)}
        self.history: dict[str, list[tuple[date, Decimal]]] = defaultdict(list)
        for day in self.days:
            for symbol, close in self.adjusted[day].items():
                self.history[symbol].append((day, close))
        self.position_of = {(s, d): i for s, rows in self.history.items() for i, (d, _) in enumerate(rows)}

    def splits_between(self, after: date | None, until: date) -> list[Split]:
        """The splits with ex-date in (``after``, ``until``], oldest first."""
        return [sp for sp in self.splits if (after is None or sp.ex_date > after) and sp.ex_date <= until]

    def month_starts(self) -> set[date]:
        """The first US trading day of each month."""
        t = self.trading_days
        return {d for i, d in enumerate(t) if i == 0 or (d.year, d.month) != (t[i - 1].year, t[i - 1].month)}

    def quarter_days(self) -> set[date]:
        """The first US trading day on or after the 15th of March, June, September and December."""
        seen: set[tuple[int, int]] = set()
        out: set[date] = set()
        for d in self.trading_days:
            if d.month in (3, 6, 9, 12) and d.day >= 15 and (d.year, d.month) not in seen:
                seen.add((d.year, d.month))
                out.add(d)
        return out

    def lookback(self, symbol: str, day: date, n: int) -> list[float] | None:
        """The last ``n`` + 1 split-adjusted closes of ``symbol`` up to ``day`` (its own calendar), or None."""
        i = self.position_of.get((symbol, day))
        if i is None or i < n:
            return None
        return [float(c) for _, c in self.history[symbol][i - n : i + 1]]


class _Bot:
    """A cash account that trades at the day's close and records what it would send to the API.
    Its quantities are in the share units of the day it has reached (``as_of``)."""

    def __init__(self, market: _Market, slug: str, label: str) -> None:
        self.market = market
        self.slug, self.label = slug, label
        self.cash = Decimal(0)
        self.qty: dict[str, Decimal] = defaultdict(Decimal)
        self.last: dict[str, Decimal] = {}
        self.as_of: date | None = None
        self.counter = 0
        self.items: list[dict[str, Any]] = []

    def begin_day(self, day: date) -> None:
        """Start ``day``: the splits with ex-date since the last day convert the holdings (and the
        last known closes) to the day's units, as the ledger does at the start of an ex-date;
        then the day's closes are known."""
        for split in self.market.splits_between(self.as_of, day):
            if self.qty.get(split.symbol):
                self.qty[split.symbol] = _split_quantity(self.qty[split.symbol], split)
            if split.symbol in self.last:
                self.last[split.symbol] = self.last[split.symbol] * split.split_from / split.split_to
        self.as_of = day
        self.last.update(self.market.closes[day])

    def next_id(self) -> str:
        self.counter += 1
        return f"{self.slug}-{self.counter:06d}"

    def cash_event(
        self, day: date, hhmm: str, event_type: str, amount: Decimal, note: str, related_symbol: str | None = None
    ) -> None:
        self.cash += amount
        payload: dict[str, Any] = {
            "event_type": event_type,
            "amount": _num(amount),
            "occurred_at": _ts(day, hhmm),
            "external_id": self.next_id(),
            "note": note,
        }
        if related_symbol:
            payload["related_symbol"] = related_symbol
        self.items.append({"kind": "cash", "payload": payload})

    def equity(self) -> Decimal:
        return self.cash + sum((q * self.last[s] for s, q in self.qty.items() if q), Decimal(0))

    def dividend(self, day: date, symbol: str, per_share: Decimal) -> None:
        if self.qty[symbol] > 0:
            amount = (self.qty[symbol] * per_share).quantize(CENT, ROUND_HALF_UP)
            if amount > 0:
                self.cash_event(day, "12:00", "dividend", amount, f"{symbol} quarterly dividend", symbol)

    def rebalance(
        self, day: date, weights: dict[str, Decimal], reserve: Decimal = Decimal(0), min_trade: Decimal = _MIN_TRADE
    ) -> None:
        """Trade towards ``weights`` (of equity less ``reserve``) at the day's closes: sells first,
        then covers, then buys, never spending more cash than there is. Adjustments smaller than
        ``min_trade`` of equity are skipped (opening or closing a position never is)."""
        prices = self.market.closes[day]
        equity = self.equity()
        investable = equity - reserve
        target: dict[str, Decimal] = {}
        for symbol in sorted(set(weights) | {s for s, q in self.qty.items() if q}):
            if symbol not in prices:
                continue  # no bar today: leave it alone
            w = weights.get(symbol, Decimal(0))
            raw = _floor(abs(w) * investable / prices[symbol], _step(symbol))
            target[symbol] = raw if w >= 0 else -raw
        small = min_trade * equity
        orders: list[dict[str, Any]] = []

        def trade(symbol: str, side: str, quantity: Decimal, reason: str) -> None:
            if quantity <= 0:
                return
            price = prices[symbol]
            notional = quantity * price
            fee = _fee(notional)
            self.cash += notional - fee if side == "sell" else -(notional + fee)
            self.qty[symbol] += quantity if side == "buy" else -quantity
            orders.append(
                {
                    "symbol": symbol,
                    "side": side,
                    "quantity": _num(quantity),
                    "price": _num(price),
                    "fees": _num(fee),
                    "order_type": "market",
                    "status": "filled",
                    "executed_at": _ts(day, "20:00"),
                    "external_order_id": self.next_id(),
                    "details": {"bot": self.label, "reason": reason},
                }
            )

        for symbol, want in target.items():
            have = self.qty[symbol]
            if want >= have:
                continue
            if have > 0 and want < 0:
                trade(symbol, "sell", have, "close long")
                trade(symbol, "sell", -want, "open short")
            elif want == 0 or want < 0 or (have - want) * prices[symbol] >= small:
                trade(symbol, "sell", have - want, "open short" if have <= 0 else "rebalance")

        def affordable(symbol: str, wanted: Decimal) -> Decimal:
            price, step = prices[symbol], _step(symbol)
            budget = self.cash - reserve
            q = min(wanted, _floor(budget / (price * (1 + FEE_RATE)), step))
            while q > 0 and q * price + _fee(q * price) > budget:
                q -= step
            return max(q, Decimal(0))

        for symbol, want in target.items():
            have = self.qty[symbol]
            if have < 0 and want > have:
                trade(symbol, "buy", affordable(symbol, min(-have, want - have)), "cover short")
        for symbol, want in target.items():
            have = self.qty[symbol]
            if want > have >= 0 and ((want - have) * prices[symbol] >= small or have == 0):
                trade(symbol, "buy", affordable(symbol, want - have), "rebalance")
        for start in range(0, len(orders), MAX_BATCH):
            self.items.append({"kind": "orders", "payload": {"orders": orders[start : start + MAX_BATCH]}})


def _start(market: _Market, first: date | None) -> date | None:
    """The bot's first day: the first US trading day on or after ``first`` (or of the bars)."""
    return next((d for d in market.trading_days if first is None or d >= first), None)


# ---- the momentum bot (the demo's first one)


def _momentum_score(market: _Market, symbol: str, index: int) -> float | None:
    """3-month momentum minus half the 1-month return (short-term reversal), on split-adjusted closes."""
    if index < 21:
        return None
    days = market.trading_days
    then, month, now = (market.adjusted[days[j]].get(symbol) for j in (max(0, index - 63), index - 21, index))
    if then is None or month is None or now is None:
        return None
    c63, c21, c0 = float(then), float(month), float(now)
    return (c0 / c63 - 1) - 0.5 * (c0 / c21 - 1)


def _momentum_targets(market: _Market, index: int, short_allowed: bool) -> dict[str, Decimal]:
    present = market.closes[market.trading_days[index]]
    weights = {s: w for s, w in _CORE.items() if s in present}
    tactical = [s for s in _TACTICAL if s in present]
    known = {s: _momentum_score(market, s, index) for s in tactical}
    scores = {s: v for s, v in known.items() if v is not None}
    if len(scores) < len(known):  # a symbol without enough history yet
        for s in tactical:
            weights[s] = Decimal("0.10")
        return weights
    ranked = sorted(tactical, key=lambda s: (-scores[s], s))
    picks = [s for s in ranked[:2] if scores[s] > 0]
    for s in picks:
        weights[s] = min(_PICK_WEIGHT, _BTC_CAP) if s in CRYPTO else _PICK_WEIGHT
    if short_allowed:
        candidates = [s for s in reversed(ranked) if s in _SHORTABLE and s not in picks]
        if candidates:
            weights[candidates[0]] = _SHORT_WEIGHT
    return weights


def sample_bot_orders(bars: list[Bar]) -> list[dict[str, Any]]:
    """Payloads the demo's momentum bot would send over ``bars``, in time order.

    Each item is ``{"kind": "cash", "payload": <cash event>}`` or
    ``{"kind": "orders", "payload": {"orders": [...]}}`` (at most 500 orders). The bot deposits
    1,000,000 on the first day, rebalances monthly (core SPY/KO, the two best of AAPL, MSFT,
    NVDA, XOM, BTC-USD by momentum minus short-term reversal, now and then a small short in the
    weakest stock, covered at the next rebalance), receives a KO dividend each quarter while
    holding it and withdraws 50,000 mid-way. Fills at the day's close at 20:00:00Z, fees 5 bp.
    """
    market = _Market(bars)
    if not market.days:
        return []
    bot = _Bot(market, "demo", "demo-momentum")
    days = market.trading_days
    rebalance_idx = sorted(market.index_of[d] for d in market.month_starts())
    withdraw_idx = len(days) // 2 if len(days) >= 2 else None
    if withdraw_idx is not None and withdraw_idx not in rebalance_idx:
        rebalance_idx = sorted([*rebalance_idx, withdraw_idx])
    # a short is opened at every 6th rebalance (from the 4th) that has a later one to cover it
    short_at = {idx for k, idx in enumerate(rebalance_idx) if k % 6 == 3 and k < len(rebalance_idx) - 1}
    dividend_days = market.quarter_days()
    rebalance_set = set(rebalance_idx)

    for n, day in enumerate(market.days):
        bot.begin_day(day)
        if day in dividend_days:
            bot.dividend(day, "DEMO-KO", KO_DIVIDEND_PER_SHARE)
        if n == 0:
            bot.cash_event(day, "13:30", "deposit", INITIAL_DEPOSIT, "initial deposit")
        i = market.index_of.get(day)
        if i is not None and i in rebalance_set:
            withdraw = i == withdraw_idx
            bot.rebalance(
                day,
                _momentum_targets(market, i, short_allowed=i in short_at),
                reserve=WITHDRAWAL if withdraw else Decimal(0),
            )
            if withdraw:
                bot.cash_event(day, "20:30", "withdraw", -WITHDRAWAL, "demo withdrawal")
    return bot.items


# ---- the other sample bots


def _run(
    market: _Market, slug: str, first: date | None, deposit: Decimal, on_day: Callable[[_Bot, date, int | None], None]
) -> list[dict[str, Any]]:
    """Walk every day of the market from the bot's first day: splits applied and closes known,
    the deposit on the first day, then ``on_day(bot, day, trading index or None)``."""
    start = _start(market, first)
    if start is None:
        return []
    bot = _Bot(market, slug, f"demo-{slug}")
    for day in market.days:
        if day < start:
            continue
        bot.begin_day(day)
        if day == start:
            bot.cash_event(day, "13:30", "deposit", deposit, "initial deposit")
        on_day(bot, day, market.index_of.get(day))
    return bot.items


def mean_reversion_orders(bars: list[Bar]) -> list[dict[str, Any]]:
    """Every other Monday (the first trading day of every second ISO week) from July 2022: buy
    the two of AAPL, MSFT, NVDA, KO, XOM that fell most over the last 10 trading days (by more
    than 2 %), 45 % of equity each; otherwise hold cash. 300,000 deposited."""
    market = _Market(bars)
    weeks: dict[tuple[int, int], date] = {}
    for d in market.trading_days:
        weeks.setdefault(d.isocalendar()[:2], d)
    checks = {d for d in weeks.values() if d.isocalendar()[1] % 2 == 0}

    def on_day(bot: _Bot, day: date, index: int | None) -> None:
        if day not in checks:
            return
        moves = {}
        for s in _REVERSION:
            closes = market.lookback(s, day, 10)
            if closes is not None:
                moves[s] = closes[-1] / closes[0] - 1
        losers = sorted((m, s) for s, m in moves.items() if m < -0.02)[:2]
        bot.rebalance(day, {s: Decimal("0.45") for _, s in losers})

    return _run(market, "meanrev", date(2022, 7, 1), Decimal(300_000), on_day)


def index_orders(bars: list[Bar]) -> list[dict[str, Any]]:
    """Buy and hold the index: all of 250,000 into SPY on the first day, the quarterly dividend
    (0.35 % of the holding) reinvested the same day."""
    market = _Market(bars)
    quarters = market.quarter_days()

    def on_day(bot: _Bot, day: date, index: int | None) -> None:
        if index is None:
            return
        if day in quarters and bot.qty["DEMO-SPY"] > 0:
            per_share = (market.closes[day]["DEMO-SPY"] * SPY_DIVIDEND_YIELD).quantize(CENT, ROUND_HALF_UP)
            bot.dividend(day, "DEMO-SPY", per_share)
        if bot.qty["DEMO-SPY"] == 0 or day in quarters:
            # buy with the cash there is (never sell): the holding's weight plus 99.5 % of the cash
            held = bot.qty["DEMO-SPY"] * market.closes[day]["DEMO-SPY"]
            weight = (held + bot.cash * Decimal("0.995")) / bot.equity()
            bot.rebalance(day, {"DEMO-SPY": weight}, min_trade=Decimal(0))

    return _run(market, "index", None, Decimal(250_000), on_day)


def crypto_trend_orders(bars: list[Bar]) -> list[dict[str, Any]]:
    """Volatile: every Friday, 95 % in BTC when its close is above its 30-day average, else all
    cash (drift under 10 % of equity is left alone). 100,000 deposited in March 2022."""
    market = _Market(bars)

    def on_day(bot: _Bot, day: date, index: int | None) -> None:
        if day.weekday() != 4 or "DEMO-BTC-USD" not in market.closes[day]:
            return
        closes = market.lookback("DEMO-BTC-USD", day, 29)
        if closes is None:
            return
        above = closes[-1] > sum(closes) / len(closes)
        bot.rebalance(day, {"DEMO-BTC-USD": Decimal("0.95")} if above else {}, min_trade=Decimal("0.10"))

    return _run(market, "crypto", date(2022, 3, 1), Decimal(100_000), on_day)


def income_orders(bars: list[Bar]) -> list[dict[str, Any]]:
    """Low risk: 25 % KO, 15 % XOM, 10 % SPY, the rest in cash earning 4 % a year (paid monthly);
    rebalanced each quarter, KO and XOM dividends kept as cash. 500,000 deposited."""
    market = _Market(bars)
    quarters, months = market.quarter_days(), market.month_starts()
    weights = {"DEMO-KO": Decimal("0.25"), "DEMO-XOM": Decimal("0.15"), "DEMO-SPY": Decimal("0.10")}
    started: list[date] = []

    def on_day(bot: _Bot, day: date, index: int | None) -> None:
        if index is None:
            return
        if day in quarters:
            bot.dividend(day, "DEMO-KO", KO_DIVIDEND_PER_SHARE)
            bot.dividend(day, "DEMO-XOM", XOM_DIVIDEND_PER_SHARE)
        if day in months and started and bot.cash > 0:
            interest = (bot.cash * CASH_RATE / 12).quantize(CENT, ROUND_HALF_UP)
            if interest > 0:
                bot.cash_event(day, "12:30", "interest", interest, "interest on cash")
        if not started or day in quarters:
            started.append(day)
            bot.rebalance(day, weights)

    return _run(market, "income", None, Decimal(500_000), on_day)


def tech_orders(bars: list[Bar]) -> list[dict[str, Any]]:
    """High risk, concentrated: fully invested in NVDA 60 %, AAPL 25 %, MSFT 14 %, rebalanced
    monthly (first trading day of the month), from January 2023. 200,000 deposited. It holds
    NVDA through its 4-for-1 split (``DEMO_SPLIT``, mid-June 2023): no trade on the ex-date, the
    holding becomes 4x the shares, and the next rebalance trades in post-split units."""
    market = _Market(bars)
    months = market.month_starts()
    weights = {"DEMO-NVDA": Decimal("0.60"), "DEMO-AAPL": Decimal("0.25"), "DEMO-MSFT": Decimal("0.14")}
    started: list[date] = []

    def on_day(bot: _Bot, day: date, index: int | None) -> None:
        if index is not None and (not started or day in months):
            started.append(day)
            bot.rebalance(day, weights)

    return _run(market, "tech", date(2023, 1, 3), Decimal(200_000), on_day)


@dataclass(frozen=True)
class SampleBot:
    """A public demo bot: its name says "(demo)" (short enough for a leaderboard row), its benchmark
    and every symbol it trades are synthetic ``DEMO-`` ones."""

    slug: str
    name: str
    benchmark: str
    risk: str
    rules: str
    orders: Callable[[list[Bar]], list[dict[str, Any]]]
    #: what its public page shows of its positions and orders (none, delayed, live)
    show_positions: str = "none"


SAMPLE_BOTS: tuple[SampleBot, ...] = (
    SampleBot(
        "momentum",
        "Momentum rotation (demo)",
        "DEMO-SPY",
        "medium",
        "monthly: SPY/KO core, the two strongest of AAPL, MSFT, NVDA, XOM, BTC; a small short now and then",
        sample_bot_orders,
        show_positions="live",
    ),
    SampleBot(
        "meanrev",
        "Mean reversion (demo)",
        "DEMO-SPY",
        "medium",
        "every other week: the two biggest 10-day losers among five stocks, else cash",
        mean_reversion_orders,
    ),
    SampleBot(
        "index",
        "Index buy & hold (demo)",
        "DEMO-SPY",
        "medium",
        "all in SPY on day one, dividends reinvested",
        index_orders,
        show_positions="delayed",
    ),
    SampleBot(
        "crypto",
        "Crypto trend (demo)",
        "DEMO-BTC-USD",
        "high",
        "weekly: 95 % BTC above its 30-day average, else cash",
        crypto_trend_orders,
    ),
    SampleBot(
        "income",
        "Dividend income (demo)",
        "DEMO-SPY",
        "low",
        "50 % KO/XOM/SPY rebalanced quarterly, the rest in cash earning 4 %",
        income_orders,
    ),
    SampleBot(
        "tech",
        "Concentrated tech (demo)",
        "DEMO-SPY",
        "high",
        "fully invested in NVDA, AAPL and MSFT from 2023, rebalanced monthly;"
        f" holds NVDA through its {DEMO_SPLIT.ratio.replace(':', '-for-')} split"
        f" of {DEMO_SPLIT.ex_date.isoformat()}",
        tech_orders,
        show_positions="live",
    ),
)


def sample_bots(bars: list[Bar]) -> list[tuple[SampleBot, list[dict[str, Any]]]]:
    """Every sample bot with the payloads it would send over ``bars``."""
    return [(bot, bot.orders(bars)) for bot in SAMPLE_BOTS]
