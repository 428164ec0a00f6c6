"""Where the front door sends each request: one table, for ``botranks up``'s Caddy and the checks of deploy/.

Reads of the ledger (GET/HEAD under ``/api/v1/``) and the subscribers' pages (GET/HEAD of ``/``,
``/docs``, ``/methodology``, ``/compare``, ``/s/*``, ``/p/*``, ``/static/*``, ``/u/*``) go to query_api; everything else
(ledger writes, accounts, the owners' pages under ``/account``, strategies, API keys) to command_api. The
operational paths are answered by the gateway's own ops app (``ops.py``): the aggregate
``/healthz``, ``/readyz`` and ``/metrics`` of every service and the union of both APIs' OpenAPI
schemas. ``/readyz`` and ``/metrics`` are private: loopback clients, or a bearer token.
"""

from __future__ import annotations

from typing import Literal

Target = Literal["query", "command"]

PAGE_PATHS = frozenset({"/", "/docs", "/methodology", "/compare"})
PAGE_PREFIXES = ("/s/", "/p/", "/static/", "/u/")
#: answered by the ops app: (path, methods); None: every method
OPS_ROUTES: dict[str, frozenset[str] | None] = {
    "/healthz": None,
    "/readyz": frozenset({"GET"}),
    "/metrics": frozenset({"GET"}),
    "/schema/openapi.json": frozenset({"GET"}),
}
#: of those, the ones a stranger may not read (partition lag, quarantine list, per-route counts)
PRIVATE_OPS_PATHS = ("/readyz", "/metrics")


def is_page(path: str) -> bool:
    return path in PAGE_PATHS or path.startswith(PAGE_PREFIXES)


def target(method: str, path: str) -> Target:
    """The API that serves (method, path) when the ops app does not."""
    if method in ("GET", "HEAD") and (path.startswith("/api/v1/") or is_page(path)):
        return "query"
    return "command"


def is_ops(method: str, path: str) -> bool:
    methods = OPS_ROUTES.get(path, frozenset())
    return methods is None or method in methods
