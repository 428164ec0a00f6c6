"""Assembly of the query API: a read-only connection pool built in the lifespan."""

from __future__ import annotations

import asyncio
import functools
from contextlib import asynccontextmanager
from typing import AsyncIterator

from litestar import Litestar, Response, get
from litestar.datastructures import State

from libs.infra.settings import Settings
from libs.infra.store import EventStore
from libs.infra.web import ExactJSONResponse, api_app_kwargs

from . import readers
from .routes import StrategyQueries

READY_TIMEOUT_S = 3.0


@get("/healthz", sync_to_thread=False, include_in_schema=False)
def healthz() -> dict[str, str]:
    return {"status": "ok", "service": "query_api"}


@get("/readyz", include_in_schema=False)
async def readyz(state: State) -> Response:
    """200 while the database answers (with the projector's lag and quarantined strategies), else 503."""
    try:
        ready = await asyncio.wait_for(asyncio.to_thread(readers.readiness, state.store), READY_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - whatever it is, the answer is "not ready"
        return Response({"status": "unavailable", "database": "down", "detail": str(exc) or type(exc).__name__},
                        status_code=503, headers={"Retry-After": "2"})
    return ExactJSONResponse(ready)


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        store = EventStore(settings.database_url, pool_size=4, max_overflow=16)
        await asyncio.to_thread(store.create_tables)
        app.state.store, app.state.settings = store, settings
        app.state.performance = functools.lru_cache(maxsize=4096)(functools.partial(readers.performance, store))
        try:
            yield
        finally:
            await asyncio.to_thread(store.close)

    return Litestar(route_handlers=[StrategyQueries, healthz, readyz], lifespan=[lifespan], **api_app_kwargs())
