"""Stock splits through the real services: AAPL's 4-for-1 split of 2020-08-31, imported after the fact.

Two strategies over the same real closes (shared/data, 2020): one holds AAPL as traded (closes
before the ex-date are 4x the split-adjusted ones, what really printed) and learns of the split
only when ``botranks splits import`` loads it; the other holds ``ADJAAPL``, the split-adjusted
series with no split, in post-split units from the start. Their NAV, /performance and leaderboard
figures must be the same, day by day.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from datetime import date
from decimal import Decimal

import pytest

from botranks_domain.bars import Bar
from devtools.stack import ROOT, wait_until

pytestmark = pytest.mark.integration

DATA = ROOT.parent / "shared" / "data" / "prices-2017-2022.csv"
EX_DATE = date(2020, 8, 31)
FIRST, LAST = date(2020, 7, 1), date(2020, 10, 30)


def _real_closes() -> dict[str, list[tuple[date, Decimal]]]:
    if not DATA.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{DATA} is missing (CI=true)")
        pytest.skip(f"{DATA} is missing")
    closes: dict[str, list[tuple[date, Decimal]]] = {"AAPL": [], "SPY": []}
    with DATA.open() as f:
        for row in csv.DictReader(f):
            day = date.fromisoformat(row["date"])
            if row["symbol"] in closes and FIRST <= day <= LAST:
                closes[row["symbol"]].append((day, Decimal(row["close"])))
    return closes


@pytest.fixture(scope="module")
def market(stack, tmp_path_factory):
    """AAPL as traded (x4 before the ex-date), ADJAAPL split-adjusted, SPY; the split file not yet loaded."""
    closes = _real_closes()
    bars = [Bar("AAPL", d, c * 4 if d < EX_DATE else c) for d, c in closes["AAPL"]]
    bars += [Bar("ADJAAPL", d, c) for d, c in closes["AAPL"]] + [Bar("SPY", d, c) for d, c in closes["SPY"]]
    stack.db.prices.write_bars(bars, "test")
    split_file = tmp_path_factory.mktemp("splits") / "splits.csv"
    split_file.write_text("symbol,ex_date,split_from,split_to\nAAPL,2020-08-31,1,4\n")
    return {d: c for d, c in closes["AAPL"]}, split_file


def _cli(stack, *args: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "tools.cli", *args], cwd=ROOT, env=stack.env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _nav(stack, sid, auth) -> dict[str, dict]:
    rows = stack.query.get(f"/api/v1/strategies/{sid}/nav", headers=auth).json()["series"]
    return {r["date"]: r for r in rows}


def _strategy(stack, symbol: str, quantity: int) -> tuple[str, dict]:
    """A public strategy that publishes its positions: deposit, then buy ``quantity`` of ``symbol`` at
    the day's close (no price sent)."""
    strategy_id, key = stack.db.identity.create_strategy(f"holds {symbol}", visibility="public", show_positions="live")
    sid, auth = str(strategy_id), {"Authorization": f"Bearer {key}"}
    assert (
        stack.post(
            sid, "cash", {"event_type": "deposit", "amount": "100000", "occurred_at": "2020-07-31T14:00:00Z"}, auth
        ).status_code
        == 201
    )
    r = stack.post(
        sid,
        "orders",
        {
            "orders": [
                {
                    "symbol": symbol,
                    "side": "buy",
                    "quantity": quantity,
                    "executed_at": "2020-08-03T15:00:00Z",
                    "external_order_id": "b1",
                }
            ]
        },
        auth,
    )
    assert r.status_code in (200, 201), r.text
    return sid, auth


