"""What the subscribers' pages show, read from the read models only, and who may see what.

- Access: a strategy is shown to everyone when public, and to its owner's session only when
  private; to anybody else a private strategy does not exist (the same 404 as an unknown id).
- Publication (``show_positions``): ``none`` hides positions, orders and cash events from the
  public; ``delayed`` shows orders and cash events executed more than 24 h ago (the cut-off
  is the start of the current UTC hour minus 24 h, so answers stay cacheable for an hour) and
  hides positions (positions as of 24 h ago are not kept in a read model, and re-folding the
  history per request is not cheap); ``live`` shows everything. The owner always sees
  everything, and so does an API key of the strategy on ``events.jsonl``.
- Caching: everything derived from a strategy's NAV is computed once per (strategy, NAV
  version, benchmark, benchmark price version) and kept in a per-process LRU, like
  /performance; a NAV change is a new key, so nothing stale is ever served. The ETags are
  digests of the same versions plus the viewer kind and the build (templates and assets).
"""

from __future__ import annotations

import calendar
import functools
import hashlib
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgspec
import polars as pl

from botranks_domain.accounts import StrategyProfile
from botranks_domain.currency import quote_currency
from botranks_domain.errors import NotSignedIn
from botranks_domain.nav import NavRow
from botranks_domain.series import closes_frame, daily_series, nav_frame
from botranks_domain.trade_stats import TradeSums
from botranks_domain.views import (
    ChainHead,
    Performance,
)
from libs.infra.db import Database

from . import readers, trade_pages
from .holdings import Holdings, holdings

# ---------------------------------------------------------------- parameters

ROLLING_WINDOW = 63
NAV_TABLE_ROWS = 20
RECENT_EVENTS = 20
CHAIN_DAYS_SHOWN = 90
DELAY = timedelta(hours=24)


def strategy_uuid(raw: str) -> UUID | None:
    """The strategy id of a path, or None (then the page is the unknown strategy's 404)."""
    try:
        return UUID(raw) if len(raw) <= 64 else None
    except ValueError:
        return None


# ---------------------------------------------------------------- who sees what


@dataclass(frozen=True)
class Access:
    profile: StrategyProfile
    owner: bool
    #: "live", "delayed" or "none": what of the positions and events this viewer sees
    publication: str
    #: delayed: only orders and cash events executed before this instant (the events download: arrived before it)
    cutoff: datetime | None

    @property
    def viewer(self) -> str:
        return "owner" if self.owner else "public"


def delayed_cutoff(now: datetime | None = None) -> datetime:
    """Start of the current UTC hour, minus 24 h: everything shown under ``delayed`` is older than 24 h."""
    now = now or datetime.now(UTC)
    return now.replace(minute=0, second=0, microsecond=0) - DELAY


def access(db: Database, strategy_id: UUID, session_token: str | None, key_holder: bool = False) -> Access | None:
    """What this viewer may see of the strategy, or None when it must look like it does not exist."""
    profile = db.identity.profile(strategy_id)
    if profile is None:
        return None
    owner = key_holder
    if not owner and session_token and profile.owner_id is not None:
        try:
            owner = db.identity.session_user(session_token) == profile.owner_id
        except NotSignedIn:
            owner = False
    return access_of(profile, owner)


def access_of(profile: StrategyProfile | None, owner: bool) -> Access | None:
    """``access`` from what was read: the profile (None: no such strategy) and whether the viewer owns it."""
    if profile is None:
        return None
    if profile.visibility != "public" and not owner:
        return None
    publication = "live" if owner else (profile.show_positions or "none")
    if publication not in ("live", "delayed"):
        publication = "none"
    return Access(profile, owner, publication, delayed_cutoff() if publication == "delayed" else None)


# ---------------------------------------------------------------- what the strategy page shows


class Series(msgspec.Struct):
    """The charts' data (``/p/strategies/{id}/series`` and the page's data island)."""

    dates: list[str]
    equity: list[float | None]
    benchmark: list[float | None] | None
    benchmark_symbol: str | None
    drawdown: list[float | None]
    rolling_sharpe: list[float | None]
    rolling_volatility: list[float | None]
    rolling_window: int
    monthly: dict[str, Any]


@dataclass
class StrategyFigures:
    performance: Performance
    series: Series
    series_json: bytes
    nav_rows: int
    nav_tail: list[NavRow] = field(default_factory=list)  # newest first


def _clean(values: list[Any], digits: int) -> list[float | None]:
    return [None if v is None or not math.isfinite(v) else round(v, digits) for v in values]


