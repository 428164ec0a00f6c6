"""Currencies in market data (issue 23), on real PostgreSQL: price files' currency column and FX files,
the currency conflict that fails a file whole, and the daemon fetching the FX pairs strategies need
(Polygon faked with httpx.MockTransport: nothing leaves the process)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from devtools.stack import sql
from libs.infra.db import Database
from services.market_data.polygon import PolygonClient
from services.market_data.service import MarketDataDaemon, fetch, import_files

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def db(make_database):
    d = Database(make_database(), pool_size=1).create_tables()
    yield d
    d.close()


def closes(db: Database, symbol: str) -> list[tuple[date, Decimal]]:
    with sql(db) as curs:
        rows = curs.execute("SELECT date, close FROM prices WHERE symbol = %s ORDER BY date", (symbol,)).fetchall()
    return [(r["date"], r["close"]) for r in rows]


def write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_import_records_the_currency_column_and_fx_files_are_closes(db, tmp_path):
    prices = write(
        tmp_path,
        "eu.csv",
        "symbol,date,close,currency\nSAPX,2024-01-02,139.5,eur\nSAPX,2024-01-03,140.1,\nAAPX,2024-01-02,185.64,\n",
    )
    fx = write(tmp_path, "fx.csv", "symbol,date,close\nC:EURUSD,2024-01-02,1.0945\nC:EURUSD,2024-01-03,1.0920\n")
    written, errors = import_files(db, [prices, fx])
    assert (written, errors) == (5, [])
    assert db.prices.currencies(["SAPX", "AAPX", "C:EURUSD"]) == {"SAPX": "EUR"}  # AAPX: not said
    with sql(db) as curs:
        row = curs.execute("SELECT source FROM symbol_currencies WHERE symbol = 'SAPX'").fetchone()
    assert row["source"] == "file:eu.csv"
    assert closes(db, "C:EURUSD") == [(date(2024, 1, 2), Decimal("1.0945")), (date(2024, 1, 3), Decimal("1.0920"))]


def test_a_currency_conflict_fails_the_file_whole_and_names_both(db, tmp_path):
    db.prices.record_currencies({"BMWX": "EUR"}, "test")
    bad = write(
        tmp_path,
        "usd.csv",
        "symbol,date,close,currency\nOTHERX,2024-01-02,5,USD\nBMWX,2024-01-02,100,usd\n",
    )
    good = write(tmp_path, "good.csv", "symbol,date,close\nGOODX,2024-01-02,7\n")
    written, errors = import_files(db, [bad, good])
    assert written == 1 and len(errors) == 1
    assert errors[0].startswith(f"{bad}: ") and "BMWX" in errors[0] and "EUR" in errors[0] and "USD" in errors[0]
    assert closes(db, "BMWX") == [] and closes(db, "OTHERX") == []  # nothing of the bad file
    assert db.prices.currencies(["BMWX", "OTHERX"]) == {"BMWX": "EUR"}
    assert closes(db, "GOODX") == [(date(2024, 1, 2), Decimal(7))]


def test_row_errors_of_the_currency_column_write_nothing(db, tmp_path):
    path = write(tmp_path, "rows.csv", "symbol,date,close,currency\nROWX,2024-01-02,5,EUR\nROWX,2024-01-03,5,GBP\n")
    written, errors = import_files(db, [path])
    assert written == 0 and errors == ["rows.csv line 3: currency GBP of ROWX differs from EUR (at line 2)"]
    assert closes(db, "ROWX") == [] and db.prices.currencies(["ROWX"]) == {}


# ---------------------------------------------------------------- the daemon

DETAILS = {"AAPX": "usd", "SAPY": "eur", "SPY": "usd", "ESTX": "eur"}


def fake_polygon(requests: list[str]) -> httpx.MockTransport:
    """Ticker details of DETAILS (others 404), no splits, three daily bars from the range's start."""

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.startswith("/v3/reference/tickers/"):
            ticker = path.rsplit("/", 1)[1]
            requests.append(f"details {ticker}")
            if ticker not in DETAILS:
                return httpx.Response(404, json={"status": "NOT_FOUND", "message": "Ticker not found."})
            return httpx.Response(
                200, json={"status": "OK", "results": {"ticker": ticker, "currency_name": DETAILS[ticker]}}
            )
        if path == "/v3/reference/splits":
            requests.append(f"splits {request.url.params['ticker']}")
            return httpx.Response(200, json={"status": "OK", "results": []})
        ticker, start = path.split("/")[4], date.fromisoformat(path.split("/")[-2])
        requests.append(f"bars {ticker}")
        results = [
            {
                "t": int(datetime.combine(start + timedelta(days=i), datetime.min.time(), UTC).timestamp() * 1000),
                "c": 1 + i,
            }
            for i in range(3)
        ]
        return httpx.Response(200, json={"ticker": ticker, "status": "OK", "results": results})

    return httpx.MockTransport(handler)


