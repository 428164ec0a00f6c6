"""Stock splits in the fold: properties over random orders, snapshots and splits (forward, reverse, shorts).

World A is what BotRanks sees: closes as traded, events in the share units of their own day,
and the splits. World B is the same history already converted to the units after every split,
marked at split-adjusted closes, with no split at all. They must be the same account: the same
NAV every day (so NAV is continuous across every ex-date), the same positions, and the same
result whether derived in one go or resumed from a saved state.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal as D

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from botranks_domain.bars import Split
from botranks_domain.ledger import published
from botranks_domain.nav import LedgerState, PriceBook, decode_state, derive, encode_state

from .test_ledger import mk_cash, mk_order, mk_snapshot

START = date(2024, 1, 1)  # a Monday
CALENDAR = [START + timedelta(days=i) for i in range(60)]
DAYS = [d for d in CALENDAR if d.weekday() < 5]  # bar days; events also fall on weekends
#: (split_from, split_to): forward, reverse and odd ratios whose quantities stay exact
RATIOS = [(1, 2), (1, 3), (1, 4), (2, 3), (1, 10), (10, 1), (4, 1), (5, 2), (2, 1), (1, 20)]


def at(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


@st.composite
def histories(draw):
    splits = {}
    for _ in range(draw(st.integers(1, 3))):
        ex = draw(st.sampled_from(DAYS[1:]))
        splits[ex] = draw(st.sampled_from(RATIOS))
    splits = [Split("XYZ", ex, D(f), D(t)) for ex, (f, t) in sorted(splits.items())]

    def factor(day: date) -> D:
        """Post-split shares per share held on ``day`` (every split still to come)."""
        g = D(1)
        for sp in splits:
            if sp.ex_date > day:
                g = g * sp.split_to / sp.split_from
        return g

    adjusted = {d: D(draw(st.integers(500, 20000))) / 100 for d in CALENDAR}
    missing = set(draw(st.lists(st.sampled_from(DAYS[1:]), max_size=6)))  # XYZ without a bar (the ex-date too)
    events_a, events_b = [mk_cash("deposit", 100000, at(DAYS[0], 9))], [mk_cash("deposit", 100000, at(DAYS[0], 9))]
    for _ in range(draw(st.integers(1, 14))):
        day, hour = draw(st.sampled_from(CALENDAR)), draw(st.integers(10, 20))
        g = factor(day)
        if draw(st.integers(0, 5)) == 0:  # a snapshot, in its day's units
            q = D(draw(st.integers(-300, 300)))
            basis = D(draw(st.integers(100, 10000))) / 100 * g
            events_a.append(mk_snapshot([("XYZ", q, basis)] if q else [], at=at(day, hour)))
            events_b.append(mk_snapshot([("XYZ", q * g, basis / g)] if q else [], at=at(day, hour)))
            continue
        side = draw(st.sampled_from(["buy", "sell"]))  # sells may go short
        q = D(draw(st.integers(1, 400)))
        price_b = adjusted[day] + D(draw(st.integers(-50, 50))) / 100
        events_a.append(mk_order(side, q, price_b * g, symbol="XYZ", at=at(day, hour)))
        events_b.append(mk_order(side, q * g, price_b, symbol="XYZ", at=at(day, hour)))
    order = sorted(range(len(events_a)), key=lambda i: events_a[i].effective_at)
    closes_a = {
        "XYZ": [(d, adjusted[d] * factor(d)) for d in DAYS if d not in missing],
        "SPY": [(d, D(400 + i)) for i, d in enumerate(DAYS)],
    }
    closes_b = {"XYZ": [(d, adjusted[d]) for d in DAYS if d not in missing], "SPY": closes_a["SPY"]}
    return (
        [events_a[i] for i in order],
        [events_b[i] for i in order],
        PriceBook(closes_a, splits),
        PriceBook(closes_b),
        splits,
        draw(st.integers(1, len(events_a))),
    )


def _nav(result):
    return [(r.date, published(r.total_equity), published(r.external_flow), published(r.cash)) for r in result.nav]


def _positions(ledger):
    return {s: published(h.quantity) for s, h in ledger.positions.items()}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_a_split_history_is_the_converted_history_without_splits(history):
    events_a, events_b, book_a, book_b, splits, _ = history
    end = DAYS[-1]
    a = derive(LedgerState(), events_a, book_a, "SPY", None, end, DAYS[0])
    b = derive(LedgerState(), events_b, book_b, "SPY", None, end, DAYS[0])
    assert _nav(a) == _nav(b)
    assert _positions(a.current) == _positions(b.current)
    for symbol, holding in a.current.positions.items():  # the basis, to the rounding of its average
        assert abs(holding.cost_basis - b.current.positions[symbol].cost_basis) < D("1e-12") * holding.cost_basis
    assert published(a.current.cash) == published(b.current.cash)
    # every applied split multiplied the quantity by to/from and left cash alone
    for action in a.actions:
        assert action.quantity_after == action.quantity_before * action.split_to / action.split_from
        assert action.symbol == "XYZ" and action.ex_date in {sp.ex_date for sp in splits}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_nav_is_continuous_across_every_ex_date(history):
    events_a, _, book_a, _, splits, _ = history
    end = DAYS[-1]
    a = derive(LedgerState(), events_a, book_a, "SPY", None, end, DAYS[0])
    nav = {r.date: r for r in a.nav}
    event_days = {e.effective_at.date() for e in events_a}
    for sp in splits:
        if sp.ex_date in event_days or sp.ex_date not in nav:
            continue
        prev = max(d for d in nav if d < sp.ex_date)
        if any(prev < d < sp.ex_date for d in event_days):
            continue
        # holdings of the day before, in post-split units, moved by the adjusted closes: the whole change
        state = derive(
            LedgerState(),
            [e for e in events_a if e.effective_at.date() <= prev],
            book_a,
            "SPY",
            None,
            sp.ex_date,
            DAYS[0],
        ).current
        move = sum(
            (
                h.quantity
                * (
                    book_a.close(s, sp.ex_date) - book_a.close(s, prev) * sp.split_from / sp.split_to
                    if s == sp.symbol
                    else h.quantity * (book_a.close(s, sp.ex_date) - book_a.close(s, prev))
                )
                for s, h in state.positions.items()
            ),
            D(0),
        )
        assert published(nav[sp.ex_date].total_equity - nav[prev].total_equity) == published(move)
        assert nav[sp.ex_date].external_flow == 0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_resuming_from_a_saved_state_applies_each_split_once(history):
    events_a, _, book_a, _, _, k = history
    end = DAYS[-1]
    one_go = derive(LedgerState(), events_a, book_a, "SPY", None, end, DAYS[0])
    # the first k events seen on the day before the k-th one's day ("today" then), the rest later
    first, rest = events_a[:k], events_a[k:]
    today = rest[0].effective_at.date() - timedelta(days=1) if rest else end
    if today < DAYS[0]:
        return
    part = derive(LedgerState(), first, book_a, "SPY", None, today, DAYS[0])
    last_nav = part.nav[-1].date if part.nav else None
    if rest and last_nav is not None and rest[0].effective_at.date() <= last_nav:
        return
    start = decode_state(encode_state(part.final))  # as the read model stores it
    more = derive(start, rest, book_a, "SPY", last_nav, end, DAYS[0])
    assert _nav(part) + _nav(more) == _nav(one_go)
    assert _positions(more.current) == _positions(one_go.current)
    # as the read model keeps them: the first part's, less those after the resumed state's day, then the rest
    kept = [x for x in part.actions if x.ex_date <= (more.actions_after or date.min)] + more.actions
    assert sorted((x.ex_date, x.symbol, x.quantity_after) for x in kept) == sorted(
        (x.ex_date, x.symbol, x.quantity_after) for x in one_go.actions
    )


def test_a_weekend_snapshot_before_a_monday_split_flows_in_post_split_units():
    # Friday 100 XYZ at 40; Saturday's snapshot says 150 (50 more, a flow); Monday a 2-for-1 split
    friday, saturday, monday = date(2024, 1, 5), date(2024, 1, 6), date(2024, 1, 8)
    book = PriceBook({"XYZ": [(friday, D(40)), (monday, D(21))]}, [Split("XYZ", monday, D(1), D(2))])
    events = [
        mk_cash("deposit", 4000, at(friday, 10)),
        mk_order("buy", 100, 40, symbol="XYZ", at=at(friday, 11)),
        mk_snapshot([("XYZ", 150, 40)], at=at(saturday, 12)),
    ]
    result = derive(LedgerState(), events, book, None, None, monday, friday)
    (fri, mon) = result.nav
    assert (fri.total_equity, mon.total_equity) == (D(4000), D(300 * 21))
    assert mon.external_flow == 100 * 21  # the 50 shares the snapshot added, as 100 post-split shares at 21
    assert [(a.quantity_before, a.quantity_after) for a in result.actions] == [(150, 300)]
