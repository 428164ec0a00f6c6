"""The optional ``currency`` column of price files: ISO 4217 codes, upper-cased, one per symbol."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import polars as pl

from services.market_data.files import read_price_file, read_price_file_currencies


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_currency_column_is_read_upper_cased_and_blank_says_nothing(tmp_path):
    path = write(
        tmp_path,
        "p.csv",
        "symbol,date,close,Currency\n"
        "SAP,2024-01-02,139.5,eur\n"
        "SAP,2024-01-03,140.1,\n"  # blank: not said, still SAP's bar
        "SAP,2024-01-04,141, EUR \n"
        "AAPL,2024-01-02,185.64,\n"  # never said: no currency for AAPL
        "7203.T,2024-01-04,2600,JPY\n",
    )
    bars, currencies, errors = read_price_file_currencies(path)
    assert errors == []
    assert currencies == {"SAP": "EUR", "7203.T": "JPY"}
    assert [(b.symbol, b.date) for b in bars] == [
        ("SAP", date(2024, 1, 2)),
        ("SAP", date(2024, 1, 3)),
        ("SAP", date(2024, 1, 4)),
        ("AAPL", date(2024, 1, 2)),
        ("7203.T", date(2024, 1, 4)),
    ]
    assert read_price_file(path) == (bars, errors)  # the old reader: the same bars and errors


def test_a_file_without_the_column_says_no_currency(tmp_path):
    bars, currencies, errors = read_price_file_currencies(
        write(tmp_path, "p.csv", "symbol,date,close\nX,2024-01-02,1\n")
    )
    assert (len(bars), currencies, errors) == (1, {}, [])


def test_bad_codes_and_disagreeing_rows_are_row_errors(tmp_path):
    path = write(
        tmp_path,
        "p.csv",
        "symbol,date,close,currency\n"
        "SAP,2024-01-02,139.5,EUR\n"  # line 2
        "SAP,2024-01-03,140.1,USD\n"  # line 3: disagrees with line 2
        "BMW,2024-01-02,100,EURO\n"  # line 4: not a code
        "BMW,2024-01-03,100,XYZ\n"  # line 5: three letters, not ISO 4217
        "BMW,2024-01-04,100,12\n",  # line 6
    )
    bars, currencies, errors = read_price_file_currencies(path)
    assert errors == [
        "p.csv line 3: currency USD of SAP differs from EUR (at line 2)",
        "p.csv line 4: currency must be an ISO 4217 code like USD or EUR, got 'EURO'",
        "p.csv line 5: currency must be an ISO 4217 code like USD or EUR, got 'XYZ'",
        "p.csv line 6: currency must be an ISO 4217 code like USD or EUR, got '12'",
    ]
    assert currencies == {"SAP": "EUR"}
    assert [(b.symbol, b.date) for b in bars] == [("SAP", date(2024, 1, 2))]


def test_fx_files_are_ordinary_closes(tmp_path):
    path = write(
        tmp_path,
        "fx.csv",
        "symbol,date,close\nc:eurusd,2024-01-02,1.0945\nC:USDJPY,2024-01-02,141.83\n",
    )
    bars, currencies, errors = read_price_file_currencies(path)
    assert errors == [] and currencies == {}
    assert [(b.symbol, b.close) for b in bars] == [("C:EURUSD", Decimal("1.0945")), ("C:USDJPY", Decimal("141.83"))]


def test_parquet_currency_column_names_the_row(tmp_path):
    path = tmp_path / "p.parquet"
    pl.DataFrame(
        {
            "symbol": ["SAP", "SAP", "SAP"],
            "date": ["2024-01-02", "2024-01-03", "2024-01-04"],
            "close": ["139.5", "140", "141"],
            "currency": ["eur", None, "gbp"],
        }
    ).write_parquet(path)
    bars, currencies, errors = read_price_file_currencies(path)
    assert currencies == {"SAP": "EUR"}
    assert errors == ["p.parquet row 3: currency GBP of SAP differs from EUR (at row 1)"]
    assert len(bars) == 2
