"""The trade record (issue 22) against an independent fold written from the issue's semantics.

``Reference`` below was written from the issue text and the decisions it leaves open (fee split
of a crossing fill, basis rounding, snapshot resets, splits), not from ``trades.py``: two
implementations of one spec, compared trade by trade, exactly.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Context, localcontext
from decimal import Decimal as D

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from botranks_domain.bars import Split
from botranks_domain.ledger import Ledger
from botranks_domain.model import Order, OrderRecorded, PositionsSnapshot, PositionsSnapshotted, SnapshotPosition
from botranks_domain.nav import LedgerState, PriceBook, decode_state, derive, encode_state
from botranks_domain.trades import ClosedTrade

from .test_ledger import SID, mk_cash

CONTEXT = Context(prec=100, rounding=ROUND_HALF_EVEN)
Q18 = D("1e-18")
Q10 = D("1e-10")


# ---------------------------------------------------------------- the reference fold


@dataclass
class RefTrade:
    symbol: str
    long: bool
    opened_at: datetime
    quantity: D  # open size, absolute
    max_quantity: D
    entry_value: D
    entry_quantity: D
    exit_value: D = D(0)
    exit_quantity: D = D(0)
    fees: D = D(0)
    gross: D = D(0)  # what its reducing parts realized
    fills: int = 0
    notional: D = D(0)
    status: str = "open"
    closed_at: datetime | None = None


def _scaled(q: D, split_from: D, split_to: D) -> D:
    """``q`` in the new units: exact, or to 18 places when it does not terminate there."""
    v = q * split_to / split_from
    return v.quantize(Q18) if v.as_tuple().exponent < -18 else v  # type: ignore[operator]


def _r10(state: tuple[D, D | None]) -> tuple[D, D | None]:
    q, basis = state
    return q.quantize(Q10), None if basis is None else basis.quantize(Q10)


@dataclass
class Reference:
    """Positions (signed quantity, average basis) and the trades they make, per symbol."""

    positions: dict[str, tuple[D, D]] = field(default_factory=dict)
    open: dict[str, RefTrade] = field(default_factory=dict)
    #: (index of the event that ended it, trade)
    ended: list[tuple[int, RefTrade]] = field(default_factory=list)

    def fill(self, i: int, o: Order) -> None:
        if o.status not in ("filled", "partial"):
            return
        with localcontext(CONTEXT):
            self._fill(i, o)

    def _fill(self, i: int, o: Order) -> None:
        sym, price, qty, at = o.symbol, o.price, o.quantity, o.executed_at
        buy = o.side == "buy"
        rest, fees = qty, o.fees
        q, basis = self.positions.get(sym, (D(0), D(0)))
        if q != 0 and (q > 0) != buy:  # reducing (and maybe crossing zero)
            t = self.open[sym]
            c = min(qty, abs(q))
            fc = fees if c == qty else (fees * c / qty).quantize(Q18)
            t.gross += (price - basis) * c if q > 0 else (basis - price) * c
            t.exit_value += c * price
            t.exit_quantity += c
            t.fees += fc
            t.fills += 1
            t.notional += c * price
            t.quantity -= c
            q = q - c if q > 0 else q + c
            if q == 0:
                t.status, t.closed_at = "closed", at
                self.ended.append((i, self.open.pop(sym)))
                del self.positions[sym]
            else:
                self.positions[sym] = (q, basis)
            rest, fees = qty - c, fees - fc
            if rest == 0:
                return
        if q == 0:
            self.open[sym] = RefTrade(sym, buy, at, rest, rest, rest * price, rest, fees=fees, fills=1)
            self.open[sym].notional = rest * price
            self.positions[sym] = (rest if buy else -rest, price)
            return
        t = self.open[sym]
        t.quantity += rest
        t.max_quantity = max(t.max_quantity, t.quantity)
        t.entry_value += rest * price
        t.entry_quantity += rest
        t.fees += fees
        t.fills += 1
        t.notional += rest * price
        new_basis = ((abs(q) * basis + rest * price) / (abs(q) + rest)).quantize(Q18)
        self.positions[sym] = (q + rest if buy else q - rest, new_basis)

    def snapshot(self, i: int, s: PositionsSnapshot) -> None:
        with localcontext(CONTEXT):
            new = {p.symbol: (p.quantity, p.cost_basis) for p in s.positions}
            for sym in sorted(set(self.positions) | set(new)):
                before = self.positions.get(sym, (D(0), None))
                after = new.get(sym, (D(0), None))
                if _r10(before) == _r10(after):
                    continue
                if sym in self.open:
                    t = self.open.pop(sym)
                    t.status, t.closed_at = "reset", s.taken_at
                    self.ended.append((i, t))
                q, basis = after
                if q != 0:
                    assert basis is not None
                    self.open[sym] = RefTrade(sym, q > 0, s.taken_at, abs(q), abs(q), abs(q) * basis, abs(q))
            self.positions = {sym: (q, b) for sym, (q, b) in new.items() if q != 0}

    def split(self, sym: str, split_from: D, split_to: D) -> None:
        if sym not in self.positions:
            return
        with localcontext(CONTEXT):
            q, basis = self.positions[sym]
            self.positions[sym] = (_scaled(q, split_from, split_to), (basis * split_from / split_to).quantize(Q18))
            t = self.open[sym]
            for name in ("quantity", "max_quantity", "entry_quantity", "exit_quantity"):
                setattr(t, name, _scaled(getattr(t, name), split_from, split_to))


# ---------------------------------------------------------------- events, and both folds over them

SYMBOLS = ["AAA", "BBB", "CCC"]
DAY0 = date(2024, 1, 1)
#: event days 15 apart, so that derive's checkpoints (28 days apart) fall mid-stream
DAYS = [DAY0 + timedelta(days=15 * k) for k in range(6)]
UNTIL = DAYS[-1] + timedelta(days=1)
ARRIVAL0 = datetime(2024, 6, 1, tzinfo=UTC)


def at(day: date, hour: int = 12) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


def order(side, qty, price, fees="0", symbol="AAA", status="filled", when=None, arrival=0):
    when = when or at(DAY0)
    return OrderRecorded(
        Order(
            id=uuid.uuid4(),
            strategy_id=SID,
            symbol=symbol,
            side=side,
            quantity=D(str(qty)),
            price=D(str(price)),
            fees=D(str(fees)),
            order_type="market",
            status=status,
            executed_at=when,
            created_at=ARRIVAL0 + timedelta(seconds=arrival),
            external_order_id=None,
            details=None,
        )
    )


def snapshot(positions, when, arrival=0):
    return PositionsSnapshotted(
        PositionsSnapshot(
            id=uuid.uuid4(),
            strategy_id=SID,
            positions=[SnapshotPosition(s, D(str(q)), D(str(b))) for s, q, b in positions],
            log_deltas=False,
            taken_at=when,
            created_at=ARRIVAL0 + timedelta(seconds=arrival),
        )
    )


def ledger_order(events):
    return sorted(events, key=lambda e: (e.effective_at, e.arrived_at))


def run_reference(events, splits: list[Split]) -> Reference:
    ref, due = Reference(), sorted(splits, key=lambda sp: sp.ex_date)
    for i, e in enumerate(events):
        while due and due[0].ex_date <= e.effective_at.date():
            sp = due.pop(0)
            ref.split(sp.symbol, sp.split_from, sp.split_to)
        if isinstance(e, OrderRecorded):
            ref.fill(i, e.order)
        elif isinstance(e, PositionsSnapshotted):
            ref.snapshot(i, e.snapshot)
    for sp in due:
        ref.split(sp.symbol, sp.split_from, sp.split_to)
    return ref


def run_ledger(events, splits: list[Split]) -> tuple[Ledger, list[tuple[int, ClosedTrade]]]:
    """Production's fold, one event at a time: which event ended which trades."""
    ledger, due = Ledger(), sorted(splits, key=lambda sp: sp.ex_date)
    ended: list[tuple[int, ClosedTrade]] = []
    for i, e in enumerate(events):
        while due and due[0].ex_date <= e.effective_at.date():
            sp = due.pop(0)
            ledger.apply_split(sp.symbol, sp.ex_date, sp.split_from, sp.split_to)
        seen = len(ledger.trades.ended)
        ledger.apply(e)
        ended += sorted(((i, c) for c in ledger.trades.ended[seen:]), key=lambda x: x[1].trade.symbol)
    for sp in due:
        ledger.apply_split(sp.symbol, sp.ex_date, sp.split_from, sp.split_to)
    return ledger, ended


