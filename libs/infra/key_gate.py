"""The API-key check of every ``/api/v1/strategies/{id}/...`` request, as a group commit.

Each process keeps one PostgreSQL connection for it. A request's hit (its key's hash, the strategy of
its path) waits in a queue; whenever no statement is in flight, every waiting hit (at most ``MAX_BATCH``)
goes in ONE round trip: ``botranks_check_keys`` (identity: the key looked up, its sliding window row-locked
and written once for all its hits of the batch, so the limit stays exact across every replica) and, in the
same pipeline, the versions the read caches key on (the read model's, the price cache's). Under load the
batches grow by themselves (hits arrive while one is in flight); alone, a hit goes at once (no timer, no
added latency); an idle key costs nothing. Nothing about a key is cached: a revoked key is refused from
the next batch on. See docs/NOTES.md "The authenticated read path".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import structlog

from .group_commit import GateConnection, GroupCommit
from .identity import hash_secret
from .identity.accounts import RateState
from .identity.gate import KeyVerdict, bearer_token, rate_of, read_verdicts, send_check_keys
from .prices.versions import read_price_version, send_price_version
from .readmodel.versions import read_versions, send_versions

log = structlog.get_logger(component="key_gate")

MAX_BATCH = 512


@dataclass(frozen=True, slots=True)
class Checked:
    """A request that passed: its rate state, and the versions its reads may key a cache on (as of a
    snapshot taken after the request arrived: a write acknowledged before it is in them)."""

    rate: RateState
    verdict: KeyVerdict
    nav_version: datetime | None
    trials_version: int
    price_version: int


class KeyGate:
    """One process's group commit of key checks (``versions``: also read the read caches' versions)."""

    def __init__(self, database_url: str, limit: int, *, versions: bool) -> None:
        self.database_url, self.limit, self.versions = database_url, limit, versions
        self._connection = GateConnection(database_url)
        self._batches: GroupCommit[tuple[bytes, UUID], tuple] = GroupCommit(
            self._send, self._connection.drop, MAX_BATCH
        )

    @property
    def batches(self) -> int:
        """Batches sent (for the probe and the logs)."""
        return self._batches.batches

    @property
    def hits(self) -> int:
        """Hits checked."""
        return self._batches.items

    def start(self) -> None:
        self._batches.start()

    async def close(self) -> None:
        await self._batches.close()
        await self._connection.drop()

    async def check(self, authorization: str | None, strategy_id: UUID) -> Checked:
        """The request's verdict; raises the domain error of a refusal (401, 429, 404, 403)."""
        token = bearer_token(authorization)
        verdict, navs, trials, prices = await self._batches.submit((hash_secret(token), strategy_id))
        rate = rate_of(verdict, self.limit, strategy_id)
        return Checked(rate, verdict, navs.get(strategy_id), trials, prices)

    async def _send(self, hits: list[tuple[bytes, UUID]]) -> list[tuple]:
        conn = await self._connection.get()
        navs: dict[UUID, datetime] = {}
        trials = prices = 0
        async with conn.pipeline():
            keys = conn.cursor()
            await send_check_keys(keys, hits, self.limit)
            if self.versions:
                versions, price = conn.cursor(), conn.cursor()
                await send_versions(versions, [s for _, s in hits])
                await send_price_version(price)
        verdicts = await read_verdicts(keys, len(hits))
        if self.versions:
            navs, trials = await read_versions(versions)
            prices = await read_price_version(price)
        return [(v, navs, trials, prices) for v in verdicts]
