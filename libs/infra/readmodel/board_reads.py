"""The leaderboard's reads (``db.ledger``'s, through :class:`~.reader.LedgerReader`): a page of the board
with its search and filters, one strategy's row and rank, the trials and the board's version."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from eventsourcing.postgres import PostgresDatastore

from botranks_domain.significance import Trials
from botranks_domain.views import (
    LEADERBOARD_DEFAULT_MIN_DAYS,
    LEADERBOARD_DEFAULT_SORT,
    LEADERBOARD_MAX_LIMIT,
    LEADERBOARD_SORTS,
    LIVE_ONLY_MIN_SHARE,
    LeaderboardPage,
    LeaderboardRow,
)

from ..pg import DictCursor, one, reading
from .tables import LEADERBOARD_ROW, LEADERBOARD_TIEBREAKS


class BoardReads:
    """Reads of ``rm_leaderboard`` and ``rm_trials`` (each its own snapshot)."""

    datastore: PostgresDatastore

    def leaderboard(
        self,
        sort: str,
        descending: bool,
        min_days: int,
        live_only: bool,
        limit: int,
        offset: int,
        *,
        text: str = "",
        min_trades: int = 0,
        max_drawdown: float | None = None,
        market: str = "",
        currency: str = "",
        min_live_share: float | None = None,
    ) -> LeaderboardPage:
        """A page of public strategies with at least ``min_days`` of track record (``live_only``: at
        least ``LIVE_ONLY_MIN_SHARE`` of their orders reported live, ``min_live_share``: at least that
        share; ``text``: in the name, the owner's handle or a tag, any case (``@text``: in the handle
        only); ``min_trades`` closed trades; a max drawdown no deeper than ``max_drawdown``, e.g. -0.2;
        trading in ``market``; in base ``currency``), by ``sort``, NULLs last in either direction, ties
        by strategy id; ``total`` counts the filtered board. One indexed statement."""
        # the HTTP layer checks what a stranger sent (``page_data.leaderboard_query``, 400s); ``sort`` is a
        # column name in the statement, so anything else here is a caller's bug
        if sort not in LEADERBOARD_SORTS or not 1 <= limit <= LEADERBOARD_MAX_LIMIT or offset < 0 or min_days < 0:
            raise ValueError(f"leaderboard({str(sort)[:40]!r}, limit={limit}, offset={offset}, min_days={min_days})")
        filters = "visibility = 'public' AND track_days >= %(min_days)s" + (
            " AND live_share >= %(share)s" if live_only else ""
        )
        handle_only = text.startswith("@")
        text = text.removeprefix("@")
        if text and handle_only:
            filters += " AND owner_handle ILIKE %(text)s ESCAPE '\\'"
        elif text:
            filters += (
                " AND (name ILIKE %(text)s ESCAPE '\\' OR owner_handle ILIKE %(text)s ESCAPE '\\'"
                " OR array_to_string(tags, ' ') ILIKE %(text)s ESCAPE '\\')"
            )
        if market:
            filters += " AND %(market)s = ANY(markets)"
        if currency:
            filters += " AND base_currency = %(currency)s"
        if min_live_share is not None:
            filters += " AND live_share >= %(min_live)s"
        if min_trades:
            filters += " AND trades >= %(min_trades)s"
        if max_drawdown is not None:
            filters += " AND max_drawdown >= %(max_drawdown)s"
        like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        direction = "DESC" if descending else "ASC"
        order = ", ".join(f"{c} {direction} NULLS LAST" for c in (sort, *LEADERBOARD_TIEBREAKS.get(sort, ())))
        with reading(self.datastore) as curs:
            rows = curs.execute(
                f"SELECT t.total, p.* FROM (SELECT count(*) AS total FROM rm_leaderboard WHERE {filters}) AS t"
                f" LEFT JOIN LATERAL (SELECT {LEADERBOARD_ROW} FROM rm_leaderboard WHERE {filters}"
                f" ORDER BY {order}, strategy_id LIMIT %(limit)s OFFSET %(offset)s) AS p ON true",
                {
                    "min_days": min(min_days, 2**31 - 1),
                    "share": LIVE_ONLY_MIN_SHARE,
                    "limit": limit,
                    "offset": offset,
                    "text": like,
                    "min_trades": min(min_trades, 2**31 - 1),
                    "max_drawdown": max_drawdown,
                    "market": market,
                    "currency": currency,
                    "min_live": min_live_share,
                },
            ).fetchall()
        items = [
            LeaderboardRow(rank=offset + i, **{k: v for k, v in r.items() if k != "total"})
            for i, r in enumerate((r for r in rows if r["strategy_id"] is not None), start=1)
        ]
        return LeaderboardPage(
            items,
            rows[0]["total"],
            sort,
            descending,
            min_days,
            live_only,
            limit,
            offset,
            ("@" if handle_only else "") + text,
            min_trades,
            max_drawdown,
            market,
            currency,
            min_live_share,
        )

    @contextmanager
    def _snapshot(self) -> Iterator[DictCursor]:
        """One REPEATABLE READ, READ ONLY transaction: reads that must agree with each other."""
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            curs.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield curs

    def leaderboard_row(self, strategy_id: UUID) -> LeaderboardRow | None:
        """A strategy's leaderboard figures, whatever its visibility (None before its first event).

        ``rank`` is its place on the default board (``LEADERBOARD_DEFAULT_SORT`` descending, public
        strategies with at least ``LEADERBOARD_DEFAULT_MIN_DAYS`` days), 0 when it is not on it.
        """
        columns = (LEADERBOARD_DEFAULT_SORT, *LEADERBOARD_TIEBREAKS.get(LEADERBOARD_DEFAULT_SORT, ()))
        with self._snapshot() as curs:
            row = curs.execute(
                f"SELECT {LEADERBOARD_ROW}, visibility FROM rm_leaderboard WHERE strategy_id = %s", (strategy_id,)
            ).fetchone()
            if row is None:
                return None
            rank = 0
            if row["visibility"] == "public" and row["track_days"] >= LEADERBOARD_DEFAULT_MIN_DAYS:
                values = {f"v{i}": row[c] for i, c in enumerate(columns)}
                rank = (
                    1
                    + one(
                        curs.execute(
                            "SELECT count(*) AS n FROM rm_leaderboard WHERE visibility = 'public'"
                            f" AND track_days >= %(d)s AND ({_ahead(columns, row)})",
                            {**values, "s": strategy_id, "d": LEADERBOARD_DEFAULT_MIN_DAYS},
                        )
                    )["n"]
                )
        return LeaderboardRow(rank=rank, **{k: v for k, v in row.items() if k != "visibility"})

    def public_rows(self, strategy_ids: list[UUID]) -> list[LeaderboardRow]:
        """The rows of those of ``strategy_ids`` that are public and have one, in the order given (an
        owner's page; ``rank`` 0: not looked up)."""
        with reading(self.datastore) as curs:
            rows = curs.execute(
                f"SELECT {LEADERBOARD_ROW} FROM rm_leaderboard WHERE strategy_id = ANY(%s) AND visibility = 'public'",
                (strategy_ids,),
            ).fetchall()
        found = {r["strategy_id"]: LeaderboardRow(rank=0, **r) for r in rows}
        return [found[s] for s in strategy_ids if s in found]

    def trials(self) -> Trials:
        """The instance's trials every DSR is judged against (docs/METHODOLOGY.md#dsr), as last counted."""
        return self.trials_counted()[0]

    def trials_counted(self) -> tuple[Trials, int]:
        """The instance's trials and the version of that count (it moves when N or their spread does)."""
        with reading(self.datastore) as curs:
            row = curs.execute("SELECT trials, sharpe_std, version FROM rm_trials").fetchone()
        return (Trials(0, None), 0) if row is None else (Trials(row["trials"], row["sharpe_std"]), row["version"])

    def leaderboard_version(self) -> str:
        """Changes whenever any leaderboard row does (every write stamps ``refreshed_at`` with the clock;
        a rebuild swaps in another table): for ETags. Two index lookups."""
        with reading(self.datastore) as curs:
            row = one(
                curs.execute(
                    "SELECT 'rm_leaderboard'::regclass::oid AS t, (SELECT max(refreshed_at) FROM rm_leaderboard) AS m"
                )
            )
        return f"{row['t']}:{row['m'].isoformat() if row['m'] else '-'}"


def _ahead(columns: tuple[str, ...], row: dict[str, Any], i: int = 0) -> str:
    """The condition of a row ahead of ``row`` on a board sorted by ``columns`` descending (NULLs last),
    ties by strategy id; the values are the parameters ``v0``, ``v1``… and ``s``."""
    if i == len(columns):
        return "strategy_id < %(s)s"
    c, rest = columns[i], _ahead(columns, row, i + 1)
    if row[c] is None:
        return f"{c} IS NOT NULL OR ({c} IS NULL AND ({rest}))"
    return f"{c} > %(v{i})s OR ({c} = %(v{i})s AND ({rest}))"
