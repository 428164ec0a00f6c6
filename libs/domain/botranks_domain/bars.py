"""Market data shapes: the daily bar (one symbol's close, as traded, and optional open/high/low/volume on
one date) and the stock split (DESIGN "Prices and splits")."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation

import msgspec

from botranks_domain.model import normalize_symbol

__all__ = ["Bar", "Split", "MAX_SPLIT_FACTOR"]


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


#: the largest ``split_from`` / ``split_to`` accepted (real splits are a few dozen at most)
MAX_SPLIT_FACTOR = Decimal(1_000_000)


class Split(msgspec.Struct, frozen=True):
    """A stock split in Polygon's ``/v3/reference/splits`` shape: from the start of ``ex_date`` on,
    ``split_from`` old shares are ``split_to`` new ones (a 4-for-1 split is from 1 to 4; a
    1-for-10 reverse split is from 10 to 1). Both factors are finite, > 0 and at most
    ``MAX_SPLIT_FACTOR``, with at most 18 digits after the point."""

    symbol: str
    ex_date: dt.date
    split_from: Decimal
    split_to: Decimal

    def __post_init__(self) -> None:
        if not isinstance(self.symbol, str):
            raise ValueError(f"symbol must be a string, got {self.symbol!r}")
        if isinstance(self.ex_date, dt.datetime) or not isinstance(self.ex_date, dt.date):
            raise ValueError(f"ex_date must be a datetime.date, got {self.ex_date!r}")
        setattr_ = msgspec.structs.force_setattr
        setattr_(self, "symbol", normalize_symbol(self.symbol, "split"))
        for name in ("split_from", "split_to"):
            value = _decimal(getattr(self, name), name, positive=True)
            if value > MAX_SPLIT_FACTOR:
                raise ValueError(f"{name} must be at most {MAX_SPLIT_FACTOR}, got {value}")
            exponent = value.normalize().as_tuple().exponent
            if isinstance(exponent, int) and exponent < -18:
                raise ValueError(f"{name} must have at most 18 digits after the decimal point, got {value}")
            setattr_(self, name, value)

    @property
    def ratio(self) -> str:
        """``"4:1"`` style: new shares for old (``split_to:split_from``), trailing zeros dropped."""
        return f"{format(self.split_to.normalize(), 'f')}:{format(self.split_from.normalize(), 'f')}"
