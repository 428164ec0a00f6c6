"""What the sync and async clients share: input preparation (validation, times, ids),
request bodies, and the retry and pacing rules. No I/O here."""

from __future__ import annotations

import email.utils
import hashlib
import logging
import random
import time
from collections.abc import Iterable, Mapping, MutableMapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgspec

from botranks_domain.errors import InvalidSymbol
from botranks_domain.model import (
    MAX_BATCH,
    CashIn,
    OrderIn,
    PositionIn,
    SnapshotIn,
    normalize_symbol,
)
from botranks_domain.reading import convert_input

from .errors import InvalidInput, InvalidOrder
from .results import SubmitResult

__all__ = ["MAX_BATCH", "MAX_BODY_BYTES"]

log = logging.getLogger("botranks_client")

#: the server refuses bodies over 1 MiB (413); batches are cut below it whatever the order count
MAX_BODY_BYTES = 1024 * 1024 - 16 * 1024
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 30.0
#: a Retry-After beyond this is taken as this (a misconfigured proxy must not park a bot for hours)
RETRY_AFTER_CAP_S = 300.0
PROJECTED_HEADER = "BotRanks-Projected"

# requests: decimals as exact JSON numbers (the server reads them from the text, never via float)
_wire = msgspec.json.Encoder(decimal_format="number")
# the identity of an input: sorted keys, decimals as their exact text
_canonical = msgspec.json.Encoder(decimal_format="string", order="sorted")


# ---------------------------------------------------------------- input preparation


def utc_now() -> datetime:
    return datetime.now(UTC)


def derive_id(strategy_id: UUID, kind: str, index: int | None, item: msgspec.Struct) -> str:
    """``bot-`` + 32 hex of SHA-256 over the strategy, the kind, the position and the content."""
    digest = hashlib.sha256(f"{strategy_id}\n{kind}\n{'' if index is None else index}\n".encode())
    digest.update(_canonical.encode(item))
    return "bot-" + digest.hexdigest()[:32]


def _as_strategy(value: UUID | str) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


def prepare_orders(
    orders: Iterable[OrderIn | Mapping[str, Any]], strategy_id: UUID, now: datetime | None = None
) -> list[OrderIn]:
    """Validate every order, fill ``executed_at`` on the caller's object and derive missing ids.

    Nothing is sent; the first bad order raises :class:`InvalidOrder` with its index.
    """
    now = now or utc_now()
    prepared: list[OrderIn] = []
    for index, item in enumerate(orders):
        if isinstance(item, OrderIn):
            if item.executed_at is None:
                item.executed_at = now
            raw: Mapping[str, Any] = msgspec.structs.asdict(item)
        elif isinstance(item, Mapping):
            if item.get("executed_at") is None:
                if not isinstance(item, MutableMapping):
                    raise InvalidOrder(
                        index,
                        "`executed_at` is missing and the mapping is read-only: pass"
                        " executed_at (a retry must reuse the same time to stay idempotent)",
                    )
                item["executed_at"] = now
            raw = item
        else:
            raise InvalidOrder(index, f"expected an OrderIn or a mapping, got {type(item).__name__}")
        try:
            order = convert_input(raw, OrderIn)
            order.symbol = normalize_symbol(order.symbol, "symbol")
        except msgspec.ValidationError as exc:
            raise InvalidOrder(index, str(exc)) from None
        except InvalidSymbol as exc:
            raise InvalidOrder(index, exc.detail) from None
        if order.external_order_id is None:
            order.external_order_id = derive_id(strategy_id, "order", index, order)
        prepared.append(order)
    return prepared


def prepare_cash(
    strategy_id: UUID,
    event_type: str,
    amount: Decimal | int | str,
    *,
    occurred_at: datetime | str | None,
    external_id: str | None,
    related_symbol: str | None,
    note: str | None,
    now: datetime | None = None,
) -> CashIn:
    """Validate a cash event, fill ``occurred_at`` (now) and derive ``external_id`` from the content."""
    raw = {
        "event_type": event_type,
        "amount": amount,
        "occurred_at": occurred_at or now or utc_now(),
        "external_id": external_id,
        "related_symbol": related_symbol,
        "note": note,
    }
    try:
        cash = convert_input(raw, CashIn)
        if cash.related_symbol is not None:
            cash.related_symbol = normalize_symbol(cash.related_symbol, "related_symbol")
    except msgspec.ValidationError as exc:
        raise InvalidInput(str(exc)) from None
    except InvalidSymbol as exc:
        raise InvalidInput(exc.detail) from None
    if cash.external_id is None:
        cash.external_id = derive_id(strategy_id, "cash", None, cash)
    return cash


def prepare_snapshot(
    positions: Iterable[PositionIn | Mapping[str, Any]],
    *,
    taken_at: datetime | str | None,
    log_deltas: bool,
    now: datetime | None = None,
) -> SnapshotIn:
    """Validate a snapshot; ``taken_at`` defaults to now (fixed here so that every retry sends the same)."""
    items = [msgspec.structs.asdict(p) if isinstance(p, PositionIn) else p for p in positions]
    try:
        snapshot = convert_input(
            {"positions": items, "log_deltas": log_deltas, "taken_at": taken_at or now or utc_now()}, SnapshotIn
        )
        for i, p in enumerate(snapshot.positions):
            p.symbol = normalize_symbol(p.symbol, f"positions[{i}].symbol")
    except msgspec.ValidationError as exc:
        raise InvalidInput(str(exc)) from None
    except InvalidSymbol as exc:
        raise InvalidInput(exc.detail) from None
    return snapshot


