"""The three services as child processes, plus HTTP helpers for tests and benchmarks."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg.rows import DictRow

from libs.infra import bus
from libs.infra.db import Database
from tools.processes import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[1]


class Stack:
    def __init__(
        self, database_url: str, nats_url: str, home: Path, replicas: int = 1, projectors: int = 1, **env: str
    ) -> None:
        self.database_url, self.nats_url, self.home = database_url, nats_url, home
        self.projectors = projectors
        self.extra_env = env
        self.command_ports = [free_port() for _ in range(replicas)]
        self.query_ports = [free_port() for _ in range(replicas)]
        self.command_port, self.query_port = self.command_ports[0], self.query_ports[0]
        self.processes: dict[str, subprocess.Popen] = {}
        self.db = Database(database_url, pool_size=1, max_overflow=4).create_tables()
        self.command = httpx.Client(base_url=f"http://127.0.0.1:{self.command_port}", timeout=30)
        self.query = httpx.Client(base_url=f"http://127.0.0.1:{self.query_port}", timeout=30)

    @property
    def env(self) -> dict[str, str]:
        # tests send far more than 60 requests a minute per key (and 30 sign-ins a minute from one
        # address); the rate-limit and throttle tests set their own
        return {
            **os.environ,
            "BOTRANKS_DATABASE_URL": self.database_url,
            "BOTRANKS_NATS_URL": self.nats_url,
            "BOTRANKS_HOME": str(self.home),
            "BOTRANKS_LOG_LEVEL": "warning",
            "BOTRANKS_RATE_LIMIT_PER_MINUTE": "1000000",
            "BOTRANKS_AUTH_ATTEMPTS_PER_MINUTE_PER_IP": "1000000",
            # one worker per API, whatever the machine (the default is one per CPU): tests that want more say so
            "BOTRANKS_API_WORKERS": "1",
            **self.extra_env,
        }

    def _spawn(self, name: str, *args: str) -> None:
        log = open(self.home / f"{name}.log", "ab")
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", *args], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )

    def start(self) -> None:
        for i, port in enumerate(self.command_ports):
            self._spawn(f"command_api{i or ''}", "services.command_api.main", "--port", str(port))
        for i, port in enumerate(self.query_ports):
            self._spawn(f"query_api{i or ''}", "services.query_api.main", "--port", str(port))
        self._spawn("relay", "services.relay.main")
        for i in range(self.projectors):
            self.start_projector(f"projector{i or ''}")
        for port in self.command_ports + self.query_ports:
            wait_for_port(port, 60)

    def start_projector(self, name: str = "projector") -> None:
        self._spawn(name, "services.projector.main", "run")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        process = self.processes.pop(name)
        process.send_signal(sig)
        process.wait(20)

    def stop(self) -> None:
        for name in list(self.processes):
            self.kill(name, signal.SIGTERM)
        self.command.close()
        self.query.close()
        try:
            asyncio.run(delete_stream(self.nats_url, self.db.events.store_id))
        except Exception:
            pass
        self.db.close()

    # ------------------------------------------------------------ helpers

    def new_strategy(self, name: str = "test") -> tuple[str, dict[str, str]]:
        strategy_id, key = self.db.identity.create_strategy(name)
        return str(strategy_id), {"Authorization": f"Bearer {key}"}

    def post(self, strategy_id: str, what: str, payload: Any, headers: dict[str, str]) -> httpx.Response:
        return self.command.post(f"/api/v1/strategies/{strategy_id}/{what}", json=payload, headers=headers)

    def state(self, strategy_id: str, headers: dict[str, str]) -> dict[str, Any]:
        response = self.query.get(f"/api/v1/strategies/{strategy_id}/state", headers=headers)
        assert response.status_code == 200, response.text
        return response.json()

    def event_count(self) -> int:
        return self.db.events.max_notification_id()

    def sql(self) -> AbstractContextManager[psycopg.Cursor[DictRow]]:
        """A dict-row cursor in one committed transaction, for tests that inspect or edit tables directly."""
        return sql(self.db)

    def add_prices(self, rows: list[tuple[str, str, float]]) -> None:
        with self.sql() as curs:
            curs.executemany(
                "INSERT INTO prices (symbol, date, close, source) VALUES (%s, %s, %s, 'test')"
                " ON CONFLICT (symbol, date) DO UPDATE SET close = EXCLUDED.close",
                rows,
            )

    def read_models(self) -> dict[str, list[tuple]]:
        """Every read model, as comparable rows (timestamps of the projection itself excluded)."""
        queries = {
            "positions": "SELECT strategy_id, symbol, quantity, cost_basis, updated_at FROM rm_positions ORDER BY 1, 2",
            "ledger": "SELECT strategy_id, cash_balance, realized_pnl, external_flows, market_value, total_equity,"
            " last_order_at, last_effective_at, last_notification_id FROM rm_ledger ORDER BY 1",
            "orders": "SELECT id, notification_id FROM rm_orders ORDER BY 1",
            "cash": "SELECT id, notification_id FROM rm_cash_events ORDER BY 1",
            "reconciliation": "SELECT snapshot_id, symbol, derived_quantity, snapshot_quantity"
            " FROM rm_reconciliation_log ORDER BY 1, 2",
            "nav": "SELECT strategy_id, date, cash, market_value, total_equity, external_flow FROM rm_nav_daily"
            " ORDER BY 1, 2",
            "corporate_actions": "SELECT strategy_id, ex_date, symbol, quantity_before, quantity_after,"
            " cost_basis_before, cost_basis_after FROM rm_corporate_actions ORDER BY 1, 2, 3",
        }
        with self.sql() as curs:
            return {name: [tuple(r.values()) for r in curs.execute(q).fetchall()] for name, q in queries.items()}

    def wait_projected(self, timeout: float = 30.0) -> None:
        target = self.event_count()
        wait_until(lambda: self.db.projection.position() >= target, timeout, f"projection to reach {target}")


@contextmanager
def sql(db: Database) -> Iterator[psycopg.Cursor[DictRow]]:
    """A dict-row cursor on ``db`` in one committed transaction (tests and benchmarks that go behind the owners)."""
    with db.datastore.transaction(commit=True) as curs:
        yield curs


def wait_until(condition: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


async def delete_stream(nats_url: str, store_id: str) -> None:
    """Remove a test database's JetStream stream (its name carries the store id)."""
    nc = await bus.connect(nats_url, "botranks-tests")
    try:
        await nc.jetstream().delete_stream(bus.stream_name(store_id))
    finally:
        await nc.close()


