"""read_split_file: CSV split files, good rows become splits, bad rows become clear errors."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from services.market_data.files import read_split_file


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_good_file_forward_reverse_and_fractional_splits(tmp_path):
    path = write(
        tmp_path,
        "splits.csv",
        "\n".join(
            [
                "Symbol,EX_DATE,Split_From,split_to,source",  # headers in any case, extra column ignored
                "aapl,2020-08-31,1,4,polygon",  # 4-for-1
                "GE,2021-08-02,8,1,",  # 1-for-8 reverse
                "",  # blank line, skipped
                "XYZ,2022-01-03,10,1,",  # 1-for-10 reverse
                "BRK.B,2010-01-21,2,3,",  # 3-for-2: from 2 to 3
                "ABC,2023-05-01,1,1.5,",  # 3-for-2 as Polygon sometimes writes it
                "DEF,2023-06-01, 3 ,0.100000000000000005,",  # a factor a float cannot hold
            ]
        )
        + "\n",
    )
    splits, errors = read_split_file(path)
    assert errors == []
    assert [(s.symbol, s.ex_date, s.split_from, s.split_to, s.ratio) for s in splits] == [
        ("AAPL", date(2020, 8, 31), Decimal(1), Decimal(4), "4:1"),
        ("GE", date(2021, 8, 2), Decimal(8), Decimal(1), "1:8"),
        ("XYZ", date(2022, 1, 3), Decimal(10), Decimal(1), "1:10"),
        ("BRK.B", date(2010, 1, 21), Decimal(2), Decimal(3), "3:2"),
        ("ABC", date(2023, 5, 1), Decimal(1), Decimal("1.5"), "1.5:1"),
        ("DEF", date(2023, 6, 1), Decimal(3), Decimal("0.100000000000000005"), "0.100000000000000005:3"),
    ]
    assert str(splits[4].split_to) == "1.5"
    assert all(isinstance(s.split_from, Decimal) and isinstance(s.split_to, Decimal) for s in splits)


def test_bad_rows_name_their_line(tmp_path):
    path = write(
        tmp_path,
        "splits.txt",
        "\n".join(
            [
                "symbol,ex_date,split_from,split_to",  # 1
                "AAPL,2020-08-31,1,4",  # 2
                "AA PL,2020-08-31,1,4",  # 3: invalid symbol
                ",2020-08-31,1,4",  # 4: symbol missing
                "TSLA,2020/08/31,1,5",  # 5: bad date
                "TSLA,,1,5",  # 6: date missing
                "TSLA,2022-08-25,0,3",  # 7: zero factor
                "TSLA,2022-08-26,1,-3",  # 8: negative factor
                "TSLA,2022-08-27,1,three",  # 9: not a number
                "TSLA,2022-08-28,1,",  # 10: factor missing
                "TSLA,2022-08-29,nan,1",  # 11: not finite
                "TSLA,2022-08-30,1,2000000",  # 12: over the largest factor
                "TSLA,2022-08-31,1,1.0000000000000000001",  # 13: 19 digits after the point
                "TSLA,2022-09-01,1,1_000",  # 14: underscores are not digits here
                "NVDA,2024-06-10,1,10",  # 15
            ]
        )
        + "\n",
    )
    splits, errors = read_split_file(path)
    assert [(s.symbol, s.ex_date) for s in splits] == [("AAPL", date(2020, 8, 31)), ("NVDA", date(2024, 6, 10))]
    assert errors == [
        "splits.txt line 3: invalid symbol 'AA PL' (expected 1-20 of A-Z 0-9 . - : ^)",
        "splits.txt line 4: symbol is missing or not text, got ''",
        "splits.txt line 5: ex_date must be a date like 2024-01-31, got '2020/08/31'",
        "splits.txt line 6: ex_date is missing",
        "splits.txt line 7: split_from must be a positive number, got '0'",
        "splits.txt line 8: split_to must be a positive number, got '-3'",
        "splits.txt line 9: split_to must be a positive number, got 'three'",
        "splits.txt line 10: split_to must be a positive number, got ''",
        "splits.txt line 11: split_from must be a positive number, got 'nan'",
        "splits.txt line 12: split_to must be at most 1000000, got 2000000",
        "splits.txt line 13: split_to must have at most 18 digits after the decimal point, got 1.0000000000000000001",
        "splits.txt line 14: split_to must be a positive number, got '1_000'",
    ]


def test_duplicate_is_reported_at_the_second_occurrence(tmp_path):
    path = write(
        tmp_path,
        "splits.csv",
        "symbol,ex_date,split_from,split_to\nAAPL,2020-08-31,1,4\nMSFT,2003-02-18,1,2\naapl,2020-08-31,1,7\n",
    )
    splits, errors = read_split_file(path)
    assert [(s.symbol, s.split_to) for s in splits] == [("AAPL", Decimal(4)), ("MSFT", Decimal(2))]
    assert errors == ["splits.csv line 4: duplicate split of AAPL on 2020-08-31 (first at line 2)"]


def test_missing_column_is_one_error(tmp_path):
    path = write(tmp_path, "splits.csv", "symbol,date,split_from,split_to\nAAPL,2020-08-31,1,4\nBAD,x,y,z\n")
    splits, errors = read_split_file(path)
    assert splits == []
    assert errors == ["splits.csv: missing required column ex_date (found: symbol, date, split_from, split_to)"]

    path = write(tmp_path, "ratio.csv", "symbol,ex_date,ratio\nAAPL,2020-08-31,4:1\n")
    assert read_split_file(path) == (
        [],
        ["ratio.csv: missing required columns split_from, split_to (found: symbol, ex_date, ratio)"],
    )


def test_column_twice_is_one_error(tmp_path):
    path = write(tmp_path, "splits.csv", "symbol,ex_date,split_from,split_to,Split_To\nAAPL,2020-08-31,1,4,4\n")
    assert read_split_file(path) == ([], ["splits.csv: column 'split_to' appears twice"])


def test_header_only_and_empty_file(tmp_path):
    assert read_split_file(write(tmp_path, "a.csv", "symbol,ex_date,split_from,split_to\n")) == ([], [])
    splits, errors = read_split_file(write(tmp_path, "b.csv", ""))
    assert splits == [] and errors == [
        "b.csv: the file is empty (expected a header with symbol,ex_date,split_from,split_to)"
    ]


def test_unsupported_extension_and_missing_file(tmp_path):
    with pytest.raises(ValueError, match="unsupported split file type '.parquet'"):
        read_split_file(tmp_path / "splits.parquet")
    with pytest.raises(FileNotFoundError):
        read_split_file(tmp_path / "nope.csv")
