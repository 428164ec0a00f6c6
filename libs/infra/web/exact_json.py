"""Exact JSON both ways: responses write Decimals as exact JSON numbers; request bodies are strict
UTF-8 JSON read with every number exact, then converted to the handler's ``data`` type (400, 415, 422)."""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.serialization import default_serializer
from litestar.types import Empty, Serializer

from botranks_domain.reading import convert_input

_exact_encoder = msgspec.json.Encoder(enc_hook=default_serializer, decimal_format="number")


class ExactJSONResponse(Response):
    """JSON with Decimals written as exact JSON numbers (not strings, not rounded floats)."""

    def render(self, content: Any, media_type: str, enc_hook: Serializer = default_serializer) -> bytes:
        if isinstance(content, bytes) or not media_type.startswith("application/json"):
            return super().render(content, media_type, enc_hook)
        encoder = (
            _exact_encoder
            if enc_hook is default_serializer
            else msgspec.json.Encoder(enc_hook=enc_hook, decimal_format="number")
        )  # one encoder for the usual case, not one per response
        return encoder.encode(content)


class UnprocessableEntity(HTTPException):
    status_code = 422


class BadRequest(HTTPException):
    status_code = 400


class UnsupportedMediaType(HTTPException):
    status_code = 415


#: the only body media type; ``; charset=utf-8`` is the only parameter accepted with it
JSON_MEDIA_TYPE = "application/json"
_CONTENT_TYPE_DETAIL = "Content-Type must be application/json"
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")  # the only way a lone surrogate gets into a str


class _BodyError(ValueError):
    """A body that is not acceptable JSON (answered with 400)."""


def _shown(text: str, limit: int = 64) -> str:
    """Client text inside an error detail: ASCII, quoted, bounded (never a lone surrogate)."""
    return json.dumps(text[:limit] + ("..." if len(text) > limit else ""))


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _BodyError(f"duplicate key {_shown(key)} in an object")
            seen.add(key)
    return obj


def _no_constants(name: str) -> Any:
    raise _BodyError(f"{name} is not a JSON number")


def _exact_number(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:  # an exponent beyond what Decimal can represent at all
        raise _BodyError(f"number {_shown(text, 40)} is out of range") from None


def _check_unicode(obj: Any) -> None:
    """Refuse strings (and keys) holding an unpaired UTF-16 surrogate escape such as ``"\\ud800"``."""
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            items: Any = (item,)
        elif isinstance(item, dict):
            stack.extend(item.values())
            items = item.keys()
        elif isinstance(item, list):
            stack.extend(item)
            continue
        else:
            continue
        for text in items:
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise _BodyError("a string contains an unpaired UTF-16 surrogate escape (\\ud800-\\udfff)") from None


def is_json_content_type(header: str | None) -> bool:
    """``application/json``, optionally with ``charset=utf-8`` (case-insensitive), and nothing else."""
    if not header:
        return False
    media, _, params = header.partition(";")
    if media.strip().lower() != JSON_MEDIA_TYPE:
        return False
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if not name.strip() and not value.strip():
            continue  # a stray ";"
        if name.strip().lower() != "charset" or value.strip().strip('"').lower() != "utf-8":
            return False
    return True


def parse_json_body(body: bytes) -> Any:
    """Strict UTF-8 JSON with every number as an exact ``Decimal`` (floats) or ``int``.

    Duplicate keys, NaN/Infinity, unpaired surrogate escapes and nesting deeper than the
    interpreter can follow are refused (``BadRequest``); nothing is ever rounded.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(
            f"Request body is not valid UTF-8: byte 0x{body[exc.start]:02x} at offset {exc.start}"
        ) from None
    try:
        obj = json.loads(
            text, parse_float=_exact_number, parse_constant=_no_constants, object_pairs_hook=_no_duplicate_keys
        )
        if _SURROGATE_ESCAPE.search(text):
            _check_unicode(obj)
    except RecursionError:
        raise BadRequest("Malformed JSON body: JSON nested too deeply") from None
    except _BodyError as exc:
        raise BadRequest(f"Malformed JSON body: {exc}") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"Malformed JSON body: {exc.msg.removesuffix(' at')} at line {exc.lineno} column {exc.colno}"
        ) from None
    except ValueError as exc:  # e.g. an integer literal over the interpreter's 4300-digit limit
        raise BadRequest(f"Malformed JSON body: {str(exc).split(';')[0]}") from None
    return obj


_JSON_TYPE_NAMES = re.compile(r"^(Expected `[^`]*`, got )`(?:int|decimal)`")


def validation_detail(exc: msgspec.ValidationError) -> str:
    """msgspec's ``"<message> - at `$.orders[0]`"`` as ``"`orders[0].quantity` must ..."``.

    A message that names its field first (our own checks: ``"`quantity` must be > 0"``) gets
    the path put in front of the field; any other gets ``(at `path`)`` appended.
    """
    text = _JSON_TYPE_NAMES.sub(r"\1`number`", str(exc))  # numbers arrive as int or Decimal: JSON says number
    message, found, where = text.rpartition(" - at `")
    if not found or not where.endswith("`"):
        return text
    path = where[:-1].removeprefix("$").removeprefix(".")
    if not path:
        return message
    named = re.match(r"`(\w+)`(.*)\Z", message, re.S)
    if named:
        return f"`{path}.{named[1]}`{named[2]}"
    return f"{message} (at `{path}`)"


_data_types: dict[int, tuple[Any, Any]] = {}


def _data_type(route_handler: Any) -> Any:
    """The annotation of a handler's ``data`` parameter (None without one), cached per handler."""
    cached = _data_types.get(id(route_handler))
    if cached is None or cached[0] is not route_handler:
        field = route_handler.parsed_data_field
        cached = _data_types[id(route_handler)] = (route_handler, None if field is None else field.annotation)
    return cached[1]


def decode_body(body: bytes, content_type: str | None, data_type: Any) -> Any:
    """A request body as the handler's ``data`` type: 415, 400 (malformed JSON) or 422 (a field)."""
    if not is_json_content_type(content_type):
        raise UnsupportedMediaType(_CONTENT_TYPE_DETAIL)
    obj = parse_json_body(body)
    if data_type is None:
        return obj
    try:
        return convert_input(obj, data_type)  # timestamps cut to microseconds, never rounded up
    except msgspec.ValidationError as exc:
        raise UnprocessableEntity(validation_detail(exc)) from None
    except RecursionError:
        raise BadRequest("Malformed JSON body: JSON nested too deeply") from None


class ExactJSONRequest(Request):
    """Request bodies read exactly: JSON numbers become ``Decimal`` straight from the text.

    Litestar's own decoder reads numbers as floats (``90071992547409.93`` → ``...09.94``); here
    the body is parsed by the standard library with ``parse_float=Decimal`` and converted to
    the handler's ``data`` type with ``msgspec.convert(strict=True)``. The converted struct
    passes Litestar's own signature conversion unchanged.
    """

    async def json(self) -> Any:
        if self._json is Empty:
            cached = self._connection_state.json
            if cached is not Empty:
                self._json = cached
            else:
                body = await self.body()
                value = (
                    None
                    if not body
                    else decode_body(body, self.headers.get("content-type"), _data_type(self.route_handler))
                )
                self._json = self._connection_state.json = value
        return self._json