def create_database(admin_url: str, name: str) -> str:
    """Create database ``name`` on the server of ``admin_url``; returns its URL."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    params = conninfo_to_dict(admin_url)
    params["dbname"] = name
    return make_conninfo(**params)


def drop_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def code_version(root: Path) -> str:
    """The commit the services run from, and whether the tree differs from it (others edit it live)."""
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return f"{root} (not a git checkout)"
    if not head:
        return f"{root} (not a git checkout)"
    return f"{root} at {head}" + (f" + uncommitted changes in {len(dirty)} files" if dirty else " (clean)")


class BotranksUp:
    """`botranks up` as a child process on the embedded default, with its own BOTRANKS_HOME.

    ``with BotranksUp(tmp_path) as up:`` waits until ``/healthz`` is 200 and stops everything
    with SIGINT (like Ctrl-C) on the way out. ``up.env`` is the environment of the CLI commands
    that should talk to the same system (``botranks strategy create``, ``botranks demo``...).
    """

    def __init__(self, workdir: Path, timeout: float = 180.0, **env: str) -> None:
        self.home = workdir / "home"
        self.log = workdir / "up.log"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("BOTRANKS_")}
        self.env.update(BOTRANKS_HOME=str(self.home), BOTRANKS_URL=self.base, **env)
        self.timeout = timeout
        self.process: subprocess.Popen | None = None

    def healthy(self) -> bool:
        try:
            return httpx.get(self.base + "/healthz", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def __enter__(self) -> BotranksUp:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tools.cli", "up", "--port", str(self.port)],
            cwd=ROOT,
            env=self.env,
            stdout=open(self.log, "wb"),
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(self.healthy, self.timeout, "botranks up to be healthy")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def cli(self, *args: str, timeout: float = 300) -> str:
        """Run ``botranks ARGS`` against this system; its stdout."""
        return subprocess.run(
            [sys.executable, "-m", "tools.cli", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
            timeout=timeout,
        ).stdout
