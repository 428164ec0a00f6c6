"""`botranks strategy list` and `botranks strategy delete` through the real services.

Two public strategies trade; one is deleted with the CLI while the services run: its keys stop
working, its events leave the event store, every read model row of it goes (leaderboard included),
the other strategy is untouched, and a rebuild from the log gives the same read models.
"""

from __future__ import annotations

import json
import subprocess
import sys
from uuid import UUID

import pytest

from devtools.stack import ROOT, Stack, wait_until

pytestmark = pytest.mark.integration

DAYS = ["2026-03-02", "2026-03-03", "2026-03-04"]


def _cli(stack: Stack, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "tools.cli", *args], cwd=ROOT, env=stack.env, capture_output=True, text=True, timeout=300
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


def _trade(stack: Stack, name: str) -> tuple[str, dict[str, str]]:
    sid, key = stack.db.identity.create_strategy(name, visibility="public")
    auth = {"Authorization": f"Bearer {key}"}
    r = stack.post(
        str(sid),
        "cash",
        {
            "event_type": "deposit",
            "amount": "10000",
            "external_id": f"{name}-dep",
            "occurred_at": "2026-03-02T12:00:00Z",
        },
        auth,
    )
    assert r.status_code == 201, r.text
    r = stack.post(
        str(sid),
        "orders",
        {
            "orders": [
                {
                    "symbol": "ACME",
                    "side": "buy",
                    "quantity": "10",
                    "executed_at": f"{day}T15:00:00Z",
                    "external_order_id": f"{name}-{day}",
                }
                for day in DAYS
            ]
        },
        auth,
    )
    assert r.status_code == 200, r.text
    return str(sid), auth


def _rows_of(stack: Stack, strategy_id: str) -> dict[str, int]:
    with stack.sql() as curs:
        tables = [
            r["table_name"]
            for r in curs.execute(
                "SELECT table_name FROM information_schema.columns WHERE table_schema = 'public'"
                " AND column_name = 'strategy_id' AND table_name LIKE 'rm\\_%'"
            ).fetchall()
        ]
        counts = {
            t: curs.execute(f"SELECT count(*) AS n FROM {t} WHERE strategy_id = %s", (UUID(strategy_id),)).fetchone()[
                "n"
            ]
            for t in tables
        }
        counts["events"] = curs.execute(
            "SELECT count(*) AS n FROM botranks_events WHERE encode(state, 'escape') LIKE %s", (f"%{strategy_id}%",)
        ).fetchone()["n"]
    return counts


def _leaderboard_page(stack: Stack) -> str:
    r = stack.query.get("/", params={"min_days": 0})
    assert r.status_code == 200, r.text
    return r.text


def test_delete_removes_one_strategy_for_good(stack: Stack):
    stack.add_prices(
        [("ACME", day, 100 + i) for i, day in enumerate(DAYS)] + [("SPY", day, 500 + i) for i, day in enumerate(DAYS)]
    )
    doomed, doomed_auth = _trade(stack, "doomed")
    kept, kept_auth = _trade(stack, "kept")
    stack.wait_projected()
    wait_until(
        lambda: _rows_of(stack, doomed)["rm_leaderboard"] == _rows_of(stack, kept)["rm_leaderboard"] == 1,
        30,
        "both on the leaderboard",
    )
    assert "doomed" in _leaderboard_page(stack)
    listed = {row["id"]: row for row in json.loads(_cli(stack, "strategy", "list").stdout)}
    assert listed[doomed]["name"] == "doomed" and listed[doomed]["active_keys"] == 1
    before = _rows_of(stack, doomed)
    assert before["events"] == 4 and before["rm_orders"] == 3 and before["rm_leaderboard"] == 1
    kept_state = stack.state(kept, kept_auth)

    # without --yes and without a terminal: refused, nothing deleted
    refused = _cli(stack, "strategy", "delete", doomed, check=False)
    assert refused.returncode != 0 and "--yes" in refused.stderr
    assert _rows_of(stack, doomed) == before

    summary = json.loads(_cli(stack, "strategy", "delete", doomed, "--yes").stdout)
    assert summary["name"] == "doomed" and summary["events_deleted"] == 4
    assert summary["read_model_rows_deleted"] >= 3 + 1 + 1
    assert set(_rows_of(stack, doomed).values()) == {0}
    # its key is dead, for writes and reads; the public page and the leaderboard forget it
    r = stack.post(
        doomed,
        "orders",
        {"orders": [{"symbol": "ACME", "side": "buy", "quantity": "1", "executed_at": "2026-03-04T16:00:00Z"}]},
        doomed_auth,
    )
    assert r.status_code in (401, 404), r.text
    assert stack.query.get(f"/api/v1/strategies/{doomed}/state", headers=doomed_auth).status_code in (401, 404)
    page = _leaderboard_page(stack)
    assert "doomed" not in page and "kept" in page
    assert doomed not in {row["id"] for row in json.loads(_cli(stack, "strategy", "list").stdout)}
    # the other strategy is untouched and still takes orders
    assert stack.state(kept, kept_auth) == kept_state
    r = stack.post(
        kept,
        "orders",
        {"orders": [{"symbol": "ACME", "side": "sell", "quantity": "5", "executed_at": "2026-03-04T16:00:00Z"}]},
        kept_auth,
    )
    assert r.status_code == 200, r.text
    stack.wait_projected()
    assert set(_rows_of(stack, doomed).values()) == {0}

    # the log is the truth: a rebuild gives the same read models, without the deleted strategy
    models = stack.read_models()
    _cli(stack, "projector", "rebuild")
    assert stack.read_models() == models
    assert set(_rows_of(stack, doomed).values()) == {0}

    again = _cli(stack, "strategy", "delete", doomed, "--yes", check=False)
    assert again.returncode != 0 and "no strategy" in again.stderr
    bad = _cli(stack, "strategy", "delete", "not-a-uuid", "--yes", check=False)
    assert bad.returncode != 0 and "UUID" in bad.stderr
