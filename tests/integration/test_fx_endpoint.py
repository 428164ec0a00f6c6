"""GET /api/v1/fx on a real query_api (issue 23): direct, inverse and cross rates as the ledger converts,
the default range, exact decimals, and a 400 naming the parameter for every bad input."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal, localcontext

import pytest

from botranks_domain.bars import Bar

pytestmark = pytest.mark.integration


def D(text: str) -> Decimal:
    return Decimal(text)


def rounded(value: Decimal) -> Decimal:
    """Half-even to 18 places, worked out with ample precision (independently of the ledger's context)."""
    with localcontext() as ctx:
        ctx.prec = 60
        return value.quantize(Decimal("1e-18"))


def inverse(close: str) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 60
        return rounded(Decimal(1) / Decimal(close))


@pytest.fixture(scope="module")
def fx(stack):
    bars = {
        "C:EURUSD": [
            ("2022-01-03", "1.1300"),
            ("2024-01-02", "1.0945"),
            ("2024-01-03", "1.0920"),
            ("2024-01-05", "1.1"),
        ],
        "C:GBPUSD": [("2024-01-02", "1.27")],
        "C:USDJPY": [("2024-01-02", "141.83"), ("2024-01-04", "142")],
        "C:USDCHF": [("2024-01-04", "0.85")],  # CHF/GBP: the GBP leg from 01-02, the CHF leg from 01-04
    }
    stack.db.prices.write_bars(
        [Bar(symbol=s, date=date.fromisoformat(d), close=D(c)) for s, rows in bars.items() for d, c in rows], "test"
    )
    return stack


def get(stack, **params):
    response = stack.query.get("/api/v1/fx", params=params)  # no credentials: public
    return response.status_code, json.loads(response.text, parse_float=Decimal)


def rates(body) -> list[tuple[str, Decimal, str]]:
    return [(r["date"], r["rate"], r["source"]) for r in body["rates"]]


def test_direct_rates_are_the_stored_closes_exactly(fx):
    status, body = get(fx, **{"from": "EUR", "to": "USD", "start": "2024-01-01", "end": "2024-01-05"})
    assert status == 200
    assert (body["from"], body["to"]) == ("EUR", "USD")
    assert rates(body) == [
        ("2024-01-02", D("1.0945"), "direct"),
        ("2024-01-03", D("1.0920"), "direct"),
        ("2024-01-05", D("1.1"), "direct"),
    ]
    text = fx.query.get("/api/v1/fx", params={"from": "EUR", "to": "USD", "start": "2024-01-02", "end": "2024-01-02"})
    assert '"rate":1.0945' in text.text  # an exact JSON number, as every decimal of the API


def test_inverse_rates_are_one_over_the_close_rounded_to_18_places(fx):
    status, body = get(fx, **{"from": "USD", "to": "EUR", "start": "2024-01-02", "end": "2024-01-04"})
    assert status == 200
    assert rates(body) == [
        ("2024-01-02", inverse("1.0945"), "inverse"),
        ("2024-01-03", inverse("1.0920"), "inverse"),
    ]  # 01-04: no close of any EUR/USD symbol that day
    assert rates(body)[0][1] == D("0.913659205116491549")


def test_cross_rates_go_through_usd_with_each_legs_last_close(fx):
    status, body = get(fx, **{"from": "GBP", "to": "JPY", "start": "2024-01-01", "end": "2024-01-10"})
    assert status == 200
    assert rates(body) == [
        ("2024-01-02", D("1.27") * D("141.83"), "cross"),
        ("2024-01-04", D("1.27") * D("142"), "cross"),  # GBP/USD's last close on or before the day
    ]
    # a cross whose legs start on different days: the days before both are known are left out
    status, body = get(fx, **{"from": "CHF", "to": "GBP", "start": "2024-01-01", "end": "2024-01-10"})
    assert status == 200
    assert rates(body) == [("2024-01-04", rounded(inverse("0.85") * inverse("1.27")), "cross")]


def test_the_default_range_is_the_last_366_days_up_to_the_latest_rate(fx):
    status, body = get(fx, **{"from": "EUR", "to": "USD"})
    assert status == 200
    assert [r[0] for r in rates(body)] == ["2024-01-02", "2024-01-03", "2024-01-05"]  # not 2022-01-03
    status, body = get(fx, **{"from": "EUR", "to": "USD", "start": "2022-01-01"})  # up to the latest
    assert [r[0] for r in rates(body)] == ["2022-01-03", "2024-01-02", "2024-01-03", "2024-01-05"]
    status, body = get(fx, **{"from": "EUR", "to": "USD", "end": "2024-01-02", "start": ""})
    assert [r[0] for r in rates(body)] == ["2024-01-02"]  # 366 days back from 2024-01-02: not 2022
    status, body = get(fx, **{"from": "EUR", "to": "USD", "start": "2023-01-03", "end": "2023-12-31"})
    assert rates(body) == []  # no close in the range (the last one before it does not make a day)


def test_no_rates_known_is_an_empty_list(fx):
    assert get(fx, **{"from": "SEK", "to": "NOK"}) == (200, {"from": "SEK", "to": "NOK", "rates": []})
    assert get(fx, **{"from": "EUR", "to": "USD", "start": "2030-01-01"})[1]["rates"] == []


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"from": "EURO", "to": "USD"}, "from"),
        ({"from": "E" * 5000, "to": "USD"}, "from"),
        ({"from": "XYZ", "to": "USD"}, "from"),
        ({"from": "eur", "to": "USD"}, "from"),
        ({"from": "EUR", "to": "US1"}, "to"),
        ({"to": "USD"}, "from"),
        ({"from": "EUR"}, "to"),
        ({"from": "EUR", "to": "USD", "start": "2024-13-01"}, "start"),
        ({"from": "EUR", "to": "USD", "end": "20240101"}, "end"),
        ({"from": "EUR", "to": "USD", "end": "yesterday"}, "end"),
        ({"from": "EUR", "to": "USD", "start": "2024-01-05", "end": "2024-01-04"}, "start"),
        ({"from": "EUR", "to": "EUR"}, "from"),
        ({"from": "EUR", "to": "USD", "start": "2000-01-01", "end": "2010-01-10"}, "start"),
        ({"from": "EUR", "to": "USD", "start": "2000-01-01"}, "start"),  # up to 2024: too long a range
    ],
)
def test_bad_parameters_are_400_naming_them(fx, params, named):
    status, body = get(fx, **params)
    assert status == 400, body
    assert list(body) == ["detail"], body
    assert f"`{named}`" in body["detail"] or f"parameter '{named}'" in body["detail"], body


def test_the_longest_range_is_answered(fx):
    start = date(2024, 1, 5) - timedelta(days=3659)
    status, body = get(fx, **{"from": "EUR", "to": "USD", "start": start.isoformat(), "end": "2024-01-05"})
    assert status == 200 and len(body["rates"]) == 4


def test_the_openapi_document_describes_it_as_public(fx):
    doc = fx.query.get("/schema/openapi.json").json()
    op = doc["paths"]["/api/v1/fx"]["get"]
    assert op["security"] == [{}] and op["tags"] == ["Public data"]
    params = {p["name"]: p for p in op["parameters"]}
    assert params["from"]["required"] and "EUR" in params["from"]["schema"]["enum"]
    assert not params["start"]["required"] and set(op["responses"]) >= {"200", "400"}
