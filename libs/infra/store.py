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
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import IntegrityError, Notification
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg.rows import tuple_row

from botranks_domain.model import LedgerEvent, decode_event, encode_event, event_topic

from .pg import DictCursor, one, reading

EVENTS_TABLE = "botranks_events"

__all__ = ["EventStore", "EventsBackup", "IntegrityError", "Notification", "EVENTS_TABLE", "MIGRATIONS"]


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
                self._store_id = one(curs.execute("SELECT store_id FROM botranks_meta"))["store_id"]
        return self._store_id

    def append(self, events: Sequence[tuple[UUID, LedgerEvent]]) -> Sequence[int]:
        """Insert events (aggregate id, event) in one transaction; IntegrityError if any id exists."""
        if not events:
            return []
        # botranks_append (migration 13): the recorder's lock, NOTIFY and insert in one autocommit
        # statement; a duplicate id raises IntegrityError through the datastore, nothing stored
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            rows = curs.execute(
                "SELECT botranks_append(%s, %s, %s) AS id",
                (
                    [aggregate_id for aggregate_id, _ in events],
                    [event_topic(e) for _, e in events],
                    [encode_event(e) for _, e in events],
                ),
                prepare=True,
            ).fetchall()
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

    def partition_notifications(
        self, partition: int, partitions: int, after: int, limit: int, stop: int
    ) -> list[Notification]:
        """The events of ``partition`` (of ``partitions``) with notification id in (after, stop], in
        order, at most ``limit`` of them."""
        return self.partitions_notifications([partition], partitions, after, limit, stop).get(partition, [])

    def partitions_notifications(
        self, wanted: Sequence[int], partitions: int, after: int, limit: int, stop: int
    ) -> dict[int, list[Notification]]:
        """The events of each of ``wanted`` (of ``partitions``) with notification id in (after, stop], in
        order, at most ``limit`` of them in all; one statement."""
        with reading(self.datastore) as curs:
            rows = curs.execute(
                f"SELECT strategy_key %% %s AS partition, notification_id, originator_id, originator_version, topic,"
                f" state FROM {EVENTS_TABLE} WHERE notification_id > %s AND notification_id <= %s"
                " AND strategy_key %% %s = ANY(%s) ORDER BY notification_id LIMIT %s",
                (partitions, after, stop, partitions, list(wanted), limit),
            ).fetchall()
        found: dict[int, list[Notification]] = {}
        for r in rows:
            found.setdefault(r["partition"], []).append(
                Notification(
                    id=r["notification_id"],
                    originator_id=r["originator_id"],
                    originator_version=r["originator_version"],
                    topic=r["topic"],
                    state=bytes(r["state"]),
                )
            )
        return found

    def partitions_with_events(self, partitions: int, after: int, stop: int) -> set[int]:
        """The partitions that have events with notification id in (after, stop]."""
        with reading(self.datastore) as curs:
            rows = curs.execute(
                f"SELECT DISTINCT strategy_key %% %s AS p FROM {EVENTS_TABLE}"
                " WHERE notification_id > %s AND notification_id <= %s",
                (partitions, after, stop),
            ).fetchall()
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
            return one(curs.execute("SELECT notification_id FROM relay_position"))["notification_id"]

    def record_relay_position(self, notification_id: int) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute("SET LOCAL synchronous_commit = off")  # lost: the relay publishes again, deduplicated
            curs.execute(
                "UPDATE relay_position SET notification_id = %s WHERE notification_id < %s",
                (notification_id, notification_id),
            )


class EventsTx:
    """The event store's writes inside another owner's transaction: a unit of work's ``events``
    (``LedgerWriter.events``)."""

    def __init__(self, curs: DictCursor) -> None:
        self._curs = curs

    def purge_strategy(self, strategy_id: UUID) -> int:
        """Delete every stored event of a strategy, in the caller's transaction (``botranks strategy
        delete``); returns how many. Under the recorder's own table lock, so no append interleaves."""
        self._curs.execute(f"LOCK TABLE {EVENTS_TABLE} IN EXCLUSIVE MODE")
        # strategy_key (its id's top 32 bits, migration 12) narrows the scan; the regex takes the exact id
        # from the first "strategy_id"
        self._curs.execute(
            f"DELETE FROM {EVENTS_TABLE} WHERE strategy_key = %s AND substring(encode(state, 'escape')"
            ' from \'"strategy_id":"([0-9a-fA-F-]{36})"\') = %s',
            (strategy_id.int >> 96, str(strategy_id)),
        )
        return self._curs.rowcount


