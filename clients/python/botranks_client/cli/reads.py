"""``botranks state``, ``performance`` and ``nav``: one read of the API, as tables, JSON or CSV.

The tables name the currency of every money figure: the strategy's base currency in the titles
("Cash (EUR)"), each position's own currency next to its cost basis. JSON and CSV are the API's.
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
from datetime import date, datetime
from decimal import Decimal
from typing import IO, Any

import msgspec

from . import common
from .common import CliError, connection, guarded

_json = msgspec.json.Encoder(decimal_format="number")


def _print_json(value: Any) -> None:
    sys.stdout.buffer.write(msgspec.json.format(_json.encode(value), indent=2) + b"\n")
    sys.stdout.flush()


def _num(value: Decimal | float | int | None, places: int | None = None) -> str:
    if value is None:
        return "–"
    if places is not None:
        return f"{Decimal(value):,.{places}f}"
    return f"{value:,}"


def _pct(value: float | None, sign: bool = True) -> str:
    return "–" if value is None else f"{value:+.2%}" if sign else f"{value:.2%}"


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def in_ccy(label: str, currency: str | None) -> str:
    """A money column's title with its currency: ``Cash (EUR)``; just the label when it is unknown."""
    return f"{label} ({currency})" if currency else label


def _when(value: datetime | date | None) -> str:
    if value is None:
        return "–"
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if isinstance(value, datetime) else value.isoformat()


def _reader(args: argparse.Namespace):
    args.conn = conn = connection(args)
    logging.getLogger("botranks_client").setLevel(logging.ERROR)  # no retry chatter: the outcome is one line
    return common.make_client(conn, max_retries=args.retries)


@guarded
def cmd_state(args: argparse.Namespace) -> None:
    with _reader(args) as client:
        state = client.state()
    if args.json:
        return _print_json(state)
    from rich.console import Console
    from rich.table import Table

    out = Console()
    base = state.base_currency
    table = Table(title=f"Positions of {state.strategy_id}", title_justify="left")
    for name in ("Symbol", "Quantity", "Cost basis", "Currency", "Updated"):
        table.add_column(name, justify="right" if name in ("Quantity", "Cost basis") else "left")
    for p in state.positions:
        table.add_row(p.symbol, _num(p.quantity), _num(p.cost_basis), p.currency, _when(p.updated_at))
    out.print(table if state.positions else "[dim]no open positions[/]")
    nav = Table(show_header=False, box=None)
    nav.add_column(style="bold")
    nav.add_column(justify="right")
    nav.add_row("Base currency", base)
    if state.nav is not None:
        nav.add_row(in_ccy("Total equity", base), _num(state.nav.total_equity, 2))
        nav.add_row(in_ccy("Cash", base), _num(state.nav.cash_balance, 2))
        nav.add_row(in_ccy("Market value", base), _num(state.nav.market_value, 2))
        nav.add_row("Marked at", _when(state.nav.captured_at))
    nav.add_row("Last order", _when(state.last_order_at))
    out.print(nav)


