"""`botranks orders import`, `state`, `performance`, `nav` and examples/sma_bot.py against a real `botranks up`.

A broker's CSV of 100,000 fills (its own column names and side values, a tenth without a price:
the server fills those at the close of their day) goes in through the CLI, then again: the second
run is all duplicates and the server's order count does not move. A small file with three bad
rows reports exactly those lines (two refused locally, one by the server) and exits 1.
"""

from __future__ import annotations

import csv
import json
import random
import subprocess
import sys
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from devtools.stack import ROOT, BotranksUp, wait_until
from tools.processes import free_port

pytestmark = pytest.mark.integration

SYMBOLS = {"AAPL": 185.0, "MSFT": 375.0, "NVDA": 48.0, "SPY": 470.0, "KO": 59.0}
ROWS = 100_000
BROKER_FLAGS = [
    "--map",
    "symbol=Ticker",
    "--map",
    "side=Action",
    "--map",
    "quantity=Qty",
    "--map",
    "price=Fill Price",
    "--map",
    "fees=Commission",
    "--map",
    "executed_at=Trade Time",
    "--map",
    "order_id=Ref",
    "--side-map",
    "BOT=buy",
    "--side-map",
    "SLD=sell",
    "--time-format",
    "%Y%m%d %H:%M:%S",
]


@pytest.fixture(scope="module")
def up(tmp_path_factory):
    with BotranksUp(tmp_path_factory.mktemp("cli"), BOTRANKS_RATE_LIMIT_PER_MINUTE="1000000") as system:
        yield system


@pytest.fixture(scope="module")
def closes(up, tmp_path_factory) -> dict[tuple[str, date], Decimal]:
    """A year of weekday closes of a few symbols, loaded with `botranks prices import`."""
    rng = random.Random(7)
    out: dict[tuple[str, date], Decimal] = {}
    day = date(2025, 1, 2)
    price = dict(SYMBOLS)
    while day <= date(2025, 12, 31):
        if day.weekday() < 5:
            for symbol in SYMBOLS:
                price[symbol] *= 1 + rng.gauss(0.0004, 0.015)
                out[symbol, day] = Decimal(f"{price[symbol]:.2f}")
        day += timedelta(days=1)
    path = tmp_path_factory.mktemp("prices") / "closes.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["symbol", "date", "close"])
        writer.writerows([s, d.isoformat(), c] for (s, d), c in out.items())
    assert json.loads(up.cli("prices", "import", str(path)).strip().splitlines()[-1])["errors"] == 0
    return out


def strategy(up, name: str) -> dict[str, str]:
    """A new strategy; the environment of a command that reports to it."""
    creds = json.loads(up.cli("strategy", "create", "--name", name, timeout=60).strip().splitlines()[-1])
    return {**up.env, "FQ_API_KEY": creds["api_key"], "FQ_STRATEGY_ID": creds["strategy_id"]}


def botranks(env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tools.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def ingested(up) -> dict[str, float]:
    """command_api's counters of orders stored and orders found to be duplicates."""
    text = httpx.get(up.base + "/metrics", timeout=10).text
    found = {"accepted": 0.0, "duplicate": 0.0}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "botranks_ingested_total" and s.labels.get("kind") == "order":
                found[s.labels["outcome"]] += s.value
    return found


def server_orders(up, env: dict[str, str]) -> list[dict]:
    """Every order the read side has for the strategy (GET /orders, page after page)."""
    api = f"{up.base}/api/v1/strategies/{env['FQ_STRATEGY_ID']}/orders"
    headers = {"Authorization": f"Bearer {env['FQ_API_KEY']}"}
    items, cursor = [], None
    with httpx.Client(timeout=60) as http:
        while True:
            page = http.get(
                api, params={"limit": 1000, **({"cursor": cursor} if cursor else {})}, headers=headers
            ).json()
            items += page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                return items


def projected(up) -> bool:
    body = httpx.get(up.base + "/readyz", timeout=10).json()
    return body["services"]["query_api"]["projector_lag"] == 0


def write_broker_file(path: Path, closes: dict[tuple[str, date], Decimal], rows: int) -> None:
    """A broker's export: its own headers, BOT/SLD, compact times; a tenth without price, half without Ref."""
    rng = random.Random(11)
    days = sorted({d for _, d in closes})
    symbols = list(SYMBOLS)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["Ticker", "Action", "Qty", "Fill Price", "Commission", "Trade Time", "Ref", "Account"])
        for k in range(rows):
            symbol, day = rng.choice(symbols), rng.choice(days)
            close = closes[symbol, day]
            price = "" if k % 10 == 3 else f"{close * Decimal(1 + rng.uniform(-0.005, 0.005)):.2f}"
            at = datetime(day.year, day.month, day.day, 14, 30) + timedelta(seconds=rng.randrange(6 * 3600))
            writer.writerow(
                [
                    symbol,
                    rng.choice(["BOT", "SLD"]),
                    rng.randint(1, 300),
                    price,
                    f"{rng.randint(0, 150) / 100:.2f}",
                    at.strftime("%Y%m%d %H:%M:%S"),
                    f"U1-{k:07d}" if k % 2 else "",
                    "U1234567",
                ]
            )


