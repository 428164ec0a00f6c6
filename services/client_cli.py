"""People-facing commands that talk to a running BotRanks over HTTP, through ``botranks_client``.

``botranks orders import FILE`` (a broker's CSV or JSONL of fills), ``botranks state``,
``botranks performance`` and ``botranks nav``. Configured by ``BOTRANKS_URL``, ``FQ_API_KEY`` and
``FQ_STRATEGY_ID`` (or ``--url``/``--api-key``/``--strategy``). Errors are one line on stderr and
exit code 2; an import with rejected rows exits 1.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import logging
import os
import re
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import IO, Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from botranks_domain.errors import InvalidSymbol
from botranks_domain.model import MAX_BATCH, OrderIn, normalize_symbol

DEFAULT_URL = "http://127.0.0.1:8000"
#: the importer's fields, each read from the file column (CSV) or key (JSONL) of the same name unless --map says
FIELDS = ("symbol", "side", "quantity", "price", "fees", "executed_at", "order_id", "order_type", "status")
REQUIRED = ("symbol", "side", "quantity")
#: the raw values that identify a row without an order id (see ``RowIds``)
CONTENT_FIELDS = ("symbol", "side", "quantity", "price", "fees", "executed_at")
#: the server refuses an ``executed_at`` more than this far in the future
MAX_FUTURE = timedelta(minutes=5)
#: batches in flight at once: the server answers a write only once it is projected (read-your-writes,
#: up to BOTRANKS_READ_YOUR_WRITES_TIMEOUT), so one at a time leaves it idle (100k rows on 2 cores:
#: 1 → ~450 rows/s, 4 → ~1,100, 8 → ~2,100, 16 → ~3,500)
DEFAULT_PARALLEL = 8
#: a 500-order POST waits for its projection; under load that can exceed the client's default 10 s
IMPORT_TIMEOUT_S = 60.0
#: where a server's 422/400 names the bad order of a batch: ``orders[3].symbol``, ``$.orders[3].quantity``
ORDER_INDEX = re.compile(r"orders\[(\d+)\]")


class CliError(Exception):
    """A one-line error for the user (exit code 2)."""


# ---------------------------------------------------------------- connection


@dataclass(frozen=True)
class Connection:
    url: str
    api_key: str
    strategy_id: str


def connection(args: argparse.Namespace) -> Connection:
    """Flags first, then the environment; a missing key or strategy is a CliError."""
    settings = getattr(args, "settings", None)
    url = (args.url or (settings.url if settings else os.environ.get("BOTRANKS_URL")) or DEFAULT_URL).rstrip("/")
    key = args.api_key or os.environ.get("FQ_API_KEY", "")
    strategy = args.strategy or os.environ.get("FQ_STRATEGY_ID", "")
    if not key:
        raise CliError("no API key: set FQ_API_KEY or pass --api-key")
    if not strategy:
        raise CliError("no strategy: set FQ_STRATEGY_ID or pass --strategy")
    try:
        UUID(strategy)
    except ValueError:
        raise CliError(f"the strategy id must be a UUID, got {strategy!r}") from None
    return Connection(url, key, strategy)


def make_client(conn: Connection, **options: Any):
    """A ``botranks_client.Client`` for ``conn`` (tests replace this)."""
    from botranks_client import Client

    return Client(conn.url, conn.api_key, conn.strategy_id, **options)


def explain(exc: BaseException, conn: Connection | None) -> str:
    """The one line a person reads for an error of the client (or of the file)."""
    from botranks_client import errors

    where = conn.url if conn else "the server"
    if isinstance(exc, errors.ApiError):
        detail = getattr(exc, "detail", "") or str(exc)
        status = getattr(exc, "status", None)
        if status == 401:
            return f"the API key was refused (401: {detail}); check FQ_API_KEY / --api-key"
        if status == 403:
            return f"this API key does not grant access to strategy {conn.strategy_id if conn else ''} (403: {detail})"
        if status == 404:
            return f"no such strategy at {where} (404: {detail})"
        return f"{where} answered {status}: {detail}"
    if isinstance(exc, errors.TransportError):
        reason = str(exc.__cause__ or exc) or type(exc.__cause__).__name__
        return f"cannot reach BotRanks at {where} ({reason}): is `botranks up` running? (BOTRANKS_URL / --url)"
    if isinstance(exc, errors.ServerError):
        return f"{where} failed: {exc} (retry later)"
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc)
    return str(exc) or type(exc).__name__


def guarded(func: Callable[[argparse.Namespace], int | None]) -> Callable[[argparse.Namespace], None]:
    """Run a command: its exit code, one line on stderr and exit 2 on an error, never a traceback."""

    def run(args: argparse.Namespace) -> None:
        from botranks_client.errors import BotRanksError

        try:
            code = func(args)
        except CliError as exc:
            print(f"botranks: {exc}", file=sys.stderr)
            sys.exit(2)
        except (BotRanksError, OSError) as exc:
            if isinstance(exc, BrokenPipeError):  # `botranks nav --csv | head`: the reader has had enough
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                sys.exit(0)
            print(f"botranks: {explain(exc, getattr(args, 'conn', None))}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print("botranks: interrupted", file=sys.stderr)
            sys.exit(130)
        except Exception as exc:  # a bug or an unforeseen answer: still one line
            print(f"botranks: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
            sys.exit(2)
        if code:
            sys.exit(code)

    return run


# ---------------------------------------------------------------- orders import: reading rows


@dataclass
class ImportOptions:
    format: str = "csv"
    #: field -> column (CSV) or key (JSONL)
    columns: dict[str, str] = field(default_factory=lambda: {f: f for f in FIELDS})
    #: lower-cased file value -> "buy" | "sell"
    sides: dict[str, str] = field(default_factory=lambda: {"buy": "buy", "sell": "sell"})
    time_format: str | None = None
    tz: timezone | ZoneInfo = timezone.utc
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
        tz = timezone.utc if args.tz.upper() == "UTC" else ZoneInfo(args.tz)
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
    missing = [f"{f} ({c!r})" for f, c in options.columns.items()
               if (f in REQUIRED or f in options.mapped) and c.lower() not in index]
    if missing:
        raise CliError(f"the header has no column for {', '.join(missing)}; it has {', '.join(map(repr, header))}"
                       " (map columns with --map FIELD=COLUMN)")
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
        if row.get("order_id"):
            return row["order_id"]  # type: ignore[return-value]
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


def to_order(row: dict[str, str | None], external_id: str, options: ImportOptions,
             now: datetime | None = None) -> OrderIn:
    """One file row as a validated OrderIn (the API's own rules), or RowError saying why not."""
    if "__error__" in row:
        raise RowError(row["__error__"])
    for name in REQUIRED:
        if row.get(name) is None:
            raise RowError(f"{name}: missing (column {options.columns[name]!r})")
    side = options.sides.get(row["side"].lower())  # type: ignore[union-attr]
    if side is None:
        raise RowError(f"side: {row['side']!r} is not buy or sell (map it with --side-map {row['side']}=buy|sell)")
    try:
        symbol = normalize_symbol(row["symbol"], "symbol")  # type: ignore[arg-type]
    except InvalidSymbol as exc:
        raise RowError(str(exc).replace(" at symbol", "")) from None
    fields: dict[str, Any] = {"symbol": symbol, "side": side, "quantity": _decimal(row["quantity"], "quantity"),
                              "external_order_id": external_id}
    for name in ("price", "fees"):
        if (value := _decimal(row.get(name), name)) is not None:
            fields[name] = value
    if (executed_at := _timestamp(row.get("executed_at"), options)) is not None:
        fields["executed_at"] = executed_at
    for name in ("order_type", "status"):
        if row.get(name) is not None:
            fields[name] = row[name].lower()  # type: ignore[union-attr]
    try:
        order = msgspec.convert(fields, OrderIn)
    except msgspec.ValidationError as exc:
        raise RowError(str(exc)) from None
    if order.executed_at is not None and order.executed_at > (now or datetime.now(timezone.utc)) + MAX_FUTURE:
        raise RowError(f"executed_at: {order.executed_at.isoformat()} is in the future")
    return order


# ---------------------------------------------------------------- orders import: sending


@dataclass
class ImportSummary:
    file: str
    format: str
    rows: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0
    seconds: float = 0.0

    @property
    def rows_per_s(self) -> float:
        return round(self.rows / self.seconds, 1) if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "format": self.format, "rows": self.rows, "accepted": self.accepted,
                "duplicates": self.duplicates, "rejected": sorted(self.rejected, key=lambda r: r["line"]),
                "requests": self.requests, "seconds": round(self.seconds, 3), "rows_per_s": self.rows_per_s}


