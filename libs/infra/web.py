"""HTTP plumbing shared by command_api and query_api: errors, exact JSON, headers, OpenAPI."""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

import eventsourcing.persistence as es_persistence
import msgspec
import psycopg
import psycopg_pool
import structlog
from litestar import MediaType, Request, Response
from litestar.datastructures import ResponseHeader
from litestar.exceptions import HTTPException, PermissionDeniedException, SerializationException, ValidationException
from litestar.openapi import ResponseSpec
from litestar.serialization import default_serializer
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR, HTTP_503_SERVICE_UNAVAILABLE
from litestar.types import Empty, Serializer

from botranks_domain import errors
from botranks_domain.reading import convert_input

from .metrics import REFUSED
from .openapi import DecimalAsNumberPlugin, StrictStructPlugin
from .surface import allow_across_apis, routing_answer

log = structlog.get_logger()


_exact_encoder = msgspec.json.Encoder(enc_hook=default_serializer, decimal_format="number")


class ExactJSONResponse(Response):
    """JSON with Decimals written as exact JSON numbers (not strings, not rounded floats)."""

    def render(self, content: Any, media_type: str, enc_hook: Serializer = default_serializer) -> bytes:
        if isinstance(content, bytes) or not media_type.startswith("application/json"):
            return super().render(content, media_type, enc_hook)
        encoder = (
            _exact_encoder
            if enc_hook is default_serializer
            else msgspec.json.Encoder(enc_hook=enc_hook, decimal_format="number")
        )  # one encoder for the usual case, not one per response
        return encoder.encode(content)


class UnprocessableEntity(HTTPException):
    status_code = 422


class BadRequest(HTTPException):
    status_code = 400


#: every domain error's one status (``botranks_domain.errors``)
ERROR_STATUS: dict[type[errors.DomainError], int] = {
    errors.InvalidSymbol: 400,
    errors.BadParameter: 400,
    errors.RuleBroken: 422,
    errors.NotSignedIn: 401,
    errors.NotOwner: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.TooManyRequests: 429,
}


def domain_status(exc: errors.DomainError) -> int:
    return next(status for kind, status in ERROR_STATUS.items() if isinstance(exc, kind))


class UnsupportedMediaType(HTTPException):
    status_code = 415


# ---------------------------------------------------------------- request bodies

#: the only body media type; ``; charset=utf-8`` is the only parameter accepted with it
JSON_MEDIA_TYPE = "application/json"
_CONTENT_TYPE_DETAIL = "Content-Type must be application/json"
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")  # the only way a lone surrogate gets into a str


class _BodyError(ValueError):
    """A body that is not acceptable JSON (answered with 400)."""


def _shown(text: str, limit: int = 64) -> str:
    """Client text inside an error detail: ASCII, quoted, bounded (never a lone surrogate)."""
    return json.dumps(text[:limit] + ("..." if len(text) > limit else ""))


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _BodyError(f"duplicate key {_shown(key)} in an object")
            seen.add(key)
    return obj


def _no_constants(name: str) -> Any:
    raise _BodyError(f"{name} is not a JSON number")


