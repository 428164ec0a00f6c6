"""The projector's writes to the read models: one :class:`LedgerWriter` per transaction
(``ReadModelTracking.writing``), for one partition or for all of them. Nothing else writes ``rm_*``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import date, datetime
from typing import Protocol
from uuid import UUID

import msgspec
from eventsourcing.persistence import Tracking

from botranks_domain.ledger import Holding
from botranks_domain.model import LedgerEvent, decode_event, event_topic
from botranks_domain.nav import Derivation, LedgerState, decode_state, encode_state
from botranks_domain.partition import MAX_PARTITIONS, partition_of

from ..identity import IdentityTx
from ..pg import DictCursor, one
from ..prices import PricesTx
from ..store import EventsTx
from .board import BoardWriter
from .bulk import pipelined, put_rows
from .chain import ChainWriter
from .ledger_row import LEDGER_COLUMNS, LedgerRow, StrategyReads, read_strategies
from .tables import (
    EPOCH,
    LOG_TABLES,
    NOTIFY_CHANNEL,
    PARTITION_TRACKING,
    PROJECTOR,
    READ_MODEL_TABLES,
    SHADOW_SCHEMA,
    TRACKING_TABLE,
    partitions_of,
    positions_of,
)
from .trades import TradesWriter


class TrackingHooks(Protocol):
    """What a writer needs of ``ReadModelTracking`` (tracking.py, which makes the writers): its two
    hooks into this transaction. A protocol, so that this module does not import that one back."""

    def tracked_in(self, curs: DictCursor, name: str) -> int: ...

    def track_in(self, curs: DictCursor, tracking: Tracking) -> None: ...


class LedgerWriter:
    """The projector's writes inside one transaction (see ``ReadModelTracking.writing``), for one
    partition (``partition``) or for all of them (None): the unit of work of that transaction, whose
    ``events``, ``prices`` and ``identity`` are the other owners' parts in it; ``board`` is the
    leaderboard's part of the read model, ``chain`` the hash chains', ``trades`` the trades'."""

    def __init__(self, tracking: TrackingHooks, curs: DictCursor, partition: int | None = None) -> None:
        self.tracking = tracking
        self._cursor = curs
        # the other owners inside this transaction (the unit of work's members)
        self.events = EventsTx(curs)
        self.prices = PricesTx(curs)
        self.identity = IdentityTx(curs)
        self.partition = partition
        #: the partitions whose locks this transaction holds (``ReadModelTracking.writing``)
        self.held: list[int] = [] if partition is None else [partition]
        self.partitions = partitions_of(curs)
        self.board = BoardWriter(curs, partition, self.partitions)
        self.chain = ChainWriter(curs)
        self._prefetched: dict[UUID, StrategyReads] = {}
        self.trades = TradesWriter(curs)

    def _mine(self) -> int:
        if self.partition is None:
            raise RuntimeError("a partition's position and cursors need a writer of that partition")
        return self.partition

    def in_partition(self, strategy_id: UUID) -> bool:
        """Whether ``strategy_id`` is this writer's to project (always, for a writer of every partition)."""
        return self.partition is None or partition_of(strategy_id, self.partitions) == self.partition

    # ------------------------------------------------------------ tracking

    def position(self, partition: int | None = None) -> int:
        """The position in the event log of the writer's partition (or of ``partition``, whose lock the
        writer must hold)."""
        partition = self._mine() if partition is None else partition
        return self.tracking.tracked_in(self._cursor, PARTITION_TRACKING.format(partition))

    def partition_positions(self) -> dict[int, int]:
        """Every partition's position as this transaction sees it (current for those whose locks it holds)."""
        return positions_of(self._cursor, self.partitions)

    def track(self, notification_id: int, partition: int | None = None) -> None:
        """Record the new position of the writer's partition (or of ``partition``, whose lock the writer
        must hold), in this transaction (eventsourcing's exactly-once idiom: a position that does not move
        forward fails), and announce it at commit."""
        partition = self._mine() if partition is None else partition
        self.tracking.track_in(self._cursor, Tracking(PARTITION_TRACKING.format(partition), notification_id))
        self._cursor.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, f"{partition}:{notification_id}"))

    def advance(self, partitions: Sequence[int], notification_id: int) -> list[int]:
        """Move each of ``partitions`` (whose locks the writer holds) that is behind ``notification_id``
        to it, in two statements whatever their number, and announce them at commit; returns those moved.
        For partitions with nothing to apply up to there (a position never moves back)."""
        names = [PARTITION_TRACKING.format(p) for p in partitions]
        moved = [
            int(r["application_name"].rsplit("p", 1)[1])
            for r in self._cursor.execute(
                f"INSERT INTO {TRACKING_TABLE} (application_name, notification_id)"
                " SELECT name, %(id)s FROM unnest(%(names)s::text[]) AS name"
                f" ON CONFLICT (application_name) DO UPDATE SET notification_id = EXCLUDED.notification_id"
                f" WHERE {TRACKING_TABLE}.notification_id < EXCLUDED.notification_id RETURNING application_name",
                {"id": notification_id, "names": names},
            ).fetchall()
        ]
        if moved:  # NOTIFY payloads are at most 8000 bytes: 200 "partition:position" pairs a notification
            payloads = [
                ",".join(f"{p}:{notification_id}" for p in moved[i : i + 200]) for i in range(0, len(moved), 200)
            ]
            self._cursor.execute(
                "SELECT pg_notify(%s, payload) FROM unnest(%s::text[]) AS payload", (NOTIFY_CHANNEL, payloads)
            )
        return sorted(moved)

    def reset_layout(
        self, partitions: int, notification_id: int, price_update_id: int, strategy_update_id: int
    ) -> None:
        """Lay the projection out in ``partitions`` partitions, every one at ``notification_id`` and at
        those outbox cursors (after a rebuild; the writer holds every partition's lock)."""
        if not 1 <= partitions <= MAX_PARTITIONS:
            raise ValueError(f"partitions must be between 1 and {MAX_PARTITIONS}, got {partitions}")
        self._cursor.execute(
            f"DELETE FROM {TRACKING_TABLE} WHERE application_name = %s OR application_name LIKE 'projector.p%%'",
            (PROJECTOR,),
        )
        self._cursor.execute("UPDATE projector_layout SET partitions = %s", (partitions,))
        self._cursor.execute("DELETE FROM projector_partition_cursors")
        self._cursor.execute(
            "INSERT INTO projector_partition_cursors (partition, price_update_id, strategy_update_id)"
            " SELECT g, %s, %s FROM generate_series(0, %s - 1) AS g",
            (price_update_id, strategy_update_id, partitions),
        )
        if notification_id:
            self._cursor.execute(
                f"INSERT INTO {TRACKING_TABLE} (application_name, notification_id)"
                " SELECT 'projector.p' || g, %s FROM generate_series(0, %s - 1) AS g",
                (notification_id, partitions),
            )
        self.partitions = partitions

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested transaction: an exception inside undoes only what was written inside."""
        with self._cursor.connection.transaction():
            yield

    # ------------------------------------------------------------ quarantine

    def halted(self) -> set[UUID]:
        return {r["strategy_id"] for r in self._cursor.execute("SELECT strategy_id FROM rm_quarantine").fetchall()}

    def quarantine(self, strategy_id: UUID, first: int, last: int, count: int, error: str | None) -> None:
        """Record that a strategy's projection is halted (``error`` None: more skipped events of a halted one)."""
        self._cursor.execute(
            "INSERT INTO rm_quarantine (strategy_id, first_notification_id, last_notification_id, skipped_events,"
            " error) VALUES (%s, %s, %s, %s, %s) ON CONFLICT (strategy_id) DO UPDATE SET"
            " last_notification_id = greatest(rm_quarantine.last_notification_id, EXCLUDED.last_notification_id),"
            " skipped_events = rm_quarantine.skipped_events + EXCLUDED.skipped_events",
            (strategy_id, first, last, count, "skipped" if error is None else error[:2000].replace("\x00", "")),
        )

    # ------------------------------------------------------------ the log tables

    def insert_log_rows(self, events: Sequence[tuple[int, LedgerEvent, bytes]]) -> None:
        """Append events to the log tables with COPY (each notification arrives here once)."""
        rows: dict[str, list[tuple]] = defaultdict(list)
        for nid, event, raw in events:
            rows[event_topic(event)].append((*event.log_row(), nid, raw))
        for topic, topic_rows in rows.items():
            table, columns = LOG_TABLES[topic]
            with self._cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in topic_rows:
                    copy.write_row(row)

    def history(self, strategy_id: UUID, since: datetime | None) -> list[tuple[int, LedgerEvent]]:
        """A strategy's (notification id, event) pairs with effective time >= since, in fold order."""
        rows = self._cursor.execute(
            "SELECT notification_id, event FROM ("
            " SELECT notification_id, event, executed_at AS at FROM rm_orders WHERE strategy_id = %(s)s"
            " UNION ALL SELECT notification_id, event, occurred_at FROM rm_cash_events WHERE strategy_id = %(s)s"
            " UNION ALL SELECT notification_id, event, taken_at FROM rm_snapshots WHERE strategy_id = %(s)s"
            ") AS history WHERE at >= %(since)s ORDER BY at, notification_id",
            {"s": strategy_id, "since": since or EPOCH},
        ).fetchall()
        return [(r["notification_id"], decode_event(bytes(r["event"]))) for r in rows]

    def logged_strategies(self) -> list[UUID]:
        return [
            r["strategy_id"]
            for r in self._cursor.execute(
                "SELECT strategy_id FROM rm_orders UNION SELECT strategy_id FROM rm_cash_events"
                " UNION SELECT strategy_id FROM rm_snapshots ORDER BY 1"
            ).fetchall()
        ]

    # ------------------------------------------------------------ a strategy's derived state

    def remember_symbols(self, strategy_id: UUID, symbols: Iterable[str]) -> None:
        self._cursor.executemany(
            "INSERT INTO rm_strategy_symbols (symbol, strategy_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            [(s, strategy_id) for s in sorted(symbols)],
        )

    def prefetch(self, strategy_ids: Sequence[UUID], symbols: Iterable[str]) -> None:
        """Read what the folds of a batch's strategies start from, for all of them at once: their
        :class:`StrategyReads` (each handed out once by :meth:`strategy_reads`), their benchmarks and base
        currencies, and the quote currencies of ``symbols`` and of what they hold."""
        self._prefetched = read_strategies(self._cursor, strategy_ids)
        self.identity.prefetch(strategy_ids)
        held = {s for reads in self._prefetched.values() for s in reads.positions}
        self.prices.prefetch_currencies(held.union(symbols))

    def strategy_reads(self, strategy_id: UUID) -> StrategyReads:
        """What the fold of the strategy's new events starts from: prefetched (once), else read now."""
        reads = self._prefetched.pop(strategy_id, None)
        return reads if reads is not None else read_strategies(self._cursor, [strategy_id])[strategy_id]

    def last_nav_day(self, strategy_id: UUID, before: date) -> date | None:
        """The strategy's last NAV day before ``before``."""
        return one(
            self._cursor.execute(
                "SELECT max(date) AS d FROM rm_nav_daily WHERE strategy_id = %s AND date < %s", (strategy_id, before)
            )
        )["d"]

    def checkpoint(self, strategy_id: UUID, on_or_before: date) -> tuple[date, LedgerState] | None:
        row = self._cursor.execute(
            "SELECT date, state FROM rm_checkpoints WHERE strategy_id = %s AND date <= %s ORDER BY date DESC LIMIT 1",
            (strategy_id, on_or_before),
        ).fetchone()
        return None if row is None else (row["date"], decode_state(row["state"]))

    def forget_after(
        self,
        strategy_id: UUID,
        nav_after: date | None,
        checkpoints_after: date | None,
        reconciliation_since: datetime | None,
    ) -> None:
        """Drop what a re-derivation from those points on will write again."""
        self._cursor.execute(
            "DELETE FROM rm_nav_daily WHERE strategy_id = %s AND date > %s", (strategy_id, nav_after or date.min)
        )
        self._cursor.execute(
            "DELETE FROM rm_checkpoints WHERE strategy_id = %s AND date > %s",
            (strategy_id, checkpoints_after or date.min),
        )
        self._cursor.execute(
            "DELETE FROM rm_reconciliation_log WHERE strategy_id = %s AND taken_at >= %s",
            (strategy_id, reconciliation_since or EPOCH),
        )

    def forget_strategy(self, strategy_id: UUID) -> int:
        """Delete every read-model row of a deleted strategy; returns how many."""
        removed = 0
        for table in READ_MODEL_TABLES:
            self._cursor.execute(f"DELETE FROM {table} WHERE strategy_id = %s", (strategy_id,))
            removed += self._cursor.rowcount
            if table == "rm_leaderboard" and self._cursor.rowcount:
                # leaderboard_version() is the newest refreshed_at: restamp the newest row so it moves
                self._cursor.execute(
                    "UPDATE rm_leaderboard SET refreshed_at = clock_timestamp() WHERE strategy_id ="
                    " (SELECT strategy_id FROM rm_leaderboard ORDER BY refreshed_at DESC LIMIT 1)"
                )
        return removed

    def forget_nav_from(self, strategy_id: UUID, day: date) -> None:
        self._cursor.execute("DELETE FROM rm_nav_daily WHERE strategy_id = %s AND date >= %s", (strategy_id, day))

    def write_derivation(self, strategy_id: UUID, result: Derivation, published) -> None:
        """NAV rows, checkpoints, reconciliation entries and snapshot outcomes of one derivation.

        ``published`` rounds a derived number to the API's one precision.
        """
        nav = [
            (strategy_id, n.date, published(n.cash), published(n.market_value), published(n.total_equity),
             published(n.external_flow))
            for n in result.nav
        ]  # fmt: skip
        put_rows(
            self._cursor, "rm_nav_daily", "strategy_id, date, cash, market_value, total_equity, external_flow", nav
        )
        if result.checkpoints:  # replace from the first re-derived event day on (no conflicts left)
            self._cursor.execute(
                "DELETE FROM rm_checkpoints WHERE strategy_id = %s AND date >= %s",
                (strategy_id, result.checkpoints[0][0]),
            )
            checkpoints = [(strategy_id, d, encode_state(st)) for d, st in result.checkpoints]
            put_rows(self._cursor, "rm_checkpoints", "strategy_id, date, state", checkpoints)
        if result.reconciliation:
            self._cursor.executemany(
                "INSERT INTO rm_reconciliation_log (strategy_id, snapshot_id, symbol, derived_quantity,"
                " derived_cost_basis, snapshot_quantity, snapshot_cost_basis, taken_at)"
                " VALUES (%s,%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (snapshot_id, symbol) DO NOTHING",
                [
                    (
                        strategy_id,
                        e.snapshot.id,
                        d.symbol,
                        published(d.derived_quantity),
                        d.derived_cost_basis and published(d.derived_cost_basis),
                        d.snapshot_quantity,
                        d.snapshot_cost_basis,
                        e.snapshot.taken_at,
                    )
                    for e, d in result.reconciliation
                ],
            )
        # the splits applied after the start state's day are the derivation's to record again
        self._cursor.execute(
            "DELETE FROM rm_corporate_actions WHERE strategy_id = %s AND ex_date > %s",
            (strategy_id, result.actions_after or date.min),
        )
        if result.actions:
            self._cursor.executemany(
                "INSERT INTO rm_corporate_actions (strategy_id, ex_date, symbol, split_from, split_to, quantity_before,"
                " quantity_after, cost_basis_before, cost_basis_after) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s)"
                " ON CONFLICT (strategy_id, ex_date, symbol) DO UPDATE SET split_from = EXCLUDED.split_from,"
                " split_to = EXCLUDED.split_to, quantity_before = EXCLUDED.quantity_before,"
                " quantity_after = EXCLUDED.quantity_after, cost_basis_before = EXCLUDED.cost_basis_before,"
                " cost_basis_after = EXCLUDED.cost_basis_after",
                [
                    (
                        strategy_id,
                        a.ex_date,
                        a.symbol,
                        a.split_from,
                        a.split_to,
                        published(a.quantity_before),
                        published(a.quantity_after),
                        published(a.cost_basis_before),
                        published(a.cost_basis_after),
                    )
                    for a in result.actions
                ],
            )
        if result.snapshots:
            self._cursor.executemany(
                "UPDATE rm_snapshots SET upserted = %s, removed = %s, reconciliation_entries = %s WHERE id = %s",
                [(u, r, n, sid) for sid, u, r, n in result.snapshots],
            )

    def writes_together(self, *row_counts: int) -> AbstractContextManager[None]:
        """A strategy's writes in one pipeline when each table gets few rows (``row_counts``): see bulk.py."""
        return pipelined(self._cursor, *row_counts)

    def write_positions(self, strategy_id: UUID, before: dict[str, Holding], after: dict[str, Holding]) -> None:
        """Make ``rm_positions`` go from ``before`` (as stored) to ``after``, touching only what changed."""
        removed = [s for s in before if s not in after]
        changed = [
            (strategy_id, s, h.quantity, h.cost_basis, h.updated_at)
            for s, h in after.items()
            if s not in before or before[s] != h
        ]
        if removed:
            self._cursor.execute(
                "DELETE FROM rm_positions WHERE strategy_id = %s AND symbol = ANY(%s)", (strategy_id, removed)
            )
        if changed:
            self._cursor.executemany(
                "INSERT INTO rm_positions (strategy_id, symbol, quantity, cost_basis, updated_at)"
                " VALUES (%s,%s,%s,%s,%s) ON CONFLICT (strategy_id, symbol) DO UPDATE SET"
                " quantity = EXCLUDED.quantity, cost_basis = EXCLUDED.cost_basis, updated_at = EXCLUDED.updated_at",
                changed,
            )

    def write_ledger(self, row: LedgerRow) -> None:
        """Insert or replace the strategy's ``rm_ledger`` row."""
        self._cursor.execute(
            f"INSERT INTO rm_ledger ({LEDGER_COLUMNS}, updated_at)"
            " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s, now()) ON CONFLICT (strategy_id) DO UPDATE SET"
            " cash_balance = EXCLUDED.cash_balance, realized_pnl = EXCLUDED.realized_pnl,"
            " external_flows = EXCLUDED.external_flows, market_value = EXCLUDED.market_value,"
            " total_equity = EXCLUDED.total_equity, captured_at = EXCLUDED.captured_at,"
            " last_order_at = EXCLUDED.last_order_at, last_effective_at = EXCLUDED.last_effective_at,"
            " last_notification_id = EXCLUDED.last_notification_id, state = EXCLUDED.state,"
            " inception_date = EXCLUDED.inception_date, tail_day = EXCLUDED.tail_day,"
            " tail_state = EXCLUDED.tail_state, updated_at = now()",
            msgspec.structs.astuple(row),
        )

    # ------------------------------------------------------------ re-marking for new prices

    def price_update_position(self) -> int:
        """The last price-outbox id the partition has re-marked for (every partition has its cursors row)."""
        return one(
            self._cursor.execute(
                "SELECT price_update_id FROM projector_partition_cursors WHERE partition = %s", (self._mine(),)
            )
        )["price_update_id"]

    def move_price_cursor(self, update_id: int) -> None:
        self._cursor.execute(
            "UPDATE projector_partition_cursors SET price_update_id = %s WHERE partition = %s",
            (update_id, self._mine()),
        )

    def strategies_holding(self, symbols: Iterable[str]) -> dict[UUID, set[str]]:
        """The strategies that ever held any of ``symbols`` (and which of them)."""
        found: dict[UUID, set[str]] = defaultdict(set)
        for r in self._cursor.execute(
            "SELECT strategy_id, symbol FROM rm_strategy_symbols WHERE symbol = ANY(%s)", (list(symbols),)
        ).fetchall():
            found[r["strategy_id"]].add(r["symbol"])
        return found

    def projected(self, strategy_ids: Iterable[UUID]) -> set[UUID]:
        """Those of ``strategy_ids`` that have a ledger (at least one event folded)."""
        return {
            r["strategy_id"]
            for r in self._cursor.execute(
                "SELECT strategy_id FROM rm_ledger WHERE strategy_id = ANY(%s)", (list(strategy_ids),)
            ).fetchall()
        }

    # ------------------------------------------------------------ the leaderboard

    def strategy_update_position(self) -> int:
        """The last ``strategy_updates`` id the partition has applied to the leaderboard."""
        return one(
            self._cursor.execute(
                "SELECT strategy_update_id FROM projector_partition_cursors WHERE partition = %s", (self._mine(),)
            )
        )["strategy_update_id"]

    def move_strategy_update_cursor(self, update_id: int) -> None:
        self._cursor.execute(
            "UPDATE projector_partition_cursors SET strategy_update_id = %s WHERE partition = %s",
            (update_id, self._mine()),
        )

    # ------------------------------------------------------------ rebuild

    def swap_in_shadow(self) -> None:
        """Replace every live read model by the rebuild's (inside the caller's locked transaction)."""
        self._cursor.execute("SET LOCAL search_path TO public")
        for table in READ_MODEL_TABLES:
            self._cursor.execute(f"DROP TABLE public.{table}")
            self._cursor.execute(f"ALTER TABLE {SHADOW_SCHEMA}.{table} SET SCHEMA public")
        self._cursor.execute(f"DROP SCHEMA {SHADOW_SCHEMA}")