def _bad_index(exc: Exception, size: int) -> int | None:
    """The index of the offending order in a refused batch, when the error names it."""
    index = getattr(exc, "index", None)
    if index is None:
        found = ORDER_INDEX.search(str(getattr(exc, "detail", "") or exc))
        index = int(found.group(1)) if found else None
    return index if index is not None and 0 <= index < size else None


def row_reason(detail: str) -> str:
    """A server's detail about order i of a batch, said of the row: without the batch index."""
    return re.sub(r"(\$\.)?orders\[\d+\]\.?", "", re.sub(r"\s*\(orders\[\d+\]\)", "", detail))


@dataclass
class BatchOutcome:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0


def send_batch(client: Any, batch: list[tuple[int, OrderIn]]) -> BatchOutcome:
    """Send a batch; when the server refuses it (422: atomic), drop the offending rows, report them, send the rest.

    The row is the one the error names (``orders[i]``), else found by bisection.
    """
    from botranks_client.errors import ApiError, InvalidOrder

    out = BatchOutcome()
    pending = [batch]
    while pending:
        part = pending.pop()
        out.requests += 1
        try:
            result = client.submit_orders([order for _, order in part])
        except (ApiError, InvalidOrder) as exc:
            status = getattr(exc, "status", 422)
            if status not in (400, 422):
                raise
            partial = getattr(exc, "partial", None)  # the client cut the batch and its first requests went through
            if partial is not None and (partial.accepted or partial.duplicates):
                out.accepted += len(partial.accepted)
                out.duplicates += len(partial.duplicates)
                part = part[len(partial.accepted) + len(partial.duplicates):]
            reason = str(getattr(exc, "detail", "") or exc)
            index = _bad_index(exc, len(part))
            if index is None and status == 400 and len(part) > 1 and "orders[" not in reason:
                raise  # a malformed request, not a bad row
            if index is None and len(part) == 1:
                index = 0
            if index is not None:
                line, _ = part[index]
                out.rejected.append({"line": line, "reason": row_reason(reason)})
                rest = part[:index] + part[index + 1:]
                if rest:
                    pending.append(rest)
            else:
                middle = len(part) // 2
                pending += [part[middle:], part[:middle]]
            continue
        out.accepted += len(result.accepted)
        out.duplicates += len(result.duplicates)
    return out


