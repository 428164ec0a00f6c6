"""The leaderboard read model equals a recomputation from /performance for every strategy, after random
events, late prices and changes of visibility, name and benchmark (real PostgreSQL); its reads sort by
every column with NULLs last, filter by track record and live reporting, and page consistently."""

from __future__ import annotations

import itertools
import os
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from botranks_domain.accounts import StrategySettingsIn
from botranks_domain.bars import Bar
from botranks_domain.errors import InvalidSymbol, NotFound, NotOwner
from botranks_domain.model import CashEvent, CashRecorded, Order, OrderRecorded
from botranks_domain.partition import partition_of
from botranks_domain.views import (
    LEADERBOARD_DEFAULT_MIN_DAYS,
    LEADERBOARD_DEFAULT_SORT,
    LEADERBOARD_SORTS,
    LIVE_ONLY_MIN_SHARE,
    LIVE_REPORTING_S,
    LeaderboardRow,
)
from devtools.stack import sql, wait_until
from libs.infra.db import Database
from libs.infra.readmodel.tables import LEADERBOARD_COLUMNS, LEADERBOARD_TIEBREAKS, NAV_FIGURES
from services.projector.leaderboard import refresh_leaderboard, refresh_partitions
from services.projector.projection import apply_price_updates, project
from services.projector.rebuild import rebuild
from services.query_api import readers

pytestmark = pytest.mark.integration

DAY0 = date(2025, 1, 6)  # a Monday
DAYS = [DAY0 + timedelta(days=i) for i in range(70)]
_example = itertools.count()
#: per strategy, from the events the tests wrote: (orders, orders reported live, latest arrival)
EXPECTED: dict[uuid.UUID, dict] = {}


@pytest.fixture(scope="module")
def db(make_database):
    d = Database(make_database(), pool_size=1, max_overflow=2).create_tables()
    with sql(d) as curs:
        curs.executemany(
            "INSERT INTO prices (symbol, date, close) VALUES ('SPY', %s, %s)",
            [(day, D(500) + i % 7 - i % 3) for i, day in enumerate(DAYS) if day.weekday() < 5],
        )
    d.owner = d.identity.insert_user(f"lb-{uuid.uuid4().hex[:8]}@example.com", "not-a-hash").id
    yield d
    d.close()


def drain(db: Database) -> None:
    while refresh_leaderboard(db):
        pass


def project_all(db: Database) -> None:
    while notifications := db.events.notifications_after(db.projection.position(), 1000):
        project(db, notifications)


def at(day_index: int, minute: int) -> datetime:
    return datetime.combine(DAYS[day_index], datetime.min.time(), UTC) + timedelta(hours=13, minutes=minute)


#: reporting delays: live (≤ 15 min) and late ones, around the boundary
DELAYS = [
    timedelta(0),
    timedelta(minutes=10),
    timedelta(seconds=LIVE_REPORTING_S),
    timedelta(seconds=LIVE_REPORTING_S + 1),
    timedelta(days=3),
]
NAMES = ["alpha", "Beta", "gamma", "alpha", "zeta"]


