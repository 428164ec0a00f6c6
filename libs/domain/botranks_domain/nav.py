"""Daily NAV derivation: walk a strategy's events and the price calendar day by day.

DESIGN "NAV and performance": NAV = cash + sum(quantity * close * fx), marked at the last
close on or before the day (a symbol with no close yet is marked at its cost basis); ``fx`` is
the rate of the symbol's quote currency into the strategy's base currency on that day
(botranks_domain.currency; 1 when they are the same), and a fill moves cash at its day's rate.
NAV days are those on which the benchmark, or a symbol held at the end of the day, has a
bar. Events on other days (a Saturday deposit in a stock-only strategy) land in the next
NAV day. Deposits/withdrawals and the market value a snapshot adds or removes are the
day's external flow (valued at that NAV day's marks).

Closes are as traded (unadjusted); a stock split applies at the start of its ex-date
(DESIGN "Prices and splits"). The state carries the day whose share units it is in
(``as_of``): before an event of day d, or the marks of NAV day d, every split of a held
symbol with ex-date in (as_of, d] is applied, so events before an ex-date are read in
pre-split units and events on or after it in post-split units, whatever order they
arrived in. A close older than the day it marks is converted to that day's units.

``derive`` is resumable: it starts from a ``LedgerState`` (the state after the last NAV
day before the re-derived range) and returns the new NAV rows, an end-of-day checkpoint
for every event day, reconciliation deltas, and the final state.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, localcontext

import msgspec

from .bars import Split
from .currency import FxRates
from .ledger import LEDGER_CONTEXT, ONE, ZERO, Delta, Holding, Ledger, SplitApplied
from .model import EFFECTIVE_STATUSES, LedgerEvent, OrderRecorded, PositionsSnapshotted, symbols_of
from .trades import ClosedTrade, OpenTrade, TradeBook

CHECKPOINT_EVERY = timedelta(days=28)


class PriceBook:
    """Closes (as traded) and splits by symbol, answering "last close on or before day d, in the
    share units of day d" by bisection."""

    def __init__(self, closes: dict[str, list[tuple[date, Decimal]]], splits: Iterable[Split] = ()) -> None:
        self._dates = {s: [d for d, _ in rows] for s, rows in closes.items()}
        self._closes = {s: [c for _, c in rows] for s, rows in closes.items()}
        self._bar_days = {s: set(ds) for s, ds in self._dates.items()}
        by_symbol: dict[str, list[Split]] = defaultdict(list)
        for split in sorted(splits, key=lambda sp: (sp.symbol, sp.ex_date)):
            by_symbol[split.symbol].append(split)
        self._splits = dict(by_symbol)
        self._split_days = {s: [sp.ex_date for sp in rows] for s, rows in by_symbol.items()}

    def close(self, symbol: str, day: date) -> Decimal | None:
        """The last close on or before ``day``; when a split's ex-date falls after that close and on
        or before ``day``, the close converted to post-split units (x from/to)."""
        dates = self._dates.get(symbol)
        if not dates:
            return None
        i = bisect.bisect_right(dates, day)
        if not i:
            return None
        close = self._closes[symbol][i - 1]
        if symbol in self._splits and dates[i - 1] < day:
            for split in self.splits_between(symbol, dates[i - 1], day):
                close = LEDGER_CONTEXT.divide(LEDGER_CONTEXT.multiply(close, split.split_from), split.split_to)
        return close

    def splits_between(self, symbol: str, after: date | None, until: date) -> list[Split]:
        """``symbol``'s splits with ex-date in (after, until], oldest first."""
        days = self._split_days.get(symbol)
        if not days:
            return []
        lo = 0 if after is None else bisect.bisect_right(days, after)
        return self._splits[symbol][lo : bisect.bisect_right(days, until)]

    def has_splits(self) -> bool:
        return bool(self._splits)

    def has_bar(self, symbol: str, day: date) -> bool:
        return day in self._bar_days.get(symbol, ())

    def bar_days(self, symbols: Iterable[str], start: date | None, end: date) -> set[date]:
        days: set[date] = set()
        for s in symbols:
            dates = self._dates.get(s, [])
            lo = bisect.bisect_left(dates, start) if start else 0
            hi = bisect.bisect_right(dates, end)
            days.update(dates[lo:hi])
        return days

    def latest(self, symbols: Iterable[str], end: date) -> date | None:
        best = None
        for s in symbols:
            dates = self._dates.get(s, [])
            i = bisect.bisect_right(dates, end)
            if i and (best is None or dates[i - 1] > best):
                best = dates[i - 1]
        return best


class _HoldingState(msgspec.Struct, array_like=True):
    symbol: str
    quantity: Decimal
    cost_basis: Decimal
    updated_at: datetime