@guarded
def cmd_performance(args: argparse.Namespace) -> None:
    with _reader(args) as client:
        perf = client.performance(benchmark=args.benchmark, risk_free_rate=args.risk_free_rate)
    if args.json:
        return _print_json(perf)
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    out = Console()
    base = perf.base_currency
    converted = [c for c in perf.currencies if c != base]
    table = Table(title=f"Performance of {perf.strategy_id}", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    rows = [
        (
            "Period",
            f"{_when(perf.inception_date)} → {_when(perf.latest_date)}"
            f" ({perf.days or 0} days, {perf.years or 0:.2f} years)",
        ),
        ("Base currency", base + (f" (converted from {', '.join(converted)})" if converted else "")),
        (in_ccy("Equity", base), f"{_num(perf.starting_equity, 2)} → {_num(perf.ending_equity, 2)}"),
        ("Total return", _pct(perf.total_return)),
        ("CAGR", _pct(perf.cagr)),
        ("Volatility (ann.)", _pct(perf.volatility_annualized, sign=False)),
        ("Downside volatility (ann.)", _pct(perf.downside_volatility_annualized, sign=False)),
        ("Sharpe", _ratio(perf.sharpe_ratio)),
        ("Sortino", _ratio(perf.sortino_ratio)),
        ("Calmar", _ratio(perf.calmar_ratio)),
        ("Max drawdown", _pct(perf.drawdown.max_drawdown)),
        ("Max drawdown duration", f"{perf.drawdown.max_drawdown_duration_days or 0} days"),
        ("Current drawdown", _pct(perf.drawdown.current_drawdown)),
    ]
    b = perf.benchmark
    if b is not None:
        rows += [
            (f"Benchmark {b.symbol} return", _pct(b.benchmark_total_return)),
            ("Beta", _ratio(b.beta)),
            ("Alpha (ann.)", _pct(b.alpha_annualized)),
            ("Tracking error (ann.)", _pct(b.tracking_error_annualized, sign=False)),
            ("Information ratio", _ratio(b.information_ratio)),
        ]
    sig = perf.significance
    if sig is not None:
        interval = "–" if sig.sharpe_ci_95 is None else " … ".join(_ratio(x) for x in sig.sharpe_ci_95)
        needed = sig.min_track_record_days
        rows += [
            ("Daily returns", str(sig.observations)),
            ("PSR (Sharpe > 0)", _pct(sig.psr, sign=False)),
            (f"DSR (beats the luck of {sig.trials} trials)", _pct(sig.dsr, sign=False)),
            ("Sharpe, 95 % interval", interval),
            ("Min. track record", "–" if needed is None else f"{needed} days"),
            ("Skewness / kurtosis", f"{_ratio(sig.skewness)} / {_ratio(sig.kurtosis)}"),
        ]
    tr = perf.trading
    if tr is not None:
        rows += [
            ("Trades (closed / open)", f"{tr.trades} / {tr.open_trades}"),
            ("Win rate", f"{_pct(tr.win_rate, sign=False)} ({tr.wins} won, {tr.losses} lost)"),
            (in_ccy("Average win / loss", base), f"{_num(tr.average_win, 2)} / {_num(tr.average_loss, 2)}"),
            ("Profit factor / payoff", f"{_ratio(tr.profit_factor)} / {_ratio(tr.payoff_ratio)}"),
            (in_ccy("Expectancy", base), _num(tr.expectancy, 2)),
            ("Avg. holding", "–" if tr.average_holding_days is None else f"{tr.average_holding_days:.1f} days"),
            ("Exposure / turnover (ann.)", f"{_pct(tr.exposure, sign=False)} / {_ratio(tr.turnover_annualized)}"),
            (in_ccy("Realized / unrealized P&L", base), f"{_num(tr.realized_pnl, 2)} / {_num(tr.unrealized_pnl, 2)}"),
        ]
    for row in rows:
        table.add_row(*row)
    out.print(table)
    if perf.monthly_returns:
        out.print(_monthly_table(perf))
    for warning in perf.warnings:
        out.print(f"[yellow]warning[/] {escape(warning.code)}: {escape(warning.message)}")


def _monthly_table(perf: Any):
    """Returns by month (a row a year, in %: one decimal under 10, so it fits 80 columns), and the year's."""
    from rich.table import Table

    def cell(value: float | None) -> str:
        if value is None:
            return "–"
        return f"{value * 100:.1f}" if abs(value) < 0.0995 else f"{value * 100:.0f}"

    table = Table(
        title="Monthly returns (%)",
        title_justify="left",
        box=None,
        padding=(0, 0, 0, 1),
        pad_edge=False,
        header_style="bold",
    )
    table.add_column("")
    for name in ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec", "Year"):
        table.add_column(name, justify="right")
    for year in sorted({key[:4] for key in perf.monthly_returns} | set(perf.yearly_returns)):
        months = [f"{year}-{m:02d}" for m in range(1, 13)]
        table.add_row(
            year,
            *[cell(perf.monthly_returns[m]) if m in perf.monthly_returns else "" for m in months],
            cell(perf.yearly_returns.get(year)),
        )
    return table


def write_nav_csv(series: Any, out: IO[str]) -> None:
    """The NAV series as CSV: the same columns as the server's ``/nav`` with ``Accept: text/csv``."""
    from botranks_domain.nav import NAV_COLUMNS

    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(NAV_COLUMNS)
    writer.writerows([[getattr(row, c) for c in NAV_COLUMNS] for row in series.series])


@guarded
def cmd_nav(args: argparse.Namespace) -> None:
    if args.from_ and args.to and args.from_ > args.to:
        raise CliError("--from must not be after --to")
    with _reader(args) as client:
        series = client.nav(from_=args.from_, to=args.to)
    if args.csv:
        return write_nav_csv(series, sys.stdout)
    if args.json:
        return _print_json(series)
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Daily NAV of {series.strategy_id} in {series.base_currency}", title_justify="left")
    table.add_column("Date")
    for name in ("Cash", "Market value", "Total equity", "External flow"):
        table.add_column(in_ccy(name, series.base_currency), justify="right")
    for row in series.series:
        table.add_row(
            row.date.isoformat(),
            _num(row.cash, 2),
            _num(row.market_value, 2),
            _num(row.total_equity, 2),
            _num(row.external_flow, 2),
        )
    Console().print(table if series.series else "[dim]no NAV history yet[/]")
