"""One HTTP surface from two APIs: ``botranks up`` (and deploy/'s proxy) sends GET/HEAD of ``/api/v1``
and of the public pages to query_api and every other request to command_api, so neither API alone
knows every method of a path (``POST /api/v1/strategies/{id}/state`` reaches command_api, which has
no ``/state``). Each API is given the other's app (built, never served: ``peers``) and answers
for both:

- a method no API serves on a path one of them knows: 405 with ``Allow`` naming every method of
  the path in both (not 404, nor only this API's methods);
- ``OPTIONS``: 204 with that same ``Allow``;
- ``/schema/openapi.json``: one OpenAPI document of both APIs (``libs.infra.openapi``).

``peers_of`` builds the other API's app; the APIs are named here by module, imported only when called
(each API imports this module, so importing them at load time would be a circle).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from litestar import Litestar, MediaType, Request, Response
from litestar.exceptions import MethodNotAllowedException, NotFoundException

from libs.infra.settings import Settings

APPS = {"command_api": "services.command_api.app", "query_api": "services.query_api.app"}

_SEGMENT = re.compile(r"\{(\w+):(\w+)\}")


class _Template:
    """A route's path template as a regex. Parameters match any segment (``path``: the rest), as in
    Litestar's router, which answers 405 before it parses a parameter (404 after, for a bad one)."""

    def __init__(self, path: str, methods: Iterable[str]) -> None:
        self.path, self.methods = path, frozenset(methods)
        pattern, last = "", 0
        for m in _SEGMENT.finditer(path):
            pattern += re.escape(path[last : m.start()]) + (
                f"(?P<{m[1]}>.*)" if m[2] == "path" else f"(?P<{m[1]}>[^/]+)"
            )
            last = m.end()
        self.regex = re.compile(pattern + re.escape(path[last:]) + r"\Z")
        self.static = "{" not in path

    def match(self, path: str) -> bool:
        return self.regex.match(path) is not None


class Surface:
    """The routes and OpenAPI document of several Litestar apps served at one base URL."""

    def __init__(self, apps: Sequence[Litestar]) -> None:
        self.apps = list(apps)
        self.templates = [
            # per app, static paths first: Litestar prefers /schema/openapi.json to /schema/{path:str}
            sorted(
                (_Template(r.path, r.methods) for r in app.routes if hasattr(r, "methods")), key=lambda t: not t.static
            )
            for app in self.apps
        ]
        self._document: dict[str, Any] | None = None

    def methods(self, path: str) -> frozenset[str]:
        """Every method some app serves on ``path`` (empty: no app knows the path)."""
        if len(path) > 1:
            path = path.rstrip("/") or "/"
        found: set[str] = set()
        for templates in self.templates:
            match = next((t for t in templates if t.match(path)), None)
            if match is not None:
                found |= match.methods
        return frozenset(found)

    def document(self) -> dict[str, Any]:
        """The apps' OpenAPI documents as one (built once)."""
        if self._document is None:
            from .openapi import merged_document

            self._document = merged_document(
                [app.openapi_schema.to_schema() for app in self.apps],
                {path: item for app in self.apps for path, item in getattr(app.state, "openapi_paths", {}).items()},
            )
        return self._document


def allow_header(methods: Iterable[str]) -> str:
    return ", ".join(sorted(methods))


def _surface(request: Request) -> Surface | None:
    return getattr(request.app.state, "surface", None)


def routing_answer(request: Request, exc: Exception) -> Response | None:
    """For a path no route of this app takes with this method: 405 (``Allow`` across the APIs) when
    no API serves the method there, 204 with ``Allow`` for OPTIONS; None when this does not apply."""
    if not isinstance(exc, (NotFoundException, MethodNotAllowedException)):
        return None
    surface = _surface(request)
    if surface is None:
        return None
    methods = surface.methods(request.url.path)
    if not methods:
        return None
    if request.method == "OPTIONS":
        return Response(None, status_code=204, headers={"Allow": allow_header(methods)}, media_type=MediaType.TEXT)
    if request.method in methods:  # served on this path, by the other API (a request that bypassed the proxy)
        return None
    return Response(
        {"detail": f"Method {request.method[:20]} not allowed on this path"},
        status_code=405,
        media_type=MediaType.JSON,
        headers={"Allow": allow_header(methods)},
    )


def allow_across_apis(app):
    """ASGI middleware: the ``Allow`` of an answer to OPTIONS names the methods of both APIs."""

    async def middleware(scope, receive, send):
        if scope["type"] != "http" or scope.get("method") != "OPTIONS":
            await app(scope, receive, send)
            return
        surface = getattr(scope["app"].state, "surface", None)

        async def send_allow(message):
            if message["type"] == "http.response.start" and surface is not None:
                methods = surface.methods(scope["path"])
                if methods:
                    headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
                    message = {**message, "headers": [*headers, (b"allow", allow_header(methods).encode())]}
            await send(message)

        await app(scope, receive, send_allow)

    return middleware


def peers_of(service: str, settings: Settings) -> Callable[[], list[Litestar]]:
    """What builds the apps of the APIs other than ``service`` (imported when called)."""

    def build() -> list[Litestar]:
        return [
            importlib.import_module(module).create_app(settings) for name, module in APPS.items() if name != service
        ]

    return build
