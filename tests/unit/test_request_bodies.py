"""Request bodies are read exactly and strictly; an unreachable database is a 503.

A tiny Litestar app with the real input types and the real ``api_app_kwargs()`` (request
class, error handler), driven through ``litestar.testing.TestClient``: no server, no database.
"""

from __future__ import annotations

import socket
from decimal import (
    Context,
    Decimal,
    Inexact,
    InvalidOperation,
    Overflow,
    Rounded,
    Subnormal,
    Underflow,
    localcontext,
)

import eventsourcing.persistence as es
import msgspec
import psycopg
import psycopg_pool
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from litestar import Litestar, get, post
from litestar.testing import TestClient

from botranks_domain.model import MAX_DETAILS_DEPTH, CashIn, OrdersBatchIn, SnapshotIn
from botranks_domain.reading import MAX_ABS_AMOUNT, MAX_FRACTION_DIGITS, exact_decimal
from libs.infra.web import api_app_kwargs, is_json_content_type
from services.command_api.accounts import Credentials

JSON = {"Content-Type": "application/json"}
seen: list = []


@post("/orders", sync_to_thread=False)
def orders(data: OrdersBatchIn) -> dict:
    seen.append(data)
    return {
        "orders": [
            {"quantity": str(o.quantity), "price": str(o.price), "fees": str(o.fees), "details": o.details}
            for o in data.orders
        ]
    }


@post("/cash", sync_to_thread=False)
def cash(data: CashIn) -> dict:
    return {"amount": str(data.amount), "note": data.note}


@post("/snapshot", sync_to_thread=False)
def snapshot(data: SnapshotIn) -> dict:
    return {"positions": [[str(p.quantity), str(p.cost_basis)] for p in data.positions]}


@post("/register", sync_to_thread=False)
def register(data: Credentials) -> dict:
    return {"email": data.email}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


DB_DOWN = {
    "psycopg": psycopg.OperationalError("connection refused"),
    "interface": psycopg.InterfaceError("the connection is closed"),
    "pool-timeout": psycopg_pool.PoolTimeout("couldn't get a connection after 10.00 sec"),
    "es-operational": es.OperationalError("couldn't get a connection after 10.00 sec"),
    "es-interface": es.InterfaceError("the connection is lost"),
    "es-unavailable": es.ConnectionUnavailableError("timed out"),
    "es-closed": es.ConnectionPoolClosedError("pool closed"),
}


@get("/fail/{kind:str}", sync_to_thread=False)
def fail(kind: str) -> None:
    if kind == "wrapped":
        raise RuntimeError("append failed") from psycopg.OperationalError("server closed the connection")
    if kind == "bug":
        raise RuntimeError("a bug")
    if kind == "real":  # what the eventsourcing datastore really raises with PostgreSQL down
        from eventsourcing.postgres import PostgresDatastore

        datastore = PostgresDatastore(
            dbname="x",
            host="127.0.0.1",
            port=_closed_port(),
            user="postgres",
            password="",
            pool_size=1,
            max_overflow=0,
            connect_timeout=1,
        )
        try:
            with datastore.transaction(commit=True) as curs:
                curs.execute("SELECT 1")
        finally:
            datastore.close()
    raise DB_DOWN[kind]


def _app() -> Litestar:
    kwargs = api_app_kwargs()
    kwargs["middleware"] = []
    return Litestar([orders, cash, snapshot, register, fail], **kwargs)


@pytest.fixture(scope="module")
def client():
    with TestClient(_app()) as c:
        yield c


def _order(extra: bytes = b"") -> bytes:
    return b'{"orders": [{"symbol": "AAPL", "side": "buy", "quantity": 1, "price": 100' + extra + b"}]}"


# ---------------------------------------------------------------- exact decimals


@pytest.mark.parametrize(
    "literal",
    [
        b"90071992547409.93",
        b"987654321098765.43",
        b"0.1",
        b"123456.000000000000000001",
        b'"90071992547409.93"',
        b'"1.5"',
        b"1e15",
        b"-5e-18",
    ],
)
def test_numbers_are_read_exactly_from_the_text(client, literal):
    r = client.post("/cash", content=b'{"event_type": "adjustment", "amount": ' + literal + b"}", headers=JSON)
    assert r.status_code == 201, r.text
    assert Decimal(r.json()["amount"]) == Decimal(literal.decode().strip('"'))


def test_order_and_snapshot_decimals_are_exact(client):
    r = client.post(
        "/orders",
        content=b'{"orders": [{"symbol": "AAPL", "side": "buy",'
        b' "quantity": 0.000000000000000001, "price": 987654321098765.43, "fees": "0.10"}]}',
        headers=JSON,
    )
    assert r.status_code == 201, r.text
    assert r.json()["orders"][0] == {
        "quantity": "1E-18",
        "price": "987654321098765.43",
        "fees": "0.10",
        "details": None,
    }
    r = client.post(
        "/snapshot",
        content=b'{"positions": [{"symbol": "A", "quantity": 90071992547409.93,'
        b' "cost_basis": 1.500000000000000000000000}]}',
        headers=JSON,
    )
    assert r.status_code == 201 and r.json()["positions"] == [["90071992547409.93", "1.5"]], r.text


