"""Identity's reads and writes: :class:`Identity` (on the pool) and :class:`IdentityTx` (inside the
projector's unit of work), with the secrets and throttle helpers. The tables are in ``ddl``."""

from __future__ import annotations

import hashlib
import ipaddress
import math
import re
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.postgres import PostgresDatastore

from botranks_domain.accounts import ApiKeyCreated, ApiKeyInfo, Strategy, StrategyProfile, StrategySettingsIn
from botranks_domain.errors import Conflict, NotFound, NotOwner, NotSignedIn, TooManyRequests
from botranks_domain.model import normalize_symbol

from ..pg import one, reading
from .profiles import ProfileStore
from .tx import IdentityTx

KEY_PREFIX = "fq_live_"
#: a strategy's profile (``StrategyProfile``'s columns), with its owner's handle; callers add the WHERE
PROFILES_SQL = _PROFILES = (
    "SELECT s.id, s.name, s.visibility, nullif(s.benchmark, '') AS benchmark, s.show_positions, s.owner_id,"
    " s.created_at, s.base_currency, s.description, s.tags, u.handle AS owner_handle"
    " FROM strategies AS s LEFT JOIN users AS u ON u.id = s.owner_id"
)
#: what ``update_strategy`` may change
_SETTINGS = ("name", "visibility", "benchmark", "show_positions", "base_currency", "description", "tags")
KEY_RE = re.compile(r"^fq_live_[A-Za-z0-9_\-]{43}$")
RATE_WINDOW_S = 60
AUTH_IP_WINDOW_S = 60


def new_secret(prefix: str = "") -> str:
    return prefix + secrets.token_urlsafe(32)  # 43 url-safe characters


def hash_secret(plaintext: str) -> bytes:
    return hashlib.sha256(plaintext.encode()).digest()


@dataclass(frozen=True, slots=True)
class RateState:
    """Where a key stands in its sliding window (the RateLimit-* headers)."""

    limit: int
    remaining: int
    reset_s: float

    def reset_after(self) -> int:
        """Whole seconds until the window's oldest hit leaves it, within ``[0, RATE_WINDOW_S]``.

        A batch that waited for the window's row lock measures from the moment it started, so a hit
        recorded meanwhile can lie just after "now": clamped, as that hit leaves within one window."""
        return min(max(0, math.ceil(self.reset_s)), RATE_WINDOW_S)

    def refused_headers(self) -> dict[str, str]:
        """The headers of a 429: the RateLimit-* ones and a Retry-After of at least one second."""
        return {**self.headers(), "Retry-After": str(max(1, self.reset_after()))}

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_after()),
            "RateLimit-Policy": f"{self.limit};w={RATE_WINDOW_S}",
        }


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
    return Throttle(
        client_bucket(host),
        limit,
        AUTH_IP_WINDOW_S,
        f"Too many sign-in attempts from this address (at most {limit} {_per(AUTH_IP_WINDOW_S)}); retry later",
    )


def email_throttle(email: str, limit: int, window_s: float) -> Throttle:
    """Failed logins of one (lower-cased) email, whether or not it has an account."""
    return Throttle(
        "email:" + email.strip().lower(),
        limit,
        window_s,
        f"Too many failed sign-ins for this account (at most {limit} {_per(window_s)}); retry later",
    )