def import_orders(stream: IO[bytes], options: ImportOptions, client: Any, summary: ImportSummary,
                  progress: Callable[[ImportSummary, int], None] = lambda s, b: None,
                  position: Callable[[], int] = lambda: 0, parallel: int = 1) -> ImportSummary:
    """Read, validate and send a file's rows in batches of MAX_BATCH, ``parallel`` batches in flight at most.

    Memory holds the batch being read and those in flight, never the file.
    """
    started = time.perf_counter()
    ids = RowIds()
    batch: list[tuple[int, OrderIn]] = []
    now = datetime.now(timezone.utc)
    inflight: deque[tuple[Future[BatchOutcome], int, int]] = deque()  # (batch, rows and bytes read by its end)

    def settle(keep: int) -> None:
        while len(inflight) > keep:
            future, rows, read = inflight.popleft()
            done = future.result()
            summary.accepted += done.accepted
            summary.duplicates += done.duplicates
            summary.rejected += done.rejected
            summary.requests += done.requests
            summary.seconds = time.perf_counter() - started
            progress(replace(summary, rows=rows), read)

    pool = ThreadPoolExecutor(max(1, parallel), thread_name_prefix="import")
    try:
        for line, row in read_rows(stream, options):
            summary.rows += 1
            try:
                batch.append((line, to_order(row, ids.external_id(row), options, now)))
            except RowError as exc:
                summary.rejected.append({"line": line, "reason": str(exc)})
            if len(batch) == MAX_BATCH:
                settle(max(1, parallel) - 1)
                inflight.append((pool.submit(send_batch, client, batch), summary.rows, position()))
                batch = []
        if batch:
            inflight.append((pool.submit(send_batch, client, batch), summary.rows, position()))
        settle(0)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        summary.seconds = time.perf_counter() - started
    progress(summary, position())
    return summary


