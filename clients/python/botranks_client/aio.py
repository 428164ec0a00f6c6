"""The asyncio client: the same methods as :class:`botranks_client.Client`, as coroutines."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx

from botranks_domain.model import CashEvent, Order, OrderIn, PositionIn
from botranks_domain.trade_stats import Trade, TradesPage
from botranks_domain.views import (
    CashPage,
    CorporateActions,
    NavSeries,
    OrdersPage,
    Performance,
    ReconciliationEntry,
    ReconciliationPage,
    SnapshotOutcome,
    StateView,
)

from . import _core
from ._core import Pacer, log
from .client import (
    CASH_RETRY_MEMORY,
    READYZ_POLL_S,
    RETRY_TRANSPORT,
    USER_AGENT,
    WRITE_PATHS,
    _Session,
    decode,
    projector_lag,
    readyz_url,
)
from .errors import BotRanksError, ServerError, TransportError, api_error
from .outbox import Outbox
from .results import CashResult, DeadLetter, Enqueued, SubmitResult


class _AsyncSession:
    """The async twin of ``client._Session`` (same retry and pacing rules)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float,
        max_retries: int,
        transport: httpx.AsyncBaseTransport | None,
        sleep: Callable[[float], Awaitable[None]] | None,
        pacer: Pacer,
    ) -> None:
        self.root = _core.api_root(base_url)
        self.max_retries = max_retries
        self.sleep = sleep or asyncio.sleep
        self.pacer = pacer
        self.http = httpx.AsyncClient(
            base_url=self.root,
            timeout=timeout,
            transport=transport,
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json", "User-Agent": USER_AGENT},
        )

    async def request(
        self, method: str, path: str, *, content: bytes | None = None, params: Mapping[str, str] | None = None
    ) -> httpx.Response:
        headers = {"Content-Type": "application/json"} if content is not None else None
        attempt, delay = 0, 0.0
        while True:
            wait = max(delay, self.pacer.delay())
            if wait > 0:
                await self.sleep(wait)
            try:
                response = await self.http.request(method, path, content=content, params=params, headers=headers)
            except RETRY_TRANSPORT as exc:
                if attempt >= self.max_retries:
                    raise TransportError(
                        f"{method} {path}: {type(exc).__name__}: {exc} (after {attempt + 1} attempts)", exc
                    ) from exc
                delay = _core.backoff(attempt)
                log.warning(
                    "%s %s: %s (%s); retry %d/%d in %.2f s",
                    method,
                    path,
                    type(exc).__name__,
                    exc,
                    attempt + 1,
                    self.max_retries,
                    delay,
                )
            except httpx.HTTPError as exc:
                raise TransportError(f"{method} {path}: {type(exc).__name__}: {exc}", exc) from exc
            else:
                self.pacer.observe(response.headers)
                if response.is_success:
                    return response
                if not _core.should_retry(response.status_code) or attempt >= self.max_retries:
                    await response.aread()
                    raise api_error(response)
                after = _core.parse_retry_after(response.headers.get("Retry-After"))
                delay = _core.backoff(attempt) if after is None else after
                log.warning(
                    "%s %s: %d %s; retry %d/%d in %.2f s",
                    method,
                    path,
                    response.status_code,
                    response.text[:200],
                    attempt + 1,
                    self.max_retries,
                    delay,
                )
            attempt += 1

    async def close(self) -> None:
        await self.http.aclose()


