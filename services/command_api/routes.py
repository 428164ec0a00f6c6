"""HTTP routes of the command side (spec: POST orders, cash, positions/snapshot)."""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

import structlog
from anyio import to_thread
from litestar import Controller, Request, Response, post
from litestar.datastructures import State

from libs.domain.model import CashIn, OrdersBatchIn, SnapshotIn
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

    @post("/positions/snapshot", summary="Replace the position set (reconciliation)")
    async def post_snapshot(self, request: Request, state: State, strategy_id: UUID, body: bytes) -> Response:
        started = time.perf_counter()

        def work():
            authorize(state.store, request.headers.get("authorization"), strategy_id)
            return ingest.record_snapshot(state.store, strategy_id, decode_body(body, SnapshotIn))

        snapshot, notification_ids = await to_thread.run_sync(work)
        state.relay.poke()
        projected = await state.waiter.wait_for(max(notification_ids, default=0))
        counts = await to_thread.run_sync(ingest.snapshot_outcome, state.store, snapshot.id) if projected else None
        if counts is None:  # stored, but the projector has not folded it yet: counts unknown
            content = {"upserted": len(snapshot.positions), "removed": None, "reconciliation_entries": None}
            response = ExactJSONResponse(content, status_code=202, headers={"BotRanks-Projected": "false"})
        else:
            response = ExactJSONResponse(counts, status_code=200, headers={"BotRanks-Projected": "true"})
        log.info("snapshot_ingested", strategy_id=str(strategy_id), positions=len(snapshot.positions),
                 projected=counts is not None, duration_ms=round((time.perf_counter() - started) * 1000, 2))
        return response
