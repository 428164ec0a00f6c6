"""The PostgreSQL connection plumbing every table owner shares (no table's SQL lives here)."""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import TypeAlias, TypeVar

import psycopg
from eventsourcing.postgres import ConnectionPool, PostgresDatastore
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow
from psycopg_pool import PoolClosed, PoolTimeout
from psycopg_pool.pool import AddConnection

#: how long a request waits for a connection: a dead database is a 503 within this
CONNECT_TIMEOUT_S = 5

#: a pooled connection returned less than this long ago is handed out without a ping
FRESH_S = 1.0

#: the longest wait between two attempts to replace a lost connection
RECONNECT_MAX_S = 0.2

#: how long closing the pool waits for its threads, and for each cancellation of a running statement
CLOSE_TIMEOUT_S = 0.3

#: a cursor of eventsourcing's connections (``reading``, ``datastore.transaction``): rows are dicts by column
DictCursor: TypeAlias = psycopg.Cursor[DictRow]

Row = TypeVar("Row")


def one(curs: psycopg.Cursor[Row]) -> Row:
    """The row of a statement that always returns exactly one (an aggregate, a singleton table, a row
    the transaction holds): ``fetchone()`` narrowed."""
    row = curs.fetchone()
    assert row is not None, "the statement returns one row"
    return row


class PoolStopped(RuntimeError):
    """The pool was closed: the process is stopping. Not a ``psycopg.OperationalError``, so
    eventsourcing's recorders do not retry it (ten times, 0.2 s apart) as they retry a lost connection."""


class HealingPool(ConnectionPool[psycopg.Connection[DictRow]]):
    """eventsourcing's pool (psycopg_pool's, the datastore's password function aside: none here), whole
    again within a fraction of a second after the database restarts.

    - A connection is pinged before it is handed out (a restart leaves every pooled connection
      dead), unless it was returned less than ``FRESH_S`` ago and more than ``FRESH_S`` after the
      last connection was found broken: under load that ping was a second round trip per request.
    - A failed ping drops that connection and every idle one that is dead too (``check()``), and the
      request takes the next connection at once. (psycopg_pool's own ``check`` callback sleeps 1, 2,
      4 s between dead connections: the first request after a restart hung 5 s for a 503.)
    - Lost connections are re-made at most ``RECONNECT_MAX_S`` apart, not with psycopg_pool's
      exponential backoff (after a minute's outage it came back up to half a minute late).
    - ``close()`` also cancels the statements running on connections in use, so no thread stays
      stuck in a database call when the process stops; from then on it is :class:`PoolStopped`.
    """

    def __init__(self, *args, **kwargs) -> None:
        self._stopped = False
        self._returned: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._lost_at = float("-inf")
        self._in_use: set[psycopg.Connection[DictRow]] = set()
        self._in_use_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def getconn(self, timeout: float | None = None) -> psycopg.Connection[DictRow]:
        total = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + total
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PoolTimeout(f"couldn't get a connection after {total:.2f} sec")
            if self._stopped:
                raise PoolStopped("the connection pool is closed")
            try:
                conn = super().getconn(remaining)
            except PoolClosed:
                raise PoolStopped("the connection pool is closed") from None
            returned = self._returned.get(conn, float("-inf"))
            if time.monotonic() - returned < FRESH_S and returned > self._lost_at + FRESH_S:
                break
            try:
                self.check_connection(conn)
            except BaseException as exc:
                self._lost_at = time.monotonic()
                self.putconn(conn)  # broken: the pool replaces it
                if not isinstance(exc, Exception):
                    raise
                self.check()  # the idle ones died with it: drop them now, not one request at a time
                continue
            break
        with self._in_use_lock:
            self._in_use.add(conn)
        return conn

    def putconn(self, conn: psycopg.Connection[DictRow]) -> None:
        with self._in_use_lock:
            self._in_use.discard(conn)
        if conn.broken:
            self._lost_at = time.monotonic()
        else:
            self._returned[conn] = time.monotonic()
        super().putconn(conn)

    def schedule_task(self, task, delay: float) -> None:
        if isinstance(task, AddConnection):
            delay = min(delay, RECONNECT_MAX_S)
        super().schedule_task(task, delay)

    def open(self, wait: bool = False, timeout: float = 30.0) -> None:
        if self._stopped:
            raise PoolStopped("the connection pool is closed")
        super().open(wait, timeout)

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        self._stopped = True
        with self._in_use_lock:
            busy = list(self._in_use)
        for conn in busy:
            with suppress(Exception):
                conn.cancel_safe(timeout=CLOSE_TIMEOUT_S)
        super().close(timeout)  # requests waiting for a connection fail at once


