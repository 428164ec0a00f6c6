"""HTTP routes of the read side: state, NAV history, the order/cash log, reconciliation."""

from __future__ import annotations

import csv
import io
import time
from datetime import date
from typing import Any, Callable
from uuid import UUID

import structlog
from litestar import Controller, Request, Response, get
from litestar.datastructures import State
from litestar.params import Parameter

from libs.infra.web import BadRequest, ExactJSONResponse, UnprocessableEntity, authorize

from . import readers

log = structlog.get_logger(service="query_api")

Limit = Parameter(ge=1, le=1000, default=100, description="page size (1..1000)")


def _read(state: State, request: Request, strategy_id: UUID, what: str, fn: Callable[[], Any]) -> Any:
    """Authorize, run one read, log one event."""
    started = time.perf_counter()
    authorize(state.store, request.headers.get("authorization"), strategy_id)
    result = fn()
    log.info(what, strategy_id=str(strategy_id), duration_ms=round((time.perf_counter() - started) * 1000, 2))
    return result


def _cursor(cursor: str | None) -> int:
    try:
        return readers.decode_cursor(cursor)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("Invalid `cursor`: pass back the next_cursor of a previous page") from None


class StrategyQueries(Controller):
    path = "/api/v1/strategies/{strategy_id:uuid}"

    @get("/state", sync_to_thread=True, summary="Current derived state")
    def get_state(self, request: Request, state: State, strategy_id: UUID) -> dict[str, Any]:
        return _read(state, request, strategy_id, "state_read",
                     lambda: readers.strategy_state(state.store, strategy_id))

    @get("/nav", sync_to_thread=True, summary="Daily NAV history (JSON, or CSV with Accept: text/csv)")
    def get_nav(self, request: Request, state: State, strategy_id: UUID,
                from_: date | None = Parameter(query="from", default=None),
                to: date | None = Parameter(default=None)) -> Response:
        if from_ and to and from_ > to:
            raise UnprocessableEntity("`from` must not be after `to`")
        rows = _read(state, request, strategy_id, "nav_read",
                     lambda: readers.nav_series(state.store, strategy_id, from_, to))
        if "text/csv" in request.headers.get("accept", ""):
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(readers.NAV_COLUMNS)
            writer.writerows([[r[c] for c in readers.NAV_COLUMNS] for r in rows])
            return Response(out.getvalue(), media_type="text/csv",
                            headers={"Content-Disposition": f'inline; filename="nav-{strategy_id}.csv"'})
        return ExactJSONResponse({"strategy_id": strategy_id, "series": rows})

    @get("/orders", sync_to_thread=True, summary="The strategy's orders, in arrival order, paginated")
    def list_orders(self, request: Request, state: State, strategy_id: UUID, limit: int = Limit,
                    cursor: str | None = None) -> dict[str, Any]:
        after = _cursor(cursor)
        return _read(state, request, strategy_id, "orders_listed",
                     lambda: readers.list_log(state.store, strategy_id, "rm_orders", after, limit))

    @get("/cash", sync_to_thread=True, summary="The strategy's cash events, in arrival order, paginated")
    def list_cash(self, request: Request, state: State, strategy_id: UUID, limit: int = Limit,
                  cursor: str | None = None) -> dict[str, Any]:
        after = _cursor(cursor)
        return _read(state, request, strategy_id, "cash_listed",
                     lambda: readers.list_log(state.store, strategy_id, "rm_cash_events", after, limit))

    @get("/reconciliation", sync_to_thread=True, summary="Reconciliation log of snapshots sent with log_deltas")
    def list_reconciliation(self, request: Request, state: State, strategy_id: UUID, limit: int = Limit,
                            cursor: str | None = None) -> dict[str, Any]:
        after = _cursor(cursor)
        return _read(state, request, strategy_id, "reconciliation_listed",
                     lambda: readers.list_reconciliation(state.store, strategy_id, after, limit))
