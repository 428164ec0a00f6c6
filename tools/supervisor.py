"""``botranks up``: start PostgreSQL and NATS if needed, the services, and the front door (Caddy).

Each service is its own process; the supervisor restarts one that dies (backoff 0.5 s, 1 s,
... 5 s, back to 0.5 s once it has stayed up for ``STABLE_AFTER_S``), restarts an embedded
PostgreSQL or nats-server that dies (same data directory, same address: the services
reconnect by themselves), and stops everything (embedded servers included) on Ctrl-C /
SIGTERM / SIGHUP (a closed terminal). The pids of everything it runs are in
``BOTRANKS_HOME/run/pids.json``.

One ``up`` per home: ``run/up.lock`` is held (flock) for the life of the supervisor, with its
pid in it; the kernel drops the lock when the process dies, however it dies. Children run in
sessions of their own (the terminal's signals reach the supervisor only, which stops them) and
get SIGTERM if the supervisor dies (``kill -9``); what an earlier crashed run still left
(services, nats-server) is stopped, and its PostgreSQL adopted, before anything starts.
"""

from __future__ import annotations

import fcntl
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

from libs.infra.db import Database
from libs.infra.settings import Settings
from services.gateway.caddy import FrontDoor, allowed_hosts, trusted_proxies
from services.gateway.ops import Ops

from .embedded import EmbeddedPostgres, NatsServer, nats_servers_of
from .processes import (
    free_port,
    pid_alive,
    proc_cmdline,
    proc_environ,
    proc_pids,
    spawn,
    stop_pids,
    stop_processes,
    wait_for_port,
)

log = structlog.get_logger(component="supervisor")

STABLE_AFTER_S = 30.0  # a process up this long has its restart counter (and so its backoff) reset
MAX_BACKOFF_S = 5.0
POLL_S = 0.25
STOP_GRACE_S = 5.0  # how long the children get, all together, between SIGTERM and SIGKILL
OPS_GRACE_S = 1  # (s) in-flight requests of the ops app when stopping
SERVICES = ("command_api", "query_api", "relay", "projector", "market_data", "notifier", "demo_live")
GATEWAY = "gateway"  # Caddy, the front door


def _say(level: str, event: str, **kw) -> None:
    """Log, even once the terminal is gone (SIGHUP): a write to a hung-up tty fails with EIO."""
    try:
        getattr(log, level)(event, **kw)
    except (OSError, ValueError):
        pass


class AlreadyRunning(Exception):
    def __init__(self, home: Path, pid: int | None) -> None:
        who = f"pid {pid}" if pid else "pid unknown"
        super().__init__(f"botranks up is already running for {home} ({who}); stop it first")
        self.pid = pid


