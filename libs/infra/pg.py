"""The PostgreSQL connection plumbing every table owner shares (no table's SQL lives here)."""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from eventsourcing.postgres import PostgresDatastore
from psycopg_pool import ConnectionPool
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow

#: how long a request waits for a connection: a dead database is a 503 within this
CONNECT_TIMEOUT_S = 5


#: a pooled connection returned less than this long ago is handed out without a ping
FRESH_S = 1.0


def _ping_unless_fresh(pool) -> None:
    """The pool pings a connection before handing it out (a database restart leaves every pooled
    connection dead), but not one that was returned less than ``FRESH_S`` ago: under load that
    ping was a second round trip per request. (psycopg_pool's ``check`` and ``reset`` hooks; the
    datastore builds its pool itself, so they are set on it.)"""
    returned: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def check(conn) -> None:
        if time.monotonic() - returned.get(conn, float("-inf")) >= FRESH_S:
            ConnectionPool.check_connection(conn)

    def reset(conn) -> None:
        returned[conn] = time.monotonic()

    pool._check, pool._reset = check, reset


def datastore_for(database_url: str, *, pool_size: int, max_overflow: int) -> PostgresDatastore:
    """eventsourcing's pooled PostgreSQL datastore for a database URL (shared by every owner)."""
    params = conninfo_to_dict(database_url)
    datastore = PostgresDatastore(
        dbname=params.get("dbname", "postgres"),
        host=params.get("host", "127.0.0.1"),
        port=params.get("port", 5432),
        user=params.get("user", "postgres"),
        password=params.get("password", ""),
        pool_size=pool_size,
        max_overflow=max_overflow,
        max_waiting=1000,
        pre_ping=True,
        connect_timeout=CONNECT_TIMEOUT_S,
    )
    _ping_unless_fresh(datastore.pool)
    return datastore


@contextmanager
def reading(datastore: PostgresDatastore) -> Iterator[psycopg.Cursor[DictRow]]:
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
        return bool(self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()[0])

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
            self._conn = psycopg.connect(self.database_url, autocommit=True, keepalives=1, keepalives_idle=5,
                                         keepalives_interval=1, keepalives_count=3)
        return self._conn

    def _granted(self, conn: psycopg.Connection, lock_class: int) -> list[int]:
        rows = conn.execute(
            "SELECT objid::int FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = %s::oid"
            " AND objsubid = 2 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            (lock_class,)).fetchall()
        return [r[0] for r in rows]

    def balance(self, partitions: int) -> tuple[set[int], set[int]]:
        """Take or give back partitions towards this process's share; returns (taken, released)."""
        conn = self._connection()
        if self.slot is None:
            for slot in range(self.MAX_MEMBERS):
                if conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (self.member_class, slot)).fetchone()[0]:
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
                if conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (self.lease_class, partition)).fetchone()[0]:
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
