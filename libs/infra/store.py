"""The event store: eventsourcing's PostgreSQL recorders, plus the few queries BotRanks needs.

Every ledger event is stored as version 1 of its own aggregate, whose id is deterministic
(uuid5 of strategy and external id) when the bot gave an external id. A second submission
of the same id therefore fails the recorder's primary key: idempotency is enforced by the
database, atomically, for the whole batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from uuid import UUID

import psycopg
from eventsourcing.persistence import IntegrityError, Notification, StoredEvent
from eventsourcing.postgres import (
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresTrackingRecorder,
)
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow

from libs.domain.model import LedgerEvent, decode_event, encode_event, event_topic

from .schema import migrate

EVENTS_TABLE = "botranks_events"
TRACKING_TABLE = "botranks_tracking"
#: the projector's name in the tracking table (eventsourcing's "application name")
PROJECTOR = "projector"

__all__ = ["EventStore", "IntegrityError", "Notification"]


def datastore_for(database_url: str, *, pool_size: int, max_overflow: int) -> PostgresDatastore:
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
        connect_timeout=5,  # also the wait for a pooled connection: a dead database is a 503 within 5 s
    )


class EventStore:
    """Append-only ledger events in PostgreSQL, read back as a gap-tolerant notification log."""

    def __init__(self, database_url: str, *, pool_size: int = 4, max_overflow: int = 8) -> None:
        self.database_url = database_url
        self.datastore = datastore_for(database_url, pool_size=pool_size, max_overflow=max_overflow)
        self.recorder = PostgresApplicationRecorder(self.datastore, events_table_name=EVENTS_TABLE)
        self.tracking = PostgresTrackingRecorder(self.datastore, tracking_table_name=TRACKING_TABLE)
        self._store_id: str | None = None

    # ------------------------------------------------------------ lifecycle

    def create_tables(self) -> None:
        """Run eventsourcing's DDL and BotRanks' migrations (idempotent, safe to race)."""
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute("SELECT pg_advisory_lock(4207)")
            try:
                self.recorder.create_table()
                self.tracking.create_table()
                migrate(conn)
            finally:
                conn.execute("SELECT pg_advisory_unlock(4207)")
        self.datastore.register_type_adapters()

    def close(self) -> None:
        self.datastore.close()

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Cursor[DictRow]]:
        """A cursor inside one committed transaction (rolled back on error)."""
        with self.datastore.transaction(commit=True) as curs:
            yield curs

    @contextmanager
    def cursor(self) -> Iterator[psycopg.Cursor[DictRow]]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            yield curs

    @contextmanager
    def snapshot(self) -> Iterator[psycopg.Cursor[DictRow]]:
        """A cursor whose queries all see one snapshot of the database (read-only)."""
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            curs.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield curs

    @property
    def store_id(self) -> str:
        """Random id created with the schema: keeps NATS names apart across databases."""
        if self._store_id is None:
            with self.cursor() as curs:
                row = curs.execute("SELECT store_id FROM botranks_meta").fetchone()
            self._store_id = row["store_id"]
        return self._store_id

    # ------------------------------------------------------------ writes

    def append(self, events: Sequence[tuple[UUID, LedgerEvent]]) -> Sequence[int]:
        """Insert events (aggregate id, event) in one transaction; IntegrityError if any id exists."""
        stored = [
            StoredEvent(originator_id=aggregate_id, originator_version=1,
                        topic=event_topic(event), state=encode_event(event))
            for aggregate_id, event in events
        ]
        return self.recorder.insert_events(stored) or []

    # ------------------------------------------------------------ reads

    def existing(self, aggregate_ids: Sequence[UUID]) -> dict[UUID, LedgerEvent]:
        """The stored events of those aggregate ids that exist."""
        if not aggregate_ids:
            return {}
        with self.cursor() as curs:
            rows = curs.execute(
                f"SELECT originator_id, state FROM {EVENTS_TABLE} "
                "WHERE originator_id = ANY(%s) AND originator_version = 1",
                (list(aggregate_ids),),
            ).fetchall()
        return {row["originator_id"]: decode_event(bytes(row["state"])) for row in rows}

    def notifications_after(self, last: int, limit: int, stop: int | None = None) -> Sequence[Notification]:
        return self.recorder.select_notifications(
            start=last, limit=limit, stop=stop, inclusive_of_start=False
        )

    def max_notification_id(self) -> int:
        return self.recorder.max_notification_id() or 0

    def projected_up_to(self) -> int:
        """The last notification id the projector has applied (its tracking position)."""
        return self.tracking.max_tracking_id(PROJECTOR) or 0