class LedgerState(msgspec.Struct, kw_only=True):
    """A ledger plus the flows pending for the next NAV day; serializable (checkpoints)."""

    positions: list[_HoldingState] = []
    cash: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    external_flows: Decimal = ZERO
    last_order_at: datetime | None = None
    pending_flow: Decimal = ZERO
    pending_dq: dict[str, Decimal] = {}
    #: the day whose share units the quantities are in: every split with ex-date on or before it is
    #: applied (None: no day yet, or a state written before splits existed; see ``dated``)
    as_of: date | None = None
    #: the open trades (None: a state written before trades existed, which the projector re-derives)
    trades: list[OpenTrade] | None = None

    @classmethod
    def of(
        cls, ledger: Ledger, pending_flow: Decimal, pending_dq: dict[str, Decimal], as_of: date | None
    ) -> LedgerState:
        return cls(
            positions=[_HoldingState(s, h.quantity, h.cost_basis, h.updated_at) for s, h in ledger.positions.items()],
            cash=ledger.cash,
            realized_pnl=ledger.realized_pnl,
            external_flows=ledger.external_flows,
            last_order_at=ledger.last_order_at,
            pending_flow=pending_flow,
            pending_dq={s: q for s, q in pending_dq.items() if q},
            as_of=as_of,
            trades=[msgspec.structs.replace(t) for t in ledger.trades.open.values()],
        )

    def dated(self, day: date | None) -> LedgerState:
        """This state, with ``as_of`` set to ``day`` when it has none (read models written before
        splits existed: their states are in the units of the day they were taken)."""
        if self.as_of is None:
            self.as_of = day
        return self

    def ledger(self) -> Ledger:
        return Ledger(
            positions={p.symbol: Holding(p.quantity, p.cost_basis, p.updated_at) for p in self.positions},
            cash=self.cash,
            realized_pnl=self.realized_pnl,
            external_flows=self.external_flows,
            last_order_at=self.last_order_at,
            trades=TradeBook({t.symbol: msgspec.structs.replace(t) for t in self.trades or ()}),
        )


_state_encoder = msgspec.msgpack.Encoder(decimal_format="string")
_state_decoder = msgspec.msgpack.Decoder(LedgerState)


def encode_state(state: LedgerState) -> bytes:
    return _state_encoder.encode(state)


def decode_state(data: bytes) -> LedgerState:
    return _state_decoder.decode(data)


class NavRow(msgspec.Struct):
    """One day of a strategy's NAV history: what the fold derives, ``rm_nav_daily`` keeps and ``/nav`` shows."""

    date: date
    cash: Decimal
    market_value: Decimal
    total_equity: Decimal
    external_flow: Decimal


@dataclass
class Derivation:
    nav: list[NavRow] = field(default_factory=list)
    #: the splits applied to holdings with ex-date after ``actions_after`` (the start state's
    #: ``as_of``), up to the derivation's last day: they replace what was recorded after that day
    actions: list[SplitApplied] = field(default_factory=list)
    actions_after: date | None = None
    #: the ledger in the share units of the derivation's last day (positions to publish and mark)
    current: Ledger | None = None
    checkpoints: list[tuple[date, LedgerState]] = field(default_factory=list)
    reconciliation: list[tuple[PositionsSnapshotted, Delta]] = field(default_factory=list)
    #: per snapshot: (snapshot id, upserted, removed, reconciliation entries)
    snapshots: list[tuple[object, int, int, int]] = field(default_factory=list)
    final: LedgerState | None = None
    #: (last event day, state right after the last event): see ``derive``
    tail: tuple[date, LedgerState] | None = None
    #: the trades the derived events ended (closed or reset), in the order they ended
    ended: list[ClosedTrade] = field(default_factory=list)


#: the NAV row's columns, in order (``/nav`` as CSV)
NAV_COLUMNS: tuple[str, ...] = NavRow.__struct_fields__


def _mark(prices: PriceBook, symbol: str, day: date, fallback: Decimal) -> Decimal:
    close = prices.close(symbol, day)
    return fallback if close is None else close


def derive(
    start: LedgerState,
    events: list[LedgerEvent],
    prices: PriceBook,
    benchmark: str | None,
    after: date | None,
    until: date,
    inception: date | None,
    last_checkpoint: date | None = None,
    fx: FxRates | None = None,
) -> Derivation:
    """NAV rows for the days in (after, until], folding ``events`` (sorted) onto ``start``.

    ``fx`` converts the instruments quoted in another currency than the base (None: every one is in
    the base); a fill, snapshot or mark it has no rate for raises ``MissingRate``.

    ``inception`` is the strategy's first event day: no NAV day precedes it. Events dated
    on or before ``after`` are folded without NAV rows (their flows belong to NAV days that
    already exist). Checkpoints are sparse: an event day at least ``CHECKPOINT_EVERY`` after
    ``last_checkpoint`` gets one (and ``last_checkpoint`` itself is refreshed when it has
    new events), so a re-derivation folds at most that span of events before its range.

    ``tail`` is the state right after the last event, before its day's NAV row consumed the
    pending flows (only when that day is in the derived range, where those flows are exact):
    events appended after it on already-priced days continue from there, re-folding nothing.
    """
    with localcontext(LEDGER_CONTEXT):
        return _derive(start, events, prices, benchmark, after, until, inception, last_checkpoint, fx)


