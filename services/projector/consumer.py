"""The projector daemon: folds the event store's notifications of the partitions it owns, woken up
by JetStream.

The event store is the only truth: every event the projector applies is read from the
store (the partition's events after its tracked position), never taken from a bus message. The
bus is a wake-up call: one durable JetStream pull consumer per partition, whose deliveries only
say "there is something new in partition N", so a forged, replayed or lost message changes
nothing but latency. When the bus is idle or down, the daemon polls the store every ``IDLE_POLL_S``.

Several daemons share the P partitions (``libs.infra.pg.Leases``): each owns its fair share, a
partition is owned by one daemon at a time, and the partitions of a daemon that dies are taken
over by the others at their next balance (every ``BALANCE_EVERY_S``). Ownership is an
optimisation, not the guarantee: every projection transaction holds its partition's lock and
moves the partition's tracking position, so an event is applied once whoever applies it.
"""

from __future__ import annotations

import asyncio
import time
from functools import partial

import structlog
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from libs.infra import bus, locks
from libs.infra.db import Database
from libs.infra.pg import Leases

from .leaderboard import BUDGET_S, SCAN_EVERY_S, refresh_leaderboard, refresh_partitions
from .projection import LayoutChanged, advance_idle, apply_price_updates, project_partition, project_partitions

FETCH_BATCH = 500
FETCH_TIMEOUT_S = 0.5
DRAIN_TIMEOUT_S = 0.02
REBIND_AFTER_IDLE_FETCHES = 100  # ~50 s of empty fetches: re-bind (pull subscriptions can stall)
STORE_BATCH = 2000
#: at most this many partitions share a projection transaction (its locks, its commit)
TOGETHER = 16
IDLE_POLL_S = 0.5
RETRY_S = 1.0
#: how often a daemon re-counts its peers and takes (or gives back) partitions; a dead peer's
#: partitions move within about this long (its locks go with its connection)
BALANCE_EVERY_S = 1.0
#: the longest the leaderboard waits for its upkeep while events keep coming
BOARD_DEFER_S = 0.3
#: the leaderboard's upkeep under news all along: this much at least every BOARD_DEFER_S (short: news that
#: arrives during a forced slice waits for it; docs/NOTES.md "Leaderboard")
BOARD_SLICE_S = 0.03
#: a new round of the leaderboard's upkeep starts at most this often (a round cut short goes on at once):
#: the rows of the strategies projected meanwhile go together, in a transaction for up to TOGETHER
#: partitions, instead of a transaction after each projection (docs/NOTES.md "Leaderboard")
BOARD_ROUND_EVERY_S = 1.0

log = structlog.get_logger(component="projector")


