"""Numbers for people: the pages' Jinja2 filters (``FILTERS``) and the sign class of a figure.

Signed percents with one decimal, thousands separators, a real minus sign, ``—`` for a figure
that is missing or not finite (docs/NOTES.md "Numbers for people").
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

DASH = "—"
MINUS = "−"


def _signed(text: str, negative: bool, positive: bool) -> str:
    return (MINUS + text) if negative else ("+" + text) if positive else text


def pct(value: float | None, digits: int = 1, signed: bool = True) -> str:
    """``0.1234`` → ``+12.3%``; None/NaN → ``—``."""
    if value is None or not math.isfinite(value):
        return DASH
    shown = f"{abs(value) * 100:,.{digits}f}"
    if float(shown.replace(",", "")) == 0:
        return f"{0:.{digits}f}%"
    return _signed(shown, value < 0, signed and value > 0) + "%"


def ratio(value: float | None, digits: int = 2) -> str:
    if value is None or not math.isfinite(value):
        return DASH
    shown = f"{abs(value):,.{digits}f}"
    return _signed(shown, value < 0 and float(shown.replace(",", "")) != 0, False)


def money(value: Decimal | float | None, digits: int = 2, signed: bool = False) -> str:
    """Thousands separators, two decimals: ``1234567.5`` → ``1,234,567.50``."""
    if value is None:
        return DASH
    number = Decimal(value) if not isinstance(value, Decimal) else value
    if not number.is_finite():
        return DASH
    shown = f"{abs(number):,.{digits}f}"
    zero = Decimal(shown.replace(",", "")) == 0
    return _signed(shown, number < 0 and not zero, signed and number > 0 and not zero)


def quantity(value: Decimal | None) -> str:
    if value is None:
        return DASH
    text = f"{abs(value):,f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return _signed(text, value < 0, False)


def integer(value: int | None) -> str:
    return DASH if value is None else f"{value:,}"


def when(value: datetime | date | None) -> str:
    if value is None:
        return DASH
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return value.isoformat()


def day(value: datetime | date | None) -> str:
    """The UTC date only (the leaderboard's last activity; the full time is its tooltip)."""
    if value is None:
        return DASH
    return (value.astimezone(UTC).date() if isinstance(value, datetime) else value).isoformat()


def raw(value: Any) -> str:
    """A cell's machine-readable value (``data-value``): the number as is, empty for null."""
    if value is None:
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


FILTERS = {
    "pct": pct,
    "ratio": ratio,
    "money": money,
    "quantity": quantity,
    "integer": integer,
    "when": when,
    "day": day,
    "raw": raw,
}


def sign_class(value: float | Decimal | None) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)) or value == 0:
        return ""
    return "pos" if value > 0 else "neg"
