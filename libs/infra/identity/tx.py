"""Identity inside another owner's transaction: the unit of work's ``identity`` (``LedgerWriter.identity``),
and the tombstones deleted strategies leave as trials of the instance."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import NamedTuple
from uuid import UUID

from ..pg import DictCursor, one


class PublicFace(NamedTuple):
    """What the board shows of a strategy besides its figures (``rm_leaderboard``'s identity columns)."""

    name: str
    visibility: str
    base_currency: str
    owner_handle: str | None
    tags: list[str]


class IdentityTx:
    """The strategies' reads inside another owner's transaction: a unit of work's ``identity``
    (``LedgerWriter.identity``)."""

    def __init__(self, curs: DictCursor) -> None:
        self._curs = curs
        #: (benchmark, base currency) by strategy, read once a transaction (a projector's is short)
        self._settings: dict[UUID, tuple[str | None, str]] = {}

    def prefetch(self, strategy_ids: Iterable[UUID]) -> None:
        """Read the benchmark and base currency of each of ``strategy_ids`` in one statement (a projection
        batch's); :meth:`benchmark_of` and :meth:`base_currency_of` then answer them without a query."""
        ids = sorted(set(strategy_ids))
        found = {
            r["id"]: (r["benchmark"] or None, r["base_currency"])
            for r in self._curs.execute(
                "SELECT id, benchmark, base_currency FROM strategies WHERE id = ANY(%s)", (ids,)
            ).fetchall()
        }
        self._settings.update({sid: found.get(sid, (None, "USD")) for sid in ids})

    def _settings_of(self, strategy_id: UUID) -> tuple[str | None, str]:
        if strategy_id not in self._settings:
            self.prefetch([strategy_id])
        return self._settings[strategy_id]

    def benchmark_of(self, strategy_id: UUID) -> str | None:
        """The strategy's benchmark, in the caller's transaction (the projector's)."""
        return self._settings_of(strategy_id)[0]

    def base_currency_of(self, strategy_id: UUID) -> str:
        """The strategy's base currency (USD for an unknown id), in the caller's transaction."""
        return self._settings_of(strategy_id)[1]

    def strategies_benchmarking(self, symbols: Iterable[str]) -> dict[UUID, str]:
        """Strategies whose benchmark is one of ``symbols``, in the caller's transaction."""
        return {
            r["id"]: r["benchmark"]
            for r in self._curs.execute(
                "SELECT id, benchmark FROM strategies WHERE benchmark = ANY(%s)", (list(symbols),)
            ).fetchall()
        }

    def public_faces(self, strategy_ids: Iterable[UUID]) -> dict[UUID, PublicFace]:
        """The public face of each of ``strategy_ids`` that exists, in the caller's transaction."""
        return {
            r["id"]: PublicFace(r["name"], r["visibility"], r["base_currency"], r["handle"], r["tags"])
            for r in self._curs.execute(
                "SELECT s.id, s.name, s.visibility, s.base_currency, u.handle, s.tags FROM strategies AS s"
                " LEFT JOIN users AS u ON u.id = s.owner_id WHERE s.id = ANY(%s)",
                (list(strategy_ids),),
            ).fetchall()
        }

    def strategy_updates_after(self, update_id: int, limit: int) -> list[tuple[int, UUID, bool]]:
        """``strategy_updates`` rows (id, strategy id, benchmark changed) after ``update_id``, in order."""
        rows = self._curs.execute(
            "SELECT id, strategy_id, benchmark_changed FROM strategy_updates WHERE id > %s ORDER BY id LIMIT %s",
            (update_id, limit),
        ).fetchall()
        return [(r["id"], r["strategy_id"], r["benchmark_changed"]) for r in rows]

    def last_strategy_update_id(self) -> int:
        return one(self._curs.execute("SELECT coalesce(max(id), 0) AS m FROM strategy_updates"))["m"]

    def bury(self, strategy_id: UUID, sharpe_daily: float | None, observations: int) -> None:
        """Keep a deleted strategy as a trial: its last per-day Sharpe and daily returns, under a digest of
        its id (so a delete that is run again adds nothing), and nothing else of it."""
        self._curs.execute(
            "INSERT INTO strategy_tombstones (digest, sharpe_daily, observations) VALUES (%s, %s, %s)"
            " ON CONFLICT (digest) DO NOTHING",
            (hashlib.sha256(strategy_id.bytes).digest(), sharpe_daily, observations),
        )

    def tombstone_trials(self, min_observations: int) -> tuple[int, float | None, float | None]:
        """The deleted strategies that count as trials (at least ``min_observations`` daily returns and a
        Sharpe): their number, the mean and the sample variance of their per-day Sharpes."""
        row = one(
            self._curs.execute(
                "SELECT count(*) AS n, avg(sharpe_daily::numeric)::float8 AS mean,"
                " var_samp(sharpe_daily::numeric)::float8 AS var"
                " FROM strategy_tombstones WHERE observations >= %s AND sharpe_daily IS NOT NULL",
                (min_observations,),
            )
        )
        return row["n"], row["mean"], row["var"]
