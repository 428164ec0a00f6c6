"""The API-key guard of every ``/api/v1/strategies/{id}/...`` route (bots' credentials).

It runs before the body is read: no/invalid/revoked key → 401, over the limit → 429, unknown
strategy → 404, another strategy's key → 403 (the identity owner decides, in one statement that the
process's ``KeyGate`` shares among the requests waiting at the same moment: ``libs.infra.key_gate``).
The key's rate state goes on ``connection.state.rate`` for the RateLimit-* headers, the whole verdict
(with the versions the read caches key on) on ``connection.state.checked``.
"""

from __future__ import annotations

from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler


async def api_key_guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """Litestar guard: check the bearer key against the strategy of the path."""
    checked = await connection.app.state.key_gate.check(
        connection.headers.get("authorization"), connection.path_params["strategy_id"]
    )
    connection.state.checked = checked
    connection.state.rate = checked.rate
