"""People, strategies and API keys: the shapes the accounts API takes and answers with."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from .currency import is_currency
from .model import NO_NUL
from .profiles import Description, Handle, Tags, check_description, normalize_tags

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=NO_NUL)]


#: a symbol or nothing, with spaces around (the accounts trim it); for the OpenAPI document
BENCHMARK_PATTERN = r"^\s*([A-Za-z0-9.\-:^]{1,20})?\s*$"
#: passwords are at least this long (registration checks it; a shorter one never signs in)
MIN_PASSWORD = 12


class Credentials(msgspec.Struct, forbid_unknown_fields=True):
    email: Annotated[str, msgspec.Meta(max_length=254, pattern=NO_NUL, extra_json_schema={"format": "email"})]
    password: Annotated[str, msgspec.Meta(max_length=1024, extra_json_schema={"minLength": MIN_PASSWORD})]


CurrencyCode = Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}$", description="an ISO 4217 code in tender, e.g. EUR")]


def check_currency(code: str | None) -> None:
    """ValueError (msgspec's 400, naming the field) unless ``code`` is an ISO 4217 currency in tender."""
    if code is not None and not is_currency(code):
        raise ValueError(f"base_currency: {code!r} is not an ISO 4217 currency code in tender (e.g. USD, EUR, GBP)")


class StrategyIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    visibility: Literal["public", "private"] = "private"
    base_currency: CurrencyCode = "USD"
    benchmark: Annotated[str, msgspec.Meta(max_length=20, extra_json_schema={"pattern": BENCHMARK_PATTERN})] = "SPY"

    def __post_init__(self) -> None:
        check_currency(self.base_currency)


class ApiKeyIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Name


class Registration(Credentials, forbid_unknown_fields=True):
    """What ``/auth/register`` takes: credentials and, optionally, the public handle."""

    handle: Handle | None = None


class User(msgspec.Struct):
    id: UUID
    email: str
    created_at: datetime
    #: the public name of the account (None: none chosen yet); never the email
    handle: str | None = None


class HandleIn(msgspec.Struct, forbid_unknown_fields=True):
    """A new public handle (null: none)."""

    handle: Handle | None


class OwnerRecord(msgspec.Struct):
    """An owner's public page: the handle, when they joined, how many strategies they started."""

    handle: str
    joined: date
    #: every strategy they have started here: public + private + deleted
    started: int
    public: int
    private: int
    deleted: int
    public_ids: list[UUID]


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


ShowPositions = Literal["none", "delayed", "live"]


class StrategyProfile(msgspec.Struct):
    """What the pages need to know of a strategy: its public face and who owns it."""

    id: UUID
    name: str
    visibility: str
    benchmark: str | None
    show_positions: str
    owner_id: UUID | None
    created_at: datetime
    #: the currency every money amount of the strategy is in (ISO 4217)
    base_currency: str = "USD"
    #: its profile: the owner's Markdown (no raw HTML), the owner's tags, the owner's public handle
    description: str = ""
    tags: list[str] = msgspec.field(default_factory=list)
    owner_handle: str | None = None


class StrategySettingsIn(msgspec.Struct, forbid_unknown_fields=True):
    """A change to a strategy's public face (any subset of the fields)."""

    name: Name | None = None
    visibility: Literal["public", "private"] | None = None
    benchmark: Annotated[str, msgspec.Meta(max_length=20, extra_json_schema={"pattern": BENCHMARK_PATTERN})] | None = (
        None
    )
    show_positions: ShowPositions | None = None
    #: a new base currency re-derives every read model in it
    base_currency: CurrencyCode | None = None
    description: Description | None = None
    tags: Tags | None = None

    def __post_init__(self) -> None:
        check_currency(self.base_currency)
        check_description(self.description)
        if self.tags is not None:
            self.tags = normalize_tags(self.tags)
