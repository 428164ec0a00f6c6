"""PolygonClient against recorded-looking responses through httpx.MockTransport (never the network)."""

from __future__ import annotations

import json
import traceback
from datetime import UTC, date, datetime
from decimal import Decimal

import httpx
import pytest
from structlog.testing import capture_logs

from services.market_data.polygon import (
    PolygonClient,
    PolygonError,
    from_polygon_ticker,
    to_polygon_ticker,
)

KEY = "pk_test_SECRET123"


def ms(day: str, hour: int = 5) -> int:
    """Polygon's `t`: epoch ms of the bar start (stocks: midnight New York, crypto: midnight UTC)."""
    d = date.fromisoformat(day)
    return int(datetime(d.year, d.month, d.day, hour, tzinfo=UTC).timestamp() * 1000)


def agg(day: str, c: float, hour: int = 5) -> dict:
    return {
        "v": 7.09e7,
        "vw": c - 0.1,
        "o": c - 1,
        "c": c,
        "h": c + 1.5,
        "l": c - 2.25,
        "t": ms(day, hour),
        "n": 541277,
    }


def page(ticker: str, results: list[dict], next_url: str | None = None, status: str = "OK") -> dict:
    body = {
        "ticker": ticker,
        "queryCount": len(results),
        "resultsCount": len(results),
        "adjusted": False,
        "results": results,
        "status": status,
        "request_id": "6a7e466379af0a71039d60cc78e72282",
        "count": len(results),
    }
    if next_url:
        body["next_url"] = next_url
    return body


def make(handler, **kw) -> tuple[PolygonClient, list[float]]:
    sleeps: list[float] = []
    client = PolygonClient(KEY, transport=httpx.MockTransport(handler), sleep=sleeps.append, **kw)
    return client, sleeps


def test_pagination_across_two_pages_with_api_key_on_both():
    seen: list[httpx.URL] = []
    cursor = "https://api.polygon.io/v2/aggs/ticker/AAPL/range/1/day/1704067200000/1704499200000?cursor=bGltaXQ9Mg"

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        if "cursor" not in request.url.params:
            return httpx.Response(
                200, json=page("AAPL", [agg("2024-01-02", 185.64), agg("2024-01-03", 184.25)], next_url=cursor)
            )
        return httpx.Response(200, json=page("AAPL", [agg("2024-01-04", 181.91)]))

    client, sleeps = make(handler)
    bars = client.daily_bars("aapl", date(2024, 1, 1), date(2024, 1, 5))

    assert [b.date for b in bars] == [date(2024, 1, 2), date(2024, 1, 3), date(2024, 1, 4)]
    assert all(b.symbol == "AAPL" for b in bars)
    first = bars[0]
    assert (first.close, first.open, first.high, first.low, first.volume) == (
        Decimal("185.64"),
        Decimal("184.64"),
        Decimal("187.14"),
        Decimal("183.39"),
        Decimal("70900000.0"),
    )
    assert len(seen) == 2 and sleeps == []
    assert seen[0].path == "/v2/aggs/ticker/AAPL/range/1/day/2024-01-01/2024-01-05"
    assert dict(seen[0].params) == {"adjusted": "false", "sort": "asc", "limit": "50000", "apiKey": KEY}
    assert seen[1].params["cursor"] == "bGltaXQ9Mg" and seen[1].params["apiKey"] == KEY


def test_crypto_symbol_maps_both_ways():
    assert to_polygon_ticker("BTC-USD") == "X:BTCUSD"
    assert to_polygon_ticker("eth-usd") == "X:ETHUSD"
    assert to_polygon_ticker("AAPL") == "AAPL"
    assert to_polygon_ticker("BRK-B") == "BRK-B"
    assert from_polygon_ticker("X:BTCUSD") == "BTC-USD"
    assert from_polygon_ticker("X:DOGEUSD") == "DOGE-USD"
    assert from_polygon_ticker("AAPL") == "AAPL"

    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        # crypto bars start at midnight UTC, every calendar day
        return httpx.Response(
            200, json=page("X:BTCUSD", [agg("2024-01-06", 43929.1, hour=0), agg("2024-01-07", 43934.6, hour=0)])
        )

    client, _ = make(handler)
    bars = client.daily_bars("BTC-USD", date(2024, 1, 6), date(2024, 1, 7))
    assert paths == ["/v2/aggs/ticker/X:BTCUSD/range/1/day/2024-01-06/2024-01-07"]
    assert [(b.symbol, b.date, b.close) for b in bars] == [
        ("BTC-USD", date(2024, 1, 6), Decimal("43929.1")),
        ("BTC-USD", date(2024, 1, 7), Decimal("43934.6")),
    ]


