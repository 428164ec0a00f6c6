"""Nothing a client sends can stop, fool or silently round the ledger (issue 8), end to end.

Bodies are built as bytes here, never through floats: a JSON number must reach the event
store and come back from the query API exactly as written.
"""

from __future__ import annotations

import json
import socket
import uuid
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from botranks_domain.ledger import published
from botranks_domain.model import MAX_DETAILS_DEPTH
from botranks_domain.reading import MAX_ABS_AMOUNT, MAX_FRACTION_DIGITS

pytestmark = pytest.mark.integration

JSON = {"Content-Type": "application/json"}
PAST = "2026-01-05T15:00:00Z"
HYPOTHESIS = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


def exact(response) -> Any:
    """A response body with every JSON number as an exact Decimal (httpx's .json() gives floats)."""
    return json.loads(response.text, parse_float=Decimal, parse_int=Decimal)


def post_raw(
    stack, sid: str, what: str, body: bytes, auth: dict[str, str], content_type: str | None = "application/json"
):
    headers = {**auth, **({"Content-Type": content_type} if content_type else {})}
    return stack.command.post(f"/api/v1/strategies/{sid}/{what}", content=body, headers=headers)


def get_exact(stack, sid: str, what: str, auth: dict[str, str]) -> Any:
    r = stack.query.get(f"/api/v1/strategies/{sid}/{what}", headers=auth)
    assert r.status_code == 200, r.text
    return exact(r)


def assert_projector_healthy(stack) -> None:
    """A normal order posted now is projected: nothing before it froze the projector."""
    sid, auth = stack.new_strategy("after-hostile")
    r = stack.post(
        sid,
        "orders",
        {
            "orders": [
                {"symbol": "HLTH", "side": "buy", "quantity": 3, "price": 7, "external_order_id": f"ok-{uuid.uuid4()}"}
            ]
        },
        auth,
    )
    assert r.status_code == 200, r.text
    stack.wait_projected()
    positions = stack.state(sid, auth)["positions"]
    assert [(p["symbol"], p["quantity"]) for p in positions] == [("HLTH", 3)]


# ---------------------------------------------------------------- exact decimals, as numbers and as strings


@st.composite
def decimal_literals(draw, *, positive: bool = True, allow_zero: bool = False) -> tuple[Decimal, bytes]:
    """A decimal within the bounds and the JSON text of it: a number in one of several spellings, or a string."""
    scale = draw(st.integers(0, MAX_FRACTION_DIGITS))
    limit = int(MAX_ABS_AMOUNT) * 10**scale
    unscaled = draw(st.one_of(st.integers(0 if allow_zero else 1, limit), st.sampled_from([1, limit - 1, limit])))
    negative = not positive and draw(st.booleans())
    value = Decimal((int(negative), tuple(map(int, str(unscaled))), -scale))
    plain = format(value, "f")
    spelling = draw(st.sampled_from(["str", "plain", "exp", "EXP", "zeros"]))
    text = {
        "str": str(value),
        "plain": plain,
        "exp": f"{'-' if negative else ''}{unscaled}e-{scale}",
        "EXP": f"{'-' if negative else ''}{unscaled}E-{scale}",
        "zeros": plain + ("" if "." in plain else ".") + "0" * draw(st.integers(1, 40)),
    }[spelling]
    as_string = draw(st.booleans())
    return value, (json.dumps(text) if as_string else text).encode()


@settings(HYPOTHESIS, max_examples=30)
@given(
    deposit=decimal_literals(),
    quantity=decimal_literals(),
    price=decimal_literals(),
    fees=decimal_literals(allow_zero=True),
    snap_quantity=decimal_literals(positive=False),
    cost_basis=decimal_literals(),
)
def test_decimals_come_back_exactly_as_sent(stack, deposit, quantity, price, fees, snap_quantity, cost_basis):
    sid, auth = stack.new_strategy("exact")
    r = post_raw(
        stack, sid, "cash", b'{"event_type": "deposit", "external_id": "d1", "amount": ' + deposit[1] + b"}", auth
    )
    assert r.status_code == 201, r.text
    assert exact(r)["event"]["amount"] == deposit[0]
    r = post_raw(
        stack,
        sid,
        "orders",
        b'{"orders": [{"symbol": "EXCT", "side": "buy", "executed_at": "'
        + PAST.encode()
        + b'", "quantity": '
        + quantity[1]
        + b', "price": '
        + price[1]
        + b', "fees": '
        + fees[1]
        + b"}]}",
        auth,
    )
    assert r.status_code == 200, r.text
    sent = exact(r)["accepted"][0]
    assert (sent["quantity"], sent["price"], sent["fees"]) == (quantity[0], price[0], fees[0])
    r = post_raw(
        stack,
        sid,
        "positions/snapshot",
        b'{"positions": [{"symbol": "SNAP", "quantity": '
        + snap_quantity[1]
        + b', "cost_basis": '
        + cost_basis[1]
        + b"}]}",
        auth,
    )
    assert r.status_code == 200, r.text

    [cash] = get_exact(stack, sid, "cash", auth)["items"]
    assert cash["amount"] == deposit[0]
    [order] = get_exact(stack, sid, "orders", auth)["items"]
    assert (order["quantity"], order["price"], order["fees"]) == (quantity[0], price[0], fees[0])
    positions = get_exact(stack, sid, "state", auth)["positions"]  # derived: at the one published precision
    assert [(p["symbol"], p["quantity"], p["cost_basis"]) for p in positions] == [
        ("SNAP", published(snap_quantity[0]), published(cost_basis[0]))
    ]


