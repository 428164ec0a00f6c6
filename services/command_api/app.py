"""Assembly of the command API: the shared service skeleton, plus the read-your-writes waiter and
the event store's group commit, set up in the lifespan (the relay is a process of its own:
``botranks relay``)."""

from __future__ import annotations

from litestar import Litestar

from libs.infra.db import Database
from libs.infra.service_app import create_service_app
from libs.infra.settings import Settings
from libs.infra.surface import peers_of
from libs.infra.web import cross_site_guard

from . import accounts, pages
from .account_routes import AuthRoutes, ProfileRoutes, StrategyRoutes
from .consistency import ProjectionWaiter
from .follow_routes import FollowRoutes
from .fx_check import RateGuard
from .group_commit import GroupCommit
from .routes import LedgerCommands


async def _start(app: Litestar, db: Database, settings: Settings):
    waiter = ProjectionWaiter(db.projection, settings.database_url, settings.read_your_writes_timeout)
    waiter.start()
    app.state.waiter = waiter
    app.state.events = GroupCommit(db.events)  # concurrent requests' appends share one lock and one commit
    app.state.hash_lane = accounts.hash_lane()  # one argon2 hash at a time in this process
    app.state.rate_guard = RateGuard(db)  # fills in another currency than the base need an FX rate

    async def stop() -> None:
        await waiter.stop()

    return stop


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings.from_env().require_servers()
    # cookie-authenticated unsafe requests from another site: 403 (before guards and body); the
    # owner pages (/account) add CSRF tokens, their CSP and HTML errors on their own router
    handlers = [LedgerCommands, AuthRoutes, ProfileRoutes, StrategyRoutes, FollowRoutes, *pages.routers(settings)]
    return create_service_app(
        "command_api",
        settings,
        handlers,
        setup=_start,
        middleware=[cross_site_guard(settings.allowed_origins)],
        peers=peers_of("command_api", settings),
    )
