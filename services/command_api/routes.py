"""HTTP routes of the command side (spec: POST orders, cash, positions/snapshot)."""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

import structlog
from litestar import Controller, Request, post
from litestar.datastructures import State

from libs.domain.model import CashIn, OrdersBatchIn, SnapshotIn
from libs.infra.web import authorize, decode_body

from . import ingest

log = structlog.get_logger(service="command_api")


class LedgerCommands(Controller):
    path = "/api/v1/strategies/{strategy_id:uuid}"

    @post("/orders", status_code=200, sync_to_thread=True, summary="Submit a batch of 1..500 orders")
    def post_orders(self, request: Request, state: State, strategy_id: UUID, body: bytes) -> dict[str, Any]:
        started = time.perf_counter()
        authorize(state.store, request.headers.get("authorization"), strategy_id)
        batch = decode_body(body, OrdersBatchIn)
        accepted, duplicates = ingest.record_orders(state.store, strategy_id, batch)
        state.relay.poke()
        log.info("orders_ingested", strategy_id=str(strategy_id), accepted=len(accepted),
                 duplicates=len(duplicates), duration_ms=round((time.perf_counter() - started) * 1000, 2))
        return {
            "accepted": accepted,
            "duplicates": duplicates,
            "counts": {"accepted": len(accepted), "duplicates": len(duplicates)},
        }

    @post("/cash", status_code=200, sync_to_thread=True, summary="Record a cash event")
    def post_cash(self, request: Request, state: State, strategy_id: UUID, body: bytes) -> dict[str, Any]:
        started = time.perf_counter()
        authorize(state.store, request.headers.get("authorization"), strategy_id)
        cash = decode_body(body, CashIn)
        status, event = ingest.record_cash(state.store, strategy_id, cash)
        state.relay.poke()
        log.info("cash_ingested", strategy_id=str(strategy_id), status=status, event_type=event.event_type,
                 duration_ms=round((time.perf_counter() - started) * 1000, 2))
        return {"status": status, "event": event}