def test_holding_through_a_split_imported_late_equals_holding_post_split_units(stack, market):
    closes, split_file = market
    held, held_auth = _strategy(stack, "AAPL", 100)
    adjusted, adjusted_auth = _strategy(stack, "ADJAAPL", 400)
    stack.wait_projected()

    # before the split is known: a 100-share position marked at a quarter of its value from the ex-date on
    state = stack.state(held, held_auth)
    assert [(p["symbol"], Decimal(str(p["quantity"]))) for p in state["positions"]] == [("AAPL", 100)]
    nav = _nav(stack, held, held_auth)
    jump = Decimal(str(nav["2020-08-31"]["total_equity"])) - Decimal(str(nav["2020-08-28"]["total_equity"]))
    assert jump < -35000  # the bogus three-quarter drop

    assert _cli(stack, "splits", "import", str(split_file)) == {"splits_written": 1, "errors": 0}
    assert _cli(stack, "splits", "import", str(split_file)) == {"splits_written": 0, "errors": 0}  # no-op twice

    basis = closes[date(2020, 8, 3)] * 4  # the fill: the unadjusted close of the order's day

    def split_applied() -> bool:
        positions = stack.state(held, held_auth)["positions"]
        return [Decimal(str(p["quantity"])) for p in positions] == [400]

    wait_until(split_applied, 20, "the late split to re-derive the strategy")
    (position,) = stack.state(held, held_auth)["positions"]
    assert Decimal(str(position["cost_basis"])) == basis / 4

    # the NAV has no jump: the same series as the post-split position held from the start
    nav, nav_adjusted = _nav(stack, held, held_auth), _nav(stack, adjusted, adjusted_auth)
    assert set(nav) == set(nav_adjusted) and "2020-08-31" in nav
    for day in nav:
        assert Decimal(str(nav[day]["total_equity"])) == Decimal(str(nav_adjusted[day]["total_equity"])), day
    move = Decimal(str(nav["2020-08-31"]["total_equity"])) - Decimal(str(nav["2020-08-28"]["total_equity"]))
    assert move == 400 * (closes[EX_DATE] - closes[date(2020, 8, 28)])  # the day's price move, nothing else
    assert nav["2020-08-31"]["external_flow"] == 0

    perf = stack.query.get(f"/api/v1/strategies/{held}/performance", headers=held_auth).json()
    perf_adjusted = stack.query.get(f"/api/v1/strategies/{adjusted}/performance", headers=adjusted_auth).json()
    perf.pop("strategy_id"), perf_adjusted.pop("strategy_id")
    assert {k: v for k, v in perf.items() if perf_adjusted.get(k) != v} == {}
    assert perf["drawdown"]["max_drawdown"] > -0.2  # no three-quarter drop in the figures

    actions = stack.query.get(f"/api/v1/strategies/{held}/corporate-actions", headers=held_auth).json()
    assert actions["items"] == [
        {
            "ex_date": "2020-08-31",
            "symbol": "AAPL",
            "kind": "split",
            "ratio": "4:1",
            "split_from": 1,
            "split_to": 4,
            "quantity_before": 100,
            "quantity_after": 400,
            "cost_basis_before": float(basis),
            "cost_basis_after": float(basis / 4),
        }
    ]
    assert (
        stack.query.get(f"/api/v1/strategies/{adjusted}/corporate-actions", headers=adjusted_auth).json()["items"] == []
    )

    # subscribers see it on the strategy's page, and its positions in post-split units
    page = stack.query.get(f"/s/{held}")
    assert page.status_code == 200 and 'id="splits-table"' in page.text
    assert "<td>2020-08-31</td><td>AAPL</td><td>4:1</td>" in page.text
    summary = stack.query.get(f"/p/strategies/{held}").json()
    assert [(a["symbol"], a["quantity_after"]) for a in summary["corporate_actions"]] == [("AAPL", 400)]
    assert [(p["symbol"], p["quantity"]) for p in summary["positions"]["positions"]] == [("AAPL", 400)]
    assert 'id="splits-table"' not in stack.query.get(f"/s/{adjusted}").text

    # the leaderboard sees the same figures for both
    def boards():
        rows = [stack.db.ledger.leaderboard_row(s) for s in (held, adjusted)]
        return None if None in rows else rows

    wait_until(
        lambda: boards() is not None and boards()[0].total_return == boards()[1].total_return,
        20,
        "the leaderboard to see the split",
    )


