"""What the client gives back: the results of a submission, and the outbox's rows."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import msgspec

from botranks_domain.model import CashEvent, Order

__all__ = ["SubmitResult", "CashResult", "Enqueued", "DeadLetter"]

_exact = msgspec.json.Decoder(float_hook=Decimal)


class SubmitResult(msgspec.Struct, kw_only=True):
    """What ``submit_orders`` got back, all batches together (``accepted``: new; ``duplicates``:
    an order with that ``external_order_id`` already existed and was not re-applied)."""

    accepted: list[Order] = msgspec.field(default_factory=list)
    duplicates: list[Order] = msgspec.field(default_factory=list)
    #: False when some batch was stored but not yet folded into /state when the server answered
    projected: bool = True

    @property
    def accepted_count(self) -> int:
        return len(self.accepted)

    @property
    def duplicates_count(self) -> int:
        return len(self.duplicates)

    @property
    def counts(self) -> dict[str, int]:
        return {"accepted": len(self.accepted), "duplicates": len(self.duplicates)}


class CashResult(msgspec.Struct, kw_only=True):
    """``status`` "created", or "duplicate" (an event with that ``external_id`` existed: that one)."""

    status: Literal["created", "duplicate"]
    event: CashEvent
    projected: bool = True


class Enqueued(msgspec.Struct, kw_only=True):
    """A submission written to the outbox: sent in the background, in order (``ids``: its rows)."""

    kind: Literal["orders", "cash", "snapshot"]
    ids: list[int]
    items: int


class DeadLetter(msgspec.Struct, kw_only=True):
    """An outbox row the server refused for good (a 4xx): never retried by itself."""

    id: int
    kind: Literal["orders", "cash", "snapshot"]
    body: bytes
    items: int
    status: int | None
    detail: str
    created_at: datetime
    failed_at: datetime

    def payload(self) -> Any:
        """The request body as JSON data (decimals as Decimal)."""
        return _exact.decode(self.body)