def row(t, status: str, closed_at: datetime | None) -> tuple:
    """Every field a trade is published from (the realized P&L is gross - fees)."""
    return (
        t.symbol,
        "long" if t.long else "short",
        status,
        t.opened_at,
        closed_at,
        t.quantity,
        t.max_quantity,
        t.entry_value,
        t.entry_quantity,
        t.exit_value,
        t.exit_quantity,
        t.fees,
        t.gross,
        t.gross - t.fees,
        t.fills,
        t.notional,
    )


def reference_rows(ref: Reference) -> tuple[list, dict]:
    ended = [(i, row(t, t.status, t.closed_at)) for i, t in ref.ended]
    return ended, {s: row(t, "open", None) for s, t in ref.open.items()}


def production_rows(ended, open_trades) -> tuple[list, dict]:
    return (
        [(i, row(c.trade, c.status, c.closed_at)) for i, c in ended],
        {s: row(t, "open", None) for s, t in open_trades.items()},
    )


def closed_rows(ended) -> list:
    return [row(c.trade, c.status, c.closed_at) for c in ended]


# ---------------------------------------------------------------- random streams

quantities = st.sampled_from([1, 1, 2, 3, 3, 4, 5, 6, 8, 10, 12, D("0.5"), D("2.25"), D("0.001")])
prices = st.integers(100, 20000).map(lambda c: D(c) / 100)
fee_amounts = st.sampled_from(["0", "0", "1.00", "0.01", "0.10", "0.07", "2.5", "1.000000000000000001"])
statuses = st.sampled_from(["filled"] * 6 + ["partial"] * 2 + ["pending", "cancelled"])
times = st.builds(at, st.sampled_from(DAYS), st.sampled_from([0, 9, 12, 12, 15, 23]))
RATIOS = [(1, 2), (2, 1), (1, 3), (3, 1), (3, 2), (7, 1), (2, 3), (5, 2), (1, 10)]
SNAP_ACTIONS = ["keep", "keep", "keep10", "drop", "quantity", "basis"]