@st.composite
def scenario(draw):
    n = next(_example)
    symbols = [f"L{n}A", f"L{n}B"]
    strategies = []
    for _ in range(draw(st.integers(1, 4))):
        events = []
        delays = DELAYS[:3] if draw(st.booleans()) else DELAYS  # a bot that reports live, or not always
        if draw(st.integers(0, 3)):  # most start with money
            when = at(draw(st.integers(0, 10)), 0)
            events.append(("cash", "deposit", D(100_000), when, when + draw(st.sampled_from(delays))))
        for _ in range(draw(st.integers(0, 12))):
            when = at(draw(st.integers(0, len(DAYS) - 1)), draw(st.integers(0, 300)))
            arrived = when + draw(st.sampled_from(delays))
            if draw(st.integers(0, 3)) == 0:
                events.append(
                    (
                        "cash",
                        draw(st.sampled_from(["deposit", "withdraw", "dividend"])),
                        D(draw(st.integers(1, 5000))),
                        when,
                        arrived,
                    )
                )
            else:
                events.append(
                    (
                        "order",
                        draw(st.sampled_from(symbols)),
                        draw(st.sampled_from(["buy", "sell"])),
                        D(draw(st.integers(1, 20))),
                        D(draw(st.integers(50, 150))),
                        draw(st.sampled_from(["filled", "filled", "pending"])),
                        when,
                        arrived,
                    )
                )
        strategies.append(
            {
                "name": draw(st.sampled_from(NAMES)),
                "visibility": draw(st.sampled_from(["public", "private"])),
                "benchmark": draw(st.sampled_from(["SPY", "SPY", ""])),
                "events": events,
            }
        )
    total = sum(len(s["events"]) for s in strategies)
    arrival = draw(st.permutations([(i, j) for i, s in enumerate(strategies) for j in range(len(s["events"]))]))
    cuts = sorted(draw(st.sets(st.integers(1, max(1, total - 1)), max_size=3)))
    refresh_between = draw(st.booleans())
    prices = {
        s: {d: D(draw(st.integers(60, 140))) for d in DAYS if d.weekday() < 5 and draw(st.booleans())} for s in symbols
    }
    late = {
        s: {d: D(draw(st.integers(60, 140))) for d in DAYS[-draw(st.integers(0, 10)) :] if d.weekday() < 5}
        for s in symbols
    }
    changes = draw(
        st.lists(
            st.tuples(
                st.integers(0, len(strategies) - 1),
                st.fixed_dictionaries(
                    {},
                    optional={
                        "visibility": st.sampled_from(["public", "private"]),
                        "name": st.sampled_from(NAMES),
                        "benchmark": st.sampled_from(["spy", "", "SPY"]),
                    },
                ),
            ),
            max_size=4,
        )
    )
    return strategies, arrival, cuts, refresh_between, prices, late, changes


def build_event(sid: uuid.UUID, spec):
    if spec[0] == "cash":
        _, kind, amount, when, arrived = spec
        return CashRecorded(
            CashEvent(
                id=uuid.uuid4(),
                strategy_id=sid,
                event_type=kind,
                amount=-amount if kind == "withdraw" else amount,
                occurred_at=when,
                external_id=None,
                related_symbol=None,
                note=None,
                created_at=arrived,
            )
        )
    _, symbol, side, qty, price, status, when, arrived = spec
    return OrderRecorded(
        Order(
            id=uuid.uuid4(),
            strategy_id=sid,
            symbol=symbol,
            side=side,
            quantity=qty,
            price=price,
            fees=D(0),
            order_type="market",
            status=status,
            executed_at=when,
            created_at=arrived,
            external_order_id=None,
            details=None,
        )
    )


def event_id(event) -> uuid.UUID:
    return event.order.id if isinstance(event, OrderRecorded) else event.cash.id


def expected_row(db: Database, sid: uuid.UUID) -> dict:
    """What the leaderboard must say of a strategy: /performance (no benchmark, rf 0) and the events written."""
    key = readers.PerformanceKey(sid, db.ledger.nav_version(sid), None, None, 0.0, db.ledger.trials())
    perf = readers.performance(db, key)
    profile = db.identity.profile(sid)
    mine = EXPECTED[sid]
    return {
        "strategy_id": sid,
        "name": profile.name,
        "visibility": profile.visibility,
        "total_return": perf.total_return,
        "cagr": perf.cagr,
        "sharpe": perf.sharpe_ratio,
        "sortino": perf.sortino_ratio,
        "max_drawdown": perf.drawdown.max_drawdown,
        "volatility": perf.volatility_annualized,
        "track_days": perf.days or 0,
        "inception_date": perf.inception_date,
        "latest_date": perf.latest_date,
        "last_activity": mine["last_arrival"],
        "orders": mine["orders"],
        "live_orders": mine["live"],
        "live_share": mine["live"] / mine["orders"] if mine["orders"] else None,
        "psr": perf.significance.psr,
        "dsr": perf.significance.dsr,
        "min_track_record_days": perf.significance.min_track_record_days,
        "trades": perf.trading.trades,
        "win_rate": perf.trading.win_rate,
        "profit_factor": perf.trading.profit_factor,
    }