def _exact_number(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:  # an exponent beyond what Decimal can represent at all
        raise _BodyError(f"number {_shown(text, 40)} is out of range") from None


def _check_unicode(obj: Any) -> None:
    """Refuse strings (and keys) holding an unpaired UTF-16 surrogate escape such as ``"\\ud800"``."""
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            items: Any = (item,)
        elif isinstance(item, dict):
            stack.extend(item.values())
            items = item.keys()
        elif isinstance(item, list):
            stack.extend(item)
            continue
        else:
            continue
        for text in items:
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise _BodyError("a string contains an unpaired UTF-16 surrogate escape (\\ud800-\\udfff)") from None


def is_json_content_type(header: str | None) -> bool:
    """``application/json``, optionally with ``charset=utf-8`` (case-insensitive), and nothing else."""
    if not header:
        return False
    media, _, params = header.partition(";")
    if media.strip().lower() != JSON_MEDIA_TYPE:
        return False
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if not name.strip() and not value.strip():
            continue  # a stray ";"
        if name.strip().lower() != "charset" or value.strip().strip('"').lower() != "utf-8":
            return False
    return True


def parse_json_body(body: bytes) -> Any:
    """Strict UTF-8 JSON with every number as an exact ``Decimal`` (floats) or ``int``.

    Duplicate keys, NaN/Infinity, unpaired surrogate escapes and nesting deeper than the
    interpreter can follow are refused (``BadRequest``); nothing is ever rounded.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(
            f"Request body is not valid UTF-8: byte 0x{body[exc.start]:02x} at offset {exc.start}"
        ) from None
    try:
        obj = json.loads(
            text, parse_float=_exact_number, parse_constant=_no_constants, object_pairs_hook=_no_duplicate_keys
        )
        if _SURROGATE_ESCAPE.search(text):
            _check_unicode(obj)
    except RecursionError:
        raise BadRequest("Malformed JSON body: JSON nested too deeply") from None
    except _BodyError as exc:
        raise BadRequest(f"Malformed JSON body: {exc}") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"Malformed JSON body: {exc.msg.removesuffix(' at')} at line {exc.lineno} column {exc.colno}"
        ) from None
    except ValueError as exc:  # e.g. an integer literal over the interpreter's 4300-digit limit
        raise BadRequest(f"Malformed JSON body: {str(exc).split(';')[0]}") from None
    return obj


_JSON_TYPE_NAMES = re.compile(r"^(Expected `[^`]*`, got )`(?:int|decimal)`")


def validation_detail(exc: msgspec.ValidationError) -> str:
    """msgspec's ``"<message> - at `$.orders[0]`"`` as ``"`orders[0].quantity` must ..."``.

    A message that names its field first (our own checks: ``"`quantity` must be > 0"``) gets
    the path put in front of the field; any other gets ``(at `path`)`` appended.
    """
    text = _JSON_TYPE_NAMES.sub(r"\1`number`", str(exc))  # numbers arrive as int or Decimal: JSON says number
    message, found, where = text.rpartition(" - at `")
    if not found or not where.endswith("`"):
        return text
    path = where[:-1].removeprefix("$").removeprefix(".")
    if not path:
        return message
    named = re.match(r"`(\w+)`(.*)\Z", message, re.S)
    if named:
        return f"`{path}.{named[1]}`{named[2]}"
    return f"{message} (at `{path}`)"


_data_types: dict[int, tuple[Any, Any]] = {}


def _data_type(route_handler: Any) -> Any:
    """The annotation of a handler's ``data`` parameter (None without one), cached per handler."""
    cached = _data_types.get(id(route_handler))
    if cached is None or cached[0] is not route_handler:
        field = route_handler.parsed_data_field
        cached = _data_types[id(route_handler)] = (route_handler, None if field is None else field.annotation)
    return cached[1]


def decode_body(body: bytes, content_type: str | None, data_type: Any) -> Any:
    """A request body as the handler's ``data`` type: 415, 400 (malformed JSON) or 422 (a field)."""
    if not is_json_content_type(content_type):
        raise UnsupportedMediaType(_CONTENT_TYPE_DETAIL)
    obj = parse_json_body(body)
    if data_type is None:
        return obj
    try:
        return convert_input(obj, data_type)  # timestamps cut to microseconds, never rounded up
    except msgspec.ValidationError as exc:
        raise UnprocessableEntity(validation_detail(exc)) from None
    except RecursionError:
        raise BadRequest("Malformed JSON body: JSON nested too deeply") from None


class ExactJSONRequest(Request):
    """Request bodies read exactly: JSON numbers become ``Decimal`` straight from the text.

    Litestar's own decoder reads numbers as floats (``90071992547409.93`` → ``...09.94``); here
    the body is parsed by the standard library with ``parse_float=Decimal`` and converted to
    the handler's ``data`` type with ``msgspec.convert(strict=True)``. The converted struct
    passes Litestar's own signature conversion unchanged.
    """

    async def json(self) -> Any:
        if self._json is Empty:
            cached = self._connection_state.json
            if cached is not Empty:
                self._json = cached
            else:
                body = await self.body()
                value = (
                    None
                    if not body
                    else decode_body(body, self.headers.get("content-type"), _data_type(self.route_handler))
                )
                self._json = self._connection_state.json = value
        return self._json


#: exceptions that mean "PostgreSQL is unreachable" (down, restarting, pool exhausted): 503, not 500
DATABASE_UNAVAILABLE: tuple[type[BaseException], ...] = (
    psycopg.OperationalError,  # includes psycopg_pool.PoolTimeout / PoolClosed / TooManyRequests
    psycopg.InterfaceError,
    psycopg_pool.PoolTimeout,
    es_persistence.OperationalError,  # includes ConnectionUnavailableError ("couldn't get a connection")
    es_persistence.InterfaceError,
    es_persistence.ConnectionPoolClosedError,
)
DATABASE_RETRY_AFTER_S = 2


def database_unavailable(exc: BaseException) -> bool:
    seen = 0
    cause: BaseException | None = exc
    while cause is not None and seen < 8:
        if isinstance(cause, DATABASE_UNAVAILABLE):
            return True
        cause, seen = cause.__cause__, seen + 1
    return False


def error_response(request: Request, exc: Exception) -> Response:
    """The one error body of the API: exactly ``{"detail": "..."}``.

    A body that is valid JSON but breaks the schema is 422 naming the field (with the index
    of the bad order in a batch); malformed JSON and bad query/path parameters are 400; a
    body that is not ``application/json`` is 415; PostgreSQL unreachable is 503 (Retry-After).
    """
    if (across := routing_answer(request, exc)) is not None:  # 405 / OPTIONS for both APIs of the base URL
        return across
    if isinstance(exc, HTTPException):
        status, detail = exc.status_code, exc.detail
        headers = exc.headers or None
        if isinstance(exc.__cause__, SerializationException):
            detail = f"Malformed JSON body: {exc.detail}"
        elif isinstance(exc, ValidationException) and isinstance(exc.extra, list) and exc.extra:
            problems = [e for e in exc.extra if isinstance(e, dict)]
            if any(e.get("key") == "data" and e.get("message") == "'data'" for e in problems):  # no body at all
                detail = "Request body is missing or empty; expected a JSON object"
            elif problems and all(e.get("source") == "body" for e in problems):
                status = 422
                detail = "; ".join(_body_problem(e) for e in problems)
            elif problems:
                detail = "Invalid request parameters: " + "; ".join(
                    f"`{e.get('key', '?')}`: {e.get('message', 'invalid')}" for e in problems
                )
    elif isinstance(exc, errors.DomainError):
        status, detail, headers = domain_status(exc), exc.detail, exc.headers or None
        if isinstance(exc, errors.TooManyRequests):
            REFUSED.labels(limit="api_key" if request.url.path.startswith("/api/") else "sign_in").inc()
    elif database_unavailable(exc):
        log.warning("database_unavailable", path=request.url.path, method=request.method, error=str(exc))
        status, detail = HTTP_503_SERVICE_UNAVAILABLE, "Database unavailable, retry shortly"
        headers = {"Retry-After": str(DATABASE_RETRY_AFTER_S)}
    else:
        log.error("unhandled_error", path=request.url.path, method=request.method, exc_info=exc)
        status, detail, headers = HTTP_500_INTERNAL_SERVER_ERROR, "Internal server error", None
    return Response({"detail": detail}, status_code=status, media_type=MediaType.JSON, headers=headers)


class ErrorBody(msgspec.Struct):
    """Every error of the API."""

    detail: str


def error_responses(*codes: int) -> dict[int, ResponseSpec]:
    """OpenAPI documentation of the error statuses a route can answer with."""
    text = {
        400: "Malformed request",
        401: "Missing, invalid or revoked credentials",
        403: "Credentials do not grant access to this strategy, or a cross-site request",
        404: "Strategy or resource not found",
        409: "Conflict",
        413: "Body over 1 MiB",
        415: "Content-Type is not application/json",
        422: "Validation failed (names the field)",
        429: "Rate limit or sign-in throttle exceeded (Retry-After; RateLimit-* headers for API keys)",
        503: "Database unavailable, retry shortly (Retry-After)",
    }
    return {code: ResponseSpec(data_container=ErrorBody, description=text[code]) for code in codes}


LEDGER_ERRORS = error_responses(400, 401, 403, 404, 413, 415, 422, 429, 503)


def _body_problem(problem: dict) -> str:
    key, message = problem.get("key") or "", str(problem.get("message", "invalid"))
    return f"{message} (at `{key}`)" if key and key != "data" else message


EXCEPTION_HANDLERS = {Exception: error_response}

#: every API answer (JSON) loads nothing at all
API_CSP = "default-src 'none'; frame-ancestors 'none'"
#: HTML pages: scripts, styles and images from our own origin only (no inline script; plotly and
#: Swagger UI set inline styles, hence 'unsafe-inline' for styles only), never framed
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


# ---------------------------------------------------------------- cross-site requests

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


def api_app_kwargs() -> dict[str, Any]:
    """Settings common to both APIs' Litestar apps."""
    return {
        "exception_handlers": EXCEPTION_HANDLERS,
        "request_class": ExactJSONRequest,
        "response_class": ExactJSONResponse,
        "response_headers": SECURITY_HEADERS,
        "plugins": [DecimalAsNumberPlugin(), StrictStructPlugin()],
        "request_max_body_size": 1024 * 1024,
        "middleware": [rate_limit_headers, allow_across_apis],
    }