@pytest.mark.parametrize("status", ["OK", "DELAYED"])
def test_no_results_is_empty(status):
    def handler(request):
        body = {
            "ticker": "AAPL",
            "queryCount": 0,
            "resultsCount": 0,
            "adjusted": False,
            "status": status,
            "request_id": "abc",
            "count": 0,
        }
        return httpx.Response(200, json=body)

    client, _ = make(handler)
    assert client.daily_bars("AAPL", date(2024, 1, 6), date(2024, 1, 7)) == []


def test_429_then_200_honors_retry_after():
    calls = iter(
        [
            httpx.Response(
                429,
                headers={"Retry-After": "7"},
                json={"status": "ERROR", "error": "You've exceeded the maximum requests per minute"},
            ),
            httpx.Response(429, json={"status": "ERROR"}),
            httpx.Response(200, json=page("SPY", [agg("2024-01-02", 472.65)])),
        ]
    )
    client, sleeps = make(lambda request: next(calls), backoff_s=0.5)
    bars = client.daily_bars("SPY", date(2024, 1, 2), date(2024, 1, 2))
    assert [b.close for b in bars] == [Decimal("472.65")]
    assert sleeps == [7.0, 1.0]  # Retry-After, then the exponential backoff of attempt 2


def test_5xx_exhaustion_raises_polygon_error():
    count = 0

    def handler(request):
        nonlocal count
        count += 1
        return httpx.Response(503, text="upstream unavailable")

    client, sleeps = make(handler, max_retries=3, backoff_s=0.5)
    with pytest.raises(PolygonError) as err:
        client.daily_bars("SPY", date(2024, 1, 2), date(2024, 1, 3))
    assert count == 4
    assert sleeps == [0.5, 1.0, 2.0]
    assert err.value.status_code == 503
    assert "503" in str(err.value) and KEY not in str(err.value)


def test_403_is_polygon_error_without_the_key():
    def handler(request):
        return httpx.Response(
            403,
            json={
                "status": "NOT_AUTHORIZED",
                "request_id": "f0e1",
                "message": f"You are not entitled to this data (key {KEY}). Please upgrade your plan at https://polygon.io/pricing",
            },
        )

    client, sleeps = make(handler)
    with pytest.raises(PolygonError) as err:
        client.daily_bars("NVDA", date(2024, 1, 2), date(2024, 1, 3))
    message = str(err.value)
    assert "403" in message and "not entitled" in message and "NVDA" in message
    assert KEY not in message and KEY not in repr(err.value)
    assert KEY not in "".join(traceback.format_exception(err.value))
    assert err.value.status_code == 403 and sleeps == []


def test_error_status_in_body_is_polygon_error():
    client, _ = make(lambda r: httpx.Response(200, json={"status": "ERROR", "request_id": "x", "error": "bad ticker"}))
    with pytest.raises(PolygonError):
        client.daily_bars("AAPL", date(2024, 1, 2), date(2024, 1, 3))


def test_next_url_to_another_host_is_not_followed():
    def handler(request):
        return httpx.Response(
            200, json=page("AAPL", [agg("2024-01-02", 185.64)], next_url="https://evil.example/v2/aggs?cursor=x")
        )

    client, _ = make(handler)
    with pytest.raises(PolygonError, match="another host"):
        client.daily_bars("AAPL", date(2024, 1, 2), date(2024, 1, 3))


def test_httpx_request_log_redacts_key(caplog):
    client, _ = make(lambda r: httpx.Response(200, json=page("AAPL", [])))
    with caplog.at_level("INFO", logger="httpx"):
        client.daily_bars("AAPL", date(2024, 1, 2), date(2024, 1, 3))
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "apiKey=***" in text and KEY not in text


def test_response_json_shape_roundtrip():
    # a stored response body as Polygon sends it (numbers as JSON numbers)
    raw = json.dumps(page("KO", [agg("2024-03-15", 59.43)])).encode()
    client, _ = make(lambda r: httpx.Response(200, content=raw, headers={"content-type": "application/json"}))
    (bar,) = client.daily_bars("KO", date(2024, 3, 15), date(2024, 3, 15))
    assert bar.close == Decimal("59.43") and bar.date == date(2024, 3, 15)