def _progress_bar(total: int | None):
    from rich.console import Console
    from rich.progress import (BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    bar = Progress(TextColumn("[bold]importing"), BarColumn(), TaskProgressColumn(),
                   TextColumn("{task.fields[rows]:,} rows · {task.fields[rate]:,.0f} rows/s"),
                   TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True), transient=True)
    task = bar.add_task("import", total=total, rows=0, rate=0.0)

    def update(summary: ImportSummary, done: int) -> None:
        bar.update(task, completed=done, rows=summary.rows, rate=summary.rows_per_s)

    return bar, update


def print_import_summary(summary: ImportSummary, limit: int = 50) -> None:
    from rich.console import Console

    out = Console(highlight=False)
    out.print(f"[bold]{summary.file}[/]: {summary.rows:,} rows in {summary.seconds:.1f} s "
              f"({summary.rows_per_s:,.0f} rows/s)")
    out.print(f"  accepted    {summary.accepted:>10,}")
    out.print(f"  duplicates  {summary.duplicates:>10,}")
    style = "red" if summary.rejected else "green"
    out.print(f"  rejected    [{style}]{len(summary.rejected):>10,}[/]")
    rejected = sorted(summary.rejected, key=lambda r: r["line"])
    for item in rejected[:limit]:
        out.print(f"    line {item['line']}: {item['reason']}", markup=False)
    if len(rejected) > limit:
        out.print(f"    ... and {len(rejected) - limit:,} more (--json lists them all)")


class _Say(logging.Handler):
    """The client's retry warnings, at most one line every few seconds (several requests are in flight)."""

    EVERY_S = 5.0

    def __init__(self, say: Callable[[str], None]) -> None:
        super().__init__(logging.WARNING)
        self.say = say
        self.last = -self.EVERY_S

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if ": 429 " in message:  # waiting out the key's rate limit is normal pacing, not news
            return
        if time.monotonic() - self.last >= self.EVERY_S:
            self.last = time.monotonic()
            self.say(f"botranks: {message}")


def _say_retries(bar: Any, quiet: bool) -> None:
    """The client's retry warnings, one line each (above the progress bar); none with --quiet."""
    logger = logging.getLogger("botranks_client")
    logger.setLevel(logging.ERROR if quiet else logging.WARNING)
    if bar is not None:
        logger.addHandler(_Say(lambda m: bar.console.print(m, markup=False, highlight=False)))
    else:
        logger.addHandler(_Say(lambda m: print(m, file=sys.stderr)))