# ---------------------------------------------------------------- hostile bodies


EXTREME_NUMBERS = [
    b"1e-20000",
    b"1e999999",
    b"-1e999999",
    b"1E+99999999999999999999",
    b"0E-20000",
    b"0E+999999",
    b"1e-19",
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"1" * 5000,
    b"0.1e-400",
    b"1e400",
    b"-0",
    b"123456789012345678901234567890",
    b"1.00000000000000000001",
    b"9" * 40 + b".5",
    b"true",
    b"[]",
    b"{}",
    b"null",
    b'"1e-20000"',
    b'"NaN"',
    b'"\\ud800"',
    b'"\\u0000"',
]
DECIMAL_FIELDS = {
    "orders": [b"quantity", b"price", b"fees"],
    "cash": [b"amount"],
    "positions/snapshot": [b"quantity", b"cost_basis"],
}
STRING_FIELDS = {
    "orders": [b"symbol", b"side", b"executed_at", b"external_order_id", b"order_type"],
    "cash": [b"event_type", b"note", b"occurred_at", b"related_symbol", b"external_id"],
    "positions/snapshot": [b"symbol", b"taken_at"],
    "auth/register": [b"email", b"password"],
}
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "text/plain",
    "application/xml",
    None,
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=xyz",
    "application/json; charset=latin-1",
]
VALID = {
    "orders": [(b"symbol", b'"HOST"'), (b"side", b'"buy"'), (b"quantity", b"1"), (b"price", b"2")],
    "cash": [(b"event_type", b'"fee"'), (b"amount", b"-1")],
    "positions/snapshot": [(b"symbol", b'"HOST"'), (b"quantity", b"1"), (b"cost_basis", b"1")],
    "auth/register": [(b"email", b'"hostile@example.com"'), (b"password", b'"hostile-password"')],
}


def _object(pairs: list[tuple[bytes, bytes]]) -> bytes:
    return b"{" + b", ".join(b'"' + key + b'": ' + value for key, value in pairs) + b"}"


def template(path: str, field: bytes, value: bytes, *, duplicate: bool = False) -> bytes:
    """A valid body of ``path`` whose ``field`` is ``value`` (sent twice, valid value first, with ``duplicate``)."""
    pairs = [(k, v) for k, v in VALID[path] if duplicate or k != field] + [(field, value)]
    if path == "orders":
        return b'{"orders": [' + _object(pairs) + b"]}"
    if path == "positions/snapshot":
        if field == b"taken_at":
            return b'{"positions": [' + _object(VALID[path]) + b'], "taken_at": ' + value + b"}"
        return b'{"positions": [' + _object(pairs) + b"]}"
    return _object(pairs)