def _monthly_table(perf: Performance) -> dict[str, Any]:
    """Years × months (plus the year's total) for the heatmap."""
    years = sorted({k[:4] for k in perf.monthly_returns} | set(perf.yearly_returns))
    rows = []
    for year in years:
        row = [perf.monthly_returns.get(f"{year}-{m:02d}") for m in range(1, 13)]
        rows.append(_clean([*row, perf.yearly_returns.get(year)], 6))
    return {"years": years, "columns": [*calendar.month_abbr[1:], "Year"], "returns": rows}


def series_from(
    rows: list[NavRow], closes: list[tuple[date, Decimal]], perf: Performance, benchmark_symbol: str | None
) -> Series:
    """Equity and benchmark rebased to 100, drawdown, rolling Sharpe and volatility, monthly table.

    Returns are the time-weighted ones of /performance (``botranks_domain.series``), so the
    equity curve is the cumulative index whose drawdown /performance reports; the benchmark is
    its last close on or before each NAV day, rebased at its first close in the NAV's range.
    """
    if not rows:
        return Series(
            [], [], [] if benchmark_symbol else None, benchmark_symbol, [], [], [], ROLLING_WINDOW, _monthly_table(perf)
        )
    frame = daily_series(nav_frame(rows), ROLLING_WINDOW).select(
        "date", "drawdown", "rolling_sharpe", "rolling_volatility", equity=pl.col("index") * 100.0
    )
    bench = None
    if benchmark_symbol is not None:
        if closes:
            closes_sorted = closes_frame(closes).sort("date")
            base = closes_sorted["close"][0]
            frame = frame.join_asof(closes_sorted.lazy(), on="date", strategy="backward").with_columns(
                bench=pl.col("close") / base * 100.0
            )
        else:
            frame = frame.with_columns(bench=pl.lit(None, dtype=pl.Float64))
    out = frame.collect(engine="in-memory")
    if benchmark_symbol is not None:
        bench = _clean(out["bench"].to_list(), 4)
    broken = any(w.code == "negative_equity" for w in perf.warnings)  # returns mean nothing: draw none
    blank: list[float | None] = [None] * out.height
    return Series(
        dates=[d.isoformat() for d in out["date"].to_list()],
        equity=blank if broken else _clean(out["equity"].to_list(), 4),
        benchmark=bench,
        benchmark_symbol=benchmark_symbol,
        drawdown=blank if broken else _clean(out["drawdown"].to_list(), 6),
        rolling_sharpe=blank if broken else _clean(out["rolling_sharpe"].to_list(), 4),
        rolling_volatility=blank if broken else _clean(out["rolling_volatility"].to_list(), 6),
        rolling_window=ROLLING_WINDOW,
        monthly=_monthly_table(perf),
    )


_encoder = msgspec.json.Encoder(decimal_format="number")


def encode_json(value: Any) -> bytes:
    return _encoder.encode(value)


