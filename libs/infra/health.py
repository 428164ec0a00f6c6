"""Health of a service: :class:`DatabaseProbe` (what every ``/healthz`` answers), and ``/healthz``,
``/readyz`` and ``/metrics`` for the services without an HTTP API (projector, relay), on
``BOTRANKS_HEALTH_PORT``: a small Litestar app served by uvicorn inside the service's own event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

import psycopg
import structlog
import uvicorn
from litestar import Litestar, Response, get
from prometheus_client.registry import Collector

from .metrics import CONTENT_TYPE_LATEST, exposition

#: what a readiness check answers: ready or not, and the body that says why
Readiness = Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]

#: ``/healthz`` answers within this, whatever the database does
PROBE_TIMEOUT_S = 0.7

log = structlog.get_logger(component="health")


class DatabaseProbe:
    """``SELECT 1`` on a connection of its own (not the pool's: a busy pool is not a dead database),
    answered within ``timeout`` even when the server hangs; concurrent checks share one probe.
    Create and use it in one event loop."""

    def __init__(self, url: str, timeout: float = PROBE_TIMEOUT_S) -> None:
        self.url, self.timeout = url, timeout
        self._conn: psycopg.AsyncConnection | None = None
        self._probing: asyncio.Task | None = None
        self._down = False

    async def check(self) -> str | None:
        """None while the database answers, else why not (no server details: strangers may read it)."""
        if self._probing is None or self._probing.done():
            self._probing = asyncio.create_task(self._probe())
            self._probing.add_done_callback(lambda task: task.cancelled() or task.exception())
        probing = self._probing
        await asyncio.wait({probing}, timeout=self.timeout)
        if not probing.done() or probing.cancelled():
            if self._probing is probing:
                # left to end on its own, with its connection: cancelling a statement makes psycopg
                # ask the server to cancel it (up to 10 s when the server hangs)
                self._probing = None
                probing.cancel()
            return self._failed(f"Database did not answer within {self.timeout} s", "no answer")
        if probing.exception() is not None:
            error = probing.exception()
            return self._failed("Database unreachable", str(error).strip() or type(error).__name__)
        if self._down:
            log.info("database_up")
        self._down = False
        return None

    def _failed(self, detail: str, error: str) -> str:
        if not self._down:
            log.warning("database_down", error=error)
        self._down = True
        return detail

    async def _probe(self) -> None:
        conn, self._conn = self._conn, None  # this probe's own until it answers
        try:
            if conn is None or conn.closed:
                conn = await psycopg.AsyncConnection.connect(
                    self.url, autocommit=True, connect_timeout=max(1, round(self.timeout))
                )
            await conn.execute("SELECT 1")
        except BaseException:
            if conn is not None:
                await _close(conn)
            raise
        if self._conn is None:
            self._conn = conn
        else:
            await _close(conn)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await _close(conn)


async def _close(conn: psycopg.AsyncConnection) -> None:
    with contextlib.suppress(Exception):
        await conn.close()


async def healthz_response(service: str, probe: DatabaseProbe) -> Response:
    """``/healthz``: 200 while the service's database answers, else 503 (within ``probe.timeout``)."""
    problem = await probe.check()
    if problem is None:
        return Response({"status": "ok", "service": service, "database": "up"})
    return Response(
        {"status": "unavailable", "service": service, "database": "down", "detail": problem},
        status_code=503,
        headers={"Retry-After": "2"},
    )


def health_app(
    service: str, readiness: Readiness, probe: DatabaseProbe, collectors: Iterable[Collector] = ()
) -> Litestar:
    collectors = list(collectors)

    @get("/healthz")
    async def healthz() -> Response:
        return await healthz_response(service, probe)

    @get("/readyz")
    async def readyz() -> Response:
        try:
            problem = await probe.check()  # within 1 s, where the pool would wait for a connection
            if problem is not None:
                raise ConnectionError(problem)
            ready, body = await asyncio.wait_for(readiness(), 3.0)
        except Exception as exc:  # noqa: BLE001 - whatever it is, the answer is "not ready"
            ready, body = False, {"detail": str(exc) or type(exc).__name__}
        return Response(
            {"service": service, "status": "ok" if ready else "unavailable", **body}, status_code=200 if ready else 503
        )

    @get("/metrics")
    async def metrics() -> Response:
        return Response(await asyncio.to_thread(exposition, collectors), media_type=CONTENT_TYPE_LATEST)

    return Litestar(route_handlers=[healthz, readyz, metrics], openapi_config=None)


class _QuietServer(uvicorn.Server):
    """uvicorn's server without its signal handlers (the service keeps its own)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HealthServer:
    """``app`` served at ``host:port`` (port 0: not at all) as a task of the running loop; the service
    keeps its own signal handlers."""

    def __init__(self, app: Litestar, host: str, port: int) -> None:
        self.port = port
        self._server = _QuietServer(
            uvicorn.Config(app, host=host, port=port or 1, log_level="warning", access_log=False, lifespan="off")
        )
        self._task: asyncio.Task | None = None

    def start(self) -> HealthServer:
        if self.port:
            self._task = asyncio.create_task(self._server.serve())
        return self

    async def stop(self) -> None:
        if self._task is not None:
            # a stopping service does not wait for its health checks to be answered
            self._server.should_exit = self._server.force_exit = True
            await asyncio.gather(self._task, return_exceptions=True)
