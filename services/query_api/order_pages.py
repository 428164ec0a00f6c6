"""The strategy page's orders table: every order the viewer may see, 50 a page (``?orders_page=N``),
the latest executed first (ties: the latest reported first, so pages never overlap or skip).

Publication (docs/NOTES.md "Pages" and "One site"): ``none`` — no table; ``delayed`` — the
orders executed before the cut-off (the start of the current UTC hour minus 24 h: executed more than
24 hours ago), all of them, paged; ``live`` (and the owner) — every order. The page parameter is read
and checked like ``trades_page`` (``trade_pages.page_number``) and the pager is the trades' one
(``templates/_pager.html``). One page costs two indexed queries (``rm_orders_fold_idx``: the count and
the page, in one snapshot) and one for the symbols' quote currencies; the finished page is kept by
its ETag, which names the page asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from botranks_domain.currency import quote_currency
from libs.infra.db import Database

from .trade_pages import page_number

ORDERS_PAGE_SIZE = 50


@dataclass(frozen=True)
class PagesAsked:
    """The strategy page's page parameters (each 1 when absent)."""

    trades: int = 1
    orders: int = 1


def pages_asked(params: Mapping[str, str]) -> PagesAsked:
    """``trades_page`` and ``orders_page`` of the query; BadParameter (a 400 naming it) when malformed."""
    return PagesAsked(
        page_number(params.get("trades_page"), "trades_page"), page_number(params.get("orders_page"), "orders_page")
    )


@dataclass(frozen=True)
class OrdersView:
    #: this page's orders, the latest executed first
    rows: list[Any]
    #: every order the viewer may see (all pages)
    total: int
    page: int
    pages: int
    #: "delayed" or "live": which orders are counted
    rows_shown: str
    #: the quote currency of each symbol on this page (prices are in it)
    currencies: dict[str, str] = field(default_factory=dict)

    @property
    def first(self) -> int:
        """The number of this page's first order (1-based), counting from the latest."""
        return (self.page - 1) * ORDERS_PAGE_SIZE + 1


def view(db: Database, strategy_id: UUID, publication: str, cutoff: datetime | None, page: int) -> OrdersView | None:
    """The page ``page`` of the orders this viewer may see (None: the owner publishes none)."""
    if publication == "none":
        return None
    before = cutoff if publication == "delayed" else None
    rows, total = db.ledger.orders_by_execution(strategy_id, (page - 1) * ORDERS_PAGE_SIZE, ORDERS_PAGE_SIZE, before)
    symbols = {o.symbol for o in rows}
    recorded = db.prices.currencies(symbols) if symbols else {}
    return OrdersView(
        rows,
        total,
        page,
        max(1, -(-total // ORDERS_PAGE_SIZE)),
        publication,
        {s: quote_currency(s, recorded) for s in symbols},
    )
