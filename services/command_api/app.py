"""Assembly of the command API: event store, relay and projection waiter are built in the lifespan."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import AsyncIterator

from litestar import Litestar, get

from libs.infra.settings import Settings
from libs.infra.store import EventStore
from libs.infra.web import api_app_kwargs, cross_site_guard

from . import accounts
from .account_routes import AuthRoutes, StrategyRoutes
from .consistency import ProjectionWaiter
from .relay import Relay
from .routes import LedgerCommands


@get("/healthz", sync_to_thread=False, include_in_schema=False)
def healthz() -> dict[str, str]:
    return {"status": "ok", "service": "command_api"}


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        store = EventStore(settings.database_url, pool_size=4, max_overflow=16)
        await asyncio.to_thread(store.create_tables)
        relay = Relay(store, settings.nats_url)
        task = asyncio.create_task(relay.run())
        app.state.store, app.state.relay, app.state.settings = store, relay, settings
        app.state.waiter = ProjectionWaiter(store, settings.read_your_writes_timeout)
        app.state.hash_lane = accounts.hash_lane()  # one argon2 hash at a time in this process
        try:
            yield
        finally:
            relay.stop()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await asyncio.to_thread(store.close)

    kwargs = api_app_kwargs()
    # cookie-authenticated unsafe requests from another site: 403 (before guards and body)
    kwargs["middleware"] = [*kwargs["middleware"], cross_site_guard(settings.allowed_origins)]
    return Litestar(route_handlers=[LedgerCommands, AuthRoutes, StrategyRoutes, healthz],
                    lifespan=[lifespan], **kwargs)