@guarded
def cmd_orders_import(args: argparse.Namespace) -> int:
    options = import_options(args)
    args.conn = conn = connection(args)
    stream: IO[bytes] = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")
    total = None if args.file == "-" else os.fstat(stream.fileno()).st_size
    summary = ImportSummary(file=args.file, format=options.format)
    show = not args.quiet and sys.stderr.isatty()
    bar, update = _progress_bar(total) if show else (None, lambda s, b: None)
    position = (lambda: 0) if args.file == "-" else stream.tell
    logging.getLogger("botranks_client").setLevel(logging.ERROR)
    with make_client(conn, max_retries=2) as probe:  # a wrong URL, key or strategy: said now, in one line
        probe.state()
    _say_retries(bar, args.quiet)
    try:
        # answers at commit (BotRanks-Read-Your-Writes: off): an import does not read back between batches
        with stream, make_client(conn, timeout=IMPORT_TIMEOUT_S, read_your_writes=False) as client:
            if bar is not None:
                bar.start()
            try:
                import_orders(stream, options, client, summary, update, position, args.parallel)
            finally:
                if bar is not None:
                    bar.stop()
    except KeyboardInterrupt:
        print(f"botranks: interrupted after {summary.rows:,} rows ({summary.accepted:,} accepted); running the same"
              " import again is safe: rows already sent come back as duplicates", file=sys.stderr)
        return 130
    except Exception:  # what was sent stays sent: say how far it got, then the error
        if summary.accepted or summary.duplicates:
            print(f"botranks: stopped after {summary.accepted:,} accepted and {summary.duplicates:,} duplicate"
                  " orders; running the same import again is safe", file=sys.stderr)
        raise
    if args.json:
        sys.stdout.buffer.write(msgspec.json.format(msgspec.json.encode(summary.as_dict()), indent=2) + b"\n")
    else:
        print_import_summary(summary)
    return 1 if summary.rejected else 0


# ---------------------------------------------------------------- reads

_json = msgspec.json.Encoder(decimal_format="number")


def _print_json(value: Any) -> None:
    sys.stdout.buffer.write(msgspec.json.format(_json.encode(value), indent=2) + b"\n")
    sys.stdout.flush()


def _num(value: Decimal | float | int | None, places: int | None = None) -> str:
    if value is None:
        return "–"
    if places is not None:
        return f"{Decimal(value):,.{places}f}"
    return f"{value:,}"


def _pct(value: float | None, sign: bool = True) -> str:
    return "–" if value is None else f"{value:+.2%}" if sign else f"{value:.2%}"


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _when(value: datetime | date | None) -> str:
    if value is None:
        return "–"
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if isinstance(value, datetime) else value.isoformat()


def _reader(args: argparse.Namespace):
    args.conn = conn = connection(args)
    logging.getLogger("botranks_client").setLevel(logging.ERROR)  # no retry chatter: the outcome is one line
    return make_client(conn, max_retries=args.retries)


@guarded
def cmd_state(args: argparse.Namespace) -> None:
    with _reader(args) as client:
        state = client.state()
    if args.json:
        return _print_json(state)
    from rich.console import Console
    from rich.table import Table

    out = Console()
    table = Table(title=f"Positions of {state.strategy_id}", title_justify="left")
    for name in ("Symbol", "Quantity", "Cost basis", "Updated"):
        table.add_column(name, justify="left" if name in ("Symbol", "Updated") else "right")
    for p in state.positions:
        table.add_row(p.symbol, _num(p.quantity), _num(p.cost_basis), _when(p.updated_at))
    out.print(table if state.positions else "[dim]no open positions[/]")
    nav = Table(show_header=False, box=None)
    nav.add_column(style="bold")
    nav.add_column(justify="right")
    if state.nav is not None:
        nav.add_row("Total equity", _num(state.nav.total_equity, 2))
        nav.add_row("Cash", _num(state.nav.cash_balance, 2))
        nav.add_row("Market value", _num(state.nav.market_value, 2))
        nav.add_row("Marked at", _when(state.nav.captured_at))
    nav.add_row("Last order", _when(state.last_order_at))
    out.print(nav)


