"""The projection's position: tracking rows, partition layout, outbox cursors, rebuild bookkeeping.

Built as eventsourcing intends a projection's storage to be: a ``PostgresTrackingRecorder``
subclass whose writes and tracking position move in one transaction. The projector writes
through :meth:`ReadModelTracking.writing` (a :class:`~.writer.LedgerWriter` bound to one
transaction that holds the projector lock of its partition).

The projection is laid out in P partitions (``projector_layout``; a strategy's partition is
``botranks_domain.partition.partition_of``): each partition has its own position in the event log
(the tracking row ``projector.p<N>``: every event of that partition up to it is applied), its own
cursors in the price and strategy-update outboxes, and its own transaction lock, so partitions
project independently and in parallel. ``position()`` is the smallest of them.

Every committed projection also sends ``NOTIFY botranks_projected, '<partition>:<position>'``, so
a writer waiting for its own events (read-your-writes) is woken at once instead of polling.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager

import psycopg
from eventsourcing.persistence import IntegrityError, Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder

from botranks_domain.partition import MAX_PARTITIONS

from .. import locks
from ..pg import DictCursor, one, reading
from .tables import NOTIFY_CHANNEL, READ_MODEL_TABLES, SHADOW_SCHEMA, TRACKING_TABLE, partitions_of, positions_of
from .writer import LedgerWriter


class ReadModelTracking(PostgresTrackingRecorder):
    """The projector's positions in the event log and the transactions that move them."""

    def __init__(self, datastore: PostgresDatastore) -> None:
        super().__init__(datastore, tracking_table_name=TRACKING_TABLE)

    # ------------------------------------------------------------ the hook on eventsourcing's recorder
    #
    # eventsourcing's public ``max_tracking_id``/``insert_tracking`` each run their own transaction; a
    # projection moves its position in the transaction of its writes. These two run the recorder's public
    # statements (``max_tracking_id_statement``, ``insert_tracking_statement``) on the caller's cursor,
    # with the recorder's semantics (single-row tracking: a position that does not move forward fails).

    def tracked_in(self, curs: DictCursor, name: str) -> int:
        """``name``'s position in the transaction of ``curs`` (0 if none)."""
        return one(curs.execute(self.max_tracking_id_statement, (name,), prepare=True))["max"] or 0

    def track_in(self, curs: DictCursor, tracking: Tracking) -> None:
        """Record ``tracking`` in the transaction of ``curs``; IntegrityError if it does not move forward."""
        curs.execute(
            self.insert_tracking_statement,
            {"application_name": tracking.application_name, "notification_id": tracking.notification_id},
            prepare=True,
        )
        if curs.fetchone() is None:
            raise IntegrityError(
                f"Failed to record tracking for {tracking.application_name} {tracking.notification_id}"
            )

    # ------------------------------------------------------------ positions

    def partitions(self) -> int:
        """How many partitions the projection is laid out in (changed only by a rebuild)."""
        with reading(self.datastore) as curs:
            return partitions_of(curs)

    def partition_positions(self) -> dict[int, int]:
        """Each partition's position in the event log (0 before its first projection)."""
        with reading(self.datastore) as curs:
            return positions_of(curs)

    def partition_cursors(self) -> dict[int, tuple[int, int]]:
        """Each partition's (price-outbox, strategy-update-outbox) cursor."""
        with reading(self.datastore) as curs:
            rows = curs.execute(
                "SELECT partition, price_update_id, strategy_update_id FROM projector_partition_cursors"
            ).fetchall()
        return {r["partition"]: (r["price_update_id"], r["strategy_update_id"]) for r in rows}

    def position(self) -> int:
        """The last notification id applied in every partition (the smallest partition position)."""
        return min(self.partition_positions().values())

    async def positions_projected(self, database_url: str) -> AsyncIterator[tuple[int, int]]:
        """Each projection's (partition, new position), as it commits (LISTEN; the connection is this
        generator's)."""
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
            async for notify in conn.notifies():
                for pair in notify.payload.split(","):  # one or more "partition:position"
                    partition, _, position = pair.partition(":")
                    yield int(partition), int(position)

    # ------------------------------------------------------------ the projector's transactions

    @contextmanager
    def writing(
        self,
        partition: int | None = None,
        *,
        shadow: bool = False,
        lock: bool = True,
        partitions: Sequence[int] | None = None,
        free_only: bool = False,
    ) -> Iterator[LedgerWriter]:
        """One committed transaction of projector writes, holding the lock of ``partition`` (None:
        of every partition, taken in order: a rebuild's swap, a change of layout; or of each of
        ``partitions``, in order, for moving several positions at once; with ``free_only``, of those
        of them no other transaction holds, without waiting: ``writer.held`` says which).

        ``shadow``: the unqualified read-model tables are the rebuild's new ones.
        """
        with self.datastore.transaction(commit=True) as curs:
            # read models and their tracking row commit together and are rebuilt from the log: a crash
            # may lose the last projections' commits, never half of one (the position rolls back with
            # them and they are applied again), so they need not wait for the disk
            curs.execute("SET LOCAL synchronous_commit = off")
            held = [] if partition is None else [partition]
            if lock and partitions is not None and free_only:
                held = [
                    r["p"]
                    for r in curs.execute(
                        "SELECT p FROM unnest(%s::int[]) AS p WHERE pg_try_advisory_xact_lock(%s, p) ORDER BY p",
                        (sorted(partitions), locks.PROJECTOR),
                    ).fetchall()
                ]
            elif lock and partitions is not None:
                held = sorted(partitions)
                curs.execute(
                    "SELECT pg_advisory_xact_lock(%s, p) FROM unnest(%s::int[]) AS p ORDER BY p",
                    (locks.PROJECTOR, sorted(partitions)),
                )
            elif lock and partition is not None:
                curs.execute("SELECT pg_advisory_xact_lock(%s, %s)", (locks.PROJECTOR, partition))
            elif lock:
                curs.execute(
                    "SELECT pg_advisory_xact_lock(%s, g) FROM generate_series(0, %s - 1) AS g",
                    (locks.PROJECTOR, MAX_PARTITIONS),
                )
            if shadow:
                curs.execute(f"SET LOCAL search_path TO {SHADOW_SCHEMA}, public")
            writer = LedgerWriter(self, curs, partition)
            writer.held = held
            if partitions is not None:  # the leaderboard's part keeps the rows of the partitions it holds
                writer.board.among = list(held)
            yield writer

    # ------------------------------------------------------------ rebuild

    def rebuild_progress(self) -> float:
        """How far a running rebuild has read the log (0..1); 1.0 when none is running."""
        with reading(self.datastore) as curs:
            row = curs.execute("SELECT events_done, events_total, finished_at FROM projector_rebuild").fetchone()
        if row is None or row["finished_at"] is not None or not row["events_total"]:
            return 1.0
        return min(1.0, row["events_done"] / row["events_total"])

    def record_rebuild(self, done: int, total: int, finished: bool = False) -> None:
        """A rebuild's progress (its own short transaction; the rebuild's are long)."""
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                "INSERT INTO projector_rebuild (started_at, events_done, events_total, finished_at)"
                " VALUES (now(), %(d)s, %(t)s, CASE WHEN %(f)s THEN now() END) ON CONFLICT (singleton) DO UPDATE SET"
                " started_at = CASE WHEN %(d)s = 0 THEN now() ELSE projector_rebuild.started_at END,"
                " events_done = %(d)s, events_total = %(t)s, finished_at = CASE WHEN %(f)s THEN now() END",
                {"d": done, "t": total, "f": finished},
            )

    def create_shadow(self) -> None:
        """Empty copies of every read model in the shadow schema, for a rebuild."""
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(f"DROP SCHEMA IF EXISTS {SHADOW_SCHEMA} CASCADE")
            curs.execute(f"CREATE SCHEMA {SHADOW_SCHEMA}")
            for table in READ_MODEL_TABLES:
                curs.execute(f"CREATE TABLE {SHADOW_SCHEMA}.{table} (LIKE public.{table} INCLUDING ALL)")
            # LIKE copies the serial default, which names the live table's sequence: give it its own
            curs.execute(
                f"CREATE SEQUENCE {SHADOW_SCHEMA}.rm_reconciliation_log_id_seq"
                f" OWNED BY {SHADOW_SCHEMA}.rm_reconciliation_log.id"
            )
            curs.execute(
                f"ALTER TABLE {SHADOW_SCHEMA}.rm_reconciliation_log ALTER COLUMN id"
                f" SET DEFAULT nextval('{SHADOW_SCHEMA}.rm_reconciliation_log_id_seq')"
            )

    def shadow_exists(self) -> bool:
        with reading(self.datastore) as curs:
            return (
                curs.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (SHADOW_SCHEMA,)).fetchone() is not None
            )