def holds(db: Database, strategy_id: uuid.UUID, held: list[str], ever: list[str] = ()) -> None:
    """What the projector would have written: symbols used, positions held now."""
    with sql(db) as curs:
        for symbol in [*held, *ever]:
            curs.execute("INSERT INTO rm_strategy_symbols (symbol, strategy_id) VALUES (%s, %s)", (symbol, strategy_id))
        for symbol in held:
            curs.execute(
                "INSERT INTO rm_positions (strategy_id, symbol, quantity, cost_basis, updated_at)"
                " VALUES (%s, %s, 1, 1, now())",
                (strategy_id, symbol),
            )


def test_the_daemon_fetches_the_fx_pairs_strategies_need(make_database):
    db = Database(make_database(), pool_size=1).create_tables()
    try:
        eur, _ = db.identity.create_strategy("eur", base_currency="EUR", benchmark="ESTX")
        usd, _ = db.identity.create_strategy("usd")  # benchmark SPY
        demo, _ = db.identity.create_strategy("demo", benchmark="DEMO-SPY")
        holds(db, eur, ["AAPX"])  # USD stock in a EUR strategy: C:USDEUR; its benchmark ESTX is EUR: none
        holds(db, usd, ["SAPY"], ever=["BTC-GBP"])  # EUR stock (said by Polygon): C:EURUSD; once BTC-GBP: C:GBPUSD
        db.prices.record_currencies({"DEMO-SAP": "EUR"}, "demo")
        holds(db, demo, ["DEMO-SAP", "C:DEMOEURUSD"])  # invented: nothing fetched, no pair wanted
        requests: list[str] = []
        client = PolygonClient("test-key", transport=fake_polygon(requests), sleep=lambda s: None)
        daemon = MarketDataDaemon(db, client, today=lambda: date(2026, 1, 10))

        daemon.tick()
        # currencies from ticker details, once per stock, before its bars; never for pairs
        assert db.prices.currencies(["AAPX", "SAPY", "SPY", "ESTX", "BTC-GBP"]) == {
            "AAPX": "USD", "SAPY": "EUR", "SPY": "USD", "ESTX": "EUR"
        }  # fmt: skip
        assert requests.index("details SAPY") < requests.index("bars SAPY")
        assert not any(r.startswith("details") and ("C:" in r or "BTC" in r) for r in requests)
        # the pairs, in the same pass as the stocks whose currency they follow from
        fetched = {r.split(" ", 1)[1] for r in requests if r.startswith("bars")}
        assert fetched == {"AAPX", "SAPY", "SPY", "ESTX", "X:BTCGBP", "C:USDEUR", "C:EURUSD", "C:GBPUSD"}
        assert not any(r.startswith("splits C:") or r.startswith("splits X:") for r in requests)
        assert not any("DEMO" in r for r in requests)
        assert closes(db, "C:EURUSD")[:2] == [(date(2021, 1, 10), 1), (date(2021, 1, 11), 2)]
        pairs = daemon.fx_pairs()
        assert pairs == {"C:USDEUR": True, "C:EURUSD": True, "C:GBPUSD": False}

        requests.clear()
        daemon.tick()  # all fetched, the daily refresh not due: nothing asked
        assert requests == []
    finally:
        db.close()


def test_a_yen_strategy_wants_pairs_into_yen(make_database):
    db = Database(make_database(), pool_size=1).create_tables()
    try:
        sid, _ = db.identity.create_strategy("jpy", base_currency="JPY", benchmark="")
        db.prices.record_currencies({"SAPZ": "EUR"}, "test")
        holds(db, sid, ["SAPZ", "AAPZ"])  # EUR and (not recorded, no pair name) USD
        daemon = MarketDataDaemon(db, PolygonClient("k", transport=fake_polygon([]), sleep=lambda s: None))
        assert daemon.fx_pairs() == {"C:EURJPY": True, "C:USDJPY": True}
        new, due = daemon.wanted()
        assert {"C:EURJPY", "C:USDJPY"} <= set(new) and due == []
    finally:
        db.close()


def test_details_refused_leave_the_currency_unknown_and_the_bars_come(db):
    requests: list[str] = []
    inner = fake_polygon(requests)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/v3/reference/tickers/"):
            requests.append("details refused")
            return httpx.Response(403, json={"status": "NOT_AUTHORIZED", "message": "Not entitled to this data."})
        return inner.handle_request(request)

    client = PolygonClient("k", transport=httpx.MockTransport(handler), sleep=lambda s: None)
    assert fetch(db, client, ["nodetx"], date(2024, 1, 2), date(2024, 1, 4)) == (3, 0)
    assert requests == ["details refused", "bars NODETX", "splits NODETX"]
    assert db.prices.currencies(["NODETX"]) == {} and len(closes(db, "NODETX")) == 3
