"""Downloads in bounded memory, and the limits that keep one client from stalling query_api (issue 19).

- Streaming: a download's body is a sync generator of chunks (``libs.infra.readmodel.stream_*``:
  a server-side cursor read a few hundred rows at a time) pulled one chunk at a time in a worker
  thread and sent through Litestar's ``Stream``. The first chunk is read before the answer starts,
  so a database that is down is still a 503, not a cut body.
- Download slots (``download_slots``, on the download routes): at most
  ``Settings.downloads_per_process`` at once in this process and ``downloads_per_address`` per
  client address; beyond either, 429 with Retry-After. A download whose client accepts nothing for
  ``download_send_timeout_s`` is cut (connection closed, so the client sees it incomplete), which
  frees its slot and its database connection.
- Page rate limit (``page_rate_limit``, on the pages and their data, not ``/static/``): a token
  bucket per client address, ``page_requests_per_minute_per_ip`` with a burst of
  ``page_burst_per_ip``; beyond, 429 with Retry-After. Kept in this process (a read must not become
  a database write); with several workers each has its own buckets.

The client address is ``scope["client"]``: uvicorn takes it from X-Forwarded-For of trusted proxies
only (``libs.infra.serve``); IPv6 addresses count by /64 (``client_bucket``).
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import time
from collections import Counter
from collections.abc import Callable, Generator, Iterator
from typing import Any, cast

import anyio
import structlog
from anyio import CancelScope, to_thread
from litestar import Request
from litestar.exceptions import TooManyRequestsException

from botranks_domain.nav import NAV_COLUMNS, NavRow
from libs.infra.identity import client_bucket
from libs.infra.metrics import REFUSED
from libs.infra.settings import Settings

log = structlog.get_logger(service="query_api")

#: what a refused download is told to wait: downloads take seconds, not minutes, to finish
DOWNLOAD_RETRY_AFTER_S = 5
#: addresses whose page buckets are kept (least recently seen forgotten first: ~150 bytes each)
MAX_ADDRESSES = 50_000
#: path prefixes under the page rate limit ("/" itself too); /static/, /api/, /healthz... are not
PAGE_PREFIXES = ("/p/", "/s/", "/docs", "/methodology", "/compare")
_STREAMS = "botranks_download_streams"  # scope key: the streams a download middleware closes


def client_address(scope: Any) -> str:
    client = scope.get("client")
    return client_bucket(client[0] if client else None)


# ---------------------------------------------------------------- streaming


class _SendStalled(Exception):
    """The client accepted nothing for the send timeout."""


def _stalled(exc: BaseException | None) -> bool:
    """Whether ``exc`` is, or was caused by, a send timeout (through Litestar's wrapping and task groups)."""
    while exc is not None:
        if isinstance(exc, _SendStalled):
            return True
        if isinstance(exc, BaseExceptionGroup):
            return any(_stalled(e) for e in exc.exceptions)
        exc = exc.__cause__
    return False


def _next_chunk(chunks: Iterator[bytes]) -> bytes | None:
    """The next chunk, None after the last."""
    return next(chunks, None)


class ThreadedChunks:
    """An async iterator over a sync generator of chunks, each step in a worker thread (the
    generator holds a pooled connection and a server-side cursor: ``aclose`` gives them back)."""

    def __init__(self, chunks: Generator[bytes, None, None], first: bytes | None, what: str) -> None:
        self._chunks, self._first, self._what = chunks, first, what
        self._closed = first is None
        self._bytes, self._started = 0, time.perf_counter()

    def __aiter__(self) -> ThreadedChunks:
        return self

    async def __anext__(self) -> bytes:
        if self._first is not None:
            chunk, self._first = self._first, None
        elif self._closed:
            raise StopAsyncIteration
        else:
            step = await to_thread.run_sync(_next_chunk, self._chunks)
            if step is None:
                self._closed = True
                log.info(
                    "download_sent",
                    download=self._what,
                    bytes=self._bytes,
                    duration_ms=round((time.perf_counter() - self._started) * 1000, 2),
                )
                raise StopAsyncIteration
            chunk = step
        self._bytes += len(chunk)
        return chunk

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            with CancelScope(shield=True):  # also when the request was cancelled (client gone)
                await to_thread.run_sync(self._chunks.close)


def prime(chunks: Generator[bytes, None, None], what: str) -> ThreadedChunks:
    """Read the first chunk now (in the caller's worker thread): errors before the answer starts."""
    try:
        first = next(chunks, None)
    except BaseException:
        chunks.close()
        raise
    return ThreadedChunks(chunks, first, what)


def idle_timeout(settings: Settings) -> float | None:
    """How long a download's transaction may sit idle before PostgreSQL ends it: past the send timeout."""
    return settings.download_send_timeout_s + 30 if settings.download_send_timeout_s else None


def nav_csv_chunks(row_chunks: Generator[list[NavRow], None, None]) -> Generator[bytes, None, None]:
    """NAV rows as CSV (``NAV_COLUMNS`` first), a chunk of rows at a time; closing it closes ``row_chunks``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(NAV_COLUMNS)
    with contextlib.closing(row_chunks):
        for rows in row_chunks:
            writer.writerows([[getattr(r, c) for c in NAV_COLUMNS] for r in rows])
            yield out.getvalue().encode()
            out.seek(0)
            out.truncate()
    if out.tell():
        yield out.getvalue().encode()


def register(request: Request, stream: ThreadedChunks) -> ThreadedChunks:
    """Have the download middleware close ``stream`` when the request ends, however it ends."""
    # the download middleware's own key, beside the ASGI scope's (Litestar's Scope type does not name it)
    streams = cast("list[ThreadedChunks] | None", request.scope.get(_STREAMS))
    if streams is not None:
        streams.append(stream)
    return stream


# ---------------------------------------------------------------- download slots


class DownloadSlots:
    """Downloads running in this process, in all and per client address (event loop only: no lock)."""

    def __init__(self, per_process: int, per_address: int) -> None:
        self.per_process, self.per_address = per_process, per_address
        self.running = 0
        self.by_address: Counter[str] = Counter()

    def acquire(self, address: str) -> str | None:
        """Take a slot; or the reason there is none (then nothing is taken)."""
        if self.per_process and self.running >= self.per_process:
            return f"Too many downloads in progress (at most {self.per_process} at once); retry shortly"
        if self.per_address and self.by_address[address] >= self.per_address:
            return f"Too many downloads from this address (at most {self.per_address} at once); wait for one to finish"
        self.running += 1
        self.by_address[address] += 1
        return None

    def release(self, address: str) -> None:
        self.running -= 1
        self.by_address[address] -= 1
        if self.by_address[address] <= 0:
            del self.by_address[address]


def is_download(scope: Any) -> bool:
    """The route's ``opt["download"]``: True, or a predicate of the scope (e.g. CSV by Accept)."""
    handler = scope.get("route_handler")
    wanted = handler.opt.get("download") if handler is not None else None
    return bool(wanted(scope) if callable(wanted) else wanted)


def download_slots(app: Callable) -> Callable:
    """Route middleware of the downloads: a slot for the whole answer (429 without one), sends timed."""

    async def middleware(scope: Any, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or not is_download(scope):
            await app(scope, receive, send)
            return
        state = scope["litestar_app"].state
        slots: DownloadSlots = state.downloads
        address = client_address(scope)
        refused = slots.acquire(address)
        if refused:
            REFUSED.labels(limit="downloads").inc()
            log.warning("download_refused", path=scope.get("path"), address=address, detail=refused)
            raise TooManyRequestsException(refused, headers={"Retry-After": str(DOWNLOAD_RETRY_AFTER_S)})
        timeout = state.settings.download_send_timeout_s
        streams: list[ThreadedChunks] = []
        scope[_STREAMS] = streams

        async def timed_send(message: Any) -> None:
            if not timeout or message.get("type") != "http.response.body":
                await send(message)
                return
            try:
                with anyio.fail_after(timeout):
                    await send(message)
            except TimeoutError:
                raise _SendStalled() from None

        try:
            await app(scope, receive, timed_send)
        except Exception as exc:
            if not _stalled(exc):
                raise
            # returning without finishing the answer makes uvicorn close the connection: the client
            # sees a cut transfer, never a short body that looks complete
            log.warning("download_stalled", path=scope.get("path"), address=address, timeout_s=timeout)
        finally:
            slots.release(address)
            for stream in streams:
                await stream.aclose()

    return middleware


# ---------------------------------------------------------------- page rate limit


class AddressBuckets:
    """A token bucket per client address: ``per_minute`` tokens a minute, at most ``burst`` saved."""

    def __init__(
        self,
        per_minute: int,
        burst: int,
        max_addresses: int = MAX_ADDRESSES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate, self.burst = per_minute / 60.0, float(max(1, burst))
        self.max_addresses, self.clock = max_addresses, clock
        self._buckets: dict[str, tuple[float, float]] = {}  # address -> (tokens, when), least recent first

    def take(self, address: str) -> float:
        """Spend a token: 0.0, or the seconds until there is one (then nothing is spent)."""
        now = self.clock()
        tokens, when = self._buckets.pop(address, (self.burst, now))
        tokens = min(self.burst, tokens + (now - when) * self.rate)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / self.rate
        self._buckets[address] = (tokens, now)
        if len(self._buckets) > self.max_addresses:
            del self._buckets[next(iter(self._buckets))]
        return wait


def page_buckets(settings: Settings) -> AddressBuckets | None:
    per_minute = settings.page_requests_per_minute_per_ip
    return AddressBuckets(per_minute, settings.page_burst_per_ip) if per_minute > 0 else None


def _is_page(path: str) -> bool:
    return path == "/" or path.startswith(PAGE_PREFIXES)


def page_rate_limit(app: Callable) -> Callable:
    """App middleware: the per-address rate limit of the pages and their data (not /static/, not /api/)."""

    async def middleware(scope: Any, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http" and _is_page(scope.get("path", "")):
            buckets: AddressBuckets | None = getattr(scope["litestar_app"].state, "page_buckets", None)
            if buckets is not None:
                address = client_address(scope)
                wait = buckets.take(address)
                if wait:
                    REFUSED.labels(limit="pages").inc()
                    per_minute = round(buckets.rate * 60)
                    raise TooManyRequestsException(
                        f"Too many requests from this address (at most {per_minute} a minute); retry later",
                        headers={"Retry-After": str(max(1, math.ceil(wait)))},
                    )
        await app(scope, receive, send)

    return middleware