class AsyncClient:
    """Async BotRanks API v1 for one strategy; ``async with AsyncClient(...) as client:``.

    Arguments as for :class:`Client`; ``transport`` is an ``httpx.AsyncBaseTransport`` and
    ``sleep`` a coroutine function. With ``outbox`` the rows are sent by a background thread with
    its own (synchronous) connection pool.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        strategy_id: UUID | str,
        *,
        timeout: float = 10.0,
        max_retries: int = 8,
        outbox: str | Path | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        read_your_writes: bool | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self.strategy_id = _core.strategy_uuid(strategy_id)
        self.timeout = timeout
        self.read_your_writes = bool(read_your_writes)
        pacer = Pacer()
        self._session = _AsyncSession(
            base_url, api_key, timeout=timeout, max_retries=max_retries, transport=transport, sleep=sleep, pacer=pacer
        )
        self._session.http.headers.update(_core.write_headers(read_your_writes))
        self._path = f"/strategies/{self.strategy_id}"
        self._unprojected = False
        self._cash_retry: dict[tuple, datetime] = {}
        self._outbox: Outbox | None = None
        self._flusher_session: _Session | None = None
        if outbox is not None:
            self._flusher_session = _Session(
                base_url, api_key, timeout=timeout, max_retries=max_retries, transport=None, sleep=None, pacer=pacer
            )
            self._flusher_session.http.headers.update(_core.write_headers(read_your_writes))
            self._outbox = Outbox(outbox, self.strategy_id, self._send_row, request_timeout=timeout)

    @property
    def rate_limit(self) -> dict[str, int] | None:
        """The key's window as the last answer told it: ``{"limit", "remaining", "reset"}`` (seconds)."""
        return self._session.pacer.last

    # ------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self, flush_timeout: float | None = 30.0) -> None:
        if self._outbox is not None:
            await asyncio.to_thread(self._outbox.close, flush_timeout)
        if self._flusher_session is not None:
            self._flusher_session.close()
        await self._session.close()

    async def flush(self, timeout: float | None = None) -> None:
        if self._outbox is not None:
            await asyncio.to_thread(self._outbox.flush, timeout)

    async def pending(self) -> int:
        return 0 if self._outbox is None else await asyncio.to_thread(self._outbox.pending)

    async def dead_letters(self) -> list[DeadLetter]:
        return [] if self._outbox is None else await asyncio.to_thread(self._outbox.dead_letters)

    def _send_row(self, kind: str, body: bytes, sleep: Callable[[float], None]) -> None:
        assert self._flusher_session is not None
        self._flusher_session.request("POST", self._path + WRITE_PATHS[kind], content=body, sleep=sleep)

    # ------------------------------------------------------------ writes

    async def submit_orders(self, orders: Iterable[OrderIn | Mapping[str, Any]]) -> SubmitResult | Enqueued:
        """As :meth:`Client.submit_orders` (``executed_at`` is filled on the caller's objects)."""
        prepared = _core.prepare_orders(orders, self.strategy_id)
        batches = _core.order_batches(prepared)
        if self._outbox is not None:
            return await asyncio.to_thread(self._outbox.enqueue, "orders", batches)
        total = SubmitResult()
        for body, _count in batches:
            try:
                response = await self._session.request("POST", self._path + "/orders", content=body)
            except BotRanksError as exc:
                exc.partial = total
                raise
            _core.merge_submit(total, _core.decode_submit(response.content, _core.is_projected(response.headers)))
        self._unprojected |= not total.projected
        return total

    async def record_cash(
        self,
        event_type: str,
        amount: Decimal | int | str,
        *,
        occurred_at: datetime | str | None = None,
        external_id: str | None = None,
        related_symbol: str | None = None,
        note: str | None = None,
    ) -> CashResult | Enqueued:
        """As :meth:`Client.record_cash`."""
        key: tuple[str, str, str | None, str | None] | None = None
        if occurred_at is None and external_id is None:
            key = (event_type, str(amount), related_symbol, note)
            occurred_at = self._cash_retry.get(key)
        cash = _core.prepare_cash(
            self.strategy_id,
            event_type,
            amount,
            occurred_at=occurred_at,
            external_id=external_id,
            related_symbol=related_symbol,
            note=note,
        )
        body = _core.encode(cash)
        if self._outbox is not None:
            enqueued = await asyncio.to_thread(self._outbox.enqueue, "cash", [(body, 1)])
            if key is not None:
                self._cash_retry.pop(key, None)
            return enqueued
        try:
            response = await self._session.request("POST", self._path + "/cash", content=body)
        except (ServerError, TransportError):
            if key is not None and cash.occurred_at is not None:
                self._cash_retry[key] = cash.occurred_at
                while len(self._cash_retry) > CASH_RETRY_MEMORY:
                    self._cash_retry.pop(next(iter(self._cash_retry)))
            raise
        if key is not None:
            self._cash_retry.pop(key, None)
        result = decode(response, CashResult)
        result.projected = _core.is_projected(response.headers)
        self._unprojected |= not result.projected
        return result

    async def snapshot_positions(
        self,
        positions: Iterable[PositionIn | Mapping[str, Any]],
        *,
        taken_at: datetime | str | None = None,
        log_deltas: bool = False,
    ) -> SnapshotOutcome | Enqueued:
        """As :meth:`Client.snapshot_positions`."""
        snapshot = _core.prepare_snapshot(positions, taken_at=taken_at, log_deltas=log_deltas)
        body = _core.encode(snapshot)
        if self._outbox is not None:
            return await asyncio.to_thread(self._outbox.enqueue, "snapshot", [(body, len(snapshot.positions))])
        response = await self._session.request("POST", self._path + "/positions/snapshot", content=body)
        self._unprojected |= not _core.is_projected(response.headers) or response.status_code == 202
        return decode(response, SnapshotOutcome)

    # ------------------------------------------------------------ reads

    async def _get(self, path: str, params: Mapping[str, str] | None = None) -> httpx.Response:
        if self.read_your_writes and self._unprojected:
            await self._await_projection()
        return await self._session.request("GET", self._path + path, params=params)

    async def _await_projection(self) -> None:
        deadline = time.monotonic() + self.timeout
        url = readyz_url(self._session.root)
        while True:
            try:
                lag = projector_lag(await self._session.http.get(url))
            except httpx.HTTPError:
                lag = None
            if lag is None or lag <= 0:
                break
            if time.monotonic() >= deadline:
                log.warning(
                    "read-your-writes: the projection is still %d events behind after %.1f s", lag, self.timeout
                )
                break
            await self._session.sleep(READYZ_POLL_S)
        self._unprojected = False

    async def state(self) -> StateView:
        return decode(await self._get("/state"), StateView)

    async def nav(self, from_: date | None = None, to: date | None = None) -> NavSeries:
        return decode(await self._get("/nav", _core.query_params({"from": from_, "to": to})), NavSeries)

    async def performance(
        self, benchmark: str | None = None, risk_free_rate: Decimal | float | None = None
    ) -> Performance:
        return decode(await self._get("/performance", _core.performance_params(benchmark, risk_free_rate)), Performance)

    async def corporate_actions(self) -> CorporateActions:
        return decode(await self._get("/corporate-actions"), CorporateActions)

    async def _pages(self, path: str, page_type: type, filters: Mapping[str, Any]) -> AsyncIterator[Any]:
        params = _core.query_params(filters)
        while True:
            page: Any = decode(await self._get(path, params), page_type)
            for item in page.items:
                yield item
            if not page.next_cursor:
                return
            params = {**params, "cursor": page.next_cursor}

    def orders(self, **filters: Any) -> AsyncIterator[Order]:
        """``async for order in client.orders():`` every order, oldest first, lazily."""
        return self._pages("/orders", OrdersPage, filters)

    def trades(self, **filters: Any) -> AsyncIterator[Trade]:
        """``async for trade in client.trades(status="closed"):`` every trade, in the order opened, lazily."""
        return self._pages("/trades", TradesPage, filters)

    def cash_events(self, **filters: Any) -> AsyncIterator[CashEvent]:
        return self._pages("/cash", CashPage, filters)

    def reconciliation(self, **filters: Any) -> AsyncIterator[ReconciliationEntry]:
        return self._pages("/reconciliation", ReconciliationPage, filters)
