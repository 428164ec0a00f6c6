"""A durable outbox: writes go to a SQLite file first and a background thread sends them, in order.

A row is one request body, with its ids and times already filled, so resending it after a crash
(the server may have stored it before the process died) only yields duplicates. A row is deleted
in the same transaction that learns of the server's 2xx, never before. Consecutive order rows are
merged into batches of up to 500 orders.

What the server refuses for good (400/409/413/415/422) goes to ``dead_letters`` and the queue
moves on; a failure of the credentials or the strategy (401/403/404) would refuse every row
alike, so the queue stops there (``flush`` raises it) and tries again every ``BLOCKED_RETRY_S``.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from uuid import UUID

from . import _core
from .errors import ApiError, BotRanksError, Forbidden, NotFound, OutboxTimeout, RateLimited, Unauthorized
from .results import DeadLetter, Enqueued

log = logging.getLogger("botranks_client.outbox")

IDLE_POLL_S = 1.0
BLOCKED_RETRY_S = 60.0
FAILURE_BACKOFF_CAP_S = 60.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    strategy_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('orders', 'cash', 'snapshot')),
    body BLOB NOT NULL,
    items INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS outbox_strategy ON outbox (strategy_id, id);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY,
    strategy_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    body BLOB NOT NULL,
    items INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    status INTEGER,
    detail TEXT NOT NULL,
    failed_at TEXT NOT NULL
);
"""

Send = Callable[[str, bytes, Callable[[float], None]], None]


