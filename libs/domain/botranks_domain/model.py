"""Wire and event shapes of the BotRanks ledger (spec "Data Types"), as msgspec structs.

Inputs (``*In``) are what bots send; events are what the event store keeps; the plain
names (``Order``, ``CashEvent``, ``Position``) are what the API returns. Money and
quantities are ``Decimal`` end to end so that sums are exact to the cent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID, uuid5

import msgspec

from .errors import InvalidSymbol
from .reading import MAX_ABS_AMOUNT, MAX_FRACTION_DIGITS, exact_decimal, to_utc

Side = Literal["buy", "sell"]
OrderType = Literal["market", "limit", "stop", "stop_limit"]
OrderStatus = Literal["pending", "filled", "partial", "cancelled"]
CashEventType = Literal["deposit", "withdraw", "dividend", "interest", "fee", "adjustment"]

#: Statuses whose fills move positions and cash (DESIGN "Ledger semantics").
EFFECTIVE_STATUSES = frozenset({"filled", "partial"})

MAX_BATCH = 500
MAX_DETAILS_BYTES = 16 * 1024
#: ``details`` is free-form JSON, but nothing downstream should ever have to recurse deeply
MAX_DETAILS_DEPTH = 32
#: a symbol as a client may send it (ASCII letters of either case); it is stored upper-cased
SYMBOL_PATTERN = r"^[A-Za-z0-9.\-:^]{1,20}$"
_SYMBOL_SENT = re.compile(r"[A-Za-z0-9.\-:^]{1,20}")
#: a symbol as stored
SYMBOL_RE = re.compile(r"^[A-Z0-9.\-:^]{1,20}\Z")

# PostgreSQL text cannot hold NUL: refuse it at the door rather than poison the projection
NO_NUL = "^[^\x00]*$"
# the grammar is checked by normalize_symbol (the spec's 400), not by msgspec (a 422): the pattern
# here is for the OpenAPI document only
SymbolText = Annotated[str, msgspec.Meta(min_length=1, max_length=20, extra_json_schema={"pattern": SYMBOL_PATTERN})]
ExternalId = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=NO_NUL)]
NoteText = Annotated[str, msgspec.Meta(max_length=2000, pattern=NO_NUL)]
# the bounds exact_decimal (reading.py) checks, for the OpenAPI document (msgspec does not check them: the
# __post_init__ of each input does, naming the field); a JSON Schema bound cannot say "at most 18
# digits after the point" of a JSON number exactly, so that one is said in words
_SCALE = f"at most {MAX_FRACTION_DIGITS} digits after the decimal point"
Positive = Annotated[
    Decimal,
    msgspec.Meta(
        extra_json_schema={"exclusiveMinimum": 0, "maximum": float(MAX_ABS_AMOUNT), "description": f"> 0, {_SCALE}"}
    ),
]
NonNegative = Annotated[
    Decimal,
    msgspec.Meta(extra_json_schema={"minimum": 0, "maximum": float(MAX_ABS_AMOUNT), "description": f">= 0, {_SCALE}"}),
]
Signed = Annotated[
    Decimal,
    msgspec.Meta(
        extra_json_schema={"minimum": -float(MAX_ABS_AMOUNT), "maximum": float(MAX_ABS_AMOUNT), "description": _SCALE}
    ),
]

# uuid5 namespace for deterministic aggregate ids: idempotency by version conflict.
ID_NAMESPACE = UUID("6f1c1e0a-3d0b-5d7e-9a55-6b2f3f6c0b11")


def normalize_symbol(raw: str, where: str) -> str:
    """Check ``raw`` against the symbol grammar as sent, then upper-case it (ASCII letters only).

    The characters are checked first: ``"ß".upper()`` is ``"SS"`` and ``"ı".upper()`` is ``"I"``,
    so checking after upper-casing would store a symbol the client never sent.
    """
    if not isinstance(raw, str) or not _SYMBOL_SENT.fullmatch(raw):
        shown = raw[:40] if isinstance(raw, str) else raw
        raise InvalidSymbol(f"Invalid symbol {shown!r} at {where}: expected 1-20 of A-Z 0-9 . - : ^")
    return raw.upper()


def _check_details(details: dict[str, Any]) -> dict[str, Any]:
    """Bound free-form ``details``; return them exactly as the event log will hand them back."""
    stack: list[tuple[Any, int]] = [(details, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DETAILS_DEPTH:
            raise ValueError(f"`details` must be nested at most {MAX_DETAILS_DEPTH} levels deep")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values() if isinstance(v, (dict, list)))
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item if isinstance(v, (dict, list)))
    encoded = _event_encoder.encode(details)
    if len(encoded) > MAX_DETAILS_BYTES:
        raise ValueError("`details` must encode to at most 16 KiB of JSON")
    if b"\\u0000" in encoded:
        raise ValueError("`details` must not contain NUL characters")
    try:  # the projector reads events back with this decoder: what it cannot read is refused here
        return _details_decoder.decode(encoded)
    except msgspec.ValidationError:
        raise ValueError("`details` contains a number out of range") from None


# ---------------------------------------------------------------- inputs


class OrderIn(msgspec.Struct, forbid_unknown_fields=True):
    symbol: SymbolText
    side: Side
    quantity: Positive
    executed_at: datetime | None = None
    price: Positive | None = None
    fees: NonNegative = Decimal(0)
    order_type: OrderType = "market"
    status: OrderStatus = "filled"
    external_order_id: ExternalId | None = None
    details: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.quantity = exact_decimal(self.quantity, "quantity", positive=True)
        if self.price is not None:
            self.price = exact_decimal(self.price, "price", positive=True)
        self.fees = exact_decimal(self.fees, "fees", non_negative=True)
        if self.executed_at is not None:
            self.executed_at = to_utc(self.executed_at, "executed_at")
        if self.details is not None:
            self.details = _check_details(self.details)


class OrdersBatchIn(msgspec.Struct, forbid_unknown_fields=True):
    orders: Annotated[list[OrderIn], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]


class CashIn(msgspec.Struct, forbid_unknown_fields=True):
    event_type: CashEventType
    #: a deposit > 0, a withdraw < 0 (checked below)
    amount: Signed
    occurred_at: datetime | None = None
    external_id: ExternalId | None = None
    related_symbol: SymbolText | None = None
    note: NoteText | None = None

    def __post_init__(self) -> None:
        self.amount = exact_decimal(self.amount, "amount")
        if self.event_type == "deposit" and self.amount <= 0:
            raise ValueError("`amount` of a deposit must be > 0")
        if self.event_type == "withdraw" and self.amount >= 0:
            raise ValueError("`amount` of a withdraw must be < 0")
        if self.occurred_at is not None:
            self.occurred_at = to_utc(self.occurred_at, "occurred_at")


class PositionIn(msgspec.Struct, forbid_unknown_fields=True):
    symbol: SymbolText
    quantity: Signed
    cost_basis: Signed

    def __post_init__(self) -> None:
        self.quantity = exact_decimal(self.quantity, "quantity")
        self.cost_basis = exact_decimal(self.cost_basis, "cost_basis")
        if self.quantity != 0 and self.cost_basis <= 0:
            raise ValueError("`cost_basis` must be > 0 for an open position")


class SnapshotIn(msgspec.Struct, forbid_unknown_fields=True):
    positions: Annotated[list[PositionIn], msgspec.Meta(max_length=10_000)]
    log_deltas: bool = False
    taken_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.taken_at is not None:
            self.taken_at = to_utc(self.taken_at, "taken_at")


# ---------------------------------------------------------------- events / outputs
# The stored events and their parts are msgspec structs with gc=False: they hold values only (never a
# reference back), so they cannot be in a cycle, and the cyclic GC need not walk the histories the
# projector keeps in memory (services/projector/history_cache.py) on every collection.


class Order(msgspec.Struct, kw_only=True, gc=False):
    id: UUID
    strategy_id: UUID
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    fees: Decimal
    order_type: OrderType
    status: OrderStatus
    executed_at: datetime
    created_at: datetime
    external_order_id: str | None
    details: dict[str, Any] | None


class CashEvent(msgspec.Struct, kw_only=True, gc=False):
    id: UUID
    strategy_id: UUID
    event_type: CashEventType
    #: a deposit > 0, a withdraw < 0 (checked below)
    amount: Signed
    occurred_at: datetime
    external_id: str | None
    related_symbol: str | None
    note: str | None
    created_at: datetime


class SnapshotPosition(msgspec.Struct, gc=False):
    symbol: str
    quantity: Decimal
    cost_basis: Decimal


class PositionsSnapshot(msgspec.Struct, kw_only=True, gc=False):
    id: UUID
    strategy_id: UUID
    positions: list[SnapshotPosition]
    log_deltas: bool
    taken_at: datetime
    created_at: datetime


_details_encoder = msgspec.json.Encoder()


#: a log table's row (``rm_orders``, ``rm_cash_events``, ``rm_snapshots``): its columns in the table's order
LogRow = tuple[object, ...]


class OrderRecorded(msgspec.Struct, tag="OrderRecorded.v1", gc=False):
    """An order, as stored.

    Every event (``LedgerEvent``) answers the same accessors, so nothing outside this module
    dispatches on the event type: ``strategy_id``, ``aggregate_id`` (the id it is stored under),
    ``effective_at`` (when it takes effect in the ledger: its fold position), ``arrived_at`` (when
    the event store received it), ``external_id`` (the bot's own id, if any), ``symbols()``,
    ``external_flow`` and ``log_row()``.
    """

    order: Order

    @property
    def strategy_id(self) -> UUID:
        return self.order.strategy_id

    @property
    def aggregate_id(self) -> UUID:
        return self.order.id

    @property
    def effective_at(self) -> datetime:
        return self.order.executed_at

    @property
    def arrived_at(self) -> datetime:
        return self.order.created_at

    @property
    def external_id(self) -> str | None:
        return self.order.external_order_id

    def symbols(self) -> set[str]:
        return {self.order.symbol}

    external_flow = Decimal(0)

    def log_row(self) -> LogRow:
        """The columns of its ``rm_orders`` row (before notification id and event bytes)."""
        o = self.order
        details = None if o.details is None else _details_encoder.encode(o.details).decode()
        return (
            o.id,
            o.strategy_id,
            o.symbol,
            o.side,
            o.quantity,
            o.price,
            o.fees,
            o.order_type,
            o.status,
            o.executed_at,
            o.created_at,
            o.external_order_id,
            details,
        )


class CashRecorded(msgspec.Struct, tag="CashRecorded.v1", gc=False):
    cash: CashEvent

    @property
    def strategy_id(self) -> UUID:
        return self.cash.strategy_id

    @property
    def aggregate_id(self) -> UUID:
        return self.cash.id

    @property
    def effective_at(self) -> datetime:
        return self.cash.occurred_at

    @property
    def arrived_at(self) -> datetime:
        return self.cash.created_at

    @property
    def external_id(self) -> str | None:
        return self.cash.external_id

    def symbols(self) -> set[str]:
        return set()

    def log_row(self) -> LogRow:
        c = self.cash
        return (
            c.id,
            c.strategy_id,
            c.event_type,
            c.amount,
            c.occurred_at,
            c.external_id,
            c.related_symbol,
            c.note,
            c.created_at,
        )

    @property
    def external_flow(self) -> Decimal:
        """Deposits and withdrawals are external flows; dividends, interest, fees are performance."""
        return self.cash.amount if self.cash.event_type in ("deposit", "withdraw") else Decimal(0)


class PositionsSnapshotted(msgspec.Struct, tag="PositionsSnapshotted.v1", gc=False):
    snapshot: PositionsSnapshot

    @property
    def strategy_id(self) -> UUID:
        return self.snapshot.strategy_id

    @property
    def aggregate_id(self) -> UUID:
        return self.snapshot.id

    @property
    def effective_at(self) -> datetime:
        return self.snapshot.taken_at

    @property
    def arrived_at(self) -> datetime:
        return self.snapshot.created_at

    @property
    def external_id(self) -> None:
        """A snapshot has no id of the bot's."""
        return None

    def symbols(self) -> set[str]:
        return {p.symbol for p in self.snapshot.positions}

    external_flow = Decimal(0)  # the market value it adds or removes is a flow, valued by the NAV walk

    def log_row(self) -> LogRow:
        s = self.snapshot
        return (s.id, s.strategy_id, s.taken_at)


LedgerEvent = OrderRecorded | CashRecorded | PositionsSnapshotted


def symbols_of(events: Iterable[LedgerEvent]) -> set[str]:
    """Every symbol the events name (the union of their ``symbols()``), in one pass: a re-derivation
    asks it of a whole history, where a set per event costs more than the answer."""
    out: set[str] = set()
    for event in events:
        if type(event) is OrderRecorded:
            out.add(event.order.symbol)
        else:
            out |= event.symbols()
    return out


_event_encoder = msgspec.json.Encoder(decimal_format="number")
_event_decoder = msgspec.json.Decoder(LedgerEvent)
_details_decoder = msgspec.json.Decoder(dict[str, Any])


def encode_event(event: LedgerEvent) -> bytes:
    return _event_encoder.encode(event)


def decode_event(data: bytes) -> LedgerEvent:
    return _event_decoder.decode(data)


def event_topic(event: LedgerEvent) -> str:
    """The event's type as the event store names it (its tag: ``OrderRecorded.v1``)."""
    tag = type(event).__struct_config__.tag
    if not isinstance(tag, str):  # every LedgerEvent declares a string tag
        raise TypeError(f"not a ledger event: {type(event).__name__}")
    return tag


def order_of(event: LedgerEvent) -> Order:
    """The order an ``OrderRecorded`` carries (an order's log or aggregate id holds nothing else);
    TypeError for any other event."""
    if isinstance(event, OrderRecorded):
        return event.order
    raise TypeError(f"not an order: {event_topic(event)}")


def cash_of(event: LedgerEvent) -> CashEvent:
    """The cash event a ``CashRecorded`` carries; TypeError for any other event."""
    if isinstance(event, CashRecorded):
        return event.cash
    raise TypeError(f"not a cash event: {event_topic(event)}")


class _StrategyOnly(msgspec.Struct):
    strategy_id: UUID


class _EventStrategy(msgspec.Struct):
    """Just enough of a stored event to route it: its strategy id, wherever the event keeps it."""

    order: _StrategyOnly | None = None
    cash: _StrategyOnly | None = None
    snapshot: _StrategyOnly | None = None


_strategy_decoder = msgspec.json.Decoder(_EventStrategy)


def stored_event_strategy(data: bytes) -> UUID | None:
    """The strategy id of a stored event, read without decoding the whole event (None if it has none)."""
    try:
        found = _strategy_decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    inner = found.order or found.cash or found.snapshot
    return None if inner is None else inner.strategy_id


def order_aggregate_id(strategy_id: UUID, external_order_id: str) -> UUID:
    return uuid5(ID_NAMESPACE, f"{strategy_id}/order/{external_order_id}")


def cash_aggregate_id(strategy_id: UUID, external_id: str) -> UUID:
    return uuid5(ID_NAMESPACE, f"{strategy_id}/cash/{external_id}")


class Position(msgspec.Struct, kw_only=True):
    id: UUID
    strategy_id: UUID
    symbol: str
    quantity: Decimal
    cost_basis: Decimal
    updated_at: datetime
    #: the instrument's quote currency: ``cost_basis`` is in it
    currency: str = "USD"


def position_id(strategy_id: UUID, symbol: str) -> UUID:
    return uuid5(ID_NAMESPACE, f"{strategy_id}/position/{symbol}")
