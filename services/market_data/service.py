"""The market-data component: the only writer of the ``prices`` and ``splits`` caches.

Closes are kept as traded (unadjusted) and stock splits beside them; the fold applies a split
at the start of its ex-date (DESIGN "Prices and splits").

- ``import_files`` loads CSV/Parquet price files; ``import_split_files`` loads split CSVs;
  ``fetch`` pulls a range of bars and the symbol's splits from Polygon.
- ``MarketDataDaemon`` (when ``BOTRANKS_POLYGON_API_KEY`` is set) fetches the history (bars and
  splits) of every symbol that appears in a strategy (orders, snapshots) or as a benchmark and
  has not been fetched yet, and once a day refreshes the recent bars and splits of held symbols
  and benchmarks; with them the FX pairs (``C:<quote><base>``) that convert each strategy's symbols
  and benchmark into its base currency (``fx_pairs``). Every write records its changes in
  ``price_updates``, so the projector re-derives the strategies concerned (a late split: from its
  ex-date on).
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import structlog

from botranks_domain.currency import FX_PREFIX, USD, fx_symbol, quote_currency
from botranks_domain.model import normalize_symbol
from libs.infra.db import Database
from libs.infra.prices import CurrencyConflict
from libs.infra.readmodel.symbol_reads import SymbolReads

from .files import read_price_file_currencies, read_split_file
from .polygon import PolygonClient, PolygonError, is_pair
from .synthetic import DEMO_PREFIX

log = structlog.get_logger(component="market_data")

HISTORY_YEARS = 5
REFRESH_DAYS = 7
REFRESH_EVERY = timedelta(hours=24)


def _import(paths: list[str], read, write) -> tuple[int, list[str]]:
    """Read each file with ``read`` (-> (items, row errors)) and ``write`` the items of each file that has
    no bad row (nothing of a bad file is written). Returns (rows new or changed, errors)."""
    written, errors = 0, []
    for path in paths:
        try:
            items, problems = read(path)
        except (OSError, ValueError) as exc:
            errors.append(f"{path}: {exc}")
            continue
        if problems:
            errors.extend(problems)
            continue
        try:
            written += write(items, f"file:{Path(path).name}")
        except CurrencyConflict as exc:  # the file says another currency than the one recorded
            errors.append(f"{path}: {exc}")
    return written, errors


def import_files(db: Database, paths: list[str]) -> tuple[int, list[str]]:
    """Load price files of closes as traded; nothing is written from a file that has any bad row.
    The currencies a file's ``currency`` column says are recorded first: one that disagrees with a
    recorded currency (``CurrencyConflict``) fails that file, nothing of it written."""

    def read(path: str) -> tuple[tuple[list, dict[str, str]], list[str]]:
        bars, currencies, problems = read_price_file_currencies(path)
        return (bars, currencies), problems

    def write(read_items: tuple[list, dict[str, str]], source: str) -> int:
        bars, currencies = read_items
        if currencies:
            db.prices.record_currencies(currencies, source)
        return db.prices.write_bars(bars, source)

    return _import(paths, read, write)


def import_split_files(db: Database, paths: list[str]) -> tuple[int, list[str]]:
    """Load split files (CSV ``symbol,ex_date,split_from,split_to``); nothing is written from a file
    that has any bad row. Returns (splits new or changed, errors)."""
    return _import(paths, read_split_file, db.prices.write_splits)


def fetch(
    db: Database, client: PolygonClient, symbols: list[str], start: date, end: date, splits_from: date | None = None
) -> tuple[int, int]:
    """Fetch a date range of bars for each symbol from Polygon into the cache, and its splits (all of
    them, or those from ``splits_from`` on); returns (bar rows changed, splits changed). A stock whose
    quote currency is not recorded yet gets it from its ticker details first (a pair's is in its name)."""
    changed = split_changes = 0
    symbols = [normalize_symbol(s, "symbol") for s in symbols]
    recorded = db.prices.currencies(symbols)
    for symbol in symbols:
        if symbol not in recorded and not is_pair(symbol):
            _record_currency(db, symbol, _ticker_currency(client, symbol))
        bars = client.daily_bars(symbol, start, end)
        splits = client.splits(symbol, splits_from)
        # splits first: a late split and the unadjusted bars around it land before the re-derivation
        split_changes += db.prices.write_splits(splits, "polygon")
        changed += db.prices.write_bars(bars, "polygon")
        db.prices.record_fetch(symbol, start, end)
        log.info(
            "fetched",
            symbol=symbol,
            bars=len(bars),
            splits=len(splits),
            changed=changed,
            start=start.isoformat(),
            end=end.isoformat(),
        )
    return changed, split_changes


def _ticker_currency(client: PolygonClient, symbol: str) -> str | None:
    """The stock's currency from Polygon; a refusal of the details alone (a plan without them: 4xx)
    leaves it unknown (asked again next fetch) rather than failing the bars."""
    try:
        return client.ticker_currency(symbol)
    except PolygonError as exc:
        if exc.status_code is None or exc.status_code == 429 or exc.status_code >= 500:
            raise
        log.warning("currency_unknown", symbol=symbol, error=str(exc))
        return None


def _record_currency(db: Database, symbol: str, currency: str | None) -> None:
    if currency is None:
        return
    try:
        db.prices.record_currencies({symbol: currency}, "polygon")
    except CurrencyConflict as exc:  # recorded meanwhile (a file) as another: the record stands
        log.warning("currency_conflict", symbol=symbol, error=str(exc))


def years_before(day: date, years: int) -> date:
    """The same calendar day ``years`` earlier; 29 February falls back to the 28th."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def _invented(symbol: str) -> bool:
    """A demo symbol or FX pair (``DEMO-SPY``, ``C:DEMO...``): invented prices, nothing to fetch."""
    return symbol.startswith(DEMO_PREFIX) or (symbol.startswith(FX_PREFIX) and "DEMO" in symbol)


class MarketDataDaemon:
    def __init__(self, db: Database, client: PolygonClient, today=lambda: datetime.now(UTC).date()):
        self.db, self.client, self.today = db, client, today
        self.symbols = SymbolReads(db.datastore)

    def fx_pairs(self) -> dict[str, bool]:
        """The FX symbols strategies need, with whether one is needed now (a symbol held now, a benchmark):
        ``C:<quote><base>`` for each symbol a strategy ever held (and its benchmark) quoted in another
        currency than the strategy's base (USD unless set). Demo symbols need none."""
        bases = self.db.identity.base_currencies_in_use()
        by_strategy = self.symbols.by_strategy()
        benchmarks = {sid: self.db.identity.benchmark(sid) for sid in bases}
        all_benchmarks = self.db.identity.benchmarks_in_use()
        every = {s for symbols in by_strategy.values() for s in symbols} | all_benchmarks
        recorded = self.db.prices.currencies(every | {b for b in benchmarks.values() if b})
        pairs: dict[str, bool] = {}

        def need(symbol: str, base: str, now: bool) -> None:
            currency = quote_currency(symbol, recorded)
            if currency != base and not _invented(symbol):
                pair = fx_symbol(currency, base)
                pairs[pair] = pairs.get(pair, False) or now

        for sid, symbols in by_strategy.items():
            for symbol, now in symbols.items():
                need(symbol, bases.get(sid, USD), now)
        for sid, benchmark in benchmarks.items():
            if benchmark:
                need(benchmark, bases[sid], True)
        for benchmark in all_benchmarks:  # of every strategy: a USD one's may be quoted in another currency
            need(benchmark, USD, True)
        return pairs

    def wanted(self) -> tuple[list[str], list[str]]:
        """(symbols never fetched, symbols due for their daily refresh): held symbols, benchmarks and the
        FX pairs they need."""
        held = self.db.ledger.symbols_in_use()  # ever held -> held now
        for benchmark in self.db.identity.benchmarks_in_use():
            held[benchmark] = True
        for pair, needed_now in self.fx_pairs().items():
            held[pair] = held.get(pair, False) or needed_now
        symbols = sorted(s for s in held if not _invented(s))
        status = self.db.prices.fetch_status(symbols)
        now = datetime.now(UTC)
        new = [s for s in symbols if status.get(s, (None, None))[0] is None]
        due = [
            s
            for s, (fetched, refreshed) in ((s, status.get(s, (None, None))) for s in symbols)
            if fetched is not None and held[s] and (refreshed is None or now - refreshed >= REFRESH_EVERY)
        ]
        return new, due

    def tick(self) -> int:
        """One pass: history for new symbols, recent bars for due ones. Errors are recorded, not raised."""
        today = self.today()
        new, due = self.wanted()
        history = years_before(today, HISTORY_YEARS)
        plan = [(s, history, None) for s in new] + [
            (s, today - timedelta(days=REFRESH_DAYS), today - timedelta(days=REFRESH_DAYS)) for s in due
        ]
        changed = self._fetch(plan, today)
        if new:  # their currencies are recorded now: the FX pairs they need, in the same pass
            changed += self._fetch([(s, history, None) for s in self.wanted()[0] if s not in new], today)
        return changed

    def _fetch(self, plan: list[tuple[str, date, date | None]], today: date) -> int:
        changed = 0
        for symbol, start, splits_from in plan:
            try:
                changed += sum(fetch(self.db, self.client, [symbol], start, today, splits_from))
            except PolygonError as exc:
                log.warning("fetch_failed", symbol=symbol, error=str(exc))
                self.db.prices.record_fetch_error(symbol, str(exc))
        return changed

    def run(self, interval_s: float = 30.0, stop=lambda: False) -> None:
        while not stop():
            try:
                self.tick()
            except Exception as exc:  # database restarting and the like: try again later
                log.warning("market_data_tick_failed", error=str(exc))
            deadline = time.monotonic() + interval_s
            while not stop() and time.monotonic() < deadline:
                time.sleep(0.5)
