"""The hash chains' writes in the projector's transaction (``LedgerWriter.chain``): ``rm_chain`` (a link
per event, in arrival order) and ``rm_chain_days`` (the head at the end of each day)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from uuid import UUID

from botranks_domain.chain import Link

from ..pg import DictCursor


class ChainWriter:
    """Extends strategies' chains inside one projection transaction."""

    def __init__(self, curs: DictCursor) -> None:
        self._cursor = curs

    def heads(self, strategy_ids: Iterable[UUID]) -> dict[UUID, Link]:
        """Each strategy's chain head (its latest day's row; ``notification_id`` 0), for extending it."""
        rows = self._cursor.execute(
            "SELECT DISTINCT ON (strategy_id) strategy_id, day, events, digest, last_created_at FROM rm_chain_days"
            " WHERE strategy_id = ANY(%s) ORDER BY strategy_id, day DESC",
            (list(strategy_ids),),
        ).fetchall()
        return {
            r["strategy_id"]: Link(r["events"], 0, bytes(r["digest"]), r["day"], r["last_created_at"]) for r in rows
        }

    def append(self, links: dict[UUID, list[Link]]) -> None:
        """New links (COPY) and the new head of every day they reach."""
        heads: dict[tuple[UUID, date], Link] = {}
        with self._cursor.copy(
            "COPY rm_chain (strategy_id, seq, notification_id, digest, day, created_at) FROM STDIN"
        ) as copy:
            for strategy_id, chain in links.items():
                for link in chain:
                    copy.write_row(
                        (strategy_id, link.seq, link.notification_id, link.digest, link.day, link.created_at)
                    )
                    heads[(strategy_id, link.day)] = link
        if heads:
            self._cursor.executemany(
                "INSERT INTO rm_chain_days (strategy_id, day, events, digest, last_created_at)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (strategy_id, day) DO UPDATE SET"
                " events = EXCLUDED.events, digest = EXCLUDED.digest, last_created_at = EXCLUDED.last_created_at",
                [(s, day, link.seq, link.digest, link.created_at) for (s, day), link in heads.items()],
            )