@guarded
def cmd_performance(args: argparse.Namespace) -> None:
    with _reader(args) as client:
        perf = client.performance(benchmark=args.benchmark, risk_free_rate=args.risk_free_rate)
    if args.json:
        return _print_json(perf)
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    out = Console()
    table = Table(title=f"Performance of {perf.strategy_id}", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    rows = [("Period", f"{_when(perf.inception_date)} → {_when(perf.latest_date)}"
             f" ({perf.days or 0} days, {perf.years or 0:.2f} years)"),
            ("Equity", f"{_num(perf.starting_equity, 2)} → {_num(perf.ending_equity, 2)}"),
            ("Total return", _pct(perf.total_return)), ("CAGR", _pct(perf.cagr)),
            ("Volatility (ann.)", _pct(perf.volatility_annualized, sign=False)),
            ("Downside volatility (ann.)", _pct(perf.downside_volatility_annualized, sign=False)),
            ("Sharpe", _ratio(perf.sharpe_ratio)), ("Sortino", _ratio(perf.sortino_ratio)),
            ("Calmar", _ratio(perf.calmar_ratio)), ("Max drawdown", _pct(perf.drawdown.max_drawdown)),
            ("Max drawdown duration", f"{perf.drawdown.max_drawdown_duration_days or 0} days"),
            ("Current drawdown", _pct(perf.drawdown.current_drawdown))]
    b = perf.benchmark
    if b is not None:
        rows += [(f"Benchmark {b.symbol} return", _pct(b.benchmark_total_return)), ("Beta", _ratio(b.beta)),
                 ("Alpha (ann.)", _pct(b.alpha_annualized)),
                 ("Tracking error (ann.)", _pct(b.tracking_error_annualized, sign=False)),
                 ("Information ratio", _ratio(b.information_ratio))]
    for row in rows:
        table.add_row(*row)
    out.print(table)
    if perf.monthly_returns:
        out.print(_monthly_table(perf))
    for warning in perf.warnings:
        out.print(f"[yellow]warning[/] {escape(warning.code)}: {escape(warning.message)}")


def _monthly_table(perf: Any):
    """Returns by month (a row a year, in %: one decimal under 10, so it fits 80 columns), and the year's."""
    from rich.table import Table

    def cell(value: float | None) -> str:
        if value is None:
            return "–"
        return f"{value * 100:.1f}" if abs(value) < 0.0995 else f"{value * 100:.0f}"

    table = Table(title="Monthly returns (%)", title_justify="left", box=None, padding=(0, 0, 0, 1),
                  pad_edge=False, header_style="bold")
    table.add_column("")
    for name in ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec", "Year"):
        table.add_column(name, justify="right")
    for year in sorted({key[:4] for key in perf.monthly_returns} | set(perf.yearly_returns)):
        months = [f"{year}-{m:02d}" for m in range(1, 13)]
        table.add_row(year, *[cell(perf.monthly_returns[m]) if m in perf.monthly_returns else "" for m in months],
                      cell(perf.yearly_returns.get(year)))
    return table


def write_nav_csv(series: Any, out: IO[str]) -> None:
    """The NAV series as CSV: the same columns as the server's ``/nav`` with ``Accept: text/csv``."""
    from botranks_domain.nav import NAV_COLUMNS

    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(NAV_COLUMNS)
    writer.writerows([[getattr(row, c) for c in NAV_COLUMNS] for row in series.series])


@guarded
def cmd_nav(args: argparse.Namespace) -> None:
    if args.from_ and args.to and args.from_ > args.to:
        raise CliError("--from must not be after --to")
    with _reader(args) as client:
        series = client.nav(from_=args.from_, to=args.to)
    if args.csv:
        return write_nav_csv(series, sys.stdout)
    if args.json:
        return _print_json(series)
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Daily NAV of {series.strategy_id}", title_justify="left")
    for name in ("Date", "Cash", "Market value", "Total equity", "External flow"):
        table.add_column(name, justify="left" if name == "Date" else "right")
    for row in series.series:
        table.add_row(row.date.isoformat(), _num(row.cash, 2), _num(row.market_value, 2), _num(row.total_equity, 2),
                      _num(row.external_flow, 2))
    Console().print(table if series.series else "[dim]no NAV history yet[/]")


# ---------------------------------------------------------------- argparse


def _rate(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _connection_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("connection")
    g.add_argument("--url", help=f"base URL of BotRanks (default: BOTRANKS_URL, else {DEFAULT_URL})")
    g.add_argument("--api-key", help="the strategy's API key (default: FQ_API_KEY)")
    g.add_argument("--strategy", help="the strategy id (default: FQ_STRATEGY_ID)")


def _read_flags(p: argparse.ArgumentParser) -> None:
    _connection_flags(p)
    p.add_argument("--json", action="store_true", help="print the API's JSON instead of tables")
    p.add_argument("--retries", type=int, default=2, help="retries of a failed request (default 2)")


IMPORT_HELP = """\
Send a broker's file of fills as orders, 500 a request. CSV (a header row, columns
symbol,side,quantity,price,fees,executed_at,order_id by default; also order_type,status) or JSONL
(one object a line, the same keys), by extension or --format. Empty price: the server uses the
close of executed_at's day. Every row is checked locally first; bad rows are reported with their
line number and not sent, and a row the server refuses is found and reported, the rest sent.

order_id becomes external_order_id. A row without one gets imp-<hash> of its raw symbol, side,
quantity, price, fees and executed_at, plus how many identical rows came before it in the file:
not the line number, so re-running the file, or the file with a header or other rows added or
rows reordered, or a later export that overlaps it, is a no-op (duplicates), while two
identical fills in one file stay two orders.

Exit code: 0 when nothing was rejected, 1 when rows were rejected, 2 on an error."""


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add `orders import`, `state`, `performance` and `nav` to the `botranks` parser."""
    p = sub.add_parser("orders", help="a strategy's orders over the API (import a broker's file)")
    osub = p.add_subparsers(dest="action", required=True)
    c = osub.add_parser("import", help="send a CSV/JSONL file of fills as orders (idempotent: re-running is a"
                        " no-op)", description=IMPORT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("file", help="the file (- for stdin, with --format)")
    c.add_argument("--format", choices=["csv", "jsonl"], help="default: from the extension (.jsonl/.ndjson: jsonl)")
    c.add_argument("--map", action="append", metavar="FIELD=COLUMN",
                   help=f"read FIELD from COLUMN (fields: {', '.join(FIELDS)}); repeatable, e.g."
                        " --map symbol=Ticker --map executed_at='Trade Time'")
    c.add_argument("--side-map", action="append", metavar="VALUE=buy|sell",
                   help="what the side column's values mean, e.g. --side-map BOT=buy --side-map SLD=sell"
                        " (buy/sell in any case are known)")
    c.add_argument("--time-format", help="strptime format of executed_at, e.g. '%%m/%%d/%%Y %%H:%%M:%%S'"
                   " (default: ISO-8601)")
    c.add_argument("--tz", default="UTC", help="time zone of executed_at values without an offset (default UTC)")
    c.add_argument("--delimiter", default=",", help="CSV field separator (default ','; 'tab' for tabs)")
    c.add_argument("--skip-lines", type=int, default=0, metavar="N", help="CSV: lines before the header row"
                   " (a broker's preamble)")
    c.add_argument("--parallel", type=int, default=DEFAULT_PARALLEL, metavar="N",
                   help=f"requests in flight at once (default {DEFAULT_PARALLEL})")
    c.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    c.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    _connection_flags(c)
    c.set_defaults(func=cmd_orders_import)

    p = sub.add_parser("state", help="a strategy's positions and current NAV (over the API)")
    _read_flags(p)
    p.set_defaults(func=cmd_state)

    p = sub.add_parser("performance", help="a strategy's return, risk and benchmark figures (over the API)")
    p.add_argument("--benchmark", help="symbol to compare against (default: the strategy's; '' for none)")
    p.add_argument("--risk-free-rate", type=_rate, help="annualized, e.g. 0.045")
    _read_flags(p)
    p.set_defaults(func=cmd_performance)

    p = sub.add_parser("nav", help="a strategy's daily NAV (over the API); --csv for CSV on stdout")
    p.add_argument("--from", dest="from_", type=date.fromisoformat, help="first day, YYYY-MM-DD")
    p.add_argument("--to", type=date.fromisoformat, help="last day, YYYY-MM-DD")
    p.add_argument("--csv", action="store_true", help="CSV on stdout (the columns of GET /nav as text/csv)")
    _read_flags(p)
    p.set_defaults(func=cmd_nav)
