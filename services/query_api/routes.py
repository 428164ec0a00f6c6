"""HTTP routes of the read side: state, NAV history, the order/cash log, reconciliation."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

import msgspec
import structlog
from anyio import to_thread
from litestar import Controller, Request, Response, get
from litestar.datastructures import State
from litestar.params import Parameter
from litestar.response import Stream

from botranks_domain.errors import BadParameter, InvalidSymbol
from botranks_domain.model import SYMBOL_PATTERN, normalize_symbol
from botranks_domain.trade_stats import (
    TRADE_CURSOR_PATTERN,
    TRADE_STATUSES,
    TradesPage,
    decode_trade_cursor,
    encode_trade_cursor,
    published_trade,
)
from botranks_domain.views import (
    CURSOR_PATTERN,
    CashPage,
    CorporateActions,
    NavSeries,
    OrdersPage,
    Performance,
    ReconciliationPage,
    StateView,
    decode_cursor,
)
from libs.infra.auth import api_key_guard
from libs.infra.openapi import KEY_REQUIRED, LEDGER
from libs.infra.readmodel import stream_chain_events, stream_nav_rows
from libs.infra.web import LEDGER_ERRORS, ExactJSONResponse

from . import read_cache, readers
from .downloads import ThreadedChunks, download_slots, idle_timeout, nav_csv_chunks, prime, register

log = structlog.get_logger(service="query_api")

Limit = Parameter(ge=1, le=1000, default=100, description="page size (1..1000)")
Cursor = Parameter(
    default=None,
    max_length=200,
    schema_extra={"pattern": CURSOR_PATTERN},
    description="next_cursor of the previous page (none: the first page)",
)
#: what the query parameters take, for the OpenAPI document (the handlers check them: 400 naming them)
DATE = {"oneOf": [{"type": "string", "format": "date"}, {"type": "string", "maxLength": 0}]}
BENCHMARK = {"pattern": r"^(\s*|[A-Za-z0-9.\-:^]{1,20})$"}
RATE = {"oneOf": [{"type": "number", "minimum": -1, "maximum": 1}]}


async def _read(state: State, strategy_id: UUID, what: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Run one read in a worker thread and log one event for it."""
    started = time.perf_counter()
    result = await to_thread.run_sync(fn, strategy_id, *args)
    log.info(what, strategy_id=str(strategy_id), duration_ms=round((time.perf_counter() - started) * 1000, 2))
    return result


def _cursor(cursor: str | None) -> int:
    try:
        return decode_cursor(cursor)
    except (ValueError, UnicodeDecodeError):
        raise BadParameter("Invalid `cursor`: pass back the next_cursor of a previous page") from None


def _date_param(raw: str | None, name: str) -> date | None:
    """A YYYY-MM-DD query parameter; 400 naming it (by its public name) otherwise."""
    if raw is None or raw == "":
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BadParameter(f"`{name}` must be a date YYYY-MM-DD, got {raw!r}") from None


def _risk_free_rate(raw: str | None) -> float:
    if raw is None or raw == "":
        return 0.0
    try:
        rate = float(raw)
    except ValueError:
        raise BadParameter(f"`risk_free_rate` must be a number, got {raw!r}") from None
    if not math.isfinite(rate) or not -1 <= rate <= 1:
        raise BadParameter(f"`risk_free_rate` must be a finite number in [-1, 1], got {raw}")
    return rate


def _benchmark(raw: str) -> str:
    if not raw.strip():
        return ""
    try:
        return normalize_symbol(raw, "benchmark")
    except InvalidSymbol:
        raise BadParameter(f"Unresolvable benchmark symbol: {raw}") from None


def _streamed(request: Request, body: ThreadedChunks, media_type: str, disposition: str) -> Response[Any]:
    """A download's streamed answer, whatever the body type its route's annotation documents (Litestar
    writes the OpenAPI answer of a route from that annotation: a JSON body, or the download's bytes)."""
    return Stream(register(request, body), media_type=media_type, headers={"Content-Disposition": disposition})


def _wants_csv(scope) -> bool:
    """GET /nav with ``Accept: text/csv``: a download (streamed, and under the download caps)."""
    return any(name == b"accept" and b"text/csv" in value for name, value in scope.get("headers", ()))


