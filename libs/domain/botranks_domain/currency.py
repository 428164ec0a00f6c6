"""Currencies (docs/NOTES.md "Currencies"): which codes a base currency may be, what a symbol is quoted
in, which FX symbols a conversion reads, and the rate of a day.

- A base currency is an ISO 4217 code in tender somewhere (CLDR's territory currencies, through Babel,
  on ``TENDER_ON``: a fixed day, so the list never depends on when the code runs).
- A symbol's quote currency is what the price cache records for it; a symbol it has none for is
  quoted in what its name says (``C:EURUSD``: USD, the quote of the pair; ``BTC-EUR``: EUR), else USD.
- An FX rate is the daily close of ``C:<A><B>``: one A in B. Converting A to B on day d uses the last
  close on or before d of ``C:AB``, else 1 / that of ``C:BA``, else the cross through USD (A→USD ×
  USD→B, each leg the same way). A rate that is not a stored close (an inverse, a cross) is rounded
  half-even to ``RATE_PLACES`` decimal places, so amounts stay exact decimals.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Protocol

from .ledger import LEDGER_CONTEXT, ONE

USD = "USD"
RATE_PLACES = 18
_RATE_QUANTUM = Decimal(1).scaleb(-RATE_PLACES)
#: the day whose legal tenders are the accepted base currencies (CLDR data shipped with Babel)
TENDER_ON = date(2025, 1, 1)
FX_PREFIX = "C:"
_PAIR = re.compile(r"^C:([A-Z]{3})([A-Z]{3})$")
_CRYPTO_PAIR = re.compile(r"^[A-Z0-9]{2,10}-([A-Z]{3})$")


@functools.cache
def currencies() -> frozenset[str]:
    """The ISO 4217 codes a strategy's base currency (and a symbol's quote currency) may be.

    Babel is imported here, when a code is first checked, not with the module: the domain package is
    msgspec-only for the bots that install the client (its ``currencies`` extra brings Babel)."""
    from babel.core import get_global
    from babel.numbers import get_territory_currencies

    codes: set[str] = set()
    for territory in get_global("territory_currencies"):
        codes.update(get_territory_currencies(territory, TENDER_ON, tender=True))
    return frozenset(codes)


def __getattr__(name: str) -> frozenset[str]:
    if name == "CURRENCIES":  # the same, as a module constant, computed on first use
        return currencies()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def is_currency(code: str) -> bool:
    return code in currencies()


def fx_symbol(from_currency: str, to_currency: str) -> str:
    """The FX symbol whose close is one ``from_currency`` in ``to_currency``: ``C:EURUSD``."""
    return f"{FX_PREFIX}{from_currency}{to_currency}"


def pair_of(symbol: str) -> tuple[str, str] | None:
    """(from, to) of an FX symbol (``C:EURUSD``: EUR, USD), else None."""
    m = _PAIR.match(symbol)
    return (m.group(1), m.group(2)) if m else None


def implied_currency(symbol: str) -> str | None:
    """What a symbol's name says it is quoted in: an FX pair's quote, a crypto pair's suffix; else None."""
    pair = pair_of(symbol)
    if pair is not None:
        return pair[1]
    m = _CRYPTO_PAIR.match(symbol)
    if m and is_currency(m.group(1)):
        return m.group(1)
    return None


def quote_currency(symbol: str, recorded: Mapping[str, str]) -> str:
    """A symbol's quote currency: the recorded one, else what its name says, else USD."""
    return recorded.get(symbol) or implied_currency(symbol) or USD


def rate_symbols(from_currency: str, to_currency: str) -> list[str]:
    """Every FX symbol a conversion from ``from_currency`` to ``to_currency`` may read (direct, inverse,
    and the legs through USD): what a fold loads, and whose late closes re-derive it."""
    if from_currency == to_currency:
        return []
    out = [fx_symbol(from_currency, to_currency), fx_symbol(to_currency, from_currency)]
    for c in (from_currency, to_currency):
        if c != USD:
            out += [fx_symbol(c, USD), fx_symbol(USD, c)]
    return list(dict.fromkeys(out))


class Closes(Protocol):
    def close(self, symbol: str, day: date) -> Decimal | None: ...


