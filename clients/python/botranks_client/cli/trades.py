"""``botranks trades``: a strategy's round trips over the API, as a table, JSON lines or CSV."""

from __future__ import annotations

import argparse
import csv
import sys

import msgspec

from botranks_domain.trade_stats import Trade

from .common import guarded
from .reads import _json, _num, _pct, _reader, _when, in_ccy

#: the CSV's columns: every field of a published trade, in the API's order (``currency`` and
#: ``realized_pnl_base`` included: entry, exit and ``realized_pnl`` in the former, fees in the base)
CSV_COLUMNS = tuple(f.encode_name for f in msgspec.structs.fields(Trade))


@guarded
def cmd_trades(args: argparse.Namespace) -> None:
    filters = {"status": args.status, "symbol": args.symbol, "from_": args.from_, "to": args.to}
    with _reader(args) as client:
        trades = list(client.trades(**filters))
        # the table's P&L is in the base currency: say which (one more read; JSON and CSV need none)
        base = None if args.json or args.csv or not trades else client.state().base_currency
    if args.json:  # one trade a line: as the API sends it (decimals as exact JSON numbers)
        for t in trades:
            sys.stdout.write(_json.encode(t).decode() + "\n")
        return
    if args.csv:
        out = csv.writer(sys.stdout, lineterminator="\n")
        out.writerow(CSV_COLUMNS)
        for t in trades:
            row = msgspec.to_builtins(t)
            out.writerow(["" if row.get(c) is None else row[c] for c in CSV_COLUMNS])
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Trades", title_justify="left")
    left = ("Opened", "Closed", "Symbol", "Currency", "Side", "Status")
    names = (*left, "Max qty", "Entry", "Exit", in_ccy("P&L", base), "Return", "Days")
    for name in names:
        table.add_column(name, justify="left" if name in left else "right")
    for t in trades:
        pnl = t.realized_pnl if t.realized_pnl_base is None else t.realized_pnl_base
        table.add_row(
            _when(t.opened_at),
            _when(t.closed_at),
            t.symbol,
            t.currency,  # of the entry and exit prices
            t.direction,
            t.status,
            _num(t.max_quantity),
            _num(t.entry_price, 4),
            _num(t.exit_price, 4),
            _num(pnl, 2),
            _pct(t.return_),
            f"{t.holding_days:.1f}",
        )
    Console().print(table if trades else "[dim]no trades yet[/]")
