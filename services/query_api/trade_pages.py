"""The strategy page's trades: the histogram of closed trades' returns, the ended and open trades
as far as ``show_positions`` publishes them, and their CSV (``/p/strategies/{id}/trades.csv``).

Publication (docs/NOTES.md "Pages"): the counted statistics (``/performance``'s ``trading``) and the
histogram (counts per bin) are always shown; trade rows only as the owner publishes them — ``none``:
no rows; ``delayed``: trades that ended before the cut-off (at least 24 h ago), no open trades;
``live`` (and the owner): every trade.

Everything here comes from one read of the strategy's trades (``TradeBook``), kept per NAV version by
``PageCache.trades``: the projector writes the trades in the transaction that moves the NAV version.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec

from botranks_domain.errors import BadParameter
from botranks_domain.trade_stats import Trade, TradeSums, TradingStats, published_trade

from . import formatting

TRADES_PAGE_SIZE = 50
MAX_TRADES_PAGE = 1_000_000
#: the CSV's columns: every field of a published trade, in the API's order (as ``botranks trades --csv``)
CSV_COLUMNS = (
    "id", "symbol", "direction", "status", "opened_at", "closed_at", "quantity_open", "max_quantity", "entry_price",
    "exit_price", "quantity_closed", "fees", "realized_pnl", "return", "holding_days", "fills", "currency",
    "realized_pnl_base",
)  # fmt: skip
CSV_ROWS_A_CHUNK = 500
#: the histogram aims at this many bins; returns beyond the 1st/99th percentiles fall in the end bins
TARGET_BINS = 24
CLIP_FROM = 100


@dataclass(frozen=True)
class Bin:
    lo: float
    hi: float
    wins: int
    losses: int
    flat: int
    #: the first / last bin also holds the returns beyond it (clipped outliers)
    open_lo: bool = False
    open_hi: bool = False

    @property
    def count(self) -> int:
        return self.wins + self.losses + self.flat

    @property
    def label(self) -> str:
        lo, hi = formatting.pct(self.lo, 1), formatting.pct(self.hi, 1)
        if self.open_lo and self.open_hi:
            span = "every return"
        elif self.open_lo:
            span = f"below {hi}"
        elif self.open_hi:
            span = f"{lo} and above"
        else:
            span = f"{lo} to {hi}"
        parts = [f"{n} {word}" for n, word in ((self.wins, "won"), (self.losses, "lost"), (self.flat, "flat")) if n]
        return f"{span}: {', '.join(parts) or 'none'}"


@dataclass(frozen=True)
class Histogram:
    """Closed trades' returns in equal bins whose edges are multiples of the width (0 is an edge, so a
    bin holds wins or losses, never both), with the axis' ticks as (fraction of the width, label)."""

    bins: list[Bin]
    width: float
    peak: int
    ticks: list[tuple[float, str]]
    zero: float | None
    trades: int

    @property
    def width_label(self) -> str:
        return f"{self.width * 100:g}%"

    def bars(self) -> Iterable[dict[str, Any]]:
        """Each bin's stacked bars in SVG units (100 × 100 viewBox): losses, then wins, then flat."""
        step = 100 / len(self.bins)
        for i, b in enumerate(self.bins):
            y = 100.0
            for kind, n in (("loss", b.losses), ("win", b.wins), ("flat", b.flat)):
                if n:
                    h = n / self.peak * 96
                    y -= h
                    yield {"x": round(i * step + step * 0.08, 3), "w": round(step * 0.84, 3), "y": round(y, 3),
                           "h": round(h, 3), "kind": kind, "label": b.label}  # fmt: skip