class FxRates:
    """Rates into one ``base`` currency from closes (a :class:`~botranks_domain.nav.PriceBook`)."""

    def __init__(self, closes: Closes, base: str, currencies: Mapping[str, str]) -> None:
        self.closes, self.base, self.currencies = closes, base, currencies
        self._of: dict[str, str] = {}

    def currency_of(self, symbol: str) -> str:
        found = self._of.get(symbol)
        if found is None:
            found = self._of[symbol] = quote_currency(symbol, self.currencies)
        return found

    def in_base(self, symbol: str) -> bool:
        """Whether ``symbol`` is quoted in the base currency (no conversion)."""
        return self.currency_of(symbol) == self.base

    def required(self, symbol: str, day: date) -> Decimal:
        """``of``, or ``MissingRate`` when no rate is known."""
        currency = self.currency_of(symbol)
        if currency == self.base:
            return ONE
        found = self.rate(currency, day)
        if found is None:
            raise MissingRate(currency, self.base, day)
        return found

    def rate(self, from_currency: str, day: date, to_currency: str | None = None) -> Decimal | None:
        """One ``from_currency`` in ``to_currency`` (the base) on ``day``; None: no rate known."""
        to = self.base if to_currency is None else to_currency
        if from_currency == to:
            return ONE
        found = self._leg(from_currency, to, day)
        if found is not None:
            return found
        if USD in (from_currency, to):
            return None
        first, second = self._leg(from_currency, USD, day), self._leg(USD, to, day)
        if first is None or second is None:
            return None
        return _rounded(LEDGER_CONTEXT.multiply(first, second))

    def of(self, symbol: str, day: date) -> Decimal | None:
        """The rate of ``symbol``'s quote currency into the base on ``day``."""
        return self.rate(self.currency_of(symbol), day)

    def _leg(self, a: str, b: str, day: date) -> Decimal | None:
        direct = self.closes.close(fx_symbol(a, b), day)
        if direct is not None:
            return direct
        inverse = self.closes.close(fx_symbol(b, a), day)
        if inverse is None:
            return None
        return _rounded(LEDGER_CONTEXT.divide(Decimal(1), inverse))


def _rounded(rate: Decimal) -> Decimal:
    with localcontext(LEDGER_CONTEXT):
        return rate.quantize(_RATE_QUANTUM, ROUND_HALF_EVEN)


class MissingRate(ValueError):
    """No FX rate for a conversion a fill, a snapshot or a mark needs."""

    def __init__(self, from_currency: str, to_currency: str, day: date) -> None:
        super().__init__(f"No FX rate for {from_currency}/{to_currency} at {day.isoformat()}")
        self.from_currency, self.to_currency, self.day = from_currency, to_currency, day


def needed_rate_symbols(symbols: Iterable[str], base: str, currencies: Mapping[str, str]) -> set[str]:
    """The FX symbols converting every one of ``symbols`` into ``base`` may read."""
    out: set[str] = set()
    for currency in {quote_currency(s, currencies) for s in symbols}:
        out.update(rate_symbols(currency, base))
    return out


def first_rate_day(from_currency: str, to_currency: str, first_close: Mapping[str, date]) -> date | None:
    """The first day on which ``FxRates.rate(from, day, to)`` has a rate, from each FX symbol's first close
    (``first_close``: symbol -> its earliest close; the same rule, without loading the closes)."""
    if from_currency == to_currency:
        return date.min

    def leg(a: str, b: str) -> date | None:
        days = [d for d in (first_close.get(fx_symbol(a, b)), first_close.get(fx_symbol(b, a))) if d is not None]
        return min(days) if days else None

    direct = leg(from_currency, to_currency)
    if USD in (from_currency, to_currency):
        return direct
    first, second = leg(from_currency, USD), leg(USD, to_currency)
    cross = max(first, second) if first is not None and second is not None else None
    days = [d for d in (direct, cross) if d is not None]
    return min(days) if days else None


def missing_rate(
    wanted: Iterable[tuple[str, date]], base: str, currencies: Mapping[str, str], first_close: Mapping[str, date]
) -> MissingRate | None:
    """The first of ``wanted`` (symbol, day) with no rate of its quote currency into ``base`` on that day."""
    firsts: dict[str, date | None] = {}
    for symbol, day in sorted(wanted, key=lambda w: (w[1], w[0])):
        currency = quote_currency(symbol, currencies)
        if currency == base:
            continue
        if currency not in firsts:
            firsts[currency] = first_rate_day(currency, base, first_close)
        first = firsts[currency]
        if first is None or day < first:
            return MissingRate(currency, base, day)
    return None