def test_the_converted_struct_reaches_the_handler_once(client):
    seen.clear()
    r = client.post("/orders", content=_order(b', "executed_at": "2026-01-05T10:00:00-05:00"'), headers=JSON)
    assert r.status_code == 201
    assert len(seen) == 1 and seen[0].orders[0].executed_at.isoformat() == "2026-01-05T15:00:00+00:00"


# ---------------------------------------------------------------- bounds


@pytest.mark.parametrize(
    "value, ok",
    [
        ("1.500000000000000000000000", "1.5"),
        ("1e-18", "1E-18"),
        ("0E-20000", "0"),
        ("0E+999999", "0"),
        ("-0.00", "-0.00"),
        ("1000000000000000", "1000000000000000"),
        ("1.50", "1.50"),
        ("1E+15", "1E+15"),
        ("123.4560000000000000000000000000000000", "123.456"),
    ],
)
def test_exact_decimal_keeps_values_and_drops_only_excess_zeros(value, ok):
    result = exact_decimal(Decimal(value), "x")
    assert str(result) == ok and result == Decimal(value)


@pytest.mark.parametrize(
    "value, message",
    [
        ("1e-19", "`x` must have at most 18 digits after the decimal point"),
        ("1e-20000", "`x` must have at most 18 digits after the decimal point"),
        ("1.00000000000000000001", "`x` must have at most 18 digits after the decimal point"),
        ("1e999999", "`x` must be at most 1e15 in magnitude"),
        ("-1000000000000000.000000000000000001", "`x` must be at most 1e15 in magnitude"),
        ("NaN", "`x` must be a finite number"),
        ("-Infinity", "`x` must be a finite number"),
    ],
)
def test_exact_decimal_refuses(value, message):
    with pytest.raises(ValueError) as info:
        exact_decimal(Decimal(value), "x")
    assert str(info.value) == message


STRICT = Context(prec=1, traps=[Inexact, Rounded, Overflow, Underflow, Subnormal, InvalidOperation])


@settings(max_examples=300, deadline=None)
@given(digits=st.integers(0, 10**40), exponent=st.integers(-25000, 25000), negative=st.booleans())
def test_exact_decimal_never_rounds(digits, exponent, negative):
    value = Decimal((int(negative), tuple(map(int, str(digits))), exponent))
    with localcontext(STRICT):  # any arithmetic under a context would trap here
        try:
            result = exact_decimal(value, "x")
        except ValueError:
            significant = str(digits).rstrip("0") if digits else ""
            fraction = max(0, -(exponent + len(str(digits)) - len(significant))) if digits else 0
            assert fraction > MAX_FRACTION_DIGITS or value.copy_abs() > MAX_ABS_AMOUNT
            return
    assert result == value and result.as_tuple().exponent >= -MAX_FRACTION_DIGITS
    assert result.copy_abs() <= MAX_ABS_AMOUNT


# ---------------------------------------------------------------- hostile bodies