@st.composite
def hostile_requests(draw) -> tuple[str, bytes, str | None]:
    path = draw(st.sampled_from(["orders", "cash", "positions/snapshot", "auth/register"]))
    kind = draw(
        st.sampled_from(
            ["deep", "deep-details", "number", "string-field", "bytes", "duplicate", "content-type", "binary"]
        )
    )
    content_type: str | None = "application/json"
    if kind == "deep":
        depth = draw(st.integers(30, 200_000))
        opener, closer = draw(
            st.sampled_from([(b"[", b"]"), (b'{"a":', b"}"), (b'{"orders": [', b"]}"), (b'{"details": ', b"}")])
        )
        body = opener * depth + b"1" + closer * depth
    elif kind == "deep-details":
        depth = draw(st.integers(MAX_DETAILS_DEPTH - 1, 3000))
        body = template(path, b"details", b'{"a":' * depth + b"1" + b"}" * depth)
    elif kind == "number":
        fields = DECIMAL_FIELDS.get(path, [b"password"]) + [b"details"]
        field = draw(st.sampled_from(fields))
        value = draw(st.sampled_from(EXTREME_NUMBERS))
        body = template(path, field, b'{"x": ' + value + b"}" if field == b"details" else value)
    elif kind == "string-field":  # numbers (and worse) where strings belong
        body = template(
            path,
            draw(st.sampled_from(STRING_FIELDS[path])),
            draw(
                st.sampled_from(
                    [b"1700000000", b"1.5", b"1e999999", b"[]", b"{}", b'"\\ud800x"', b'"\\u0000"', b"-0", b"true"]
                )
            ),
        )
    elif kind == "bytes":  # odd bytes inside a string
        odd = draw(st.binary(min_size=1, max_size=12))
        body = template(path, draw(st.sampled_from(STRING_FIELDS[path])), b'"' + odd.replace(b'"', b"") + b'"')
    elif kind == "duplicate":
        field = draw(st.sampled_from(DECIMAL_FIELDS.get(path, [b"email"])))
        body = template(path, field, b"1000000", duplicate=True)
    elif kind == "content-type":
        content_type = draw(st.sampled_from(CONTENT_TYPES))
        body = template(path, b"details" if path == "orders" else b"note" if path == "cash" else b"zzz", b"null")
    else:
        body = draw(st.binary(min_size=1, max_size=64))
    return path, body, content_type


@settings(HYPOTHESIS, max_examples=60)
@given(request=hostile_requests())
def test_hostile_bodies_get_4xx_with_a_detail_never_5xx(stack, hostile_strategy, request):
    path, body, content_type = request
    sid, auth = hostile_strategy
    if path == "auth/register":
        r = stack.command.post(
            "/auth/register", content=body, headers={"Content-Type": content_type} if content_type else {}
        )
    else:
        r = post_raw(stack, sid, path, body, auth, content_type)
    assert r.status_code < 500, (request, r.status_code, r.text)
    if r.status_code >= 400:
        assert set(r.json()) == {"detail"}, r.text


@pytest.fixture(scope="module")
def hostile_strategy(stack):
    return stack.new_strategy("hostile")


def test_the_projector_is_healthy_after_the_hostile_bodies(stack, hostile_strategy):
    assert_projector_healthy(stack)


# ---------------------------------------------------------------- the regressions of issue 8, one by one


@pytest.mark.parametrize("literal", [b"90071992547409.93", b"987654321098765.43"])
def test_deposit_is_not_rounded(stack, literal):
    sid, auth = stack.new_strategy()
    r = post_raw(stack, sid, "cash", b'{"event_type": "deposit", "amount": ' + literal + b"}", auth)
    assert r.status_code == 201 and exact(r)["event"]["amount"] == Decimal(literal.decode()), r.text
    assert b'"amount":' + literal in r.content
    [cash] = get_exact(stack, sid, "cash", auth)["items"]
    assert cash["amount"] == Decimal(literal.decode())
    assert exact(stack.query.get(f"/api/v1/strategies/{sid}/state", headers=auth))["nav"]["cash_balance"] == Decimal(
        literal.decode()
    )


def test_a_quantity_beyond_18_decimals_is_refused_not_rounded(stack):
    sid, auth = stack.new_strategy()
    before = stack.event_count()
    r = post_raw(
        stack,
        sid,
        "orders",
        b'{"orders": [{"symbol": "AAPL", "side": "buy", "quantity": 1.00000000000000000001, "price": 1}]}',
        auth,
    )
    assert r.status_code == 422, r.text
    assert r.json() == {"detail": "`orders[0].quantity` must have at most 18 digits after the decimal point"}
    r = post_raw(
        stack,
        sid,
        "orders",
        b'{"orders": [{"symbol": "AAPL", "side": "buy", "quantity": 1.000000000000000001, "price": 1}]}',
        auth,
    )
    assert r.status_code == 200 and exact(r)["accepted"][0]["quantity"] == Decimal("1.000000000000000001")
    assert stack.event_count() > before