def stored_rows(db: Database) -> dict[uuid.UUID, dict]:
    with sql(db) as curs:
        return {
            r["strategy_id"]: dict(r)
            for r in curs.execute(
                "SELECT strategy_id, name, visibility, total_return, cagr, sharpe, sortino, max_drawdown, volatility,"
                " track_days, inception_date, latest_date, last_activity, orders, live_orders, live_share,"
                " psr, dsr, min_track_record_days, trades, win_rate, profit_factor FROM rm_leaderboard"
            ).fetchall()
        }


def sort_key(sort: str, descending: bool):
    """The board's order: the column, its tie-breakers (DSR ties by PSR), NULLs last either way, then the id."""
    columns = (sort, *LEADERBOARD_TIEBREAKS.get(sort, ()))

    def one(value):
        if value is None:
            return (1, 0)
        if descending:
            value = (
                -value.timestamp()
                if isinstance(value, datetime)
                else (tuple(-b for b in value.encode()) + (1,) if isinstance(value, str) else -value)
            )
        return (0, value)

    def key(row: dict):
        return (*(one(row[c]) for c in columns), row["strategy_id"])

    return key


def assert_reads_match(db: Database, rows: dict[uuid.UUID, dict]) -> None:
    """Every sort, both directions, with and without filters, paged: as the rows say."""
    public = [r for r in rows.values() if r["visibility"] == "public"]
    for sort, descending in itertools.product(LEADERBOARD_SORTS, (True, False)):
        for min_days, live_only in ((0, False), (20, False), (0, True), (LEADERBOARD_DEFAULT_MIN_DAYS, True)):
            wanted = sorted(
                (
                    r
                    for r in public
                    if r["track_days"] >= min_days
                    and (not live_only or (r["live_share"] is not None and r["live_share"] >= LIVE_ONLY_MIN_SHARE))
                ),
                key=sort_key(sort, descending),
            )
            page = db.ledger.leaderboard(sort, descending, min_days, live_only, 500, 0)
            assert page.total == len(wanted), (sort, descending, min_days, live_only)
            assert [i.strategy_id for i in page.items] == [r["strategy_id"] for r in wanted], (sort, descending)
            assert [i.rank for i in page.items] == list(range(1, len(wanted) + 1))
            if (min_days, live_only) == (0, False):  # pages of 3 add up to the whole board, ranks continue
                paged = [
                    i
                    for off in range(0, len(wanted) + 3, 3)
                    for i in db.ledger.leaderboard(sort, descending, 0, False, 3, off).items
                ]
                assert paged == page.items
            nulls = [i for i, r in enumerate(wanted) if r[sort] is None]
            assert nulls == list(range(len(wanted) - len(nulls), len(wanted)))  # NULLs last, either way


@settings(
    max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "12")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario())
