"""Polygon.io client (sync httpx): unadjusted daily bars, stock splits and a ticker's currency, with
pagination and polite retries.

Bars are fetched with ``adjusted=false``: closes as traded that day; BotRanks applies the splits
(``/v3/reference/splits``) itself. Split factors are decoded from the JSON text as exact ``Decimal``.
A stock's quote currency is its ticker details' ``currency_name`` (``/v3/reference/tickers/{ticker}``).
Forex pairs keep Polygon's own ticker (``C:EURUSD``: one EUR in USD) and come from the same aggregates
endpoint; crypto pairs are ``BTC-USD`` here and ``X:BTCUSD`` there (any fiat quote currency).

The API key travels as the ``apiKey`` query parameter (also appended to ``next_url``); it never
appears in an error message, and a filter on the ``httpx`` logger redacts it from request logs.
429 and 5xx answers (and transport errors) are retried with exponential backoff, honoring
``Retry-After``; the sleep function is injectable so that tests never wait.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TypeVar
from urllib.parse import quote

import httpx
import msgspec
import structlog
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from botranks_client import parse_retry_after
from botranks_domain.bars import Bar, Split
from botranks_domain.currency import FX_PREFIX, is_currency
from botranks_domain.model import normalize_symbol

__all__ = ["PolygonClient", "PolygonError", "from_polygon_ticker", "to_polygon_ticker", "is_pair"]

log = structlog.get_logger(__name__)

CRYPTO_RE = re.compile(r"^([A-Z]{2,10})-([A-Z]{3})$")  # quoted in a fiat currency (checked with is_currency)
POLYGON_CRYPTO_RE = re.compile(r"^X:([A-Z]{2,10}?)([A-Z]{3})$")
_KEY_IN_URL = re.compile(r"(apiKey=)[^&\s\"']+", re.IGNORECASE)


class PolygonError(RuntimeError):
    """Polygon answered with an error (or kept failing); the message never contains the API key."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


def _crypto(symbol: str) -> re.Match[str] | None:
    match = CRYPTO_RE.match(symbol)
    return match if match and is_currency(match.group(2)) else None


def is_pair(symbol: str) -> bool:
    """A crypto (``BTC-USD``) or forex (``C:EURUSD``) pair: its currency is in its name, it has no splits."""
    return symbol.startswith(FX_PREFIX) or _crypto(symbol) is not None


def to_polygon_ticker(symbol: str) -> str:
    """BotRanks symbol → Polygon ticker: ``BTC-USD`` → ``X:BTCUSD``; stocks and forex (``C:EURUSD``) unchanged."""
    symbol = normalize_symbol(symbol, "symbol")
    match = _crypto(symbol)
    return f"X:{match.group(1)}{match.group(2)}" if match else symbol


def from_polygon_ticker(ticker: str) -> str:
    """Polygon ticker → BotRanks symbol: ``X:BTCUSD`` → ``BTC-USD``; stocks and forex unchanged."""
    ticker = ticker.strip().upper()
    match = POLYGON_CRYPTO_RE.match(ticker)
    return f"{match.group(1)}-{match.group(2)}" if match and is_currency(match.group(2)) else ticker


# ---------------------------------------------------------------- response shapes


class _Agg(msgspec.Struct):
    t: int
    c: Decimal
    o: Decimal | None = None
    h: Decimal | None = None
    l: Decimal | None = None  # noqa: E741 (Polygon's field name)
    v: Decimal | None = None


class _AggsResponse(msgspec.Struct):
    status: str = ""
    results: list[_Agg] | None = None
    next_url: str | None = None


class _SplitResult(msgspec.Struct):
    execution_date: str | None = None
    split_from: Decimal | None = None  # a JSON number (1, 1.5) decoded exactly from its text
    split_to: Decimal | None = None
    ticker: str | None = None


class _SplitsResponse(msgspec.Struct):
    status: str = ""
    results: list[_SplitResult] | None = None
    next_url: str | None = None


class _TickerDetails(msgspec.Struct):
    ticker: str | None = None
    currency_name: str | None = None


class _TickerResponse(msgspec.Struct):
    status: str = ""
    results: _TickerDetails | None = None


_Page = TypeVar("_Page", _AggsResponse, _SplitsResponse)
_Body = TypeVar("_Body", _AggsResponse, _SplitsResponse, _TickerResponse)


