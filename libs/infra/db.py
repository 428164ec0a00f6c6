"""One BotRanks database and the owners of its tables, sharing one connection pool.

- ``events`` (:class:`EventStore`): the event log, the only truth, and its relay position;
- ``ledger`` (:class:`LedgerReader`): the read models, as the APIs and pages read them;
- ``projection`` (:class:`ReadModelTracking`): the projector's positions and its write transactions;
- ``prices`` (:class:`Prices`): the price cache, its outbox and the market-data bookkeeping;
- ``identity`` (:class:`Identity`): people, sessions, strategies, API keys, rate limits.

Only these four owners (``readmodel`` and ``identity`` are packages) run SQL on their tables, and
each holds its tables' DDL; ``schema`` applies it as one ordered sequence of migrations.
See docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import time
from uuid import UUID

import psycopg

from botranks_domain.partition import partition_of

from . import locks
from .identity import Identity
from .pg import datastore_for
from .prices import Prices
from .readmodel import LedgerReader, ReadModelTracking
from .schema import migrate
from .store import EventStore


class Database:
    """A connection pool to one database and the owners of its tables."""

    def __init__(self, url: str, *, pool_size: int = 4, max_overflow: int = 8) -> None:
        self.url = url
        self.datastore = datastore_for(url, pool_size=pool_size, max_overflow=max_overflow)
        self.events = EventStore(self.datastore)
        self.ledger = LedgerReader(self.datastore)
        self.projection = ReadModelTracking(self.datastore)
        self.prices = Prices(self.datastore)
        self.identity = Identity(self.datastore)

    def create_tables(self) -> Database:
        """eventsourcing's tables and BotRanks' migrations (idempotent, safe to race)."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (locks.SETUP,))
            try:
                self.events.recorder.create_table()
                self.projection.create_table()
                migrate(conn)
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (locks.SETUP,))
        self.datastore.register_type_adapters()
        return self

    def delete_strategy(self, strategy_id: UUID, *, grace_s: float = 1.0) -> dict | None:
        """Delete a strategy for good: its identity and keys, then its events and every read model.

        The keys go first, in their own commit, so no new request can append; after ``grace_s`` (a
        request that passed the key check just before has appended by then) the events and the read
        models go in one transaction holding the projector's lock of the strategy's partition, so a
        projector never writes them back and a rebuild finds nothing of them. What stays is a tombstone
        (its last per-day Sharpe and daily returns: it still counts as a trial of the instance, whose count
        moves in the same transaction). None: no such strategy.
        """
        name = self.identity.delete_strategy(strategy_id)
        if name is not None:
            time.sleep(grace_s)
        # also when the identity is already gone: finishes a delete that was interrupted half-way
        with self.projection.writing(partition_of(strategy_id, self.projection.partitions())) as writer:
            trial = writer.board.trial_of(strategy_id)
            if trial is not None:
                writer.identity.bury(strategy_id, *trial)
            events = writer.events.purge_strategy(strategy_id)
            rows = writer.forget_strategy(strategy_id)
            writer.board.recount_trials(writer.identity)
        if name is None and not events and not rows:
            return None
        return {
            "strategy_id": str(strategy_id),
            "name": name,
            "events_deleted": events,
            "read_model_rows_deleted": rows,
        }

    def close(self) -> None:
        self.datastore.close()
