"""The pure fold: hand-worked examples and hypothesis properties."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal as D

from hypothesis import given
from hypothesis import strategies as st

from botranks_domain.ledger import Ledger, fold
from botranks_domain.model import (
    CashEvent,
    CashRecorded,
    Order,
    OrderRecorded,
    PositionsSnapshot,
    PositionsSnapshotted,
    SnapshotPosition,
)

SID = uuid.uuid4()
T0 = datetime(2026, 1, 5, 15, tzinfo=UTC)


def mk_order(side, qty, price, fees="0", symbol="AAPL", status="filled", at=T0):
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
            executed_at=at,
            created_at=at,
            external_order_id=None,
            details=None,
        )
    )


def mk_cash(kind, amount, at=T0):
    return CashRecorded(
        CashEvent(
            id=uuid.uuid4(),
            strategy_id=SID,
            event_type=kind,
            amount=D(str(amount)),
            occurred_at=at,
            external_id=None,
            related_symbol=None,
            note=None,
            created_at=at,
        )
    )


def mk_snapshot(positions, at=T0):
    return PositionsSnapshotted(
        PositionsSnapshot(
            id=uuid.uuid4(),
            strategy_id=SID,
            positions=[SnapshotPosition(s, D(str(q)), D(str(b))) for s, q, b in positions],
            log_deltas=True,
            taken_at=at,
            created_at=at,
        )
    )


def test_long_to_short_flip_with_fees():
    ledger = fold([mk_cash("deposit", 10_000), mk_order("buy", 10, 100, fees=1), mk_order("sell", 25, 110, fees=2)])
    # cash: 10000 - (1000 + 1) + (2750 - 2) = 11747
    assert ledger.cash == D("11747")
    pos = ledger.positions["AAPL"]
    assert pos.quantity == D(-15) and pos.cost_basis == D(110)  # remainder opened at the fill price
    assert ledger.realized_pnl == D(100)  # (110 - 100) * 10, fees excluded from basis


def test_short_covered_in_two_fills_keeps_basis_and_realizes():
    ledger = fold([mk_order("sell", 10, 50), mk_order("buy", 4, 45, fees="0.5"), mk_order("buy", 6, 55)])
    assert "AAPL" not in ledger.positions
    assert ledger.realized_pnl == D(4 * 5 - 6 * 5)  # short gains 5 on 4, loses 5 on 6
    assert ledger.cash == D(500) - D("180.5") - D(330)


def test_adding_reweights_basis():
    ledger = fold([mk_order("buy", 10, 100), mk_order("buy", 30, 120)])
    assert ledger.positions["AAPL"].cost_basis == D(115)


def test_pending_and_cancelled_move_nothing():
    ledger = fold([mk_order("buy", 10, 100, status="pending"), mk_order("buy", 10, 100, status="cancelled")])
    assert ledger.positions == {} and ledger.cash == 0


def test_dividend_on_a_short_and_withdrawal():
    ledger = fold(
        [mk_cash("deposit", 1000), mk_order("sell", 5, 20), mk_cash("dividend", "-2.50"), mk_cash("withdraw", -100)]
    )
    assert ledger.cash == D("997.50") and ledger.external_flows == D(900)


def test_snapshot_replaces_positions_and_reports_deltas_not_cash():
    ledger = Ledger()
    fold([mk_cash("deposit", 500), mk_order("buy", 10, 10), mk_order("buy", 1, 5, symbol="MSFT")], ledger)
    deltas = ledger.apply(mk_snapshot([("AAPL", 10, 10), ("KO", 3, 60)]))
    assert {(d.symbol, d.derived_quantity, d.snapshot_quantity) for d in deltas} == {("KO", 0, 3), ("MSFT", 1, 0)}
    assert set(ledger.positions) == {"AAPL", "KO"} and ledger.cash == D(500 - 100 - 5)


# ---------------------------------------------------------------- properties

qty = st.decimals(min_value=D("0.001"), max_value=D(1000), places=3)
price = st.decimals(min_value=D("0.01"), max_value=D(5000), places=2)
fees = st.decimals(min_value=D(0), max_value=D(20), places=2)
orders = st.builds(
    mk_order,
    st.sampled_from(["buy", "sell"]),
    qty,
    price,
    fees,
    st.sampled_from(["AAPL", "MSFT", "BTC-USD"]),
    st.sampled_from(["filled", "partial", "pending", "cancelled"]),
)
cash_events = st.one_of(
    st.builds(mk_cash, st.just("deposit"), price),
    st.builds(mk_cash, st.just("withdraw"), price.map(lambda p: -p)),
    st.builds(
        mk_cash,
        st.sampled_from(["dividend", "interest", "fee", "adjustment"]),
        st.decimals(min_value=D(-100), max_value=D(100), places=2),
    ),
)


@given(st.lists(st.one_of(orders, cash_events), max_size=60))
def test_cash_identity_and_positive_basis(events):
    ledger = fold(events)
    expected = D(0)
    for e in events:
        if isinstance(e, CashRecorded):
            expected += e.cash.amount
        elif e.order.status in ("filled", "partial"):
            o = e.order
            expected += (-1 if o.side == "buy" else 1) * o.quantity * o.price - o.fees
    assert ledger.cash == expected  # exact, to the last digit
    for holding in ledger.positions.values():
        assert holding.quantity != 0 and holding.cost_basis > 0
    net = {}
    for e in events:
        if isinstance(e, OrderRecorded) and e.order.status in ("filled", "partial"):
            net[e.order.symbol] = net.get(e.order.symbol, 0) + (
                e.order.quantity if e.order.side == "buy" else -e.order.quantity
            )
    assert {s: h.quantity for s, h in ledger.positions.items()} == {s: q for s, q in net.items() if q != 0}


@given(qty, qty, price, price)
def test_a_flip_opens_the_remainder_at_the_fill_price(q1, extra, p1, p2):
    ledger = fold([mk_order("buy", q1, p1), mk_order("sell", q1 + extra, p2)])
    assert ledger.positions["AAPL"].quantity == -extra
    assert ledger.positions["AAPL"].cost_basis == p2


@given(st.lists(orders, max_size=30), st.integers(0, 30))
def test_folding_in_two_parts_equals_folding_at_once(events, cut):
    whole = fold(events)
    parts = fold(events[cut:], fold(events[:cut]).copy())
    assert (whole.cash, whole.realized_pnl) == (parts.cash, parts.realized_pnl)
    assert {s: (h.quantity, h.cost_basis) for s, h in whole.positions.items()} == {
        s: (h.quantity, h.cost_basis) for s, h in parts.positions.items()
    }