def test_leaderboard_equals_performance_after_events_late_prices_and_changes(db, case):
    strategies, arrival, cuts, refresh_between, prices, late, changes = case
    sids = []
    for s in strategies:
        sid, _ = db.identity.create_strategy(
            s["name"], benchmark=s["benchmark"], owner_id=db.owner, visibility=s["visibility"], first_key=False
        )
        sids.append(sid)
    with sql(db) as curs:  # prices known before the events
        curs.executemany(
            "INSERT INTO prices (symbol, date, close) VALUES (%s, %s, %s)",
            [(s, d, c) for s, rows in prices.items() for d, c in rows.items()],
        )
    events = {
        (i, j): build_event(sids[i], spec) for i, s in enumerate(strategies) for j, spec in enumerate(s["events"])
    }
    ordered = [events[k] for k in arrival]
    for k in arrival:  # what the leaderboard must count
        spec, sid = strategies[k[0]]["events"][k[1]], sids[k[0]]
        mine = EXPECTED.setdefault(sid, {"orders": 0, "live": 0, "last_arrival": None})
        if spec[0] == "order":
            mine["orders"] += 1
            mine["live"] += spec[-1] - spec[-2] <= timedelta(seconds=LIVE_REPORTING_S)
        mine["last_arrival"] = spec[-1]
    bounds = [0, *cuts, len(ordered)]
    for lo, hi in zip(bounds, bounds[1:]):
        if lo < hi:
            db.events.append([(event_id(e), e) for e in ordered[lo:hi]])
            project_all(db)
            if refresh_between:
                drain(db)
    db.prices.write_bars([Bar(symbol=s, date=d, close=c) for s, rows in late.items() for d, c in rows.items()], "test")
    apply_price_updates(db)
    if refresh_between:
        drain(db)
    for index, change in changes:
        db.identity.update_strategy(db.owner, sids[index], StrategySettingsIn(**change))
    drain(db)

    rows = stored_rows(db)
    with sql(db) as curs:
        ledgers = {r["strategy_id"] for r in curs.execute("SELECT strategy_id FROM rm_ledger").fetchall()}
    assert set(rows) == ledgers  # a row per strategy with events
    for sid in ledgers:
        assert rows[sid] == expected_row(db, sid), sid
    board = db.ledger.leaderboard("name", False, 0, False, 500, 0)
    assert {i.strategy_id for i in board.items} == {s for s, r in rows.items() if r["visibility"] == "public"}
    for sid in sids:
        row = db.ledger.leaderboard_row(sid)
        assert (row is None) == (sid not in rows)
        if row is not None:
            assert row.name == rows[sid]["name"] and row.live_share == rows[sid]["live_share"]
            default = db.ledger.leaderboard(
                LEADERBOARD_DEFAULT_SORT, True, LEADERBOARD_DEFAULT_MIN_DAYS, False, 500, 0
            ).items
            place = [i.rank for i in default if i.strategy_id == sid]
            assert row.rank == (place[0] if place else 0)
    assert_reads_match(db, rows)

    # the leaderboard is a function of log + prices + identity: a rebuild gives the same rows
    with sql(db) as curs:
        nav = curs.execute("SELECT * FROM rm_nav_daily ORDER BY 1, 2").fetchall()
    rebuild(db)
    after = stored_rows(db)
    changed = {(s, k): (v, after[s][k]) for s in rows if s in after for k, v in rows[s].items() if after[s][k] != v}
    assert set(after) == set(rows) and not changed, changed
    with sql(db) as curs:
        assert curs.execute("SELECT * FROM rm_nav_daily ORDER BY 1, 2").fetchall() == nav
    assert refresh_leaderboard(db) == 0  # nothing stale after the swap


def test_update_strategy_rules_and_outbox(db):
    sid, _ = db.identity.create_strategy("mine", owner_id=db.owner, first_key=False)
    stranger = db.identity.insert_user(f"other-{uuid.uuid4().hex[:8]}@example.com", "x").id
    with pytest.raises(NotFound):
        db.identity.update_strategy(db.owner, uuid.uuid4(), StrategySettingsIn(name="x"))
    with pytest.raises(NotOwner):
        db.identity.update_strategy(stranger, sid, StrategySettingsIn(name="x"))
    with pytest.raises(InvalidSymbol):
        db.identity.update_strategy(db.owner, sid, StrategySettingsIn(benchmark="not a symbol"))
    with sql(db) as curs:
        before = curs.execute("SELECT coalesce(max(id), 0) AS m FROM strategy_updates").fetchone()["m"]
    profile = db.identity.update_strategy(
        db.owner,
        sid,
        StrategySettingsIn(name="renamed", visibility="public", benchmark=" qqq ", show_positions="delayed"),
    )
    assert (profile.name, profile.visibility, profile.benchmark, profile.show_positions) == (
        "renamed",
        "public",
        "QQQ",
        "delayed",
    )
    assert db.identity.profile(sid) == profile
    assert db.identity.update_strategy(db.owner, sid, StrategySettingsIn(benchmark="")).benchmark is None
    db.identity.update_strategy(db.owner, sid, StrategySettingsIn(name="renamed"))  # no change: no update row
    with sql(db) as curs:
        updates = curs.execute(
            "SELECT strategy_id, benchmark_changed FROM strategy_updates WHERE id > %s ORDER BY id", (before,)
        ).fetchall()
    assert [(r["strategy_id"], r["benchmark_changed"]) for r in updates] == [(sid, True), (sid, True)]
    assert db.identity.profile(uuid.uuid4()) is None
    # what a stranger sends is checked by the HTTP layer (400s: test_pages); here it is a caller's bug
    with pytest.raises(ValueError):
        db.ledger.leaderboard("nonsense", True, 0, False, 10, 0)
    with pytest.raises(ValueError):
        db.ledger.leaderboard("sharpe", True, 0, False, 0, 0)
    drain(db)
    assert db.ledger.leaderboard_row(sid) is None  # no events, no row