@pytest.mark.parametrize(
    "body, field",
    [
        (b'{"orders":[{"symbol":"AAPL","side":"buy","quantity":"1e-20000","price":100}]}', "orders[0].quantity"),
        (b'{"orders":[{"symbol":"AAPL","side":"buy","quantity":1e-20000,"price":100}]}', "orders[0].quantity"),
        (b'{"orders":[{"symbol":"AAPL","side":"buy","quantity":1,"price":100,"fees":"1e-19"}]}', "orders[0].fees"),
    ],
)
def test_a_tiny_exponent_is_422_and_never_freezes_the_projector(stack, body, field):
    sid, auth = stack.new_strategy()
    before = stack.event_count()
    r = post_raw(stack, sid, "orders", body, auth)
    assert r.status_code == 422, r.text
    assert r.json() == {"detail": f"`{field}` must have at most 18 digits after the decimal point"}
    assert stack.event_count() == before
    assert_projector_healthy(stack)


def test_zeros_with_extreme_exponents_are_stored_as_zero(stack):
    sid, auth = stack.new_strategy()
    r = post_raw(
        stack,
        sid,
        "orders",
        b'{"orders":[{"symbol":"ZERO","side":"buy","quantity":1,"price":1,"fees":0E-20000}]}',
        auth,
    )
    assert r.status_code == 200 and exact(r)["accepted"][0]["fees"] == 0, r.text
    r = post_raw(stack, sid, "cash", b'{"event_type":"adjustment","amount":0E+999999}', auth)
    assert r.status_code == 201, r.text
    assert_projector_healthy(stack)


@pytest.mark.parametrize(
    "what, body",
    [
        (
            "orders",
            b'{"orders":[{"symbol":"AAPL","side":"buy","quantity":1,"price":1,"details":'
            + b'{"a":' * 971
            + b"1"
            + b"}" * 971
            + b"}]}",
        ),
        ("cash", b'{"event_type":"fee","amount":-1,"note":' + b"[" * 971 + b"]" * 971 + b"}"),
        ("cash", b'{"event_type":"fee","amount":-1,"details":' + b'{"a":' * 971 + b"1" + b"}" * 971 + b"}"),
        ("positions/snapshot", b'{"positions":' + b"[" * 971 + b"]" * 971 + b"}"),
        (
            "auth/register",
            b'{"email":"deep@example.com","password":"deep-password-12","x":'
            + b'{"a":' * 971
            + b"1"
            + b"}" * 971
            + b"}",
        ),
        ("auth/register", b"[" * 971 + b"]" * 971),
    ],
)
def test_deep_nesting_is_4xx_not_500(stack, what, body):
    sid, auth = stack.new_strategy()
    if what == "auth/register":
        r = stack.command.post("/auth/register", content=body, headers=JSON)
    else:
        r = post_raw(stack, sid, what, body, auth)
    assert r.status_code in (400, 422) and set(r.json()) == {"detail"}, r.text


def test_details_depth_limit(stack):
    sid, auth = stack.new_strategy()

    def nested(depth: int) -> bytes:  # ``details`` itself is level 1
        return (
            b'{"orders":[{"symbol":"AAPL","side":"buy","quantity":1,"price":1,"details":'
            + b'{"a":' * depth
            + b"1"
            + b"}" * depth
            + b"}]}"
        )

    assert post_raw(stack, sid, "orders", nested(MAX_DETAILS_DEPTH), auth).status_code == 200
    r = post_raw(stack, sid, "orders", nested(MAX_DETAILS_DEPTH + 1), auth)
    assert r.status_code == 422 and r.json() == {
        "detail": f"`orders[0].details` must be nested at most {MAX_DETAILS_DEPTH} levels deep"
    }
    r = post_raw(
        stack,
        sid,
        "orders",
        b'{"orders":[{"symbol":"AAPL","side":"buy","quantity":1,"price":1,"details":{"big":1e400}}]}',
        auth,
    )
    assert r.status_code == 422 and "`orders[0].details` contains a number out of range" in r.json()["detail"]
    assert_projector_healthy(stack)


def test_non_utf8_body_is_400(stack):
    sid, auth = stack.new_strategy()
    r = post_raw(stack, sid, "cash", b'{"event_type":"fee","amount":-1,"note":"caf\xe9"}', auth)
    assert r.status_code == 400 and "not valid UTF-8" in r.json()["detail"], r.text
    r = stack.command.post("/auth/register", content=b'{"email":"\xff@example.com","password":"x"}', headers=JSON)
    assert r.status_code == 400 and "not valid UTF-8" in r.json()["detail"], r.text


def test_unpaired_surrogate_escape_is_400(stack):
    sid, auth = stack.new_strategy()
    r = post_raw(stack, sid, "cash", b'{"event_type":"fee","amount":-1,"note":"\\ud800"}', auth)
    assert r.status_code == 400 and "surrogate" in r.json()["detail"], r.text
    r = post_raw(stack, sid, "cash", b'{"event_type":"fee","amount":-1,"note":"\\ud83d\\ude00"}', auth)
    assert r.status_code == 201 and r.json()["event"]["note"] == "\U0001f600"


