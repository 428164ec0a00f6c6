"""The leaderboard's writes in the projector's transaction (``LedgerWriter.board``): which rows are stale,
what a row is computed from, the upsert, and the instance's trials (``rm_trials``) that every row's
Deflated Sharpe Ratio is judged against (docs/METHODOLOGY.md#dsr)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from psycopg.rows import args_row, class_row

from botranks_domain.nav import NavRow
from botranks_domain.significance import MIN_TRIAL_RETURNS, Trials, pooled_trials
from botranks_domain.trade_stats import TradeSums
from botranks_domain.views import LIVE_REPORTING_S

from ..identity import IdentityTx
from ..pg import DictCursor, one
from .tables import LEADERBOARD_COLUMNS, NAV_FIGURES
from .trade_reads import TRADE_SUMS

#: the row's NAV figures as stored, read with the refresh's first statement (kept when the digest holds)
_KEPT = ", ".join(f"k.{c} AS kept_{c}" for c in NAV_FIGURES)


class BoardWriter:
    """``rm_leaderboard`` and ``rm_trials`` for one partition's transaction (``partition`` None: all), or
    for the partitions ``among`` names (a transaction holding several partitions' locks)."""

    def __init__(self, curs: DictCursor, partition: int | None, partitions: int) -> None:
        self._cursor = curs
        self.partitions = partitions
        #: the partitions whose rows this writer keeps (None: every partition)
        self.among: list[int] | None = None if partition is None else [partition]

    def _mine(self, alias: str) -> str:
        if self.among is None:
            return ""
        return f" AND botranks_strategy_partition({alias}.strategy_id::text, %(p)s) = ANY(%(mine)s)"

    def stale(self, limit: int) -> list[UUID]:
        """Strategies (of the writer's partitions) whose row is missing or was computed from another NAV version."""
        return [
            r["strategy_id"]
            for r in self._cursor.execute(
                "SELECT l.strategy_id FROM rm_ledger AS l LEFT JOIN rm_leaderboard AS b USING (strategy_id)"
                f" WHERE b.nav_version IS DISTINCT FROM l.updated_at{self._mine('l')} LIMIT %(limit)s",
                {"limit": limit, "p": self.partitions, "mine": self.among},
            ).fetchall()
        ]

    def inputs(self, strategy_id: UUID) -> dict[str, Any] | None:
        """What a strategy's row is computed from (None without a ledger): its NAV version, NAV rows
        (``NavRow``), trades (``TradeSums``), order counts, the symbols ordered (and the last order
        counted, ``orders_counted_to``), its last arrival, and ``nav_digest``: a digest of every NAV row.

        When the digest is the one the row was last computed from (an order dated after the last priced
        day: what a live bot sends between two closes), the NAV rows are not read: ``kept`` holds the
        row's figures computed from them (``NAV_FIGURES``) and ``nav`` is empty."""
        # the order counts and symbols go on from the row's last count (rm_orders only grows, in notification
        # order, and goes with the row when a strategy is forgotten): O(new orders), not O(history)
        row = self._cursor.execute(
            "SELECT l.updated_at AS nav_version,"
            " (SELECT last_created_at FROM rm_chain_days WHERE strategy_id = %(s)s ORDER BY day DESC LIMIT 1)"
            " AS last_activity, coalesce(b.orders, 0) + o.orders AS orders,"
            " coalesce(b.live_orders, 0) + o.live_orders AS live_orders,"
            " ARRAY(SELECT DISTINCT x FROM unnest(coalesce(b.order_symbols, '{}') || o.symbols) AS x ORDER BY x)"
            " AS symbols, greatest(coalesce(b.orders_counted_to, 0), o.counted_to) AS orders_counted_to,"
            " (SELECT md5(string_agg(concat_ws('|', date, cash, market_value, total_equity, external_flow), ','"
            " ORDER BY date)) FROM rm_nav_daily WHERE strategy_id = %(s)s) AS nav_digest, k.nav_digest AS kept_digest,"
            f" {_KEPT}"
            " FROM rm_ledger AS l LEFT JOIN rm_leaderboard AS b ON b.strategy_id = l.strategy_id"
            " AND b.orders_counted_to > 0 LEFT JOIN rm_leaderboard AS k ON k.strategy_id = l.strategy_id,"
            " LATERAL (SELECT count(*) AS orders, count(*) FILTER (WHERE created_at - executed_at"
            " <= make_interval(secs => %(live)s)) AS live_orders,"
            " coalesce(array_agg(DISTINCT symbol), '{}') AS symbols, coalesce(max(notification_id), 0) AS counted_to"
            " FROM rm_orders WHERE strategy_id = %(s)s AND notification_id > coalesce(b.orders_counted_to, 0)) AS o"
            " WHERE l.strategy_id = %(s)s",
            {"s": strategy_id, "live": LIVE_REPORTING_S},
        ).fetchone()
        if row is None:
            return None
        kept, kept_digest = {c: row.pop(f"kept_{c}") for c in NAV_FIGURES}, row.pop("kept_digest")
        if row["nav_digest"] is not None and kept_digest == row["nav_digest"]:
            row["kept"], row["nav"] = kept, []
        else:
            with self._cursor.connection.cursor(row_factory=args_row(NavRow)) as navs:
                row["nav"] = navs.execute(
                    "SELECT date, cash, market_value, total_equity, external_flow FROM rm_nav_daily"
                    " WHERE strategy_id = %s ORDER BY date",
                    (strategy_id,),
                ).fetchall()
        with self._cursor.connection.cursor(row_factory=class_row(TradeSums)) as trades:
            row["trades"] = trades.execute(
                f"SELECT {TRADE_SUMS} FROM rm_trades WHERE strategy_id = %s ORDER BY opened_at, trade_id",
                (strategy_id,),
            ).fetchall()
        return row

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        """Upsert rows (``LEADERBOARD_COLUMNS``), each stamped with the clock of its write."""
        if not rows:
            return
        columns = ", ".join(LEADERBOARD_COLUMNS)
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in LEADERBOARD_COLUMNS[1:])
        self._cursor.executemany(
            f"INSERT INTO rm_leaderboard ({columns}, refreshed_at) VALUES"
            f" ({', '.join(['%s'] * len(LEADERBOARD_COLUMNS))}, clock_timestamp())"
            f" ON CONFLICT (strategy_id) DO UPDATE SET {updates}, refreshed_at = clock_timestamp()",
            [tuple(r[c] for c in LEADERBOARD_COLUMNS) for r in rows],
        )

    # ------------------------------------------------------------ trials

    def trials(self) -> tuple[Trials, int]:
        """The instance's trials as last counted, and the version of that count."""
        row = self._cursor.execute("SELECT trials, sharpe_std, version FROM rm_trials").fetchone()
        if row is None:  # restored without the cache: counted at the next upkeep
            return Trials(0, None), 0
        return Trials(row["trials"], row["sharpe_std"]), row["version"]

    def recount_trials(self, identity: IdentityTx) -> bool:
        """Count the trials anew (rows with at least ``MIN_TRIAL_RETURNS`` daily returns and a Sharpe, and
        the tombstones); a new version when N or √V changed. Serialised on ``rm_trials``' row lock, taken
        first, so each count sees every other partition's committed rows. True when it changed."""
        row = self._cursor.execute("SELECT trials, sharpe_std FROM rm_trials FOR UPDATE").fetchone()
        live = one(
            self._cursor.execute(
                "SELECT count(*) AS n, avg(sharpe_daily::numeric)::float8 AS mean,"
                " var_samp(sharpe_daily::numeric)::float8 AS var FROM rm_leaderboard"
                " WHERE observations >= %s AND sharpe_daily IS NOT NULL",
                (MIN_TRIAL_RETURNS,),
            )
        )
        counted = pooled_trials([(live["n"], live["mean"], live["var"]), identity.tombstone_trials(MIN_TRIAL_RETURNS)])
        if row is not None and (row["trials"], row["sharpe_std"]) == (counted.count, counted.sharpe_std):
            return False
        self._cursor.execute(
            "INSERT INTO rm_trials (singleton, trials, sharpe_std, version, refreshed_at)"
            " VALUES (true, %s, %s, 1, clock_timestamp()) ON CONFLICT (singleton) DO UPDATE"
            " SET trials = EXCLUDED.trials, sharpe_std = EXCLUDED.sharpe_std, version = rm_trials.version + 1,"
            " refreshed_at = EXCLUDED.refreshed_at",
            (counted.count, counted.sharpe_std),
        )
        return True

    def misjudged(self, version: int, limit: int) -> list[tuple[UUID, float | None, float | None]]:
        """Rows (of the writer's partitions) judged against older trials: (id, per-day Sharpe, its std error)."""
        rows = self._cursor.execute(
            "SELECT b.strategy_id, b.sharpe_daily, b.sharpe_daily_std FROM rm_leaderboard AS b"
            f" WHERE b.trials_version < %(v)s{self._mine('b')} LIMIT %(limit)s",
            {"v": version, "limit": limit, "p": self.partitions, "mine": self.among},
        ).fetchall()
        return [(r["strategy_id"], r["sharpe_daily"], r["sharpe_daily_std"]) for r in rows]

    def rejudge(self, dsr: Sequence[tuple[UUID, float | None]], version: int) -> None:
        """Write rows' new DSR against the trials of ``version`` (stamped, so the board's version moves)."""
        if not dsr:
            return
        ids, values = zip(*dsr, strict=True)
        self._cursor.execute(  # one statement: a row at a time costs ~10x more
            "UPDATE rm_leaderboard AS b SET dsr = v.dsr, trials_version = %s, refreshed_at = clock_timestamp()"
            " FROM unnest(%s::uuid[], %s::float8[]) AS v(strategy_id, dsr) WHERE b.strategy_id = v.strategy_id",
            (version, list(ids), list(values)),
        )

    def trial_of(self, strategy_id: UUID) -> tuple[float | None, int] | None:
        """A strategy's last per-day Sharpe and daily returns (None without a row): what its tombstone keeps."""
        row = self._cursor.execute(
            "SELECT sharpe_daily, observations FROM rm_leaderboard WHERE strategy_id = %s", (strategy_id,)
        ).fetchone()
        return None if row is None else (row["sharpe_daily"], row["observations"])
