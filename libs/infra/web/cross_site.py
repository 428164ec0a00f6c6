"""Cross-site requests: the middleware that refuses unsafe cookie-authenticated requests coming
from another site (Origin / Sec-Fetch-Site), and the origin normalisation it compares with."""

from __future__ import annotations

import structlog
from litestar.exceptions import PermissionDeniedException

log = structlog.get_logger()


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
CROSS_SITE_DETAIL = "Cross-site request refused"
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def normalize_origin(origin: str) -> str | None:
    """``scheme://host[:port]`` lower-cased, default port dropped; None for anything else (``null``)."""
    scheme, sep, rest = origin.strip().lower().partition("://")
    rest = rest.rstrip("/")
    if not sep or scheme not in _DEFAULT_PORTS or not rest or any(c in rest for c in "/?#@ \t"):
        return None
    host, port = rest, None
    if rest.startswith("["):  # [v6]:port
        end = rest.find("]")
        if end < 0:
            return None
        host, after = rest[: end + 1], rest[end + 1 :]
        if after:
            if not after.startswith(":"):
                return None
            port = after[1:]
    elif ":" in rest:
        host, _, port = rest.rpartition(":")
    if port is not None:
        if not port.isdigit():
            return None
        if int(port) != _DEFAULT_PORTS[scheme]:
            return f"{scheme}://{host}:{int(port)}"
    return f"{scheme}://{host}"


def cross_site_guard(allowed_origins: tuple[str, ...] | list[str] = ()):
    """Litestar middleware: refuse unsafe requests (not GET/HEAD/OPTIONS/TRACE) from another site.

    Cookie-authenticated routes (everything outside ``/api/v1``, whose routes take API keys
    only) answer 403 ``Cross-site request refused`` when the browser says the request comes
    from elsewhere: an ``Origin`` that is neither the request's own (``scope["scheme"]`` and
    ``Host``; behind a trusted proxy ``serve`` has already put X-Forwarded-Proto/-Host there)
    nor in ``allowed_origins`` (``null`` only with ``Sec-Fetch-Site: same-origin``), or ``Sec-Fetch-Site: cross-site``
    without an allowed Origin. A request with neither header (curl, scripts) passes. It runs
    before guards and before the body is read. JSON bodies additionally need
    ``Content-Type: application/json`` (``ExactJSONRequest``), which a page on another site
    cannot send without a CORS preflight, never granted here.
    """
    normalized = {origin: normalize_origin(origin) for origin in allowed_origins}
    for origin, value in normalized.items():
        if value is None:
            raise ValueError(f"BOTRANKS_ALLOWED_ORIGINS: {origin!r} is not an origin (scheme://host[:port])")
    allowed = frozenset(v for v in normalized.values() if v)

    def middleware(app):
        async def guard(scope, receive, send):
            if (
                scope["type"] == "http"
                and scope.get("method", "GET").upper() not in SAFE_METHODS
                and not _key_authenticated(scope)
                and _cross_site(scope, allowed)
            ):
                log.warning(
                    "cross_site_request_refused",
                    path=scope.get("path"),
                    method=scope.get("method"),
                    origin=_header(scope, b"origin"),
                    sec_fetch_site=_header(scope, b"sec-fetch-site"),
                )
                raise PermissionDeniedException(CROSS_SITE_DETAIL)
            await app(scope, receive, send)

        return guard

    return middleware


def _key_authenticated(scope) -> bool:
    """Routes under /api/v1 take API keys only (judged by the matched route, not the raw path)."""
    template = scope.get("path_template") or ""
    return template == "/api/v1" or template.startswith("/api/v1/")


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def _cross_site(scope, allowed: frozenset[str]) -> bool:
    origin = _header(scope, b"origin")
    fetch_site = (_header(scope, b"sec-fetch-site") or "").strip().lower()
    if origin is None:
        return fetch_site == "cross-site"
    normalized = normalize_origin(origin)
    if normalized is None:  # "null" (sandboxed frames, opaque redirects, no-referrer pages) or garbage
        # a browser's own form under a no-referrer policy says "null", and Sec-Fetch-Site (which
        # no page can set) says where it really comes from
        return fetch_site != "same-origin"
    if normalized in allowed:
        return False
    if fetch_site == "cross-site":
        return True
    host = _header(scope, b"host")
    own = normalize_origin(f"{scope.get('scheme', 'http')}://{host}") if host else None
    return normalized != own
