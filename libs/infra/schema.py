"""The database as a whole: the migrations (one ordered sequence of versions, applied once each
under an advisory lock) and what a backup or restore asks of every table at once.

Each owner keeps its own tables' DDL beside its reads and writes, as ``MIGRATIONS`` keyed by
version: the event store (``store``), identity, prices, the read model. A version's text here is
its owners' pieces in that fixed order (no version's statements depend on a later owner's).
The event store's own table comes from eventsourcing (``Database.create_tables``) before these.
Owner of ``schema_migrations``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from . import follows, identity, locks, prices, readmodel, store
from .pg import one

#: whose DDL comes first within a version (foreign keys and functions only point to earlier owners)
OWNERS = (store, identity, prices, readmodel, follows)

MIGRATIONS: list[tuple[int, str]] = [
    (version, "".join(owner.MIGRATIONS[version] for owner in OWNERS if version in owner.MIGRATIONS))
    for version in sorted({v for owner in OWNERS for v in owner.MIGRATIONS})
]
NEWEST = MIGRATIONS[-1][0]
SCHEMA = "public"


def migrate(conn: psycopg.Connection) -> int:
    """Apply pending migrations; returns the schema version now in force."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (locks.MIGRATION,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        current = applied_version(conn)
        for version, ddl in MIGRATIONS:
            if version > current:
                conn.execute(ddl)
                conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
                current = version
    return current


def _one(conn: psycopg.Connection, query: sql.Composed | str, params: Sequence[Any] | None = None) -> tuple[Any, ...]:
    """The row of a query that returns one (an aggregate, a function's value)."""
    with conn.cursor(row_factory=tuple_row) as curs:
        return one(curs.execute(query, params))


def applied_version(conn: psycopg.Connection) -> int:
    """The newest version recorded in ``schema_migrations`` (0: none)."""
    return _one(conn, "SELECT coalesce(max(version), 0) FROM schema_migrations")[0]


def forget_versions(conn: psycopg.Connection) -> None:
    """Empty ``schema_migrations`` (a restore loads the backup's rows instead)."""
    conn.execute("DELETE FROM schema_migrations")


def record_all_versions(conn: psycopg.Connection) -> None:
    """Record every version this code knows as applied (the schema in force is this code's)."""
    conn.execute(
        "INSERT INTO schema_migrations (version) SELECT unnest(%s::int[]) ON CONFLICT DO NOTHING",
        ([version for version, _ in MIGRATIONS],),
    )


# ------------------------------------------------------------ every table at once (backup, restore)


def existing_tables(conn: psycopg.Connection, tables: Iterable[str]) -> list[str]:
    """Those of ``tables`` that exist in the schema, in the given order."""
    tables = list(tables)
    with conn.cursor(row_factory=tuple_row) as curs:
        rows = curs.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relname = ANY(%s) AND c.relkind IN ('r', 'p')",
            (SCHEMA, tables),
        ).fetchall()
    found = {r[0] for r in rows}
    return [t for t in tables if t in found]


def some_relations(conn: psycopg.Connection, limit: int) -> list[str]:
    """Up to ``limit`` tables or views of any kind in the schema, by name."""
    with conn.cursor(row_factory=tuple_row) as curs:
        rows = curs.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY 1 LIMIT %s",
            (SCHEMA, limit),
        ).fetchall()
    return [r[0] for r in rows]


def row_counts(conn: psycopg.Connection, tables: Iterable[str], limit: int | None = None) -> dict[str, int]:
    """Each table's row count (at most ``limit``: enough to tell empty from not)."""
    counts = {}
    for table in tables:
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(SCHEMA, table))
        if limit is not None:
            query = sql.SQL("SELECT count(*) FROM (SELECT 1 FROM {} LIMIT {}) AS t").format(
                sql.Identifier(SCHEMA, table), sql.Literal(limit)
            )
        counts[table] = _one(conn, query)[0]
    return counts


def lock_tables(conn: psycopg.Connection, tables: Iterable[str], timeout: str) -> None:
    """Lock ``tables`` for the caller's transaction, waiting at most ``timeout`` (e.g. '10s')."""
    conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(timeout)))
    conn.execute(
        sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(
            sql.SQL(", ").join(sql.Identifier(SCHEMA, t) for t in tables)
        )
    )


@contextmanager
def snapshot(conn: psycopg.Connection) -> Iterator[str]:
    """A read-only REPEATABLE READ transaction on the autocommit ``conn``, exported (its id, for
    ``pg_dump --snapshot``); committed on exit."""
    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    yield _one(conn, "SELECT pg_export_snapshot()")[0]
    conn.execute("COMMIT")


@contextmanager
def copy_in(conn: psycopg.Connection, table: str, columns: Sequence[str]) -> Iterator[psycopg.Copy]:
    """COPY ``table`` (``columns``) FROM STDIN, in the caller's transaction."""
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(SCHEMA, table), sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    )
    with conn.cursor() as curs, curs.copy(statement) as copy:
        yield copy


def set_sequence(conn: psycopg.Connection, sequence: str, value: int, called: bool) -> None:
    conn.execute("SELECT pg_catalog.setval(%s::regclass, %s, %s)", (f"{SCHEMA}.{sequence}", value, called))


def set_client_encoding(conn: psycopg.Connection, encoding: str) -> None:
    """The encoding of the COPY data that follows."""
    conn.execute(sql.SQL("SET client_encoding = {}").format(sql.Literal(encoding)))
