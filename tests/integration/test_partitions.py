"""Partitioned projection: several projectors share the partitions, a dead one's move to the others
within 10 s, a handover while events arrive, and the read models always equal a rebuild, with no
event applied twice (the hash chains count every event exactly once, nothing is quarantined)."""

from __future__ import annotations

import random
import signal
import threading
import time
from collections import Counter
from uuid import UUID

import pytest

from botranks_domain.partition import partition_of
from devtools.stack import ROOT, Stack, wait_until
from libs.infra.locks import PROJECTOR_LEASE as LEASE_LOCK
from libs.infra.locks import PROJECTOR_MEMBER as MEMBER_LOCK

from .test_faults import random_batch, rebuild_cli

pytestmark = pytest.mark.integration


def _locks(stack: Stack, lock_class: int) -> dict[int, int]:
    """objid -> backend pid of the granted advisory locks of that class in the stack's database."""
    with stack.sql() as curs:
        rows = curs.execute(
            "SELECT objid::int AS objid, pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND classid = %s::oid AND objsubid = 2"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            (lock_class,),
        ).fetchall()
    return {r["objid"]: r["pid"] for r in rows}


def _owners(stack: Stack) -> Counter:
    """How many partitions each lease holder (a backend pid) owns."""
    return Counter(_locks(stack, LEASE_LOCK).values())


def _applied_once(stack: Stack) -> None:
    """Every stored event is in the read models exactly once: each strategy's hash chain has one link
    per event, seq 1..n without a gap, and nothing was quarantined."""
    with stack.sql() as curs:
        assert curs.execute("SELECT count(*) AS n FROM rm_quarantine").fetchone()["n"] == 0
        links = curs.execute("SELECT count(*) AS n, count(DISTINCT notification_id) AS d FROM rm_chain").fetchone()
        events = curs.execute("SELECT count(*) AS n FROM botranks_events").fetchone()["n"]
        assert links["n"] == links["d"] == events
        gaps = curs.execute(
            "SELECT strategy_id FROM rm_chain GROUP BY strategy_id HAVING max(seq) <> count(*) OR min(seq) <> 1"
        ).fetchall()
        assert gaps == []


def _all_applied_once_and_equal_to_a_rebuild(
    stack: Stack, writer: threading.Thread, accepted: list[int], projector: str
) -> None:
    """Once the writer is done and everything is projected: every order and deposit is in the read models
    exactly once, and a rebuild (with ``projector`` stopped) gives the same read models."""
    writer.join(180)
    assert not writer.is_alive()
    stack.wait_projected(60)
    incremental = stack.read_models()
    assert len(incremental["orders"]) == sum(accepted) == 60 * 50
    assert len(incremental["cash"]) == len(accepted) == 60
    _applied_once(stack)
    stack.kill(projector, signal.SIGTERM)
    rebuild_cli(stack)
    assert stack.read_models() == incremental


def _ingest(stack: Stack, strategies, batches: int, accepted: list[int], seed: int, pause: float = 0.0) -> None:
    rng = random.Random(seed)
    for i in range(batches):
        sid, auth = strategies[i % len(strategies)]
        r = stack.post(sid, "orders", random_batch(rng, 50), auth)
        assert r.status_code == 200, r.text
        accepted.append(r.json()["counts"]["accepted"])
        r = stack.post(
            sid,
            "cash",
            {"event_type": "deposit", "amount": 1000 + i, "occurred_at": f"2026-02-{1 + i % 27:02d}T10:00:00Z"},
            auth,
        )
        assert r.status_code == 201, r.text
        time.sleep(pause)


def _strategies(stack: Stack, n: int):
    strategies = [stack.new_strategy(f"s{i}") for i in range(n)]
    partitions = stack.db.projection.partitions()
    assert len({partition_of(UUID(sid), partitions) for sid, _ in strategies}) > 4
    return strategies


def test_two_projectors_share_the_partitions_and_a_killed_ones_move_within_10s(backends, make_database, tmp_path):
    _, nats_url = backends
    stack = Stack(make_database(), nats_url, tmp_path, projectors=2, BOTRANKS_READ_YOUR_WRITES_TIMEOUT="0")
    stack.start()
    try:
        partitions = stack.db.projection.partitions()
        assert partitions == 16
        wait_until(lambda: sorted(_owners(stack).values()) == [8, 8], 20, "two projectors owning 8 partitions each")
        assert len(_locks(stack, MEMBER_LOCK)) == 2
        strategies = _strategies(stack, 24)
        accepted: list[int] = []
        writer = threading.Thread(target=_ingest, args=(stack, strategies, 60, accepted, 11))
        writer.start()
        wait_until(lambda: stack.db.projection.position() > 600, 60, "the projectors to be mid-stream")
        stack.kill("projector1", signal.SIGKILL)
        killed_at = time.monotonic()
        wait_until(lambda: sorted(_owners(stack).values()) == [16], 15, "the survivor to own every partition")
        moved_in = time.monotonic() - killed_at
        assert moved_in <= 10, f"the partitions moved in {moved_in:.1f} s"
        _all_applied_once_and_equal_to_a_rebuild(stack, writer, accepted, "projector")
    finally:
        stack.stop()


def test_a_partition_handover_while_events_arrive(backends, make_database, tmp_path):
    _, nats_url = backends
    stack = Stack(make_database(), nats_url, tmp_path, BOTRANKS_READ_YOUR_WRITES_TIMEOUT="0")
    stack.start()
    try:
        wait_until(lambda: sorted(_owners(stack).values()) == [16], 20, "one projector owning every partition")
        strategies = _strategies(stack, 16)
        accepted: list[int] = []
        writer = threading.Thread(target=_ingest, args=(stack, strategies, 60, accepted, 5, 0.05))
        writer.start()
        wait_until(lambda: stack.db.projection.position() > 300, 60, "the projector to be mid-stream")
        stack.start_projector("projector1")  # a second one joins: half the partitions change hands
        wait_until(lambda: sorted(_owners(stack).values()) == [8, 8], 20, "the partitions to be shared")
        stack.kill("projector", signal.SIGTERM)  # the first one leaves: the second takes them all
        wait_until(lambda: sorted(_owners(stack).values()) == [16], 15, "the second to own every partition")
        _all_applied_once_and_equal_to_a_rebuild(stack, writer, accepted, "projector1")
    finally:
        stack.stop()


def test_a_rebuild_lays_the_projection_out_in_another_number_of_partitions(backends, make_database, tmp_path):
    import subprocess
    import sys

    _, nats_url = backends
    stack = Stack(make_database(), nats_url, tmp_path)
    stack.start()
    try:
        strategies = _strategies(stack, 8)
        _ingest(stack, strategies, 8, [], 3)
        stack.wait_projected()
        before = stack.read_models()
        subprocess.run(
            [sys.executable, "-m", "tools.cli", "projector", "rebuild", "--partitions", "4"],
            cwd=ROOT,
            env=stack.env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        assert stack.db.projection.partitions() == 4 and len(stack.db.projection.partition_positions()) == 4
        assert stack.read_models() == before
        wait_until(lambda: sorted(_owners(stack).values()) == [4], 20, "the running projector to take the new layout")
        sid, auth = strategies[0]
        r = stack.post(sid, "cash", {"event_type": "deposit", "amount": 5}, auth)  # read-your-writes on the new layout
        assert r.status_code == 201
        stack.wait_projected()
        assert len(stack.read_models()["cash"]) == len(before["cash"]) + 1
    finally:
        stack.stop()
