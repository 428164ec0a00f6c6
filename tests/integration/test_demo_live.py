"""Issue 24: the demo looks alive. `botranks demo` back-fills its sample bots and starts two live bots on
the 24/7 DEMO-BTC-USD; the board's "reported live only" filter lists the one whose every order arrived
within LIVE_REPORTING_S of its execution, the other shows a partial share. The live loop's tick and
daily close, with an injected clock, trade once per slot and send nothing twice. Through the real
services (command_api, relay, projector, query_api on their own database)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from botranks_domain.views import LIVE_ONLY_MIN_SHARE
from devtools.stack import ROOT, wait_until
from services.demo_live.live import Keys, daily_close, last_close, live_tick, start_live_bot
from services.demo_live.replay import exclusively, new_payloads, write_market
from services.market_data.sample_bots import SAMPLE_BOTS
from services.market_data.sample_bots.live_bots import LIVE_BOTS, dca_rule

pytestmark = pytest.mark.integration


def _demo(stack) -> dict:
    """`botranks demo` against the stack's command_api, as a user runs it; its JSON output."""
    out = subprocess.run(
        [sys.executable, "-m", "tools.cli", "demo", "--base-url", f"http://127.0.0.1:{stack.command_port}"],
        cwd=ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(out.stdout[out.stdout.index("{") :])


def _board(stack, **params) -> dict[str, dict]:
    """The public board (/p/leaderboard) by strategy id."""
    response = stack.query.get("/p/leaderboard", params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    return {row["strategy_id"]: row for row in response.json()["items"]}


def _rows_counted(stack, orders: dict[str, int]) -> bool:
    """Every strategy's board row counts (at least) its stored orders."""
    rows = _board(stack, min_days=0)
    return all(sid in rows and rows[sid]["orders"] >= n for sid, n in orders.items())


def _stored_orders(stack, ids: list[str]) -> dict[str, int]:
    with stack.sql() as curs:
        rows = curs.execute(
            "SELECT strategy_id::text AS sid, count(*) AS n FROM rm_orders WHERE strategy_id = ANY(%s::uuid[])"
            " GROUP BY 1",
            (ids,),
        ).fetchall()
    return {r["sid"]: r["n"] for r in rows}


@pytest.fixture(scope="module")
def demo(stack) -> dict:
    out = _demo(stack)
    stack.wait_projected(120)
    ids = [b["strategy_id"] for b in out["bots"] + out["live_bots"]]
    wait_until(lambda: _rows_counted(stack, _stored_orders(stack, ids)), 120, "every demo bot's board row")
    return out


def test_the_live_only_board_lists_the_bot_that_reported_everything_live(stack, demo):
    live = {b["name"]: b for b in demo["live_bots"]}
    assert set(live) == {bot.name for bot in LIVE_BOTS} and not any(b["existed"] for b in demo["live_bots"])
    dca, balanced = live["Hourly BTC DCA (demo)"], live["BTC 50/50 hourly (demo)"]
    assert dca["live_orders"] == balanced["live_orders"] == 1  # each one's first trade, sent as it was placed
    assert balanced["replayed"]["orders"] > 30 and dca["replayed"]["orders"] == 1

    rows = _board(stack, min_days=0)
    assert rows[dca["strategy_id"]]["live_share"] == 1.0 and rows[dca["strategy_id"]]["orders"] == 1
    share = rows[balanced["strategy_id"]]["live_share"]
    orders = rows[balanced["strategy_id"]]["orders"]
    assert 0 < share < LIVE_ONLY_MIN_SHARE and share == pytest.approx(1 / orders)  # the rest came late
    for bot in demo["bots"]:  # the sample bots' history is a back-fill: nothing of it arrived live
        assert rows[bot["strategy_id"]]["live_share"] == 0.0, bot["name"]

    # the filter, with the board's default track record (30 days: the live bots were funded 45 days ago)
    only = _board(stack, live_only=1)
    assert set(only) == {dca["strategy_id"]}
    assert only[dca["strategy_id"]]["track_days"] >= 30 and only[dca["strategy_id"]]["name"] == dca["name"]
    page = stack.query.get("/", params={"live_only": "1"})
    assert page.status_code == 200 and dca["name"] in page.text and balanced["name"] not in page.text
    assert all(bot["name"] not in page.text for bot in demo["bots"])


def test_a_second_demo_sends_nothing_again(stack, demo):
    events = stack.event_count()
    with stack.sql() as curs:
        strategies = curs.execute("SELECT count(*) AS n FROM strategies").fetchone()["n"]
    again = _demo(stack)
    assert again["existed"] == len(SAMPLE_BOTS) and all(b["existed"] for b in again["live_bots"])
    assert [b["strategy_id"] for b in again["live_bots"]] == [b["strategy_id"] for b in demo["live_bots"]]
    assert all(b["replayed"] == {"orders": 0, "cash_events": 0} for b in again["live_bots"])
    # the sample bots send only days that closed since (none, unless the date changed in between)
    if again["prices"]["to"] == demo["prices"]["to"]:
        assert stack.event_count() == events
    with stack.sql() as curs:
        assert curs.execute("SELECT count(*) AS n FROM strategies").fetchone()["n"] == strategies


def test_the_live_loop_trades_each_slot_once_and_live(stack, demo):
    """The loop's tick with an injected clock: a bot that last traded an hour ago trades now (live), once."""
    base = f"http://127.0.0.1:{stack.command_port}"
    bot = replace(LIVE_BOTS[0], slug="looptest", name="Loop DCA (test)", rule=dca_rule)
    now = datetime.now(UTC)
    started = start_live_bot(stack.db, base, bot, lambda: now - timedelta(hours=1))  # sent an hour late
    sid = started["strategy_id"]
    stack.wait_projected()
    keys = Keys(stack.db)
    assert live_tick(stack.db, base, now - timedelta(hours=1), keys, bots=[bot]) == {}  # that slot is done
    assert live_tick(stack.db, base, now, keys, bots=[bot]) == {bot.name: 1}
    stack.wait_projected()
    assert live_tick(stack.db, base, now, keys, bots=[bot]) == {}  # this slot is done too
    wait_until(lambda: _rows_counted(stack, {sid: 2}), 60, "the loop bot's row")
    row = _board(stack, min_days=0)[sid]
    assert row["orders"] == 2 and row["live_share"] == 0.5  # the late first trade, the live second one


def test_the_daily_close_brings_the_sample_bots_up_to_date_once(stack, demo):
    """Whatever the hour: after ``daily_close(now)`` every sample bot has its orders up to the last close
    (20:00 UTC) before ``now``, and a second call sends nothing."""
    base = f"http://127.0.0.1:{stack.command_port}"
    keys, now = Keys(stack.db), datetime.now(UTC)
    assert daily_close(stack.db, base, now, keys) is not None  # the demo's bots are here
    stack.wait_projected(120)
    market = write_market(stack.db, last_close(now))
    ids = {b["name"]: b["strategy_id"] for b in demo["bots"]}
    for bot in SAMPLE_BOTS:  # nothing left to send but cash events already stored (resent: duplicates)
        left = new_payloads(stack.db, ids[bot.name], bot.orders(market.bars))
        assert [item for item in left if item["kind"] == "orders"] == [], bot.name
    events = stack.event_count()
    again = daily_close(stack.db, base, now, keys)
    assert again is not None and all(n == 0 for n in again.values()) and stack.event_count() == events


def test_the_loop_waits_while_a_demo_runs(stack):
    """`botranks demo` holds the demo's lock while it runs: a loop round gets False (it skips), another
    demo waits for it, and either gets it once it is free."""
    with exclusively(stack.db.url, 5) as demo_holds:
        assert demo_holds
        with exclusively(stack.db.url, None) as loop_round:
            assert loop_round is False
        with pytest.raises(TimeoutError), exclusively(stack.db.url, 1):
            pass
    with exclusively(stack.db.url, None) as loop_round:
        assert loop_round is True
