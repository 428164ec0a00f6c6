"""Pieces shared by the benchmarks: the test servers, fresh databases, a lean HTTP client, load
loops, percentiles, and what /proc says about processes (CPU time, peak RSS) and the machine."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- servers and databases


def servers() -> tuple[str, str]:
    """(admin PostgreSQL URL, NATS URL): the test suite's backends (env or the local defaults)."""
    return (
        os.environ.get("BOTRANKS_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        os.environ.get("BOTRANKS_TEST_NATS_URL", "nats://127.0.0.1:4222"),
    )


@contextmanager
def fresh_database(prefix: str = "botranks_bench") -> Iterator[str]:
    """A new, randomly named database on the admin server; dropped on the way out."""
    from devtools.stack import create_database, drop_database

    admin, _ = servers()
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    url = create_database(admin, name)
    try:
        yield url
    finally:
        drop_database(admin, name)


# ---------------------------------------------------------------- numbers


def percentile_ms(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of latencies in seconds, in milliseconds (nan when empty)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")


# ---------------------------------------------------------------- a lean HTTP/1.1 client


class HttpClient:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams: a fraction of httpx's CPU per
    request, which matters when the load generator shares two cores with the servers.

    Connections are pooled, one request at a time each (a new one opens when all are busy). A pooled
    connection idle for longer than ``MAX_IDLE_S`` is dropped (uvicorn closes them after 5 s), and a
    request on a reused connection that the server closed before answering is sent again on a new one.
    """

    MAX_IDLE_S = 4.0

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []

    @classmethod
    def for_base(cls, base: str) -> HttpClient:
        host, port = base.removeprefix("http://").rstrip("/").split(":")
        return cls(host, int(port))

    async def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        status, _, body = await self.request("GET", path, None, headers)
        return status, body

    async def post(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        status, _, answer = await self.request(
            "POST", path, body, {"Content-Type": "application/json", **(headers or {})}
        )
        return status, answer

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bool]:
        """(reader, writer, reused?)"""
        now = time.monotonic()
        while self.idle:
            reader, writer, since = self.idle.pop()
            if now - since < self.MAX_IDLE_S:
                return reader, writer, True
            writer.close()
        reader, writer = await asyncio.open_connection(self.host, self.port)
        return reader, writer, False

    async def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """(status, response headers with lower-case names, body)."""
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        if body is not None:
            extra += f"Content-Length: {len(body)}\r\n"
        message = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nAccept-Encoding: identity\r\n{extra}\r\n"
        ).encode() + (body or b"")
        while True:
            reader, writer, reused = await self._connection()
            try:
                writer.write(message)
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError) as exc:
                    if reused and not getattr(exc, "partial", b""):
                        writer.close()
                        continue  # the server had closed it: once more on a fresh connection
                    raise
                lines = head.decode("latin-1").split("\r\n")
                status = int(lines[0].split(" ", 2)[1])
                fields = {
                    k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)
                }
                if fields.get("transfer-encoding", "").lower() == "chunked":
                    parts = []
                    while True:
                        size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
                        chunk = await reader.readexactly(size + 2)
                        if size == 0:
                            break
                        parts.append(chunk[:-2])
                    data = b"".join(parts)
                else:
                    data = await reader.readexactly(int(fields.get("content-length", "0")))
            except BaseException:
                writer.close()
                raise
            if fields.get("connection", "").lower() == "close":
                writer.close()
            else:
                self.idle.append((reader, writer, time.monotonic()))
            return status, fields, data

    def close(self) -> None:
        for _, writer, _ in self.idle:
            writer.close()
        self.idle = []


async def checked(call: Awaitable[tuple[int, bytes]], what: str, timeout: float = 60.0) -> bytes:
    """The body of a request that must answer 2xx (RuntimeError otherwise). The timeout is long on
    purpose: a request the client gives up on is still served, and would load the next phase."""
    status, body = await asyncio.wait_for(call, timeout)
    if not 200 <= status < 300:
        raise RuntimeError(f"{what}: {status} {body[:200]!r}")
    return body


# ---------------------------------------------------------------- load loops (run inside a load process)


def run_async(coroutine: Awaitable[Any]) -> Any:
    """asyncio.run on uvloop when it is installed (less client CPU per request)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)  # type: ignore[arg-type]
    return uvloop.run(coroutine)  # type: ignore[arg-type]


async def wait_for_start(start_at: float | None) -> None:
    """Sleep until wall-clock ``start_at`` (so that several load processes start together)."""
    if start_at is not None:
        await asyncio.sleep(max(0.0, start_at - time.time()))


async def open_loop(
    rate: float, seconds: float, make: Callable[[int], Awaitable[dict[str, float]]], start_at: float | None = None
) -> dict[str, Any]:
    """Fire ``make(i)`` on a fixed schedule (``rate`` a second for ``seconds``): a slow answer does
    not slow the sender. Each call returns latencies by kind; errors are counted, not raised."""
    results: dict[str, list[float]] = {}
    errors: list[str] = []
    lags: list[float] = []

    async def one(i: int) -> None:
        try:
            for kind, latency in (await make(i)).items():
                results.setdefault(kind, []).append(latency)
        except Exception as exc:  # noqa: BLE001 - counted and reported
            errors.append(f"{type(exc).__name__}: {exc}")

    await wait_for_start(start_at)
    cpu = time.process_time()
    tasks = []
    start = time.perf_counter()
    for i in range(int(rate * seconds)):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        lags.append(max(0.0, time.perf_counter() - due))
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    return {
        "latencies": results,
        "errors": errors,
        "elapsed": time.perf_counter() - start,
        "sender_lag_p99": percentile_ms(lags, 0.99),
        "cpu": time.process_time() - cpu,
    }


async def closed_loop(
    connections: int, seconds: float, step: Callable[[int, int], Awaitable[int]], start_at: float | None = None
) -> dict[str, Any]:
    """``connections`` workers, each calling ``step(worker, n)`` back to back for ``seconds``; a step
    returns how many units (orders, requests) it completed. Returns units, the successful requests
    and their latencies, errors, and the time until the last answer."""
    latencies: list[float] = []
    errors: list[str] = []
    done = [0] * connections
    await wait_for_start(start_at)
    cpu = time.process_time()
    start = time.perf_counter()
    deadline = start + seconds
    last = start

    async def worker(w: int) -> None:
        nonlocal last
        n = 0
        while time.perf_counter() < deadline:
            t = time.perf_counter()
            try:
                done[w] += await step(w, n)
            except Exception as exc:  # noqa: BLE001 - counted and reported
                errors.append(f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(0.05)
            else:
                now = time.perf_counter()
                latencies.append(now - t)
                last = max(last, now)
            n += 1

    await asyncio.gather(*(worker(w) for w in range(connections)))
    return {
        "units": sum(done),
        "requests": len(latencies),
        "latencies": latencies,
        "errors": errors,
        "elapsed": last - start,
        "cpu": time.process_time() - cpu,
    }


class LoadPool:
    """Spawned load processes, started once and reused: ``run(target, [args, ...])`` runs one call
    per args tuple concurrently, each in its own process (calls last seconds: one per worker)."""

    def __init__(self, processes: int) -> None:
        self.processes = processes
        self.pool = multiprocessing.get_context("spawn").Pool(processes)

    def run(self, target: Callable[..., Any], arg_lists: list[tuple]) -> list[Any]:
        if len(arg_lists) > self.processes:
            raise ValueError(f"{len(arg_lists)} calls for {self.processes} load processes")
        pending = [self.pool.apply_async(target, args) for args in arg_lists]
        return [p.get() for p in pending]

    def close(self) -> None:
        self.pool.terminate()
        self.pool.join()


def in_processes(target: Callable[..., Any], arg_lists: list[tuple]) -> list[Any]:
    """Run ``target(*args)`` for each args tuple, each in its own (spawned) process, concurrently."""
    pool = LoadPool(len(arg_lists))
    try:
        return pool.run(target, arg_lists)
    finally:
        pool.close()


# ---------------------------------------------------------------- /proc


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (uvicorn workers, ...)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def vm_hwm_mb(pid: int) -> float:
    """Peak resident set size (VmHWM) of one process, MB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def pids_named(name: str) -> list[int]:
    """Every process whose command name is ``name`` (e.g. the PostgreSQL backends)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


def postgres_pids(database: str) -> list[int]:
    """The PostgreSQL server's own processes (postmaster, writers...) and the backends connected to
    ``database``; backends of other databases (someone else's tests) are left out."""
    pids = []
    for pid in pids_named("postgres"):
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        words = title.split(": ", 2)[-1].split()
        backend = len(words) >= 3 and ("(" in words[2] or words[2] == "[local]")
        if not backend or words[1] == database:
            pids.append(pid)
    return pids


def machine_cpu_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all cores; /proc/stat minus idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:8]]
    return (sum(fields) - fields[3] - fields[4]) / CLOCK_TICKS


