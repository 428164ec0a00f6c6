"""The API's errors: the one status of each domain error, PostgreSQL unreachable as 503, the one
error body ``{"detail": "..."}`` and its OpenAPI documentation."""

from __future__ import annotations

import eventsourcing.persistence as es_persistence
import msgspec
import psycopg
import psycopg_pool
import structlog
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, SerializationException, ValidationException
from litestar.openapi import ResponseSpec
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR, HTTP_503_SERVICE_UNAVAILABLE

from botranks_domain import errors

from ..metrics import REFUSED
from ..surface import routing_answer

log = structlog.get_logger()


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