def test_version_moves_with_every_change_and_only_then(db):
    sid, _ = db.identity.create_strategy("versioned", owner_id=db.owner, visibility="public", first_key=False)
    when = at(3, 0)
    db.events.append([(e.cash.id, e) for e in [build_event(sid, ("cash", "deposit", D(100), when, when))]])
    project_all(db)
    drain(db)
    first = db.ledger.leaderboard_version()
    assert refresh_leaderboard(db) == 0 and db.ledger.leaderboard_version() == first
    db.identity.update_strategy(db.owner, sid, StrategySettingsIn(name="versioned-2"))
    drain(db)
    second = db.ledger.leaderboard_version()
    assert second != first and db.ledger.leaderboard_row(sid).name == "versioned-2"
    rebuild(db)
    assert db.ledger.leaderboard_version() != second  # another table
    assert db.ledger.leaderboard_row(sid).name == "versioned-2"
    EXPECTED[sid] = {"orders": 0, "live": 0, "last_arrival": when}


def test_an_interrupted_upkeep_refreshes_one_row_and_the_rest_later(db):
    """The daemon's upkeep stops between two rows when a partition has news (``interrupt``): a row at
    least, so that the board moves on even under news all along; the others stay stale for later."""
    partitions = db.projection.partitions()
    sids: list[uuid.UUID] = []
    while len(sids) < 3:  # three strategies of one partition
        sid, _ = db.identity.create_strategy(f"cut-{len(sids)}", owner_id=db.owner, first_key=False)
        if not sids or partition_of(sid, partitions) == partition_of(sids[0], partitions):
            sids.append(sid)
    drain(db)  # their creation is followed first: no strategy update left to refresh them all at once
    when = at(4, 0)
    db.events.append(
        [(e.cash.id, e) for sid in sids for e in [build_event(sid, ("cash", "deposit", D(100), when, when))]]
    )
    project_all(db)
    asked = []
    refresh_leaderboard(db, partition_of(sids[0], partitions), interrupt=lambda: asked.append(1) or True)
    assert asked and sum(db.ledger.leaderboard_row(s) is not None for s in sids) == 1
    drain(db)
    assert all(db.ledger.leaderboard_row(s) is not None for s in sids)
    for sid in sids:
        EXPECTED[sid] = {"orders": 0, "live": 0, "last_arrival": when}


