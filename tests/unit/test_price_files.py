"""read_price_file: CSV and Parquet, good rows become bars, bad rows become clear errors."""

from __future__ import annotations

import os
from datetime import date
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from services.market_data.files import read_price_file


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_good_and_bad_rows(tmp_path):
    path = write(
        tmp_path,
        "prices.csv",
        "\n".join(
            [
                "Symbol,DATE,Close,Open,volume,comment",  # line 1, headers in any case, extra column ignored
                "aapl,2024-01-02,185.64,187.15,82488700,ok",  # 2
                "AAPL,2024-01-03,184.25,,,",  # 3: optional fields empty
                "BTC-USD,2024-01-06,43929.10,,,",  # 4
                "AAPL,2024/01/04,181.91,,,",  # 5: bad date
                "AAPL,2024-01-05,0,,,",  # 6: non-positive close
                "AAPL,2024-01-08,abc,,,",  # 7: not a number
                "AA PL,2024-01-09,1,,,",  # 8: invalid symbol
                "AAPL,2024-01-10,inf,,,",  # 9: not finite
                "",  # 10: blank line, skipped
                "AAPL,2024-01-11,NaN,,,",  # 11
                "MSFT,2024-01-11,,,,",  # 12: close missing
                "MSFT,2024-01-12,390.1,-3,,",  # 13: bad open
                "MSFT,2024-01-16,390.2,,-1,",  # 14: negative volume
                "AAPL,2024-01-02,185.64,,,",  # 15: duplicate of line 2
                "MSFT,2024-01-17,389.47,,,",  # 16
            ]
        )
        + "\n",
    )
    bars, errors = read_price_file(path)

    assert [(b.symbol, b.date, b.close) for b in bars] == [
        ("AAPL", date(2024, 1, 2), Decimal("185.64")),
        ("AAPL", date(2024, 1, 3), Decimal("184.25")),
        ("BTC-USD", date(2024, 1, 6), Decimal("43929.10")),
        ("MSFT", date(2024, 1, 17), Decimal("389.47")),
    ]
    assert bars[0].open == Decimal("187.15") and bars[0].volume == Decimal(82488700)
    assert bars[0].high is None and bars[1].open is None
    assert errors == [
        "prices.csv line 5: date must be a date like 2024-01-31, got '2024/01/04'",
        "prices.csv line 6: close must be a positive number, got '0'",
        "prices.csv line 7: close must be a positive number, got 'abc'",
        "prices.csv line 8: invalid symbol 'AA PL' (expected 1-20 of A-Z 0-9 . - : ^)",
        "prices.csv line 9: close must be a positive number, got 'inf'",
        "prices.csv line 11: close must be a positive number, got 'NaN'",
        "prices.csv line 12: close must be a positive number, got ''",
        "prices.csv line 13: open must be a positive number, got '-3'",
        "prices.csv line 14: volume must be a number >= 0, got '-1'",
        "prices.csv line 15: duplicate AAPL 2024-01-02 (first at line 2)",
    ]


def test_csv_missing_required_column_is_one_error(tmp_path):
    path = write(tmp_path, "prices.csv", "symbol,day,close\nAAPL,2024-01-02,185.64\nAAPL,2024-01-03,x\n")
    bars, errors = read_price_file(path)
    assert bars == []
    assert len(errors) == 1 and "missing required column date" in errors[0]
    assert errors[0].startswith("prices.csv: ")


def test_csv_header_only_and_empty_file(tmp_path):
    assert read_price_file(write(tmp_path, "a.csv", "symbol,date,close\n")) == ([], [])
    bars, errors = read_price_file(write(tmp_path, "b.csv", ""))
    assert bars == [] and len(errors) == 1 and "empty" in errors[0]


def test_parquet_good_and_bad_rows(tmp_path):
    path = tmp_path / "prices.parquet"
    pl.DataFrame(
        {
            "SYMBOL": ["spy", "SPY", "SPY", "spy!", "KO"],
            "Date": [date(2024, 1, 2), date(2024, 1, 3), date(2024, 1, 4), date(2024, 1, 5), None],
            "close": [472.65, -1.0, float("nan"), 470.0, 59.4],
            "high": [473.2, None, None, None, None],
        }
    ).write_parquet(path)
    bars, errors = read_price_file(path)
    assert [(b.symbol, b.date, b.close, b.high) for b in bars] == [
        ("SPY", date(2024, 1, 2), Decimal("472.65"), Decimal("473.2"))
    ]
    assert errors == [
        "prices.parquet row 2: close must be a positive number, got '-1.0'",
        "prices.parquet row 3: close must be a positive number, got 'nan'",
        "prices.parquet row 4: invalid symbol 'spy!' (expected 1-20 of A-Z 0-9 . - : ^)",
        "prices.parquet row 5: date is missing",
    ]


