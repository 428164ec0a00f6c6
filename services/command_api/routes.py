"""HTTP routes of the command side (spec: POST orders, cash, positions/snapshot)."""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

import structlog
from anyio import to_thread
from litestar import Controller, Request, Response, post
from litestar.datastructures import State

from libs.domain.model import CashIn, OrdersBatchIn
from libs.infra.web import ExactJSONResponse, authorize, decode_body

from . import ingest

log = structlog.get_logger(service="command_api")


async def _acknowledge(state: State, notification_ids: list[int], content: dict[str, Any]) -> Response:
    """Publish promptly, wait (bounded) for the projection, then answer."""
    state.relay.poke()
    projected = await state.waiter.wait_for(max(notification_ids, default=0))
    return ExactJSONResponse(content, status_code=200, headers={"BotRanks-Projected": "true" if projected else "false"})


class LedgerCommands(Controller):
    path = "/api/v1/strategies/{strategy_id:uuid}"

    @post("/orders", summary="Submit a batch of 1..500 orders")
    async def post_orders(self, request: Request, state: State, strategy_id: UUID, body: bytes) -> Response:
        started = time.perf_counter()

        def work():
            authorize(state.store, request.headers.get("authorization"), strategy_id)
            return ingest.record_orders(state.store, strategy_id, decode_body(body, OrdersBatchIn))

        result = await to_thread.run_sync(work)
        response = await _acknowledge(state, result.notification_ids, {
            "accepted": result.accepted,
            "duplicates": result.duplicates,
            "counts": {"accepted": len(result.accepted), "duplicates": len(result.duplicates)},
        })
        log.info("orders_ingested", strategy_id=str(strategy_id), accepted=len(result.accepted),
                 duplicates=len(result.duplicates), duration_ms=round((time.perf_counter() - started) * 1000, 2))
        return response

    @post("/cash", summary="Record a cash event")
    async def post_cash(self, request: Request, state: State, strategy_id: UUID, body: bytes) -> Response:
        started = time.perf_counter()

        def work():
            authorize(state.store, request.headers.get("authorization"), strategy_id)
            return ingest.record_cash(state.store, strategy_id, decode_body(body, CashIn))

        status, event, notification_ids = await to_thread.run_sync(work)
        response = await _acknowledge(state, notification_ids, {"status": status, "event": event})
        log.info("cash_ingested", strategy_id=str(strategy_id), status=status, event_type=event.event_type,
                 duration_ms=round((time.perf_counter() - started) * 1000, 2))
        return response