@pytest.mark.parametrize(
    "path, body, status, needle",
    [
        ("/orders", _order(b', "quantity": 1000000'), 400, 'duplicate key "quantity"'),
        (
            "/orders",
            b'{"orders": [{"symbol":"AAPL","side":"buy","quantity":"1e-20000","price":100}]}',
            422,
            "`orders[0].quantity` must have at most 18 digits after the decimal point",
        ),
        (
            "/orders",
            b'{"orders": [{"symbol":"AAPL","side":"buy","quantity":1e-20000,"price":100}]}',
            422,
            "`orders[0].quantity` must have at most 18 digits after the decimal point",
        ),
        (
            "/orders",
            b'{"orders": [{"symbol":"AAPL","side":"buy","quantity":1,"price":1e999999}]}',
            422,
            "`orders[0].price` must be at most 1e15 in magnitude",
        ),
        (
            "/orders",
            b'{"orders": [{"symbol":"AAPL","side":"buy","quantity":1,"price":1e99999999999999999999}]}',
            400,
            "out of range",
        ),
        (
            "/orders",
            b'{"orders": [{"symbol":"AAPL","side":"buy","quantity":1.00000000000000000001,"price":1}]}',
            422,
            "`orders[0].quantity` must have at most 18 digits",
        ),
        ("/orders", _order(b', "executed_at": 1767225600'), 422, "orders[0].executed_at"),
        ("/orders", _order(b', "fees": NaN'), 400, "NaN"),
        ("/orders", _order(b', "fees": -Infinity'), 400, "Infinity"),
        ("/orders", _order(b', "fees": "NaN"'), 422, "`orders[0].fees` must be a finite number"),
        ("/orders", _order(b', "details": ' + b'{"a":' * 971 + b"1" + b"}" * 971), None, None),
        (
            "/orders",
            _order(b', "details": {"a": ' + b"[" * 200 + b"]" * 200 + b"}"),
            422,
            f"`orders[0].details` must be nested at most {MAX_DETAILS_DEPTH} levels deep",
        ),
        ("/orders", _order(b', "details": {"x": 1e400}'), 422, "`orders[0].details` contains a number out of range"),
        ("/orders", _order(b', "details": {"x": "\\ud800"}'), 400, "surrogate"),
        ("/orders", _order(b', "external_order_id": "\xff"'), 400, "not valid UTF-8"),
        ("/orders", b"[" * 100_000 + b"]" * 100_000, 400, "JSON nested too deeply"),
        ("/orders", b'{"orders": [' + b"1" * 5000 + b"]}", 400, "Malformed JSON"),
        ("/cash", b'{"event_type": "fee", "amount": -1, "note": ' + b"[" * 971 + b"]" * 971 + b"}", None, None),
        ("/cash", b'{"event_type": "fee", "amount": -1, "note": {"a": 1}}', 422, "note"),
        ("/cash", b'{"event_type": "fee", "amount": -1, "amount": 1}', 400, 'duplicate key "amount"'),
        (
            "/cash",
            b'{"event_type": "deposit", "amount": "1e-20000"}',
            422,
            "`amount` must have at most 18 digits after the decimal point",
        ),
        (
            "/snapshot",
            b'{"positions": [{"symbol": "A", "quantity": 1, "cost_basis": 1e-19}]}',
            422,
            "`positions[0].cost_basis` must have at most 18 digits",
        ),
        ("/register", b'{"email": ' + b"[" * 971 + b"]" * 971 + b', "password": "x"}', None, None),
        ("/register", b'{"email": "a@b.cd", "password": 123456789012}', 422, "password"),
        (
            "/register",
            b'{"email": "a@b.cd", "email": "c@d.ef", "password": "123456789012"}',
            400,
            'duplicate key "email"',
        ),
        ("/register", b'\xfe\xff{"email": "a@b.cd"}', 400, "not valid UTF-8"),
    ],
)
def test_hostile_bodies_are_4xx_with_a_detail(client, path, body, status, needle):
    r = client.post(path, content=body, headers=JSON)
    assert 400 <= r.status_code < 500 and set(r.json()) == {"detail"}, r.text
    if status is not None:
        assert r.status_code == status, r.text
        assert needle in r.json()["detail"], r.text


@pytest.mark.parametrize(
    "content_type, status",
    [
        ("application/json", 201),
        ("application/json; charset=utf-8", 201),
        ("Application/JSON; Charset=UTF-8", 201),
        ("application/json; charset=latin-1", 415),
        ("text/plain", 415),
        ("application/x-www-form-urlencoded", 415),
        ("multipart/form-data; boundary=x", 415),
        ("application/msgpack", 415),
        ("application/jsonp", 415),
        (None, 415),
    ],
)
def test_only_json_bodies_are_read(client, content_type, status):
    headers = {"Content-Type": content_type} if content_type else {}
    r = client.post("/cash", content=b'{"event_type": "deposit", "amount": 1}', headers=headers)
    assert r.status_code == status, r.text
    if status == 415:
        assert r.json() == {"detail": "Content-Type must be application/json"}


def test_an_empty_body_is_still_the_old_400(client):
    r = client.post("/cash", content=b"", headers={"Content-Type": "text/plain"})
    assert r.status_code == 400 and "missing or empty" in r.json()["detail"]


def test_content_type_rule():
    assert is_json_content_type("application/json;")
    assert not is_json_content_type("application/json; charset=utf-8; boundary=x")
    assert not is_json_content_type("")


# ---------------------------------------------------------------- database unavailable


@pytest.mark.parametrize("kind", [*DB_DOWN, "wrapped", "real"])
def test_database_unavailable_is_503_with_retry_after(client, kind):
    r = client.get(f"/fail/{kind}")
    assert r.status_code == 503, r.text
    assert r.json() == {"detail": "Database unavailable, retry shortly"}
    assert r.headers["Retry-After"] == "2"


def test_other_errors_stay_500(client):
    r = client.get("/fail/bug")
    assert r.status_code == 500 and r.json() == {"detail": "Internal server error"}


def test_msgspec_passes_an_instance_of_the_target_type_through():
    batch = msgspec.convert({"orders": [{"symbol": "A", "side": "buy", "quantity": "1"}]}, OrdersBatchIn)
    assert msgspec.convert(batch, OrdersBatchIn) is batch