@st.composite
def streams(draw):
    """(events in the ledger's order, splits, a cut): orders, cash, snapshots, shuffled arrival."""
    drafts = []  # (when, arrival, kind, payload); arrival is the draw order, effective time is random
    for arrival in range(draw(st.integers(1, 30))):
        when, kind = draw(times), draw(st.sampled_from(["order"] * 10 + ["snapshot", "cash"]))
        if kind == "order":
            args = (draw(st.sampled_from(["buy", "sell"])), draw(quantities), draw(prices), draw(fee_amounts))
            payload = (*args, draw(st.sampled_from(SYMBOLS)), draw(statuses))
        elif kind == "snapshot":
            payload = [(s, draw(st.sampled_from(SNAP_ACTIONS)), draw(quantities), draw(prices)) for s in SYMBOLS]
            payload = [(s, a, -q if draw(st.booleans()) else q, p) for s, a, q, p in payload]
        else:
            payload = draw(prices)
        drafts.append((when, arrival, kind, payload))
    splits = []
    if draw(st.integers(0, 3)):
        f, t = draw(st.sampled_from(RATIOS))
        day = draw(st.sampled_from(DAYS[1:] + [DAYS[1] - timedelta(days=3)]))
        splits.append(Split(draw(st.sampled_from(SYMBOLS)), day, D(f), D(t)))
    # snapshots say what they keep from the state at their time: build them in the ledger's order
    events, ref, due = [], Reference(), list(splits)
    for when, arrival, kind, payload in sorted(drafts, key=lambda d: (d[0], d[1])):
        for sp in [sp for sp in due if sp.ex_date <= when.date()]:
            due.remove(sp)
            ref.split(sp.symbol, sp.split_from, sp.split_to)
        if kind == "order":
            side, qty, price, fees, symbol, status = payload
            e = order(side, qty, price, fees, symbol, status, when, arrival)
            ref.fill(len(events), e.order)
        elif kind == "snapshot":
            positions = []
            for s, action, q, p in payload:
                held = ref.positions.get(s)
                if action in ("keep", "keep10") and held:
                    positions.append((s, held[0], held[1] if action == "keep" else held[1].quantize(Q10)))
                elif action == "quantity" or (action == "basis" and not held):
                    positions.append((s, q, p))
                elif action == "basis" and held:
                    positions.append((s, held[0], p))
            e = snapshot(positions, when, arrival)
            ref.snapshot(len(events), e.snapshot)
        else:
            e = mk_cash("deposit", payload, when)
            e.cash.created_at = ARRIVAL0 + timedelta(seconds=arrival)
        events.append(e)
    return events, splits, draw(st.integers(0, len(events)))


