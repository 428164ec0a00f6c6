"""API keys (bots) and sessions (people): issuing, hashing, checking, rate limiting.

Secrets (API keys, session tokens) carry 256 random bits; only their SHA-256 is stored and
lookups go by that hash, so no plaintext is ever compared or kept. Passwords (low entropy)
use argon2id. The per-key rate limit is a true sliding window kept in PostgreSQL
(``botranks_check_key``), so every replica of both APIs shares it; so are the sign-in
throttles (``botranks_auth_attempt``: attempts per client address, failed logins per email).
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from anyio import to_thread
from litestar.connection import ASGIConnection
from litestar.exceptions import (
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    TooManyRequestsException,
)
from litestar.handlers import BaseRouteHandler

from .store import EventStore

KEY_PREFIX = "fq_live_"
KEY_RE = re.compile(r"^fq_live_[A-Za-z0-9_\-]{43}$")
RATE_WINDOW_S = 60
AUTH_IP_WINDOW_S = 60


def new_secret(prefix: str = "") -> str:
    return prefix + secrets.token_urlsafe(32)  # 43 url-safe characters


def hash_secret(plaintext: str) -> bytes:
    return hashlib.sha256(plaintext.encode()).digest()


@dataclass(frozen=True, slots=True)
class RateState:
    limit: int
    remaining: int
    reset_s: float

    def headers(self) -> dict[str, str]:
        reset = str(max(0, math.ceil(self.reset_s)))
        return {"RateLimit-Limit": str(self.limit), "RateLimit-Remaining": str(self.remaining),
                "RateLimit-Reset": reset, "RateLimit-Policy": f"{self.limit};w={RATE_WINDOW_S}"}


def check_api_key(store: EventStore, authorization: str | None, strategy_id: UUID, limit: int) -> RateState:
    """401 without a valid key, 429 over the limit, 404 unknown strategy, 403 another strategy's key."""
    if not authorization:
        raise NotAuthorizedException("Missing Authorization header")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not KEY_RE.match(token):
        raise NotAuthorizedException("Invalid Authorization header: expected `Bearer fq_live_...`")
    with store.cursor() as curs:
        row = curs.execute("SELECT * FROM botranks_check_key(%s, %s, %s, %s)",
                           (hash_secret(token), strategy_id, limit, RATE_WINDOW_S)).fetchone()
    outcome = row["outcome"]
    if outcome == "unauthorized":
        raise NotAuthorizedException("Invalid or revoked API key")
    rate = RateState(limit, row["remaining"], row["reset_s"])
    if outcome == "limited":
        raise TooManyRequestsException(
            f"Rate limit exceeded: {limit} requests per {RATE_WINDOW_S}s",
            headers={**rate.headers(), "Retry-After": str(max(1, math.ceil(rate.reset_s)))})
    if outcome == "not_found":
        raise NotFoundException(f"Strategy {strategy_id} not found")
    if outcome == "forbidden":
        raise PermissionDeniedException("API key does not grant access to this strategy")
    return rate


async def api_key_guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """Litestar guard for /api/v1/strategies/{strategy_id}/...: runs before the body is read."""
    app_state = connection.app.state
    rate = await to_thread.run_sync(check_api_key, app_state.store, connection.headers.get("authorization"),
                                    connection.path_params["strategy_id"], app_state.settings.rate_limit_per_minute)
    connection.state.rate = rate


def create_strategy(store: EventStore, name: str, *, benchmark: str = "SPY", owner_id: UUID | None = None,
                    base_currency: str = "USD", visibility: str = "private",
                    first_key: bool = True) -> tuple[UUID, str | None]:
    """Create a strategy (and, for scripted set-ups, a first API key); returns (id, plaintext key)."""
    strategy_id, key = uuid.uuid4(), None
    with store.transaction() as curs:
        curs.execute(
            "INSERT INTO strategies (id, name, benchmark, owner_id, base_currency, visibility)"
            " VALUES (%s, %s, %s, %s, %s, %s)", (strategy_id, name, benchmark, owner_id, base_currency, visibility))
        if first_key:
            _, key = insert_api_key(curs, strategy_id, "default")
    return strategy_id, key


def insert_api_key(curs, strategy_id: UUID, name: str) -> tuple[dict, str]:
    """Insert a new key for a strategy; returns (its metadata row, plaintext)."""
    key = new_secret(KEY_PREFIX)
    row = curs.execute(
        "INSERT INTO api_keys (id, strategy_id, name, key_prefix, key_hash) VALUES (%s, %s, %s, %s, %s)"
        " RETURNING id, name, key_prefix, created_at",
        (uuid.uuid4(), strategy_id, name, key[: len(KEY_PREFIX) + 2], hash_secret(key))).fetchone()
    return row, key


# ---------------------------------------------------------------- sign-in throttles


@dataclass(frozen=True, slots=True)
class Throttle:
    """One sliding window of ``botranks_auth_attempt``: at most ``limit`` hits per ``window_s`` in ``bucket``."""

    bucket: str
    limit: int
    window_s: float
    detail: str


def _per(window_s: float) -> str:
    if window_s == 60:
        return "a minute"
    if window_s % 60 == 0:
        return f"per {int(window_s // 60)} minutes"
    return f"per {window_s:g} s"


def client_bucket(host: str | None) -> str:
    """The throttle bucket of a client address: IPv6 by /64 (one subscriber usually holds a whole /64)."""
    if not host:
        return "ip:unknown"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return "ip:" + host[:100]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return f"ip:{ip.ipv4_mapped}"
        return f"ip:{ipaddress.IPv6Network((ip, 64), strict=False)}"
    return f"ip:{ip}"


def address_throttle(host: str | None, limit: int) -> Throttle:
    """Login and register attempts of one client address (``request.client``)."""
    return Throttle(client_bucket(host), limit, AUTH_IP_WINDOW_S,
                    f"Too many sign-in attempts from this address (at most {limit} {_per(AUTH_IP_WINDOW_S)});"
                    " retry later")


def email_throttle(email: str, limit: int, window_s: float) -> Throttle:
    """Failed logins of one (lower-cased) email, whether or not it has an account."""
    return Throttle("email:" + email.strip().lower(), limit, window_s,
                    f"Too many failed sign-ins for this account (at most {limit} {_per(window_s)}); retry later")


def throttle_attempt(curs, throttles: list[Throttle]) -> datetime | None:
    """Record an attempt in every bucket, or 429 (Retry-After) when one is full; one round trip.

    Returns the attempt's timestamp (to ``forget_attempt`` it later), None when nothing is limited.
    """
    active = [t for t in throttles if t.limit > 0]
    if not active:
        return None
    row = curs.execute("SELECT * FROM botranks_auth_attempt(%s::text[], %s::int[], %s::float8[])",
                       ([t.bucket for t in active], [t.limit for t in active],
                        [float(t.window_s) for t in active])).fetchone()
    if row["limited"]:
        throttle = active[row["limited"] - 1]
        raise TooManyRequestsException(throttle.detail,
                                       headers={"Retry-After": str(max(1, math.ceil(row["retry_after_s"])))})
    return row["hit"]


def forget_attempt(curs, throttle: Throttle, hit: datetime | None) -> None:
    """Take one recorded attempt back out of a bucket (a login that turned out to succeed)."""
    if hit is not None and throttle.limit > 0:
        curs.execute("UPDATE auth_throttle SET hits = array_remove(hits, %s) WHERE bucket = %s",
                     (hit, throttle.bucket))
