"""The ingest's FX guard (issue 23): a fill or a snapshot of an instrument quoted in another currency
than the strategy's base needs an FX rate on or before its day, else 422 ``No FX rate for EUR/USD at
2026-04-18`` and nothing of its batch is stored (docs/NOTES.md "Currencies")."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from datetime import date
from uuid import UUID

from botranks_domain.currency import missing_rate, needed_rate_symbols, quote_currency
from botranks_domain.errors import NoFxRate
from libs.infra.db import Database

#: how long a strategy's base currency is trusted in this process (a change re-derives anyway; this only
#: decides which batches are checked against which rates for a moment after it)
BASE_TTL_S = 2.0


class RateGuard:
    """Checks (symbol, UTC day) pairs of a strategy against the stored FX rates."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._bases: dict[UUID, tuple[float, str]] = {}
        self._currencies: dict[str, str] = {}  # recorded currencies never change: cached once seen
        self._unrecorded: dict[str, float] = {}  # symbols without a row, when last asked (for BASE_TTL_S)
        self._lock = threading.Lock()

    def check(self, strategy_id: UUID, wanted: Iterable[tuple[str, date]]) -> None:
        """``NoFxRate`` for the first pair whose currency has no rate into the base on its day."""
        wanted = set(wanted)
        if not wanted:
            return
        base = self._base(strategy_id)
        recorded = self._recorded({s for s, _ in wanted})
        foreign = {(s, d) for s, d in wanted if quote_currency(s, recorded) != base}
        if not foreign:
            return
        symbols = needed_rate_symbols({s for s, _ in foreign}, base, recorded)
        missing = missing_rate(foreign, base, recorded, self.db.prices.first_closes(symbols))
        if missing is not None:
            raise NoFxRate(f"{missing}: load rates first (`botranks prices import`, or the market-data daemon)")

    def _base(self, strategy_id: UUID) -> str:
        now = time.monotonic()
        with self._lock:
            cached = self._bases.get(strategy_id)
        if cached is not None and now - cached[0] < BASE_TTL_S:
            return cached[1]
        base = self.db.identity.base_currency(strategy_id)
        with self._lock:
            if len(self._bases) > 100_000:
                self._bases.clear()
            self._bases[strategy_id] = (now, base)
        return base

    def _recorded(self, symbols: set[str]) -> dict[str, str]:
        now = time.monotonic()
        with self._lock:
            known = {s: self._currencies[s] for s in symbols if s in self._currencies}
            fresh = {s for s in symbols if now - self._unrecorded.get(s, -BASE_TTL_S) < BASE_TTL_S}
        unknown = symbols - known.keys() - fresh
        if unknown:
            found = self.db.prices.currencies(unknown)
            with self._lock:
                if len(self._currencies) > 100_000 or len(self._unrecorded) > 100_000:
                    self._currencies.clear()
                    self._unrecorded.clear()
                self._currencies.update(found)
                self._unrecorded.update({s: now for s in unknown - found.keys()})
            known.update(found)
        return known


def check_base_change(db: Database, strategy_id: UUID, new_base: str | None) -> None:
    """``NoFxRate`` when the strategy's history has a fill or snapshot that ``new_base`` has no rate for
    (the re-derivation in the new currency could not convert it); nothing to check for no change."""
    if new_base is None or new_base == db.identity.base_currency(strategy_id):
        return
    uses = db.ledger.first_uses(strategy_id)
    recorded = db.prices.currencies({s for s, _ in uses})
    foreign = {(s, d) for s, d in uses if quote_currency(s, recorded) != new_base}
    if not foreign:
        return
    symbols = needed_rate_symbols({s for s, _ in foreign}, new_base, recorded)
    missing = missing_rate(foreign, new_base, recorded, db.prices.first_closes(symbols))
    if missing is not None:
        raise NoFxRate(f"base_currency: cannot change to {new_base}: {missing} (load rates first)")
