"""HTTP plumbing shared by command_api and query_api: errors, exact JSON, API-key auth."""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Any
from uuid import UUID

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.serialization import default_serializer
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
import structlog

from .store import EventStore

KEY_PREFIX = "fq_live_"
KEY_RE = re.compile(r"^fq_live_[A-Za-z0-9_\-]{43}$")

log = structlog.get_logger()


class ExactJSONResponse(Response):
    """JSON with Decimals written as exact JSON numbers (not strings, not rounded floats)."""

    def render(self, content: Any, media_type: str, enc_hook=default_serializer) -> bytes:  # type: ignore[override]
        if isinstance(content, bytes) or not media_type.startswith("application/json"):
            return super().render(content, media_type, enc_hook)
        return msgspec.json.Encoder(enc_hook=enc_hook, decimal_format="number").encode(content)


class UnprocessableEntity(HTTPException):
    status_code = 422


class BadRequest(HTTPException):
    status_code = 400


def error_response(request: Request, exc: Exception) -> Response:
    """The one error body of the API: exactly ``{"detail": "..."}``."""
    if isinstance(exc, HTTPException):
        status, detail = exc.status_code, exc.detail
        headers = exc.headers or None
        if isinstance(exc, ValidationException) and isinstance(exc.extra, list) and exc.extra:
            # name the offending parameters instead of Litestar's generic "Validation failed"
            problems = "; ".join(f"`{e.get('key', '?')}`: {e.get('message', 'invalid')}"
                                 for e in exc.extra if isinstance(e, dict))
            detail = f"Invalid request parameters: {problems}" if problems else detail
    else:
        log.error("unhandled_error", path=request.url.path, method=request.method, exc_info=exc)
        status, detail, headers = HTTP_500_INTERNAL_SERVER_ERROR, "Internal server error", None
    return Response({"detail": detail}, status_code=status, media_type=MediaType.JSON, headers=headers)


EXCEPTION_HANDLERS = {Exception: error_response}


def decode_body(raw: bytes, type_: type) -> Any:
    """Decode a JSON body: malformed JSON is 400, a schema violation 422 naming the field."""
    if not raw.strip():
        raise BadRequest("Request body is empty; expected a JSON object")
    try:
        return msgspec.json.decode(raw, type=type_)
    except msgspec.ValidationError as exc:
        raise UnprocessableEntity(str(exc).replace("`$.", "`").replace("`$`", "body")) from None
    except msgspec.DecodeError as exc:
        raise BadRequest(f"Malformed JSON: {exc}") from None


# ---------------------------------------------------------------- API keys


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(plaintext: str) -> bytes:
    # Keys carry 256 random bits, so a fast hash is safe; lookups by hash are constant-time
    # with respect to the secret (no string comparison of plaintexts anywhere).
    return hashlib.sha256(plaintext.encode()).digest()


def authorize(store: EventStore, authorization: str | None, strategy_id: UUID) -> None:
    """401 without a valid key, 404 for an unknown strategy, 403 for another strategy's key."""
    if not authorization:
        raise NotAuthorizedException("Missing Authorization header")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not KEY_RE.match(token):
        raise NotAuthorizedException("Invalid Authorization header: expected `Bearer fq_live_...`")
    with store.cursor() as curs:
        row = curs.execute(
            "SELECT k.strategy_id AS key_strategy, (k.revoked_at IS NOT NULL) AS revoked,"
            " EXISTS (SELECT 1 FROM strategies WHERE id = %s) AS strategy_exists"
            " FROM (SELECT 1) AS one LEFT JOIN api_keys k ON k.key_hash = %s",
            (strategy_id, hash_api_key(token)),
        ).fetchone()
    if row["key_strategy"] is None or row["revoked"]:
        raise NotAuthorizedException("Invalid or revoked API key")
    if not row["strategy_exists"]:
        raise NotFoundException(f"Strategy {strategy_id} not found")
    if row["key_strategy"] != strategy_id:
        raise PermissionDeniedException("API key does not grant access to this strategy")


def create_strategy(store: EventStore, name: str, *, benchmark: str = "SPY") -> tuple[UUID, str]:
    """Create a strategy and its first API key; returns (strategy id, plaintext key)."""
    import uuid

    strategy_id, key_id, key = uuid.uuid4(), uuid.uuid4(), new_api_key()
    with store.transaction() as curs:
        curs.execute("INSERT INTO strategies (id, name, benchmark) VALUES (%s, %s, %s)",
                     (strategy_id, name, benchmark))
        curs.execute(
            "INSERT INTO api_keys (id, strategy_id, name, key_prefix, key_hash) VALUES (%s, %s, %s, %s, %s)",
            (key_id, strategy_id, "default", key[:10], hash_api_key(key)),
        )
    return strategy_id, key