class ProjectorDaemon:
    def __init__(self, db: Database, nats_url: str, stream_replicas: int = 1) -> None:
        self.db = db
        self.nats_url = nats_url
        self.stream_replicas = stream_replicas
        self.leases = Leases(db.url, locks.PROJECTOR_MEMBER, locks.PROJECTOR_LEASE)
        self.partitions = 0
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        #: partitions a JetStream delivery said have news
        self._dirty: set[int] = set()
        #: partitions whose leaderboard rows may be stale (all of them at start: catch up)
        self._leaderboard_dirty: set[int] = set()
        #: the trials version the owned partitions' DSRs were last brought to (a new one: every partition's)
        self._trials_seen = -1
        self._last_scan = 0.0
        self._last_balance = 0.0
        self._last_round = 0.0
        #: where the next leaderboard round starts (partitions take turns within the budget)
        self._board_next = 0
        self._last_board = 0.0
        #: when the current round of the leaderboard's upkeep started, and whether it has more to do
        self._board_round = 0.0
        self._board_more = False
        self._consumers: dict[int, asyncio.Task] = {}
        self._store_id = ""

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    @property
    def owned(self) -> set[int]:
        return set(self.leases.owned)

    async def run(self) -> None:
        self._store_id = await asyncio.to_thread(lambda: self.db.events.store_id)
        try:
            while not self._stop.is_set():
                self._wake.clear()
                try:
                    await self.balance()
                    await self.work()
                    # new events first: the leaderboard's upkeep runs while no partition has news and stops
                    # when news arrives (between two rows); under news all along, a BOARD_SLICE_S of it at
                    # least every BOARD_DEFER_S (an upkeep beside the projection was tried: its partition
                    # locks held the projection up); a round starts at most every BOARD_ROUND_EVERY_S
                    more, due = False, self._board_due()
                    if due and not self._dirty:
                        more = await self.refresh_leaderboard(BUDGET_S, interruptible=True)
                        if not self._dirty:  # not cut short
                            self._last_board = time.monotonic()
                    elif due and time.monotonic() - self._last_board >= BOARD_DEFER_S:
                        more = await self.refresh_leaderboard(BOARD_SLICE_S, interruptible=False)
                        self._last_board = time.monotonic()
                except LayoutChanged:  # a rebuild laid the partitions out anew: take the new layout now
                    await self.balance(force=True)
                    continue
                except Exception as exc:  # noqa: BLE001 - database trouble: keep trying
                    log.warning("projection_retry", error=str(exc) or type(exc).__name__)
                    await asyncio.to_thread(self.leases.close)  # a fresh connection, fresh leases
                    self._sync_consumers()
                    await self._sleep(RETRY_S)
                    continue
                if more or self._dirty:
                    continue  # more to do: new events first, then the leaderboard
                try:
                    await asyncio.wait_for(self._wake.wait(), self._idle_wait())
                except TimeoutError:
                    pass
        finally:
            for task in self._consumers.values():
                task.cancel()
            await asyncio.gather(*self._consumers.values(), return_exceptions=True)
            await asyncio.to_thread(self.leases.close)

    def _board_due(self) -> bool:
        """Whether the leaderboard's upkeep may run now: a round goes on, or the last one started
        ``BOARD_ROUND_EVERY_S`` ago."""
        return self._board_more or time.monotonic() - self._board_round >= BOARD_ROUND_EVERY_S

    def _idle_wait(self) -> float:
        """How long the loop waits for news: until the next round of the leaderboard's upkeep if some
        partition needs one, else ``IDLE_POLL_S``."""
        if not self._leaderboard_dirty:
            return IDLE_POLL_S
        return min(IDLE_POLL_S, max(0.001, self._board_round + BOARD_ROUND_EVERY_S - time.monotonic()))

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
        except TimeoutError:
            pass

    async def balance(self, force: bool = False) -> None:
        """Take this daemon's share of the partitions (at most every ``BALANCE_EVERY_S``)."""
        if not force and time.monotonic() - self._last_balance < BALANCE_EVERY_S:
            return
        self.partitions = await asyncio.to_thread(self.db.projection.partitions)
        taken, released = await asyncio.to_thread(self.leases.balance, self.partitions)
        self._last_balance = time.monotonic()
        if taken or released:
            log.info(
                "partitions_balanced",
                taken=sorted(taken),
                released=sorted(released),
                owned=sorted(self.owned),
                member=self.leases.slot,
            )
            self._dirty |= taken
            self._leaderboard_dirty |= taken
        self._sync_consumers()

    async def work(self) -> int:
        """Catch up the partitions with news, and every ``IDLE_POLL_S`` all owned partitions (whatever
        the bus said or lost: those with events of their own are caught up, the others moved to the head
        together, in one transaction) and their re-marks for new prices."""
        owned = self.owned
        self._dirty &= owned  # news of a partition given back are its new owner's
        full_round = time.monotonic() - self._last_round >= IDLE_POLL_S
        dirty = self._dirty
        self._dirty = set()
        head = await asyncio.to_thread(self.db.events.max_notification_id)
        positions = await asyncio.to_thread(self.db.projection.partition_positions)
        behind = {p for p in (owned if full_round else dirty) if positions.get(p, 0) < head}
        todo = behind
        if full_round and behind - dirty:
            busy = await asyncio.to_thread(
                self.db.events.partitions_with_events, self.partitions, min(positions.get(p, 0) for p in behind), head
            )
            idle = behind - dirty - busy
            if idle:
                await asyncio.to_thread(advance_idle, self.db, sorted(idle), self.partitions, head)
            todo = behind - idle
        total = await self.catch_up_together(todo, positions, head)
        if full_round:  # prices, for every owned partition whose cursor is behind the price outbox
            self._last_round = time.monotonic()
            latest = await asyncio.to_thread(self.db.prices.latest_update)
            cursors = await asyncio.to_thread(self.db.projection.partition_cursors)
            for partition in sorted(owned):
                if cursors.get(partition, (0, 0))[0] >= latest:
                    continue
                if await asyncio.to_thread(apply_price_updates, self.db, partition):
                    self._leaderboard_dirty.add(partition)
        return total

    async def catch_up_together(self, todo: set[int], positions: dict[int, int], head: int) -> int:
        """Project the events of ``todo``'s partitions up to ``head``: those with a few (live traffic) in
        one transaction together, read in one statement; a partition with a backlog of ``STORE_BATCH`` or
        more on its own, a batch at a time."""
        total = 0
        pending = sorted(todo)
        while pending and not self._stop.is_set():
            group = pending[:TOGETHER]
            pending = pending[TOGETHER:]
            after = min(positions.get(p, 0) for p in group)
            shares = await asyncio.to_thread(
                self.db.events.partitions_notifications, group, self.partitions, after, STORE_BATCH, head
            )
            if sum(len(events) for events in shares.values()) >= STORE_BATCH:  # a backlog: one at a time
                for partition in group:
                    total += await self.catch_up(partition, positions.get(partition, 0), head)
                    self._leaderboard_dirty.add(partition)
                continue
            # without waiting for a lock another transaction holds (another daemon's leaderboard upkeep, a
            # strategy's deletion): those partitions go after, alone
            projected, left = await asyncio.to_thread(
                partial(project_partitions, wait=False),
                self.db,
                {p: shares.get(p, []) for p in group},
                self.partitions,
                head,
            )
            if projected:
                self._leaderboard_dirty.update(p for p in group if shares.get(p) and p not in left)
            total += projected
            for partition in left:
                total += await self.catch_up(partition, positions.get(partition, 0), head)
                self._leaderboard_dirty.add(partition)
        return total

    async def catch_up(self, partition: int, position: int, head: int) -> int:
        """Project the partition's events up to ``head`` (and move its position there)."""
        total = 0
        while position < head and not self._stop.is_set():
            notifications = await asyncio.to_thread(
                self.db.events.partition_notifications, partition, self.partitions, position, STORE_BATCH, head
            )
            up_to = head if len(notifications) < STORE_BATCH else notifications[-1].id
            total += await asyncio.to_thread(
                project_partition, self.db, partition, self.partitions, notifications, up_to
            )
            position = up_to
        return total

    async def refresh_leaderboard(self, budget_s: float = BUDGET_S, interruptible: bool = False) -> bool:
        """Leaderboard upkeep for the owned partitions that need it (stale rows to look for, or strategy
        updates they have not followed), within one ``budget_s`` for all of them (the next call starts
        where this one stopped), or (``interruptible``) until a partition has news. A partition with
        strategy updates goes alone (its cursor moves with them); the others go together, up to
        ``TOGETHER`` in a transaction (``refresh_partitions``: one count of the trials for all their
        rows). True when there may be more to do."""
        if not self._board_more:  # a new round
            self._board_round = time.monotonic()
        scan_all = time.monotonic() - self._last_scan > SCAN_EVERY_S
        latest = await asyncio.to_thread(self.db.identity.latest_strategy_update)
        cursors = await asyncio.to_thread(self.db.projection.partition_cursors)
        trials_version = (await asyncio.to_thread(self.db.ledger.trials_counted))[1]
        rejudge = trials_version != self._trials_seen
        owned = sorted(self.owned)
        updated = {p for p in owned if cursors.get(p, (0, 0))[1] < latest}
        todo = [p for p in owned if rejudge or scan_all or p in self._leaderboard_dirty or p in updated]
        pending = [p for p in todo if p >= self._board_next] + [p for p in todo if p < self._board_next]  # round robin
        deadline = time.monotonic() + budget_s
        interrupt = (lambda: bool(self._dirty)) if interruptible else None
        more = skipped = False
        while pending:
            left = deadline - time.monotonic()
            if left <= 0 or (interrupt and interrupt()):
                self._board_next, more = pending[0], True
                break
            if pending[0] in updated:
                group = pending[:1]
                scan = scan_all or group[0] in self._leaderboard_dirty
                self._leaderboard_dirty.discard(group[0])  # unmarked first: a projection meanwhile marks it again
                done = await asyncio.to_thread(
                    partial(refresh_leaderboard, scan=scan, budget_s=left, interrupt=interrupt), self.db, group[0]
                )
                held = group
            else:
                group = [p for p in pending if p not in updated][:TOGETHER]
                self._leaderboard_dirty.difference_update(group)
                done, held = await asyncio.to_thread(
                    partial(refresh_partitions, budget_s=left, interrupt=interrupt), self.db, group
                )
                if len(held) < len(group):  # locks another transaction held: at the next round
                    self._leaderboard_dirty.update(p for p in group if p not in held)
                    skipped = True
            if done:  # it did something: look again, there may be more
                self._leaderboard_dirty.update(held)
            more = more or done > 0
            pending = [p for p in pending if p not in group]
        else:
            self._board_next = 0
            if scan_all and not skipped:
                self._last_scan = time.monotonic()
            if not more and not skipped:
                self._trials_seen = trials_version
        self._board_more = more
        return more

    # ------------------------------------------------------------ wake-ups from JetStream

    def _sync_consumers(self) -> None:
        """One consumer task per owned partition (started for new ones, stopped for given-back ones)."""
        owned = self.owned
        for partition in [p for p in self._consumers if p not in owned]:
            self._consumers.pop(partition).cancel()
        for partition in owned - set(self._consumers):
            self._consumers[partition] = asyncio.create_task(self._listen(partition))

    async def _listen(self, partition: int) -> None:
        """Turn a partition's JetStream deliveries into wake-ups, reconnecting while it is owned."""
        while not self._stop.is_set():
            try:
                await self._consume(partition)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - bus unreachable: the store poll carries on
                log.warning("bus_unavailable", partition=partition, error=str(exc) or type(exc).__name__)
                await self._sleep(RETRY_S)

    async def _consume(self, partition: int) -> None:
        store_id = self._store_id
        nc = await bus.connect(self.nats_url, f"botranks-projector-p{partition}")
        try:
            await bus.ensure_stream(nc, store_id, self.stream_replicas)
            js = nc.jetstream()
            durable = bus.partition_consumer(store_id, partition)
            config = ConsumerConfig(
                durable_name=durable,
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                max_deliver=20,
                ack_wait=30,
                max_ack_pending=20_000,
                filter_subject=bus.partition_subjects(store_id, partition),
            )
            sub = await js.pull_subscribe(
                bus.partition_subjects(store_id, partition),
                durable=durable,
                stream=bus.stream_name(store_id),
                config=config,
            )
            idle = 0
            while not self._stop.is_set():
                # nothing there: nats-py raises its own TimeoutError, or asyncio's when the server's "no
                # messages" came back after the fetch's deadline (nats/js/client.py, _fetch_n); neither is a
                # reason to reconnect (which left the partition without wake-ups for a second: the stalls
                # behind read-your-writes' slowest answers)
                try:
                    # one message is enough to wake up: a bigger batch would linger until its timeout
                    # (nats-py waits for the whole batch once the first message of a long poll arrives)
                    msgs = await sub.fetch(1, timeout=FETCH_TIMEOUT_S)
                except TimeoutError:
                    idle += 1
                    if idle >= REBIND_AFTER_IDLE_FETCHES:
                        return  # the caller connects and binds again
                    continue
                idle = 0
                self._dirty.add(partition)
                self._wake.set()  # what the messages say is read from the store, not from them
                try:  # then whatever else is there already (no long poll), acknowledged in one go
                    msgs += await sub.fetch(FETCH_BATCH, timeout=DRAIN_TIMEOUT_S)
                except TimeoutError:  # nothing more (nats-py's, or asyncio's: see above)
                    pass
                if len(msgs) > 1:  # news, perhaps, to a catch-up that started since the first message woke it
                    self._dirty.add(partition)
                    self._wake.set()
                await asyncio.gather(*(msg.ack() for msg in msgs))
        finally:
            await nc.close()
