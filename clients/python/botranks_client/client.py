"""The synchronous client."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import httpx
import msgspec

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
from .errors import BotRanksError, ServerError, TransportError, UnexpectedResponse, api_error
from .outbox import Outbox
from .results import CashResult, DeadLetter, Enqueued, SubmitResult

T = TypeVar("T")

__version__ = "0.1.0"
USER_AGENT = f"botranks-client/{__version__}"

#: failures worth another try; anything else httpx raises (a bad URL...) is final
RETRY_TRANSPORT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError)
WRITE_PATHS = {"orders": "/orders", "cash": "/cash", "snapshot": "/positions/snapshot"}
#: unknown-outcome cash calls remembered for a retry with the same arguments (see record_cash)
CASH_RETRY_MEMORY = 1000
READYZ_POLL_S = 0.2


def decode(response: httpx.Response, type_: type[T]) -> T:
    try:
        return msgspec.json.decode(response.content, type=type_)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise UnexpectedResponse(
            f"{response.request.method} {response.request.url}: {response.status_code}"
            f" with an unexpected body ({exc}): {response.text[:200]!r}"
        ) from None


def readyz_url(root: str) -> str:
    return root[: -len("/api/v1")] + "/readyz"


def projector_lag(response: httpx.Response) -> int | None:
    """The projector's lag from query_api's ``/readyz`` (direct, or nested by ``botranks up``'s gateway)."""
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    if "projector_lag" in body:
        return body["projector_lag"]
    query = (body.get("services") or {}).get("query_api")
    return query.get("projector_lag") if isinstance(query, dict) else None


class _Session:
    """One HTTP connection pool with the retry and pacing rules."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float,
        max_retries: int,
        transport: httpx.BaseTransport | None,
        sleep: Callable[[float], None] | None,
        pacer: Pacer | None = None,
    ) -> None:
        self.root = _core.api_root(base_url)
        self.max_retries = max_retries
        self.sleep = sleep or time.sleep
        self.pacer = pacer or Pacer()
        self.http = httpx.Client(
            base_url=self.root,
            timeout=timeout,
            transport=transport,
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json", "User-Agent": USER_AGENT},
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        params: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> httpx.Response:
        """Send until a 2xx (returned) or a final failure (raised); retries 429, 5xx and network errors."""
        sleep = sleep or self.sleep
        headers = {"Content-Type": "application/json"} if content is not None else None
        attempt, delay = 0, 0.0
        while True:
            wait = max(delay, self.pacer.delay())
            if wait > 0:
                sleep(wait)
            try:
                response = self.http.request(method, path, content=content, params=params, headers=headers)
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
                    response.read()
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

    def close(self) -> None:
        self.http.close()


class Client:
    """BotRanks API v1 for one strategy (see the README for the retry and idempotency rules).

    ``outbox``: a SQLite file; writes are then stored there and sent by a background thread
    (they return :class:`Enqueued`). ``read_your_writes=True``: a read that follows a write the
    server answered before folding it (``BotRanks-Projected: false``) first waits (at most
    ``timeout``) for the projection to catch up; None: reads go out at once; False: in addition,
    the server answers writes at commit (``BotRanks-Read-Your-Writes: off``), not once ``/state``
    shows them — for bulk writes and bots that keep their own books.
    ``sleep``: how the client waits (tests pass a fake).
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
        transport: httpx.BaseTransport | None = None,
        read_your_writes: bool | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.strategy_id = _core.strategy_uuid(strategy_id)
        self.timeout = timeout
        self.read_your_writes = bool(read_your_writes)
        self._session = _Session(
            base_url, api_key, timeout=timeout, max_retries=max_retries, transport=transport, sleep=sleep
        )
        self._session.http.headers.update(_core.write_headers(read_your_writes))
        self._path = f"/strategies/{self.strategy_id}"
        self._unprojected = False
        self._cash_retry: dict[tuple, datetime] = {}
        self._outbox: Outbox | None = None
        if outbox is not None:
            self._outbox = Outbox(outbox, self.strategy_id, self._send_row, request_timeout=timeout)

    @property
    def rate_limit(self) -> dict[str, int] | None:
        """The key's window as the last answer told it: ``{"limit", "remaining", "reset"}`` (seconds)."""
        return self._session.pacer.last

    # ------------------------------------------------------------ lifecycle

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self, flush_timeout: float | None = 30.0) -> None:
        """Flush the outbox (at most ``flush_timeout`` s; what is left is sent on the next start), then stop."""
        if self._outbox is not None:
            self._outbox.close(flush_timeout)
        self._session.close()

    def flush(self, timeout: float | None = None) -> None:
        """Wait until the outbox is empty (OutboxTimeout after ``timeout``; the error that blocks it, if any)."""
        if self._outbox is not None:
            self._outbox.flush(timeout)

    def pending(self) -> int:
        """Outbox rows not yet acknowledged by the server."""
        return 0 if self._outbox is None else self._outbox.pending()

    def dead_letters(self) -> list[DeadLetter]:
        """Outbox rows the server refused for good (4xx), oldest first."""
        return [] if self._outbox is None else self._outbox.dead_letters()

    # ------------------------------------------------------------ writes

    def submit_orders(self, orders: Iterable[OrderIn | Mapping[str, Any]]) -> SubmitResult | Enqueued:
        """Submit orders in batches of at most 500, in order; safe to call again with the same list.

        Every order is validated first (:class:`InvalidOrder` before anything is sent). A missing
        ``executed_at`` is set to now ON THE CALLER'S OBJECT (dict key or struct attribute), then a
        missing ``external_order_id`` is derived from the strategy, the order's position in
        ``orders`` and its content: submitting the same list object again (after an error, a crash
        of the caller's loop...) sends the same ids and the server reports ``duplicates`` instead
        of storing anything twice. Rebuild the list in the same order, with the same times, for
        the same guarantee across processes. An error raised mid-way carries ``partial``: the
        batches that went through.
        """
        prepared = _core.prepare_orders(orders, self.strategy_id)
        batches = _core.order_batches(prepared)
        if self._outbox is not None:
            return self._outbox.enqueue("orders", batches)
        total = SubmitResult()
        for body, _count in batches:
            try:
                response = self._session.request("POST", self._path + "/orders", content=body)
            except BotRanksError as exc:
                exc.partial = total
                raise
            part = _core.decode_submit(response.content, _core.is_projected(response.headers))
            _core.merge_submit(total, part)
        self._unprojected |= not total.projected
        return total

    def record_cash(
        self,
        event_type: str,
        amount: Decimal | int | str,
        *,
        occurred_at: datetime | str | None = None,
        external_id: str | None = None,
        related_symbol: str | None = None,
        note: str | None = None,
    ) -> CashResult | Enqueued:
        """Record a cash event; ``amount`` is signed (positive: cash in).

        ``external_id`` defaults to one derived from the content, ``occurred_at`` (default now)
        included. A call whose outcome is unknown (ServerError, TransportError) is remembered: the
        same call again on this client (same arguments, still without occurred_at/external_id)
        reuses its time, hence its id, and cannot double. Across processes, pass ``occurred_at``
        or ``external_id`` to be idempotent.
        """
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
            enqueued = self._outbox.enqueue("cash", [(body, 1)])
            if key is not None:
                self._cash_retry.pop(key, None)
            return enqueued
        try:
            response = self._session.request("POST", self._path + "/cash", content=body)
        except (ServerError, TransportError):
            if key is not None:
                self._remember_cash(key, cash.occurred_at)
            raise
        if key is not None:
            self._cash_retry.pop(key, None)
        result = decode(response, CashResult)
        result.projected = _core.is_projected(response.headers)
        self._unprojected |= not result.projected
        return result

    def _remember_cash(self, key: tuple, occurred_at: datetime | None) -> None:
        if occurred_at is None:
            return
        self._cash_retry[key] = occurred_at
        while len(self._cash_retry) > CASH_RETRY_MEMORY:
            self._cash_retry.pop(next(iter(self._cash_retry)))

    def snapshot_positions(
        self,
        positions: Iterable[PositionIn | Mapping[str, Any]],
        *,
        taken_at: datetime | str | None = None,
        log_deltas: bool = False,
    ) -> SnapshotOutcome | Enqueued:
        """Replace the strategy's position set; ``taken_at`` defaults to now (fixed before the first try)."""
        snapshot = _core.prepare_snapshot(positions, taken_at=taken_at, log_deltas=log_deltas)
        body = _core.encode(snapshot)
        if self._outbox is not None:
            return self._outbox.enqueue("snapshot", [(body, len(snapshot.positions))])
        response = self._session.request("POST", self._path + "/positions/snapshot", content=body)
        self._unprojected |= not _core.is_projected(response.headers) or response.status_code == 202
        return decode(response, SnapshotOutcome)

    def _send_row(self, kind: str, body: bytes, sleep: Callable[[float], None]) -> None:
        self._session.request("POST", self._path + WRITE_PATHS[kind], content=body, sleep=sleep)

    # ------------------------------------------------------------ reads

    def _get(self, path: str, params: Mapping[str, str] | None = None) -> httpx.Response:
        if self.read_your_writes and self._unprojected:
            self._await_projection()
        return self._session.request("GET", self._path + path, params=params)

    def _await_projection(self) -> None:
        deadline = time.monotonic() + self.timeout
        url = readyz_url(self._session.root)
        while True:
            try:
                lag = projector_lag(self._session.http.get(url))
            except httpx.HTTPError:
                lag = None
            if lag is None or lag <= 0:
                break
            if time.monotonic() >= deadline:
                log.warning(
                    "read-your-writes: the projection is still %d events behind after %.1f s", lag, self.timeout
                )
                break
            self._session.sleep(READYZ_POLL_S)
        self._unprojected = False

    def state(self) -> StateView:
        """Positions, current NAV and the last order's time, as derived by the server."""
        return decode(self._get("/state"), StateView)

    def nav(self, from_: date | None = None, to: date | None = None) -> NavSeries:
        """The daily NAV series (both ends inclusive)."""
        return decode(self._get("/nav", _core.query_params({"from": from_, "to": to})), NavSeries)

    def performance(self, benchmark: str | None = None, risk_free_rate: Decimal | float | None = None) -> Performance:
        """The metrics; ``benchmark=None``: the strategy's own, ``""``: none."""
        return decode(self._get("/performance", _core.performance_params(benchmark, risk_free_rate)), Performance)

    def corporate_actions(self) -> CorporateActions:
        """The splits applied to the strategy's holdings."""
        return decode(self._get("/corporate-actions"), CorporateActions)

    def _pages(self, path: str, page_type: type, filters: Mapping[str, Any]) -> Iterator[Any]:
        params = _core.query_params(filters)
        while True:
            page: Any = decode(self._get(path, params), page_type)
            yield from page.items
            if not page.next_cursor:
                return
            params = {**params, "cursor": page.next_cursor}

    def orders(self, **filters: Any) -> Iterator[Order]:
        """Every order, oldest first, page after page as it is consumed (``limit``: page size)."""
        return self._pages("/orders", OrdersPage, filters)

    def trades(self, **filters: Any) -> Iterator[Trade]:
        """Every trade (round trip), in the order opened, lazily; filters ``status`` (open, closed, reset),
        ``symbol``, ``from_`` and ``to`` (the UTC day opened), ``limit`` (page size)."""
        return self._pages("/trades", TradesPage, filters)

    def cash_events(self, **filters: Any) -> Iterator[CashEvent]:
        """Every cash event, oldest first, lazily."""
        return self._pages("/cash", CashPage, filters)

    def reconciliation(self, **filters: Any) -> Iterator[ReconciliationEntry]:
        """The reconciliation log (snapshots sent with log_deltas), oldest first, lazily."""
        return self._pages("/reconciliation", ReconciliationPage, filters)
