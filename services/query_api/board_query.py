"""The leaderboard's query (``/`` and ``/p/leaderboard``): its parameters, checked once (a 400 names the one
that is wrong), the shareable link of a view, and the page it reads.

Parameters: ``sort``, ``dir``, ``min_days``, ``live_only``, ``page``; the search and filters of issue 24:
``q`` (a piece of the name, the owner's handle or a tag; ``@name``: the handle only), ``market`` (a
``botranks_domain.profiles.MARKETS`` code), ``currency`` (a base currency), ``min_live`` (at least this
many per cent of orders reported live), ``min_trades``, ``max_dd`` (a max drawdown no deeper than this
many per cent)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote_plus

import msgspec

from botranks_domain.errors import BadParameter
from botranks_domain.profiles import MARKETS
from botranks_domain.views import (
    LEADERBOARD_DEFAULT_MIN_DAYS,
    LEADERBOARD_DEFAULT_SORT,
    LEADERBOARD_SORTS,
    LeaderboardPage,
)
from libs.infra.db import Database

PAGE_SIZE = 50
MAX_MIN_DAYS = 100_000
MAX_PAGE = 1_000_000
#: the direction a column sorts in when first clicked: best first
NATURAL_DESCENDING = {s: s not in ("volatility", "name") for s in LEADERBOARD_SORTS}
#: the board's search text, at most (characters)
MAX_SEARCH = 60
PARAMETERS = ("sort", "dir", "min_days", "live_only", "page", "q", "min_trades", "max_dd", "market", "currency",
              "min_live")  # fmt: skip


class LeaderboardQuery(msgspec.Struct, frozen=True):
    sort: str
    descending: bool
    min_days: int
    live_only: bool
    page: int
    #: the board's search and filters (issue 24): text in the name, handle or tags, at least this many
    #: closed trades, a max drawdown no deeper than this many per cent (None: any), a market, a base
    #: currency, at least this many per cent of orders reported live (None: any)
    text: str = ""
    min_trades: int = 0
    max_dd: int | None = None
    market: str = ""
    currency: str = ""
    min_live: int | None = None

    @property
    def offset(self) -> int:
        return (self.page - 1) * PAGE_SIZE

    @property
    def filtered(self) -> bool:
        """Whether any search or filter narrows the board (beyond the track record and live-only)."""
        return bool(self.text or self.min_trades or self.max_dd is not None or self.market or self.currency) or (
            self.min_live is not None
        )

    def link(self, **changes: Any) -> str:
        """The query string of this view with some fields changed (for header, filter and page links)."""
        q = msgspec.structs.replace(self, **changes)
        parts = [f"sort={q.sort}", f"dir={'desc' if q.descending else 'asc'}", f"min_days={q.min_days}"]
        if q.live_only:
            parts.append("live_only=1")
        if q.text:
            parts.append(f"q={quote_plus(q.text)}")
        if q.market:
            parts.append(f"market={q.market}")
        if q.currency:
            parts.append(f"currency={q.currency}")
        if q.min_live is not None:
            parts.append(f"min_live={q.min_live}")
        if q.min_trades:
            parts.append(f"min_trades={q.min_trades}")
        if q.max_dd is not None:
            parts.append(f"max_dd={q.max_dd}")
        if q.page != 1:
            parts.append(f"page={q.page}")
        return "?" + "&".join(parts)

    def sort_link(self, column: str) -> str:
        """Clicking a header: the same column again toggles the direction; another one sorts best first."""
        if column == self.sort:
            return self.link(descending=not self.descending, page=1)
        return self.link(sort=column, descending=NATURAL_DESCENDING[column], page=1)


def _int_param(raw: str | None, name: str, default: int, low: int, high: int) -> int:
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise BadParameter(f"`{name}` must be a whole number, got {raw[:40]!r}") from None
    if not low <= value <= high:
        raise BadParameter(f"`{name}` must be between {low} and {high}, got {value}")
    return value


def _optional_int(raw: str | None, name: str, low: int, high: int) -> int | None:
    return None if raw is None or not raw.strip() else _int_param(raw, name, 0, low, high)


def leaderboard_query(params: Mapping[str, str]) -> LeaderboardQuery:
    """The leaderboard's query parameters (``PARAMETERS``), checked (BadParameter, a 400, names the one
    that is wrong)."""
    sort, direction, min_days, live_only, page, text, min_trades, max_dd, market, currency, min_live = (
        params.get(name) for name in PARAMETERS
    )
    searched = " ".join((text or "").split())
    if len(searched) > MAX_SEARCH or "\x00" in searched:
        raise BadParameter(f"`q` must be at most {MAX_SEARCH} characters of text, got {len(searched)}")
    column = (sort or LEADERBOARD_DEFAULT_SORT).strip()
    if column not in LEADERBOARD_SORTS:
        raise BadParameter(f"`sort` must be one of {', '.join(LEADERBOARD_SORTS)}; got {column[:40]!r}")
    if direction in (None, ""):
        descending = NATURAL_DESCENDING[column]
    elif direction in ("asc", "desc"):
        descending = direction == "desc"
    else:
        raise BadParameter(f"`dir` must be asc or desc, got {direction[:40]!r}")
    flags = {"": False, "0": False, "false": False, "off": False, "1": True, "true": True, "on": True}
    live = (live_only or "").strip().lower()
    if live not in flags:
        raise BadParameter(f"`live_only` must be 1 or 0 (true/false), got {(live_only or '')[:40]!r}")
    market = (market or "").strip()
    if market and market not in MARKETS:
        raise BadParameter(f"`market` must be one of {', '.join(MARKETS)}; got {market[:40]!r}")
    code = (currency or "").strip().upper()
    if code and not (len(code) == 3 and code.isascii() and code.isalpha()):
        raise BadParameter(f"`currency` must be a 3-letter ISO 4217 code such as USD or EUR; got {code[:40]!r}")
    return LeaderboardQuery(
        column,
        descending,
        _int_param(min_days, "min_days", LEADERBOARD_DEFAULT_MIN_DAYS, 0, MAX_MIN_DAYS),
        flags[live],
        _int_param(page, "page", 1, 1, MAX_PAGE),
        searched,
        _int_param(min_trades, "min_trades", 0, 0, 10_000_000),
        _optional_int(max_dd, "max_dd", 0, 100),
        market,
        code,
        _optional_int(min_live, "min_live", 0, 100),
    )


def leaderboard(db: Database, q: LeaderboardQuery) -> LeaderboardPage:
    return db.ledger.leaderboard(
        q.sort,
        q.descending,
        q.min_days,
        q.live_only,
        PAGE_SIZE,
        q.offset,
        text=q.text,
        min_trades=q.min_trades,
        max_drawdown=None if q.max_dd is None else -q.max_dd / 100,
        market=q.market,
        currency=q.currency,
        min_live_share=None if q.min_live is None else q.min_live / 100,
    )


def pages(total: int) -> int:
    return max(1, -(-total // PAGE_SIZE))
