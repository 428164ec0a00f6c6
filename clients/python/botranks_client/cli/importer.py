"""``botranks orders import``, sending: batches of MAX_BATCH in flight, the rows the server refuses
found and reported, a progress bar and a summary."""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import IO, Any

import msgspec

from botranks_domain.model import MAX_BATCH, OrderIn

from . import common
from .common import connection, guarded
from .rows import ImportOptions, RowError, RowIds, import_options, read_rows, to_order

#: batches in flight at once: the server answers a write only once it is projected (read-your-writes,
#: up to BOTRANKS_READ_YOUR_WRITES_TIMEOUT), so one at a time leaves it idle (100k rows on 2 cores:
#: 1 → ~450 rows/s, 4 → ~1,100, 8 → ~2,100, 16 → ~3,500)
DEFAULT_PARALLEL = 8
#: a 500-order POST waits for its projection; under load that can exceed the client's default 10 s
IMPORT_TIMEOUT_S = 60.0
#: where a server's 422/400 names the bad order of a batch: ``orders[3].symbol``, ``$.orders[3].quantity``
ORDER_INDEX = re.compile(r"orders\[(\d+)\]")


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
        return {
            "file": self.file,
            "format": self.format,
            "rows": self.rows,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": sorted(self.rejected, key=lambda r: r["line"]),
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "rows_per_s": self.rows_per_s,
        }


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
                part = part[len(partial.accepted) + len(partial.duplicates) :]
            reason = str(getattr(exc, "detail", "") or exc)
            index = _bad_index(exc, len(part))
            if index is None and status == 400 and len(part) > 1 and "orders[" not in reason:
                raise  # a malformed request, not a bad row
            if index is None and len(part) == 1:
                index = 0
            if index is not None:
                line, _ = part[index]
                out.rejected.append({"line": line, "reason": row_reason(reason)})
                rest = part[:index] + part[index + 1 :]
                if rest:
                    pending.append(rest)
            else:
                middle = len(part) // 2
                pending += [part[middle:], part[:middle]]
            continue
        out.accepted += len(result.accepted)
        out.duplicates += len(result.duplicates)
    return out


def import_orders(
    stream: IO[bytes],
    options: ImportOptions,
    client: Any,
    summary: ImportSummary,
    progress: Callable[[ImportSummary, int], None] = lambda s, b: None,
    position: Callable[[], int] = lambda: 0,
    parallel: int = 1,
) -> ImportSummary:
    """Read, validate and send a file's rows in batches of MAX_BATCH, ``parallel`` batches in flight at most.

    Memory holds the batch being read and those in flight, never the file.
    """
    started = time.perf_counter()
    ids = RowIds()
    batch: list[tuple[int, OrderIn]] = []
    now = datetime.now(UTC)
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
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("[bold]importing"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rows]:,} rows · {task.fields[rate]:,.0f} rows/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = bar.add_task("import", total=total, rows=0, rate=0.0)

    def update(summary: ImportSummary, done: int) -> None:
        bar.update(task, completed=done, rows=summary.rows, rate=summary.rows_per_s)

    return bar, update


def print_import_summary(summary: ImportSummary, limit: int = 50) -> None:
    from rich.console import Console

    out = Console(highlight=False)
    out.print(
        f"[bold]{summary.file}[/]: {summary.rows:,} rows in {summary.seconds:.1f} s ({summary.rows_per_s:,.0f} rows/s)"
    )
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
    with common.make_client(conn, max_retries=2) as probe:  # a wrong URL, key or strategy: said now, in one line
        probe.state()
    _say_retries(bar, args.quiet)
    try:
        # answers at commit (BotRanks-Read-Your-Writes: off): an import does not read back between batches
        with stream, common.make_client(conn, timeout=IMPORT_TIMEOUT_S, read_your_writes=False) as client:
            if bar is not None:
                bar.start()
            try:
                import_orders(stream, options, client, summary, update, position, args.parallel)
            finally:
                if bar is not None:
                    bar.stop()
    except KeyboardInterrupt:
        print(
            f"botranks: interrupted after {summary.rows:,} rows ({summary.accepted:,} accepted); running the same"
            " import again is safe: rows already sent come back as duplicates",
            file=sys.stderr,
        )
        return 130
    except Exception:  # what was sent stays sent: say how far it got, then the error
        if summary.accepted or summary.duplicates:
            print(
                f"botranks: stopped after {summary.accepted:,} accepted and {summary.duplicates:,} duplicate"
                " orders; running the same import again is safe",
                file=sys.stderr,
            )
        raise
    if args.json:
        sys.stdout.buffer.write(msgspec.json.format(msgspec.json.encode(summary.as_dict()), indent=2) + b"\n")
    else:
        print_import_summary(summary)
    return 1 if summary.rejected else 0
