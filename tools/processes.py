"""Ports and processes: wait for a port, find and stop processes by pid, ``spawn`` children.

Processes started with ``spawn`` live in their own session (a terminal's Ctrl-C or hang-up
reaches only whoever started them) and, on Linux, get SIGTERM when their starter dies, even
by ``kill -9``. Used by ``embedded`` (the servers), the supervisor (the services) and the tests.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path


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


def proc_cmdline(pid: int) -> list[str] | None:
    """The argv of ``pid`` from /proc (None: no such process, unreadable, a zombie, or no /proc)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    if not raw:
        return None
    return raw.decode(errors="replace").rstrip("\0").split("\0")


def proc_environ(pid: int) -> dict[str, str] | None:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    env = {}
    for item in raw.decode(errors="replace").split("\0"):
        key, sep, value = item.partition("=")
        if sep:
            env[key] = value
    return env


def proc_pids() -> list[int]:
    """Every pid in /proc (empty without /proc)."""
    try:
        return [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return []


# ---------------------------------------------------------------- child processes

_PR_SET_PDEATHSIG = 1


def _load_libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl  # noqa: B018 - present on every Linux libc; absent: no parent-death signal
        return libc
    except (OSError, AttributeError):
        return None


_LIBC = _load_libc()


def _die_with_parent(parent: int):
    """preexec_fn: SIGTERM this child when the thread that forked it dies (Linux; a no-op elsewhere)."""
    libc = _LIBC

    def preexec() -> None:
        if libc is None:
            return
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl: the signal would never come
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


# PR_SET_PDEATHSIG fires when the *thread* that forked the child ends, not the process: every
# spawn happens on one thread, which lives as long as the interpreter (one per process: a
# forked copy of this module has the executor but not its thread).
_spawner: tuple[int, concurrent.futures.ThreadPoolExecutor] | None = None
_spawner_lock = threading.Lock()


def _spawner_executor() -> concurrent.futures.ThreadPoolExecutor:
    global _spawner
    with _spawner_lock:
        if _spawner is None or _spawner[0] != os.getpid():
            _spawner = (os.getpid(), concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="spawner"))
        return _spawner[1]


def spawn(argv: list[str], **popen_kwargs) -> subprocess.Popen:
    """``subprocess.Popen`` in a session of its own, SIGTERMed when this process dies (Linux).

    Its own session: a terminal's SIGINT/SIGHUP goes to our process group only, so we decide
    how children stop (no tracebacks from a Ctrl-C, no nats-server reloading on SIGHUP). The
    parent-death signal: even ``kill -9`` of this process takes its children down.
    """
    parent = os.getpid()

    def start() -> subprocess.Popen:
        return subprocess.Popen(argv, start_new_session=True, preexec_fn=_die_with_parent(parent), **popen_kwargs)

    if threading.current_thread().name.startswith("spawner"):
        return start()
    return _spawner_executor().submit(start).result()


def stop_processes(processes: dict[str, subprocess.Popen], grace: float) -> dict[str, str]:
    """SIGTERM every process at once, wait ``grace`` seconds for all of them together, SIGKILL
    the rest; ``{name: "stopped" | "killed" | "not running"}``."""
    outcome: dict[str, str] = {}
    running: dict[str, subprocess.Popen] = {}
    for name, process in processes.items():
        if process.poll() is not None:
            outcome[name] = "not running"
            continue
        try:
            process.terminate()
        except ProcessLookupError:
            pass
        running[name] = process
    deadline = time.monotonic() + grace
    while running and time.monotonic() < deadline:
        for name, process in list(running.items()):
            if process.poll() is not None:
                outcome[name] = "stopped"
                del running[name]
        if running:
            time.sleep(0.05)
    for process in running.values():
        try:
            process.kill()
        except ProcessLookupError:
            pass
    for name, process in running.items():
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:  # unkillable (D state): nothing more to do
            pass
        outcome[name] = "killed"
    return outcome


def stop_pids(pids: list[int], grace: float, sig: int = signal.SIGTERM) -> dict[int, str]:
    """``stop_processes`` for processes that are not our children (leftovers of an earlier run)."""
    outcome: dict[int, str] = {}
    running = []
    for pid in pids:
        try:
            os.kill(pid, sig)
            running.append(pid)
        except ProcessLookupError:
            outcome[pid] = "not running"
    deadline = time.monotonic() + grace
    while running and time.monotonic() < deadline:
        for pid in list(running):
            if not pid_alive(pid):
                outcome[pid] = "stopped"
                running.remove(pid)
        if running:
            time.sleep(0.05)
    for pid in running:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        outcome[pid] = "killed"
    deadline = time.monotonic() + 5
    while any(pid_alive(pid) for pid in running) and time.monotonic() < deadline:
        time.sleep(0.05)
    return outcome