class _Stopped(Exception):
    """The outbox is closing: abandon the request being retried (its row stays)."""


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    # FULL: a row acknowledged to the caller survives a power cut too, not only a killed process
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Outbox:
    """The SQLite file and its flusher thread (started at once: rows left by a previous run go first)."""

    def __init__(self, path: str | Path, strategy_id: UUID, send: Send, *, request_timeout: float = 10.0) -> None:
        self.path = Path(path)
        self.strategy = str(strategy_id)
        self.send = send
        self.request_timeout = request_timeout
        self._lock = threading.Lock()
        self._conn = _connect(self.path)
        self._conn.executescript(SCHEMA)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._idle = threading.Condition()
        self.blocked: ApiError | None = None
        left = self.pending()
        if left:
            log.info("outbox %s: resuming %d unsent rows", self.path, left)
        others = self._conn.execute("SELECT count(*) FROM outbox WHERE strategy_id <> ?", (self.strategy,)).fetchone()[
            0
        ]
        if others:
            log.warning("outbox %s holds %d rows of other strategies: left for their own clients", self.path, others)
        self._thread = threading.Thread(target=self._run, name=f"botranks-outbox-{self.strategy[:8]}", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ caller side

    def enqueue(self, kind: Literal["orders", "cash", "snapshot"], bodies: list[tuple[bytes, int]]) -> Enqueued:
        """Store request bodies in one transaction; return their row ids."""
        ids: list[int] = []
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for body, items in bodies:
                    cursor = self._conn.execute(
                        "INSERT INTO outbox (strategy_id, kind, body, items, created_at) VALUES (?, ?, ?, ?, ?)",
                        (self.strategy, kind, body, items, _now()),
                    )
                    ids.append(int(cursor.lastrowid or 0))
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        self._wake.set()
        return Enqueued(kind=kind, ids=ids, items=sum(items for _, items in bodies))

    def pending(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT count(*) FROM outbox WHERE strategy_id = ?", (self.strategy,)).fetchone()[
                0
            ]

    def dead_letters(self) -> list[DeadLetter]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, kind, body, items, status, detail, created_at, failed_at FROM dead_letters"
                " WHERE strategy_id = ? ORDER BY id",
                (self.strategy,),
            ).fetchall()
        return [
            DeadLetter(
                id=r[0],
                kind=r[1],
                body=bytes(r[2]),
                items=r[3],
                status=r[4],
                detail=r[5],
                created_at=datetime.fromisoformat(r[6]),
                failed_at=datetime.fromisoformat(r[7]),
            )
            for r in rows
        ]

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every row of this strategy is acknowledged."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = self.pending()
            if left == 0:
                return
            if self.blocked is not None:
                raise self.blocked
            if not self._thread.is_alive():
                raise BotRanksError(f"outbox {self.path}: the flusher is stopped with {left} rows left")
            if deadline is not None and time.monotonic() >= deadline:
                raise OutboxTimeout(left)
            with self._idle:
                wait = 0.5 if deadline is None else max(0.0, min(0.5, deadline - time.monotonic()))
                self._idle.wait(wait)

    def close(self, flush_timeout: float | None = 30.0) -> None:
        """Flush (bounded), stop the thread; rows still there are sent by the next client on this file."""
        if self._thread.is_alive():
            try:
                self.flush(flush_timeout)
            except BotRanksError as exc:
                log.warning("outbox %s closed with %d rows unsent: %s", self.path, self.pending(), exc)
        self._stop.set()
        self._wake.set()
        self._thread.join(self.request_timeout + 5)
        with self._lock:
            self._conn.close()

    # ------------------------------------------------------------ flusher thread

    def _sleep(self, seconds: float) -> None:
        if self._stop.wait(seconds):
            raise _Stopped()

    def _run(self) -> None:
        conn = _connect(self.path)
        isolate_until = 0  # rows up to this id go one at a time (a merged batch was refused)
        failures = 0
        try:
            while not self._stop.is_set():
                rows = self._next(conn, isolate_until)
                if not rows:
                    with self._idle:
                        self._idle.notify_all()
                    self._wake.wait(IDLE_POLL_S)
                    self._wake.clear()
                    continue
                ids = [r[0] for r in rows]
                kind = rows[0][1]
                body = (
                    rows[0][2]
                    if len(rows) == 1
                    else _core.orders_body([o for r in rows for o in _core.split_orders_body(r[2])])
                )
                try:
                    self.send(kind, body, self._sleep)
                except _Stopped:
                    return
                except (Unauthorized, Forbidden, NotFound) as exc:
                    self.blocked = exc
                    log.error("outbox %s blocked: %s; retrying in %.0f s", self.path, exc, BLOCKED_RETRY_S)
                    with self._idle:
                        self._idle.notify_all()
                    if self._stop.wait(BLOCKED_RETRY_S):
                        return
                    continue
                except ApiError as exc:
                    if isinstance(exc, RateLimited):
                        failures = self._failed(conn, ids, exc, failures)
                    elif len(rows) > 1:
                        isolate_until = ids[-1]
                    else:
                        self._dead(conn, rows[0], exc.status, exc.detail)
                    continue
                except BotRanksError as exc:  # ServerError, TransportError, UnexpectedResponse
                    failures = self._failed(conn, ids, exc, failures)
                    continue
                except Exception as exc:  # never let the thread die with rows in the file
                    log.exception("outbox %s: unexpected error", self.path)
                    failures = self._failed(conn, ids, exc, failures)
                    continue
                self.blocked, failures = None, 0
                conn.execute(f"DELETE FROM outbox WHERE id IN ({','.join('?' * len(ids))})", ids)
                log.debug("outbox %s: sent rows %s (%s)", self.path, ids, kind)
                with self._idle:
                    self._idle.notify_all()
        except _Stopped:
            return
        finally:
            conn.close()

    def _next(self, conn: sqlite3.Connection, isolate_until: int) -> list[tuple]:
        rows = conn.execute(
            "SELECT id, kind, body, items FROM outbox WHERE strategy_id = ? ORDER BY id LIMIT ?",
            (self.strategy, _core.MAX_BATCH),
        ).fetchall()
        if not rows:
            return []
        batch = [rows[0]]
        if rows[0][1] != "orders" or rows[0][0] <= isolate_until:
            return batch
        count, size = rows[0][3], len(rows[0][2])
        for row in rows[1:]:
            if row[1] != "orders" or count + row[3] > _core.MAX_BATCH or size + len(row[2]) > _core.MAX_BODY_BYTES:
                break
            batch.append(row)
            count, size = count + row[3], size + len(row[2])
        return batch

    def _failed(self, conn: sqlite3.Connection, ids: list[int], exc: BaseException, failures: int) -> int:
        """A failure that may pass: note it, wait (backoff, interrupted by close), try the same rows again."""
        conn.execute(
            f"UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE id IN ({','.join('?' * len(ids))})",
            [str(exc)[:1000], *ids],
        )
        delay = min(FAILURE_BACKOFF_CAP_S, 1.0 * 2 ** min(failures, 6))
        log.warning("outbox %s: sending rows %s failed (%s); again in %.0f s", self.path, ids, exc, delay)
        self._sleep(delay)
        return failures + 1

    def _dead(self, conn: sqlite3.Connection, row: tuple, status: int | None, detail: str) -> None:
        row_id = row[0]
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "INSERT INTO dead_letters (id, strategy_id, kind, body, items, created_at, status, detail,"
                " failed_at) SELECT id, strategy_id, kind, body, items, created_at, ?, ?, ? FROM outbox"
                " WHERE id = ?",
                (status, detail, _now(), row_id),
            )
            conn.execute("DELETE FROM outbox WHERE id = ?", (row_id,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        log.error(
            "outbox %s: row %d (%s) refused by the server (%s): %s; moved to dead_letters",
            self.path,
            row_id,
            row[1],
            status,
            detail,
        )
