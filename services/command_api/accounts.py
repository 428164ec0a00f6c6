"""Accounts, sessions, strategies and API keys.

Strategy and key functions are synchronous (routes run them in threads). ``register`` and
``login`` are coroutines: they hop to worker threads for the database, and to a one-lane
limiter for argon2 (``hash_lane``), so that at most one password hash runs at a time per
process and sign-ins queue (holding no worker thread) instead of taking every core from ingest.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone
from typing import Annotated, Literal
from uuid import UUID

import msgspec
import psycopg
from anyio import CapacityLimiter, to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from eventsourcing.persistence import IntegrityError
from litestar.exceptions import NotAuthorizedException, NotFoundException, PermissionDeniedException

from libs.domain.model import NO_NUL, SymbolError, normalize_symbol
from libs.infra.auth import (
    Throttle,
    address_throttle,
    create_strategy,
    email_throttle,
    forget_attempt,
    hash_secret,
    insert_api_key,
    new_secret,
    throttle_attempt,
)
from libs.infra.settings import Settings
from libs.infra.store import EventStore
from libs.infra.web import Conflict, UnprocessableEntity

EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 12
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not-a-real-password-but-same-cost")

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=NO_NUL)]


class Credentials(msgspec.Struct, forbid_unknown_fields=True):
    email: Annotated[str, msgspec.Meta(max_length=254, pattern=NO_NUL)]
    password: Annotated[str, msgspec.Meta(max_length=1024)]


class StrategyIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    visibility: Literal["public", "private"] = "private"
    base_currency: Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}$")] = "USD"
    benchmark: Annotated[str, msgspec.Meta(max_length=20)] = "SPY"


class ApiKeyIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Name


class User(msgspec.Struct):
    id: UUID
    email: str
    created_at: datetime


class Strategy(msgspec.Struct):
    id: UUID
    name: str
    base_currency: str
    benchmark: str | None
    visibility: str
    created_at: datetime


class ApiKeyCreated(msgspec.Struct):
    id: UUID
    name: str
    key_prefix: str
    created_at: datetime
    plaintext: str
    warning: str = "Store this key now; it cannot be retrieved later."


class ApiKeyInfo(msgspec.Struct):
    id: UUID
    name: str
    key_prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


# ---------------------------------------------------------------- people


def hash_lane() -> CapacityLimiter:
    """The process's argon2 lane (one per app, made in its lifespan): one hash or verification at a time."""
    return CapacityLimiter(1)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _throttle(store: EventStore, throttles: list[Throttle]) -> None:
    with store.cursor() as curs:
        throttle_attempt(curs, throttles)


def _insert_user(store: EventStore, email: str, password_hash: str) -> User:
    try:
        with store.transaction() as curs:
            row = curs.execute("INSERT INTO users (id, email, password_hash) VALUES (%s, %s, %s)"
                               " RETURNING id, email, created_at", (uuid.uuid4(), email, password_hash)).fetchone()
    except (IntegrityError, psycopg.errors.UniqueViolation):
        raise Conflict("An account with this email already exists") from None
    return User(**row)


async def register(store: EventStore, creds: Credentials, settings: Settings, client: str | None,
                   lane: CapacityLimiter) -> User:
    """Validate (422), throttle per client address (429), hash in the lane, insert (409 if the email is taken)."""
    email = creds.email.strip()
    if not EMAIL_RE.match(email):
        raise UnprocessableEntity("`email` is not a valid email address")
    if len(creds.password) < MIN_PASSWORD:
        raise UnprocessableEntity(f"`password` must be at least {MIN_PASSWORD} characters")
    await to_thread.run_sync(_throttle, store, [address_throttle(client, settings.auth_attempts_per_minute_per_ip)])
    password_hash = await to_thread.run_sync(_hasher.hash, creds.password, limiter=lane)
    return await to_thread.run_sync(_insert_user, store, email, password_hash)


def _begin_login(store: EventStore, throttles: list[Throttle], email: str) -> tuple[datetime | None, dict | None]:
    """Throttle (429 before any hashing; the attempt counts as failed until it succeeds), find the user."""
    with store.cursor() as curs:
        hit = throttle_attempt(curs, throttles)
        row = curs.execute("SELECT id, email, created_at, password_hash FROM users WHERE lower(email) = lower(%s)",
                           (email,)).fetchone()
    return hit, row


def _open_session(store: EventStore, user_id: UUID, token: str, expires_at: datetime, succeeded: Throttle,
                  hit: datetime | None) -> None:
    with store.transaction() as curs:
        curs.execute("INSERT INTO sessions (id, user_id, token_hash, expires_at) VALUES (%s, %s, %s, %s)",
                     (uuid.uuid4(), user_id, hash_secret(token), expires_at))
        forget_attempt(curs, succeeded, hit)  # a success is not a failed login