def test_duplicate_keys_are_400_and_store_nothing(stack):
    sid, auth = stack.new_strategy()
    before = stack.event_count()
    r = post_raw(
        stack,
        sid,
        "orders",
        b'{"orders":[{"symbol":"AAPL","side":"buy","price":1,"quantity":1,"quantity":1000000}]}',
        auth,
    )
    assert r.status_code == 400 and r.json() == {"detail": 'Malformed JSON body: duplicate key "quantity" in an object'}
    assert stack.event_count() == before


def test_numeric_executed_at_is_422(stack):
    sid, auth = stack.new_strategy()
    r = post_raw(
        stack,
        sid,
        "orders",
        b'{"orders":[{"symbol":"AAPL","side":"buy","quantity":1,"price":1,"executed_at":1767225600}]}',
        auth,
    )
    assert r.status_code == 422 and "`orders[0].executed_at`" in r.json()["detail"], r.text


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_literals_are_400(stack, literal):
    sid, auth = stack.new_strategy()
    r = post_raw(stack, sid, "cash", b'{"event_type":"fee","amount":' + literal + b"}", auth)
    assert r.status_code == 400 and "is not a JSON number" in r.json()["detail"], r.text


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1", "application/xml"],
)
def test_non_json_content_types_are_415(stack, content_type):
    sid, auth = stack.new_strategy()
    body = b'{"event_type":"deposit","amount":1}'
    r = post_raw(stack, sid, "cash", body, auth, content_type)
    assert r.status_code == 415 and r.json() == {"detail": "Content-Type must be application/json"}
    r = stack.command.post(
        "/auth/register",
        content=b'{"email":"ct@example.com","password":"content-type-1"}',
        headers={"Content-Type": content_type} if content_type else {},
    )
    assert r.status_code == 415 and r.json() == {"detail": "Content-Type must be application/json"}
    assert post_raw(stack, sid, "cash", body, auth, "application/json; charset=UTF-8").status_code == 201


def _raw_request(port: int, method: str, path: str, headers: bytes, body: bytes = b"") -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            method.encode() + b" " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n"
            + headers
            + b"Connection: close\r\n\r\n"
            + body
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, payload = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), payload


@pytest.mark.parametrize(
    "header",
    [
        b"Authorization: Bearer \xff\xfe",
        b"Authorization: \xc3\x28",
        b"Authorization: Bearer fq_live_" + b"\xe9" * 43,
        b"Authorization: Bearer fq_live_" + b"\xc3\xa9" * 21 + b"A",
    ],
)
def test_non_utf8_authorization_is_401(stack, header):
    sid, _ = stack.new_strategy()
    body = b'{"event_type":"deposit","amount":1}'
    status, payload = _raw_request(stack.command_port, "POST", f"/api/v1/strategies/{sid}/cash", header + b"\r\n", body)
    assert status == 401 and set(json.loads(payload)) == {"detail"}
    status, payload = _raw_request(stack.query_port, "GET", f"/api/v1/strategies/{sid}/state", header + b"\r\n")
    assert status == 401 and set(json.loads(payload)) == {"detail"}


@pytest.mark.parametrize(
    "cookie",
    [
        b"Cookie: access_token=\xff\xfe",
        b"Cookie: \xff=\xff; access_token=\xc3\x28",
        b'Cookie: access_token="\\377"',
        b"Cookie: access_token=%ff%fe%ed%a0%80",
    ],
)
def test_non_utf8_cookie_is_401(stack, cookie):
    for method, path in [("POST", "/strategies"), ("GET", "/strategies")]:
        body = b'{"name":"x"}' if method == "POST" else b""
        status, payload = _raw_request(stack.command_port, method, path, cookie + b"\r\n", body)
        assert status == 401 and set(json.loads(payload)) == {"detail"}, payload
    status, payload = _raw_request(stack.command_port, "POST", "/auth/logout", cookie + b"\r\n")
    assert status == 200, payload
    sid, auth = stack.new_strategy()  # a stray cookie next to a valid key changes nothing
    status, _ = _raw_request(
        stack.command_port,
        "POST",
        f"/api/v1/strategies/{sid}/cash",
        cookie + b"\r\nAuthorization: " + auth["Authorization"].encode() + b"\r\n",
        b'{"event_type":"deposit","amount":1}',
    )
    assert status == 201