def _nice(raw: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^k at or above ``raw``."""
    exp = math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * 10**exp >= raw * (1 - 1e-12):
            return m * 10**exp
    return 10 ** (exp + 1)


def _quantile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))]


def histogram(returns: list[tuple[float, int]]) -> Histogram | None:
    """The histogram of ``(return, sign of realized P&L)`` pairs; None without any."""
    if not returns:
        return None
    values = sorted(r for r, _ in returns)
    lo, hi = values[0], values[-1]
    if len(values) >= CLIP_FROM:
        lo, hi = _quantile(values, 0.01), _quantile(values, 0.99)
    span = hi - lo
    width = _nice(span / TARGET_BINS) if span > 0 else _nice(max(abs(lo) * 0.1, 1e-4))
    start, end = math.floor(lo / width), math.ceil(hi / width)
    if end <= start:
        end = start + 1
    n = end - start
    counts = [[0, 0, 0] for _ in range(n)]
    for r, sign in returns:
        i = min(max(math.floor(r / width) - start, 0), n - 1)
        counts[i][0 if sign > 0 else 1 if sign < 0 else 2] += 1
    bins = [
        Bin((start + i) * width, (start + i + 1) * width, w, ls, f, open_lo=(i == 0 and values[0] < start * width),
            open_hi=(i == n - 1 and values[-1] >= end * width))
        for i, (w, ls, f) in enumerate(counts)
    ]  # fmt: skip
    tick_step = _nice((end - start) * width / 5)
    first = math.ceil(start * width / tick_step - 1e-9)
    digits = 0 if tick_step >= 0.01 else 1 if tick_step >= 0.001 else 2
    ticks = []
    k = first
    while k * tick_step <= end * width + 1e-12:
        v = k * tick_step
        ticks.append((round((v - start * width) / (n * width) * 100, 3), formatting.pct(v, digits)))
        k += 1
    zero = -start * width / (n * width) * 100 if start <= 0 <= end else None
    return Histogram(bins, width, max(b.count for b in bins), ticks, zero, len(returns))


# ---------------------------------------------------------------- one read of the trades


@dataclass(frozen=True)
class TradeBook:
    """A strategy's trades at one NAV version."""

    #: every trade, in the order opened (the statistics' input, and the CSV's order)
    sums: list[TradeSums]
    #: closed and reset trades, the latest ended first
    ended: list[TradeSums]
    #: open trades, the latest opened first
    open: list[TradeSums]
    histogram: Histogram | None
    closed: int
    reset: int
    #: each symbol's quote currency (prices and realized_pnl are in it)
    currencies: dict[str, str] = field(default_factory=dict)

    def currency(self, t: TradeSums) -> str:
        return self.currencies.get(t.symbol, "USD")


def _ended_order(t: TradeSums) -> tuple[Any, ...]:
    return (t.closed_at, t.opened_at, t.id)


def book(sums: list[TradeSums], currencies: dict[str, str] | None = None) -> TradeBook:
    """Every view of the trades the page needs, from one read of them (in the order opened), with each
    symbol's quote currency (``currencies``; USD where not given)."""
    ended = sorted((t for t in sums if t.status != "open"), key=_ended_order, reverse=True)
    returns = []
    for t in ended:
        # the published return, realized / (entry price × quantity closed), in floats: only binned
        # (published_trade's exact division costs ~40 µs a trade: 0.4 s for 10,000)
        if t.status == "closed" and t.entry_value and t.exit_quantity:
            pnl, won = t.realized_pnl, t.realized_pnl_base  # the colour: won or lost in the base currency
            ret = float(pnl) * float(t.entry_quantity) / (float(t.entry_value) * float(t.exit_quantity))
            if math.isfinite(ret):
                returns.append((ret, (won > 0) - (won < 0)))
    return TradeBook(
        sums,
        ended,
        sorted((t for t in sums if t.status == "open"), key=lambda t: (t.opened_at, t.id), reverse=True),
        histogram(returns),
        sum(t.status == "closed" for t in ended),
        sum(t.status == "reset" for t in ended),
        currencies or {},
    )


def visible(b: TradeBook, publication: str, cutoff: datetime | None) -> tuple[list[TradeSums], list[TradeSums] | None]:
    """The ended trades (latest first) and the open ones (None: not published) this viewer may see."""
    if publication == "none":
        return [], None
    if publication == "delayed":
        return [t for t in b.ended if cutoff is not None and t.closed_at is not None and t.closed_at < cutoff], None
    return b.ended, b.open


# ---------------------------------------------------------------- the page's section


@dataclass(frozen=True)
class TradesView:
    stats: TradingStats | None
    histogram: Histogram | None
    #: "none", "delayed" or "live": which rows are shown
    rows: str
    ended: list[Trade]
    ended_total: int
    page: int
    pages: int
    open: list[Trade] | None
    closed: int
    reset: int


def page_number(raw: str | None, name: str) -> int:
    """A page parameter of the strategy page (``?trades_page=N``, ``?orders_page=N``): 1 when absent;
    BadParameter (a 400 naming it) for anything but 1..1,000,000."""
    if raw is None or raw.strip() == "":
        return 1
    try:
        page = int(raw.strip())
    except ValueError:
        raise BadParameter(f"`{name}` must be a whole number, got {raw[:40]!r}") from None
    if not 1 <= page <= MAX_TRADES_PAGE:
        raise BadParameter(f"`{name}` must be between 1 and {MAX_TRADES_PAGE}, got {page}")
    return page


def trades_page(raw: str | None) -> int:
    """``?trades_page=N`` (1 when absent); BadParameter (a 400) for anything but 1..1,000,000."""
    return page_number(raw, "trades_page")


def view(b: TradeBook, stats: TradingStats | None, publication: str, cutoff: datetime | None, page: int) -> TradesView:
    ended, still_open = visible(b, publication, cutoff)
    now = datetime.now(UTC)
    shown = ended[(page - 1) * TRADES_PAGE_SIZE : page * TRADES_PAGE_SIZE]
    return TradesView(
        stats,
        b.histogram,
        publication,
        [published_trade(t, now, b.currency(t)) for t in shown],
        len(ended),
        page,
        max(1, -(-len(ended) // TRADES_PAGE_SIZE)),
        None if still_open is None else [published_trade(t, now, b.currency(t)) for t in still_open],
        b.closed,
        b.reset,
    )


def csv_chunks(b: TradeBook, publication: str, cutoff: datetime | None) -> Generator[bytes, None, None]:
    """The trades this viewer may see as CSV (``CSV_COLUMNS``; in the order opened, as the API lists
    them), a few hundred rows a chunk."""
    ended, still_open = visible(b, publication, cutoff)
    shown = {t.id for t in ended} | {t.id for t in still_open or []}
    rows = [t for t in b.sums if t.id in shown]
    now = datetime.now(UTC)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for i in range(0, len(rows), CSV_ROWS_A_CHUNK):
        for t in rows[i : i + CSV_ROWS_A_CHUNK]:
            row = msgspec.to_builtins(published_trade(t, now, b.currency(t)))
            writer.writerow(["" if row.get(c) is None else row[c] for c in CSV_COLUMNS])
        yield out.getvalue().encode()
        out.seek(0)
        out.truncate()
    if out.tell():
        yield out.getvalue().encode()