def island(payload: bytes) -> str:
    """JSON safe inside ``<script type="application/json">``: no ``</script>``, no ``<!--``."""
    return (
        payload.decode()
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def figures(db: Database, key: readers.PerformanceKey, trades: list[TradeSums] | None = None) -> StrategyFigures:
    """The metrics (``trading`` too, as /performance) and the charts' data of one NAV version
    (computed once: see ``PageCache``); ``trades``: the strategy's, when already read."""
    rows, closes, warning = readers.load_inputs(db, key)
    perf = readers.performance_with(db, key, rows, closes, warning, trades)
    series = series_from(rows, closes, perf, key.benchmark or key.unpriced_benchmark)
    return StrategyFigures(perf, series, encode_json(series), len(rows), list(reversed(rows[-NAV_TABLE_ROWS:])))


def _items(result: Any) -> list[Any]:
    """A list of events whether the owner answers a list or a page (``items``)."""
    return list(getattr(result, "items", result) or [])


@dataclass
class Activity:
    holdings: Holdings | None
    orders: list[Any] | None
    cash: list[Any] | None
    #: the splits applied to its holdings (they show what it held: published like its orders)
    splits: list[Any] | None = None
    #: the quote currency of every symbol of its orders and splits (their prices are in it)
    currencies: dict[str, str] = field(default_factory=dict)


def activity(db: Database, strategy_id: UUID, publication: str, cutoff: datetime | None) -> Activity:
    """Positions, recent orders and cash events, and the splits its holdings went through, as far as
    the publication level allows (``delayed``: what happened before the cutoff)."""
    if publication == "none":
        return Activity(None, None, None)
    splits = db.ledger.corporate_actions(strategy_id).items
    if cutoff is not None:
        splits = [a for a in splits if a.ex_date < cutoff.date()]
    orders = _items(db.ledger.recent_orders(strategy_id, RECENT_EVENTS, cutoff))
    symbols = {o.symbol for o in orders} | {a.symbol for a in splits}
    recorded = db.prices.currencies(symbols)
    return Activity(
        holdings(db, strategy_id) if publication == "live" else None,
        orders,
        _items(db.ledger.recent_cash(strategy_id, RECENT_EVENTS, cutoff)),
        splits,
        {s: quote_currency(s, recorded) for s in symbols},
    )


class Bodies:
    """Finished answers by ETag (the tag names everything a body depends on), least recently used
    first out, bounded by their total size."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes, self.size = max_bytes, 0
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, tag: str) -> bytes | None:
        with self._lock:
            body = self._items.get(tag)
            if body is not None:
                self._items.move_to_end(tag)
            return body

    def put(self, tag: str, body: bytes) -> bytes:
        if len(body) > self.max_bytes // 16:
            return body  # one huge answer must not flush everything else
        with self._lock:
            old = self._items.pop(tag, None)
            self.size += len(body) - (len(old) if old is not None else 0)
            self._items[tag] = body
            while self.size > self.max_bytes and self._items:
                self.size -= len(self._items.popitem(last=False)[1])
        return body


class PageCache:
    """Per-process caches (never stale: see the module doc): what one NAV version gives (metrics,
    charts' data, trades, positions and events as published), the chain of that version, and
    finished bodies by ETag."""

    def __init__(self, db: Database, body_bytes: int = 64 * 1024 * 1024) -> None:
        self.db = db
        self.figures = functools.lru_cache(maxsize=512)(self._figures)
        # fewer: a strategy's trades may be tens of thousands of rows (~1.5 kB each)
        self.trades = functools.lru_cache(maxsize=16)(self._trades)
        self.activity = functools.lru_cache(maxsize=512)(self._activity)
        self.chain = functools.lru_cache(maxsize=512)(self._chain)
        self.bodies = Bodies(body_bytes)

    def _figures(self, key: readers.PerformanceKey) -> StrategyFigures:
        return figures(self.db, key, self.trades(key.strategy_id, key.nav_version).sums)

    def _trades(self, strategy_id: UUID, nav_version: datetime | None) -> trade_pages.TradeBook:
        # the projector writes the trades in the transaction that moves the NAV version
        sums = self.db.ledger.trades.all_sums(strategy_id)
        return trade_pages.book(sums, readers.trade_currencies(self.db, sums))

    def _activity(
        self, strategy_id: UUID, nav_version: datetime | None, publication: str, cutoff: datetime | None
    ) -> Activity:
        return activity(self.db, strategy_id, publication, cutoff)

    def _chain(self, strategy_id: UUID, nav_version: datetime | None) -> ChainHead:
        # the projector extends the chain in the transaction that moves the NAV version
        return self.db.ledger.chain(strategy_id)


def performance_key(db: Database, profile: StrategyProfile) -> readers.PerformanceKey:
    """The /performance key of the strategy's own benchmark, risk-free rate 0 (an unpriced benchmark
    is compared against nothing and said so, as /performance does)."""
    symbol = profile.benchmark or None
    known, version = db.prices.benchmark_status(symbol) if symbol else (True, None)
    nav_version = db.ledger.nav_version(profile.id)
    key = readers.PerformanceKey(profile.id, nav_version, symbol, version, 0.0, db.ledger.trials())
    if not known:
        key = msgspec.structs.replace(key, benchmark=None, benchmark_version=None, unpriced_benchmark=symbol)
    return readers.with_currencies(db, key)


def etag(*parts: Any) -> str:
    """A strong ETag from everything an answer depends on."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:32]
    return f'"{digest}"'


def strategy_etag(
    build: str, what: str, acc: Access, key: readers.PerformanceKey, board_version: str, *extra: Any
) -> str:
    """The strategy's profile and NAV version (its metrics, charts, positions, events and chain move
    with it), the benchmark's price version, the trials its DSR is judged against, the viewer and
    what it may see, the leaderboard's version (live share, last activity: refreshed by the projector
    right after a fold), the build, and whatever else the answer shows (``extra``: the owner's record)."""
    p = acc.profile
    return etag(
        build,
        what,
        p.id,
        p.name,
        p.visibility,
        p.benchmark,
        p.show_positions,
        p.description,
        p.tags,
        p.owner_handle,
        acc.viewer,
        acc.publication,
        acc.cutoff,
        key.nav_version,
        key.benchmark,
        key.benchmark_version,
        key.unpriced_benchmark,
        key.trials,
        board_version,
        *extra,
    )


def not_modified(if_none_match: str | None, tag: str) -> bool:
    """``If-None-Match`` names this ETag (weak comparison, as RFC 9110 says for GET), or ``*``."""
    if not if_none_match:
        return False
    wanted = tag.removeprefix("W/")
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == wanted:
            return True
    return False