# ---------------------------------------------------------------- splits


def split(day: str, split_from, split_to, ticker: str = "AAPL") -> dict:
    return {
        "execution_date": day,
        "id": f"E{day.replace('-', '')}",
        "split_from": split_from,
        "split_to": split_to,
        "ticker": ticker,
    }


def splits_page(results: list[dict] | None, next_url: str | None = None) -> dict:
    body: dict = {"status": "OK", "request_id": "7f2a9c1d4e5b6a7f8e9d0c1b2a3f4e5d"}
    if results is not None:
        body["results"] = results
    if next_url:
        body["next_url"] = next_url
    return body


def test_splits_query_params_and_pagination_with_api_key_on_every_page():
    seen: list[httpx.URL] = []
    cursors = {
        None: "https://api.polygon.io/v3/reference/splits?cursor=YXA9Mg",
        "YXA9Mg": "/v3/reference/splits?cursor=YXA9Mw",
        "YXA9Mw": None,
    }
    pages = {
        None: [split("2000-06-21", 1, 2), split("2005-02-28", 1, 2)],
        "YXA9Mg": [split("2014-06-09", 1, 7)],
        "YXA9Mw": [split("2020-08-31", 1, 4)],
    }

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        cursor = request.url.params.get("cursor")
        return httpx.Response(200, json=splits_page(pages[cursor], next_url=cursors[cursor]))

    client, sleeps = make(handler)
    splits = client.splits("aapl", date(1990, 1, 1), date(2024, 12, 31))

    assert [(s.symbol, s.ex_date, s.split_from, s.split_to) for s in splits] == [
        ("AAPL", date(2000, 6, 21), Decimal(1), Decimal(2)),
        ("AAPL", date(2005, 2, 28), Decimal(1), Decimal(2)),
        ("AAPL", date(2014, 6, 9), Decimal(1), Decimal(7)),
        ("AAPL", date(2020, 8, 31), Decimal(1), Decimal(4)),
    ]
    assert len(seen) == 3 and sleeps == []
    assert seen[0].path == "/v3/reference/splits"
    assert dict(seen[0].params) == {
        "ticker": "AAPL",
        "execution_date.gte": "1990-01-01",
        "execution_date.lte": "2024-12-31",
        "limit": "1000",
        "order": "asc",
        "sort": "execution_date",
        "apiKey": KEY,
    }
    assert [u.params.get("cursor") for u in seen] == [None, "YXA9Mg", "YXA9Mw"]
    assert all(u.params["apiKey"] == KEY and u.host == "api.polygon.io" for u in seen)


def test_splits_only_the_dates_given_are_sent():
    seen: list[httpx.URL] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return httpx.Response(200, json=splits_page([]))

    client, _ = make(handler)
    assert client.splits("NVDA") == []
    assert client.splits("NVDA", start=date(2021, 1, 1)) == []
    assert client.splits("NVDA", end=date(2024, 6, 30)) == []
    base = {"ticker": "NVDA", "limit": "1000", "order": "asc", "sort": "execution_date", "apiKey": KEY}
    assert [dict(u.params) for u in seen] == [
        base,
        {**base, "execution_date.gte": "2021-01-01"},
        {**base, "execution_date.lte": "2024-06-30"},
    ]


@pytest.mark.parametrize("results", [None, []])
def test_splits_unknown_ticker_is_empty(results):
    client, _ = make(lambda r: httpx.Response(200, json=splits_page(results)))
    assert client.splits("ZZZZQ", date(2000, 1, 1), date(2024, 1, 1)) == []


def test_splits_fractional_factor_is_exact_decimal_from_the_json_text():
    # 3-for-2 as Polygon sometimes sends it: from 1 to 1.5; and a factor a float cannot hold
    raw = (
        b'{"status":"OK","request_id":"r","results":['
        b'{"execution_date":"2021-07-01","id":"a","split_from":1,"split_to":1.5,"ticker":"BRK.B"},'
        b'{"execution_date":"2022-07-01","id":"b","split_from":3,"split_to":0.100000000000000005,'
        b'"ticker":"BRK.B"}]}'
    )
    client, _ = make(lambda r: httpx.Response(200, content=raw, headers={"content-type": "application/json"}))
    first, second = client.splits("BRK.B")
    assert first.split_to == Decimal("1.5") and str(first.split_to) == "1.5"
    assert first.split_from == Decimal(1) and isinstance(first.split_from, Decimal)
    assert second.split_to == Decimal("0.100000000000000005")  # as a float this would be 0.1
    assert second.ratio == "0.100000000000000005:3"