async def login(store: EventStore, creds: Credentials, settings: Settings, client: str | None,
                lane: CapacityLimiter) -> tuple[str, User, datetime]:
    """Check the password; open a server-side session. Returns (token, user, expires_at).

    Throttled per client address and per lower-cased email (429 with Retry-After, even for the
    right password, while either is full). An unknown email costs one argon2 verification too.
    """
    email = creds.email.strip()
    per_email = email_throttle(email, settings.login_failures_per_window, settings.login_failure_window_s)
    hit, row = await to_thread.run_sync(
        _begin_login, store, [address_throttle(client, settings.auth_attempts_per_minute_per_ip), per_email], email)
    # same cost either way
    ok = await to_thread.run_sync(_verify, row["password_hash"] if row else _DUMMY_HASH, creds.password, limiter=lane)
    if not ok or row is None:
        raise NotAuthorizedException("Invalid email or password")
    token = new_secret()
    expires_at = datetime.now(timezone.utc) + timedelta(seconds=settings.session_ttl_s)
    await to_thread.run_sync(_open_session, store, row["id"], token, expires_at, per_email, hit)
    return token, User(row["id"], row["email"], row["created_at"]), expires_at


def logout(store: EventStore, token: str | None) -> None:
    if token:
        with store.transaction() as curs:
            curs.execute("UPDATE sessions SET ended_at = now() WHERE token_hash = %s AND ended_at IS NULL",
                         (hash_secret(token),))


def session_user(store: EventStore, token: str | None) -> UUID:
    """The signed-in user of a session cookie, or 401."""
    if not token:
        raise NotAuthorizedException("Sign in first (no session cookie)")
    with store.cursor() as curs:
        row = curs.execute("SELECT user_id FROM sessions WHERE token_hash = %s AND ended_at IS NULL"
                           " AND expires_at > now()", (hash_secret(token),)).fetchone()
    if row is None:
        raise NotAuthorizedException("Session expired or signed out")
    return row["user_id"]


# ---------------------------------------------------------------- strategies and keys


def new_strategy(store: EventStore, owner: UUID, data: StrategyIn) -> Strategy:
    benchmark = data.benchmark.strip()
    if benchmark:
        try:
            benchmark = normalize_symbol(benchmark, "benchmark")
        except SymbolError as exc:
            raise UnprocessableEntity(str(exc)) from None
    strategy_id, _ = create_strategy(store, data.name, benchmark=benchmark, owner_id=owner,
                                     base_currency=data.base_currency, visibility=data.visibility, first_key=False)
    return own_strategies(store, owner, only=strategy_id)[0]


def own_strategies(store: EventStore, owner: UUID, only: UUID | None = None) -> list[Strategy]:
    with store.cursor() as curs:
        rows = curs.execute(
            "SELECT id, name, base_currency, nullif(benchmark, '') AS benchmark, visibility, created_at"
            " FROM strategies WHERE owner_id = %s AND (%s::uuid IS NULL OR id = %s) ORDER BY created_at, id",
            (owner, only, only)).fetchall()
    return [Strategy(**r) for r in rows]


def _owned(curs, user: UUID, strategy_id: UUID) -> None:
    row = curs.execute("SELECT owner_id FROM strategies WHERE id = %s", (strategy_id,)).fetchone()
    if row is None:
        raise NotFoundException(f"Strategy {strategy_id} not found")
    if row["owner_id"] != user:
        raise PermissionDeniedException("Only the strategy's creator may manage its API keys")


def create_key(store: EventStore, user: UUID, strategy_id: UUID, data: ApiKeyIn) -> ApiKeyCreated:
    with store.transaction() as curs:
        _owned(curs, user, strategy_id)
        row, plaintext = insert_api_key(curs, strategy_id, data.name)
    return ApiKeyCreated(plaintext=plaintext, **row)


def list_keys(store: EventStore, user: UUID, strategy_id: UUID) -> list[ApiKeyInfo]:
    with store.transaction() as curs:
        _owned(curs, user, strategy_id)
        rows = curs.execute("SELECT id, name, key_prefix, created_at, last_used_at, revoked_at FROM api_keys"
                            " WHERE strategy_id = %s ORDER BY created_at, id", (strategy_id,)).fetchall()
    return [ApiKeyInfo(**r) for r in rows]


def revoke_key(store: EventStore, user: UUID, strategy_id: UUID, key_id: UUID) -> ApiKeyInfo:
    """Soft delete; revoking a revoked key changes nothing and answers the same."""
    with store.transaction() as curs:
        _owned(curs, user, strategy_id)
        row = curs.execute(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = %s AND strategy_id = %s"
            " RETURNING id, name, key_prefix, created_at, last_used_at, revoked_at", (key_id, strategy_id)).fetchone()
    if row is None:
        raise NotFoundException(f"API key {key_id} not found")
    return ApiKeyInfo(**row)