class EventsBackup:
    """The event store's part of a backup or restore, on the backup's own connection (inside its
    exported snapshot, or the restore's one transaction)."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self._conn = conn

    def _one(self, query: str) -> tuple[Any, ...]:
        """The row of a query that returns one: an aggregate, or the singleton ``botranks_meta``."""
        with self._conn.cursor(row_factory=tuple_row) as curs:
            return one(curs.execute(query))

    def store_id(self) -> str:
        return self._one("SELECT store_id FROM botranks_meta")[0]

    def store_ids(self) -> int:
        """How many rows ``botranks_meta`` holds (exactly one in a sound database)."""
        return self._one("SELECT count(*) FROM botranks_meta")[0]

    def forget_store_id(self) -> None:
        """Empty ``botranks_meta`` (a restore loads the backup's store id instead)."""
        self._conn.execute("DELETE FROM botranks_meta")

    def events(self) -> tuple[int, int]:
        """How many events are stored, and the last notification id (0: none)."""
        count, last = self._one(f"SELECT count(*), coalesce(max(notification_id), 0) FROM {EVENTS_TABLE}")
        return count, last

    def reset_relay_position(self) -> None:
        """Nothing published yet (a restored log goes to the bus again, from its start)."""
        self._conn.execute("UPDATE relay_position SET notification_id = 0")


# ------------------------------------------------------------ DDL

#: The event store's tables beside eventsourcing's ``botranks_events`` (a column and the append function
#: added to it, the partition rule), by the migration version that creates or changes them (``schema``
#: applies every owner's pieces of a version in one ordered sequence; the text is what was applied: never
#: edited)
MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE botranks_meta (
        singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
        store_id text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
    );
    INSERT INTO botranks_meta (store_id) VALUES (substr(md5(random()::text || clock_timestamp()::text), 1, 12));

    CREATE TABLE relay_position (
        singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
        notification_id bigint NOT NULL
    );
    INSERT INTO relay_position (notification_id) VALUES (0);
    """,
    10: """
    -- partitioned projection (docs/NOTES.md "Partitions"): a strategy's partition is the top 32
    -- bits of its id modulo P; an event's is its strategy's, read from its stored JSON (the first
    -- "strategy_id", named before any free-form field), 0 when it has none. The same rule as
    -- libs/domain/botranks_domain/partition.py, so the event store can be read by partition.
    CREATE FUNCTION botranks_strategy_partition(strategy text, p int) RETURNS int
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT (('x' || lpad(substr(replace(coalesce(strategy, ''), '-', ''), 1, 8), 16, '0'))::bit(64)::bigint
                % p)::int
    $$;
    CREATE FUNCTION botranks_event_partition(state bytea, p int) RETURNS int
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT botranks_strategy_partition(
            substring(encode(state, 'escape') from '"strategy_id":"([0-9a-fA-F-]{36})"'), p)
    $$;
    """,
    12: """
    -- each stored event's strategy key, the top 32 bits of its strategy id (0 when it names none),
    -- computed once as the event is stored: a read by partition filters on strategy_key % P instead of
    -- running a regex over every row's JSON once per partition (the busiest statement
    -- under ingest: ~350 µs of PostgreSQL per event with 16 partitions, now ~7). Read straight from the
    -- 8 bytes after the first "strategy_id":" (every event names its strategy before any free-form
    -- field, and a quote inside a JSON string is escaped); botranks_domain.partition.event_strategy_key
    -- is the same rule in Python. Inline, not a SQL function: a function call per inserted row costs
    -- ~50 µs, this ~15 µs, inside the append's table lock.
    ALTER TABLE botranks_events ADD COLUMN strategy_key bigint GENERATED ALWAYS AS (
        CASE WHEN encode(substring(state FROM position('"strategy_id":"'::bytea IN state) + 15 FOR 8), 'escape')
                  ~ '^[0-9a-fA-F]{8}$'
                  AND position('"strategy_id":"'::bytea IN state) > 0
             THEN ('x' || encode(substring(state FROM position('"strategy_id":"'::bytea IN state) + 15 FOR 8),
                                 'escape'))::bit(32)::bigint
             ELSE 0 END) STORED;
    """,
    13: """
    -- an append in one statement: eventsourcing's table lock, its NOTIFY and the insert, called on an
    -- autocommit connection, so the lock is held for the server's work and the commit only. The
    -- recorder's own path pipelines the same statements but holds the lock across a client round trip
    -- (sync, fetch the ids, COMMIT), which on a busy machine waits for the API process's next turn
    -- (the busiest wait under ingest). Same lock, same order of notification ids, same NOTIFY.
    CREATE FUNCTION botranks_append(ids uuid[], topics text[], states bytea[]) RETURNS SETOF bigint
    LANGUAGE plpgsql AS $$
    BEGIN
        LOCK TABLE botranks_events IN EXCLUSIVE MODE;
        NOTIFY botranks_events;
        RETURN QUERY
            INSERT INTO botranks_events (originator_id, originator_version, topic, state)
            SELECT i, 1, t, s FROM unnest(ids, topics, states) AS e(i, t, s)
            RETURNING notification_id;
    END
    $$;
    """,
    14: """
    -- the store is read by the stored strategy_key since migration 12: the regex function is unused
    DROP FUNCTION botranks_event_partition(bytea, int);
    """,
}
