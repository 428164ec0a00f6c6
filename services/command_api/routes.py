"""HTTP routes of the command side (spec: POST orders, cash, positions/snapshot)."""

from __future__ import annotations

import time
from typing import Literal
from uuid import UUID

import msgspec
import structlog
from anyio import to_thread
from litestar import Controller, Response, post
from litestar.datastructures import State
from litestar.openapi import ResponseSpec
from litestar.params import Parameter

from botranks_domain.errors import BadParameter
from botranks_domain.model import CashEvent, CashIn, Order, OrdersBatchIn, SnapshotIn
from botranks_domain.views import SnapshotOutcome
from libs.infra.auth import api_key_guard
from libs.infra.metrics import INGESTED
from libs.infra.openapi import KEY_REQUIRED, LEDGER
from libs.infra.web import LEDGER_ERRORS, ExactJSONResponse

from . import ingest

log = structlog.get_logger(service="command_api")


class Counts(msgspec.Struct):
    accepted: int
    duplicates: int


class OrdersResult(msgspec.Struct):
    accepted: list[Order]
    duplicates: list[Order]
    counts: Counts


class CashResult(msgspec.Struct):
    status: Literal["created", "duplicate"]
    event: CashEvent


#: a writer that does not read back (a bulk import, a bot that keeps its own books) asks for the
#: answer at commit: ``BotRanks-Read-Your-Writes: off`` (checked before anything is written)
RYW_HEADER = "BotRanks-Read-Your-Writes"
RYW_PARAMETER = Parameter(
    header=RYW_HEADER,
    default=None,
    schema_extra={"enum": ["on", "off"]},
    description=(
        "`off`: answer as soon as the write is committed (`BotRanks-Projected: false`) instead of "
        "waiting (bounded) until GET /state shows it; default `on`"
    ),
)


def _waits(header: str | None) -> bool:
    """Whether the request wants read-your-writes (400 on a value other than on/off, as documented)."""
    if header is None:
        return True
    if header not in ("on", "off"):
        raise BadParameter(f"`{RYW_HEADER}` must be `on` or `off`, got {header[:40]!r}")
    return header == "on"


async def _projected(state: State, strategy_id: UUID, notification_ids: list[int], wait: bool) -> bool:
    """Wait (bounded) until the projector has applied the write (the relay publishes it at the
    append's NOTIFY); at once False when the request said ``BotRanks-Read-Your-Writes: off``."""
    if not wait:
        return False
    return await state.waiter.wait_for(strategy_id, max(notification_ids, default=0))


def _answer(content, projected: bool, status_code: int = 200) -> ExactJSONResponse:
    return ExactJSONResponse(
        content, status_code=status_code, headers={"BotRanks-Projected": "true" if projected else "false"}
    )


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


class LedgerCommands(Controller):
    path = "/api/v1/strategies/{strategy_id:uuid}"
    guards = [api_key_guard]
    tags, security = [LEDGER], KEY_REQUIRED

    @post("/orders", responses=LEDGER_ERRORS, status_code=200, summary="Submit a batch of 1..500 orders")
    async def post_orders(
        self, state: State, strategy_id: UUID, data: OrdersBatchIn, ryw: str | None = RYW_PARAMETER
    ) -> Response[OrdersResult]:
        started, wait = time.perf_counter(), _waits(ryw)
        result = await to_thread.run_sync(
            ingest.record_orders, state.events, state.db.prices, strategy_id, data, state.rate_guard
        )
        counts = Counts(len(result.accepted), len(result.duplicates))
        INGESTED.labels(kind="order", outcome="accepted").inc(counts.accepted)
        INGESTED.labels(kind="order", outcome="duplicate").inc(counts.duplicates)
        response = _answer(
            OrdersResult(result.accepted, result.duplicates, counts),
            await _projected(state, strategy_id, result.notification_ids, wait),
        )
        log.info(
            "orders_ingested",
            strategy_id=str(strategy_id),
            accepted=counts.accepted,
            duplicates=counts.duplicates,
            duration_ms=_ms(started),
        )
        return response

    @post(
        "/cash",
        responses={
            **LEDGER_ERRORS,
            200: ResponseSpec(CashResult, description="Duplicate external_id: the existing event, not re-applied"),
        },
        status_code=201,
        summary="Record a cash event (201 created, 200 duplicate)",
    )
    async def post_cash(
        self, state: State, strategy_id: UUID, data: CashIn, ryw: str | None = RYW_PARAMETER
    ) -> Response[CashResult]:
        started, wait = time.perf_counter(), _waits(ryw)
        status, event, notification_ids = await to_thread.run_sync(ingest.record_cash, state.events, strategy_id, data)
        INGESTED.labels(kind="cash", outcome="accepted" if status == "created" else "duplicate").inc()
        response = _answer(
            CashResult(status, event),
            await _projected(state, strategy_id, notification_ids, wait),
            status_code=201 if status == "created" else 200,
        )
        log.info(
            "cash_ingested",
            strategy_id=str(strategy_id),
            status=status,
            event_type=event.event_type,
            duration_ms=_ms(started),
        )
        return response

    @post(
        "/positions/snapshot",
        responses={
            **LEDGER_ERRORS,
            202: ResponseSpec(
                SnapshotOutcome, description="Stored; the projector has not folded it yet (removed/entries null)"
            ),
        },
        status_code=200,
        summary="Replace the position set (reconciliation)",
    )
    async def post_snapshot(
        self, state: State, strategy_id: UUID, data: SnapshotIn, ryw: str | None = RYW_PARAMETER
    ) -> Response[SnapshotOutcome]:
        started, wait = time.perf_counter(), _waits(ryw)
        snapshot, notification_ids = await to_thread.run_sync(
            ingest.record_snapshot, state.events, strategy_id, data, state.rate_guard
        )
        INGESTED.labels(kind="snapshot", outcome="accepted").inc()
        counts = None
        if await _projected(state, strategy_id, notification_ids, wait):
            counts = await to_thread.run_sync(state.db.ledger.snapshot_outcome, snapshot.id)
        if counts is None:  # stored, but the projector has not folded it yet: what it replaced is unknown
            response = _answer(SnapshotOutcome(len(snapshot.positions), None, None), False, status_code=202)
        else:
            response = _answer(counts, True)
        log.info(
            "snapshot_ingested",
            strategy_id=str(strategy_id),
            positions=len(snapshot.positions),
            projected=counts is not None,
            duration_ms=_ms(started),
        )
        return response
