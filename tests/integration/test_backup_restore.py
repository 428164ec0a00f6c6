"""Backup and restore (tools/backup.py) through the real services, real PostgreSQL and NATS.

Data goes in through the APIs (accounts, orders with and without price, cash, a snapshot with
log_deltas) over two weeks of prices and a late stock split; once projected and the leaderboard
settled, every read model and every strategy's API answers are recorded. The backup is restored
into a fresh empty database, the read models are rebuilt by `botranks projector rebuild`, and
they must equal the originals; a stack started on the restored database must answer the same and
accept the original API keys and passwords. A restore into a database that holds data is refused
and changes nothing.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest

from botranks_domain.accounts import StrategySettingsIn
from botranks_domain.bars import Bar, Split
from devtools.stack import ROOT, Stack, sql, wait_until
from libs.infra.db import Database
from libs.infra.schema import MIGRATIONS
from tools.backup import BACKED_UP, BackupError, RestoreRefused, backup, restore

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery"
EX_DATE = date(2026, 3, 9)  # ACME splits 4-for-1 (a Monday, in the middle of the two weeks)
DAYS = [date(2026, 3, 2) + timedelta(days=i) for i in range(12) if (date(2026, 3, 2) + timedelta(days=i)).weekday() < 5]

#: columns that say when or how the projector wrote a row, not what the log and prices say
NOT_COMPARED = {
    ("rm_ledger", "updated_at"),  # now() of the last write (the leaderboard's staleness mark)
    ("rm_leaderboard", "refreshed_at"),  # clock_timestamp() of the refresh (the pages' ETag)
    ("rm_leaderboard", "nav_version"),  # = rm_ledger.updated_at it was computed from
    ("rm_leaderboard", "trials_version"),  # the count of rm_trials it was judged against: a counter
    ("rm_trials", "version"),  # a counter of the recounts that changed something
    ("rm_trials", "refreshed_at"),
    ("rm_quarantine", "quarantined_at"),
    ("rm_reconciliation_log", "id"),  # a bigserial: the order of insertion, not data
}


def _bars() -> list[Bar]:
    bars = []
    for i, day in enumerate(DAYS):
        bars.append(Bar("AAPL", day, Decimal("190") + i))
        bars.append(Bar("MSFT", day, Decimal("410") - i * Decimal("1.5")))
        bars.append(Bar("SPY", day, Decimal("510") + i * Decimal("0.75")))
        acme = Decimal("400") + i * 2  # as traded: about 400 before the ex-date, about 100 on and after it
        bars.append(Bar("ACME", day, acme if day < EX_DATE else (acme / 4).quantize(Decimal("0.01"))))
    return bars


def _ok(response: httpx.Response, *statuses: int) -> dict:
    assert response.status_code in (statuses or (200, 201)), response.text
    return response.json()


def _register(stack: Stack, email: str) -> httpx.Client:
    """An account, signed in (the session cookie lives in the returned client)."""
    client = httpx.Client(base_url=f"http://127.0.0.1:{stack.command_port}", timeout=60)
    _ok(client.post("/auth/register", json={"email": email, "password": PASSWORD}), 201)
    _ok(client.post("/auth/login", json={"email": email, "password": PASSWORD}), 200)
    return client


def _populate(stack: Stack) -> dict[str, dict[str, str]]:
    """Strategies, events, prices and a late split, through the real services; {strategy id: auth header}."""
    stack.db.prices.write_bars(_bars(), "test")
    strategies: dict[str, dict[str, str]] = {}

    # alpha: an account's strategy (accounts API), public, benchmark SPY; orders with and without price,
    # through the split, a withdrawal and a snapshot that disagrees with the derived positions
    owner = _register(stack, "owner@example.com")
    alpha = _ok(owner.post("/strategies/", json={"name": "alpha", "visibility": "public", "benchmark": "SPY"}), 201)
    alpha_id = alpha["id"]
    key = _ok(owner.post(f"/strategies/{alpha_id}/api-keys", json={"name": "bot"}), 201)["plaintext"]
    auth = {"Authorization": f"Bearer {key}"}
    strategies[alpha_id] = auth
    _ok(
        stack.post(
            alpha_id,
            "cash",
            {"event_type": "deposit", "amount": 100000, "external_id": "dep-1", "occurred_at": "2026-03-02T13:00:00Z"},
            auth,
        ),
        201,
    )
    _ok(
        stack.post(
            alpha_id,
            "orders",
            {
                "orders": [
                    {
                        "symbol": "AAPL",
                        "side": "buy",
                        "quantity": 100,
                        "price": 190.5,
                        "fees": 1,
                        "executed_at": "2026-03-02T15:00:00Z",
                        "external_order_id": "a-1",
                    },
                    {
                        "symbol": "ACME",
                        "side": "buy",
                        "quantity": 20,  # no price: the close of 2026-03-03
                        "executed_at": "2026-03-03T15:00:00Z",
                        "external_order_id": "a-2",
                    },
                ]
            },
            auth,
        )
    )
    _ok(
        stack.post(
            alpha_id,
            "orders",
            {
                "orders": [
                    {
                        "symbol": "AAPL",
                        "side": "sell",
                        "quantity": 50,
                        "price": 195,
                        "executed_at": "2026-03-05T15:00:00Z",
                        "external_order_id": "a-3",
                    },
                    {
                        "symbol": "ACME",
                        "side": "sell",
                        "quantity": 10,  # post-split units, no price
                        "executed_at": "2026-03-10T15:00:00Z",
                        "external_order_id": "a-4",
                    },
                ]
            },
            auth,
        )
    )
    _ok(
        stack.post(
            alpha_id,
            "cash",
            {"event_type": "withdraw", "amount": -1000, "external_id": "wd-1", "occurred_at": "2026-03-11T13:00:00Z"},
            auth,
        ),
        201,
    )

    # beta: an operator-created private strategy (the CLI's way), MSFT without price, AAPL with fees
    beta_id, beta_auth = stack.new_strategy("beta")
    strategies[beta_id] = beta_auth
    _ok(
        stack.post(
            beta_id,
            "cash",
            {"event_type": "deposit", "amount": 50000, "occurred_at": "2026-03-02T12:00:00Z"},
            beta_auth,
        ),
        201,
    )
    _ok(
        stack.post(
            beta_id,
            "orders",
            {
                "orders": [
                    {"symbol": "MSFT", "side": "buy", "quantity": 30, "executed_at": "2026-03-04T15:00:00Z"},
                    {
                        "symbol": "AAPL",
                        "side": "buy",
                        "quantity": 40,
                        "price": 193,
                        "fees": 2.5,
                        "executed_at": "2026-03-06T15:00:00Z",
                    },
                    {"symbol": "MSFT", "side": "sell", "quantity": 10, "executed_at": "2026-03-12T15:00:00Z"},
                ]
            },
            beta_auth,
        )
    )

    # gamma: public, publishes its positions, holds ACME through the split with a price given
    gamma, gamma_key = stack.db.identity.create_strategy("gamma", visibility="public", show_positions="live")
    gamma_id, gamma_auth = str(gamma), {"Authorization": f"Bearer {gamma_key}"}
    strategies[gamma_id] = gamma_auth
    _ok(
        stack.post(
            gamma_id,
            "cash",
            {"event_type": "deposit", "amount": 20000, "occurred_at": "2026-03-02T12:00:00Z"},
            gamma_auth,
        ),
        201,
    )
    _ok(
        stack.post(
            gamma_id,
            "orders",
            {
                "orders": [
                    {
                        "symbol": "ACME",
                        "side": "buy",
                        "quantity": 25,
                        "price": 405,
                        "executed_at": "2026-03-04T15:00:00Z",
                        "external_order_id": "g-1",
                    }
                ]
            },
            gamma_auth,
        )
    )
    stack.wait_projected()

    # the split becomes known late: every holder is re-derived from the ex-date on
    assert stack.db.prices.write_splits([Split("ACME", EX_DATE, Decimal(1), Decimal(4))], "test") == 1
    for sid in (alpha_id, gamma_id):
        wait_until(
            lambda sid=sid: _corporate_actions(stack, sid, strategies[sid]) == 1, 30, "the split to reach its holders"
        )

    # alpha's snapshot after the split: 75 ACME (derived: 70) and AAPL as derived, with the deltas logged
    outcome = _ok(
        stack.post(
            alpha_id,
            "positions/snapshot",
            {
                "positions": [
                    {"symbol": "AAPL", "quantity": 50, "cost_basis": 190.51},
                    {"symbol": "ACME", "quantity": 75, "cost_basis": 100},
                ],
                "taken_at": "2026-03-12T20:00:00Z",
                "log_deltas": True,
            },
            auth,
        )
    )
    assert outcome["reconciliation_entries"] >= 1, outcome

    # a change of public face, recorded in strategy_updates
    owner_id = stack.db.identity.user_id("owner@example.com")
    stack.db.identity.update_strategy(
        owner_id, UUID(alpha_id), StrategySettingsIn(name="alpha prime", show_positions="delayed")
    )
    wait_until(lambda: _leaderboard_name(stack, alpha_id) == "alpha prime", 30, "the rename to reach the leaderboard")
    owner.close()
    return strategies


def _leaderboard_name(stack: Stack, sid: str) -> str | None:
    with stack.sql() as curs:
        row = curs.execute("SELECT name FROM rm_leaderboard WHERE strategy_id = %s", (UUID(sid),)).fetchone()
    return None if row is None else row["name"]


def _corporate_actions(stack: Stack, sid: str, auth: dict[str, str]) -> int:
    r = stack.query.get(f"/api/v1/strategies/{sid}/corporate-actions", headers=auth)
    return len(r.json()["items"]) if r.status_code == 200 else 0


def _leaderboard_fresh(db: Database) -> bool:
    """Every strategy with a ledger has a leaderboard row computed from its latest NAV."""
    with sql(db) as curs:
        return (
            curs.execute(
                "SELECT count(*) AS n FROM rm_ledger l LEFT JOIN rm_leaderboard b USING (strategy_id)"
                " WHERE b.nav_version IS DISTINCT FROM l.updated_at"
            ).fetchone()["n"]
            == 0
        )


def _settle(stack: Stack) -> dict[str, list[dict]]:
    """Wait until everything is projected, the leaderboard is fresh and the read models stay the same
    for a while (nothing the projector follows is left to do); returns them."""
    stack.wait_projected(60)
    wait_until(lambda: _leaderboard_fresh(stack.db), 60, "the leaderboard to be fresh")
    seen = [_read_models(stack.db)]

    def unchanged() -> bool:
        time.sleep(1.0)
        now = _read_models(stack.db)
        if now == seen[0] and _leaderboard_fresh(stack.db):
            return True
        seen[0] = now
        return False

    wait_until(unchanged, 60, "the read models to stop changing")
    return seen[0]


def _read_models(db: Database) -> dict[str, list[dict]]:
    """Every rm_* table, every column but those of NOT_COMPARED, rows sorted."""
    with sql(db) as curs:
        tables = [
            r["table_name"]
            for r in curs.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
                " AND table_name LIKE 'rm\\_%' ORDER BY 1"
            ).fetchall()
        ]
        models = {}
        for table in tables:
            columns = [
                r["column_name"]
                for r in curs.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public'"
                    " AND table_name = %s ORDER BY ordinal_position",
                    (table,),
                ).fetchall()
                if (table, r["column_name"]) not in NOT_COMPARED
            ]
            query = psycopg.sql.SQL("SELECT {} FROM {} ORDER BY {}").format(
                psycopg.sql.SQL(", ").join(map(psycopg.sql.Identifier, columns)),
                psycopg.sql.Identifier(table),
                psycopg.sql.SQL(", ").join(psycopg.sql.Literal(i + 1) for i in range(len(columns))),
            )
            models[table] = curs.execute(query).fetchall()  # dict rows: a difference names its column
    return models


def _differences(table: str, restored: list[dict], original: list[dict]) -> list[str]:
    """Where two versions of a read model differ, column by column (empty: equal)."""
    if len(restored) != len(original):
        return [f"{table}: {len(restored)} rows restored, {len(original)} originally"]
    return [
        f"{table} row {i} {column}: restored {r[column]!r}, originally {o[column]!r}"
        for i, (r, o) in enumerate(zip(restored, original))
        for column in o
        if r.get(column) != o[column]
    ]


def _answers(stack: Stack, strategies: dict[str, dict[str, str]]) -> dict[str, Any]:
    """What each strategy's API says (JSON), and its NAV as CSV."""
    out: dict[str, Any] = {}
    for sid, auth in strategies.items():
        base = f"/api/v1/strategies/{sid}"
        for what in (
            "state",
            "nav",
            "performance",
            "performance?benchmark=SPY&risk_free_rate=0.045",
            "corporate-actions",
            "reconciliation",
            "orders?limit=100",
            "cash?limit=100",
        ):
            out[f"{sid}/{what}"] = _ok(stack.query.get(f"{base}/{what}", headers=auth), 200)
        csv = stack.query.get(f"{base}/nav", headers={**auth, "Accept": "text/csv"})
        assert csv.status_code == 200
        out[f"{sid}/nav.csv"] = csv.text
        events = stack.query.get(f"{base}/events", headers=auth)
        assert events.status_code == 200
        out[f"{sid}/events"] = events.text  # the hash chain's input, byte for byte
    return out


