"""HTTP routes of the read side."""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

import structlog
from litestar import Controller, Request, get
from litestar.datastructures import State

from libs.infra.web import authorize

from . import readers

log = structlog.get_logger(service="query_api")


class StrategyQueries(Controller):
    path = "/api/v1/strategies/{strategy_id:uuid}"

    @get("/state", sync_to_thread=True, summary="Current derived state")
    def get_state(self, request: Request, state: State, strategy_id: UUID) -> dict[str, Any]:
        started = time.perf_counter()
        authorize(state.store, request.headers.get("authorization"), strategy_id)
        body = readers.strategy_state(state.store, strategy_id)
        log.info("state_read", strategy_id=str(strategy_id), positions=len(body["positions"]),
                 duration_ms=round((time.perf_counter() - started) * 1000, 2))
        return body
