"""The market-data component: the only writer of the ``prices`` cache.

- ``import_files`` loads CSV/Parquet files; ``fetch`` pulls a range from Polygon.
- ``MarketDataDaemon`` (when ``BOTRANKS_POLYGON_API_KEY`` is set) fetches the history of
  every symbol that appears in a strategy (orders, snapshots) or as a benchmark and has
  not been fetched yet, and once a day refreshes the recent bars of held symbols and
  benchmarks. Every write records its changes in ``price_updates``, so the projector
  re-marks the strategies concerned.
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import structlog

from libs.infra.store import EventStore

from .bars import Bar
from .files import read_price_file
from .synthetic import DEMO_PREFIX
from .polygon import PolygonClient, PolygonError
from .writer import upsert_bars

log = structlog.get_logger(component="market_data")

HISTORY_YEARS = 5
REFRESH_DAYS = 7
REFRESH_EVERY = timedelta(hours=24)


def write_bars(store: EventStore, bars: list[Bar], source: str) -> int:
    """Upsert bars and their outbox rows in one transaction."""
    with store.transaction() as curs:
        return upsert_bars(curs, bars, source)


def import_files(store: EventStore, paths: list[str]) -> tuple[int, list[str]]:
    """Load price files; nothing is written from a file that has any bad row."""
    written, errors = 0, []
    for path in paths:
        try:
            bars, problems = read_price_file(path)
        except (OSError, ValueError) as exc:
            errors.append(f"{path}: {exc}")
            continue
        if problems:
            errors.extend(problems)
            continue
        written += write_bars(store, bars, f"file:{Path(path).name}")
    return written, errors


def fetch(store: EventStore, client: PolygonClient, symbols: list[str], start: date, end: date) -> int:
    """Fetch a date range for each symbol from Polygon into the cache; returns rows changed."""
    changed = 0
    for symbol in symbols:
        bars = client.daily_bars(symbol, start, end)
        changed += write_bars(store, bars, "polygon")
        with store.transaction() as curs:
            curs.execute(
                "INSERT INTO market_data_symbols (symbol, fetched_from, fetched_through, refreshed_at)"
                " VALUES (%s, %s, %s, now()) ON CONFLICT (symbol) DO UPDATE SET"
                " fetched_from = least(market_data_symbols.fetched_from, EXCLUDED.fetched_from),"
                " fetched_through = greatest(market_data_symbols.fetched_through, EXCLUDED.fetched_through),"
                " refreshed_at = now(), last_error = NULL",
                (symbol, start, end))
        log.info("fetched", symbol=symbol, bars=len(bars), changed=changed, start=start.isoformat(),
                 end=end.isoformat())
    return changed


class MarketDataDaemon:
    def __init__(self, store: EventStore, client: PolygonClient, today=lambda: datetime.now(timezone.utc).date()):
        self.store, self.client, self.today = store, client, today

    def wanted(self) -> tuple[list[str], list[str]]:
        """(symbols never fetched, symbols due for their daily refresh)."""
        with self.store.cursor() as curs:
            rows = curs.execute(
                "WITH needed AS ("
                " SELECT DISTINCT symbol, false AS held FROM rm_strategy_symbols"
                " UNION SELECT DISTINCT symbol, true FROM rm_positions"
                " UNION SELECT DISTINCT benchmark, true FROM strategies WHERE benchmark <> '')"
                " SELECT n.symbol, bool_or(n.held) AS held, m.fetched_through, m.refreshed_at"
                " FROM needed n LEFT JOIN market_data_symbols m USING (symbol)"
                " GROUP BY n.symbol, m.fetched_through, m.refreshed_at ORDER BY n.symbol").fetchall()
        now = datetime.now(timezone.utc)
        rows = [r for r in rows if not r["symbol"].startswith(DEMO_PREFIX)]  # invented: nothing to fetch
        new = [r["symbol"] for r in rows if r["fetched_through"] is None]
        due = [r["symbol"] for r in rows if r["fetched_through"] is not None and r["held"]
               and (r["refreshed_at"] is None or now - r["refreshed_at"] >= REFRESH_EVERY)]
        return new, due

    def tick(self) -> int:
        """One pass: history for new symbols, recent bars for due ones. Errors are recorded, not raised."""
        today = self.today()
        new, due = self.wanted()
        changed = 0
        plan = [(s, today.replace(year=today.year - HISTORY_YEARS)) for s in new] + \
               [(s, today - timedelta(days=REFRESH_DAYS)) for s in due]
        for symbol, start in plan:
            try:
                changed += fetch(self.store, self.client, [symbol], start, today)
            except PolygonError as exc:
                log.warning("fetch_failed", symbol=symbol, error=str(exc))
                with self.store.transaction() as curs:
                    curs.execute(
                        "INSERT INTO market_data_symbols (symbol, refreshed_at, last_error) VALUES (%s, now(), %s)"
                        " ON CONFLICT (symbol) DO UPDATE SET refreshed_at = now(), last_error = EXCLUDED.last_error",
                        (symbol, str(exc)))
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
