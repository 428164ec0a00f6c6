"""``botranks trades``: a strategy's round trips over the API, as a table, JSON lines or CSV."""

from __future__ import annotations

import argparse
import csv
import sys

import msgspec

from .common import guarded
from .reads import _num, _pct, _reader, _when

#: the CSV's columns: every field of a published trade, in the API's order
CSV_COLUMNS = (
    "id", "symbol", "direction", "status", "opened_at", "closed_at", "quantity_open", "max_quantity", "entry_price",
    "exit_price", "quantity_closed", "fees", "realized_pnl", "return", "holding_days", "fills",
)  # fmt: skip


@guarded
def cmd_trades(args: argparse.Namespace) -> None:
    filters = {"status": args.status, "symbol": args.symbol, "from_": args.from_, "to": args.to}
    with _reader(args) as client:
        trades = list(client.trades(**filters))
    if args.json:  # one trade a line: as the API sends it
        for t in trades:
            sys.stdout.write(msgspec.json.encode(t).decode() + "\n")
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
    for name in ("Opened", "Closed", "Symbol", "Side", "Status", "Max qty", "Entry", "Exit", "P&L", "Return", "Days"):
        table.add_column(name, justify="left" if name in ("Opened", "Closed", "Symbol", "Side", "Status") else "right")
    for t in trades:
        table.add_row(
            _when(t.opened_at),
            _when(t.closed_at),
            t.symbol,
            t.direction,
            t.status,
            _num(t.max_quantity),
            _num(t.entry_price, 4),
            _num(t.exit_price, 4),
            _num(t.realized_pnl, 2),
            _pct(t.return_),
            f"{t.holding_days:.1f}",
        )
    Console().print(table if trades else "[dim]no trades yet[/]")
