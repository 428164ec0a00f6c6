"""What a client sends is what is stored: symbols are checked as sent (then upper-cased, ASCII only)
and timestamps keep what fits microseconds, never rounded up into the next day or year."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from botranks_client._core import prepare_cash, prepare_orders, prepare_snapshot
from botranks_client.errors import InvalidOrder
from botranks_domain.errors import InvalidSymbol
from botranks_domain.model import (
    SYMBOL_RE,
    CashIn,
    OrdersBatchIn,
    SnapshotIn,
    normalize_symbol,
)
from botranks_domain.reading import convert_input, read_text
from libs.infra.web import decode_body
from services.command_api import ingest

from .test_handlers import FakeEventLog, FakePrices

SENT = re.compile(r"[A-Za-z0-9.\-:^]{1,20}")
JSON = "application/json"


# ---------------------------------------------------------------- symbols


@pytest.mark.parametrize("raw", ["ß", "ı", "ſ", "ﬀ", "\u212a", "AAPL\n", " AAPL", "AAPL ", "ÄPFEL", "A" * 21, ""])
def test_symbols_whose_characters_are_outside_the_grammar_are_refused(raw):
    # "ß".upper() == "SS", "ı".upper() == "I", "ſ" -> "S", "ﬀ" -> "FF", the Kelvin sign's lower() is "k"
    with pytest.raises(InvalidSymbol, match=r"at orders\[3\]\.symbol"):
        normalize_symbol(raw, "orders[3].symbol")


@given(st.text(max_size=24))
@settings(max_examples=400)
def test_a_symbol_is_accepted_iff_it_is_sent_in_the_grammar_and_stored_upper_cased(raw):
    if SENT.fullmatch(raw):
        stored = normalize_symbol(raw, "symbol")
        assert stored == raw.upper() and len(stored) == len(raw) and SYMBOL_RE.match(stored)
        assert stored.lower() == raw.lower()  # only the case of ASCII letters changed
    else:
        with pytest.raises(InvalidSymbol):
            normalize_symbol(raw, "symbol")


def test_an_order_with_a_non_ascii_symbol_stores_nothing():
    log = FakeEventLog()
    batch = decode_body(
        b'{"orders": [{"symbol": "aapl", "side": "buy", "quantity": 1, "price": 10,'
        b' "executed_at": "2026-03-02T15:00:00Z"}, {"symbol": "\xc3\x9f", "side": "buy",'
        b' "quantity": 1, "price": 10, "executed_at": "2026-03-02T15:00:00Z"}]}',
        JSON,
        OrdersBatchIn,
    )
    with pytest.raises(InvalidSymbol, match=r"'ß' at orders\[1\]\.symbol"):
        ingest.record_orders(log, FakePrices(), uuid4(), batch)
    assert log.events == {}


def test_the_client_refuses_what_the_server_refuses():
    with pytest.raises(InvalidOrder, match="ı"):
        prepare_orders([{"symbol": "ı", "side": "buy", "quantity": 1, "executed_at": "2026-03-02T15:00:00Z"}], uuid4())
    [order] = prepare_orders(
        [{"symbol": "brk.b", "side": "buy", "quantity": 1, "executed_at": "2026-03-02T15:00:00Z"}], uuid4()
    )
    assert order.symbol == "BRK.B"


# ---------------------------------------------------------------- timestamps

OFFSETS = st.sampled_from(["Z", "z", "+00:00", "-05:00", "+05:30", "+14:00", "-00:00"])


def _offset(text: str) -> timezone:
    if text in ("Z", "z"):
        return UTC
    sign = -1 if text[0] == "-" else 1
    return timezone(sign * timedelta(hours=int(text[1:3]), minutes=int(text[4:6])))


@st.composite
def precise_timestamps(draw):
    """(RFC 3339 text with 7-12 fractional digits, the exact microsecond instant it starts with)."""
    wall = draw(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2099, 12, 31)))
    extra = draw(st.text("0123456789", min_size=1, max_size=6))
    offset = draw(OFFSETS)
    sep = draw(st.sampled_from("Tt "))
    text = wall.strftime(f"%Y-%m-%d{sep}%H:%M:%S.%f") + extra + offset
    return text, wall.replace(tzinfo=_offset(offset)).astimezone(UTC)


@given(precise_timestamps())
@settings(max_examples=300)
def test_every_input_timestamp_keeps_what_fits_microseconds(sample):
    text, exact = sample
    order = {"symbol": "AAPL", "side": "buy", "quantity": "1", "executed_at": text}
    body = f'{{"orders": [{_json(order)}, {_json(order)}]}}'.encode()
    batch = decode_body(body, JSON, OrdersBatchIn)
    assert [o.executed_at for o in batch.orders] == [exact, exact]
    cash = decode_body(f'{{"event_type": "fee", "amount": -1, "occurred_at": "{text}"}}'.encode(), JSON, CashIn)
    assert cash.occurred_at == exact
    snapshot = decode_body(f'{{"positions": [], "taken_at": "{text}"}}'.encode(), JSON, SnapshotIn)
    assert snapshot.taken_at == exact
    # the client validates with the same structs, so it sends what it was given
    assert prepare_orders([dict(order)], uuid4())[0].executed_at == exact
    assert (
        prepare_cash(
            uuid4(), "fee", Decimal(-1), occurred_at=text, external_id=None, related_symbol=None, note=None
        ).occurred_at
        == exact
    )
    assert prepare_snapshot([], taken_at=text, log_deltas=False).taken_at == exact


def _json(obj: dict) -> str:
    return "{" + ", ".join(f'"{k}": "{v}"' for k, v in obj.items()) + "}"


def test_the_last_tenth_of_a_microsecond_of_a_year_stays_in_that_year():
    batch = decode_body(
        b'{"orders": [{"symbol": "AAPL", "side": "buy", "quantity": 1,'
        b' "executed_at": "2025-12-31T23:59:59.9999999Z"}]}',
        JSON,
        OrdersBatchIn,
    )
    assert batch.orders[0].executed_at == datetime(2025, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


def test_free_form_details_and_the_callers_data_are_left_as_they_are():
    text = "2025-12-31T23:59:59.9999999Z"
    raw = {
        "orders": [
            {
                "symbol": "AAPL",
                "side": "buy",
                "quantity": 1,
                "executed_at": text,
                "details": {"signal_at": text, "nested": [text]},
            }
        ]
    }
    batch = convert_input(raw, OrdersBatchIn)
    assert batch.orders[0].details == {"signal_at": text, "nested": [text]}
    assert raw["orders"][0]["executed_at"] == text  # not modified in place
    assert read_text({"positions": [], "taken_at": "2025-12-31T23:59:59.25Z"}, SnapshotIn) == {
        "positions": [],
        "taken_at": "2025-12-31T23:59:59.25Z",
    }


def test_a_stored_order_carries_the_truncated_time():
    log = FakeEventLog()
    batch = decode_body(
        b'{"orders": [{"symbol": "msft", "side": "buy", "quantity": 1, "price": 10,'
        b' "executed_at": "2020-02-29T23:59:59.999999999-00:00", "external_order_id": "x"}]}',
        JSON,
        OrdersBatchIn,
    )
    stored = ingest.record_orders(log, FakePrices(), uuid4(), batch).accepted[0]
    assert stored.executed_at == datetime(2020, 2, 29, 23, 59, 59, 999999, tzinfo=UTC)
    assert stored.symbol == "MSFT"
