"""Which of the P partitions a strategy's events belong to: a deterministic function of its id.

The partition of a strategy is the top 32 bits of its UUID modulo P (UUIDv4 ids are uniform, so
partitions are even). The same rule, for a stored event's bytes, is ``event_partition``: the first
``"strategy_id":"<uuid>"`` in the event's JSON (every event names its strategy before any free-form
field), or partition 0 when there is none (an event whose strategy cannot be read). PostgreSQL
computes exactly the same (``botranks_event_partition``, migration 10), so the store can be read
by partition.
"""

from __future__ import annotations

import re
from uuid import UUID

DEFAULT_PARTITIONS = 16
MAX_PARTITIONS = 1024

_STRATEGY_IN_EVENT = re.compile(rb'"strategy_id":"([0-9a-fA-F-]{36})"')


def _from_hex(text: str, partitions: int) -> int:
    digits = text.replace("-", "")[:8]
    return int(digits or "0", 16) % partitions


def partition_of(strategy_id: UUID, partitions: int) -> int:
    """The partition (0..partitions-1) of a strategy."""
    return (strategy_id.int >> 96) % partitions


def event_partition(state: bytes, partitions: int) -> int:
    """The partition of a stored event (its JSON bytes), as the SQL function computes it."""
    found = _STRATEGY_IN_EVENT.search(state)
    return 0 if found is None else _from_hex(found.group(1).decode(), partitions)
