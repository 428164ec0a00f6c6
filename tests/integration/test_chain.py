"""The hash chain: the projector's equals a recomputation from the event log (in any batching, with
back-dated events, after a rebuild); `botranks verify` catches an event edited behind the
application; the documented script verifies a download."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from botranks_domain.chain import digest, to_hex, verify_lines
from botranks_domain.model import CashEvent, CashRecorded, Order, OrderRecorded, stored_event_strategy
from devtools.stack import ROOT, sql
from libs.infra.db import Database
from services.projector.projection import project
from services.projector.rebuild import rebuild

pytestmark = pytest.mark.integration

DAY0 = date(2025, 1, 6)
T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)  # arrivals: after every execution


@pytest.fixture(scope="module")
def db(make_database):
    d = Database(make_database(), pool_size=1, max_overflow=2).create_tables()
    yield d
    d.close()


def order(sid: uuid.UUID, executed: datetime, arrived: datetime, qty: int = 1) -> OrderRecorded:
    return OrderRecorded(
        Order(
            id=uuid.uuid4(),
            strategy_id=sid,
            symbol="CHN",
            side="buy",
            quantity=D(qty),
            price=D("10.5"),
            fees=D(0),
            order_type="market",
            status="filled",
            executed_at=executed,
            created_at=arrived,
            external_order_id=None,
            details={"k": [1, 2.5, "x"]},
        )
    )


def deposit(sid: uuid.UUID, at: datetime, arrived: datetime) -> CashRecorded:
    return CashRecorded(
        CashEvent(
            id=uuid.uuid4(),
            strategy_id=sid,
            event_type="deposit",
            amount=D("1000.25"),
            occurred_at=at,
            external_id=None,
            related_symbol=None,
            note="n\u00e9",
            created_at=arrived,
        )
    )


def append(db: Database, events) -> None:
    db.events.append([(e.order.id if isinstance(e, OrderRecorded) else e.cash.id, e) for e in events])


def project_all(db: Database) -> None:
    while notifications := db.events.notifications_after(db.projection.position(), 1000):
        project(db, notifications)


def recomputed(db: Database) -> dict[uuid.UUID, list[tuple[int, int, bytes]]]:
    """Every strategy's chain from the event log alone: (seq, notification id, digest)."""
    chains: dict[uuid.UUID, list[tuple[int, int, bytes]]] = defaultdict(list)
    for n in db.events.notifications_after(0, 1_000_000):
        sid = stored_event_strategy(n.state)
        chain = chains[sid]
        chain.append((len(chain) + 1, n.id, digest(chain[-1][2] if chain else None, n.state)))
    return dict(chains)


def published(db: Database) -> dict[uuid.UUID, list[tuple[int, int, bytes]]]:
    chains: dict[uuid.UUID, list[tuple[int, int, bytes]]] = defaultdict(list)
    with sql(db) as curs:
        for r in curs.execute(
            "SELECT strategy_id, seq, notification_id, digest FROM rm_chain ORDER BY strategy_id, seq"
        ).fetchall():
            chains[r["strategy_id"]].append((r["seq"], r["notification_id"], bytes(r["digest"])))
    return dict(chains)


def verify(db: Database, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tools.cli", "verify", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "BOTRANKS_DATABASE_URL": db.url, "BOTRANKS_LOG_LEVEL": "warning"},
    )


