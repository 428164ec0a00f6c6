"""A bot using Client(outbox=...) is killed with SIGKILL in the middle of flushing (the server
has stored a batch whose answer the bot never saw), restarted on the same outbox file, and
finishes: the server holds every order exactly once."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from decimal import Decimal
from uuid import UUID

import pytest

from botranks_client import Client

from .fault_proxy import FaultProxy, botranks_up, stored_orders

pytestmark = pytest.mark.integration

N = 3_000  # 6 outbox rows of 500

BOT = textwrap.dedent("""
    import logging, sys
    from decimal import Decimal
    from botranks_client import Client

    base, key, strategy, outbox, mode, n = sys.argv[1:7]
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    with Client(base, key, strategy, outbox=outbox, timeout=10) as client:
        if mode == "enqueue":
            orders = [{"symbol": "MSFT", "side": "buy", "quantity": Decimal(i + 1), "price": Decimal("420.10")}
                      for i in range(int(n))]
            enqueued = client.submit_orders(orders)
            print("enqueued", len(enqueued.ids), flush=True)
        client.flush()
        print("flushed", client.pending(), len(client.dead_letters()), flush=True)
""")


@pytest.fixture(scope="module")
def system(backends, make_database, tmp_path_factory):
    _, nats_url = backends
    url = make_database()
    with botranks_up(
        tmp_path_factory.mktemp("client-outbox"), url, nats_url, BOTRANKS_READ_YOUR_WRITES_TIMEOUT="0"
    ) as up:
        yield up, url


def test_a_bot_killed_mid_flush_and_restarted_loses_nothing_and_doubles_nothing(system, tmp_path):
    up, database_url = system
    created = json.loads(up.cli("strategy", "create", "--name", "outbox-bot", timeout=60).strip().splitlines()[-1])
    strategy_id, key = created["strategy_id"], created["api_key"]
    script = tmp_path / "bot.py"
    script.write_text(BOT)
    outbox = tmp_path / "bot-outbox.sqlite"

    # every answer is held 1.5 s after the server committed: the kill lands while one is in flight
    with FaultProxy(up.base, {"POST": ["delay"]}, delay_s=1.5) as proxy:

        def run(mode: str) -> subprocess.Popen:
            return subprocess.Popen(
                [sys.executable, str(script), proxy.url, key, strategy_id, str(outbox), mode, str(N)],
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )

        bot = run("enqueue")
        assert bot.stdout.readline().split() == ["enqueued", "6"]
        deadline = time.monotonic() + 60
        while proxy.injected["delay"] < 2:  # the 2nd batch is stored, its answer held
            assert bot.poll() is None and time.monotonic() < deadline, bot.stderr.read()
            time.sleep(0.01)
        assert proxy.held.is_set()
        bot.send_signal(signal.SIGKILL)
        bot.wait(10)
        bot.stderr.close()
        bot.stdout.close()

        stored = stored_orders(database_url, strategy_id)
        with sqlite3.connect(outbox) as db:
            left = db.execute("SELECT count(*), sum(items) FROM outbox").fetchone()
        assert 0 < len(stored) < N
        # the server has more than the bot knows about: the restart must send a batch again
        assert len(stored) > N - left[1], (len(stored), left)

        restarted = run("resume")
        out, err = restarted.communicate(timeout=120)
        assert restarted.returncode == 0, err[-3000:]
        assert out.split() == ["flushed", "0", "0"]

    stored = stored_orders(database_url, strategy_id)
    assert len(stored) == N == len(set(stored))
    with Client(up.base, key, strategy_id) as client:
        deadline = time.monotonic() + 60
        while len(listed := list(client.orders(limit=1000))) < N and time.monotonic() < deadline:
            time.sleep(0.5)
        assert sorted(o.quantity for o in listed) == [Decimal(i + 1) for i in range(N)]
        assert {o.external_order_id for o in listed} == set(stored)
        assert UUID(strategy_id) == client.state().strategy_id
