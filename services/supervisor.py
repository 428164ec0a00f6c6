"""``botranks up``: start PostgreSQL and NATS if needed, the three services, and the gateway.

Each service is its own process; the supervisor restarts one that dies and stops
everything (embedded servers included) on Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import structlog
import uvicorn

from libs.infra.embedded import NatsServer, free_port, start_postgres, wait_for_port
from libs.infra.store import EventStore

from .gateway import Gateway

log = structlog.get_logger(component="supervisor")


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    process: subprocess.Popen | None = None
    restarts: int = 0

    def start(self) -> None:
        self.process = subprocess.Popen(self.argv, env=self.env)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


@dataclass
class System:
    home: Path
    port: int
    children: list[Child] = field(default_factory=list)
    pg_server: object | None = None
    nats: NatsServer | None = None
    stopping: bool = False

    def resolve_backends(self) -> tuple[str, str]:
        database_url = os.environ.get("BOTRANKS_DATABASE_URL", "")
        nats_url = os.environ.get("BOTRANKS_NATS_URL", "")
        if not database_url:
            database_url, self.pg_server = start_postgres(self.home / "postgres")
            log.info("embedded_postgres_started", data_dir=str(self.home / "postgres"))
        if not nats_url:
            self.nats = NatsServer(self.home / "nats").start()
            nats_url = self.nats.url
            log.info("embedded_nats_started", url=nats_url)
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
        wait_for_port(command_port, 60)
        wait_for_port(query_port, 60)
        threading.Thread(target=self.watch, daemon=True).start()
        projector = self.children[2]
        return Gateway(f"http://127.0.0.1:{command_port}", f"http://127.0.0.1:{query_port}", projector.alive)

    def watch(self) -> None:
        """Restart a child that died (with a short back-off)."""
        while not self.stopping:
            for child in self.children:
                if not self.stopping and not child.alive():
                    child.restarts += 1
                    log.warning("service_died_restarting", service=child.name, restarts=child.restarts)
                    time.sleep(min(5.0, 0.5 * child.restarts))
                    if not self.stopping:
                        child.start()
            time.sleep(0.5)

    def stop(self) -> None:
        self.stopping = True
        for child in reversed(self.children):
            child.stop()
        if self.nats:
            self.nats.stop()
        if self.pg_server is not None:
            self.pg_server.cleanup()
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
