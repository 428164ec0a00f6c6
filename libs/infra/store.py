"""The event store: the only truth. Owner of ``botranks_events``, ``botranks_meta`` and
``relay_position`` (how far the log has been published to the bus).

Every append is announced by ``NOTIFY botranks_events`` (eventsourcing's channel) in the append's
transaction (the relay's wake-up, ``appended``); the log can be
read whole (``notifications_after``) or by partition (``partition_notifications``: the events of
the strategies of one partition, ``botranks_domain.partition``).

Every ledger event is stored as version 1 of its own eventsourcing aggregate, whose id is
deterministic (uuid5 of strategy and external id) when the bot gave an external id. A second
submission of the same id therefore fails the recorder's primary key: idempotency is enforced
by the database, atomically, for the whole batch. Appends take eventsourcing's table lock (in
``botranks_append``, one statement), so notification ids commit in order and readers can follow
``id > last``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from uuid import UUID

import psycopg
from eventsourcing.persistence import IntegrityError, Notification
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

from botranks_domain.model import LedgerEvent, decode_event, encode_event, event_topic

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
        if not events:
            return []
        # botranks_append (migration 13): the recorder's lock, NOTIFY and insert in one autocommit
        # statement; a duplicate id raises IntegrityError through the datastore, nothing stored
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            rows = curs.execute("SELECT botranks_append(%s, %s, %s) AS id",
                                ([aggregate_id for aggregate_id, _ in events], [event_topic(e) for _, e in events],
                                 [encode_event(e) for _, e in events]), prepare=True).fetchall()
        return sorted(r["id"] for r in rows)

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

    def partition_notifications(self, partition: int, partitions: int, after: int, limit: int,
                                stop: int) -> list[Notification]:
        """The events of ``partition`` (of ``partitions``) with notification id in (after, stop], in
        order, at most ``limit`` of them."""
        with reading(self.datastore) as curs:
            rows = curs.execute(
                f"SELECT notification_id, originator_id, originator_version, topic, state FROM {EVENTS_TABLE}"
                " WHERE notification_id > %s AND notification_id <= %s AND strategy_key %% %s = %s"
                " ORDER BY notification_id LIMIT %s", (after, stop, partitions, partition, limit)).fetchall()
        return [Notification(id=r["notification_id"], originator_id=r["originator_id"],
                             originator_version=r["originator_version"], topic=r["topic"], state=bytes(r["state"]))
                for r in rows]

    def partitions_with_events(self, partitions: int, after: int, stop: int) -> set[int]:
        """The partitions that have events with notification id in (after, stop]."""
        with reading(self.datastore) as curs:
            rows = curs.execute(f"SELECT DISTINCT strategy_key %% %s AS p FROM {EVENTS_TABLE}"
                                " WHERE notification_id > %s AND notification_id <= %s",
                                (partitions, after, stop)).fetchall()
        return {r["p"] for r in rows}

    async def appended(self, database_url: str) -> AsyncIterator[None]:
        """Once per append, as it commits: the recorder's NOTIFY, heard on a connection of its own."""
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            await conn.execute(f"LISTEN {self.recorder.channel_name}")
            async for _ in conn.notifies():
                yield None

    def max_notification_id(self) -> int:
        return self.recorder.max_notification_id() or 0

    # ------------------------------------------------------------ publication to the bus

    def relay_position(self) -> int:
        """The last notification id the relay has published."""
        with reading(self.datastore) as curs:
            return curs.execute("SELECT notification_id FROM relay_position").fetchone()["notification_id"]

    def record_relay_position(self, notification_id: int) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute("SET LOCAL synchronous_commit = off")  # lost: the relay publishes again, deduplicated
            curs.execute("UPDATE relay_position SET notification_id = %s WHERE notification_id < %s",
                         (notification_id, notification_id))


class EventsTx:
    """The event store's writes inside another owner's transaction: a unit of work's ``events``
    (``LedgerWriter.events``)."""

    def __init__(self, curs: psycopg.Cursor) -> None:
        self._curs = curs

    def purge_strategy(self, strategy_id: UUID) -> int:
        """Delete every stored event of a strategy, in the caller's transaction (``botranks strategy
        delete``); returns how many. Under the recorder's own table lock, so no append interleaves."""
        self._curs.execute(f"LOCK TABLE {EVENTS_TABLE} IN EXCLUSIVE MODE")
        # strategy_key (its id's top 32 bits, migration 12) narrows the scan; the regex takes the exact id
        # from the first "strategy_id"
        self._curs.execute(
            f"DELETE FROM {EVENTS_TABLE} WHERE strategy_key = %s AND substring(encode(state, 'escape')"
            " from '\"strategy_id\":\"([0-9a-fA-F-]{36})\"') = %s",
            (strategy_id.int >> 96, str(strategy_id)))
        return self._curs.rowcount