def derive_all(start, events, splits):
    return derive(start, events, PriceBook({}, splits), None, None, UNTIL, None)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_every_trade_equals_the_independent_fold(stream):
    events, splits, _ = stream
    assert events == ledger_order(events)
    ref = run_reference(events, splits)
    ledger, ended = run_ledger(events, splits)
    assert production_rows(ended, ledger.trades.open) == reference_rows(ref)
    assert {s: h.quantity for s, h in ledger.positions.items()} == {s: q for s, (q, _) in ref.positions.items()}
    assert {s: h.cost_basis for s, h in ledger.positions.items()} == {s: b for s, (_, b) in ref.positions.items()}
    # one derivation, the same trades as the ledger's fold
    whole = derive_all(LedgerState(), events, splits)
    assert whole.current is not None
    assert closed_rows(whole.ended) == closed_rows(ledger.trades.ended)
    assert production_rows([], whole.current.trades.open)[1] == reference_rows(ref)[1]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_resuming_a_derivation_gives_the_trades_of_one_fold(stream):
    events, splits, cut = stream
    whole = derive_all(LedgerState(), events, splits)
    assert whole.current is not None and whole.final is not None
    expected_open = production_rows([], whole.current.trades.open)[1]
    # the first part, then the rest from its final state (as the read model stores it)
    first = derive_all(LedgerState(), events[:cut], splits)
    assert first.final is not None
    rest = derive_all(decode_state(encode_state(first.final)), events[cut:], splits)
    assert rest.current is not None
    assert closed_rows(first.ended) + closed_rows(rest.ended) == closed_rows(whole.ended)
    assert production_rows([], rest.current.trades.open)[1] == expected_open
    # from each checkpoint of the whole derivation: the events after its day
    for day, state in whole.checkpoints:
        before = [e for e in events if e.effective_at.date() <= day]
        after = [e for e in events if e.effective_at.date() > day]
        head = derive_all(LedgerState(), before, splits)
        tail = derive_all(decode_state(encode_state(state)), after, splits)
        assert tail.current is not None
        assert closed_rows(head.ended) + closed_rows(tail.ended) == closed_rows(whole.ended)
        assert production_rows([], tail.current.trades.open)[1] == expected_open


# ---------------------------------------------------------------- hand-worked cases


def both(events, splits=()):
    """(ended rows, open rows) from the reference and from production, which must agree."""
    events = ledger_order(events)
    ref = reference_rows(run_reference(events, list(splits)))
    ledger, ended = run_ledger(events, list(splits))
    prod = production_rows(ended, ledger.trades.open)
    assert prod == ref
    return [r for _, r in prod[0]], prod[1]


T = [at(DAY0, h) for h in range(24)]


def test_a_long_round_trip_with_two_entries_and_two_exits():
    ended, open_ = both(
        [
            order("buy", 10, 100, "1", when=T[1]),
            order("buy", 10, 110, "1", when=T[2]),
            order("sell", 5, 120, "1", when=T[3]),
            order("sell", 15, 90, "2", when=T[4]),
        ]
    )
    # basis 105: (120 - 105) x 5 + (90 - 105) x 15 = -150, fees 5
    assert ended == [
        ("AAA", "long", "closed", T[1], T[4], 0, 20, 2100, 20, 1950, 20, 5, -150, -155, 4, 4050),
    ]
    assert open_ == {}


def test_a_short_covered_in_two_fills():
    ended, open_ = both(
        [
            order("sell", 10, 50, "0.5", when=T[1]),
            order("buy", 4, 45, when=T[2]),
            order("buy", 6, 55, "0.5", when=T[3]),
        ]
    )
    assert ended == [("AAA", "short", "closed", T[1], T[3], 0, 10, 500, 10, 510, 10, 1, -10, -11, 3, 1010)]
    assert open_ == {}


