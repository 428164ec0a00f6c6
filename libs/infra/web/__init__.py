"""HTTP plumbing shared by command_api and query_api: errors, exact JSON, headers, OpenAPI.

The package: ``exact_json`` (exact JSON responses and request bodies), ``errors`` (domain errors
as statuses, the one error body), ``headers`` (security and RateLimit-* headers), ``cross_site``
(the cross-site request guard); here, the settings both APIs' apps share, and every public name.
"""

from __future__ import annotations

from typing import Any

from ..openapi import DecimalAsNumberPlugin, StrictStructPlugin
from ..surface import allow_across_apis
from .cross_site import CROSS_SITE_DETAIL, SAFE_METHODS, cross_site_guard, normalize_origin
from .errors import (
    DATABASE_RETRY_AFTER_S,
    DATABASE_UNAVAILABLE,
    ERROR_STATUS,
    EXCEPTION_HANDLERS,
    LEDGER_ERRORS,
    ErrorBody,
    database_unavailable,
    domain_status,
    error_response,
    error_responses,
)
from .exact_json import (
    JSON_MEDIA_TYPE,
    BadRequest,
    ExactJSONRequest,
    ExactJSONResponse,
    UnprocessableEntity,
    UnsupportedMediaType,
    decode_body,
    is_json_content_type,
    parse_json_body,
    validation_detail,
)
from .headers import API_CSP, CSP_HEADER, PAGE_CSP, SECURITY_HEADERS, page_security_headers, rate_limit_headers

__all__ = [
    "API_CSP",
    "CROSS_SITE_DETAIL",
    "CSP_HEADER",
    "DATABASE_RETRY_AFTER_S",
    "DATABASE_UNAVAILABLE",
    "ERROR_STATUS",
    "EXCEPTION_HANDLERS",
    "JSON_MEDIA_TYPE",
    "LEDGER_ERRORS",
    "PAGE_CSP",
    "SAFE_METHODS",
    "SECURITY_HEADERS",
    "BadRequest",
    "ErrorBody",
    "ExactJSONRequest",
    "ExactJSONResponse",
    "UnprocessableEntity",
    "UnsupportedMediaType",
    "api_app_kwargs",
    "cross_site_guard",
    "database_unavailable",
    "decode_body",
    "domain_status",
    "error_response",
    "error_responses",
    "is_json_content_type",
    "normalize_origin",
    "page_security_headers",
    "parse_json_body",
    "rate_limit_headers",
    "validation_detail",
]


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