def busy_share(seconds: float) -> float:
    """Share of the machine's CPU (all cores = 1.0) busy during the next ``seconds``."""
    t0, m0 = time.perf_counter(), machine_cpu_seconds()
    time.sleep(seconds)
    return (machine_cpu_seconds() - m0) / ((time.perf_counter() - t0) * (os.cpu_count() or 1))


@dataclass
class CpuUse:
    """CPU seconds by group of processes over ``wall`` seconds of a machine with ``cores`` cores;
    "other" is what the machine spent beyond the groups (work that is not part of the run)."""

    seconds: dict[str, float]
    wall: float
    cores: int

    def shares(self) -> dict[str, float]:
        """Share of the machine (all cores = 1.0) by group, plus "idle"."""
        capacity = self.wall * self.cores
        shares = {g: s / capacity for g, s in self.seconds.items()}
        shares["idle"] = max(0.0, 1 - sum(shares.values()))
        return shares

    def per_unit_ms(self, units: float) -> dict[str, float]:
        """CPU milliseconds per unit of work (order, request) by group, "other" left out."""
        return {g: s / units * 1000 for g, s in self.seconds.items() if g != "other"} if units else {}


class CpuMeter:
    """CPU time of groups of processes (``groups()`` gives their pids now: the services, PostgreSQL,
    NATS) between a ``snapshot()`` and ``since(snapshot)``; the load processes report their own."""

    def __init__(self, groups: Callable[[], dict[str, list[int]]]) -> None:
        self.groups = groups

    def snapshot(self) -> tuple[float, float, dict[str, float]]:
        return (
            time.perf_counter(),
            machine_cpu_seconds(),
            {g: sum(cpu_seconds(p) for p in pids) for g, pids in self.groups().items()},
        )

    def since(self, snapshot: tuple[float, float, dict[str, float]], load_cpu: float = 0.0) -> CpuUse:
        """CPU use since ``snapshot``; ``load_cpu``: the load processes' own CPU seconds meanwhile."""
        t0, m0, g0 = snapshot
        t1, m1, g1 = self.snapshot()
        seconds = {g: max(0.0, g1[g] - g0.get(g, 0.0)) for g in g1}
        if load_cpu:
            seconds["load generator"] = load_cpu
        seconds["other"] = max(0.0, (m1 - m0) - sum(seconds.values()))
        return CpuUse(seconds, t1 - t0, os.cpu_count() or 1)


