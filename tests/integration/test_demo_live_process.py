"""Issue 24: `python -m services.demo_live.main`, the process `botranks up` runs, trades a live demo bot's
new hour slot through the real command API and reports it live; idle without the demo; stops on SIGTERM.

Its own stack (a fresh database): the live bot here started an hour ago (its first trade sent late, by
the test's injected clock), so the process's first round always has a new slot to trade, whatever the
hour of the run."""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from devtools.stack import ROOT, wait_until
from services.demo_live.live import start_live_bot
from services.market_data.sample_bots.live_bots import LIVE_BOTS, slot_of

pytestmark = pytest.mark.integration


def _orders(stack, sid: str) -> list[dict]:
    with stack.sql() as curs:
        return curs.execute(
            "SELECT external_order_id, executed_at, created_at FROM rm_orders WHERE strategy_id = %s"
            " ORDER BY executed_at",
            (sid,),
        ).fetchall()


def test_the_process_trades_the_new_slot_live_and_stops_on_sigterm(stack):
    base = f"http://127.0.0.1:{stack.command_port}"
    dca = LIVE_BOTS[0]
    now = datetime.now(UTC)
    sid = start_live_bot(stack.db, base, dca, lambda: now - timedelta(hours=1))["strategy_id"]
    stack.wait_projected()
    assert len(_orders(stack, sid)) == 1

    log = open(stack.home / "demo_live.log", "ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "services.demo_live.main", "--api-port", str(stack.command_port)],
        cwd=ROOT,
        env=stack.env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(lambda: len(_orders(stack, sid)) == 2, 60, "the process's trade of the new slot")
        first, second = _orders(stack, sid)
        assert first["created_at"] - first["executed_at"] > timedelta(minutes=15)  # the late start
        assert second["created_at"] - second["executed_at"] < timedelta(minutes=1)  # live
        assert second["external_order_id"] == f"livedca-{slot_of(second['executed_at']):%Y%m%dT%H}"
        assert process.poll() is None
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) in (0, -signal.SIGTERM)
        log.close()
    assert len(_orders(stack, sid)) == 2  # one trade per slot
