"""The event store: the only truth. Owner of ``botranks_events``, ``botranks_meta`` and
``relay_position`` (how far the log has been published to the bus).

Every ledger event is stored as version 1 of its own eventsourcing aggregate, whose id is
deterministic (uuid5 of strategy and external id) when the bot gave an external id. A second
submission of the same id therefore fails the recorder's primary key: idempotency is enforced
by the database, atomically, for the whole batch. eventsourcing's recorder serializes inserts
with a table lock, so notification ids commit in order and readers can follow ``id > last``.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from eventsourcing.persistence import IntegrityError, Notification, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

from libs.domain.model import LedgerEvent, decode_event, encode_event, event_topic

from .pg import reading

EVENTS_TABLE = "botranks_events"

__all__ = ["EventStore", "IntegrityError", "Notification", "EVENTS_TABLE"]


class EventStore:
    """Append-only ledger events in PostgreSQL, read back as a gap-tolerant notification log."""

    def __init__(self, datastore: PostgresDatastore) -> None:
        self.datastore = datastore
        self.recorder = PostgresApplicationRecorder(datastore, events_table_name=EVENTS_TABLE)
        self._store_id: str | None = None

    @property
    def store_id(self) -> str:
        """Random id created with the schema: keeps NATS names apart across databases."""
        if self._store_id is None:
            with reading(self.datastore) as curs:
                self._store_id = curs.execute("SELECT store_id FROM botranks_meta").fetchone()["store_id"]
        return self._store_id

    def append(self, events: Sequence[tuple[UUID, LedgerEvent]]) -> Sequence[int]:
        """Insert events (aggregate id, event) in one transaction; IntegrityError if any id exists."""
        stored = [
            StoredEvent(originator_id=aggregate_id, originator_version=1,
                        topic=event_topic(event), state=encode_event(event))
            for aggregate_id, event in events
        ]
        return self.recorder.insert_events(stored) or []

    def existing(self, aggregate_ids: Sequence[UUID]) -> dict[UUID, LedgerEvent]:
        """The stored events of those aggregate ids that exist."""
        if not aggregate_ids:
            return {}
        with reading(self.datastore) as curs:
            rows = curs.execute(
                f"SELECT originator_id, state FROM {EVENTS_TABLE} "
                "WHERE originator_id = ANY(%s) AND originator_version = 1",
                (list(aggregate_ids),),
            ).fetchall()
        return {row["originator_id"]: decode_event(bytes(row["state"])) for row in rows}

    def notifications_after(self, last: int, limit: int, stop: int | None = None) -> Sequence[Notification]:
        return self.recorder.select_notifications(start=last, limit=limit, stop=stop, inclusive_of_start=False)

    def max_notification_id(self) -> int:
        return self.recorder.max_notification_id() or 0

    # ------------------------------------------------------------ publication to the bus

    def relay_position(self) -> int:
        """The last notification id the relay has published."""
        with reading(self.datastore) as curs:
            return curs.execute("SELECT notification_id FROM relay_position").fetchone()["notification_id"]

    def record_relay_position(self, notification_id: int) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute("UPDATE relay_position SET notification_id = %s WHERE notification_id < %s",
                         (notification_id, notification_id))