def test_several_partitions_rows_in_one_transaction_and_a_busy_lock_left_for_later(db):
    """The daemon's rounds refresh the stale rows of several partitions in one transaction
    (``refresh_partitions``): exactly those partitions' rows, the same rows as a partition at a time;
    a partition whose lock another transaction holds is left out, stale, for the next round."""
    partitions = db.projection.partitions()
    by_partition: dict[int, uuid.UUID] = {}
    while len(by_partition) < 3:  # a strategy in each of three partitions
        sid, _ = db.identity.create_strategy(f"grouped-{len(by_partition)}", owner_id=db.owner, first_key=False)
        by_partition.setdefault(partition_of(sid, partitions), sid)
    drain(db)  # their creation is followed first (strategy updates)
    when = at(5, 0)
    db.events.append(
        [
            (e.cash.id, e)
            for sid in by_partition.values()
            for e in [build_event(sid, ("cash", "deposit", D(250), when, when))]
        ]
    )
    project_all(db)
    (a, sa), (b, sb), (c, sc) = sorted(by_partition.items())
    with db.projection.writing(c):  # another transaction holds c's lock
        done, held = refresh_partitions(db, [a, b, c])
    assert sorted(held) == [a, b] and done >= 2
    assert db.ledger.leaderboard_row(sa) is not None and db.ledger.leaderboard_row(sb) is not None
    assert db.ledger.leaderboard_row(sc) is None  # left stale: its partition was not held
    with sql(db) as curs:  # rows computed a partition at a time are the same
        grouped = {
            r["strategy_id"]: r
            for r in curs.execute("SELECT * FROM rm_leaderboard WHERE strategy_id = ANY(%s)", ([sa, sb],)).fetchall()
        }
        curs.execute("DELETE FROM rm_leaderboard WHERE strategy_id = ANY(%s)", ([sa, sb],))
    for partition in (a, b):
        refresh_leaderboard(db, partition)
    with sql(db) as curs:
        alone = {
            r["strategy_id"]: r
            for r in curs.execute("SELECT * FROM rm_leaderboard WHERE strategy_id = ANY(%s)", ([sa, sb],)).fetchall()
        }
    volatile = {"refreshed_at", "trials_version", "dsr"}  # stamped by each write; the DSR follows the count
    assert {s: {k: v for k, v in r.items() if k not in volatile} for s, r in grouped.items()} == {
        s: {k: v for k, v in r.items() if k not in volatile} for s, r in alone.items()
    }
    drain(db)
    assert db.ledger.leaderboard_row(sc) is not None
    for sid in by_partition.values():
        EXPECTED[sid] = {"orders": 0, "live": 0, "last_arrival": when}


def test_an_order_after_the_last_priced_day_keeps_the_nav_figures_exactly(db):
    """An order dated after the last close (a live bot between two closes) leaves the NAV rows as they
    were: the refresh keeps the row's NAV figures (same digest) instead of computing them again, and
    what it keeps equals a computation from scratch, column for column."""
    sid, _ = db.identity.create_strategy("kept", owner_id=db.owner, visibility="public", first_key=False)
    priced = [d for d in DAYS if d.weekday() < 5]
    deposit = at(2, 0)
    specs = [("cash", "deposit", D(10_000), deposit, deposit)]
    specs += [("order", "SPY", "buy" if i % 3 else "sell", D(2), D(500), "filled", at(3 + 2 * i, 5), at(3 + 2 * i, 6))
              for i in range(20)]  # fmt: skip
    db.events.append([(event_id(e), e) for e in (build_event(sid, spec) for spec in specs)])
    project_all(db)
    drain(db)
    columns = [c for c in LEADERBOARD_COLUMNS if c != "strategy_id"]

    def row() -> dict:
        with sql(db) as curs:
            found = curs.execute(
                f"SELECT {', '.join(columns)} FROM rm_leaderboard WHERE strategy_id = %s", (sid,)
            ).fetchone()
        assert found is not None
        return found

    before = row()
    assert before["nav_digest"] and before["track_days"] > 0 and before["sharpe_daily"] is not None
    late = datetime.combine(priced[-1] + timedelta(days=3), datetime.min.time(), UTC) + timedelta(hours=15)
    db.events.append(
        [(event_id(e), e) for e in [build_event(sid, ("order", "SPY", "buy", D(1), D(510), "filled", late, late))]]
    )
    project_all(db)
    with db.projection.writing(partition_of(sid, db.projection.partitions())) as writer:
        inputs = writer.board.inputs(sid)  # the NAV rows are not read again: the figures are kept
    assert inputs is not None and inputs["nav"] == [] and inputs["kept"]["sharpe_daily"] == before["sharpe_daily"]
    drain(db)
    kept = row()
    assert kept["orders"] == before["orders"] + 1 and kept["nav_version"] != before["nav_version"]
    assert kept["nav_digest"] == before["nav_digest"]
    assert {c: kept[c] for c in NAV_FIGURES} == {c: before[c] for c in NAV_FIGURES}
    with sql(db) as curs:  # the same row computed from scratch
        curs.execute("UPDATE rm_leaderboard SET nav_digest = NULL, nav_version = NULL WHERE strategy_id = %s", (sid,))
    drain(db)
    assert row() == kept
    EXPECTED[sid] = {"orders": 21, "live": 21, "last_arrival": late}


