"""``/healthz``, ``/readyz`` and ``/metrics`` for the services without an HTTP API (projector, relay),
on ``BOTRANKS_HEALTH_PORT``: a small Litestar app served by uvicorn inside the service's own event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import uvicorn
from litestar import Litestar, Response, get
from prometheus_client.registry import Collector

from .metrics import CONTENT_TYPE_LATEST, exposition

#: what a readiness check answers: ready or not, and the body that says why
Readiness = Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]


def health_app(service: str, readiness: Readiness, collectors: Iterable[Collector] = ()) -> Litestar:
    collectors = list(collectors)

    @get("/healthz", sync_to_thread=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @get("/readyz")
    async def readyz() -> Response:
        try:
            ready, body = await asyncio.wait_for(readiness(), 3.0)
        except Exception as exc:  # noqa: BLE001 - whatever it is, the answer is "not ready"
            ready, body = False, {"detail": str(exc) or type(exc).__name__}
        return Response({"service": service, "status": "ok" if ready else "unavailable", **body},
                        status_code=200 if ready else 503)

    @get("/metrics")
    async def metrics() -> Response:
        return Response(await asyncio.to_thread(exposition, collectors), media_type=CONTENT_TYPE_LATEST)

    return Litestar(route_handlers=[healthz, readyz, metrics], openapi_config=None)


class HealthServer:
    """``app`` served at ``host:port`` (port 0: not at all) as a task of the running loop; the service
    keeps its own signal handlers."""

    def __init__(self, app: Litestar, host: str, port: int) -> None:
        self.port = port
        self._server = uvicorn.Server(uvicorn.Config(app, host=host, port=port or 1, log_level="warning",
                                                     access_log=False, lifespan="off"))
        self._server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
        self._task: asyncio.Task | None = None

    def start(self) -> "HealthServer":
        if self.port:
            self._task = asyncio.create_task(self._server.serve())
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._server.should_exit = True
            await asyncio.gather(self._task, return_exceptions=True)
