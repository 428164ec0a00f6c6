"""The client's exceptions: one base, one class per kind of failure."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from .results import SubmitResult


class BotRanksError(Exception):
    """Base of every error this client raises."""

    #: set by ``submit_orders`` when it fails after some batches went through (a SubmitResult)
    partial: SubmitResult | None = None


class InvalidOrder(BotRanksError, ValueError):
    """Order ``index`` of the caller's list breaks the rules; raised before anything is sent."""

    def __init__(self, index: int, detail: str) -> None:
        super().__init__(f"orders[{index}]: {detail}")
        self.index = index
        self.detail = detail


class InvalidInput(BotRanksError, ValueError):
    """A cash event or snapshot that breaks the rules; raised before anything is sent."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class _StatusError(BotRanksError):
    def __init__(self, status: int, detail: str, response: httpx.Response | None = None) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail
        self.response = response


class ApiError(_StatusError):
    """The server refused the request (4xx); ``detail`` is its ``{"detail"}`` message."""


class BadRequest(ApiError):
    """400: malformed request or parameter, unresolvable symbol."""


class Unauthorized(ApiError):
    """401: missing, invalid or revoked API key."""


class Forbidden(ApiError):
    """403: the key does not grant access to this strategy."""


class NotFound(ApiError):
    """404: unknown strategy or resource."""


class Conflict(ApiError):
    """409."""


class Unprocessable(ApiError):
    """422: a field breaks the rules (the detail names it)."""


class RateLimited(ApiError):
    """429 still, after every retry."""


class ServerError(_StatusError):
    """5xx still, after every retry."""


class TransportError(BotRanksError):
    """Network failure (connection refused/reset, timeout) still, after every retry."""

    def __init__(self, message: str, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.__cause__ = cause


class OutboxTimeout(BotRanksError, TimeoutError):
    """``flush(timeout)`` expired with ``remaining`` rows still in the outbox."""

    def __init__(self, remaining: int) -> None:
        super().__init__(f"outbox not empty after the timeout: {remaining} rows left")
        self.remaining = remaining


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: Unprocessable,
    429: RateLimited,
}


def error_detail(response: httpx.Response) -> str:
    """The ``detail`` of an error body, or the body's text when it has none."""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        return body["detail"]
    return response.text[:500] or response.reason_phrase


def api_error(response: httpx.Response) -> ApiError | ServerError:
    """The typed exception for an error response."""
    status = response.status_code
    cls = ServerError if status >= 500 else _BY_STATUS.get(status, ApiError)
    return cls(status, error_detail(response), response)


class UnexpectedResponse(BotRanksError):
    """A 2xx whose body is not what the API answers (e.g. a misrouted proxy)."""
