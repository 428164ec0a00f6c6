"""The price cache's ``symbol_currencies``: the currency each symbol is quoted in, as a source said
(docs/NOTES.md "Currencies"). A symbol's currency never changes silently: a source that disagrees with
the stored one is refused, naming both."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from botranks_domain.currency import is_currency


class CurrencyConflict(ValueError):
    """A source says a symbol is quoted in another currency than the one recorded (or in no ISO 4217 one)."""


def recorded_currencies(curs: Any, symbols: Iterable[str]) -> dict[str, str]:
    """The recorded quote currency of each of ``symbols`` that has one."""
    wanted = sorted(set(symbols))
    if not wanted:
        return {}
    rows = curs.execute("SELECT symbol, currency FROM symbol_currencies WHERE symbol = ANY(%s)", (wanted,)).fetchall()
    return {_get(r, "symbol", 0): _get(r, "currency", 1) for r in rows}


def record_currencies(curs: Any, currencies: Mapping[str, str], source: str) -> int:
    """Record ``symbol -> currency`` (new rows only); ``CurrencyConflict`` (nothing written, the caller's
    transaction to roll back) when one disagrees with the stored currency. Returns the rows added."""
    for symbol, currency in currencies.items():
        if not is_currency(currency):
            raise CurrencyConflict(f"{symbol}: {currency!r} is not an ISO 4217 currency code")
    stored = recorded_currencies(curs, currencies)
    clashes = [f"{s} is quoted in {stored[s]}, not {c}" for s, c in sorted(currencies.items()) if stored.get(s, c) != c]
    if clashes:
        raise CurrencyConflict("Currency conflict: " + "; ".join(clashes) + " (a symbol's currency never changes)")
    new = {s: c for s, c in currencies.items() if s not in stored}
    if not new:
        return 0
    symbols = sorted(new)
    curs.execute(
        "INSERT INTO symbol_currencies (symbol, currency, source)"
        " SELECT u.symbol, u.currency, %s FROM unnest(%s::text[], %s::text[]) AS u(symbol, currency)"
        " ON CONFLICT (symbol) DO NOTHING",
        (source, symbols, [new[s] for s in symbols]),
    )
    # a symbol folded before its currency was known was read as USD (or what its name says): the
    # strategies that hold it re-derive their whole history, like after a late close
    curs.execute(
        "INSERT INTO price_updates (symbol, from_date) SELECT unnest(%s::text[]), %s",
        (symbols, date(1, 1, 1)),
    )
    return len(new)


def _get(row: Any, name: str, index: int) -> Any:
    return row[name] if isinstance(row, dict) else row[index]
