"""Rows into a read-model table the cheap way for their number: COPY for many (a rebuild, a re-derived
history), one pipelined INSERT each for a few (a live order's day), so that a strategy's writes can go
in one pipeline: one round trip instead of three per COPY and one per statement. COPY cannot join a
pipeline; :func:`pipelined` opens one only when every table gets few rows."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext

from ..pg import DictCursor

#: at most this many rows a table go in as INSERTs (and may be pipelined); more go in with COPY
FEW_ROWS = 64


def put_rows(curs: DictCursor, table: str, columns: str, rows: Sequence[tuple[object, ...]]) -> None:
    """Insert ``rows`` (tuples in the order of ``columns``) into ``table``; a conflict fails either way."""
    if not rows:
        return
    if len(rows) > FEW_ROWS:
        with curs.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    placeholders = ", ".join(["%s"] * len(columns.split(",")))
    curs.executemany(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", rows)


@contextmanager
def pipelined(curs: DictCursor, *row_counts: int) -> Iterator[None]:
    """The statements sent inside go in one pipeline when each table gets at most :data:`FEW_ROWS` rows
    (``row_counts``): nothing is read back, and an error is raised on leaving (inside the caller's
    savepoint, which then undoes them all)."""
    with curs.connection.pipeline() if max(row_counts, default=0) <= FEW_ROWS else nullcontext():
        yield