def test_parquet_with_string_columns(tmp_path):
    path = tmp_path / "p.parquet"
    pl.DataFrame({"symbol": ["BTC-USD"], "date": ["2024-01-06"], "close": ["43929.10"]}).write_parquet(path)
    bars, errors = read_price_file(path)
    assert errors == [] and bars[0].close == Decimal("43929.10")


def test_parquet_missing_column(tmp_path):
    path = tmp_path / "p.parquet"
    pl.DataFrame({"symbol": ["SPY"], "date": [date(2024, 1, 2)]}).write_parquet(path)
    assert read_price_file(path) == ([], ["p.parquet: missing required column close (found: symbol, date)"])


ADJUSTED_REFUSAL = (
    "says adjusted=true: BotRanks stores closes as traded (unadjusted) and applies splits itself; "
    "import unadjusted closes and the splits (botranks splits import)"
)


@pytest.mark.parametrize("value", ["true", "TRUE", "t", "1", "Yes", "y", " True "])
def test_csv_adjusted_true_refuses_the_whole_file(tmp_path, value):
    path = write(
        tmp_path,
        "adj.csv",
        "\n".join(
            [
                "symbol,date,close,Adjusted",
                "AAPL,2020-08-28,499.23,false",  # 2
                "AAPL,2020-08-31,oops,",  # 3: a row error, but the file is refused anyway
                f"AAPL,2020-09-01,134.18,{value}",  # 4
                "AAPL,2020-09-02,131.40,true",  # 5
            ]
        )
        + "\n",
    )
    assert read_price_file(path) == ([], [f"adj.csv: line 4 {ADJUSTED_REFUSAL}"])


@pytest.mark.parametrize("value", ["false", "FALSE", "f", "0", "no", "N", ""])
def test_csv_adjusted_false_or_blank_is_read_as_traded(tmp_path, value):
    path = write(
        tmp_path,
        "adj.csv",
        f"symbol,date,close,adjusted\nAAPL,2020-08-28,499.23,{value}\nAAPL,2020-08-31,129.04,false\n",
    )
    bars, errors = read_price_file(path)
    assert errors == []
    assert [(b.date, b.close) for b in bars] == [
        (date(2020, 8, 28), Decimal("499.23")),
        (date(2020, 8, 31), Decimal("129.04")),
    ]


def test_csv_adjusted_garbage_is_a_row_error(tmp_path):
    path = write(
        tmp_path,
        "adj.csv",
        "symbol,date,close,adjusted\n"
        "AAPL,2020-08-28,499.23,false\n"
        "AAPL,2020-08-31,129.04,maybe\n"
        "AAPL,2020-09-01,134.18,1.0\n",
    )
    bars, errors = read_price_file(path)
    assert [b.date for b in bars] == [date(2020, 8, 28)]
    assert errors == [
        "adj.csv line 3: adjusted must be true or false, got 'maybe'",
        "adj.csv line 4: adjusted must be true or false, got '1.0'",
    ]


def test_parquet_adjusted_column(tmp_path):
    path = tmp_path / "adj.parquet"
    pl.DataFrame(
        {
            "symbol": ["KO", "KO"],
            "date": [date(2024, 1, 2), date(2024, 1, 3)],
            "close": ["59.4", "59.6"],
            "adjusted": [False, None],
        }
    ).write_parquet(path)
    bars, errors = read_price_file(path)
    assert errors == [] and len(bars) == 2
    pl.DataFrame(
        {
            "symbol": ["KO", "KO"],
            "date": [date(2024, 1, 2), date(2024, 1, 3)],
            "close": ["59.4", "59.6"],
            "adjusted": [False, True],
        }
    ).write_parquet(path)
    assert read_price_file(path) == ([], [f"adj.parquet: row 2 {ADJUSTED_REFUSAL}"])


def test_unsupported_extension(tmp_path):
    with pytest.raises(ValueError, match="unsupported"):
        read_price_file(write(tmp_path, "prices.xlsx", "x"))


REAL_PRICES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "prices-2017-2022.csv"


def test_real_price_file_reads_cleanly():
    if not REAL_PRICES.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{REAL_PRICES} is missing (CI=true)")
        pytest.skip(f"{REAL_PRICES} not present")
    bars, errors = read_price_file(REAL_PRICES)
    assert errors == []
    symbols = {b.symbol for b in bars}
    assert {"SPY", "AAPL", "BTC-USD", "KO"} <= symbols
    assert all(b.close > 0 for b in bars)
    btc_weekend = [b for b in bars if b.symbol == "BTC-USD" and b.date.weekday() >= 5]
    spy_weekend = [b for b in bars if b.symbol == "SPY" and b.date.weekday() >= 5]
    assert btc_weekend and not spy_weekend
