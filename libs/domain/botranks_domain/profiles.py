"""Profiles (issue 24; docs/NOTES.md "Profiles"): an owner's public handle, a strategy's description and
tags, the markets it trades (derived from its symbols) and the bracket its equity is in.

- A handle is 3 to 30 of ``a-z 0-9 _ -``, starting with a letter, compared and stored lower-cased; a few
  names that are paths or could pass for the house are reserved. It is never derived from the email.
- Tags are the owner's words for the strategy: at most ``MAX_TAGS``, each 1 to 24 of ``a-z 0-9 -``
  (spaces become ``-``, letters are lower-cased), in the order given, duplicates dropped.
- Markets are derived, never declared: each symbol the strategy has ordered is put in one market by its
  name and quote currency (:func:`market_of`).
- The equity bracket is where the latest NAV's total equity falls among ``EQUITY_BRACKETS`` (in the
  base currency): a size class a subscriber can judge capacity by, without the exact figure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Annotated

import msgspec

from .currency import is_currency

HANDLE_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{2,29}$"
_HANDLE = re.compile(HANDLE_PATTERN)
#: names a handle may not be: paths of the site, and names that could pass for the operator
RESERVED_HANDLES = frozenset(
    {"admin", "administrator", "account", "accounts", "api", "auth", "botranks", "compare", "docs", "help",
     "methodology", "me", "new", "null", "operator", "root", "security", "static", "support", "system"}
)  # fmt: skip
MAX_TAGS = 8
MAX_TAG = 24
_TAG = re.compile(r"^[a-z0-9][a-z0-9-]{0,23}$")
MAX_DESCRIPTION = 4000

Handle = Annotated[
    str,
    msgspec.Meta(
        pattern=HANDLE_PATTERN,
        description="3 to 30 of letters, digits, _ and -, starting with a letter; unique (any case); public",
    ),
]
Description = Annotated[
    str, msgspec.Meta(max_length=MAX_DESCRIPTION, description="Markdown (no raw HTML), shown on the strategy page")
]
Tags = Annotated[list[Annotated[str, msgspec.Meta(max_length=MAX_TAG * 2)]], msgspec.Meta(max_length=MAX_TAGS * 4)]


def normalize_handle(raw: str) -> str:
    """The stored (lower-cased) form of a handle; ValueError naming ``handle`` when it is not one."""
    if not isinstance(raw, str) or not _HANDLE.fullmatch(raw):
        raise ValueError(
            f"handle: 3 to 30 of letters, digits, _ and -, starting with a letter (got {raw[:40]!r})"
            if isinstance(raw, str)
            else "handle: a string"
        )
    handle = raw.lower()
    if handle in RESERVED_HANDLES:
        raise ValueError(f"handle: {handle!r} is reserved; choose another")
    return handle


def normalize_tags(raw: Iterable[str]) -> list[str]:
    """The stored form of an owner's tags; ValueError naming ``tags`` on one that is not a tag."""
    out: list[str] = []
    for item in raw:
        tag = "-".join(item.strip().lower().split())
        if not _TAG.fullmatch(tag):
            raise ValueError(f"tags: {item[:40]!r} is not a tag (1 to {MAX_TAG} of a-z, 0-9 and -)")
        if tag not in out:
            out.append(tag)
    if len(out) > MAX_TAGS:
        raise ValueError(f"tags: at most {MAX_TAGS}, got {len(out)}")
    return out


def check_description(text: str | None) -> None:
    """ValueError naming ``description`` on text a page cannot show (NUL, other control characters)."""
    if text is not None and any(ord(c) < 32 and c not in "\t\n\r" for c in text):
        raise ValueError("description: control characters are not allowed")


# ---------------------------------------------------------------- markets

#: market code → label, in the order pages list them
MARKETS: dict[str, str] = {
    "us-equities": "US equities",
    "equities": "Equities outside the US",
    "crypto": "Crypto",
    "forex": "Forex",
    "options": "Options",
    "indices": "Indices",
}
#: ``BTC-USD``, ``ETH-EUR``, a prefixed ``DEMO-BTC-USD``: a pair whose last part is its quote currency
_CRYPTO_PAIR = re.compile(r"^(?:[A-Z0-9]+-)?[A-Z0-9]{2,10}-([A-Z]{3})$")


def market_of(symbol: str, currency: str) -> str:
    """The market of a symbol quoted in ``currency``: Polygon's prefixes (``C:`` forex, ``X:`` crypto,
    ``O:`` options, ``I:`` indices), a ``BASE-QUOTE`` pair whose quote is a currency (``BTC-USD``) is
    crypto, any other ticker an equity (or fund), in the US when quoted in USD."""
    if symbol.startswith("C:"):
        return "forex"
    pair = _CRYPTO_PAIR.fullmatch(symbol)
    if symbol.startswith("X:") or (pair is not None and is_currency(pair.group(1))):
        return "crypto"
    if symbol.startswith("O:"):
        return "options"
    if symbol.startswith("I:") or symbol.startswith("^"):
        return "indices"
    return "us-equities" if currency == "USD" else "equities"


def markets_of(symbols: Iterable[str], currencies: Mapping[str, str]) -> list[str]:
    """The markets of the symbols a strategy ordered (each symbol's quote currency from ``currencies``),
    in ``MARKETS`` order."""
    found = {market_of(s, currencies.get(s, "USD")) for s in symbols}
    return [m for m in MARKETS if m in found]


# ---------------------------------------------------------------- equity brackets

#: lower bounds of the brackets, in the base currency
EQUITY_BRACKETS: tuple[Decimal, ...] = (Decimal(0), Decimal(10_000), Decimal(100_000), Decimal(1_000_000),
                                        Decimal(10_000_000))  # fmt: skip
_BRACKET_LABELS = ("under 10k", "10k to 100k", "100k to 1M", "1M to 10M", "10M and more")


def equity_bracket(equity: Decimal | None) -> int | None:
    """The index of the bracket ``equity`` falls in (negative equity: the first); None without a NAV."""
    if equity is None:
        return None
    return max(i for i, low in enumerate(EQUITY_BRACKETS) if i == 0 or equity >= low)


def bracket_label(index: int | None, currency: str) -> str | None:
    """``"100k to 1M USD"``, or None."""
    if index is None or not 0 <= index < len(_BRACKET_LABELS):
        return None
    return f"{_BRACKET_LABELS[index]} {currency}"
