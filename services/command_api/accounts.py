"""Accounts, sessions, strategies and API keys (synchronous; routes run these in threads)."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone
from typing import Annotated, Literal
from uuid import UUID

import msgspec
import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from eventsourcing.persistence import IntegrityError
from litestar.exceptions import NotAuthorizedException, NotFoundException, PermissionDeniedException

from libs.domain.model import NO_NUL, SymbolError, normalize_symbol
from libs.infra.auth import create_strategy, hash_secret, insert_api_key, new_secret
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


def register(store: EventStore, creds: Credentials) -> User:
    email = creds.email.strip()
    if not EMAIL_RE.match(email):
        raise UnprocessableEntity("`email` is not a valid email address")
    if len(creds.password) < MIN_PASSWORD:
        raise UnprocessableEntity(f"`password` must be at least {MIN_PASSWORD} characters")
    user_id = uuid.uuid4()
    try:
        with store.transaction() as curs:
            row = curs.execute("INSERT INTO users (id, email, password_hash) VALUES (%s, %s, %s)"
                               " RETURNING id, email, created_at",
                               (user_id, email, _hasher.hash(creds.password))).fetchone()
    except (IntegrityError, psycopg.errors.UniqueViolation):
        raise Conflict("An account with this email already exists") from None
    return User(**row)


def login(store: EventStore, creds: Credentials, ttl_s: int) -> tuple[str, User, datetime]:
    """Check the password; open a server-side session. Returns (token, user, expires_at)."""
    with store.cursor() as curs:
        row = curs.execute("SELECT id, email, created_at, password_hash FROM users WHERE lower(email) = lower(%s)",
                           (creds.email.strip(),)).fetchone()
    try:
        _hasher.verify(row["password_hash"] if row else _DUMMY_HASH, creds.password)  # same cost either way
        if row is None:
            raise VerificationError
    except (VerificationError, InvalidHashError):
        raise NotAuthorizedException("Invalid email or password") from None
    token = new_secret()
    expires_at = datetime.now(timezone.utc) + timedelta(seconds=ttl_s)
    with store.transaction() as curs:
        curs.execute("INSERT INTO sessions (id, user_id, token_hash, expires_at) VALUES (%s, %s, %s, %s)",
                     (uuid.uuid4(), row["id"], hash_secret(token), expires_at))
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