def test_importing_100k_broker_rows_then_again_is_a_no_op(up, closes, tmp_path):
    env = strategy(up, "import-100k")
    path = tmp_path / "broker.csv"
    write_broker_file(path, closes, ROWS)
    before = ingested(up)

    first = botranks(env, "orders", "import", str(path), "--json", *BROKER_FLAGS)
    assert first.returncode == 0, first.stderr[-3000:]
    summary = json.loads(first.stdout)
    assert (summary["rows"], summary["accepted"], summary["duplicates"], summary["rejected"]) == (ROWS, ROWS, 0, [])
    assert summary["requests"] == ROWS // 500
    print(
        f"\nbotranks orders import, {ROWS:,} rows, first run: {summary['rows_per_s']:,.0f} rows/s"
        f" ({summary['seconds']:.1f} s)"
    )
    after_first = ingested(up)
    assert after_first["accepted"] - before["accepted"] == ROWS

    again = botranks(env, "orders", "import", str(path), "--json", *BROKER_FLAGS)
    assert again.returncode == 0, again.stderr[-3000:]
    summary = json.loads(again.stdout)
    assert (summary["rows"], summary["accepted"], summary["duplicates"], summary["rejected"]) == (ROWS, 0, ROWS, [])
    print(
        f"botranks orders import, {ROWS:,} rows, again (all duplicates): {summary['rows_per_s']:,.0f} rows/s"
        f" ({summary['seconds']:.1f} s)"
    )
    after_again = ingested(up)
    assert after_again["accepted"] == after_first["accepted"]  # nothing stored the second time
    assert after_again["duplicate"] - after_first["duplicate"] == ROWS

    wait_until(lambda: projected(up), 120, "the projection to catch up")
    stored = server_orders(up, env)
    assert len(stored) == ROWS
    ids = {o["external_order_id"] for o in stored}
    assert len(ids) == ROWS and sum(i.startswith("imp-") for i in ids) == ROWS // 2
    without_price = next(o for o in stored if o["external_order_id"] == "U1-0000003")  # k % 10 == 3: no price
    day = datetime.fromisoformat(without_price["executed_at"]).date()
    assert Decimal(str(without_price["price"])) == closes[without_price["symbol"], day]  # the day's close


BAD = (
    "\n".join(
        [
            "symbol,side,quantity,price,fees,executed_at,order_id",  # 1
            "AAPL,buy,10,190.00,1.00,2025-03-03T15:00:00Z,s-1",  # 2
            "AAPL,buy,ten,190.00,1.00,2025-03-03T15:01:00Z,s-2",  # 3: not a number (refused locally)
            "MSFT,buy,5,,0,2025-03-03T15:02:00Z,s-3",  # 4: no price: the close of the day
            "ZZZZ,buy,1,,0,2025-03-03T15:03:00Z,s-4",  # 5: no price and no close (refused by the server)
            "AAPL,hold,1,190.00,0,2025-03-03T15:04:00Z,s-5",  # 6: not a side (refused locally)
            "KO,buy,100,60.10,0,2025-03-04T15:00:00Z,",  # 7
            "KO,sell,50,60.50,0,2025-03-05T15:00:00Z,",  # 8
            "NVDA,buy,3,50.00,0,2025-03-05T16:00:00Z,s-8",  # 9
        ]
    )
    + "\n"
)