@st.composite
def batches(draw):
    """A few strategies' events (some back-dated), cut into arrival batches."""
    sids = [uuid.uuid4() for _ in range(draw(st.integers(1, 3)))]
    events = []
    for i in range(draw(st.integers(1, 14))):
        sid = draw(st.sampled_from(sids))
        executed = datetime.combine(
            DAY0 + timedelta(days=draw(st.integers(0, 40))), datetime.min.time(), UTC
        ) + timedelta(hours=14)
        arrived = T0 + timedelta(hours=draw(st.integers(0, 72)), minutes=i)
        events.append(order(sid, executed, arrived) if draw(st.booleans()) else deposit(sid, executed, arrived))
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(events) - 1)), max_size=4)))
    return events, cuts


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(batches())
def test_published_chain_equals_the_event_log_in_any_batching(db, case):
    events, cuts = case
    bounds = [0, *cuts, len(events)]
    before = published(db)
    for lo, hi in zip(bounds, bounds[1:]):
        if lo < hi:
            append(db, events[lo:hi])
            project_all(db)
    after = published(db)
    assert after == recomputed(db)
    for sid, chain in before.items():  # appends only: what was published stays a prefix
        assert after[sid][: len(chain)] == chain


def test_back_dated_event_appends_and_rebuild_recomputes_the_same_chain(db):
    sid = uuid.uuid4()
    append(db, [deposit(sid, T0 - timedelta(days=30), T0), order(sid, T0 - timedelta(days=20), T0)])
    project_all(db)
    head = db.ledger.chain(sid)
    assert head.events == 2 and head.digest is not None
    append(db, [order(sid, T0 - timedelta(days=60), T0 + timedelta(days=1))])  # executed before everything
    project_all(db)
    later = db.ledger.chain(sid)
    assert later.events == 3
    assert [(d.day, d.events, d.digest) for d in later.days[:1]] == [(d.day, d.events, d.digest) for d in head.days]
    assert later.days[-1].day == (T0 + timedelta(days=1)).date()
    assert published(db) == recomputed(db)
    with sql(db) as curs:
        days_before = curs.execute("SELECT * FROM rm_chain_days ORDER BY 1, 2").fetchall()
    rebuild(db)
    assert published(db) == recomputed(db)
    with sql(db) as curs:
        assert curs.execute("SELECT * FROM rm_chain_days ORDER BY 1, 2").fetchall() == days_before
    assert db.ledger.chain(sid) == later


def test_verify_passes_untouched_and_names_the_first_edited_event(db):
    sid = uuid.uuid4()
    append(db, [deposit(sid, T0 - timedelta(days=5), T0 + timedelta(minutes=m)) for m in range(3)])
    project_all(db)
    ok = verify(db)
    assert ok.returncode == 0, ok.stderr
    summary = json.loads(ok.stdout)
    assert summary["ok"] and summary["first_mismatch"] is None and summary["events"] == db.events.max_notification_id()
    one = verify(db, "--strategy", str(sid))
    assert one.returncode == 0 and json.loads(one.stdout)["events"] == 3

    seq2 = published(db)[sid][1]
    with sql(db) as curs:  # behind the application's back: the amount of the second deposit
        curs.execute(
            "UPDATE botranks_events SET state = convert_to(replace(convert_from(state, 'UTF8'),"
            " '1000.25', '9000.25'), 'UTF8') WHERE notification_id = %s",
            (seq2[1],),
        )
    tampered = verify(db)
    assert tampered.returncode == 1
    first = json.loads(tampered.stdout)["first_mismatch"]
    assert (first["strategy_id"], first["seq"], first["notification_id"]) == (str(sid), 2, seq2[1])
    assert f"strategy {sid} at seq 2" in tampered.stderr
    assert verify(db, "--strategy", str(sid)).returncode == 1
    assert verify(db, "--strategy", str(uuid.uuid4())).returncode == 0  # another strategy's chain is intact

    with sql(db) as curs:  # put it back: verifies again; then drop an event altogether
        curs.execute(
            "UPDATE botranks_events SET state = convert_to(replace(convert_from(state, 'UTF8'),"
            " '9000.25', '1000.25'), 'UTF8') WHERE notification_id = %s",
            (seq2[1],),
        )
    assert verify(db).returncode == 0
    with sql(db) as curs:
        curs.execute("DELETE FROM botranks_events WHERE notification_id = %s", (seq2[1],))
    gone = verify(db)
    assert gone.returncode == 1 and json.loads(gone.stdout)["first_mismatch"]["notification_id"] == seq2[1]


