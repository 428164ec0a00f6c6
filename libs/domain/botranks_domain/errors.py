"""What can go wrong in command handling and the owners, as domain errors.

They say what happened, not how HTTP says it: ``libs.infra.web`` maps each kind to one status
(``ERROR_STATUS``), so one rule has one status everywhere. ``headers`` carries what a client
needs to retry (``Retry-After``, ``RateLimit-*``).
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a client can cause; ``str(error)`` is the ``detail`` it is shown."""

    def __init__(self, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}


class InvalidSymbol(DomainError):
    """A symbol outside the grammar ``^[A-Z0-9.\\-:^]{1,20}$`` (the spec: 400)."""


class BadParameter(DomainError):
    """A query or path parameter that is not what it must be (400)."""


class RuleBroken(DomainError):
    """A body field that breaks a rule (422), naming the field."""


class NoMarketData(RuleBroken):
    """An order without price on a day without a close (422, nothing of the batch stored)."""


class NoFxRate(RuleBroken):
    """A fill or snapshot in another currency than the strategy's base on a day without an FX rate (422,
    nothing of the batch stored)."""


class NotSignedIn(DomainError):
    """No, invalid, revoked or expired credentials (401)."""


class NotOwner(DomainError):
    """Credentials that do not grant access to this strategy (403)."""


class NotFound(DomainError):
    """An unknown strategy or resource (404)."""


class Conflict(DomainError):
    """A unique thing that exists already, e.g. an account's email (409)."""


class TooManyRequests(DomainError):
    """A rate limit or sign-in throttle is full (429, with Retry-After)."""