def _fingerprint(url: str) -> dict[str, Any]:
    """The relations of the public schema and a digest of every backed-up table's rows."""
    with psycopg.connect(url, autocommit=True) as conn:
        relations = [
            r[0]
            for r in conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'public' ORDER BY 1"
            ).fetchall()
        ]
        digests = {}
        for table in BACKED_UP:
            if table in relations:
                rows = conn.execute(
                    psycopg.sql.SQL("SELECT t::text FROM {} AS t ORDER BY 1").format(psycopg.sql.Identifier(table))
                ).fetchall()
                digests[table] = hashlib.sha256("\n".join(r[0] for r in rows).encode()).hexdigest()
    return {"relations": relations, "digests": digests}


@pytest.fixture(scope="module")
def original(stack, tmp_path_factory):
    """The populated, settled stack, what it says, and its backup."""
    strategies = _populate(stack)
    models = _settle(stack)
    assert models["rm_leaderboard"] and models["rm_chain"] and models["rm_chain_days"]
    assert models["rm_corporate_actions"] and models["rm_reconciliation_log"]
    answers = _answers(stack, strategies)
    path = tmp_path_factory.mktemp("backup") / "botranks.dump"
    summary = backup(stack.database_url, path)
    return {
        "strategies": strategies,
        "models": models,
        "legacy": stack.read_models(),
        "answers": answers,
        "path": path,
        "summary": summary,
    }


