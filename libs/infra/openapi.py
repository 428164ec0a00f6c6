"""The OpenAPI document both APIs serve at ``/schema/openapi.json`` (and ``/docs`` shows): what the
server enforces, said in the schema.

- Request structs (msgspec, ``forbid_unknown_fields``) are ``additionalProperties: false``, and a
  field's ``msgspec.Meta(extra_json_schema=...)`` (a constraint checked by the struct or the handler
  rather than by msgspec, e.g. the symbol grammar or ``quantity > 0``) lands on its property.
- Decimals are exact JSON numbers; an input decimal may also be a string holding a JSON number.
- Two ways in (``securitySchemes``): an API key (``Authorization: Bearer``) for a strategy's
  ledger, the ``access_token`` session cookie for a person's accounts; tags group the operations.
- One document for both APIs (``merged_document``): ``botranks up`` serves them at one base URL.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import msgspec
from litestar import Request
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, OpenAPIType, Reference, Schema, SecurityScheme, Tag
from litestar.plugins import OpenAPISchemaPlugin

from botranks_domain.reading import DECIMAL_TEXT

TITLE, VERSION = "BotRanks API", "1.0.0"

API_KEY, SESSION = "apiKey", "session"
#: on an operation: who may call it (``security=`` of a Litestar route or controller)
KEY_REQUIRED: list[dict[str, list[str]]] = [{API_KEY: []}]
SESSION_REQUIRED: list[dict[str, list[str]]] = [{SESSION: []}]
NONE_REQUIRED: list[dict[str, list[str]]] = [{}]

LEDGER, ACCOUNTS, PUBLIC = "Ledger", "Accounts", "Public data"
TAGS = [
    Tag(
        name=LEDGER,
        description="A strategy's ledger, for its bot: orders, cash events and position snapshots"
        " in; state, NAV, performance and the logs out. An API key of the strategy"
        " (`Authorization: Bearer ...`).",
    ),
    Tag(
        name=ACCOUNTS,
        description="People: sign-up, sign-in (the `access_token` session cookie), their"
        " strategies and the strategies' API keys.",
    ),
    Tag(
        name=PUBLIC,
        description="What the public pages show, as JSON and downloads: the leaderboard and a"
        " public strategy. No credentials needed (a private strategy is 404 except to"
        " its owner's session).",
    ),
]

DESCRIPTION = """\
Trading bots report their orders, cash events and position snapshots; BotRanks keeps them as an
event log and derives positions, cash, NAV and performance from it.

**Two ways to authenticate**

* **API key** (bots, the *Ledger* operations under `/api/v1/strategies/{strategy_id}`): send
  `Authorization: Bearer <key>`; a key belongs to one strategy. Its owner creates keys with
  `POST /strategies/{strategy_id}/api-keys` (or `botranks strategy create`); the plaintext is shown
  once. Each key is rate limited (`RateLimit-*` headers, 429 with `Retry-After`).
* **Session cookie** (people, the *Accounts* operations): `POST /auth/login` sets the `access_token`
  cookie (HttpOnly); the browser sends it from then on, so on this page sign in with *Try it out*
  on `/auth/login` and the cookie operations work. `POST /auth/logout` ends the session.

In *Authorize*, paste an API key under `apiKey`. Errors are always `{"detail": "..."}` naming the
field; decimals are exact JSON numbers (a string holding the number is accepted too); timestamps
are RFC 3339, read to the microsecond (further digits are cut, never rounded).
"""


def security_schemes() -> dict[str, SecurityScheme | Reference]:
    return {
        API_KEY: SecurityScheme(type="http", scheme="bearer", description="An API key of the strategy in the path"),
        SESSION: SecurityScheme(
            type="apiKey",
            security_scheme_in="cookie",
            name="access_token",
            description="The session cookie set by POST /auth/login",
        ),
    }


class SurfaceJSON(JsonRenderPlugin):
    """``/schema/openapi.json``: the document of every API behind the base URL (``app.state.surface``)."""

    def render(self, request: Request, openapi_schema: dict[str, Any]) -> bytes:
        surface = getattr(request.app.state, "surface", None)
        return self.render_json(
            request, surface.document() if surface is not None else merged_document([openapi_schema])
        )


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title=TITLE,
        version=VERSION,
        description=DESCRIPTION,
        tags=TAGS,
        components=Components(security_schemes=security_schemes()),
        render_plugins=[SurfaceJSON()],
    )


# ---------------------------------------------------------------- schemas of structs


class DecimalAsNumberPlugin(OpenAPISchemaPlugin):
    """Decimals are exact JSON numbers on the wire (see ExactJSONResponse), so say "number"."""

    @staticmethod
    def is_plugin_supported_type(value: Any) -> bool:
        return value is Decimal

    def to_openapi_schema(self, field_definition, schema_creator) -> Schema:
        return Schema(type=OpenAPIType.NUMBER)


_ALIASES = {f.metadata.get("alias", f.name): f.name for f in dataclasses.fields(Schema)}


def _with(schema: Schema, extra: dict[str, Any]) -> Schema:
    return dataclasses.replace(schema, **{_ALIASES[key]: value for key, value in extra.items()})


def _unwrap(info: msgspec.inspect.Type) -> tuple[msgspec.inspect.Type, dict[str, Any]]:
    """A field's type without None and metadata, and the extra JSON schema of its metadata."""
    if isinstance(info, msgspec.inspect.UnionType):
        arms = [t for t in info.types if not isinstance(t, msgspec.inspect.NoneType)]
        if len(arms) == 1:
            info = arms[0]
    extra: dict[str, Any] = {}
    if isinstance(info, msgspec.inspect.Metadata):
        extra = {k: v for k, v in (info.extra_json_schema or {}).items() if k in _ALIASES}
        info = info.type
    return info, extra


