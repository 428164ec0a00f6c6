"""Response headers: the security headers of every answer (the API's CSP, or the pages'), and the
RateLimit-* headers of requests that passed the API-key guard."""

from __future__ import annotations

from litestar.datastructures import ResponseHeader

#: every API answer (JSON) loads nothing at all
API_CSP = "default-src 'none'; frame-ancestors 'none'"
#: HTML pages: scripts, styles and images from our own origin only (no inline script; Swagger UI
#: and the server-drawn charts set inline styles, hence 'unsafe-inline' for styles only), never framed
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:;"
    " frame-ancestors 'none'"
)
CSP_HEADER = "Content-Security-Policy"

SECURITY_HEADERS = [
    ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
    ResponseHeader(name="X-Frame-Options", value="DENY"),
    ResponseHeader(name="Referrer-Policy", value="no-referrer"),
    ResponseHeader(name=CSP_HEADER, value=API_CSP),
    ResponseHeader(name="Cache-Control", value="no-store"),
]


def page_security_headers() -> list[ResponseHeader]:
    """SECURITY_HEADERS with the pages' CSP instead of the API's: set on a router or handler of HTML
    pages (Litestar's closest layer wins, header by header); its JSON keeps the API's."""
    return [ResponseHeader(name=CSP_HEADER, value=PAGE_CSP) if h.name == CSP_HEADER else h for h in SECURITY_HEADERS]


def rate_limit_headers(app):
    """ASGI middleware: RateLimit-* headers on responses to requests that passed the key guard."""

    async def middleware(scope, receive, send):
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                rate = scope.get("state", {}).get("rate")
                if rate is not None:
                    extra = [(k.lower().encode(), v.encode()) for k, v in rate.headers().items()]
                    message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await app(scope, receive, send_with_headers)

    return middleware