class UpLock:
    """``BOTRANKS_HOME/run/up.lock``: an exclusive flock held while ``up`` runs, holding its pid."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.path = home / "run" / "up.lock"
        self.fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by children (O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = None
            for _ in range(20):  # the holder may be writing its pid right now
                try:
                    pid = int(os.pread(fd, 32, 0).decode().strip() or 0) or None
                except ValueError:
                    pid = None
                if pid:
                    break
                time.sleep(0.025)
            os.close(fd)
            raise AlreadyRunning(self.home, pid) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.ftruncate(self.fd, 0)
            os.close(self.fd)  # the lock goes with the last descriptor
            self.fd = None


def service_of(pid: int, home: Path) -> str | None:
    """The name of the service ``pid`` runs for ``home`` (``python -m services.<name>.main`` with
    ``BOTRANKS_HOME=home``), None for anything else: a reused pid is never taken for ours."""
    argv = proc_cmdline(pid)
    if argv and Path(argv[0]).name == "caddy" and str(caddy_config(home)) in argv:
        return GATEWAY if pid_alive(pid) else None
    if not argv or "-m" not in argv[:-1]:
        return None
    module = argv[argv.index("-m") + 1]
    name = module.removeprefix("services.").removesuffix(".main")
    if name not in SERVICES or module != f"services.{name}.main":
        return None
    env = proc_environ(pid)
    if env is None or env.get("BOTRANKS_HOME") != str(home) or not pid_alive(pid):
        return None
    return name


def caddy_config(home: Path) -> Path:
    return home / "run" / "Caddyfile"


def leftovers(home: Path) -> dict[int, str]:
    """What an earlier ``up`` on ``home`` left running: ``{pid: name}`` of its services and
    nats-server. Candidates are the pids of ``run/pids.json`` and every process in /proc; each
    is checked on its command line (and environment) first."""
    try:
        previous = json.loads((home / "run" / "pids.json").read_text())
    except (OSError, ValueError):
        previous = {}
    candidates = {pid for pid in previous.values() if isinstance(pid, int)} | set(proc_pids())
    candidates.discard(os.getpid())
    found = {}
    for pid in sorted(candidates):
        name = service_of(pid, home)
        if name is not None:
            found[pid] = name
    for pid in nats_servers_of(home / "nats"):
        found[pid] = "nats"
    return found


def stop_leftovers(home: Path) -> None:
    found = leftovers(home)
    if not found:
        return
    for pid, how in stop_pids(sorted(found), STOP_GRACE_S).items():
        _say("warning", "leftover_stopped", process=found[pid], pid=pid, how=how)


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
        self.process = spawn(self.argv, env=self.env)  # own session, SIGTERM when we die
        self.started_at = time.monotonic()
        self.restart_at = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> str:
        if self.process is None:
            return "not running"
        return stop_processes({self.name: self.process}, STOP_GRACE_S)[self.name]


class EmbeddedServer(Protocol):
    name: str

    @property
    def pid(self) -> int | None: ...

    def alive(self) -> bool: ...

    def restart(self) -> None: ...

    def stop(self) -> object: ...


@dataclass
class System:
    settings: Settings
    port: int
    ops_port: int = 0
    children: list[Child] = field(default_factory=list)
    pg: EmbeddedPostgres | None = None
    nats: NatsServer | None = None
    stopping: bool = False
    threads: list[threading.Thread] = field(default_factory=list)
    _pids_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def home(self) -> Path:
        return self.settings.home

    @property
    def servers(self) -> list[EmbeddedServer]:
        return [s for s in (self.pg, self.nats) if s is not None]

    def resolve_backends(self) -> tuple[str, str]:
        database_url, nats_url = self.settings.database_url, self.settings.nats_url
        if not database_url:
            self.check_stopping()
            self.pg = EmbeddedPostgres(self.home / "postgres")
            self.pg.start()
            database_url = self.pg.url
            if self.pg.adopted:
                log.info("embedded_postgres_adopted", data_dir=str(self.pg.data_dir), pid=self.pg.pid)
            else:
                log.info("embedded_postgres_started", data_dir=str(self.pg.data_dir), pid=self.pg.pid)
        if not nats_url:
            self.check_stopping()
            self.nats = NatsServer(self.home / "nats")
            self.nats.start()
            nats_url = self.nats.url  # carries the credentials: handed to the services, never logged
            log.info(
                "embedded_nats_started",
                url=self.nats.public_url,
                pid=self.nats.pid,
                auth=str(self.nats.store_dir / "auth.conf"),
            )
        return database_url, nats_url

    def check_stopping(self) -> None:
        """Between the steps of ``start``: a stop signal arrived, start no further."""
        if self.stopping:
            raise Interrupted()

    def start(self) -> Ops:
        database_url, nats_url = self.resolve_backends()
        self.check_stopping()
        db = Database(database_url, pool_size=1)
        try:
            db.create_tables()  # migrations run once, before any service starts
        finally:
            db.close()
        self.check_stopping()
        env = self.settings.with_servers(database_url, nats_url).service_environment()
        command_port, query_port, relay_port, projector_port = free_port(), free_port(), free_port(), free_port()
        self.ops_port = free_port()
        door = FrontDoor(
            port=self.port,
            command=f"127.0.0.1:{command_port}",
            query=f"127.0.0.1:{query_port}",
            ops=f"127.0.0.1:{self.ops_port}",
            storage=self.home / "caddy",
            hosts=allowed_hosts(self.settings.url, self.settings.allowed_hosts),
            ops_token=self.settings.ops_token,
            read_timeout_s=self.settings.request_read_timeout_s,
            trusted_proxies=trusted_proxies(self.settings.trusted_proxies),
        )
        config = door.write(caddy_config(self.home))
        py = sys.executable
        self.children = [
            Child("command_api", [py, "-m", "services.command_api.main", "--port", str(command_port)], env),
            Child("query_api", [py, "-m", "services.query_api.main", "--port", str(query_port)], env),
            Child("relay", [py, "-m", "services.relay.main"], {**env, "BOTRANKS_HEALTH_PORT": str(relay_port)}),
            Child(
                "projector",
                [py, "-m", "services.projector.main", "run"],
                {**env, "BOTRANKS_HEALTH_PORT": str(projector_port)},
            ),
            Child("market_data", [py, "-m", "services.market_data.main"], env),
            Child("notifier", [py, "-m", "services.notifier.main"], env),
            Child("demo_live", [py, "-m", "services.demo_live.main", "--api-port", str(command_port)], env),
            Child(GATEWAY, door.argv(config), door.environment(env)),
        ]
        for child in self.children:
            child.start()
        self.write_pids()
        for port in (command_port, query_port, self.port):
            deadline = time.monotonic() + 60
            while True:
                self.check_stopping()
                try:
                    wait_for_port(port, 0.5)
                    break
                except TimeoutError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after 60s") from None
        self.threads = [threading.Thread(target=self.watch_children, name="watch-children", daemon=True)]
        self.threads += [
            threading.Thread(target=self.watch_server, args=(server,), name=f"watch-{server.name}", daemon=True)
            for server in self.servers
        ]
        for thread in self.threads:
            thread.start()
        return Ops(
            f"http://127.0.0.1:{command_port}",
            f"http://127.0.0.1:{query_port}",
            self.down,
            {"relay": f"http://127.0.0.1:{relay_port}", "projector": f"http://127.0.0.1:{projector_port}"},
        )

    def down(self) -> list[str]:
        """Names of the children and embedded servers that are not running right now."""
        return [c.name for c in self.children if not c.alive()] + [s.name for s in self.servers if not s.alive()]

    def write_pids(self) -> None:
        """``run/pids.json``: who is who, for operators (and the fault tests)."""
        pids = {
            "supervisor": os.getpid(),
            **{c.name: c.pid for c in self.children},
            **{s.name: s.pid if s.alive() else None for s in self.servers},
        }  # never a dead server's pid
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
                    log.warning(
                        "service_died_restarting",
                        service=child.name,
                        restarts=child.restarts,
                        exit_code=child.process.returncode if child.process else None,
                        in_s=backoff(child.restarts),
                    )
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
        restarts, up_since, recorded = 0, time.monotonic(), server.pid
        while not self.stopping:
            if server.alive():
                if restarts and time.monotonic() - up_since >= STABLE_AFTER_S:
                    restarts = 0
                if server.pid != recorded:  # came up by itself after a restart that looked failed
                    recorded = server.pid
                    self.write_pids()
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
                recorded = None
                self.write_pids()  # not the dead pid
                continue
            up_since, recorded = time.monotonic(), server.pid
            log.info("embedded_server_restarted", server=server.name, pid=server.pid)
            self.write_pids()

    def stop(self) -> None:
        """Stop everything, promptly: SIGTERM to every service at once, SIGKILL to those still
        running ``STOP_GRACE_S`` later; then nats-server and PostgreSQL (the services no longer
        use them). One line per process: ``service_stopped`` / ``service_killed``."""
        self.stopping = True
        for thread in self.threads:  # a watcher may be starting a process right now
            thread.join(1.0)
        pids = {c.name: c.pid for c in self.children}
        outcome = stop_processes({c.name: c.process for c in self.children if c.process is not None}, STOP_GRACE_S)
        for child in self.children:
            self._report(child.name, outcome.get(child.name, "not running"), pids[child.name])
        if self.nats is not None:
            pid = self.nats.pid
            self._report("nats", self.nats.stop(grace=STOP_GRACE_S), pid)
        if self.pg is not None:
            pid = self.pg.pid
            self._report("postgres", self.pg.stop(), pid)
        (self.home / "run" / "pids.json").unlink(missing_ok=True)
        _say("info", "stopped")

    @staticmethod
    def _report(name: str, outcome: str, pid: int | None) -> None:
        _say(
            "warning" if outcome == "killed" else "info", "service_" + outcome.replace(" ", "_"), service=name, pid=pid
        )


class Interrupted(BaseException):
    """A stop signal arrived while starting: start no further, stop what did start."""


def up(port: int, settings: Settings) -> int:
    """Run everything until SIGINT, SIGTERM or SIGHUP; returns the exit status.

    Raises ``AlreadyRunning`` (before starting anything) when another ``up`` holds ``home``.
    The signal handlers only raise a flag: ``System.start`` looks at it between its steps (an
    exception raised inside psycopg or pgserver could leave a half-done step behind), and the
    main loop at once; then everything is stopped by ``System.stop``.
    """
    home = settings.home
    lock = UpLock(home)
    lock.acquire()
    system = System(settings=settings, port=port)
    stop_requested = threading.Event()

    def on_signal(signum, frame) -> None:
        system.stopping = True
        stop_requested.set()

    handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, on_signal) for sig in handled}
    server: uvicorn.Server | None = None
    ops_thread: threading.Thread | None = None
    status = 0
    try:
        try:
            stop_leftovers(home)
            ops = system.start()
            config = uvicorn.Config(
                ops,
                host="127.0.0.1",
                port=system.ops_port,
                log_level="warning",
                access_log=False,
                timeout_graceful_shutdown=OPS_GRACE_S,
            )
            server = uvicorn.Server(config)
            # not the main thread: uvicorn then leaves the signals to us
            ops_thread = threading.Thread(target=server.run, name="ops", daemon=True)
            ops_thread.start()
            while not server.started and ops_thread.is_alive() and not stop_requested.is_set():
                time.sleep(0.05)
            if server.started and not stop_requested.is_set():
                log.info("ready", base_url=f"http://127.0.0.1:{port}/api/v1", health=f"http://127.0.0.1:{port}/healthz")
            while not stop_requested.wait(0.5):
                if not ops_thread.is_alive():
                    _say("error", "ops_failed", port=system.ops_port)
                    status = 1
                    break
        except Interrupted:
            pass
        except Exception:
            if not stop_requested.is_set():
                raise
            # a step cut short by the stop (e.g. a server that received the signal too): not an error
        finally:
            if server is not None:
                server.should_exit = True
            system.stop()
            if ops_thread is not None:
                ops_thread.join(OPS_GRACE_S + 1)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        lock.release()
    return status