class StrictStructPlugin(StructSchemaPlugin):
    """Litestar's msgspec struct schemas, plus what the server enforces beyond them: no unknown
    fields on a request struct, the constraints in ``Meta(extra_json_schema=...)`` and, in a request,
    a decimal as a JSON number or a string holding one. An optional field's constraints go on its
    value's arm of the ``oneOf`` (Litestar puts them beside it)."""

    def to_openapi_schema(self, field_definition, schema_creator) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        struct = field_definition.type_
        request = struct.__struct_config__.forbid_unknown_fields
        if request:
            schema.additional_properties = False
        info = msgspec.inspect.type_info(struct)
        assert isinstance(info, msgspec.inspect.StructType)  # the plugin is Litestar's for msgspec structs
        properties = schema.properties or {}
        for field in info.fields:
            prop = properties.get(field.encode_name)
            if isinstance(prop, Schema):
                properties[field.encode_name] = _property(prop, field.type, request)
        return schema


_CONSTRAINTS = (
    "max_length",
    "min_length",
    "pattern",
    "maximum",
    "minimum",
    "exclusive_maximum",
    "exclusive_minimum",
    "multiple_of",
    "max_items",
    "min_items",
    "format",
)


def _is_null(schema: Any) -> bool:
    return isinstance(schema, Schema) and schema.type == OpenAPIType.NULL


def _property(prop: Schema, info: msgspec.inspect.Type, request: bool) -> Schema:
    info, extra = _unwrap(info)
    decimal_in = request and isinstance(info, msgspec.inspect.DecimalType)
    nullable = bool(prop.one_of) and any(map(_is_null, prop.one_of or ()))
    if not (extra or decimal_in or nullable):
        return prop
    base = prop
    if nullable:
        arm = next(a for a in prop.one_of or () if not _is_null(a))
        if not isinstance(arm, Schema):
            return prop
        base = dataclasses.replace(
            arm, **{name: getattr(prop, name) for name in _CONSTRAINTS if getattr(prop, name) is not None}
        )
    default = prop.default
    if decimal_in:
        base = Schema(
            one_of=[
                _with(Schema(type=OpenAPIType.NUMBER), extra),
                Schema(type=OpenAPIType.STRING, pattern=DECIMAL_TEXT),
            ]
        )
        default = None if default is None else float(Decimal(str(default)))
    else:
        base = _with(base, extra)
    if nullable:
        arms: Sequence[Schema | Reference]
        if decimal_in:
            arms = base.one_of or []  # the number and the string made above
        else:
            arms = [dataclasses.replace(base, default=None)]
        return Schema(one_of=[*arms, Schema(type=OpenAPIType.NULL)], default=default)
    return dataclasses.replace(base, default=default)


# ---------------------------------------------------------------- one document of both APIs


def merged_document(documents: list[dict[str, Any]], extra_paths: dict[str, Any] | None = None) -> dict[str, Any]:
    """The APIs' documents as one: every path's operations, every component; info and tags once."""
    merged = copy.deepcopy(documents[0])
    for document in documents[1:]:
        for path, operations in document.get("paths", {}).items():
            merged.setdefault("paths", {}).setdefault(path, {}).update(copy.deepcopy(operations))
        for kind, items in document.get("components", {}).items():
            merged.setdefault("components", {}).setdefault(kind, {}).update(
                {k: copy.deepcopy(v) for k, v in items.items() if k not in merged["components"].get(kind, {})}
            )
    merged["paths"].update(copy.deepcopy(extra_paths or {}))
    merged["paths"] = dict(sorted(merged["paths"].items()))
    for kind, items in merged.get("components", {}).items():
        merged["components"][kind] = dict(sorted(items.items()))
    return merged
