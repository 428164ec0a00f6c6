"""The leaderboard read model (``rm_leaderboard``): one row per strategy with events.

A row is a function of the strategy's NAV rows (the /performance metrics with no benchmark
and a risk-free rate of 0, through :func:`botranks_domain.performance.compute_performance`, with the
significance of its Sharpe ratio: docs/METHODOLOGY.md), its
orders (how many were reported live), its chain head (last activity = arrival time of its
latest event) and its public face in ``strategies`` (name, visibility, base currency, tags, the owner's
handle; its markets come from the symbols it ordered). So it is a function of
log + prices + identity, and a rebuild fills it like every other read model. A refresh that finds the
NAV rows' digest unchanged keeps the row's NAV figures (``BoardWriter.inputs``' ``kept``): the same
function, not computed twice.

What gets refreshed, in the projector daemon's loop after each catch-up:

- strategies whose ``rm_ledger.updated_at`` (moved by every projection and re-mark) is not the
  ``nav_version`` their row was computed from, or that have no row yet: found by a join of
  ``rm_ledger`` and ``rm_leaderboard``, run only when the projector changed something (and every
  ``SCAN_EVERY_S`` as a safety net), a bounded batch per transaction;
- strategies named in ``strategy_updates`` after the projector's cursor (a rename, a visibility,
  benchmark or show_positions change), in the same transaction as the cursor's move; a new
  benchmark first re-derives the strategy's NAV (its NAV days follow the benchmark's bars);
- the Deflated Sharpe Ratio of every row of the partition, when the instance's trials (``rm_trials``,
  counted anew by each transaction that changed rows, and by a deletion) moved since the row was judged.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import structlog

from botranks_domain.currency import quote_currency
from botranks_domain.performance import performance_with_moments
from botranks_domain.profiles import equity_bracket, markets_of
from botranks_domain.series import nav_frame, sparkline
from botranks_domain.significance import NO_TRIALS, Trials, deflated_sharpe, sharpe_std
from botranks_domain.trade_stats import trading_stats
from libs.infra.db import Database
from libs.infra.identity.tx import PublicFace
from libs.infra.readmodel import LedgerWriter

from .projection import quarantine, rederive

log = structlog.get_logger(component="projector")

#: strategies (or strategy updates) taken per transaction
BATCH = 200
#: a transaction stops taking more stale strategies after this long (new events wait meanwhile)
BUDGET_S = 0.25
#: the stale scan runs at least this often even when the projector changed nothing itself
SCAN_EVERY_S = 30.0
#: rows re-judged against new trials per transaction (a DSR from stored figures: cheap)
REJUDGE_BATCH = 5000


def leaderboard_entry(
    strategy_id: UUID,
    face: PublicFace | None,
    inputs: dict[str, Any],
    trials: Trials,
    trials_version: int,
    currencies: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """One ``rm_leaderboard`` row from a strategy's inputs (``BoardWriter.inputs``), its DSR judged
    against the instance's ``trials`` (of ``trials_version``); ``currencies``: the recorded quote
    currencies of its symbols (its markets)."""
    kept = inputs.get("kept")
    figures = _nav_figures(inputs["nav"]) if kept is None else dict(kept)
    nav = [(r.date, r.total_equity) for r in inputs["nav"]]
    trading = trading_stats(inputs.get("trades", []), nav, Decimal(0), datetime.now(UTC))
    orders, live = inputs["orders"], inputs["live_orders"]
    face = face or PublicFace("", "private", "USD", None, [])
    symbols = inputs.get("symbols") or []
    recorded = currencies or {}
    return {
        "strategy_id": strategy_id,
        "name": face.name,
        "visibility": face.visibility,
        **figures,
        "dsr": deflated_sharpe(figures["sharpe_daily"], figures["sharpe_daily_std"], trials),
        "last_activity": inputs["last_activity"],
        "orders": orders,
        "live_orders": live,
        "live_share": live / orders if orders else None,
        "nav_version": inputs["nav_version"],
        "trials_version": trials_version,
        "trades": trading.trades,
        "win_rate": trading.win_rate,
        "profit_factor": trading.profit_factor,
        "owner_handle": face.owner_handle,
        "base_currency": face.base_currency,
        "markets": markets_of(symbols, {s: quote_currency(s, recorded) for s in symbols}),
        "tags": list(face.tags),
        # where the next refresh goes on counting from (0: count everything again)
        "orders_counted_to": inputs.get("orders_counted_to", 0),
        "order_symbols": list(symbols),
        "nav_digest": inputs.get("nav_digest"),
    }


def _nav_figures(rows: list[Any]) -> dict[str, Any]:
    """The row's columns that are a function of its NAV rows alone (``NAV_FIGURES``; the DSR is judged
    apart, against the instance's trials): the /performance figures with no benchmark and a risk-free
    rate of 0, the significance of the Sharpe ratio, the sparkline and the equity bracket."""
    perf, observed = performance_with_moments(nav_frame(rows), None, None, 0.0, NO_TRIALS)
    sig = perf["significance"]
    interval = sig["sharpe_ci_95"] or (None, None)
    return {
        "total_return": perf["total_return"],
        "cagr": perf["cagr"],
        "sharpe": perf["sharpe_ratio"],
        "sortino": perf["sortino_ratio"],
        "max_drawdown": perf["drawdown"]["max_drawdown"],
        "volatility": perf["volatility_annualized"],
        "track_days": perf["days"] or 0,
        "inception_date": perf["inception_date"],
        "latest_date": perf["latest_date"],
        "observations": sig["observations"],
        "sharpe_daily": observed.sharpe,
        "sharpe_daily_std": sharpe_std(observed),
        "psr": sig["psr"],
        "sharpe_ci_low": interval[0],
        "sharpe_ci_high": interval[1],
        "min_track_record_days": sig["min_track_record_days"],
        "sparkline": sparkline(rows),
        "equity_bracket": equity_bracket(rows[-1].total_equity if rows else None),
    }


def refresh_rows(
    writer: LedgerWriter,
    strategy_ids: Iterable[UUID],
    deadline: float | None = None,
    interrupt: Callable[[], bool] | None = None,
) -> int:
    """Recompute and write the rows of ``strategy_ids`` (those with a ledger); stops taking more after
    ``deadline`` (``time.monotonic()``) or once ``interrupt()`` says so. Returns how many were written."""
    ids = list(dict.fromkeys(strategy_ids))
    faces = writer.identity.public_faces(ids)
    trials, version = writer.board.trials()
    rows: list[dict[str, Any]] = []
    for strategy_id in ids:
        if rows and ((deadline is not None and time.monotonic() > deadline) or (interrupt and interrupt())):
            break
        inputs = writer.board.inputs(strategy_id)
        if inputs is None:
            continue
        face = faces.get(strategy_id)
        currencies = writer.prices.currencies(inputs["symbols"])
        try:
            rows.append(leaderboard_entry(strategy_id, face, inputs, trials, version, currencies))
        except Exception as exc:  # noqa: BLE001 - never let one strategy stall the board: figures left null
            log.error("leaderboard_failed", strategy_id=str(strategy_id), error=f"{type(exc).__name__}: {exc}")
            failed = {**inputs, "nav": [], "kept": None, "nav_digest": None}  # computed anew next time
            rows.append(leaderboard_entry(strategy_id, face, failed, trials, version, currencies))
    writer.board.write(rows)
    return len(rows)


def judge_against_trials(writer: LedgerWriter, recount: bool) -> int:
    """Keep every DSR of the writer's partition judged against the instance's current trials: count them
    anew first (``recount``: this transaction changed rows), then re-judge the rows judged against an
    older count. Returns how many rows it re-judged."""
    if recount:
        writer.board.recount_trials(writer.identity)
    trials, version = writer.board.trials()
    rows = writer.board.misjudged(version, REJUDGE_BATCH)
    writer.board.rejudge([(s, deflated_sharpe(sr, sigma, trials)) for s, sr, sigma in rows], version)
    return len(rows)


def apply_strategy_updates(writer: LedgerWriter, limit: int = BATCH) -> int:
    """Follow ``strategy_updates`` after the cursor: re-derive on a new benchmark, refresh the rows,
    move the cursor (all in the writer's transaction). Returns how many updates were applied."""
    all_updates = writer.identity.strategy_updates_after(writer.strategy_update_position(), limit)
    if not all_updates:
        return 0
    updates = [u for u in all_updates if writer.in_partition(u[1])]  # the other partitions' are theirs
    ids = list(dict.fromkeys(strategy_id for _, strategy_id, _ in updates))
    projected, halted = writer.projected(ids), writer.halted()
    for strategy_id in dict.fromkeys(s for _, s, changed in updates if changed):
        if strategy_id in projected and strategy_id not in halted:
            try:
                with writer.savepoint():
                    rederive(writer, strategy_id, date.min)
            except Exception as exc:  # noqa: BLE001 - one strategy's failure stops no other
                quarantine(writer, strategy_id, 0, 0, 0, exc)
    refresh_rows(writer, [s for s in ids if s in projected])
    writer.move_strategy_update_cursor(all_updates[-1][0])
    return len(all_updates)


def refresh_leaderboard(
    db: Database,
    partition: int | None = None,
    *,
    scan: bool = True,
    limit: int = BATCH,
    budget_s: float = BUDGET_S,
    interrupt: Callable[[], bool] | None = None,
) -> int:
    """One transaction of leaderboard upkeep for a partition's strategies (None: each partition in turn):
    strategy updates, then (``scan``) stale rows, until ``budget_s`` is spent or ``interrupt()`` is true
    (a row at least).

    Returns how much it did (0: nothing left to do); call again while it returns more than 0.
    """
    if partition is None:
        return sum(
            refresh_leaderboard(db, p, scan=scan, limit=limit, budget_s=budget_s)
            for p in range(db.projection.partitions())
        )
    started = time.monotonic()
    with db.projection.writing(partition) as writer:
        updates = apply_strategy_updates(writer, limit)
        refreshed = 0
        if scan:
            refreshed = refresh_rows(writer, writer.board.stale(limit), started + budget_s, interrupt)
        rejudged = judge_against_trials(writer, recount=bool(updates or refreshed))
    if updates or refreshed or rejudged:
        log.info(
            "leaderboard_refreshed",
            partition=partition,
            strategy_updates=updates,
            rows=refreshed,
            rejudged=rejudged,
            duration_ms=round((time.monotonic() - started) * 1000, 2),
        )
    return updates + refreshed + rejudged


def refresh_partitions(
    db: Database,
    partitions: Sequence[int],
    *,
    limit: int = BATCH,
    budget_s: float = BUDGET_S,
    interrupt: Callable[[], bool] | None = None,
) -> tuple[int, list[int]]:
    """One transaction of leaderboard upkeep for several partitions together (those of ``partitions``
    whose locks are free): their stale rows, then their rows judged against older trials, with one count
    of the trials. A strategy's row costs a few statements, the transaction around them a dozen: live
    traffic leaves a row or two in each of many partitions, and a transaction each cost more than the
    rows. Strategy updates stay with :func:`refresh_leaderboard` (a partition's cursor moves with them).
    Returns how much it did and the partitions it held."""
    started = time.monotonic()
    with db.projection.writing(partitions=partitions, free_only=True) as writer:
        if not writer.held:
            return 0, []
        refreshed = refresh_rows(writer, writer.board.stale(limit), started + budget_s, interrupt)
        rejudged = judge_against_trials(writer, recount=bool(refreshed))
    if refreshed or rejudged:
        log.info(
            "leaderboard_refreshed",
            partitions=len(writer.held),
            rows=refreshed,
            rejudged=rejudged,
            duration_ms=round((time.monotonic() - started) * 1000, 2),
        )
    return refreshed + rejudged, writer.held


def fill_stale(writer: LedgerWriter, limit: int = BATCH) -> int:
    """Refresh every stale row reachable in this transaction (rebuild: the shadow's catch-up)."""
    total = 0
    while stale := writer.board.stale(limit):
        total += refresh_rows(writer, stale)
    return total
