"""The skeleton both HTTP services share: a :class:`Database` in ``app.state.db`` (migrations run
at start), ``/healthz``, ``/readyz`` and ``/metrics`` (Prometheus), exact JSON, one error mapping,
security headers, and the OpenAPI document at ``/schema/openapi.json`` only (no CDN-loaded viewer
pages). Given its ``peers`` (the other API behind the same base URL), a service answers 405/OPTIONS
and serves the OpenAPI document for both (``libs.infra.surface``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Response, get
from litestar.datastructures import State
from litestar.template import TemplateConfig

from .db import Database
from .health import DatabaseProbe, healthz_response
from .key_gate import KeyGate
from .metrics import CONTENT_TYPE_LATEST, exposition, http_metrics
from .openapi import openapi_config
from .serve import freeze_startup_heap
from .settings import Settings
from .surface import Surface
from .web import ExactJSONResponse, api_app_kwargs

READY_TIMEOUT_S = 3.0

#: called in the lifespan once the database is ready; returns what to run at shutdown
Setup = Callable[[Litestar, Database, Settings], Awaitable[Callable[[], Awaitable[None]] | None]]


@get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    """Prometheus text exposition of this service (all its workers)."""
    return Response(await asyncio.to_thread(exposition), media_type=CONTENT_TYPE_LATEST)


@get("/readyz", include_in_schema=False)
async def readyz(state: State) -> Response:
    """200 while the database answers (with the projector's lag and quarantined strategies), else 503."""
    db: Database = state.db

    def check():
        return db.ledger.readiness(db.events.max_notification_id())

    try:
        problem = await state.probe.check()  # within 1 s, where the pool would wait for a connection
        if problem is not None:
            raise ConnectionError(problem)
        ready = await asyncio.wait_for(asyncio.to_thread(check), READY_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - whatever it is, the answer is "not ready"
        return Response(
            {"status": "unavailable", "database": "down", "detail": str(exc) or type(exc).__name__},
            status_code=503,
            headers={"Retry-After": "2"},
        )
    return ExactJSONResponse(ready)


def create_service_app(
    service: str,
    settings: Settings,
    handlers: Sequence[Any],
    *,
    setup: Setup | None = None,
    middleware: Sequence[Any] = (),
    template_config: TemplateConfig | None = None,
    peers: Callable[[], Sequence[Litestar]] | None = None,
    openapi_paths: dict[str, Any] | None = None,
) -> Litestar:
    """A BotRanks HTTP service named ``service`` serving ``handlers`` (HTML pages: ``template_config``).

    ``peers`` builds the apps of the other APIs at the same base URL (at start, never served);
    ``openapi_paths``: OpenAPI path items of routes Litestar cannot describe (hand-built JSON).
    """

    @get("/healthz", include_in_schema=False)
    async def healthz(state: State) -> Response:
        """200 while this service's database answers a ``SELECT 1``, else 503 (within 1 s)."""
        return await healthz_response(service, state.probe)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        db = Database(settings.database_url, pool_size=4, max_overflow=16)
        await asyncio.to_thread(db.create_tables)
        app.state.db, app.state.settings = db, settings
        app.state.surface = Surface([app, *(await asyncio.to_thread(peers) if peers else ())])
        app.state.probe = DatabaseProbe(settings.database_url)
        # the API-key checks' group commit; query_api's also reads the versions its read caches key on
        app.state.key_gate = KeyGate(
            settings.database_url, settings.rate_limit_per_minute, versions=service == "query_api"
        )
        app.state.key_gate.start()
        shutdown = await setup(app, db, settings) if setup else None
        freeze_startup_heap()
        try:
            yield
        finally:
            if shutdown is not None:
                await shutdown()
            await app.state.key_gate.close()
            await app.state.probe.close()
            await asyncio.to_thread(db.close)

    kwargs = api_app_kwargs()
    kwargs["middleware"] = [http_metrics(service), *kwargs["middleware"], *middleware]
    return Litestar(
        route_handlers=[*handlers, healthz, readyz, metrics],
        lifespan=[lifespan],
        openapi_config=openapi_config(),
        template_config=template_config,
        state=State({"openapi_paths": openapi_paths or {}}),
        **kwargs,
    )
