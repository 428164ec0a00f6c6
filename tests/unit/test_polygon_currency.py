"""PolygonClient's currencies: a stock's ticker details, forex and crypto pairs (httpx.MockTransport)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import httpx
import pytest

from services.market_data.polygon import PolygonClient, PolygonError, from_polygon_ticker, is_pair, to_polygon_ticker

KEY = "pk_test_SECRET123"


def details(ticker: str, currency: str | None) -> dict:
    """Polygon's /v3/reference/tickers/{ticker} answer (trimmed)."""
    results = {"ticker": ticker, "name": "Some Company", "market": "stocks", "locale": "us", "active": True}
    if currency is not None:
        results["currency_name"] = currency
    return {"request_id": "31d59dda-80e5-4721-8496-d0d32a654afe", "results": results, "status": "OK"}


def make(handler) -> PolygonClient:
    return PolygonClient(KEY, transport=httpx.MockTransport(handler), sleep=lambda s: None)


def test_ticker_currency_reads_currency_name_upper_cased():
    seen: list[httpx.URL] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return httpx.Response(200, json=details("SAP", "eur"))

    assert make(handler).ticker_currency("sap") == "EUR"
    assert [u.path for u in seen] == ["/v3/reference/tickers/SAP"]
    assert seen[0].params["apiKey"] == KEY


def test_ticker_currency_none_when_unknown_or_not_iso():
    answers = {
        "/v3/reference/tickers/NOPE": httpx.Response(404, json={"status": "NOT_FOUND", "message": "Ticker not found."}),
        "/v3/reference/tickers/ODD": httpx.Response(200, json=details("ODD", "points")),
        "/v3/reference/tickers/BARE": httpx.Response(200, json=details("BARE", None)),
    }
    client = make(lambda request: answers[request.url.path])
    assert [client.ticker_currency(s) for s in ("NOPE", "ODD", "BARE")] == [None, None, None]


def test_ticker_currency_retries_then_fails_without_the_key():
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(503)

    with pytest.raises(PolygonError) as raised:
        make(handler).ticker_currency("AAPL")
    assert len(calls) == 6 and KEY not in str(raised.value)


def test_pairs_are_not_asked_for_details_nor_splits():
    def handler(request: httpx.Request) -> httpx.Response:  # pragma: no cover - must not be called
        raise AssertionError(f"unexpected request {request.url}")

    client = make(handler)
    for symbol in ("C:EURUSD", "BTC-USD", "ETH-EUR"):
        assert is_pair(symbol)
        assert client.ticker_currency(symbol) is None
        assert client.splits(symbol) == []
    assert not is_pair("AAPL") and not is_pair("BRK-B") and not is_pair("DEMO-BTC-USD")


def test_forex_bars_come_from_the_aggregates_endpoint_under_their_own_ticker():
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        t = int(datetime(2024, 1, 2, tzinfo=UTC).timestamp() * 1000)
        return httpx.Response(200, json={"ticker": "C:EURUSD", "status": "OK", "results": [{"t": t, "c": 1.0945}]})

    bars = make(handler).daily_bars("c:eurusd", date(2024, 1, 2), date(2024, 1, 2))
    assert paths == ["/v2/aggs/ticker/C:EURUSD/range/1/day/2024-01-02/2024-01-02"]
    assert [(b.symbol, b.date, b.close) for b in bars] == [("C:EURUSD", date(2024, 1, 2), Decimal("1.0945"))]


def test_tickers_of_pairs():
    assert to_polygon_ticker("C:EURUSD") == "C:EURUSD" and from_polygon_ticker("C:EURUSD") == "C:EURUSD"
    assert to_polygon_ticker("eth-eur") == "X:ETHEUR" and from_polygon_ticker("X:ETHEUR") == "ETH-EUR"
    assert to_polygon_ticker("BTC-USD") == "X:BTCUSD" and from_polygon_ticker("X:BTCUSD") == "BTC-USD"
    assert to_polygon_ticker("ABC-XYZ") == "ABC-XYZ"  # XYZ is no currency: a stock's ticker
    assert from_polygon_ticker("X:ABCXYZ") == "X:ABCXYZ"