class Identity(ProfileStore):
    """The accounts side of the database (see the module docstring); people's profiles: ``ProfileStore``."""

    def __init__(self, datastore: PostgresDatastore) -> None:
        self.datastore = datastore

    # ------------------------------------------------------------ bots: API keys

    def check_key(self, authorization: str | None, strategy_id: UUID, limit: int) -> RateState:
        """401 without a valid key, 429 over the limit, 404 unknown strategy, 403 another strategy's key."""
        if not authorization:
            raise NotSignedIn("Missing Authorization header")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not KEY_RE.match(token):
            raise NotSignedIn("Invalid Authorization header: expected `Bearer fq_live_...`")
        with reading(self.datastore) as curs:  # one statement, its own transaction (autocommit): one round trip
            row = one(  # botranks_check_key returns one row, whatever the outcome
                curs.execute(
                    "SELECT * FROM botranks_check_key(%s, %s, %s, %s)",
                    (hash_secret(token), strategy_id, limit, RATE_WINDOW_S),
                )
            )
        outcome = row["outcome"]
        if outcome == "unauthorized":
            raise NotSignedIn("Invalid or revoked API key")
        rate = RateState(limit, row["remaining"], row["reset_s"])
        if outcome == "limited":
            raise TooManyRequests(
                f"Rate limit exceeded: {limit} requests per {RATE_WINDOW_S}s",
                headers=rate.refused_headers(),
            )
        if outcome == "not_found":
            raise NotFound(f"Strategy {strategy_id} not found")
        if outcome == "forbidden":
            raise NotOwner("API key does not grant access to this strategy")
        return rate

    # ------------------------------------------------------------ strategies and keys

    def create_strategy(
        self,
        name: str,
        *,
        benchmark: str = "SPY",
        owner_id: UUID | None = None,
        base_currency: str = "USD",
        visibility: str = "private",
        show_positions: str = "none",
        first_key: bool = True,
        max_owned: int = 0,
    ) -> tuple[UUID, str | None]:
        """Create a strategy (and, for scripted set-ups, a first API key); returns (id, plaintext key).

        ``max_owned`` (> 0, with an owner): 409 when the owner already has that many strategies.
        The owner's ``users`` row is locked first, so concurrent creates queue and none overshoots.
        """
        strategy_id, key = uuid.uuid4(), None
        with self.datastore.transaction(commit=True) as curs:
            if owner_id is not None and max_owned > 0:
                curs.execute("SELECT 1 FROM users WHERE id = %s FOR UPDATE", (owner_id,))
                if self._owned_count(curs, owner_id) >= max_owned:
                    raise Conflict(
                        f"Strategy limit reached: an account may own at most {max_owned} strategies"
                        " (BOTRANKS_MAX_STRATEGIES_PER_ACCOUNT); the operator can delete one"
                        " (`botranks strategy delete`) or raise the limit"
                    )
            curs.execute(
                "INSERT INTO strategies (id, name, benchmark, owner_id, base_currency, visibility, show_positions)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (strategy_id, name, benchmark, owner_id, base_currency, visibility, show_positions),
            )
            self._record_update(curs, strategy_id, benchmark_changed=False)
            if first_key:
                _, key = self._insert_key(curs, strategy_id, "default")
        return strategy_id, key

    def profile(self, strategy_id: UUID) -> StrategyProfile | None:
        """A strategy's public face and owner (None for an unknown id); the pages decide who may see it."""
        with reading(self.datastore) as curs:
            row = curs.execute(f"{_PROFILES} WHERE s.id = %s", (strategy_id,)).fetchone()
        return None if row is None else StrategyProfile(**row)

    def update_strategy(self, owner: UUID, strategy_id: UUID, changes: StrategySettingsIn) -> StrategyProfile:
        """Change a strategy's name, visibility, benchmark, show_positions, base currency, description or
        tags (its owner only).

        The benchmark is normalized like a symbol (``""``: none), tags as ``StrategySettingsIn`` normalized them. A
        change that changes something is recorded in ``strategy_updates`` in the same transaction, for the
        projector (leaderboard; a new benchmark or base currency re-derives every read model:
        ``benchmark_changed`` means "re-derive").
        """
        benchmark = changes.benchmark
        if benchmark is not None and benchmark.strip():
            benchmark = normalize_symbol(benchmark.strip(), "benchmark")
        elif benchmark is not None:
            benchmark = ""
        with self.datastore.transaction(commit=True) as curs:
            row = curs.execute(
                f"SELECT owner_id, {', '.join(_SETTINGS)} FROM strategies WHERE id = %s FOR UPDATE", (strategy_id,)
            ).fetchone()
            if row is None:
                raise NotFound(f"Strategy {strategy_id} not found")
            if row["owner_id"] is None or row["owner_id"] != owner:
                raise NotOwner("Only the strategy's creator may change it")
            new = {k: getattr(changes, k) for k in _SETTINGS}
            new["benchmark"] = benchmark
            new = {k: v for k, v in new.items() if v is not None and v != row[k]}
            if new:
                curs.execute(
                    "UPDATE strategies SET " + ", ".join(f"{k} = %({k})s" for k in new) + " WHERE id = %(id)s",
                    {**new, "id": strategy_id},
                )
                self._record_update(curs, strategy_id, benchmark_changed="benchmark" in new or "base_currency" in new)
            # the row this transaction holds locked (FOR UPDATE above)
            profile = one(curs.execute(f"{_PROFILES} WHERE s.id = %s", (strategy_id,)))
        return StrategyProfile(**profile)

    def add_keys(self, strategy_id: UUID, names: Iterable[str]) -> list[str]:
        """New keys for a strategy, from the operator's side (CLI, demo); returns the plaintexts."""
        with self.datastore.transaction(commit=True) as curs:
            return [self._insert_key(curs, strategy_id, name)[1] for name in names]

    def strategies_of(
        self, owner: UUID, only: UUID | None = None, limit: int | None = None, offset: int = 0
    ) -> list[Strategy]:
        """The owner's strategies, oldest first (a new one goes last: pages already read stay put)."""
        with reading(self.datastore) as curs:
            rows = curs.execute(
                "SELECT id, name, base_currency, nullif(benchmark, '') AS benchmark, visibility, created_at"
                " FROM strategies WHERE owner_id = %s AND (%s::uuid IS NULL OR id = %s) ORDER BY created_at, id"
                " LIMIT %s OFFSET %s",
                (owner, only, only, limit, offset),
            ).fetchall()
        return [Strategy(**r) for r in rows]

    def owned_profiles(self, owner: UUID, limit: int, offset: int) -> tuple[list[StrategyProfile], int]:
        """One page of the owner's strategies as profiles (the order of ``strategies_of``), and how many
        the owner has in all."""
        with reading(self.datastore) as curs:
            rows = curs.execute(
                f"{_PROFILES} WHERE s.owner_id = %s ORDER BY s.created_at, s.id LIMIT %s OFFSET %s",
                (owner, limit, offset),
            ).fetchall()
            total = self._owned_count(curs, owner)
        return [StrategyProfile(**r) for r in rows], total

    def count_owned(self, owner: UUID) -> int:
        with reading(self.datastore) as curs:
            return self._owned_count(curs, owner)

    @staticmethod
    def _owned_count(curs: Any, owner: UUID) -> int:
        return curs.execute("SELECT count(*) AS n FROM strategies WHERE owner_id = %s", (owner,)).fetchone()["n"]

    def owned_position(self, owner: UUID, strategy_id: UUID) -> int | None:
        """Where ``strategy_id`` stands (0-based) among the owner's strategies; None if not theirs."""
        with reading(self.datastore) as curs:
            row = curs.execute(
                "SELECT (SELECT count(*) FROM strategies o WHERE o.owner_id = s.owner_id"
                " AND (o.created_at, o.id) < (s.created_at, s.id)) AS n FROM strategies s"
                " WHERE s.id = %s AND s.owner_id = %s",
                (strategy_id, owner),
            ).fetchone()
        return None if row is None else row["n"]

    def all_strategies(self) -> list[dict[str, Any]]:
        """Every strategy, for the operator (``botranks strategy list``): its face, owner and keys."""
        with reading(self.datastore) as curs:
            return curs.execute(
                "SELECT s.id, s.name, s.visibility, nullif(s.benchmark, '') AS benchmark, s.show_positions,"
                " u.email AS owner_email, s.created_at,"
                " count(k.id) FILTER (WHERE k.revoked_at IS NULL) AS active_keys, max(k.last_used_at) AS last_used_at"
                " FROM strategies s LEFT JOIN users u ON u.id = s.owner_id LEFT JOIN api_keys k ON k.strategy_id = s.id"
                " GROUP BY s.id, u.email ORDER BY s.created_at, s.id"
            ).fetchall()

    def owner_record(self, strategy_id: UUID) -> dict[str, int] | None:
        """How many strategies the owner of ``strategy_id`` has started here: ``public``, ``private``
        and ``deleted`` (None for a strategy without an owner, or no such strategy)."""
        with reading(self.datastore) as curs:
            return curs.execute(
                "SELECT count(*) FILTER (WHERE s.visibility = 'public') AS public,"
                " count(*) FILTER (WHERE s.visibility <> 'public') AS private, min(u.strategies_deleted) AS deleted"
                " FROM strategies AS mine JOIN users AS u ON u.id = mine.owner_id"
                " JOIN strategies AS s ON s.owner_id = u.id WHERE mine.id = %s GROUP BY u.id",
                (strategy_id,),
            ).fetchone()

    def delete_strategy(self, strategy_id: UUID) -> str | None:
        """Remove a strategy, its keys and their rate windows at once (its keys stop working as this
        commits); returns its name, None if there was none."""
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                "DELETE FROM rate_windows WHERE key_id IN (SELECT id FROM api_keys WHERE strategy_id = %s)",
                (strategy_id,),
            )
            curs.execute("DELETE FROM api_keys WHERE strategy_id = %s", (strategy_id,))
            curs.execute("DELETE FROM strategy_updates WHERE strategy_id = %s", (strategy_id,))
            row = curs.execute(
                "DELETE FROM strategies WHERE id = %s RETURNING name, owner_id", (strategy_id,)
            ).fetchone()
            if row is not None and row["owner_id"] is not None:  # their count of strategies started stays whole
                curs.execute(
                    "UPDATE users SET strategies_deleted = strategies_deleted + 1 WHERE id = %s", (row["owner_id"],)
                )
        return None if row is None else row["name"]

    def create_key(self, user: UUID, strategy_id: UUID, name: str) -> ApiKeyCreated:
        with self.datastore.transaction(commit=True) as curs:
            self._owned(curs, user, strategy_id)
            row, plaintext = self._insert_key(curs, strategy_id, name)
        return ApiKeyCreated(plaintext=plaintext, **row)

    def list_keys(self, user: UUID, strategy_id: UUID) -> list[ApiKeyInfo]:
        with reading(self.datastore) as curs:
            self._owned(curs, user, strategy_id)
            rows = curs.execute(
                "SELECT id, name, key_prefix, created_at, last_used_at, revoked_at FROM api_keys"
                " WHERE strategy_id = %s ORDER BY created_at, id",
                (strategy_id,),
            ).fetchall()
        return [ApiKeyInfo(**r) for r in rows]

    def revoke_key(self, user: UUID, strategy_id: UUID, key_id: UUID) -> ApiKeyInfo:
        """Soft delete; revoking a revoked key changes nothing and answers the same."""
        with self.datastore.transaction(commit=True) as curs:
            self._owned(curs, user, strategy_id)
            row = curs.execute(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = %s AND strategy_id = %s"
                " RETURNING id, name, key_prefix, created_at, last_used_at, revoked_at",
                (key_id, strategy_id),
            ).fetchone()
        if row is None:
            raise NotFound(f"API key {key_id} not found")
        return ApiKeyInfo(**row)

    def benchmark(self, strategy_id: UUID) -> str | None:
        """The strategy's benchmark symbol (None when it has none)."""
        with reading(self.datastore) as curs:
            return IdentityTx(curs).benchmark_of(strategy_id)

    def base_currency(self, strategy_id: UUID) -> str:
        with reading(self.datastore) as curs:
            return IdentityTx(curs).base_currency_of(strategy_id)

    def base_currencies_in_use(self) -> dict[UUID, str]:
        """Every strategy whose base currency is not USD, with it (what FX rates the market data needs)."""
        with reading(self.datastore) as curs:
            rows = curs.execute("SELECT id, base_currency FROM strategies WHERE base_currency <> 'USD'").fetchall()
        return {r["id"]: r["base_currency"] for r in rows}

    def benchmarks_in_use(self) -> set[str]:
        with reading(self.datastore) as curs:
            rows = curs.execute("SELECT DISTINCT benchmark FROM strategies WHERE benchmark <> ''").fetchall()
        return {r["benchmark"] for r in rows}

    # ------------------------------------------------------------ the projector's reads (its transaction)

    def latest_strategy_update(self) -> int:
        """The last ``strategy_updates`` id (0: none), on its own connection."""
        with reading(self.datastore) as curs:
            return IdentityTx(curs).last_strategy_update_id()

    @staticmethod
    def _record_update(curs: Any, strategy_id: UUID, *, benchmark_changed: bool) -> None:
        curs.execute(
            "INSERT INTO strategy_updates (strategy_id, benchmark_changed) VALUES (%s, %s)",
            (strategy_id, benchmark_changed),
        )

    @staticmethod
    def _insert_key(curs: Any, strategy_id: UUID, name: str) -> tuple[dict, str]:
        """Insert a new key for a strategy; returns (its metadata row, plaintext)."""
        key = new_secret(KEY_PREFIX)
        row = curs.execute(
            "INSERT INTO api_keys (id, strategy_id, name, key_prefix, key_hash) VALUES (%s, %s, %s, %s, %s)"
            " RETURNING id, name, key_prefix, created_at",
            (uuid.uuid4(), strategy_id, name, key[: len(KEY_PREFIX) + 2], hash_secret(key)),
        ).fetchone()
        return row, key

    @staticmethod
    def _owned(curs: Any, user: UUID, strategy_id: UUID) -> None:
        row = curs.execute("SELECT owner_id FROM strategies WHERE id = %s", (strategy_id,)).fetchone()
        if row is None:
            raise NotFound(f"Strategy {strategy_id} not found")
        if row["owner_id"] != user:
            raise NotOwner("Only the strategy's creator may manage its API keys")

    # ------------------------------------------------------------ people: accounts and sessions

    def throttle(self, throttles: list[Throttle]) -> datetime | None:
        """Record an attempt in every bucket, or 429 (Retry-After) when one is full; one round trip.

        Returns the attempt's timestamp (to ``open_session`` it away later), None when nothing is limited.
        """
        with self.datastore.transaction(commit=True) as curs:
            return self._attempt(curs, throttles)

    def begin_login(self, throttles: list[Throttle], email: str) -> tuple[datetime | None, dict | None]:
        """Throttle (429 before any hashing; the attempt counts as failed until it succeeds), find the user."""
        with self.datastore.transaction(commit=True) as curs:
            hit = self._attempt(curs, throttles)
            row = curs.execute(
                "SELECT id, email, created_at, handle, password_hash FROM users WHERE lower(email) = lower(%s)",
                (email,),
            ).fetchone()
        return hit, row

    def open_session(
        self, user_id: UUID, token: str, expires_at: datetime, succeeded: Throttle, hit: datetime | None
    ) -> None:
        """A server-side session; the login's attempt is taken back out of its bucket (not a failure)."""
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                "INSERT INTO sessions (id, user_id, token_hash, expires_at) VALUES (%s, %s, %s, %s)",
                (uuid.uuid4(), user_id, hash_secret(token), expires_at),
            )
            if hit is not None and succeeded.limit > 0:
                curs.execute(
                    "UPDATE auth_throttle SET hits = array_remove(hits, %s) WHERE bucket = %s", (hit, succeeded.bucket)
                )

    def end_session(self, token: str | None) -> None:
        if token:
            with self.datastore.transaction(commit=True) as curs:
                curs.execute(
                    "UPDATE sessions SET ended_at = now() WHERE token_hash = %s AND ended_at IS NULL",
                    (hash_secret(token),),
                )

    def session_user(self, token: str | None) -> UUID:
        """The signed-in user of a session cookie, or 401."""
        if not token:
            raise NotSignedIn("Sign in first (no session cookie)")
        with reading(self.datastore) as curs:
            row = curs.execute(
                "SELECT user_id FROM sessions WHERE token_hash = %s AND ended_at IS NULL AND expires_at > now()",
                (hash_secret(token),),
            ).fetchone()
        if row is None:
            raise NotSignedIn("Session expired or signed out")
        return row["user_id"]

    @staticmethod
    def _attempt(curs: Any, throttles: list[Throttle]) -> datetime | None:
        active = [t for t in throttles if t.limit > 0]
        if not active:
            return None
        row = curs.execute(
            "SELECT * FROM botranks_auth_attempt(%s::text[], %s::int[], %s::float8[])",
            ([t.bucket for t in active], [t.limit for t in active], [float(t.window_s) for t in active]),
        ).fetchone()
        if row["limited"]:
            throttle = active[row["limited"] - 1]
            raise TooManyRequests(
                throttle.detail, headers={"Retry-After": str(max(1, math.ceil(row["retry_after_s"])))}
            )
        return row["hit"]
