"""The PostgreSQL connection plumbing every table owner shares (no table's SQL lives here)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from eventsourcing.postgres import PostgresDatastore
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow

#: how long a request waits for a connection: a dead database is a 503 within this
CONNECT_TIMEOUT_S = 5


def datastore_for(database_url: str, *, pool_size: int, max_overflow: int) -> PostgresDatastore:
    """eventsourcing's pooled PostgreSQL datastore for a database URL (shared by every owner)."""
    params = conninfo_to_dict(database_url)
    return PostgresDatastore(
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