def test_recent_orders_and_cash_newest_first_and_delayed(db):
    sid, _ = db.identity.create_strategy("recent", owner_id=db.owner, first_key=False)
    base = datetime(2025, 2, 3, 15, tzinfo=UTC)
    events = [
        build_event(
            sid,
            (
                "order",
                "SPY",
                "buy",
                D(1),
                D(500),
                "filled",
                base + timedelta(days=i),
                base + timedelta(days=i, minutes=1),
            ),
        )
        for i in range(4)
    ]
    events.append(build_event(sid, ("cash", "deposit", D(10000), base - timedelta(days=1), base + timedelta(days=9))))
    db.events.append([(event_id(e), e) for e in events])
    project_all(db)
    newest = db.ledger.recent_orders(sid, 3)
    assert [o.executed_at for o in newest] == [base + timedelta(days=i) for i in (3, 2, 1)]
    assert [o.executed_at for o in db.ledger.recent_orders(sid, 10, base + timedelta(days=2))] == [
        base + timedelta(days=1),
        base,
    ]  # only what was executed before the cut-off
    assert [c.amount for c in db.ledger.recent_cash(sid, 5)] == [D(10000)]
    # the deposit occurred before the cut-off: shown, however late it arrived (issue 24: executed, not reported)
    assert [c.amount for c in db.ledger.recent_cash(sid, 5, base)] == [D(10000)]
    assert db.ledger.recent_cash(sid, 5, base - timedelta(days=1)) == []


def test_the_projector_daemon_keeps_the_leaderboard(stack):
    """Through the real processes: an order over HTTP, a rename by the owner; the daemon refreshes both."""
    sid, auth = stack.new_strategy("daemon-board")
    now = datetime.now(UTC).replace(microsecond=0)
    r = stack.post(
        sid,
        "cash",
        {"event_type": "deposit", "amount": 1000, "occurred_at": (now - timedelta(days=2)).isoformat()},
        auth,
    )
    assert r.status_code in (200, 201), r.text
    r = stack.post(
        sid,
        "orders",
        {
            "orders": [
                {
                    "symbol": "DBRD",
                    "side": "buy",
                    "quantity": 1,
                    "price": 10,
                    "executed_at": (now - timedelta(minutes=1)).isoformat(),
                }
            ]
        },
        auth,
    )
    assert r.status_code in (200, 201), r.text
    uid = uuid.UUID(sid)
    wait_until(
        lambda: (row := stack.db.ledger.leaderboard_row(uid)) is not None and row.orders == 1, 20, "the leaderboard row"
    )
    row = stack.db.ledger.leaderboard_row(uid)
    assert row.live_share == 1.0 and row.last_activity is not None and row.name == "daemon-board"
    assert stack.db.ledger.chain(uid).events == 2
    owner = stack.db.identity.insert_user(f"d-{uuid.uuid4().hex[:8]}@example.com", "x").id
    with stack.sql() as curs:  # give the strategy an owner, then rename it the owner's way
        curs.execute("UPDATE strategies SET owner_id = %s WHERE id = %s", (owner, uid))
    stack.db.identity.update_strategy(owner, uid, StrategySettingsIn(name="renamed-board", visibility="public"))
    wait_until(lambda: stack.db.ledger.leaderboard_row(uid).name == "renamed-board", 20, "the rename")
    started = time.monotonic()
    assert any(i.strategy_id == uid for i in stack.db.ledger.leaderboard("name", False, 0, False, 500, 0).items)
    assert time.monotonic() - started < 5
    _ = LeaderboardRow  # the shape the pages read
