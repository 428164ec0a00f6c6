"""The argparse of ``orders import``, ``state``, ``performance`` and ``nav`` (added to the ``botranks`` parser)."""

from __future__ import annotations

import argparse
from datetime import date
from decimal import Decimal, InvalidOperation

from .common import DEFAULT_URL
from .importer import DEFAULT_PARALLEL, cmd_orders_import
from .reads import cmd_nav, cmd_performance, cmd_state
from .rows import FIELDS
from .trades import cmd_trades


def _rate(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _connection_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("connection")
    g.add_argument("--url", help=f"base URL of BotRanks (default: BOTRANKS_URL, else {DEFAULT_URL})")
    g.add_argument("--api-key", help="the strategy's API key (default: FQ_API_KEY)")
    g.add_argument("--strategy", help="the strategy id (default: FQ_STRATEGY_ID)")


def _read_flags(p: argparse.ArgumentParser) -> None:
    _connection_flags(p)
    p.add_argument("--json", action="store_true", help="print the API's JSON instead of tables")
    p.add_argument("--retries", type=int, default=2, help="retries of a failed request (default 2)")


IMPORT_HELP = """\
Send a broker's file of fills as orders, 500 a request. CSV (a header row, columns
symbol,side,quantity,price,fees,executed_at,order_id by default; also order_type,status) or JSONL
(one object a line, the same keys), by extension or --format. Empty price: the server uses the
close of executed_at's day. Every row is checked locally first; bad rows are reported with their
line number and not sent, and a row the server refuses is found and reported, the rest sent.

order_id becomes external_order_id. A row without one gets imp-<hash> of its raw symbol, side,
quantity, price, fees and executed_at, plus how many identical rows came before it in the file:
not the line number, so re-running the file, or the file with a header or other rows added or
rows reordered, or a later export that overlaps it, is a no-op (duplicates), while two
identical fills in one file stay two orders.

Exit code: 0 when nothing was rejected, 1 when rows were rejected, 2 on an error."""


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add `orders import`, `state`, `performance` and `nav` to the `botranks` parser."""
    p = sub.add_parser("orders", help="a strategy's orders over the API (import a broker's file)")
    osub = p.add_subparsers(dest="action", required=True)
    c = osub.add_parser(
        "import",
        help="send a CSV/JSONL file of fills as orders (idempotent: re-running is a no-op)",
        description=IMPORT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    c.add_argument("file", help="the file (- for stdin, with --format)")
    c.add_argument("--format", choices=["csv", "jsonl"], help="default: from the extension (.jsonl/.ndjson: jsonl)")
    c.add_argument(
        "--map",
        action="append",
        metavar="FIELD=COLUMN",
        help=f"read FIELD from COLUMN (fields: {', '.join(FIELDS)}); repeatable, e.g."
        " --map symbol=Ticker --map executed_at='Trade Time'",
    )
    c.add_argument(
        "--side-map",
        action="append",
        metavar="VALUE=buy|sell",
        help="what the side column's values mean, e.g. --side-map BOT=buy --side-map SLD=sell"
        " (buy/sell in any case are known)",
    )
    c.add_argument(
        "--time-format", help="strptime format of executed_at, e.g. '%%m/%%d/%%Y %%H:%%M:%%S' (default: ISO-8601)"
    )
    c.add_argument("--tz", default="UTC", help="time zone of executed_at values without an offset (default UTC)")
    c.add_argument("--delimiter", default=",", help="CSV field separator (default ','; 'tab' for tabs)")
    c.add_argument(
        "--skip-lines", type=int, default=0, metavar="N", help="CSV: lines before the header row (a broker's preamble)"
    )
    c.add_argument(
        "--parallel",
        type=int,
        default=DEFAULT_PARALLEL,
        metavar="N",
        help=f"requests in flight at once (default {DEFAULT_PARALLEL})",
    )
    c.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    c.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    _connection_flags(c)
    c.set_defaults(func=cmd_orders_import)

    p = sub.add_parser("state", help="a strategy's positions and current NAV (over the API)")
    _read_flags(p)
    p.set_defaults(func=cmd_state)

    p = sub.add_parser("performance", help="a strategy's return, risk and benchmark figures (over the API)")
    p.add_argument("--benchmark", help="symbol to compare against (default: the strategy's; '' for none)")
    p.add_argument("--risk-free-rate", type=_rate, help="annualized, e.g. 0.045")
    _read_flags(p)
    p.set_defaults(func=cmd_performance)

    p = sub.add_parser("trades", help="a strategy's trades (round trips) over the API; --csv for CSV on stdout")
    p.add_argument("--status", choices=("open", "closed", "reset"), help="only trades of this status")
    p.add_argument("--symbol", help="only this symbol's trades")
    p.add_argument("--from", dest="from_", type=date.fromisoformat, help="opened on or after, YYYY-MM-DD")
    p.add_argument("--to", type=date.fromisoformat, help="opened on or before, YYYY-MM-DD")
    p.add_argument("--csv", action="store_true", help="CSV on stdout (every field of GET /trades)")
    _read_flags(p)
    p.set_defaults(func=cmd_trades)

    p = sub.add_parser("nav", help="a strategy's daily NAV (over the API); --csv for CSV on stdout")
    p.add_argument("--from", dest="from_", type=date.fromisoformat, help="first day, YYYY-MM-DD")
    p.add_argument("--to", type=date.fromisoformat, help="last day, YYYY-MM-DD")
    p.add_argument("--csv", action="store_true", help="CSV on stdout (the columns of GET /nav as text/csv)")
    _read_flags(p)
    p.set_defaults(func=cmd_nav)