def test_a_flip_through_zero_splits_its_fees_by_quantity():
    ended, open_ = both(
        [
            order("buy", 1, 10, when=T[1]),
            order("sell", 3, 12, "1.00", when=T[2]),  # closes 1, opens a short of 2
        ]
    )
    third = D("0.333333333333333333")
    assert ended == [("AAA", "long", "closed", T[1], T[2], 0, 1, 10, 1, 12, 1, third, 2, 2 - third, 2, 22)]
    assert open_ == {"AAA": ("AAA", "short", "open", T[2], None, 2, 2, 24, 2, 0, 0, 1 - third, 0, third - 1, 1, 24)}
    ended, _ = both(
        [order("buy", 1, 10, when=T[1]), order("sell", 3, 12, "1.00", when=T[2]), order("buy", 2, 11, when=T[3])]
    )
    assert ended[1] == ("AAA", "short", "closed", T[2], T[3], 0, 2, 24, 2, 22, 2, 1 - third, 2, 1 + third, 2, 46)
    assert sum(r[11] for r in ended) == D("1.00")  # the two parts add up to the fill's fees


def test_a_snapshot_that_changes_a_symbol_resets_its_trade():
    ended, open_ = both(
        [
            order("buy", 10, 100, "1", when=T[1]),
            snapshot([("AAA", 10, 100)], T[2]),  # unchanged: the trade goes on
            order("buy", 10, 110, when=T[3]),
            snapshot([("AAA", 20, "105.00000000000000004"), ("BBB", -5, 20)], T[4]),  # unchanged to 10 places
            snapshot([("AAA", 12, 101), ("BBB", -5, 20)], T[5]),
            order("sell", 2, 102, when=T[6]),
            snapshot([("BBB", -5, 20)], T[7]),  # AAA dropped
        ]
    )
    assert ended == [
        ("AAA", "long", "reset", T[1], T[5], 20, 20, 2100, 20, 0, 0, 1, 0, -1, 2, 2100),
        ("AAA", "long", "reset", T[5], T[7], 10, 12, 1212, 12, 204, 2, 0, 2, 2, 1, 204),
    ]
    # a short opened by a snapshot: entry value |quantity| x basis, no fill, no fees
    assert open_ == {"BBB": ("BBB", "short", "open", T[4], None, 5, 5, 100, 5, 0, 0, 0, 0, 0, 0, 0)}


def test_a_split_mid_trade_converts_its_quantities_not_its_money():
    day1, day2, day3 = DAYS[0], DAYS[0] + timedelta(days=1), DAYS[0] + timedelta(days=2)
    split = Split("AAA", day2, D(1), D(2))
    ended, open_ = both(
        [order("buy", 10, 100, "1", when=at(day1)), order("sell", 20, 55, "1", when=at(day3))],
        [split, Split("BBB", day2, D(1), D(3))],  # BBB is not held: nothing
    )
    # after the split: 20 at a basis of 50; (55 - 50) x 20 = 100
    assert ended == [("AAA", "long", "closed", at(day1), at(day3), 0, 20, 1000, 20, 1100, 20, 2, 100, 98, 2, 2100)]
    assert open_ == {}
    # a 1-for-3 split of 10 shares: 3.333333333333333333 (18 places), the money unchanged
    _, open_ = both([order("buy", 10, 100, when=at(day1))], [Split("AAA", day2, D(3), D(1))])
    q = D("3.333333333333333333")
    assert open_ == {"AAA": ("AAA", "long", "open", at(day1), None, q, q, 1000, q, 0, 0, 0, 0, 0, 1, 1000)}


def test_cancelled_and_pending_orders_are_no_fills():
    ended, open_ = both(
        [
            order("buy", 10, 100, status="cancelled", when=T[1]),
            order("buy", 5, 100, status="pending", when=T[2]),
            order("buy", 3, 100, status="filled", when=T[3]),
            order("sell", 3, 101, status="cancelled", when=T[4]),
            order("sell", 3, 101, status="partial", when=T[5]),
        ]
    )
    assert ended == [("AAA", "long", "closed", T[3], T[5], 0, 3, 300, 3, 303, 3, 0, 3, 3, 2, 603)]
    assert open_ == {}


def test_arrival_breaks_ties_of_effective_time():
    # both at T[2]: the sell arrived first, so it opens a short that the buy closes
    ended, open_ = both([order("buy", 2, 10, when=T[2], arrival=5), order("sell", 2, 11, when=T[2], arrival=1)])
    assert ended == [("AAA", "short", "closed", T[2], T[2], 0, 2, 22, 2, 20, 2, 0, 2, 2, 2, 42)]
    assert open_ == {}