def order_batches(orders: list[OrderIn]) -> list[tuple[bytes, int]]:
    """Request bodies of at most MAX_BATCH orders and MAX_BODY_BYTES each, in order: (body, count)."""
    batches: list[tuple[bytes, int]] = []
    current: list[bytes] = []
    size = 0
    for order in orders:
        encoded = _wire.encode(order)
        if current and (len(current) >= MAX_BATCH or size + len(encoded) + 1 > MAX_BODY_BYTES):
            batches.append((orders_body(current), len(current)))
            current, size = [], 0
        current.append(encoded)
        size += len(encoded) + 1
    if current:
        batches.append((orders_body(current), len(current)))
    return batches


def orders_body(encoded_orders: list[bytes]) -> bytes:
    return b'{"orders":[' + b",".join(encoded_orders) + b"]}"


def encode(value: Any) -> bytes:
    return _wire.encode(value)


class _RawBatch(msgspec.Struct):
    orders: list[msgspec.Raw]


def split_orders_body(body: bytes) -> list[bytes]:
    """The orders of a body this module built, as their exact bytes (to merge outbox rows)."""
    return [bytes(raw) for raw in msgspec.json.decode(body, type=_RawBatch).orders]


# ---------------------------------------------------------------- answers


def decode_submit(content: bytes, projected: bool) -> SubmitResult:
    result = msgspec.json.decode(content, type=SubmitResult)
    result.projected = projected
    return result


def merge_submit(total: SubmitResult, part: SubmitResult) -> None:
    total.accepted.extend(part.accepted)
    total.duplicates.extend(part.duplicates)
    total.projected = total.projected and part.projected


def write_headers(read_your_writes: bool | None) -> dict[str, str]:
    """Headers for every request: ``read_your_writes=False`` asks the server to answer writes at
    commit instead of once ``/state`` shows them (much faster for bulk writes)."""
    return {"BotRanks-Read-Your-Writes": "off"} if read_your_writes is False else {}


def is_projected(headers: Mapping[str, str]) -> bool:
    return headers.get(PROJECTED_HEADER, "true").lower() != "false"


def api_root(base_url: str) -> str:
    """``http://host:8000`` or ``http://host:8000/api/v1`` (with or without slash) → the latter."""
    root = base_url.rstrip("/")
    return root if root.endswith("/api/v1") else root + "/api/v1"


def query_params(filters: Mapping[str, Any]) -> dict[str, str]:
    params: dict[str, str] = {}
    for key, value in filters.items():
        if value is None:
            continue
        key = key.rstrip("_")  # from_ → from
        if isinstance(value, bool):
            params[key] = "true" if value else "false"
        elif isinstance(value, (date, datetime)):
            params[key] = value.isoformat()
        else:
            params[key] = str(value)
    return params


def performance_params(benchmark: str | None, risk_free_rate: Decimal | float | str | None) -> dict[str, str]:
    params: dict[str, str] = {}
    if benchmark is not None:
        params["benchmark"] = benchmark  # "" asks for no benchmark at all
    if risk_free_rate is not None:
        params["risk_free_rate"] = repr(risk_free_rate) if isinstance(risk_free_rate, float) else str(risk_free_rate)
    return params


# ---------------------------------------------------------------- retries and pacing


def should_retry(status: int) -> bool:
    """429 and 5xx are retried; any other 4xx is final."""
    return status == 429 or status >= 500


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` (delta seconds or an HTTP date); None when absent/unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), RETRY_AFTER_CAP_S)


def backoff(attempt: int, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
    ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * (2 ** min(attempt, 16)))
    return (rng or random).uniform(0, ceiling)


class Pacer:
    """Holds requests back when the key's window is spent (RateLimit-Remaining: 0) until RateLimit-Reset."""

    def __init__(self, clock=time.monotonic) -> None:
        self.clock = clock
        self.not_before = 0.0
        #: the last RateLimit-Limit / -Remaining / -Reset seen (None until an answer carried them)
        self.last: dict[str, int] | None = None

    def delay(self) -> float:
        """Seconds to wait before the next request (consumed: the caller waits it)."""
        wait = self.not_before - self.clock()
        self.not_before = 0.0
        return max(wait, 0.0)

    def defer(self, seconds: float) -> None:
        self.not_before = max(self.not_before, self.clock() + seconds)

    def observe(self, headers: Mapping[str, str]) -> None:
        remaining, reset = headers.get("RateLimit-Remaining"), headers.get("RateLimit-Reset")
        if remaining is None or reset is None:
            return
        try:
            self.last = {
                "limit": int(headers.get("RateLimit-Limit", "0")),
                "remaining": int(remaining),
                "reset": int(float(reset)),
            }
            if int(remaining) <= 0:
                wait = min(float(reset), RETRY_AFTER_CAP_S)
                if wait > 0:
                    log.info("rate limit window spent: next request in %.1f s", wait)
                    self.defer(wait)
        except ValueError:
            return


def strategy_uuid(value: UUID | str) -> UUID:
    try:
        return _as_strategy(value)
    except ValueError:
        raise ValueError(f"strategy_id must be a UUID, got {value!r}") from None