def _rebuild(database_url: str, home: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTRANKS_")}
    env.update(BOTRANKS_DATABASE_URL=database_url, BOTRANKS_HOME=str(home), BOTRANKS_LOG_LEVEL="warning")
    done = subprocess.run(
        [sys.executable, "-m", "tools.cli", "projector", "rebuild"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr


def test_backup_restore_rebuild_gives_the_same_read_models_and_answers(
    stack, original, backends, make_database, tmp_path
):
    _, nats_url = backends
    summary = original["summary"]
    assert summary["bytes"] == original["path"].stat().st_size > 0
    assert set(summary["tables"]) == set(BACKED_UP)
    assert summary["events"] == stack.event_count() == summary["last_notification_id"] > 10
    assert summary["tables"]["strategies"] == 3 and summary["tables"]["users"] == 1
    assert summary["tables"]["splits"] == 1 and summary["tables"]["prices"] == 4 * len(DAYS)
    assert summary["store_id"] == stack.db.events.store_id

    target = make_database()
    restored = restore(target, original["path"])
    assert restored["tables"] == summary["tables"]
    assert (restored["events"], restored["last_notification_id"], restored["store_id"]) == (
        summary["events"],
        summary["last_notification_id"],
        summary["store_id"],
    )

    # before the rebuild: the truth is back, the read models are empty, the relay starts over
    db = Database(target, pool_size=1)
    try:
        with sql(db) as curs:
            assert curs.execute("SELECT count(*) AS n FROM rm_nav_daily").fetchone()["n"] == 0
            assert curs.execute("SELECT notification_id FROM relay_position").fetchone()["notification_id"] == 0
            assert [r["version"] for r in curs.execute("SELECT version FROM schema_migrations ORDER BY 1")] == [
                version for version, _ in MIGRATIONS
            ]
            sequence = curs.execute("SELECT last_value, is_called FROM botranks_events_notification_id_seq").fetchone()
            assert (sequence["last_value"], sequence["is_called"]) == (summary["last_notification_id"], True)
        _rebuild(target, tmp_path / "cli-home")
        assert db.projection.position() == summary["last_notification_id"]
        models = _read_models(db)
    finally:
        db.close()
    assert set(models) == set(original["models"])
    differences = [d for table, rows in original["models"].items() for d in _differences(table, models[table], rows)]
    assert not differences, "\n".join(differences)

    # a stack on the restored database answers the same, to the original keys and passwords
    with tempfile.TemporaryDirectory() as home:
        again = Stack(target, nats_url, Path(home))
        try:
            again.start()
            assert again.read_models() == original["legacy"]
            answers = _answers(again, original["strategies"])
            for name, answer in original["answers"].items():
                assert answers[name] == answer, name
            sid, auth = next(iter(original["strategies"].items()))
            wrong = {"Authorization": "Bearer fq_live_" + "x" * 43}
            assert again.query.get(f"/api/v1/strategies/{sid}/state", headers=wrong).status_code == 401
            # the restored log takes new events, numbered after the old ones, projected as usual; the
            # same events sent to the original give the same state, NAV and performance on both
            for system in (again, stack):
                for number, (strategy, key) in enumerate(original["strategies"].items()):
                    r = system.post(
                        strategy,
                        "orders",
                        {
                            "orders": [
                                {
                                    "symbol": "AAPL",
                                    "side": "buy",
                                    "quantity": 1 + number,
                                    "price": 200,
                                    "executed_at": "2026-03-13T18:00:00Z",
                                    "external_order_id": "after-restore",
                                }
                            ]
                        },
                        key,
                    )
                    assert r.status_code == 200 and r.json()["counts"]["accepted"] == 1, r.text
                _settle(system)
            assert again.event_count() == summary["last_notification_id"] + len(original["strategies"])
            after, after_original = _answers(again, original["strategies"]), _answers(stack, original["strategies"])
            for name, answer in after_original.items():
                if name.rsplit("/", 1)[-1].split("?")[0] in (
                    "state",
                    "nav",
                    "nav.csv",
                    "performance",
                    "corporate-actions",
                    "reconciliation",
                ):
                    assert after[name] == answer, name
            # the owner signs in with the old password and still owns the strategy
            client = httpx.Client(base_url=f"http://127.0.0.1:{again.command_port}", timeout=60)
            try:
                _ok(client.post("/auth/login", json={"email": "owner@example.com", "password": PASSWORD}), 200)
                mine = _ok(client.get("/strategies/"), 200)
                assert [s["name"] for s in mine] == ["alpha prime"]
            finally:
                client.close()
        finally:
            again.stop()


def test_restore_into_a_database_with_data_is_refused_and_changes_nothing(stack, original, make_database):
    # the original itself (a live system with events)
    before = _fingerprint(stack.database_url)
    with pytest.raises(RestoreRefused, match="already holds data.*stored events"):
        restore(stack.database_url, original["path"])
    assert _fingerprint(stack.database_url) == before

    # a database of something else: refused before a single table is created
    foreign = make_database()
    with psycopg.connect(foreign, autocommit=True) as conn:
        conn.execute("CREATE TABLE invoices (id int PRIMARY KEY)")
    before = _fingerprint(foreign)
    with pytest.raises(RestoreRefused, match="no BotRanks schema"):
        restore(foreign, original["path"])
    assert _fingerprint(foreign) == before == {"relations": ["invoices", "invoices_pkey"], "digests": {}}

    # a BotRanks schema with no data (`botranks up` started once) is empty: it gets the backup's store id
    fresh = make_database()
    db = Database(fresh, pool_size=1).create_tables()
    try:
        assert db.events.store_id != original["summary"]["store_id"]
    finally:
        db.close()
    assert restore(fresh, original["path"])["store_id"] == original["summary"]["store_id"]
    with psycopg.connect(fresh, autocommit=True) as conn:
        assert conn.execute("SELECT store_id FROM botranks_meta").fetchall() == [(original["summary"]["store_id"],)]


def test_not_a_backup_or_a_backup_newer_than_the_code_is_refused(make_database, tmp_path):
    bogus = tmp_path / "bogus.dump"
    bogus.write_bytes(b"not an archive")
    target = make_database()
    with pytest.raises(BackupError, match="pg_restore"):
        restore(target, bogus)
    assert _fingerprint(target) == {"relations": [], "digests": {}}  # nothing was created

    # a backup of a schema this code does not know yet: the load is rolled back whole
    newer = make_database()
    db = Database(newer, pool_size=1).create_tables()
    try:
        db.identity.create_strategy("from the future")
    finally:
        db.close()
    with psycopg.connect(newer, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_migrations (version) VALUES (999)")
    backup(newer, tmp_path / "newer.dump")
    with pytest.raises(BackupError, match="schema version 999"):
        restore(target, tmp_path / "newer.dump")
    with psycopg.connect(target, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM strategies").fetchone()[0] == 0
        assert conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0] == MIGRATIONS[-1][0]
        assert conn.execute("SELECT count(*) FROM botranks_meta").fetchone()[0] == 1
