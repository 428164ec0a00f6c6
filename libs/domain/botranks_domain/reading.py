"""Reading a client's input exactly: what msgspec alone would round, accept or read loosely.

Timestamps are cut (never rounded) to whole microseconds and converted to UTC; decimals sent as
strings must hold a JSON number; every decimal is checked against the bounds below without any
arithmetic under a rounding context. The server and the bots' client both read inputs through
:func:`convert_input` (docs/NOTES.md "Numbers").
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import msgspec

T = TypeVar("T")

#: every decimal a client sends (quantity, price, fees, amount, cost_basis): finite, at most
#: this in magnitude, and at most MAX_FRACTION_DIGITS digits after the decimal point once
#: trailing fractional zeros are ignored (docs/NOTES.md "Numbers")
MAX_ABS_AMOUNT = Decimal("1e15")
MAX_FRACTION_DIGITS = 18

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_utc(ts: datetime, name: str = "timestamp") -> datetime:
    """Offsets are converted to UTC; naive timestamps are read as UTC; nothing before 1970."""
    try:
        ts = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"`{name}` is out of range") from None
    if ts < EPOCH:
        raise ValueError(f"`{name}` must be on or after 1970-01-01T00:00:00Z")
    return ts


#: an RFC 3339 timestamp with more fractional digits than microseconds (Go and Java send nanoseconds)
_BEYOND_MICROSECONDS = re.compile(r"(\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d\.\d{6})\d+")
#: a decimal sent as a string holds a JSON number, nothing else (no spaces, "_", "+1", "NaN", "１")
DECIMAL_TEXT = r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$"
_DECIMAL_TEXT = re.compile(DECIMAL_TEXT.rstrip("$") + r"\Z")
_NOT_FINITE = frozenset({"nan", "snan", "inf", "infinity"})
_TIMESTAMP, _DECIMAL = "timestamp", "decimal"


def _text_plan(info: msgspec.inspect.Type) -> Any:
    """Where a type holds datetimes or decimals: a leaf, ``("items", plan)``, ``{encode_name: plan}`` or None."""
    if isinstance(info, msgspec.inspect.Metadata):
        return _text_plan(info.type)
    if isinstance(info, msgspec.inspect.DateTimeType):
        return _TIMESTAMP
    if isinstance(info, msgspec.inspect.DecimalType):
        return _DECIMAL
    if isinstance(info, msgspec.inspect.UnionType):
        plans = [plan for plan in map(_text_plan, info.types) if plan is not None]
        return plans[0] if len(plans) == 1 else None
    if isinstance(info, (msgspec.inspect.ListType, msgspec.inspect.VarTupleType)):
        item = _text_plan(info.item_type)
        return None if item is None else ("items", item)
    if isinstance(info, msgspec.inspect.StructType):
        fields = {f.encode_name: plan for f in info.fields if (plan := _text_plan(f.type)) is not None}
        return fields or None
    return None


@functools.cache
def _plan_of(type_: Any) -> Any:
    return _text_plan(msgspec.inspect.type_info(type_))


def _read(obj: Any, plan: Any, path: tuple[str | int, ...]) -> Any:
    if plan is _TIMESTAMP:
        if isinstance(obj, str) and (m := _BEYOND_MICROSECONDS.match(obj)):
            return m[1] + obj[m.end() :]
        return obj
    if plan is _DECIMAL:
        # NaN and Infinity go on to exact_decimal, which says they are not finite
        if isinstance(obj, str) and not _DECIMAL_TEXT.match(obj) and obj.lower().lstrip("+-") not in _NOT_FINITE:
            where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path[:-1])
            raise msgspec.ValidationError(
                f"`{path[-1]}` must be a number, or a string holding a JSON number - at `{where}`"
            )
        return obj
    if isinstance(plan, tuple):
        if not isinstance(obj, list):
            return obj
        items = [_read(item, plan[1], (*path, i)) for i, item in enumerate(obj)]
        return obj if all(a is b for a, b in zip(items, obj, strict=True)) else items
    if not isinstance(obj, dict):
        return obj
    out = obj
    for key, sub in plan.items():
        if key in obj and (value := _read(obj[key], sub, (*path, key))) is not obj[key]:
            out = dict(obj) if out is obj else out
            out[key] = value
    return out


def read_text(obj: Any, type_: Any) -> Any:
    """What msgspec does not do for ``obj`` (JSON data meant to become ``type_``): timestamps cut to
    whole microseconds, decimals given as strings checked to hold a JSON number (ValidationError).

    msgspec rounds a fraction beyond microseconds to the nearest one, so ``23:59:59.9999999Z`` on
    the 31st of December would become the next year; cut instead (what fits is kept exactly). It
    reads a decimal string as Python's ``Decimal()`` does (``" 1"``, ``"1_0"``, ``"１"``, ``"NaN"``).
    Only fields typed ``datetime`` or ``Decimal`` are looked at (never free-form ``details``); the
    caller's data is not modified.
    """
    plan = _plan_of(type_)
    return obj if plan is None else _read(obj, plan, ())


def convert_input(obj: Any, type_: type[T], *, strict: bool = True) -> T:
    """JSON data (or Python objects) as ``type_``, validated: msgspec.convert after :func:`read_text`.
    The server and the client both read inputs through this."""
    return msgspec.convert(read_text(obj, type_), type_, strict=strict)


def exact_decimal(value: Decimal, name: str, *, positive: bool = False, non_negative: bool = False) -> Decimal:
    """Check a client's decimal against the bounds; return it in a form PostgreSQL can store.

    Works on the digits and exponent only (``as_tuple``): no arithmetic under a rounding
    context ever touches client input. Trailing fractional zeros beyond MAX_FRACTION_DIGITS
    (``1.500000000000000000000000``) and the exponent of a zero (``0E-20000``) are dropped,
    which changes the representation, never the value; anything else is kept as sent.
    """
    if not value.is_finite():
        raise ValueError(f"`{name}` must be a finite number")
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    if value.is_zero():
        if exponent > 0 or exponent < -MAX_FRACTION_DIGITS:
            value = Decimal(0)
    elif exponent < -MAX_FRACTION_DIGITS:
        trailing_zeros = len(digits) - len(bytes(digits).rstrip(b"\0"))
        dropped = min(trailing_zeros, -exponent)
        if -exponent - dropped > MAX_FRACTION_DIGITS:
            raise ValueError(f"`{name}` must have at most {MAX_FRACTION_DIGITS} digits after the decimal point")
        value = Decimal((sign, digits[: len(digits) - dropped], exponent + dropped))
    if value.copy_abs() > MAX_ABS_AMOUNT:  # comparisons are exact (no context)
        raise ValueError(f"`{name}` must be at most 1e15 in magnitude")
    if positive and value <= 0:
        raise ValueError(f"`{name}` must be > 0")
    if non_negative and value < 0:
        raise ValueError(f"`{name}` must be >= 0")
    return value