def _derive(
    start: LedgerState,
    events: list[LedgerEvent],
    prices: PriceBook,
    benchmark: str | None,
    after: date | None,
    until: date,
    inception: date | None,
    last_checkpoint: date | None,
    fx: FxRates | None,
) -> Derivation:
    ledger = start.ledger()

    def rate(symbol: str, day: date) -> Decimal:
        return ONE if fx is None else fx.required(symbol, day)

    pending_flow = start.pending_flow
    pending_dq: dict[str, Decimal] = defaultdict(lambda: ZERO, start.pending_dq)
    as_of = start.as_of
    out = Derivation(actions_after=as_of)

    def catch_up(day: date, target: Ledger, record: list[SplitApplied]) -> None:
        """Apply the splits of held symbols with ex-date in (as_of, day], in date order."""
        due = sorted(
            (
                sp
                for s in set(target.positions) | {s for s, q in pending_dq.items() if q}
                for sp in prices.splits_between(s, as_of, day)
            ),
            key=lambda sp: (sp.ex_date, sp.symbol),
        )
        for split in due:
            applied = target.apply_split(split.symbol, split.ex_date, split.split_from, split.split_to)
            if applied is not None:
                record.append(applied)
            if target is ledger and pending_dq.get(split.symbol):
                pending_dq[split.symbol] = pending_dq[split.symbol] * split.split_to / split.split_from

    has_splits = prices.has_splits()
    event_days = [e.effective_at.date() for e in events]
    symbols = set(ledger.positions) | set(pending_dq) | ({benchmark} if benchmark else set()) | symbols_of(events)
    if inception is None:
        candidates: set[date] = set()
    else:
        lower = inception if after is None or after < inception else after + timedelta(days=1)
        candidates = prices.bar_days(symbols, lower, until)
    i = 0
    for day in sorted(candidates | set(event_days)):
        had_events = False
        if i < len(events) and event_days[i] == day:
            if has_splits:
                catch_up(day, ledger, out.actions)
            as_of = day if as_of is None or day > as_of else as_of
        while i < len(events) and event_days[i] == day:
            event = events[i]
            had_events = True
            if fx is not None and isinstance(event, OrderRecorded) and event.order.status in EFFECTIVE_STATUSES:
                deltas = ledger.apply_in_context(event, rate(event.order.symbol, day))
            else:
                deltas = ledger.apply_in_context(event)
            pending_flow += event.external_flow
            if deltas is not None and isinstance(event, PositionsSnapshotted):
                # a snapshot: the market value it adds or removes is a flow
                for d in deltas:
                    pending_dq[d.symbol] += d.snapshot_quantity - d.derived_quantity
                    if event.snapshot.log_deltas:
                        out.reconciliation.append((event, d))
                removed = sum(1 for d in deltas if d.derived_quantity and not d.snapshot_quantity)
                out.snapshots.append(
                    (event.snapshot.id, len(ledger.positions), removed, len(deltas) if event.snapshot.log_deltas else 0)
                )
            i += 1
        if had_events and i == len(events) and (after is None or day > after):
            out.tail = (day, LedgerState.of(ledger, pending_flow, pending_dq, as_of))
        if after is not None and day <= after:
            pending_flow = ZERO
            pending_dq.clear()
        is_nav_day = day in candidates and (
            (benchmark is not None and prices.has_bar(benchmark, day))
            or any(prices.has_bar(s, day) for s in ledger.positions)
        )
        if is_nav_day:
            if has_splits:
                catch_up(day, ledger, out.actions)
            as_of = day if as_of is None or day > as_of else as_of
            market_value = sum(
                (h.quantity * _mark(prices, s, day, h.cost_basis) * rate(s, day) for s, h in ledger.positions.items()),
                ZERO,
            )
            flow = pending_flow + sum(
                (
                    dq
                    * _mark(prices, s, day, ledger.positions[s].cost_basis if s in ledger.positions else ZERO)
                    * rate(s, day)
                    for s, dq in pending_dq.items()
                    if dq
                ),
                ZERO,
            )
            out.nav.append(NavRow(day, ledger.cash, market_value, ledger.cash + market_value, flow))
            pending_flow = ZERO
            pending_dq.clear()
        if had_events and (
            last_checkpoint is None or day == last_checkpoint or day - last_checkpoint >= CHECKPOINT_EVERY
        ):
            out.checkpoints.append((day, LedgerState.of(ledger, pending_flow, pending_dq, as_of)))
            last_checkpoint = day
    out.ended = ledger.trades.ended
    out.final = LedgerState.of(ledger, pending_flow, pending_dq, as_of)
    # the positions as of the last day (a split whose ex-date has come, even before its first bar)
    current = out.final.ledger()
    if has_splits:
        catch_up(until, current, out.actions)
    out.current = current
    return out
