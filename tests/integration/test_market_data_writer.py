"""The price writer (``Prices.write_bars`` / ``upsert_bars``) on a real PostgreSQL: inserts, no-op
re-upserts, changes and the price_updates outbox."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from botranks_domain.bars import Bar
from devtools.stack import sql
from libs.infra.db import Database
from libs.infra.prices import upsert_bars

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def db(make_database):
    d = Database(make_database(), pool_size=1).create_tables()
    yield d
    d.close()


def outbox(db) -> list[tuple[str, date]]:
    with sql(db) as curs:
        rows = curs.execute("SELECT symbol, from_date FROM price_updates ORDER BY id").fetchall()
    return [(r["symbol"], r["from_date"]) for r in rows]


def prices(db, symbol: str) -> dict[date, dict]:
    with sql(db) as curs:
        rows = curs.execute("SELECT * FROM prices WHERE symbol = %s ORDER BY date", (symbol,)).fetchall()
    return {r["date"]: r for r in rows}


def test_insert_noop_change_and_outbox(db):
    d0 = date(2024, 1, 2)
    bars = [
        Bar(
            symbol="AAPL",
            date=d0 + timedelta(days=i),
            close=Decimal("185.00") + i,
            open=Decimal("184"),
            volume=Decimal(1000),
        )
        for i in range(3)
    ]
    bars.append(Bar(symbol="BTC-USD", date=d0, close=Decimal("43000.5")))

    assert db.prices.write_bars(bars, "test") == 4
    assert outbox(db) == [("AAPL", d0), ("BTC-USD", d0)]
    stored = prices(db, "AAPL")
    assert [r["close"] for r in stored.values()] == [Decimal("185.00"), Decimal("186.00"), Decimal("187.00")]
    assert stored[d0]["source"] == "test" and stored[d0]["open"] == Decimal("184")

    # identical values (even written with another scale, or without the optional fields): nothing changes
    same = [Bar(symbol=b.symbol, date=b.date, close=b.close.normalize()) for b in bars]
    assert db.prices.write_bars(same, "other") == 0
    assert len(outbox(db)) == 2
    assert prices(db, "AAPL")[d0]["source"] == "test"
    assert prices(db, "AAPL")[d0]["open"] == Decimal("184")  # a close-only bar keeps stored OHLCV

    # one changed close (the later day) and one unchanged: one outbox row from the changed date
    changed = [
        Bar(symbol="AAPL", date=d0 + timedelta(days=1), close=Decimal("186.00")),
        Bar(symbol="AAPL", date=d0 + timedelta(days=2), close=Decimal("187.25")),
    ]
    assert db.prices.write_bars(changed, "fix") == 1
    assert outbox(db)[2:] == [("AAPL", d0 + timedelta(days=2))]
    assert prices(db, "AAPL")[d0 + timedelta(days=2)]["close"] == Decimal("187.25")

    # a changed volume alone also counts
    assert (
        db.prices.write_bars([Bar(symbol="BTC-USD", date=d0, close=Decimal("43000.5"), volume=Decimal(5))], "fix") == 1
    )
    assert outbox(db)[3:] == [("BTC-USD", d0)]


def test_batches_duplicates_and_rollback(db):
    start = date(2020, 1, 1)
    bars = [Bar(symbol="BATCH", date=start + timedelta(days=i), close=Decimal(100 + i)) for i in range(1203)]
    bars.append(Bar(symbol="BATCH", date=start, close=Decimal("99.5")))  # duplicate: the last one wins
    before = len(outbox(db))
    assert db.prices.write_bars(bars, "test") == 1203
    assert outbox(db)[before:] == [("BATCH", start)]
    stored = prices(db, "BATCH")
    assert len(stored) == 1203 and stored[start]["close"] == Decimal("99.5")

    # upsert_bars runs in the caller's transaction: an error after it rolls back prices and outbox together
    with pytest.raises(RuntimeError):
        with sql(db) as curs:
            upsert_bars(curs, [Bar(symbol="BATCH", date=start, close=Decimal(1))], "test")
            raise RuntimeError("boom")
    assert prices(db, "BATCH")[start]["close"] == Decimal("99.5")
    assert len(outbox(db)) == before + 1

    assert db.prices.write_bars([], "test") == 0
    assert len(outbox(db)) == before + 1
