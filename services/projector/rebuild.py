"""A full rebuild: every read model from the event store alone, into a shadow schema, swapped in at once.

It drives the two folds of the live projector (:mod:`.projection` for the ledger read models,
:mod:`.leaderboard` for the board) over the whole log; neither of them imports this module.
"""

from __future__ import annotations

import time
from uuid import UUID

import structlog

from libs.infra.db import Database

from .leaderboard import fill_stale, judge_against_trials, refresh_rows
from .projection import apply_batch, log_batch, project_strategy, quarantine, sharing_price_books

log = structlog.get_logger(component="projector")


def _fold_all(db: Database, strategies: list[UUID], halted: set[UUID], head: int, per_commit: int) -> None:
    """A rebuild's step 2: fold every strategy from its own history into the shadow tables."""
    for i in range(0, len(strategies), per_commit):
        db.projection.record_rebuild(head // 2 + head * i // max(1, 2 * len(strategies)), head)
        with db.projection.writing(shadow=True, lock=False) as writer:
            for strategy_id in strategies[i : i + per_commit]:
                if strategy_id in halted:
                    continue
                history = writer.history(strategy_id, None)
                try:
                    with writer.savepoint():
                        project_strategy(writer, strategy_id, history)
                except Exception as exc:  # noqa: BLE001 - one strategy's failure stops no other: quarantined
                    quarantine(writer, strategy_id, history[0][0], history[-1][0], len(history), exc)


def rebuild(db: Database, batch: int = 5000, strategies_per_commit: int = 200, partitions: int | None = None) -> int:
    """Rebuild every read model from the event store alone, then swap them in at once.

    Readers keep the current read models until the swap (one short transaction); memory is
    bounded by one batch of the log or one strategy's history, never the whole log.
    The live projectors keep running meanwhile; they are paused only for the final catch-up
    and swap, under every partition's lock. ``partitions``: lay the projection out in that many
    partitions from then on (default: as it is).
    """
    started = time.perf_counter()
    db.projection.create_shadow()
    with db.projection.writing(lock=False) as writer:  # what changes while we work is re-marked after the swap
        price_cursor = writer.prices.last_update_id()
        strategy_cursor = writer.identity.last_strategy_update_id()
    # 1. the log tables (and the hash chains), a batch at a time
    last, total = 0, 0
    head = db.events.max_notification_id()
    db.projection.record_rebuild(0, head)
    while notifications := db.events.notifications_after(last, batch):
        with db.projection.writing(shadow=True, lock=False) as writer:
            log_batch(writer, notifications, writer.halted())
        last, total = notifications[-1].id, total + len(notifications)
        db.projection.record_rebuild(min(last, head) // 2, head)  # the log read: the first half of the work
    # 2. every strategy folded from its own history, one strategy in memory at a time
    with db.projection.writing(shadow=True, lock=False) as writer:
        strategies, halted = writer.logged_strategies(), writer.halted()
    with sharing_price_books():
        _fold_all(db, strategies, halted, head, strategies_per_commit)
    # 3. the leaderboard of what was folded
    for i in range(0, len(strategies), strategies_per_commit):
        with db.projection.writing(shadow=True, lock=False) as writer:
            refresh_rows(writer, strategies[i : i + strategies_per_commit])
    # 4. what arrived meanwhile, then the swap, with the live projector paused
    with db.projection.writing(shadow=True) as writer:
        while notifications := db.events.notifications_after(last, batch):
            apply_batch(writer, notifications)
            last, total = notifications[-1].id, total + len(notifications)
        fill_stale(writer)
        writer.swap_in_shadow()
        writer.reset_layout(partitions or writer.partitions, last, price_cursor, strategy_cursor)
        # the rebuilt board's trials, counted anew (rows of a new trials version are re-judged by the upkeep)
        judge_against_trials(writer, recount=True)
    db.projection.record_rebuild(total, total, finished=True)
    log.info(
        "rebuilt",
        events=total,
        strategies=len(strategies),
        duration_ms=round((time.perf_counter() - started) * 1000, 2),
    )
    return total
