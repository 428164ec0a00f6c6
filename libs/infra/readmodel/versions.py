"""The read model's versions a per-process read cache keys on, read in the round trip of the key check
(``libs.infra.key_gate``): each strategy's ``rm_ledger.updated_at`` (it moves with every projection or
re-mark of the strategy: the /performance and pages' cache key, ``LedgerReader.nav_version``) and the
version of the instance's trials count."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from psycopg import AsyncCursor

VERSIONS_SQL = (
    "SELECT NULL::uuid AS strategy_id, NULL::timestamptz AS updated_at, (SELECT version FROM rm_trials) AS trials"
    " UNION ALL SELECT strategy_id, updated_at, NULL FROM rm_ledger WHERE strategy_id = ANY(%s)"
)


async def send_versions(curs: AsyncCursor, strategies: Sequence[UUID]) -> None:
    """Send the versions' statement on ``curs`` (in the caller's pipeline); read it with :func:`read_versions`."""
    await curs.execute(VERSIONS_SQL, (sorted(set(strategies)),), prepare=True)


async def read_versions(curs: AsyncCursor) -> tuple[dict[UUID, datetime], int]:
    """Each strategy's NAV version (absent: no ledger row yet) and the trials' version (0: not counted)."""
    navs, trials = {}, 0
    for strategy_id, updated_at, version in await curs.fetchall():
        if strategy_id is None:
            trials = version or 0
        else:
            navs[strategy_id] = updated_at
    return navs, trials


BOARD_VERSION_SQL = "SELECT 'rm_leaderboard'::regclass::oid, (SELECT max(refreshed_at) FROM rm_leaderboard)"


async def send_board_version(curs: AsyncCursor) -> None:
    """The leaderboard's version (``LedgerReader.leaderboard_version``'s), in the caller's pipeline."""
    await curs.execute(BOARD_VERSION_SQL, prepare=True)


async def read_board_version(curs: AsyncCursor) -> str:
    table, newest = await curs.fetchone() or (0, None)
    return f"{table}:{newest.isoformat() if newest else '-'}"
