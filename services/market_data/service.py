"""The market-data component: the only writer of the ``prices`` and ``splits`` caches.

Closes are kept as traded (unadjusted) and stock splits beside them; the fold applies a split
at the start of its ex-date (DESIGN "Prices and splits").

- ``import_files`` loads CSV/Parquet price files; ``import_split_files`` loads split CSVs;
  ``fetch`` pulls a range of bars and the symbol's splits from Polygon.
- ``MarketDataDaemon`` (when ``BOTRANKS_POLYGON_API_KEY`` is set) fetches the history (bars and
  splits) of every symbol that appears in a strategy (orders, snapshots) or as a benchmark and
  has not been fetched yet, and once a day refreshes the recent bars and splits of held symbols
  and benchmarks. Every write records its changes in ``price_updates``, so the projector
  re-derives the strategies concerned (a late split: from its ex-date on).
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import structlog

from libs.infra.db import Database

from .files import read_price_file, read_split_file
from .polygon import PolygonClient, PolygonError
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
        written += write(items, f"file:{Path(path).name}")
    return written, errors


def import_files(db: Database, paths: list[str]) -> tuple[int, list[str]]:
    """Load price files of closes as traded; nothing is written from a file that has any bad row."""
    return _import(paths, read_price_file, db.prices.write_bars)


def import_split_files(db: Database, paths: list[str]) -> tuple[int, list[str]]:
    """Load split files (CSV ``symbol,ex_date,split_from,split_to``); nothing is written from a file
    that has any bad row. Returns (splits new or changed, errors)."""
    return _import(paths, read_split_file, db.prices.write_splits)


def fetch(
    db: Database, client: PolygonClient, symbols: list[str], start: date, end: date, splits_from: date | None = None
) -> tuple[int, int]:
    """Fetch a date range of bars for each symbol from Polygon into the cache, and its splits (all of
    them, or those from ``splits_from`` on); returns (bar rows changed, splits changed)."""
    changed = split_changes = 0
    for symbol in symbols:
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


def years_before(day: date, years: int) -> date:
    """The same calendar day ``years`` earlier; 29 February falls back to the 28th."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


class MarketDataDaemon:
    def __init__(self, db: Database, client: PolygonClient, today=lambda: datetime.now(UTC).date()):
        self.db, self.client, self.today = db, client, today

    def wanted(self) -> tuple[list[str], list[str]]:
        """(symbols never fetched, symbols due for their daily refresh)."""
        held = self.db.ledger.symbols_in_use()  # ever held -> held now
        for benchmark in self.db.identity.benchmarks_in_use():
            held[benchmark] = True
        symbols = sorted(s for s in held if not s.startswith(DEMO_PREFIX))  # invented: nothing to fetch
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
        changed = 0
        plan = [(s, years_before(today, HISTORY_YEARS), None) for s in new] + [
            (s, today - timedelta(days=REFRESH_DAYS), today - timedelta(days=REFRESH_DAYS)) for s in due
        ]
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
