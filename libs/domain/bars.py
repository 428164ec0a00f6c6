"""The daily bar: one symbol's close (and optional open/high/low/volume) on one date."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation

import msgspec

from libs.domain.model import normalize_symbol

__all__ = ["Bar"]


def _decimal(value: object, name: str, *, positive: bool = False, non_negative: bool = False) -> Decimal:
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValueError(f"{name} must be a number, got {value!r}") from None
    else:
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not number.is_finite():
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if positive and number <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    if non_negative and number < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return number


class Bar(msgspec.Struct, frozen=True):
    """A daily bar. The symbol is upper-cased and validated; ``close`` must be finite and > 0,
    open/high/low (when given) finite and > 0, volume (when given) finite and >= 0.
    Numbers given as int/float/str are converted to ``Decimal`` (floats through ``str``)."""

    symbol: str
    date: dt.date
    close: Decimal
    open: Decimal | None = None
    high: Decimal | None = None
    low: Decimal | None = None
    volume: Decimal | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.symbol, str):
            raise ValueError(f"symbol must be a string, got {self.symbol!r}")
        if isinstance(self.date, dt.datetime) or not isinstance(self.date, dt.date):
            raise ValueError(f"date must be a datetime.date, got {self.date!r}")
        setattr_ = msgspec.structs.force_setattr
        setattr_(self, "symbol", normalize_symbol(self.symbol, "bar"))
        setattr_(self, "close", _decimal(self.close, "close", positive=True))
        for name in ("open", "high", "low"):
            value = getattr(self, name)
            if value is not None:
                setattr_(self, name, _decimal(value, name, positive=True))
        if self.volume is not None:
            setattr_(self, "volume", _decimal(self.volume, "volume", non_negative=True))