def test_orders_on_both_sides_of_a_split_in_any_arrival_order(stack, market):
    closes, split_file = market
    _cli(stack, "splits", "import", str(split_file))
    held, held_auth = _strategy(stack, "AAPL", 100)
    adjusted, adjusted_auth = _strategy(stack, "ADJAAPL", 400)
    # after the split: sell 100 post-split shares with no price (the unadjusted close of the day) ...
    for sid, auth, symbol, quantity in ((held, held_auth, "AAPL", 100), (adjusted, adjusted_auth, "ADJAAPL", 100)):
        r = stack.post(
            sid,
            "orders",
            {
                "orders": [
                    {"symbol": symbol, "side": "sell", "quantity": quantity, "executed_at": "2020-09-15T15:00:00Z"}
                ]
            },
            auth,
        )
        assert r.status_code in (200, 201), r.text
        assert Decimal(str(r.json()["accepted"][0]["price"])) == closes[date(2020, 9, 15)]
    # ... then, arriving later, a back-dated buy before the split: 10 pre-split shares = 40 post-split
    for sid, auth, symbol, quantity, price in (
        (held, held_auth, "AAPL", 10, closes[date(2020, 8, 20)] * 4),
        (adjusted, adjusted_auth, "ADJAAPL", 40, closes[date(2020, 8, 20)]),
    ):
        r = stack.post(
            sid,
            "orders",
            {
                "orders": [
                    {
                        "symbol": symbol,
                        "side": "buy",
                        "quantity": quantity,
                        "price": str(price),
                        "executed_at": "2020-08-20T15:00:00Z",
                    }
                ]
            },
            auth,
        )
        assert r.status_code in (200, 201), r.text
    # and a snapshot after the split, in post-split units: it agrees with the derived state
    r = stack.post(
        held,
        "positions/snapshot",
        {
            "positions": [{"symbol": "AAPL", "quantity": 340, "cost_basis": "1"}],
            "taken_at": "2020-09-20T12:00:00Z",
            "log_deltas": True,
        },
        held_auth,
    )
    assert r.status_code in (200, 201), r.text
    stack.wait_projected()
    recon = stack.query.get(f"/api/v1/strategies/{held}/reconciliation", headers=held_auth).json()["items"]
    assert [(e["symbol"], e["derived_quantity"], e["snapshot_quantity"]) for e in recon] == [("AAPL", 340, 340)]
    (position,) = stack.state(held, held_auth)["positions"]
    assert Decimal(str(position["quantity"])) == 340
    nav, nav_adjusted = _nav(stack, held, held_auth), _nav(stack, adjusted, adjusted_auth)
    for day in nav:
        if day < "2020-09-20":  # the snapshot's basis is the bot's own from then on
            assert nav[day]["total_equity"] == nav_adjusted[day]["total_equity"], day
    actions = stack.query.get(f"/api/v1/strategies/{held}/corporate-actions", headers=held_auth).json()["items"]
    assert [(a["quantity_before"], a["quantity_after"]) for a in actions] == [(110, 440)]


def test_a_rebuild_gives_the_same_split_consistent_read_models(stack, market):
    _, split_file = market
    _cli(stack, "splits", "import", str(split_file))
    held, held_auth = _strategy(stack, "AAPL", 100)
    stack.wait_projected()
    wait_until(
        lambda: stack.query.get(f"/api/v1/strategies/{held}/corporate-actions", headers=held_auth).json()["items"],
        20,
        "the split to be applied",
    )
    incremental = stack.read_models()
    assert incremental["corporate_actions"] and incremental["nav"]
    subprocess.run(
        [sys.executable, "-m", "tools.cli", "projector", "rebuild"],
        cwd=ROOT,
        env=stack.env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert stack.read_models() == incremental
