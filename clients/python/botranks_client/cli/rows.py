"""``botranks orders import``, reading: a broker's CSV or JSONL rows, mapped and checked as orders."""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import IO, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from botranks_domain.errors import InvalidSymbol
from botranks_domain.model import OrderIn, normalize_symbol

from .common import CliError

#: the importer's fields, each read from the file column (CSV) or key (JSONL) of the same name unless --map says
FIELDS = ("symbol", "side", "quantity", "price", "fees", "executed_at", "order_id", "order_type", "status")
REQUIRED = ("symbol", "side", "quantity")
#: the raw values that identify a row without an order id (see ``RowIds``)
CONTENT_FIELDS = ("symbol", "side", "quantity", "price", "fees", "executed_at")
#: the server refuses an ``executed_at`` more than this far in the future
MAX_FUTURE = timedelta(minutes=5)


@dataclass
class ImportOptions:
    format: str = "csv"
    #: field -> column (CSV) or key (JSONL)
    columns: dict[str, str] = field(default_factory=lambda: {f: f for f in FIELDS})
    #: lower-cased file value -> "buy" | "sell"
    sides: dict[str, str] = field(default_factory=lambda: {"buy": "buy", "sell": "sell"})
    time_format: str | None = None
    tz: timezone | ZoneInfo = UTC
    delimiter: str = ","
    #: lines before the CSV header (a broker's preamble)
    skip_lines: int = 0
    #: the fields --map named: their columns must exist
    mapped: frozenset[str] = frozenset()