def datastore_for(database_url: str, *, pool_size: int, max_overflow: int) -> PostgresDatastore:
    """eventsourcing's PostgreSQL datastore for a database URL (shared by every owner), on a
    :class:`HealingPool`."""
    # the URL's parameters are text (conninfo_to_dict types them as any connection parameter)
    params = {name: str(value) for name, value in conninfo_to_dict(database_url).items() if value is not None}
    datastore = PostgresDatastore(
        dbname=params.get("dbname", "postgres"),
        host=params.get("host", "127.0.0.1"),
        port=params.get("port", 5432),
        user=params.get("user", "postgres"),
        password=params.get("password", ""),
        pool_size=pool_size,
        max_overflow=max_overflow,
        max_waiting=1000,
        connect_timeout=CONNECT_TIMEOUT_S,
    )
    built = datastore.pool  # never opened: the same settings on our pool
    assert isinstance(built.kwargs, dict)  # eventsourcing passes its connection parameters as a dict
    datastore.pool = HealingPool(
        connection_class=built.connection_class,
        kwargs={**built.kwargs, "connect_timeout": CONNECT_TIMEOUT_S},
        min_size=built.min_size,
        max_size=built.max_size,
        open=False,
        configure=datastore.after_connect_func(),
        timeout=built.timeout,
        max_waiting=built.max_waiting,
        max_lifetime=built.max_lifetime,
    )
    return datastore


@contextmanager
def reading(datastore: PostgresDatastore) -> Iterator[DictCursor]:
    """A cursor on a pooled autocommit connection: each statement is its own snapshot, no BEGIN."""
    with datastore.get_connection() as conn, conn.cursor() as curs:
        yield curs


class Leadership:
    """A session-level PostgreSQL advisory lock held on a connection of its own: at most one
    holder among every process on the database (relay election); released when it closes or dies."""

    def __init__(self, database_url: str, key: int) -> None:
        self.database_url, self.key = database_url, key
        self._conn: psycopg.Connection | None = None

    def try_acquire(self) -> bool:
        if self._conn is None:
            self._conn = psycopg.connect(self.database_url, autocommit=True)
        return bool(one(self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)))[0])

    def release(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class Leases:
    """Partition leases among the processes of one kind (projectors), on a connection of its own.

    Each process holds one *member* lock (``(member_class, slot)``, the first free slot) for as long
    as it lives, and one *lease* lock (``(lease_class, partition)``) per partition it owns: session
    advisory locks, so a process that dies (even by SIGKILL) loses them all the moment PostgreSQL sees
    its connection close. ``balance`` gives this process its fair share: ceil(partitions / members),
    taking free partitions and releasing the highest of its own beyond that share.
    """

    MAX_MEMBERS = 256

    def __init__(self, database_url: str, member_class: int, lease_class: int) -> None:
        self.database_url, self.member_class, self.lease_class = database_url, member_class, lease_class
        self.owned: set[int] = set()
        self.slot: int | None = None
        self._conn: psycopg.Connection | None = None

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self.owned, self.slot = set(), None
            # keepalives: a peer that vanishes without closing its socket is noticed by the server sooner
            self._conn = psycopg.connect(
                self.database_url,
                autocommit=True,
                keepalives=1,
                keepalives_idle=5,
                keepalives_interval=1,
                keepalives_count=3,
            )
        return self._conn

    def _granted(self, conn: psycopg.Connection, lock_class: int) -> list[int]:
        rows = conn.execute(
            "SELECT objid::int FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = %s::oid"
            " AND objsubid = 2 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            (lock_class,),
        ).fetchall()
        return [r[0] for r in rows]

    def balance(self, partitions: int) -> tuple[set[int], set[int]]:
        """Take or give back partitions towards this process's share; returns (taken, released)."""
        conn = self._connection()
        if self.slot is None:
            for slot in range(self.MAX_MEMBERS):
                if one(conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (self.member_class, slot)))[0]:
                    self.slot = slot
                    break
            else:
                raise RuntimeError("no free member slot")
        members = max(1, len(self._granted(conn, self.member_class)))
        share = -(-partitions // members)
        taken: set[int] = set()
        released: set[int] = set()
        for partition in sorted(p for p in self.owned if p >= partitions):  # a smaller layout
            released.add(self._release(conn, partition))
        while len(self.owned) > share:
            released.add(self._release(conn, max(self.owned)))
        if len(self.owned) < share:
            held = set(self._granted(conn, self.lease_class))
            for partition in range(partitions):
                if len(self.owned) >= share:
                    break
                if partition in held or partition in self.owned:
                    continue
                if one(conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (self.lease_class, partition)))[0]:
                    self.owned.add(partition)
                    taken.add(partition)
        return taken, released

    def _release(self, conn: psycopg.Connection, partition: int) -> int:
        conn.execute("SELECT pg_advisory_unlock(%s, %s)", (self.lease_class, partition))
        self.owned.discard(partition)
        return partition

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn, self.owned, self.slot = None, set(), None
