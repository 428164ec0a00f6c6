"""Identity: owner of ``users``, ``sessions``, ``strategies``, ``strategy_updates`` (outbox),
``api_keys``, ``rate_windows``, ``auth_throttle`` and ``strategy_tombstones``.

Secrets (API keys, session tokens) carry 256 random bits; only their SHA-256 is stored and
lookups go by that hash, so no plaintext is ever compared or kept. The per-key rate limit is
a sliding window in PostgreSQL, shared by every replica of both APIs (``botranks_check_keys``: the
hits of many requests in one statement, sent by ``libs.infra.key_gate`` through ``gate``; hits kept
per second); so are the sign-in throttles (``botranks_auth_attempt``:
attempts per client address, failed logins per email). Errors are domain errors
(``botranks_domain.errors``); the web layer maps them to statuses. Nothing else runs SQL on
these tables. ``accounts`` holds the reads and writes, ``tx`` what other owners' transactions use,
``ddl`` the tables (by migration version).
"""

from .accounts import (
    AUTH_IP_WINDOW_S,
    KEY_PREFIX,
    KEY_RE,
    RATE_WINDOW_S,
    Identity,
    RateState,
    Throttle,
    address_throttle,
    client_bucket,
    email_throttle,
    hash_secret,
    new_secret,
)
from .ddl import MIGRATIONS
from .tx import IdentityTx

__all__ = [
    "AUTH_IP_WINDOW_S",
    "KEY_PREFIX",
    "KEY_RE",
    "MIGRATIONS",
    "RATE_WINDOW_S",
    "Identity",
    "IdentityTx",
    "RateState",
    "Throttle",
    "address_throttle",
    "client_bucket",
    "email_throttle",
    "hash_secret",
    "new_secret",
]