class StrategyQueries(Controller):
    path = "/api/v1/strategies/{strategy_id:uuid}"
    guards = [api_key_guard]
    tags, security = [LEDGER], KEY_REQUIRED

    @get("/state", responses=LEDGER_ERRORS, summary="Current derived state")
    async def get_state(self, request: Request, state: State, strategy_id: UUID) -> Response[StateView]:
        # a hit is a dictionary lookup under the versions the key check read (read_cache.py)
        key = read_cache.state_key(request.state.checked, strategy_id)
        body, _ = await state.reads.answer(key, lambda: readers.state_view(state.db, strategy_id))
        return ExactJSONResponse(body)

    @get(
        "/nav",
        responses=LEDGER_ERRORS,
        summary="Daily NAV history (JSON, or CSV with Accept: text/csv)",
        middleware=[download_slots],
        opt={"download": _wants_csv},
    )
    async def get_nav(
        self,
        request: Request,
        state: State,
        strategy_id: UUID,
        from_: str | None = Parameter(
            query="from",
            default=None,
            max_length=40,
            schema_extra=DATE,
            description="first date, YYYY-MM-DD (inclusive)",
        ),
        to: str | None = Parameter(
            default=None, max_length=40, schema_extra=DATE, description="last date, YYYY-MM-DD (inclusive)"
        ),
    ) -> Response[NavSeries]:
        start, end = _date_param(from_, "from"), _date_param(to, "to")
        if start and end and start > end:
            raise BadParameter("`from` must not be after `to`")
        if _wants_csv(request.scope):
            chunks = nav_csv_chunks(
                stream_nav_rows(
                    state.db.ledger.datastore, strategy_id, start, end, idle_timeout_s=idle_timeout(state.settings)
                )
            )
            body = await _read(state, strategy_id, "nav_read", lambda _: prime(chunks, "nav.csv"))
            return _streamed(request, body, "text/csv", f'inline; filename="nav-{strategy_id}.csv"')

        def nav(strategy_id: UUID) -> NavSeries:
            series = state.db.ledger.nav_series(strategy_id, start, end)
            series.base_currency = state.db.identity.base_currency(strategy_id)
            return series

        started = time.perf_counter()
        body, computed = await state.reads.answer(
            read_cache.nav_key(request.state.checked, strategy_id, start, end), lambda: nav(strategy_id)
        )
        if computed:  # a hit is a dictionary lookup: not logged
            log.info(
                "nav_read", strategy_id=str(strategy_id), duration_ms=round((time.perf_counter() - started) * 1000, 2)
            )
        return ExactJSONResponse(body)

    @get("/performance", responses=LEDGER_ERRORS, summary="Return, risk and benchmark-relative metrics")
    async def get_performance(
        self,
        request: Request,
        state: State,
        strategy_id: UUID,
        benchmark: str | None = Parameter(
            default=None,
            max_length=20,
            schema_extra=BENCHMARK,
            description="symbol to compare against (default: the strategy's, SPY unless set); empty string: none",
        ),
        risk_free_rate: str | None = Parameter(
            default=None, max_length=40, schema_extra=RATE, description="annualized, a number in [-1, 1], e.g. 0.045"
        ),
    ) -> Response[Performance]:
        rate = _risk_free_rate(risk_free_rate)
        symbol = None if benchmark is None else _benchmark(benchmark)
        started = time.perf_counter()
        cached = read_cache.performance_key(request.state.checked, strategy_id, symbol, rate)

        def work() -> Performance:
            key, known = readers.performance_key(state.db, strategy_id, symbol, rate)
            if not known and symbol is not None:  # asked for by name: the spec's 400
                raise BadParameter(f"Unresolvable benchmark symbol: {key.benchmark}")
            if not known:  # the strategy's own benchmark, not priced yet (a fresh install): say so
                key = msgspec.structs.replace(
                    key, benchmark=None, benchmark_version=None, unpriced_benchmark=key.benchmark
                )
            # cached per (strategy, NAV version, benchmark and its price version, rate): a NAV change is a new key
            return state.performance(key)

        body, computed = await state.reads.answer(cached, work)
        if computed:  # a hit is a dictionary lookup: not logged
            log.info(
                "performance_read",
                strategy_id=str(strategy_id),
                benchmark=symbol,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )
        return ExactJSONResponse(body)

    @get("/orders", responses=LEDGER_ERRORS, summary="The strategy's orders, in arrival order, paginated")
    async def list_orders(
        self, state: State, strategy_id: UUID, limit: int = Limit, cursor: str | None = Cursor
    ) -> OrdersPage:
        return await _read(state, strategy_id, "orders_listed", state.db.ledger.orders, _cursor(cursor), limit)

    @get("/trades", responses=LEDGER_ERRORS, summary="The strategy's trades (round trips), in the order opened")
    async def list_trades(
        self,
        state: State,
        strategy_id: UUID,
        limit: int = Limit,
        cursor: str | None = Parameter(
            default=None,
            max_length=60,
            schema_extra={"pattern": TRADE_CURSOR_PATTERN},
            description="next_cursor of the previous page (none: the first page)",
        ),
        status: str | None = Parameter(
            default=None,
            max_length=10,
            schema_extra={"enum": ["", *TRADE_STATUSES]},
            description="open, closed or reset",
        ),
        symbol: str | None = Parameter(
            default=None, max_length=20, pattern=SYMBOL_PATTERN, description="one symbol's trades"
        ),
        from_: str | None = Parameter(
            query="from", default=None, max_length=10, schema_extra=DATE, description="opened on or after (UTC day)"
        ),
        to: str | None = Parameter(default=None, max_length=10, schema_extra=DATE, description="opened on or before"),
    ) -> Response[TradesPage]:
        try:
            after = decode_trade_cursor(cursor)
        except ValueError:
            raise BadParameter("Invalid `cursor`: pass back the next_cursor of a previous page") from None
        if status and status not in TRADE_STATUSES:
            raise BadParameter(f"`status` must be one of {', '.join(TRADE_STATUSES)}, got {status[:10]!r}")
        try:
            wanted = normalize_symbol(symbol, "symbol") if symbol else None
        except InvalidSymbol:
            raise BadParameter(f"Invalid `symbol`: {symbol!r}") from None
        start, end = _date_param(from_, "from"), _date_param(to, "to")

        def page(strategy_id: UUID) -> TradesPage:
            rows = state.db.ledger.trades.page(
                strategy_id, after=after, limit=limit + 1, status=status or None, symbol=wanted,
                opened_from=start, opened_to=end,
            )  # fmt: skip
            now = datetime.now(UTC)
            more = len(rows) > limit
            rows = rows[:limit]
            nxt = encode_trade_cursor(rows[-1].opened_at, rows[-1].id) if more else None
            currency = readers.trade_currencies(state.db, rows)
            return TradesPage([published_trade(t, now, currency[t.symbol]) for t in rows], nxt)

        return ExactJSONResponse(await _read(state, strategy_id, "trades_listed", page))

    @get("/cash", responses=LEDGER_ERRORS, summary="The strategy's cash events, in arrival order, paginated")
    async def list_cash(
        self, state: State, strategy_id: UUID, limit: int = Limit, cursor: str | None = Cursor
    ) -> CashPage:
        return await _read(state, strategy_id, "cash_listed", state.db.ledger.cash, _cursor(cursor), limit)

    @get(
        "/events",
        responses=LEDGER_ERRORS,
        media_type="application/jsonl",
        middleware=[download_slots],
        opt={"download": True},
        summary="Every event of the strategy as its hash chain (JSONL), to verify its published digests",
        description='One line per event, in arrival order: `{"seq", "notification_id", "digest",'
        ' "event"}` with the event as stored, verbatim; digest n = SHA-256(digest n-1 bytes +'
        " the event's JSON bytes), nothing before the first. The same as the strategy page's"
        " download, which the public gets only as far as the owner's `show_positions` allows.",
    )
    async def get_events(self, request: Request, state: State, strategy_id: UUID) -> Response[bytes]:
        chunks = stream_chain_events(
            state.db.ledger.datastore, strategy_id, idle_timeout_s=idle_timeout(state.settings)
        )
        body = await _read(state, strategy_id, "events_read", lambda _: prime(chunks, "events"))
        return _streamed(request, body, "application/jsonl", f'attachment; filename="events-{strategy_id}.jsonl"')

    @get(
        "/corporate-actions",
        responses=LEDGER_ERRORS,
        summary="Splits applied to the strategy's holdings",
        description="Each stock split that met a holding of the strategy, oldest first: the ex-date, the"
        ' symbol, the ratio (new shares for old, `"4:1"`), and the quantity and cost basis before'
        " and after. Prices are kept as traded and splits applied at the start of the ex-date,"
        " so NAV is continuous across a split.",
    )
    async def list_corporate_actions(self, state: State, strategy_id: UUID) -> CorporateActions:
        return await _read(state, strategy_id, "corporate_actions_listed", state.db.ledger.corporate_actions)

    @get("/reconciliation", responses=LEDGER_ERRORS, summary="Reconciliation log of snapshots sent with log_deltas")
    async def list_reconciliation(
        self, state: State, strategy_id: UUID, limit: int = Limit, cursor: str | None = Cursor
    ) -> ReconciliationPage:
        return await _read(
            state, strategy_id, "reconciliation_listed", state.db.ledger.reconciliation, _cursor(cursor), limit
        )
