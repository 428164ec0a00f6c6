"""Accounts: sign-up, sign-in and sign-out, and the strategies and keys a signed-in person manages.

The rules and the password hashing live here; the rows live in the identity owner. ``register``
and ``login`` are coroutines: they hop to worker threads for the database, and to a one-lane
limiter for argon2 (``hash_lane``), so that at most one password hash runs at a time per
process and sign-ins queue (holding no worker thread) instead of taking every core from ingest.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from uuid import UUID

from anyio import CapacityLimiter, to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from botranks_domain.accounts import (
    Credentials,
    Registration,
    Strategy,
    StrategyIn,
    StrategyProfile,
    StrategySettingsIn,
    User,
)
from botranks_domain.errors import NotFound, NotSignedIn, RuleBroken
from botranks_domain.model import normalize_symbol
from libs.infra.db import Database
from libs.infra.identity import Identity, address_throttle, email_throttle, new_secret
from libs.infra.settings import Settings

from .fx_check import check_base_change

#: a local part, then a domain of dot-separated labels (letters of any script, digits, hyphens)
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@(?:[^\W_](?:[\w-]*[^\W_])?\.)+[^\W_](?:[\w-]*[^\W_])?$")
MIN_PASSWORD = 12
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not-a-real-password-but-same-cost")


def hash_lane() -> CapacityLimiter:
    """The process's argon2 lane (one per app, made in its lifespan): one hash or verification at a time."""
    return CapacityLimiter(1)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def register(
    identity: Identity, creds: Registration, settings: Settings, client: str | None, lane: CapacityLimiter
) -> User:
    """Validate (422), throttle per client address (429), hash in the lane, insert (409 if the email or
    the handle is taken)."""
    email = creds.email.strip()
    if not EMAIL_RE.match(email):
        raise RuleBroken("`email` is not a valid email address")
    if len(creds.password) < MIN_PASSWORD:
        raise RuleBroken(f"`password` must be at least {MIN_PASSWORD} characters")
    await to_thread.run_sync(identity.throttle, [address_throttle(client, settings.auth_attempts_per_minute_per_ip)])
    password_hash = await to_thread.run_sync(_hasher.hash, creds.password, limiter=lane)
    return await to_thread.run_sync(identity.insert_user, email, password_hash, creds.handle)


async def login(
    identity: Identity, creds: Credentials, settings: Settings, client: str | None, lane: CapacityLimiter
) -> tuple[str, User, datetime]:
    """Check the password; open a server-side session. Returns (token, user, expires_at).

    Throttled per client address and per lower-cased email (429 with Retry-After, even for the
    right password, while either is full). An unknown email costs one argon2 verification too.
    """
    email = creds.email.strip()
    per_email = email_throttle(email, settings.login_failures_per_window, settings.login_failure_window_s)
    hit, row = await to_thread.run_sync(
        identity.begin_login, [address_throttle(client, settings.auth_attempts_per_minute_per_ip), per_email], email
    )
    # same cost either way
    ok = await to_thread.run_sync(_verify, row["password_hash"] if row else _DUMMY_HASH, creds.password, limiter=lane)
    if not ok or row is None:
        raise NotSignedIn("Invalid email or password")
    token = new_secret()
    expires_at = datetime.now(UTC) + timedelta(seconds=settings.session_ttl_s)
    await to_thread.run_sync(identity.open_session, row["id"], token, expires_at, per_email, hit)
    return token, User(row["id"], row["email"], row["created_at"], row["handle"]), expires_at


def new_strategy(identity: Identity, owner: UUID, data: StrategyIn, max_owned: int = 0) -> Strategy:
    """A strategy owned by ``owner``; its benchmark follows the symbol rule (empty: none); 409 when the
    owner already has ``max_owned`` (``BOTRANKS_MAX_STRATEGIES_PER_ACCOUNT``; 0: no limit)."""
    benchmark = data.benchmark.strip()
    if benchmark:
        benchmark = normalize_symbol(benchmark, "benchmark")
    strategy_id, _ = identity.create_strategy(
        data.name,
        benchmark=benchmark,
        owner_id=owner,
        base_currency=data.base_currency,
        visibility=data.visibility,
        first_key=False,
        max_owned=max_owned,
    )
    return identity.strategies_of(owner, only=strategy_id)[0]


def change_strategy(db: Database, user: UUID, strategy_id: UUID, changes: StrategySettingsIn) -> StrategyProfile:
    """The owner's change to a strategy's settings or profile (``PATCH /strategies/{id}`` and the owner
    page's form); another's strategy is not found (no existence leak). A new base currency only when
    every fill and snapshot of the history has a rate into it (else the 422 names the missing rate)."""
    profile = db.identity.profile(strategy_id)
    if profile is None or profile.owner_id != user:
        raise NotFound(f"Strategy {strategy_id} not found")
    check_base_change(db, strategy_id, changes.base_currency)
    return db.identity.update_strategy(user, strategy_id, changes)


def own_profile(identity: Identity, user: UUID, strategy_id: UUID) -> StrategyProfile:
    """A strategy of ``user``'s with its profile; another's is not found."""
    profile = identity.profile(strategy_id)
    if profile is None or profile.owner_id != user:
        raise NotFound(f"Strategy {strategy_id} not found")
    return profile


#: the most strategies one answer of ``GET /strategies`` holds (and its default ``limit``)
STRATEGY_PAGE_MAX = 100
#: a bound on ``offset`` (PostgreSQL's OFFSET is a bigint; no account comes near this)
MAX_OFFSET = 1_000_000_000


def my_strategies(identity: Identity, owner: UUID, limit: int, offset: int) -> tuple[list[Strategy], dict[str, str]]:
    """One page of ``GET /strategies`` and its headers: ``X-Total-Count``, and ``Link`` (RFC 8288)
    to the next and previous pages when there are any."""
    strategies = identity.strategies_of(owner, limit=limit, offset=offset)
    total = identity.count_owned(owner)
    links = []
    if offset + limit < total:
        links.append(f'</strategies?limit={limit}&offset={offset + limit}>; rel="next"')
    if offset > 0:
        links.append(f'</strategies?limit={limit}&offset={max(0, min(offset, total) - limit)}>; rel="prev"')
    headers = {"X-Total-Count": str(total)}
    if links:
        headers["Link"] = ", ".join(links)
    return strategies, headers
