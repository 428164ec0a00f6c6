"""The bars as the sample bots see them: closes as traded, split-adjusted closes, the splits,
the US trading days and look-backs; and the dividends the demo's stocks pay."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal

from botranks_domain.bars import Bar, Split

from ..synthetic import synthetic_splits

KO_DIVIDEND_PER_SHARE = Decimal("0.46")
XOM_DIVIDEND_PER_SHARE = Decimal("0.91")
SPY_DIVIDEND_YIELD = Decimal("0.0035")  # of the holding's value, each quarter


class Market:
    """The bars as the bots see them: closes by day as traded (``closes``: what orders carry and
    holdings are marked at), split-adjusted closes (``adjusted``: what signals read), the splits of
    the bars' range, the US trading days, and look-backs (adjusted)."""

    def __init__(self, bars: list[Bar]) -> None:
        closes: dict[date, dict[str, Decimal]] = defaultdict(dict)
        for bar in bars:
            closes[bar.date][bar.symbol] = bar.close
        self.closes = dict(closes)
        self.days = sorted(closes)
        self.splits = synthetic_splits(self.days[0], self.days[-1]) if self.days else []

        def adjust(symbol: str, day: date, close: Decimal) -> Decimal:
            for sp in self.splits:
                if sp.symbol == symbol and sp.ex_date > day:
                    close = close * sp.split_from / sp.split_to
            return close

        self.adjusted = {day: {s: adjust(s, day, c) for s, c in row.items()} for day, row in self.closes.items()}
        self.trading_days = [d for d in self.days if "DEMO-SPY" in closes[d]] or self.days
        self.index_of = {d: i for i, d in enumerate(self.trading_days)}
        self.history: dict[str, list[tuple[date, Decimal]]] = defaultdict(list)
        for day in self.days:
            for symbol, close in self.adjusted[day].items():
                self.history[symbol].append((day, close))
        self.position_of = {(s, d): i for s, rows in self.history.items() for i, (d, _) in enumerate(rows)}

    def splits_between(self, after: date | None, until: date) -> list[Split]:
        """The splits with ex-date in (``after``, ``until``], oldest first."""
        return [sp for sp in self.splits if (after is None or sp.ex_date > after) and sp.ex_date <= until]

    def month_starts(self) -> set[date]:
        """The first US trading day of each month."""
        t = self.trading_days
        return {d for i, d in enumerate(t) if i == 0 or (d.year, d.month) != (t[i - 1].year, t[i - 1].month)}

    def quarter_days(self) -> set[date]:
        """The first US trading day on or after the 15th of March, June, September and December."""
        seen: set[tuple[int, int]] = set()
        out: set[date] = set()
        for d in self.trading_days:
            if d.month in (3, 6, 9, 12) and d.day >= 15 and (d.year, d.month) not in seen:
                seen.add((d.year, d.month))
                out.add(d)
        return out

    def lookback(self, symbol: str, day: date, n: int) -> list[float] | None:
        """The last ``n`` + 1 split-adjusted closes of ``symbol`` up to ``day`` (its own calendar), or None."""
        i = self.position_of.get((symbol, day))
        if i is None or i < n:
            return None
        return [float(c) for _, c in self.history[symbol][i - n : i + 1]]