def test_bad_rows_are_reported_by_line_and_the_rest_is_stored(up, closes, tmp_path):
    env = strategy(up, "import-bad-rows")
    path = tmp_path / "fills.csv"
    path.write_text(BAD)
    run = botranks(env, "orders", "import", str(path), "--json")
    assert run.returncode == 1, run.stderr
    summary = json.loads(run.stdout)
    assert (summary["rows"], summary["accepted"], summary["duplicates"]) == (8, 5, 0)
    rejected = {r["line"]: r["reason"] for r in summary["rejected"]}
    assert sorted(rejected) == [3, 5, 6]
    assert rejected[3] == "quantity: not a number ('ten')"
    assert rejected[5].startswith("No market data available for ZZZZ at 2025-03-03T15:03:00Z")
    assert "'hold' is not buy or sell" in rejected[6]

    again = botranks(env, "orders", "import", str(path))  # the people's summary
    assert again.returncode == 1
    assert "accepted             0" in again.stdout and "duplicates           5" in again.stdout
    for line in (3, 5, 6):
        assert f"line {line}: " in again.stdout

    state = botranks(env, "state", "--json")
    assert state.returncode == 0, state.stderr
    held = {p["symbol"]: p["quantity"] for p in json.loads(state.stdout)["positions"]}
    assert held == {"AAPL": 10, "MSFT": 5, "KO": 50, "NVDA": 3}
    table = botranks(env, "state").stdout
    assert "AAPL" in table and "Total equity" in table
    nav = botranks(env, "nav", "--csv", "--from", "2025-03-01", "--to", "2025-03-31")
    assert nav.returncode == 0, nav.stderr
    lines = nav.stdout.splitlines()
    assert lines[0] == "date,cash,market_value,total_equity,external_flow" and lines[1].startswith("2025-03-03,")
    assert botranks(env, "nav").returncode == 0
    perf = botranks(env, "performance", "--benchmark", "SPY", "--risk-free-rate", "0.045", "--json")
    assert perf.returncode == 0, perf.stderr
    assert json.loads(perf.stdout)["benchmark"]["symbol"] == "SPY"
    human = botranks(env, "performance", "--benchmark", "SPY")
    assert human.returncode == 0 and "Sharpe" in human.stdout and "Monthly returns (%)" in human.stdout
    assert "Win rate" in human.stdout and "PSR (Sharpe > 0)" in human.stdout
    # the trades: every position above is one open trade (the imported fills only buy)
    trades = botranks(env, "trades", "--json")
    assert trades.returncode == 0, trades.stderr
    rows = [json.loads(line) for line in trades.stdout.splitlines()]
    assert sorted(r["symbol"] for r in rows if r["status"] == "open") == sorted(held)
    as_csv = botranks(env, "trades", "--csv", "--status", "open", "--symbol", "AAPL").stdout.splitlines()
    assert as_csv[0].startswith("id,symbol,direction,status,") and len(as_csv) == 2 and ",AAPL,long,open," in as_csv[1]
    assert "Trades" in botranks(env, "trades").stdout


def test_errors_are_one_line_with_exit_code_2(up):
    env = strategy(up, "errors")
    wrong_key = botranks({**env, "FQ_API_KEY": "fq_live_" + "x" * 43}, "state")
    assert wrong_key.returncode == 2 and wrong_key.stderr.startswith("botranks: the API key was refused (401")
    no_server = botranks(env, "nav", "--url", f"http://127.0.0.1:{free_port()}", timeout=60)
    assert no_server.returncode == 2 and "cannot reach BotRanks at http://127.0.0.1:" in no_server.stderr
    no_key = botranks({k: v for k, v in env.items() if k != "FQ_API_KEY"}, "performance")
    assert (no_key.returncode, no_key.stderr) == (2, "botranks: no API key: set FQ_API_KEY or pass --api-key\n")
    fills = ROOT / "README.md"  # any file: nothing of it is read before the key is checked
    refused_import = botranks({**env, "FQ_API_KEY": "fq_live_" + "x" * 43}, "orders", "import", str(fills))
    assert refused_import.returncode == 2 and "the API key was refused (401" in refused_import.stderr
    for run in (wrong_key, no_server, no_key, refused_import):
        assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr


def test_the_sma_bot_reports_its_orders_through_the_outbox(up, tmp_path):
    env = strategy(up, "sma-bot")
    args = [
        sys.executable,
        "examples/sma_bot.py",
        "--symbol",
        "DEMO-AAPL",
        "--fast",
        "10",
        "--slow",
        "40",
        "--start",
        "2025-01-02",
        "--outbox",
        str(tmp_path / "outbox.sqlite"),
    ]
    run = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    sent = int(run.stdout.split()[0])
    assert sent >= 27, run.stdout  # the demo market is seeded: 27 crossovers up to 2026-12-01, more later
    orders = server_orders(up, env)
    assert len(orders) == sent and all(o["external_order_id"].startswith("sma-DEMO-AAPL-") for o in orders)
    assert [o["side"] for o in orders][:2] == ["buy", "sell"]  # all in, all out
    again = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert len(server_orders(up, env)) == sent  # a re-run stores nothing twice
