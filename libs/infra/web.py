"""HTTP plumbing shared by command_api and query_api: errors, exact JSON, headers, OpenAPI."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
from litestar import MediaType, Request, Response
from litestar.datastructures import ResponseHeader
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import OpenAPIType, Schema
from litestar.plugins import OpenAPISchemaPlugin
from litestar.exceptions import HTTPException, SerializationException, ValidationException
from litestar.serialization import default_serializer
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
import structlog

log = structlog.get_logger()


_exact_encoder = msgspec.json.Encoder(enc_hook=default_serializer, decimal_format="number")


class ExactJSONResponse(Response):
    """JSON with Decimals written as exact JSON numbers (not strings, not rounded floats)."""

    def render(self, content: Any, media_type: str, enc_hook=default_serializer) -> bytes:  # type: ignore[override]
        if isinstance(content, bytes) or not media_type.startswith("application/json"):
            return super().render(content, media_type, enc_hook)
        encoder = _exact_encoder if enc_hook is default_serializer else msgspec.json.Encoder(
            enc_hook=enc_hook, decimal_format="number")  # one encoder for the usual case, not one per response
        return encoder.encode(content)


class UnprocessableEntity(HTTPException):
    status_code = 422


class BadRequest(HTTPException):
    status_code = 400


class Conflict(HTTPException):
    status_code = 409


def error_response(request: Request, exc: Exception) -> Response:
    """The one error body of the API: exactly ``{"detail": "..."}``.

    A body that is valid JSON but breaks the schema is 422 naming the field (with the index
    of the bad order in a batch); malformed JSON and bad query/path parameters are 400.
    """
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
                    f"`{e.get('key', '?')}`: {e.get('message', 'invalid')}" for e in problems)
    else:
        log.error("unhandled_error", path=request.url.path, method=request.method, exc_info=exc)
        status, detail, headers = HTTP_500_INTERNAL_SERVER_ERROR, "Internal server error", None
    return Response({"detail": detail}, status_code=status, media_type=MediaType.JSON, headers=headers)


class ErrorBody(msgspec.Struct):
    """Every error of the API."""

    detail: str


def error_responses(*codes: int) -> dict[int, ResponseSpec]:
    """OpenAPI documentation of the error statuses a route can answer with."""
    text = {400: "Malformed request", 401: "Missing, invalid or revoked credentials",
            403: "Credentials do not grant access to this strategy", 404: "Strategy or resource not found",
            409: "Conflict", 413: "Body over 1 MiB", 422: "Validation failed (names the field)",
            429: "Rate limit exceeded (Retry-After, RateLimit-* headers)"}
    return {code: ResponseSpec(data_container=ErrorBody, description=text[code]) for code in codes}


LEDGER_ERRORS = error_responses(400, 401, 403, 404, 413, 422, 429)


def _body_problem(problem: dict) -> str:
    key, message = problem.get("key") or "", str(problem.get("message", "invalid"))
    return f"{message} (at `{key}`)" if key and key != "data" else message


EXCEPTION_HANDLERS = {Exception: error_response}

SECURITY_HEADERS = [
    ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
    ResponseHeader(name="X-Frame-Options", value="DENY"),
    ResponseHeader(name="Referrer-Policy", value="no-referrer"),
    ResponseHeader(name="Content-Security-Policy", value="default-src 'none'; frame-ancestors 'none'"),
    ResponseHeader(name="Cache-Control", value="no-store"),
]


class DecimalAsNumberPlugin(OpenAPISchemaPlugin):
    """Decimals are exact JSON numbers on the wire (see ExactJSONResponse), so say "number"."""

    @staticmethod
    def is_plugin_supported_type(value: Any) -> bool:
        return value is Decimal

    def to_openapi_schema(self, field_definition, schema_creator) -> Schema:
        return Schema(type=OpenAPIType.NUMBER)


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


def api_app_kwargs() -> dict[str, Any]:
    """Settings common to both APIs' Litestar apps."""
    return {
        "exception_handlers": EXCEPTION_HANDLERS,
        "response_class": ExactJSONResponse,
        "response_headers": SECURITY_HEADERS,
        "plugins": [DecimalAsNumberPlugin()],
        "request_max_body_size": 1024 * 1024,
        "middleware": [rate_limit_headers],
    }