def test_splits_other_tickers_and_invalid_results_are_skipped_one_per_date():
    results = [
        split("2020-08-31", 1, 4),
        split("2020-08-31", 1, 4, ticker="AAPLX"),  # another ticker: ignored
        split("2021-01-04", 0, 2),  # split_from must be > 0: skipped
        split("2021-02-01", 1, 2_000_000),  # too large: skipped
        {"execution_date": "not a date", "split_from": 1, "split_to": 2, "ticker": "AAPL"},
        {"execution_date": "2022-03-01", "ticker": "AAPL"},  # factors missing: skipped
        split("2019-05-01", 10, 1),  # out of order: sorted
        split("2019-05-01", 10, 1),  # same ex_date twice: one kept
    ]
    client, _ = make(lambda r: httpx.Response(200, json=splits_page(results)))
    with capture_logs() as logs:
        splits = client.splits("AAPL")
    assert [(s.ex_date, s.ratio) for s in splits] == [(date(2019, 5, 1), "1:10"), (date(2020, 8, 31), "4:1")]
    skipped = [e for e in logs if e["event"] == "polygon_split_skipped"]
    assert [e["date"] for e in skipped] == ["2021-01-04", "2021-02-01", "not a date", "2022-03-01"]
    assert all(e["log_level"] == "warning" and e["symbol"] == "AAPL" for e in skipped)
    assert "split_from must be > 0" in skipped[0]["reason"]


def test_splits_of_crypto_make_no_request():
    calls: list[httpx.Request] = []
    client, _ = make(lambda r: calls.append(r) or httpx.Response(500))
    assert client.splits("BTC-USD") == []
    assert client.splits("eth-usd", date(2020, 1, 1), date(2024, 1, 1)) == []
    assert calls == []


def test_splits_429_then_200_honors_retry_after():
    calls = iter(
        [
            httpx.Response(
                429,
                headers={"Retry-After": "12"},
                json={"status": "ERROR", "error": "You've exceeded the maximum requests per minute"},
            ),
            httpx.Response(200, json=splits_page([split("2024-06-10", 1, 10, ticker="NVDA")])),
        ]
    )
    client, sleeps = make(lambda request: next(calls), backoff_s=0.5)
    (only,) = client.splits("NVDA", date(2024, 1, 1), date(2024, 12, 31))
    assert (only.ex_date, only.split_from, only.split_to) == (date(2024, 6, 10), Decimal(1), Decimal(10))
    assert sleeps == [12.0]


def test_splits_429_forever_is_polygon_error_without_the_key():
    count = 0

    def handler(request):
        nonlocal count
        count += 1
        return httpx.Response(429, json={"status": "ERROR", "error": f"slow down {KEY}"})

    client, sleeps = make(handler, max_retries=2, backoff_s=0.5)
    with pytest.raises(PolygonError) as err:
        client.splits("AAPL", date(2020, 1, 1), date(2020, 12, 31))
    assert count == 3 and sleeps == [0.5, 1.0]
    assert err.value.status_code == 429
    message = str(err.value)
    assert "429" in message and "AAPL splits" in message and KEY not in message
    assert KEY not in "".join(traceback.format_exception(err.value))


def test_splits_next_url_to_another_host_is_not_followed():
    seen: list[httpx.URL] = []

    def handler(request):
        seen.append(request.url)
        return httpx.Response(
            200,
            json=splits_page([split("2020-08-31", 1, 4)], next_url="https://evil.example/v3/reference/splits?cursor=x"),
        )

    client, _ = make(handler)
    with pytest.raises(PolygonError, match="another host") as err:
        client.splits("AAPL")
    assert KEY not in str(err.value) and len(seen) == 1


def test_history_start_on_29_february_falls_back_to_the_28th():
    from datetime import date

    from services.market_data.service import years_before

    assert years_before(date(2028, 2, 29), 5) == date(2023, 2, 28)
    assert years_before(date(2028, 2, 29), 4) == date(2024, 2, 29)
    assert years_before(date(2026, 12, 6), 5) == date(2021, 12, 6)
