"""Which of the P partitions a strategy's events belong to: a deterministic function of its id.

The partition of a strategy is the top 32 bits of its UUID modulo P (UUIDv4 ids are uniform, so
partitions are even). The same rule, for a stored event's bytes, is ``event_partition``: the 8 hex
digits after the first ``"strategy_id":"`` in the event's JSON (every event names its strategy
before any free-form field, and a quote inside a JSON string is escaped), or partition 0 when there
are none. PostgreSQL computes exactly the same key as each event is stored (the ``strategy_key``
column, migration 12), so the store is read by partition with ``strategy_key % P``.
"""

from __future__ import annotations

import re
from uuid import UUID

DEFAULT_PARTITIONS = 16
MAX_PARTITIONS = 1024

_STRATEGY_FIELD = b'"strategy_id":"'
_KEY_DIGITS = re.compile(rb"[0-9a-fA-F]{8}")


def partition_of(strategy_id: UUID, partitions: int) -> int:
    """The partition (0..partitions-1) of a strategy."""
    return (strategy_id.int >> 96) % partitions


def event_strategy_key(state: bytes) -> int:
    """A stored event's strategy key (its strategy id's top 32 bits; 0 when it names none), as the
    ``strategy_key`` column holds it."""
    at = state.find(_STRATEGY_FIELD)
    if at < 0:
        return 0
    digits = state[at + len(_STRATEGY_FIELD) : at + len(_STRATEGY_FIELD) + 8]
    return int(digits, 16) if _KEY_DIGITS.fullmatch(digits) else 0


def event_partition(state: bytes, partitions: int) -> int:
    """The partition of a stored event (its JSON bytes), as PostgreSQL reads it."""
    return event_strategy_key(state) % partitions
