"""Webhook signatures, Stripe's scheme: ``BotRanks-Signature: t=<unix seconds>,v1=<hex>`` where the
hex is HMAC-SHA256 of ``f"{t}.{body}"`` under the webhook's secret. A receiver recomputes it over
the raw body and refuses a ``t`` too far from its clock (replays)."""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "BotRanks-Signature"
TOLERANCE_S = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def header(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The header's value for ``body`` signed now (or at ``timestamp``)."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={signature(secret, t, body)}"


def verify(secret: str, value: str, body: bytes, now: float | None = None, tolerance_s: int = TOLERANCE_S) -> bool:
    """What a receiver does: some ``v1`` matches and ``t`` is within ``tolerance_s`` of ``now``."""
    parts = [p.split("=", 1) for p in value.split(",") if "=" in p]
    stamps = [v for k, v in parts if k.strip() == "t"]
    if len(stamps) != 1 or not stamps[0].strip().isdigit():
        return False
    t = int(stamps[0])
    if abs((time.time() if now is None else now) - t) > tolerance_s:
        return False
    expected = signature(secret, t, body)
    return any(k.strip() == "v1" and hmac.compare_digest(v.strip(), expected) for k, v in parts)
