"""Price files (CSV or Parquet) → bars, with one human-readable error per bad row.

Required columns: ``symbol``, ``date``, ``close`` (headers case-insensitive); optional
``open``, ``high``, ``low``, ``volume``; other columns are ignored. CSV errors name the line as a
person counts it (header = line 1; assumes no quoted multi-line fields), Parquet errors the row
(first data row = row 1). Blank lines are skipped.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import polars as pl

from libs.domain.errors import InvalidSymbol
from libs.domain.model import normalize_symbol

from libs.domain.bars import Bar

__all__ = ["read_price_file", "REQUIRED_COLUMNS", "OPTIONAL_COLUMNS"]

REQUIRED_COLUMNS = ("symbol", "date", "close")
OPTIONAL_COLUMNS = ("open", "high", "low", "volume")
CSV_SUFFIXES = (".csv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")


class _RowError(ValueError):
    pass


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _number(value: Any, name: str, *, rule: str, minimum_exclusive: bool) -> Decimal:
    """Parse a number; ``rule`` is the phrase of the error ('a positive number', ...)."""
    def bad() -> _RowError:
        shown = value if isinstance(value, str) else str(value)
        return _RowError(f"{name} must be {rule}, got {shown!r}")

    if isinstance(value, bool) or value is None:
        raise bad()
    if isinstance(value, float):
        if not math.isfinite(value):
            raise bad()
        number = Decimal(repr(value))
    elif isinstance(value, (int, Decimal)):
        number = Decimal(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text or "_" in text:
            raise bad()
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise bad() from None
    else:
        raise bad()
    if not number.is_finite() or number < 0 or (minimum_exclusive and number == 0):
        raise bad()
    return number


def _date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text).date()
        except ValueError:
            pass
    raise _RowError(f"date must be a date like 2024-01-31, got {value if isinstance(value, str) else str(value)!r}")


def _bar(row: dict[str, Any]) -> Bar:
    raw_symbol = row["symbol"]
    if _blank(raw_symbol) or not isinstance(raw_symbol, str):
        raise _RowError(f"symbol is missing or not text, got {'' if raw_symbol is None else raw_symbol!r}")
    try:
        symbol = normalize_symbol(raw_symbol, "symbol")
    except InvalidSymbol:
        raise _RowError(f"invalid symbol {raw_symbol!r} (expected 1-20 of A-Z 0-9 . - : ^)") from None
    if _blank(row["date"]):
        raise _RowError("date is missing")
    day = _date(row["date"])
    close = _number("" if row["close"] is None else row["close"], "close",
                    rule="a positive number", minimum_exclusive=True)
    optional: dict[str, Decimal | None] = {}
    for name in OPTIONAL_COLUMNS:
        value = row.get(name)
        if _blank(value):
            optional[name] = None
        elif name == "volume":
            optional[name] = _number(value, name, rule="a number >= 0", minimum_exclusive=False)
        else:
            optional[name] = _number(value, name, rule="a positive number", minimum_exclusive=True)
    try:
        return Bar(symbol=symbol, date=day, close=close, **optional)
    except ValueError as exc:  # pragma: no cover - all checks above come first
        raise _RowError(str(exc)) from None


def read_price_file(path: str | Path) -> tuple[list[Bar], list[str]]:
    """Read a CSV/Parquet price file; returns (good bars, one error string per bad row).

    A missing required column gives a single error and no bars. A (symbol, date) that appears
    twice is reported at its second occurrence and only the first is kept.
    """
    path = Path(path)
    name = path.name
    suffix = path.suffix.lower()
    is_csv = suffix in CSV_SUFFIXES
    if not is_csv and suffix not in PARQUET_SUFFIXES:
        raise ValueError(f"{name}: unsupported price file type {suffix!r} (expected .csv or .parquet)")
    if not path.exists():
        raise FileNotFoundError(path)
    try:
        frame = pl.read_csv(path, infer_schema=False) if is_csv else pl.read_parquet(path)
    except pl.exceptions.NoDataError:
        return [], [f"{name}: the file is empty (expected a header with symbol,date,close)"]
    except (pl.exceptions.PolarsError, OSError) as exc:
        return [], [f"{name}: cannot be read as {'CSV' if is_csv else 'Parquet'}: {exc}"]

    columns: dict[str, str] = {}
    for col in frame.columns:
        key = col.strip().lower()
        if key in REQUIRED_COLUMNS + OPTIONAL_COLUMNS:
            if key in columns:
                return [], [f"{name}: column {key!r} appears twice"]
            columns[key] = col
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        return [], [f"{name}: missing required column{'s' if len(missing) > 1 else ''} "
                    f"{', '.join(missing)} (found: {', '.join(frame.columns) or 'none'})"]
    frame = frame.select([pl.col(orig).alias(key) for key, orig in columns.items()])

    bars: list[Bar] = []
    errors: list[str] = []
    seen: dict[tuple[str, date], str] = {}
    for index, row in enumerate(frame.iter_rows(named=True)):
        where = f"{name} line {index + 2}" if is_csv else f"{name} row {index + 1}"
        if all(_blank(v) for v in row.values()):
            continue
        try:
            bar = _bar(row)
        except _RowError as exc:
            errors.append(f"{where}: {exc}")
            continue
        key = (bar.symbol, bar.date)
        if key in seen:
            errors.append(f"{where}: duplicate {bar.symbol} {bar.date.isoformat()} (first at {seen[key]})")
            continue
        seen[key] = where.removeprefix(f"{name} ")
        bars.append(bar)
    return bars, errors
