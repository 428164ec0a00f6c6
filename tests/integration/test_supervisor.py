"""`botranks up` as a terminal sees it: processes and restarts (issue 9).

Each test runs a real `botranks up` on the embedded servers, under a temporary BOTRANKS_HOME,
in a session of its own (``start_new_session=True``) so that it can be signalled the way a
terminal signals its foreground process group: hang-up (SIGHUP) and Ctrl-C (SIGINT). What
belongs to a home is found in /proc: a command line, environment or working directory that
names the home (nats-server's ``-sd``, postgres's ``-D`` and ``PGDATA``, the services'
``BOTRANKS_HOME``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from devtools.stack import ROOT, wait_until
from tools.embedded import stop_postmaster
from tools.processes import free_port, pid_alive, proc_cmdline, proc_environ, proc_pids, stop_pids
from tools.supervisor import GATEWAY, SERVICES

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and PR_SET_PDEATHSIG"),
]

ALL = (*SERVICES, GATEWAY, "nats", "postgres")


def home_processes(home: Path) -> dict[int, list[str]]:
    """Every live process whose command line, environment or cwd names ``home``: {pid: argv}."""
    needle = str(home)
    found = {}
    for pid in proc_pids():
        if pid == os.getpid() or not pid_alive(pid):
            continue
        argv = proc_cmdline(pid) or []
        env = proc_environ(pid) or {}
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            cwd = ""
        if needle in " ".join(argv) or any(needle in v for v in env.values()) or cwd.startswith(needle):
            found[pid] = argv
    return found


def _with_option(name: str, option: str, value: Path):
    def match(argv: list[str]) -> bool:
        return (
            bool(argv)
            and Path(argv[0]).name == name
            and option in argv[:-1]
            and argv[argv.index(option) + 1] == str(value)
        )

    return match


def nats_servers(home: Path) -> list[int]:
    match = _with_option("nats-server", "-sd", home / "nats")
    return [pid for pid, argv in home_processes(home).items() if match(argv)]


def postmasters(home: Path) -> list[int]:
    match = _with_option("postgres", "-D", home / "postgres")
    return [pid for pid, argv in home_processes(home).items() if match(argv)]


def read_pids(home: Path) -> dict[str, int]:
    return json.loads((home / "run" / "pids.json").read_text())


class Up:
    """One `botranks up` on ``home``, its output in ``log``, in a session (process group) of its own."""

    def __init__(self, home: Path, log: Path) -> None:
        self.home, self.log = home, log
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("BOTRANKS_")}
        env["BOTRANKS_HOME"] = str(home)
        self.env = env
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tools.cli", "up", "--port", str(self.port)],
            cwd=ROOT,
            env=env,
            stdout=open(log, "ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def health(self) -> int:
        try:
            return httpx.get(self.base + "/healthz", timeout=5).status_code
        except httpx.HTTPError:
            return 0

    def wait_healthy(self, timeout: float = 120) -> None:
        def healthy() -> bool:
            assert self.process.poll() is None, self.output()[-3000:]
            return self.health() == 200

        wait_until(healthy, timeout, "botranks up to be healthy")

    def signal_group(self, sig: int) -> None:
        """What a terminal does: the signal goes to the whole foreground process group."""
        os.killpg(self.process.pid, sig)

    def output(self, since: int = 0) -> str:
        return self.log.read_bytes()[since:].decode(errors="replace")


@pytest.fixture
def home(tmp_path):
    home = (tmp_path / "home").resolve()
    yield home
    # never leak a server into the rest of the suite, whatever happened
    stop_pids([pid for pid, argv in home_processes(home).items() if not argv or Path(argv[0]).name != "postgres"], 2)
    stop_postmaster(home / "postgres")
    stop_pids(list(home_processes(home)), 2)


def wait_all_gone(home: Path, timeout: float) -> float:
    started = time.monotonic()
    wait_until(lambda: not home_processes(home), timeout, f"every process of {home} to be gone: {home_processes(home)}")
    return time.monotonic() - started


def test_sighup_stops_everything_embedded_servers_included(home, tmp_path):
    up = Up(home, tmp_path / "up.log")
    up.wait_healthy()
    pids = read_pids(home)
    assert set(pids) == {"supervisor", *ALL}
    assert pids["supervisor"] == up.process.pid
    for name in SERVICES + (GATEWAY, "nats"):  # every child in a session of its own: the terminal never reaches it
        assert os.getsid(pids[name]) == pids[name], name
    assert len(nats_servers(home)) == 1 and len(postmasters(home)) == 1

    at = len(up.log.read_bytes())
    up.signal_group(signal.SIGHUP)  # the terminal was closed
    assert up.process.wait(10) == 0
    wait_all_gone(home, 10)
    output = up.output(at)
    assert "Traceback" not in up.output(), output
    for name in ALL:
        assert f'"service": "{name}"' in output, output
    assert json.loads((home / "postgres" / ".handle_pids.json").read_text()) == []
    assert not (home / "run" / "pids.json").exists()


def test_a_second_up_on_the_same_home_refuses_at_once(home, tmp_path):
    first = Up(home, tmp_path / "first.log")
    first.wait_healthy()
    nats_before, postmasters_before = nats_servers(home), postmasters(home)

    started = time.monotonic()
    second = subprocess.run(
        [sys.executable, "-m", "tools.cli", "up", "--port", str(free_port())],
        cwd=ROOT,
        env=first.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert time.monotonic() - started < 15  # at once: nothing is started, nothing waited for
    assert second.returncode != 0
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1, second.stderr
    assert "already running" in lines[0] and str(first.process.pid) in lines[0] and str(home) in lines[0]
    assert second.stdout == ""
    assert (home / "run" / "up.lock").read_text().strip() == str(first.process.pid)

    # the first one did not notice
    assert nats_servers(home) == nats_before and postmasters(home) == postmasters_before
    assert first.process.poll() is None and first.health() == 200

    first.process.send_signal(signal.SIGTERM)  # SIGTERM to the supervisor alone (e.g. systemd, kill)
    assert first.process.wait(10) == 0
    wait_all_gone(home, 10)
    assert "Traceback" not in first.output()


def test_kill_9_of_the_supervisor_takes_its_children_and_the_next_up_starts_clean(home, tmp_path):
    first = Up(home, tmp_path / "first.log")
    first.wait_healthy()
    pids = read_pids(home)
    first.process.kill()  # kill -9 of `botranks up` itself
    first.process.wait(10)

    children = [pids[name] for name in SERVICES + (GATEWAY, "nats")]
    wait_until(
        lambda: not any(pid_alive(pid) for pid in children),
        5,
        "the services and nats-server to die with their supervisor",
    )
    # PostgreSQL (daemonized by pg_ctl) outlives it: the next `up` adopts it

    second = Up(home, tmp_path / "second.log")
    second.wait_healthy()
    assert len(nats_servers(home)) == 1, home_processes(home)
    assert len(postmasters(home)) == 1, home_processes(home)
    running = {name: service for name, service in read_pids(home).items()}
    assert running["supervisor"] == second.process.pid
    assert all(pid_alive(running[name]) for name in ALL)
    handles = json.loads((home / "postgres" / ".handle_pids.json").read_text())
    assert pids["supervisor"] not in handles and second.process.pid in handles

    second.signal_group(signal.SIGINT)
    assert second.process.wait(10) == 0
    wait_all_gone(home, 10)  # PostgreSQL too: the dead supervisor's handle no longer keeps it up
    assert "Traceback" not in second.output()


def test_ctrl_c_with_a_hung_child_stops_everything_within_seconds(home, tmp_path):
    up = Up(home, tmp_path / "up.log")
    up.wait_healthy()
    pids = read_pids(home)
    os.kill(pids["projector"], signal.SIGSTOP)  # a child that does not react to SIGTERM

    at = len(up.log.read_bytes())
    started = time.monotonic()
    up.signal_group(signal.SIGINT)  # Ctrl-C
    up.process.wait(15)
    elapsed = time.monotonic() - started
    assert elapsed < 8, elapsed
    assert up.process.returncode == 0
    wait_all_gone(home, max(0.5, 8 - elapsed))

    output = up.output(at)
    assert "Traceback" not in up.output(), output
    events = [json.loads(line) for line in output.splitlines()]  # JSON lines and nothing else
    assert all(e.get("component") == "supervisor" for e in events), output
    per_service = [e for e in events if e["event"] != "stopped"]
    assert sorted(e["service"] for e in per_service) == sorted(ALL), output  # one line per service
    outcome = {e["service"]: e["event"] for e in per_service}
    assert outcome["projector"] == "service_killed"
    assert all(outcome[name] == "service_stopped" for name in ALL if name != "projector"), outcome
    assert events[-1]["event"] == "stopped"


def test_leftovers_of_a_crashed_run_are_stopped_and_unrelated_pids_spared(home, tmp_path):
    """Processes the parent-death signal could not stop (here: SIGSTOPped, so the SIGTERM stays
    pending) are stopped by the next `up`; a pid of run/pids.json that now belongs to something
    else is left alone."""
    first = Up(home, tmp_path / "first.log")
    first.wait_healthy()
    pids = read_pids(home)
    stuck = {name: pids[name] for name in ("market_data", "nats")}
    for pid in stuck.values():
        os.kill(pid, signal.SIGSTOP)
    first.process.kill()
    first.process.wait(10)
    time.sleep(1)
    assert all(pid_alive(pid) for pid in stuck.values())

    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])  # not of this home
    try:
        pids_file = home / "run" / "pids.json"
        pids_file.write_text(json.dumps({**json.loads(pids_file.read_text()), "projector": bystander.pid}))

        second = Up(home, tmp_path / "second.log")
        second.wait_healthy()
        assert not any(pid_alive(pid) for pid in stuck.values())
        assert bystander.poll() is None, "an unrelated process was killed"
        assert len(nats_servers(home)) == 1 and len(postmasters(home)) == 1, home_processes(home)
        log = [json.loads(line) for line in second.output().splitlines() if line.startswith("{")]
        cleaned = {e["process"]: e["pid"] for e in log if e["event"] == "leftover_stopped"}
        assert cleaned == {name: pid for name, pid in stuck.items()}, cleaned
        assert any(e["event"] == "embedded_postgres_adopted" for e in log)

        second.signal_group(signal.SIGTERM)
        assert second.process.wait(10) == 0
        wait_all_gone(home, 10)
    finally:
        bystander.kill()
        bystander.wait()


# ---------------------------------------------------------------- the pieces, without a running `up`


def test_up_lock_is_exclusive_names_its_holder_and_dies_with_it(tmp_path):
    from tools.supervisor import AlreadyRunning, UpLock

    first = UpLock(tmp_path)
    first.acquire()
    try:
        with pytest.raises(AlreadyRunning) as refused:
            UpLock(tmp_path).acquire()  # another open file description: refused even in-process
        assert refused.value.pid == os.getpid() and f"pid {os.getpid()}" in str(refused.value)
        holder = subprocess.Popen(
            [
                sys.executable,
                "-c",
                (
                    "import fcntl, os, sys, time\n"
                    f"fd = os.open({str(tmp_path / 'other.lock')!r}, os.O_RDWR | os.O_CREAT)\n"
                    "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)"
                ),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert holder.stdout.readline().strip() == "locked"
        holder.kill()  # kill -9: the kernel drops its lock
        holder.wait()
        fd = os.open(tmp_path / "other.lock", os.O_RDWR)
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.close(fd)
    finally:
        first.release()
    again = UpLock(tmp_path)
    again.acquire()
    again.release()


def test_only_processes_of_this_home_count_as_leftovers(tmp_path):
    from tools.embedded import is_postmaster_of, nats_servers_of
    from tools.supervisor import leftovers, service_of

    home = (tmp_path / "home").resolve()
    (home / "run").mkdir(parents=True)
    script = "import time; time.sleep(60)"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTRANKS_")}
    ours = subprocess.Popen(
        [sys.executable, "-c", script, "-m", "services.projector.main"], env={**env, "BOTRANKS_HOME": str(home)}
    )
    other_home = subprocess.Popen(
        [sys.executable, "-c", script, "-m", "services.projector.main"],
        env={**env, "BOTRANKS_HOME": str(tmp_path / "elsewhere")},
    )
    unrelated = subprocess.Popen([sys.executable, "-c", script], env={**env, "BOTRANKS_HOME": str(home)})
    try:
        wait_until(
            lambda: all(proc_cmdline(p.pid) and "-c" in proc_cmdline(p.pid) for p in (ours, other_home, unrelated)),
            10,
            "the processes to exec",
        )
        assert service_of(ours.pid, home) == "projector"
        assert service_of(other_home.pid, home) is None and service_of(unrelated.pid, home) is None
        (home / "run" / "pids.json").write_text(json.dumps({"projector": unrelated.pid, "nats": other_home.pid}))
        assert leftovers(home) == {ours.pid: "projector"}
        assert nats_servers_of(home / "nats") == []
        assert not is_postmaster_of(unrelated.pid, home / "postgres")
    finally:
        for p in (ours, other_home, unrelated):
            p.kill()
            p.wait()


def test_dead_pids_are_pruned_from_pgservers_handle_list(tmp_path):
    from tools.embedded import prune_handle_pids

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / ".handle_pids.json").write_text(json.dumps([dead.pid, os.getpid()]))
    assert prune_handle_pids(tmp_path) == [os.getpid()]
    assert json.loads((tmp_path / ".handle_pids.json").read_text()) == [os.getpid()]
