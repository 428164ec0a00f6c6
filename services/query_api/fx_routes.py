"""``GET /api/v1/fx``: the daily rates of one currency in another, as the ledger converts with them
(issue 23). Public: no credentials.

A rate of a day is ``FxRates(book, to, {}).rate(from, day)``, the function the ledger converts fills,
marks and benchmarks with: the last close on or before the day of ``C:<from><to>`` (``direct``),
else 1 / that of ``C:<to><from>`` (``inverse``), else the cross through USD (``cross``). One entry
per day in the range on which any FX symbol the conversion may read has a close.
"""

from __future__ import annotations

import re
import time
from datetime import date, timedelta
from decimal import Decimal
from typing import Literal

import msgspec
import structlog
from anyio import to_thread
from litestar import Response, get
from litestar.datastructures import State
from litestar.params import Parameter

from botranks_domain.currency import CURRENCIES, FxRates, fx_symbol, is_currency, rate_symbols
from botranks_domain.errors import BadParameter
from botranks_domain.nav import PriceBook
from libs.infra.openapi import NONE_REQUIRED, PUBLIC
from libs.infra.prices import Prices
from libs.infra.prices.fx import fx_closes, latest_close_day
from libs.infra.web import ExactJSONResponse
from libs.infra.web.errors import error_responses

log = structlog.get_logger(service="query_api")

#: the default range: this many days up to the latest rate
DEFAULT_DAYS = 366
#: the most days one answer covers
MAX_DAYS = 3660
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CODES = {"type": "string", "enum": sorted(CURRENCIES)}
_DATE = {"oneOf": [{"type": "string", "format": "date"}, {"type": "string", "maxLength": 0}]}

Source = Literal["direct", "inverse", "cross"]


class FxRate(msgspec.Struct):
    """One ``from`` in ``to`` on ``date`` (an exact decimal), and how it was found."""

    date: date
    rate: Decimal
    source: Source


class FxAnswer(msgspec.Struct):
    """The rates of ``from`` in ``to``, oldest first."""

    from_: str = msgspec.field(name="from")
    to: str
    rates: list[FxRate]


def _currency(raw: str, name: str) -> str:
    if not is_currency(raw):
        raise BadParameter(f"`{name}` must be an ISO 4217 currency code like EUR or USD, got {raw[:12]!r}")
    return raw


def _day(raw: str | None, name: str) -> date | None:
    if raw is None or raw == "":
        return None
    try:
        if _DAY.match(raw):
            return date.fromisoformat(raw)
    except ValueError:
        pass
    raise BadParameter(f"`{name}` must be a date YYYY-MM-DD, got {raw[:12]!r}")


def _source(book: PriceBook, from_currency: str, to_currency: str, day: date) -> Source:
    if book.close(fx_symbol(from_currency, to_currency), day) is not None:
        return "direct"
    if book.close(fx_symbol(to_currency, from_currency), day) is not None:
        return "inverse"
    return "cross"


def daily_rates(book: PriceBook, from_currency: str, to_currency: str, start: date, end: date) -> list[FxRate]:
    """The rate of each day in [start, end] on which one of the conversion's FX symbols has a close
    (a day whose rate cannot be found yet, e.g. one leg of a cross not started, is left out)."""
    rates = FxRates(book, to_currency, {})
    out = []
    for day in sorted(book.bar_days(rate_symbols(from_currency, to_currency), start, end)):
        rate = rates.rate(from_currency, day)
        if rate is not None:
            out.append(FxRate(day, rate, _source(book, from_currency, to_currency, day)))
    return out


def _range(prices: Prices, symbols: list[str], start: date | None, end: date | None) -> tuple[date, date] | None:
    """[start, end] of the answer: as asked, else the last DEFAULT_DAYS days up to the latest rate."""
    if end is None:
        end = latest_close_day(prices, symbols)
        if end is None:
            return None
        if start is not None and end < start:
            return None
    if start is None:
        start = end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise BadParameter("`start` must not be after `end`")
    if (end - start).days + 1 > MAX_DAYS:
        raise BadParameter(f"`start`..`end` spans more than {MAX_DAYS} days: ask for a shorter range")
    return start, end


@get(
    "/api/v1/fx",
    tags=[PUBLIC],
    security=NONE_REQUIRED,
    responses=error_responses(400, 503),
    summary="Daily FX rates of one currency in another, as the ledger converts",
    description="One entry per day on which an FX rate the conversion may read has a close, oldest first:"
    " `rate` is one `from` in `to` (an exact decimal). `source` says how it was found: `direct`"
    " (the last close on or before the day of `C:<from><to>`), `inverse` (1 / that of"
    " `C:<to><from>`, rounded half-even to 18 places) or `cross` (through USD, each leg the same way)."
    f" Default range: the last {DEFAULT_DAYS} days up to the latest rate; at most {MAX_DAYS} days."
    " No rates known: an empty list.",
)
async def get_fx(
    state: State,
    # the codes are checked by the handler (a 400 naming the parameter), the enum says which
    from_: str = Parameter(query="from", schema_extra=_CODES, description="ISO 4217 code, e.g. EUR"),
    to: str = Parameter(schema_extra=_CODES, description="ISO 4217 code, e.g. USD"),
    start: str | None = Parameter(
        default=None, max_length=10, schema_extra=_DATE, description="first day, YYYY-MM-DD (inclusive)"
    ),
    end: str | None = Parameter(
        default=None, max_length=10, schema_extra=_DATE, description="last day, YYYY-MM-DD (inclusive)"
    ),
) -> Response[FxAnswer]:
    from_currency, to_currency = _currency(from_, "from"), _currency(to, "to")
    if from_currency == to_currency:
        raise BadParameter("`from` and `to` are the same currency")
    first, last = _day(start, "start"), _day(end, "end")
    if first is not None and last is not None and first > last:
        raise BadParameter("`start` must not be after `end`")
    symbols = rate_symbols(from_currency, to_currency)
    started = time.perf_counter()

    def read() -> list[FxRate]:
        span = _range(state.db.prices, symbols, first, last)
        if span is None:
            return []
        return daily_rates(fx_closes(state.db.prices, symbols, *span), from_currency, to_currency, *span)

    rates = await to_thread.run_sync(read)
    log.info(
        "fx_read",
        pair=f"{from_currency}{to_currency}",
        days=len(rates),
        duration_ms=round((time.perf_counter() - started) * 1000, 2),
    )
    return ExactJSONResponse(FxAnswer(from_currency, to_currency, rates))