def parse_pairs(pairs: list[str] | None, what: str) -> dict[str, str]:
    """``["a=b", ...]`` as a dict (the value may contain '=' and spaces)."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise CliError(f"{what} expects KEY=VALUE, got {pair!r}")
        out[key.strip()] = value.strip()
    return out


def import_options(args: argparse.Namespace) -> ImportOptions:
    """The import's options from its flags (format from the extension unless --format)."""
    fmt = args.format
    if fmt is None:
        name = args.file.lower()
        fmt = "jsonl" if name.endswith((".jsonl", ".ndjson")) else "csv" if name != "-" else None
        if fmt is None:
            raise CliError("reading stdin: say --format csv or --format jsonl")
    columns = {f: f for f in FIELDS}
    mapped = parse_pairs(args.map, "--map")
    for key, column in mapped.items():
        if key not in FIELDS:
            raise CliError(f"--map: unknown field {key!r} (fields: {', '.join(FIELDS)})")
        columns[key] = column
    sides = {"buy": "buy", "sell": "sell"}
    for value, side in parse_pairs(args.side_map, "--side-map").items():
        if side.lower() not in ("buy", "sell"):
            raise CliError(f"--side-map {value}={side}: the side must be buy or sell")
        sides[value.lower()] = side.lower()
    try:
        tz = UTC if args.tz.upper() == "UTC" else ZoneInfo(args.tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise CliError(f"--tz: unknown time zone {args.tz!r} (an IANA name, e.g. America/New_York)") from None
    delimiter = "\t" if args.delimiter in ("\\t", "tab") else args.delimiter
    if len(delimiter) != 1:
        raise CliError("--delimiter must be one character")
    if not 1 <= args.parallel <= 32:
        raise CliError("--parallel must be 1..32")
    if args.skip_lines < 0:
        raise CliError("--skip-lines must be >= 0")
    return ImportOptions(fmt, columns, sides, args.time_format, tz, delimiter, args.skip_lines, frozenset(mapped))


class RowError(ValueError):
    """Why one row of the file cannot be an order."""


def _text(value: Any) -> str | None:
    """A file value as text ('' and null as None); JSON numbers keep the digits they were written with."""
    if value is None:
        return None
    text = value.strip() if isinstance(value, str) else str(value)
    return text or None


def read_rows(stream: IO[bytes], options: ImportOptions) -> Iterator[tuple[int, dict[str, str | None]]]:
    """Stream (line number, {field: raw text or None}) from a CSV or JSONL file; the line is where the row starts."""
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    try:
        yield from (_jsonl_rows if options.format == "jsonl" else _csv_rows)(text, options)
    finally:
        text.detach()  # the caller's stream stays open


def _jsonl_rows(text: IO[str], options: ImportOptions) -> Iterator[tuple[int, dict[str, str | None]]]:
    decoder = msgspec.json.Decoder(dict[str, Any], float_hook=Decimal)
    for line_no, line in enumerate(text, start=1):
        if not line.strip():
            continue
        try:
            obj = decoder.decode(line)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            yield line_no, {"__error__": f"not a JSON object: {exc}"}
            continue
        obj = {str(k).strip().lower(): v for k, v in obj.items()}
        row = {f: _text(obj.get(c.lower())) for f, c in options.columns.items()}
        if row["order_id"] is None and options.columns["order_id"] == "order_id":
            row["order_id"] = _text(obj.get("external_order_id"))
        yield line_no, row


def _csv_rows(text: IO[str], options: ImportOptions) -> Iterator[tuple[int, dict[str, str | None]]]:
    for _ in range(options.skip_lines):
        text.readline()
    reader = csv.reader(text, delimiter=options.delimiter)
    header = next(reader, None)
    if header is None:
        return
    header = [h.strip() for h in header]
    index = {name.lower(): i for i, name in reversed(list(enumerate(header)))}
    if options.columns["order_id"] == "order_id" and "order_id" not in index and "external_order_id" in index:
        index["order_id"] = index["external_order_id"]
    missing = [
        f"{f} ({c!r})"
        for f, c in options.columns.items()
        if (f in REQUIRED or f in options.mapped) and c.lower() not in index
    ]
    if missing:
        raise CliError(
            f"the header has no column for {', '.join(missing)}; it has {', '.join(map(repr, header))}"
            " (map columns with --map FIELD=COLUMN)"
        )
    positions = {f: index[c.lower()] for f, c in options.columns.items() if c.lower() in index}
    start = options.skip_lines + reader.line_num + 1
    for cells in reader:
        line_no, start = start, options.skip_lines + reader.line_num + 1
        if not any(c.strip() for c in cells):
            continue
        yield line_no, {f: _text(cells[i]) if i < len(cells) else None for f, i in positions.items()}


class RowIds:
    """The ``external_order_id`` of a row: its ``order_id``, else derived from the row's content.

    A row without an order id gets ``imp-`` + sha256(its raw symbol, side, quantity, price, fees,
    executed_at, and k) where k counts the identical rows (same six values) before it in the file. So
    the id depends neither on the line number (a header or other rows added, rows reordered: same ids)
    nor on the mapping flags (side map, time zone), and re-running a file, or a later export that
    overlaps it, is a no-op; two identical fills in one file stay two orders (k = 0, 1). Remembers a
    64-bit fingerprint per distinct row (about 100 bytes each).
    """

    def __init__(self) -> None:
        self.seen: dict[int, int] = {}

    def external_id(self, row: dict[str, str | None]) -> str:
        if order_id := row.get("order_id"):
            return order_id
        content = "\x1f".join(row.get(f) or "" for f in CONTENT_FIELDS).encode()
        fingerprint = int.from_bytes(hashlib.sha256(content).digest()[:8], "big")
        k = self.seen.get(fingerprint, 0)
        self.seen[fingerprint] = k + 1
        return "imp-" + hashlib.sha256(content + b"\x1e" + str(k).encode()).hexdigest()[:32]


def _decimal(raw: str | None, name: str) -> Decimal | None:
    if raw is None:
        return None
    try:
        return Decimal(raw)
    except InvalidOperation:
        raise RowError(f"{name}: not a number ({raw!r})") from None


def _timestamp(raw: str | None, options: ImportOptions) -> datetime | None:
    if raw is None:
        return None
    try:
        ts = datetime.strptime(raw, options.time_format) if options.time_format else datetime.fromisoformat(raw)
    except ValueError:
        want = f"--time-format {options.time_format!r}" if options.time_format else "ISO-8601 (or set --time-format)"
        raise RowError(f"executed_at: {raw!r} is not a time in {want}") from None
    return ts.replace(tzinfo=options.tz) if ts.tzinfo is None else ts


def to_order(
    row: dict[str, str | None], external_id: str, options: ImportOptions, now: datetime | None = None
) -> OrderIn:
    """One file row as a validated OrderIn (the API's own rules), or RowError saying why not."""
    if "__error__" in row:
        raise RowError(row["__error__"])
    for name in REQUIRED:
        if row.get(name) is None:
            raise RowError(f"{name}: missing (column {options.columns[name]!r})")
    raw_side, raw_symbol = row["side"], row["symbol"]
    assert raw_side is not None and raw_symbol is not None  # REQUIRED, checked above
    side = options.sides.get(raw_side.lower())
    if side is None:
        raise RowError(f"side: {row['side']!r} is not buy or sell (map it with --side-map {row['side']}=buy|sell)")
    try:
        symbol = normalize_symbol(raw_symbol, "symbol")
    except InvalidSymbol as exc:
        raise RowError(str(exc).replace(" at symbol", "")) from None
    fields: dict[str, Any] = {
        "symbol": symbol,
        "side": side,
        "quantity": _decimal(row["quantity"], "quantity"),
        "external_order_id": external_id,
    }
    for name in ("price", "fees"):
        if (value := _decimal(row.get(name), name)) is not None:
            fields[name] = value
    if (executed_at := _timestamp(row.get("executed_at"), options)) is not None:
        fields["executed_at"] = executed_at
    for name in ("order_type", "status"):
        if (text := row.get(name)) is not None:
            fields[name] = text.lower()
    try:
        order = msgspec.convert(fields, OrderIn)
    except msgspec.ValidationError as exc:
        raise RowError(str(exc)) from None
    if order.executed_at is not None and order.executed_at > (now or datetime.now(UTC)) + MAX_FUTURE:
        raise RowError(f"executed_at: {order.executed_at.isoformat()} is in the future")
    return order
