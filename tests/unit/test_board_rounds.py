"""The projector daemon's leaderboard upkeep comes in rounds (services/projector/consumer.py): a new round
starts at most every ``BOARD_ROUND_EVERY_S``, so the rows of the strategies projected in between go in one
round, the partitions together in one transaction (a partition with strategy updates alone), and a round
that has more to do goes on at once. The clock and the database are stand-ins here;
tests/integration/test_leaderboard.py and the stack tests show the rows themselves."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from services.projector import consumer
from services.projector.consumer import BOARD_ROUND_EVERY_S, IDLE_POLL_S, ProjectorDaemon


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def daemon(monkeypatch: pytest.MonkeyPatch) -> tuple[ProjectorDaemon, Clock, list[tuple[str, tuple[int, ...]]]]:
    """A daemon owning partitions 0–3 whose upkeep transactions are recorded: ("alone", (partition,)) for
    a partition with strategy updates, ("together", partitions) for the others; each reports ``done``
    rows (1: it found something, so the round looks again) and holds every lock but ``busy``'s."""
    clock, calls = Clock(), []
    monkeypatch.setattr(consumer.time, "monotonic", clock)
    cursors = {p: (0, 0) for p in range(4)}
    db = SimpleNamespace(
        url="postgresql://unused",
        identity=SimpleNamespace(latest_strategy_update=lambda: 0),
        projection=SimpleNamespace(partition_cursors=lambda: dict(cursors)),
        ledger=SimpleNamespace(trials_counted=lambda: (None, 7)),
    )
    d = ProjectorDaemon(db, "nats://unused")  # type: ignore[arg-type]
    d.leases.owned = {0, 1, 2, 3}
    d._trials_seen, d._last_scan = 7, clock.now  # nothing to re-judge, no safety-net scan due
    d.done, d.busy, d.cursors = 0, set(), cursors  # type: ignore[attr-defined]

    def alone(_db: object, partition: int, *, scan: bool, budget_s: float, interrupt: object) -> int:
        calls.append(("alone", (partition,)))
        clock.now += 0.01
        return d.done  # type: ignore[attr-defined,no-any-return]

    def together(_db: object, partitions: list[int], *, budget_s: float, interrupt: object) -> tuple[int, list[int]]:
        calls.append(("together", tuple(partitions)))
        clock.now += 0.01
        return d.done, [p for p in partitions if p not in d.busy]  # type: ignore[attr-defined]

    monkeypatch.setattr(consumer, "refresh_leaderboard", alone)
    monkeypatch.setattr(consumer, "refresh_partitions", together)
    return d, clock, calls


def test_a_new_round_waits_for_the_interval_and_takes_every_partition_projected_meanwhile(daemon) -> None:
    d, clock, calls = daemon
    d._leaderboard_dirty = {1}
    assert d._board_due()
    assert asyncio.run(d.refresh_leaderboard(interruptible=True)) is False
    assert calls == [("together", (1,))]
    # projections mark partitions 0, 2 and 3 just after: no new round yet, and the loop sleeps until it is due
    d._leaderboard_dirty |= {0, 2, 3}
    clock.now += 0.1
    assert not d._board_due()
    assert d._idle_wait() == IDLE_POLL_S  # the next round is further off than the loop's idle poll
    clock.now = d._board_round + BOARD_ROUND_EVERY_S - 0.05
    assert not d._board_due()
    assert d._idle_wait() == pytest.approx(0.05)  # woken up when the round is due
    clock.now += 0.05
    assert d._board_due()
    calls.clear()
    asyncio.run(d.refresh_leaderboard(interruptible=True))
    assert calls == [("together", (0, 2, 3))]  # one round, one transaction for the three


def test_a_round_with_more_to_do_goes_on_at_once(daemon) -> None:
    d, clock, calls = daemon
    d._leaderboard_dirty = {0, 1}
    d.done = 1  # each transaction wrote rows: the round looks again
    assert asyncio.run(d.refresh_leaderboard(interruptible=True)) is True
    assert d._board_due()  # not a new round: it goes on without waiting
    started = d._board_round
    d.done = 0
    assert asyncio.run(d.refresh_leaderboard(interruptible=True)) is False
    assert d._board_round == started  # still the round that started then
    assert not d._board_due()


def test_with_nothing_to_keep_up_the_loop_polls_at_its_idle_pace(daemon) -> None:
    d, _, _ = daemon
    d._leaderboard_dirty = set()
    asyncio.run(d.refresh_leaderboard(interruptible=True))
    assert d._idle_wait() == IDLE_POLL_S


def test_a_partition_with_strategy_updates_goes_alone(daemon) -> None:
    d, _, calls = daemon
    d._leaderboard_dirty = {0, 1, 3}
    d.cursors[1] = (0, -1)  # behind the latest strategy update (0)
    asyncio.run(d.refresh_leaderboard(interruptible=True))
    assert calls == [("together", (0, 3)), ("alone", (1,))]


def test_a_partition_whose_lock_is_busy_waits_for_the_next_round_and_keeps_its_rejudging(daemon) -> None:
    d, clock, calls = daemon
    d._trials_seen = 6  # the trials moved: every partition's rows are re-judged
    d.busy = {2}
    assert asyncio.run(d.refresh_leaderboard(interruptible=True)) is False  # no busy loop on the lock
    assert calls == [("together", (0, 1, 2, 3))]
    assert d._leaderboard_dirty == {2} and d._trials_seen == 6  # not judged yet: the next round does it
    clock.now += BOARD_ROUND_EVERY_S
    d.busy = set()
    calls.clear()
    asyncio.run(d.refresh_leaderboard(interruptible=True))
    assert calls == [("together", (0, 1, 2, 3))] and d._trials_seen == 7
