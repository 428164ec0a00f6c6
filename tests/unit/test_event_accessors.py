"""What every ledger event answers alike (``botranks_domain.model``), the typed ways to the record an
event carries, and the domain's own type check: ``python -m mypy`` holds it to --strict."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest

from botranks_domain.ledger import exponent
from botranks_domain.model import (
    CashEvent,
    CashRecorded,
    LedgerEvent,
    Order,
    OrderRecorded,
    PositionsSnapshot,
    PositionsSnapshotted,
    SnapshotPosition,
    cash_of,
    decode_event,
    encode_event,
    event_topic,
    order_of,
)

ROOT = Path(__file__).resolve().parents[2]
SID = uuid.uuid4()
EFFECTIVE = datetime(2026, 1, 5, 15, tzinfo=UTC)
ARRIVED = EFFECTIVE + timedelta(hours=2)

ORDER = Order(
    id=uuid.uuid4(),
    strategy_id=SID,
    symbol="AAPL",
    side="buy",
    quantity=D(1),
    price=D(10),
    fees=D(0),
    order_type="market",
    status="filled",
    executed_at=EFFECTIVE,
    created_at=ARRIVED,
    external_order_id="bot-1",
    details=None,
)
CASH = CashEvent(
    id=uuid.uuid4(),
    strategy_id=SID,
    event_type="deposit",
    amount=D(100),
    occurred_at=EFFECTIVE,
    external_id="dep-1",
    related_symbol=None,
    note=None,
    created_at=ARRIVED,
)
SNAPSHOT = PositionsSnapshot(
    id=uuid.uuid4(),
    strategy_id=SID,
    positions=[SnapshotPosition("MSFT", D(2), D(3))],
    log_deltas=False,
    taken_at=EFFECTIVE,
    created_at=ARRIVED,
)
EVENTS: list[tuple[LedgerEvent, uuid.UUID, str | None, str]] = [
    (OrderRecorded(ORDER), ORDER.id, "bot-1", "OrderRecorded.v1"),
    (CashRecorded(CASH), CASH.id, "dep-1", "CashRecorded.v1"),
    (PositionsSnapshotted(SNAPSHOT), SNAPSHOT.id, None, "PositionsSnapshotted.v1"),
]


@pytest.mark.parametrize("event, aggregate_id, external_id, topic", EVENTS)
def test_every_event_answers_the_same_accessors(event, aggregate_id, external_id, topic):
    assert event.strategy_id == SID
    assert event.aggregate_id == aggregate_id
    assert event.effective_at == EFFECTIVE
    assert event.arrived_at == ARRIVED
    assert event.external_id == external_id
    assert event_topic(event) == topic
    again = decode_event(encode_event(event))  # the accessors are no fields: the stored bytes are unchanged
    assert again == event and b"arrived_at" not in encode_event(event)


def test_order_of_and_cash_of_give_the_record_or_refuse():
    order, cash, snapshot = (e for e, *_ in EVENTS)
    assert order_of(order) is ORDER and cash_of(cash) is CASH
    with pytest.raises(TypeError, match="not an order: CashRecorded.v1"):
        order_of(cash)
    with pytest.raises(TypeError, match="not a cash event: PositionsSnapshotted.v1"):
        cash_of(snapshot)


def test_exponent_of_finite_decimals_only():
    assert exponent(D("1.25")) == -2 and exponent(D("1E+3")) == 3 and exponent(D(0)) == 0
    for value in (D("NaN"), D("Infinity")):
        with pytest.raises(ValueError, match="not a finite number"):
            exponent(value)


def test_the_domain_passes_mypy_strict():
    api = pytest.importorskip("mypy.api")
    # as `python -m mypy` runs: the project's configuration holds the domain to --strict's flags
    out, err, status = api.run(["--config-file", str(ROOT / "pyproject.toml")])
    assert status == 0, out + err
    assert "no issues found in" in out
