"""A strategy's ``rm_ledger`` row (:class:`LedgerRow`), and what a projection batch reads of each of its
strategies before folding them (:func:`read_strategies`): one statement per table for the whole batch
instead of one per strategy and table (those round trips were most of a live order's projection)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

import msgspec

from botranks_domain.ledger import Holding

from ..pg import DictCursor


class LedgerRow(msgspec.Struct, kw_only=True):
    """A strategy's ``rm_ledger`` row: its current figures (what ``/state`` shows) and where its fold
    stands. ``state``: the state after its last event; ``tail_state``: the state right after the last
    event, before that day's NAV row (from ``tail_day``); both ``encode_state`` bytes."""

    strategy_id: UUID
    cash_balance: Decimal
    realized_pnl: Decimal
    external_flows: Decimal
    market_value: Decimal
    total_equity: Decimal
    captured_at: datetime
    last_order_at: datetime | None
    last_effective_at: datetime
    last_notification_id: int
    state: bytes | None
    inception_date: date | None
    tail_day: date | None
    tail_state: bytes | None

    @property
    def last_key(self) -> tuple[datetime, int]:
        """Where its last event sits in fold order: (effective time, notification id)."""
        return self.last_effective_at, self.last_notification_id


#: rm_ledger's columns, as LedgerRow's fields (its ``updated_at`` is the clock of the write)
LEDGER_COLUMNS = ", ".join(LedgerRow.__struct_fields__)


@dataclass(frozen=True)
class StrategyReads:
    """What the fold of a strategy's new events starts from: its ledger row (locked for the
    transaction), its last NAV and checkpoint days, its positions as stored."""

    row: LedgerRow | None
    last_nav: date | None
    last_checkpoint: date | None
    positions: dict[str, Holding] = field(default_factory=dict)
    #: the last NAV day before the row's ``tail_day``, and the last checkpoint day on or before it
    nav_before_tail: date | None = None
    checkpoint_through_tail: date | None = None


def read_strategies(curs: DictCursor, strategy_ids: Sequence[UUID]) -> dict[UUID, StrategyReads]:
    """:class:`StrategyReads` of each of ``strategy_ids``, in three statements; the ledger rows are
    locked in id order (``FOR UPDATE``)."""
    ids = sorted(set(strategy_ids))
    rows = {
        r["strategy_id"]: LedgerRow(**r)
        for r in curs.execute(
            f"SELECT {LEDGER_COLUMNS} FROM rm_ledger WHERE strategy_id = ANY(%s) ORDER BY strategy_id FOR UPDATE",
            (ids,),
        ).fetchall()
    }
    # one backward index probe per strategy and table (a GROUP BY would walk every row of each)
    days = curs.execute(
        "SELECT s AS strategy_id, (SELECT max(date) FROM rm_nav_daily WHERE strategy_id = s) AS nav,"
        " (SELECT max(date) FROM rm_checkpoints WHERE strategy_id = s) AS checkpoint,"
        " (SELECT max(date) FROM rm_nav_daily WHERE strategy_id = s AND date < l.tail_day) AS nav_before_tail,"
        " (SELECT max(date) FROM rm_checkpoints WHERE strategy_id = s AND date <= l.tail_day)"
        " AS checkpoint_through_tail"
        " FROM unnest(%s::uuid[]) AS s LEFT JOIN rm_ledger AS l ON l.strategy_id = s",
        (ids,),
    ).fetchall()
    positions: dict[UUID, dict[str, Holding]] = defaultdict(dict)
    for r in curs.execute(
        "SELECT strategy_id, symbol, quantity, cost_basis, updated_at FROM rm_positions WHERE strategy_id = ANY(%s)",
        (ids,),
    ).fetchall():
        positions[r["strategy_id"]][r["symbol"]] = Holding(r["quantity"], r["cost_basis"], r["updated_at"])
    return {
        (sid := d["strategy_id"]): StrategyReads(
            rows.get(sid), d["nav"], d["checkpoint"], positions[sid], d["nav_before_tail"], d["checkpoint_through_tail"]
        )
        for d in days
    }