def notes_script() -> str:
    notes = (Path(ROOT) / "docs" / "NOTES.md").read_text()
    section = notes[notes.index("## Verifiable history") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_documented_script_verifies_a_download(db, tmp_path):
    sid = uuid.uuid4()
    append(
        db,
        [
            order(sid, T0 - timedelta(days=3), T0),
            deposit(sid, T0 - timedelta(days=9), T0 + timedelta(hours=2)),
            order(sid, T0 - timedelta(days=1), T0 + timedelta(days=2)),
        ],
    )
    project_all(db)
    lines = db.ledger.chain_events(sid)
    head = db.ledger.chain(sid)
    assert [json.loads(x)["seq"] for x in lines] == [1, 2, 3]
    assert json.loads(lines[0])["event"]["order"]["details"] == {"k": [1, 2.5, "x"]}
    assert verify_lines(lines) == (3, head.digest)
    script = tmp_path / "verify_chain.py"
    script.write_text(notes_script())
    download = tmp_path / "events.jsonl"
    download.write_bytes(b"".join(lines))
    run = subprocess.run([sys.executable, str(script), str(download)], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["3", "events,", "head", "digest", head.digest]

    # delayed publication: only what arrived before the cut-off, always a prefix that verifies
    early = db.ledger.chain_events(sid, before=T0 + timedelta(hours=1))
    assert early == lines[:1]
    download.write_bytes(b"".join(early))
    run = subprocess.run([sys.executable, str(script), str(download)], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0 and run.stdout.split()[0] == "1"
    assert db.ledger.chain_events(sid, before=T0 - timedelta(days=1)) == []

    download.write_bytes(b"".join(lines).replace(b"1000.25", b"1000.26"))  # an edited download fails
    run = subprocess.run([sys.executable, str(script), str(download)], capture_output=True, text=True, timeout=30)
    assert run.returncode == 1 and "chain broken at line 2" in run.stderr
    assert to_hex(bytes.fromhex(head.digest)) == head.digest


def test_a_quarantined_strategy_chain_stops_where_its_projection_stopped(make_database):
    from eventsourcing.persistence import StoredEvent

    db = Database(make_database(), pool_size=1, max_overflow=2).create_tables()
    try:
        healthy, poisoned = uuid.uuid4(), uuid.uuid4()
        append(db, [deposit(poisoned, T0 - timedelta(days=3), T0), deposit(healthy, T0 - timedelta(days=3), T0)])
        project_all(db)
        bad = order(poisoned, T0 - timedelta(days=1), T0 + timedelta(minutes=1))
        bad.order.quantity = D("1e-20000")  # PostgreSQL's numeric refuses it: the strategy is quarantined
        append(db, [bad, order(healthy, T0 - timedelta(days=1), T0 + timedelta(minutes=1))])
        db.events.recorder.insert_events(
            [StoredEvent(originator_id=uuid.uuid4(), originator_version=1, topic="OrderRecorded.v1", state=b"not json")]
        )
        append(db, [deposit(poisoned, T0, T0 + timedelta(minutes=2)), deposit(healthy, T0, T0 + timedelta(minutes=2))])
        project_all(db)
        assert db.ledger.quarantined() >= {poisoned}
        assert db.ledger.chain(poisoned).events == 1 and db.ledger.chain(healthy).events == 3
        chains = published(db)
        assert chains[healthy] == recomputed(db)[healthy]
        assert chains[poisoned] == recomputed(db)[poisoned][:1]
        ok = verify(db)
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert json.loads(ok.stdout)["quarantined"] == [str(poisoned)]
        rebuild(db)  # the rebuild meets the poison in a bigger batch: the halted chain may stop earlier
        rebuilt = published(db)
        assert rebuilt[healthy] == chains[healthy]
        assert rebuilt.get(poisoned, []) == chains[poisoned][: len(rebuilt.get(poisoned, []))]
        assert verify(db).returncode == 0
    finally:
        db.close()
