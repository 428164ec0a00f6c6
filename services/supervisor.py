"""``botranks up``: start PostgreSQL and NATS if needed, the four services, and the gateway.

Each service is its own process; the supervisor restarts one that dies (backoff 0.5 s, 1 s,
... 5 s, back to 0.5 s once it has stayed up for ``STABLE_AFTER_S``), restarts an embedded
PostgreSQL or nats-server that dies (same data directory, same address: the services
reconnect by themselves), and stops everything (embedded servers included) on Ctrl-C /
SIGTERM. The pids of everything it runs are in ``BOTRANKS_HOME/run/pids.json``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import structlog
import uvicorn

from libs.infra.embedded import EmbeddedPostgres, NatsServer, free_port, wait_for_port
from libs.infra.store import EventStore

from .gateway import Gateway

log = structlog.get_logger(component="supervisor")

STABLE_AFTER_S = 30.0  # a process up this long has its restart counter (and so its backoff) reset
MAX_BACKOFF_S = 5.0
POLL_S = 0.25


def backoff(restarts: int) -> float:
    return min(MAX_BACKOFF_S, 0.5 * restarts)


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    process: subprocess.Popen | None = None
    restarts: int = 0
    started_at: float = 0.0
    restart_at: float | None = None  # set while dead and waiting for its backoff

    def start(self) -> None:
        self.process = subprocess.Popen(self.argv, env=self.env)
        self.started_at = time.monotonic()
        self.restart_at = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


class EmbeddedServer(Protocol):
    name: str

    @property
    def pid(self) -> int | None: ...

    def alive(self) -> bool: ...

    def restart(self) -> None: ...

    def stop(self) -> None: ...


@dataclass
class System:
    home: Path
    port: int
    children: list[Child] = field(default_factory=list)
    pg: EmbeddedPostgres | None = None
    nats: NatsServer | None = None
    stopping: bool = False
    _pids_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def servers(self) -> list[EmbeddedServer]:
        return [s for s in (self.pg, self.nats) if s is not None]

    def resolve_backends(self) -> tuple[str, str]:
        database_url = os.environ.get("BOTRANKS_DATABASE_URL", "")
        nats_url = os.environ.get("BOTRANKS_NATS_URL", "")
        if not database_url:
            self.pg = EmbeddedPostgres(self.home / "postgres").start()
            database_url = self.pg.url
            log.info("embedded_postgres_started", data_dir=str(self.pg.data_dir), pid=self.pg.pid)
        if not nats_url:
            self.nats = NatsServer(self.home / "nats").start()
            nats_url = self.nats.url  # carries the credentials: handed to the services, never logged
            log.info("embedded_nats_started", url=self.nats.public_url, pid=self.nats.pid,
                     auth=str(self.nats.store_dir / "auth.conf"))
        return database_url, nats_url

    def start(self) -> Gateway:
        database_url, nats_url = self.resolve_backends()
        store = EventStore(database_url, pool_size=1)
        store.create_tables()  # migrations run once, before any service starts
        store.close()
        env = {**os.environ, "BOTRANKS_DATABASE_URL": database_url, "BOTRANKS_NATS_URL": nats_url,
               "BOTRANKS_HOME": str(self.home)}
        command_port, query_port = free_port(), free_port()
        py = sys.executable
        self.children = [
            Child("command_api", [py, "-m", "services.command_api.main", "--port", str(command_port)], env),
            Child("query_api", [py, "-m", "services.query_api.main", "--port", str(query_port)], env),
            Child("projector", [py, "-m", "services.projector.main", "run"], env),
            Child("market_data", [py, "-m", "services.market_data.main"], env),
        ]
        for child in self.children:
            child.start()
        self.write_pids()
        wait_for_port(command_port, 60)
        wait_for_port(query_port, 60)
        threading.Thread(target=self.watch_children, name="watch-children", daemon=True).start()
        for server in self.servers:
            threading.Thread(target=self.watch_server, args=(server,), name=f"watch-{server.name}",
                             daemon=True).start()
        return Gateway(f"http://127.0.0.1:{command_port}", f"http://127.0.0.1:{query_port}", self.down)

    def down(self) -> list[str]:
        """Names of the children and embedded servers that are not running right now."""
        return [c.name for c in self.children if not c.alive()] + [s.name for s in self.servers if not s.alive()]

    def write_pids(self) -> None:
        """``run/pids.json``: who is who, for operators (and the fault tests)."""
        pids = {"supervisor": os.getpid(), **{c.name: c.pid for c in self.children},
                **{s.name: s.pid for s in self.servers}}
        run = self.home / "run"
        with self._pids_lock:
            run.mkdir(parents=True, exist_ok=True)
            tmp = run / "pids.json.tmp"
            tmp.write_text(json.dumps(pids))
            tmp.replace(run / "pids.json")

    def watch_children(self) -> None:
        """Restart a child that died, after a backoff that grows with its recent restarts."""
        while not self.stopping:
            now = time.monotonic()
            for child in self.children:
                if self.stopping:
                    break
                if child.alive():
                    if child.restarts and now - child.started_at >= STABLE_AFTER_S:
                        log.info("service_stable", service=child.name, after_restarts=child.restarts)
                        child.restarts = 0
                elif child.restart_at is None:
                    child.restarts += 1
                    child.restart_at = now + backoff(child.restarts)
                    log.warning("service_died_restarting", service=child.name, restarts=child.restarts,
                                exit_code=child.process.returncode if child.process else None,
                                in_s=backoff(child.restarts))
                elif now >= child.restart_at:
                    try:
                        child.start()
                    except OSError as exc:
                        child.restarts += 1
                        child.restart_at = now + backoff(child.restarts)
                        log.error("service_start_failed", service=child.name, error=str(exc))
                    else:
                        self.write_pids()
            time.sleep(POLL_S)

    def watch_server(self, server: EmbeddedServer) -> None:
        """Restart an embedded server that died, on the same address and data (one thread each:
        a PostgreSQL crash recovery must not delay the restart of anything else)."""
        restarts, up_since = 0, time.monotonic()
        while not self.stopping:
            if server.alive():
                if restarts and time.monotonic() - up_since >= STABLE_AFTER_S:
                    restarts = 0
                time.sleep(POLL_S)
                continue
            if self.stopping:  # stopped by stop(), not dead
                return
            restarts += 1
            log.warning("embedded_server_died_restarting", server=server.name, restarts=restarts)
            time.sleep(backoff(restarts))
            if self.stopping:
                return
            try:
                server.restart()
            except Exception as exc:  # keep trying: the next round backs off further
                log.error("embedded_server_restart_failed", server=server.name, error=str(exc))
                continue
            up_since = time.monotonic()
            log.info("embedded_server_restarted", server=server.name, pid=server.pid)
            self.write_pids()

    def stop(self) -> None:
        self.stopping = True
        for child in reversed(self.children):
            child.stop()
        if self.nats:
            self.nats.stop()
        if self.pg is not None:
            self.pg.stop()
        (self.home / "run" / "pids.json").unlink(missing_ok=True)
        log.info("stopped")


def up(port: int, home: Path) -> None:
    system = System(home=home, port=port)
    try:
        gateway = system.start()
        log.info("ready", base_url=f"http://127.0.0.1:{port}/api/v1", health=f"http://127.0.0.1:{port}/healthz")
        config = uvicorn.Config(gateway, host="127.0.0.1", port=port, log_level="warning", access_log=False)
        server = uvicorn.Server(config)
        signal.signal(signal.SIGTERM, lambda *_: setattr(server, "should_exit", True))
        server.run()
    finally:
        system.stop()
