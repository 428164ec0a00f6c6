"""The API-key guard of every ``/api/v1/strategies/{id}/...`` route (bots' credentials).

It runs before the body is read: no/invalid/revoked key → 401, over the limit → 429, unknown
strategy → 404, another strategy's key → 403 (the identity owner decides, in one round trip).
The key's rate state goes on ``connection.state.rate`` for the RateLimit-* headers.
"""

from __future__ import annotations

from anyio import to_thread
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler


async def api_key_guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """Litestar guard: check the bearer key against the strategy of the path."""
    app_state = connection.app.state
    connection.state.rate = await to_thread.run_sync(
        app_state.db.identity.check_key,
        connection.headers.get("authorization"),
        connection.path_params["strategy_id"],
        app_state.settings.rate_limit_per_minute,
    )
