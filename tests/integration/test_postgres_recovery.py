"""A restart of the embedded PostgreSQL whose crash recovery outlasts pg_ctl's wait still counts (issue 19, item 9).

pgserver gives ``pg_ctl -w start`` 10 s; a long crash recovery goes on after that. Here pg_ctl is
given almost nothing, so it gives up while the postmaster is still starting, as it does on a slow
recovery: ``restart`` must wait for the server's own readiness and succeed, not report a failure.
"""

from __future__ import annotations

import os
import subprocess

import psycopg
import pytest

from tools.embedded import EmbeddedPostgres, running_postmaster

pytestmark = pytest.mark.integration


@pytest.fixture
def data_dir(tmp_path_factory):
    # pgserver runs PostgreSQL as its own user under root: every parent must be traversable
    base = tmp_path_factory.getbasetemp().parent.parent / f"botranks-recovery-{os.getpid()}"
    base.mkdir(exist_ok=True)
    base.chmod(0o711)
    return base / "pg"


def test_restart_waits_for_readiness_when_pg_ctl_gives_up(data_dir, monkeypatch):
    pg = EmbeddedPostgres(data_dir).start()
    try:
        with psycopg.connect(pg.url, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (n int)")
            conn.execute("INSERT INTO kept SELECT generate_series(1, 1000)")
        from pgserver import postgres_server

        # a crash (immediate shutdown: no checkpoint, so the next start runs crash recovery)
        postgres_server.pg_ctl(
            ["-w", "-m", "immediate", "stop"], pgdata=data_dir, user="pgserver" if os.geteuid() == 0 else None
        )
        assert running_postmaster(data_dir) is None

        real = postgres_server.pg_ctl

        def impatient(args, **kwargs):  # pg_ctl start that gives up waiting at once, as on a long recovery
            if "start" in args:
                real([a for a in args if a != "-w"], **kwargs)  # launches the postmaster, does not wait
                raise subprocess.TimeoutExpired(args, kwargs.get("timeout", 10))
            return real(args, **kwargs)

        monkeypatch.setattr(postgres_server, "pg_ctl", impatient)
        pg.restart()
        assert pg.alive()

        def count() -> int | None:
            try:
                with psycopg.connect(pg.url, autocommit=True, connect_timeout=2) as conn:
                    return conn.execute("SELECT count(*) FROM kept").fetchone()[0]
            except psycopg.OperationalError:
                return None

        from devtools.stack import wait_until

        wait_until(lambda: count() == 1000, 10, "the restarted server to answer with its data")
    finally:
        pg.stop()


class FlakyServer:
    """An embedded server whose restart "fails" although it then comes up by itself."""

    name = "postgres"

    def __init__(self) -> None:
        self.pid: int | None = 111
        self.up = True
        self.restarts = 0

    def alive(self) -> bool:
        return self.up

    def restart(self) -> None:
        self.restarts += 1
        self.pid = 222
        self.up = True  # it came up, but the restart reports a failure (pg_ctl gave up)
        raise RuntimeError("pg_ctl: server did not start in time")

    def stop(self) -> None:
        self.up = False


def test_pids_json_never_keeps_a_dead_server_and_follows_one_that_came_up(tmp_path, monkeypatch):
    import json
    import threading
    import time

    from devtools.stack import wait_until
    from libs.infra.settings import Settings
    from tools import supervisor

    monkeypatch.setattr(supervisor, "backoff", lambda restarts: 0.05)
    server = FlakyServer()
    system = supervisor.System(settings=Settings(home=tmp_path), port=0)
    system.pg = server  # type: ignore[assignment]  # the watcher's protocol, not a real PostgreSQL
    pids = tmp_path / "run" / "pids.json"
    system.write_pids()
    assert json.loads(pids.read_text())["postgres"] == 111
    watcher = threading.Thread(target=system.watch_server, args=(server,), daemon=True)
    watcher.start()
    try:
        server.pid, server.up = 111, False  # dies
        wait_until(lambda: server.restarts >= 1, 10, "a restart")
        wait_until(lambda: json.loads(pids.read_text())["postgres"] == 222, 10, "pids.json to name the new pid")
        time.sleep(0.3)
        assert server.restarts == 1  # up is up: no second restart
    finally:
        system.stopping = True
        watcher.join(5)