class _Retryable(Exception):
    def __init__(self, message: str, status_code: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.retry_after = retry_after


class _RedactApiKey(logging.Filter):
    """Scrubs ``apiKey=...`` from httpx's request log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.args = tuple(
                _KEY_IN_URL.sub(r"\1***", str(a)) if isinstance(a, (str, httpx.URL)) else a
                for a in (record.args if isinstance(record.args, tuple) else (record.args,))
            )
        if isinstance(record.msg, str) and "apiKey" in record.msg:
            record.msg = _KEY_IN_URL.sub(r"\1***", record.msg)
        return True


def _install_redaction() -> None:
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactApiKey) for f in logger.filters):
        logger.addFilter(_RedactApiKey())


class PolygonClient:
    """Unadjusted daily bars (aggregates endpoint) and stock splits (reference endpoint) from Polygon.io."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = "https://api.polygon.io",
        transport: httpx.BaseTransport | None = None,
        max_retries: int = 5,
        backoff_s: float = 0.5,
        max_wait_s: float = 120.0,
        timeout_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not api_key:
            raise ValueError("a Polygon API key is required")
        self._api_key = api_key
        self._base = httpx.URL(base_url.rstrip("/") + "/")
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_wait_s = max_wait_s
        self._sleep = sleep
        self._client = httpx.Client(transport=transport, timeout=timeout_s, headers={"Accept": "application/json"})
        _install_redaction()

    def close(self) -> None:
        """Close the underlying HTTP connection pool."""
        self._client.close()

    def __enter__(self) -> PolygonClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ public

    def daily_bars(self, symbol: str, start: date, end: date) -> list[Bar]:
        """Unadjusted daily bars (closes as traded that day) of ``symbol`` from ``start`` to ``end``
        (inclusive), ascending by date."""
        symbol = normalize_symbol(symbol, "symbol")
        if end < start:
            return []
        ticker = to_polygon_ticker(symbol)
        path = f"v2/aggs/ticker/{quote(ticker, safe=':')}/range/1/day/{start.isoformat()}/{end.isoformat()}"
        url = self._base.join(path).copy_merge_params({"adjusted": "false", "sort": "asc", "limit": "50000"})
        by_date: dict[date, Bar] = {}
        for body in self._pages(url, _AggsResponse, what=f"{symbol} {start}..{end}"):
            for agg in body.results or ():
                day = datetime.fromtimestamp(agg.t / 1000, tz=UTC).date()
                if not start <= day <= end:
                    continue
                try:
                    by_date[day] = Bar(
                        symbol=symbol, date=day, close=agg.c, open=agg.o, high=agg.h, low=agg.l, volume=agg.v
                    )
                except ValueError as exc:
                    log.warning("polygon_bar_skipped", symbol=symbol, date=day.isoformat(), reason=str(exc))
        return [by_date[d] for d in sorted(by_date)]

    def splits(self, symbol: str, start: date | None = None, end: date | None = None) -> list[Split]:
        """Stock splits of ``symbol`` with an ex-date from ``start`` to ``end`` (inclusive; either
        may be None for open-ended), ascending by ex-date, one per ex-date. Crypto has none (no request);
        so has forex; an unknown ticker gives []; a result that is not a valid split is skipped with a warning."""
        symbol = normalize_symbol(symbol, "symbol")
        if is_pair(symbol) or (start is not None and end is not None and end < start):
            return []
        ticker = to_polygon_ticker(symbol)
        params = {"ticker": ticker}
        if start is not None:
            params["execution_date.gte"] = start.isoformat()
        if end is not None:
            params["execution_date.lte"] = end.isoformat()
        params.update({"limit": "1000", "order": "asc", "sort": "execution_date"})
        url = self._base.join("v3/reference/splits").copy_merge_params(params)
        what = f"{symbol} splits" if start is None and end is None else f"{symbol} splits {start or ''}..{end or ''}"
        by_date: dict[date, Split] = {}
        for body in self._pages(url, _SplitsResponse, what=what):
            for result in body.results or ():
                if not result.ticker or from_polygon_ticker(result.ticker) != symbol:
                    continue  # another ticker's split: not ours to apply
                try:
                    ex_date = date.fromisoformat(result.execution_date or "")
                except ValueError:
                    log.warning(
                        "polygon_split_skipped",
                        symbol=symbol,
                        date=result.execution_date,
                        reason=f"execution_date must be a date like 2024-01-31, got {result.execution_date!r}",
                    )
                    continue
                if (start is not None and ex_date < start) or (end is not None and ex_date > end):
                    continue
                if result.split_from is None or result.split_to is None:
                    log.warning(
                        "polygon_split_skipped",
                        symbol=symbol,
                        date=ex_date.isoformat(),
                        reason="split_from and split_to are required",
                    )
                    continue
                try:
                    by_date[ex_date] = Split(
                        symbol=symbol, ex_date=ex_date, split_from=result.split_from, split_to=result.split_to
                    )
                except ValueError as exc:
                    log.warning("polygon_split_skipped", symbol=symbol, date=ex_date.isoformat(), reason=str(exc))
        return [by_date[d] for d in sorted(by_date)]

    def ticker_currency(self, symbol: str) -> str | None:
        """The ISO 4217 code ``symbol`` is quoted in, from its ticker details (``currency_name``, e.g.
        ``"usd"``, upper-cased). None: Polygon does not know the ticker or names no ISO currency; a pair
        (crypto, forex) is not asked (its name says it)."""
        symbol = normalize_symbol(symbol, "symbol")
        if is_pair(symbol):
            return None
        url = self._base.join(f"v3/reference/tickers/{quote(to_polygon_ticker(symbol), safe=':')}")
        try:
            body = self._get(url, _TickerResponse, what=f"{symbol} details")
        except PolygonError as exc:
            if exc.status_code == 404:
                return None
            raise
        if body.status not in ("OK", "DELAYED"):
            raise PolygonError(f"Polygon returned status {body.status!r} for {symbol} details")
        named = ((body.results.currency_name if body.results else None) or "").strip().upper()
        if not is_currency(named):
            if named:
                log.warning("polygon_currency_skipped", symbol=symbol, currency=named[:20])
            return None
        return named

    # ------------------------------------------------------------ internals

    def _pages(self, url: httpx.URL, kind: type[_Page], *, what: str) -> Iterator[_Page]:
        """Each page of a listing, following ``next_url`` (same host only); a non-OK status is an error."""
        next_page: httpx.URL | None = url
        pages = 0
        while next_page is not None:
            pages += 1
            if pages > 10_000:
                raise PolygonError(f"Polygon pagination for {what} did not end after 10000 pages")
            body = self._get(next_page, kind, what=what)
            if body.status not in ("OK", "DELAYED"):
                raise PolygonError(f"Polygon returned status {body.status!r} for {what}")
            yield body
            next_page = self._next(body.next_url) if body.next_url else None

    def _next(self, next_url: str) -> httpx.URL:
        url = self._base.join(next_url)
        if (url.scheme, url.host, url.port) != (self._base.scheme, self._base.host, self._base.port):
            # never send the key anywhere but the configured host
            raise PolygonError(f"Polygon next_url points to another host ({url.host}); refusing to follow")
        return url

    def _scrub(self, text: str) -> str:
        return _KEY_IN_URL.sub(r"\1***", text.replace(self._api_key, "***"))

    def _get(self, url: httpx.URL, kind: type[_Body], *, what: str) -> _Body:
        """One GET decoded as ``kind``; 429/5xx/transport errors retried, others a PolygonError."""
        request_url = url.copy_set_param("apiKey", self._api_key)

        def attempt() -> _Body:
            try:
                resp = self._client.get(request_url)
            except httpx.TransportError as exc:
                raise _Retryable(f"{type(exc).__name__}: {self._scrub(str(exc))}") from None
            if resp.status_code == 429 or resp.status_code >= 500:
                raise _Retryable(
                    f"HTTP {resp.status_code}", resp.status_code, parse_retry_after(resp.headers.get("Retry-After"))
                )
            if resp.status_code >= 400:
                raise PolygonError(
                    f"Polygon request for {what} failed: HTTP {resp.status_code}{self._detail(resp)}", resp.status_code
                )
            try:
                return msgspec.json.decode(resp.content, type=kind)
            except msgspec.DecodeError as exc:
                raise PolygonError(f"Polygon returned an unexpected body for {what}: {exc}", resp.status_code) from None

        retrying = Retrying(
            stop=stop_after_attempt(self.max_retries + 1),
            wait=self._wait,
            retry=retry_if_exception_type(_Retryable),
            sleep=self._sleep,
            before_sleep=lambda state: log.warning(
                "polygon_retry",
                what=what,
                attempt=state.attempt_number,
                error=str(state.outcome.exception()) if state.outcome else None,
                wait_s=state.next_action.sleep if state.next_action else None,
            ),
            reraise=True,
        )
        try:
            return retrying(attempt)
        except _Retryable as exc:
            raise PolygonError(
                f"Polygon request for {what} failed after {self.max_retries + 1} attempts: {exc}", exc.status_code
            ) from None

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            return min(exc.retry_after, self.max_wait_s)
        return min(self.backoff_s * 2 ** (state.attempt_number - 1), self.max_wait_s)

    def _detail(self, resp: httpx.Response) -> str:
        message = ""
        try:
            data = resp.json()
            if isinstance(data, dict):
                message = str(data.get("message") or data.get("error") or data.get("status") or "")
        except ValueError:
            message = resp.text[:200]
        message = self._scrub(message.strip())
        return f": {message}" if message else ""
