"""Assembly of the query API: the shared service skeleton, plus a per-process cache of
/performance answers keyed by everything they depend on, the subscribers' pages, and the limits of
downloads and page requests per client address (``downloads``)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable

from litestar import Litestar

from libs.infra.db import Database
from libs.infra.page_gate import PageGate
from libs.infra.service_app import create_service_app
from libs.infra.settings import Settings
from libs.infra.surface import peers_of

from . import assets, compare, downloads, embed, feed, fx_routes, methodology, pages, profiles, readers
from .page_data import PageCache
from .public_schema import PATHS as PUBLIC_PATHS
from .read_cache import ReadCache
from .routes import StrategyQueries


async def _start(app: Litestar, db: Database, settings: Settings) -> Callable[[], Awaitable[None]]:
    app.state.performance = functools.lru_cache(maxsize=4096)(functools.partial(readers.performance, db))
    app.state.pages = PageCache(db)
    app.state.reads = ReadCache()  # /state and /performance under the versions the key check read
    app.state.build = assets.build_version()
    app.state.downloads = downloads.DownloadSlots(settings.downloads_per_process, settings.downloads_per_address)
    app.state.page_buckets = downloads.page_buckets(settings)
    await asyncio.to_thread(assets.preload)
    app.state.methodology = await asyncio.to_thread(methodology.load)
    # the strategy pages' profile, session and versions: one round trip for all the requests of a moment
    app.state.page_gate = PageGate(settings.database_url)
    app.state.page_gate.start()
    return app.state.page_gate.close


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings.from_env().require_servers()
    return create_service_app(
        "query_api",
        settings,
        [
            StrategyQueries,
            fx_routes.get_fx,
            *pages.routes(),
            feed.strategy_feed,
            *compare.routes(),
            *embed.ROUTES,
            *profiles.routes(),
        ],
        setup=_start,
        peers=peers_of("query_api", settings),
        openapi_paths=PUBLIC_PATHS,
        middleware=[downloads.page_rate_limit],
        template_config=pages.template_config(),
    )
