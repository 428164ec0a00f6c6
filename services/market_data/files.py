"""Price files (CSV or Parquet) → bars and split files (CSV) → splits, with one human-readable
error per bad row.

Price files: required columns ``symbol``, ``date``, ``close`` (headers case-insensitive); optional
``open``, ``high``, ``low``, ``volume``, ``adjusted`` and ``currency`` (the ISO 4217 code the symbol is
quoted in, any case; blank: not said; every row of a symbol that says one must say the same); other
columns are ignored. FX rates are ordinary closes of ``C:EURUSD``-style symbols (one EUR in USD). Closes are read
as traded (unadjusted): BotRanks applies splits itself, so a file with any ``adjusted`` value that
is true is refused whole. Split files: ``symbol``, ``ex_date``, ``split_from``, ``split_to`` (a
4-for-1 split is from 1 to 4). CSV errors name the line as a person counts it (header = line 1;
assumes no quoted multi-line fields), Parquet errors the row (first data row = row 1). Blank lines
are skipped. Numbers are parsed from their text as ``Decimal``, never through float.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import polars as pl

from botranks_domain.bars import Bar, Split
from botranks_domain.currency import is_currency
from botranks_domain.errors import InvalidSymbol
from botranks_domain.model import normalize_symbol

__all__ = [
    "read_price_file",
    "read_price_file_currencies",
    "read_split_file",
    "REQUIRED_COLUMNS",
    "OPTIONAL_COLUMNS",
    "ADJUSTED_COLUMN",
    "SPLIT_COLUMNS",
]

REQUIRED_COLUMNS = ("symbol", "date", "close")
OPTIONAL_COLUMNS = ("open", "high", "low", "volume")
#: optional price-file column; only false/blank values are accepted (closes must be as traded)
ADJUSTED_COLUMN = "adjusted"
#: optional price-file column: the symbol's quote currency (ISO 4217)
CURRENCY_COLUMN = "currency"
SPLIT_COLUMNS = ("symbol", "ex_date", "split_from", "split_to")
CSV_SUFFIXES = (".csv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")
_TRUE = frozenset({"true", "t", "1", "yes", "y"})
_FALSE = frozenset({"false", "f", "0", "no", "n"})


class _RowError(ValueError):
    pass


class _FileError(ValueError):
    """The whole file is unusable: one error, nothing read from it."""


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


def _date(value: Any, name: str = "date") -> date:
    if _blank(value):
        raise _RowError(f"{name} is missing")
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
    raise _RowError(f"{name} must be a date like 2024-01-31, got {value if isinstance(value, str) else str(value)!r}")


def _symbol(raw: Any) -> str:
    if _blank(raw) or not isinstance(raw, str):
        raise _RowError(f"symbol is missing or not text, got {'' if raw is None else raw!r}")
    try:
        return normalize_symbol(raw, "symbol")
    except InvalidSymbol:
        raise _RowError(f"invalid symbol {raw!r} (expected 1-20 of A-Z 0-9 . - : ^)") from None


def _positive(value: Any, name: str) -> Decimal:
    return _number("" if value is None else value, name, rule="a positive number", minimum_exclusive=True)


def _adjusted(value: Any) -> bool:
    """The ``adjusted`` flag: true/t/1/yes/y or false/f/0/no/n (any case), blank = false."""
    if _blank(value):
        return False
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _RowError(f"adjusted must be true or false, got {value if isinstance(value, str) else str(value)!r}")


def _currency(value: Any) -> str | None:
    """The ``currency`` cell: an ISO 4217 code in tender (upper-cased), None when blank."""
    if _blank(value):
        return None
    text = str(value).strip().upper()
    if not is_currency(text):
        raise _RowError(f"currency must be an ISO 4217 code like USD or EUR, got {str(value)[:20]!r}")
    return text


def _bar(row: dict[str, Any]) -> Bar:
    symbol = _symbol(row["symbol"])
    day = _date(row["date"])
    close = _positive(row["close"], "close")
    optional: dict[str, Decimal | None] = {}
    for name in OPTIONAL_COLUMNS:
        value = row.get(name)
        if _blank(value):
            optional[name] = None
        elif name == "volume":
            optional[name] = _number(value, name, rule="a number >= 0", minimum_exclusive=False)
        else:
            optional[name] = _positive(value, name)
    try:
        return Bar(symbol=symbol, date=day, close=close, **optional)
    except ValueError as exc:  # pragma: no cover - all checks above come first
        raise _RowError(str(exc)) from None


def _split(row: dict[str, Any]) -> Split:
    symbol = _symbol(row["symbol"])
    ex_date = _date(row["ex_date"], "ex_date")
    split_from = _positive(row["split_from"], "split_from")
    split_to = _positive(row["split_to"], "split_to")
    try:
        return Split(symbol=symbol, ex_date=ex_date, split_from=split_from, split_to=split_to)
    except ValueError as exc:  # too large, or too many digits after the point
        raise _RowError(str(exc)) from None


def _read_frame(path: Path, is_csv: bool, required: tuple[str, ...], optional: tuple[str, ...]) -> pl.DataFrame:
    """The file as text columns named by their lower-cased header (only ``required`` + ``optional``);
    an unreadable file, a column that appears twice or a missing required one is a _FileError."""
    name = path.name
    if not path.exists():
        raise FileNotFoundError(path)
    try:
        frame = pl.read_csv(path, infer_schema=False) if is_csv else pl.read_parquet(path)
    except pl.exceptions.NoDataError:
        raise _FileError(f"{name}: the file is empty (expected a header with {','.join(required)})") from None
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise _FileError(f"{name}: cannot be read as {'CSV' if is_csv else 'Parquet'}: {exc}") from None

    columns: dict[str, str] = {}
    for col in frame.columns:
        key = col.strip().lower()
        if key in required + optional:
            if key in columns:
                raise _FileError(f"{name}: column {key!r} appears twice")
            columns[key] = col
    missing = [c for c in required if c not in columns]
    if missing:
        raise _FileError(
            f"{name}: missing required column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)} (found: {', '.join(frame.columns) or 'none'})"
        )
    return frame.select([pl.col(orig).alias(key) for key, orig in columns.items()])


def _rows(frame: pl.DataFrame, name: str, is_csv: bool) -> Iterator[tuple[str, dict[str, Any]]]:
    """(``"{file} line N"`` / ``"{file} row N"``, row) for each row that is not blank."""
    for index, row in enumerate(frame.iter_rows(named=True)):
        if all(_blank(v) for v in row.values()):
            continue
        yield (f"{name} line {index + 2}" if is_csv else f"{name} row {index + 1}"), row


def read_price_file(path: str | Path) -> tuple[list[Bar], list[str]]:
    """Read a CSV/Parquet price file; returns (good bars, one error string per bad row).

    A missing required column gives a single error and no bars, and so does a row whose
    ``adjusted`` value is true (closes must be as traded). A (symbol, date) that appears twice is
    reported at its second occurrence and only the first is kept. (The currencies the file says:
    :func:`read_price_file_currencies`.)
    """
    bars, _, errors = read_price_file_currencies(path)
    return bars, errors


def read_price_file_currencies(path: str | Path) -> tuple[list[Bar], dict[str, str], list[str]]:
    """:func:`read_price_file`, plus ``{symbol: currency}`` from the optional ``currency`` column.

    A code that is not ISO 4217 is a row error; so is a row whose currency differs from the one an
    earlier row of the same symbol said (naming that row). Rows that leave it blank say nothing.
    """
    path = Path(path)
    name = path.name
    suffix = path.suffix.lower()
    is_csv = suffix in CSV_SUFFIXES
    if not is_csv and suffix not in PARQUET_SUFFIXES:
        raise ValueError(f"{name}: unsupported price file type {suffix!r} (expected .csv or .parquet)")
    try:
        frame = _read_frame(path, is_csv, REQUIRED_COLUMNS, OPTIONAL_COLUMNS + (ADJUSTED_COLUMN, CURRENCY_COLUMN))
    except _FileError as exc:
        return [], {}, [str(exc)]

    bars: list[Bar] = []
    errors: list[str] = []
    seen: dict[tuple[str, date], str] = {}
    currencies: dict[str, tuple[str, str]] = {}  # symbol -> (currency, where it was first said)
    for where, row in _rows(frame, name, is_csv):
        at = where.removeprefix(f"{name} ")
        try:
            if _adjusted(row.get(ADJUSTED_COLUMN)):
                return (
                    [],
                    {},
                    [
                        f"{name}: {at} says adjusted=true: BotRanks stores "
                        "closes as traded (unadjusted) and applies splits itself; import unadjusted closes "
                        "and the splits (botranks splits import)"
                    ],
                )
            bar = _bar(row)
            currency = _currency(row.get(CURRENCY_COLUMN))
        except _RowError as exc:
            errors.append(f"{where}: {exc}")
            continue
        if currency is not None:
            said = currencies.setdefault(bar.symbol, (currency, at))
            if said[0] != currency:
                errors.append(f"{where}: currency {currency} of {bar.symbol} differs from {said[0]} (at {said[1]})")
                continue
        key = (bar.symbol, bar.date)
        if key in seen:
            errors.append(f"{where}: duplicate {bar.symbol} {bar.date.isoformat()} (first at {seen[key]})")
            continue
        seen[key] = at
        bars.append(bar)
    return bars, {symbol: currency for symbol, (currency, _) in currencies.items()}, errors


def read_split_file(path: str | Path) -> tuple[list[Split], list[str]]:
    """Read a CSV split file (``symbol,ex_date,split_from,split_to``); returns (good splits, one
    error string per bad row).

    A missing column gives a single error and no splits. A (symbol, ex_date) that appears twice
    is reported at its second occurrence and only the first is kept.
    """
    path = Path(path)
    name = path.name
    suffix = path.suffix.lower()
    if suffix not in CSV_SUFFIXES:
        raise ValueError(f"{name}: unsupported split file type {suffix!r} (expected .csv)")
    try:
        frame = _read_frame(path, True, SPLIT_COLUMNS, ())
    except _FileError as exc:
        return [], [str(exc)]

    splits: list[Split] = []
    errors: list[str] = []
    seen: dict[tuple[str, date], str] = {}
    for where, row in _rows(frame, name, True):
        try:
            split = _split(row)
        except _RowError as exc:
            errors.append(f"{where}: {exc}")
            continue
        key = (split.symbol, split.ex_date)
        if key in seen:
            errors.append(
                f"{where}: duplicate split of {split.symbol} on {split.ex_date.isoformat()} (first at {seen[key]})"
            )
            continue
        seen[key] = where.removeprefix(f"{name} ")
        splits.append(split)
    return splits, errors
