"""The key checks of a batch of requests in one statement (``botranks_check_keys``, migration 23): what
the per-process group commit of rate-limit hits (``libs.infra.key_gate``) sends, and what each hit's
outcome means for its request (the same statuses and headers as :meth:`Identity.check_key`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from psycopg import AsyncCursor

from botranks_domain.errors import NotFound, NotOwner, NotSignedIn, TooManyRequests

from .accounts import KEY_RE, RATE_WINDOW_S, RateState

CHECK_KEYS_SQL = (
    "SELECT i, outcome, remaining, reset_s, base_currency, benchmark FROM botranks_check_keys(%s, %s, %s, %s)"
)


@dataclass(frozen=True, slots=True)
class KeyVerdict:
    """One hit's outcome; for ``ok``, the strategy's base currency and benchmark as of the check."""

    outcome: str
    remaining: int
    reset_s: float
    base_currency: str | None = None
    benchmark: str | None = None


def bearer_token(authorization: str | None) -> str:
    """The key of an ``Authorization: Bearer fq_live_...`` header; 401 (NotSignedIn) otherwise."""
    if not authorization:
        raise NotSignedIn("Missing Authorization header")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not KEY_RE.match(token):
        raise NotSignedIn("Invalid Authorization header: expected `Bearer fq_live_...`")
    return token


async def send_check_keys(curs: AsyncCursor, hits: Sequence[tuple[bytes, UUID]], limit: int) -> None:
    """Send the batch's statement on ``curs`` (in the caller's pipeline); read it with :func:`read_verdicts`."""
    await curs.execute(CHECK_KEYS_SQL, ([h for h, _ in hits], [s for _, s in hits], limit, RATE_WINDOW_S), prepare=True)


async def read_verdicts(curs: AsyncCursor, count: int) -> list[KeyVerdict]:
    """The verdicts of the batch sent on ``curs``, in the order of its hits."""
    out: list[KeyVerdict | None] = [None] * count
    for i, outcome, remaining, reset_s, currency, benchmark in await curs.fetchall():
        out[i - 1] = KeyVerdict(outcome, remaining, reset_s, currency, benchmark)
    assert all(v is not None for v in out), "botranks_check_keys answers every hit"
    return out  # type: ignore[return-value]


def rate_of(verdict: KeyVerdict, limit: int, strategy_id: UUID) -> RateState:
    """The request's RateLimit-* state; raises the domain error of a refused hit (401, 429, 404, 403)."""
    if verdict.outcome == "unauthorized":
        raise NotSignedIn("Invalid or revoked API key")
    rate = RateState(limit, verdict.remaining, verdict.reset_s)
    if verdict.outcome == "limited":
        raise TooManyRequests(
            f"Rate limit exceeded: {limit} requests per {RATE_WINDOW_S}s",
            headers=rate.refused_headers(),
        )
    if verdict.outcome == "not_found":
        raise NotFound(f"Strategy {strategy_id} not found")
    if verdict.outcome == "forbidden":
        raise NotOwner("API key does not grant access to this strategy")
    return rate