class PgActivity:
    """What the backends of one database are doing, sampled from ``pg_stat_activity`` every
    ``interval`` s in a thread between ``start()`` and ``stop()``: a profile of PostgreSQL by
    statement (idle backends left out; one query per sample, a small load of its own)."""

    def __init__(self, url: str, database: str, interval: float = 0.02) -> None:
        self.url, self.database, self.interval = url, database, interval
        self.counts: dict[str, int] = {}
        self.rounds = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> PgActivity:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._stop.wait(self.interval):
                rows = conn.execute(
                    "SELECT state, wait_event_type, query FROM pg_stat_activity WHERE datname = %s"
                    " AND state <> 'idle' AND pid <> pg_backend_pid()",
                    (self.database,),
                ).fetchall()
                self.rounds += 1
                for state, wait, query in rows:
                    text = " ".join(query.split())
                    text = text if len(text) <= 160 else text[:157] + "..."
                    key = f"`{text}` ({state}{', waiting on ' + wait if wait and state == 'active' else ''})"
                    self.counts[key] = self.counts.get(key, 0) + 1

    def stop(self, top: int = 4) -> list[tuple[float, str]]:
        """The ``top`` statements as (average number of backends in it, statement and state)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        ranked = sorted(self.counts.items(), key=lambda kv: -kv[1])[:top]
        return [(n / max(1, self.rounds), key) for key, n in ranked]


# ---------------------------------------------------------------- the machine


def machine() -> dict[str, str]:
    """nproc, CPU model, memory, date and the code's commit, for a report's header."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown",
    )
    mem_kb = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal:")
    )
    commit = (
        subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        or "unknown"
    )
    dirty = subprocess.run(
        ["git", "--no-optional-locks", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit + (f" + uncommitted changes in {len(dirty)} tracked files" if dirty else ""),
        "python": sys.version.split()[0],
    }
