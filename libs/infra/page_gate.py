"""What a public strategy page (``/s/{id}``, ``/p/strategies/{id}``) must know before it can answer from
the cache of finished answers, for every page request waiting at the same moment in ONE round trip (a
group commit, ``libs.infra.group_commit``; one connection per process): the strategy's profile and owner
record and the viewer's session (identity), the strategy's NAV version, the trials' and the leaderboard's
versions (the read model) and the price cache's version (prices). Each owner sends its own statements in
the pipeline. The versions are read after the request arrived, so an answer cached under them is never
older than what the database held then; a change of any of them is a new ETag."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from botranks_domain.accounts import StrategyProfile

from .group_commit import GateConnection, GroupCommit
from .identity import hash_secret
from .identity.page_reads import read_page_reads, send_page_reads
from .prices.versions import read_price_version, send_price_version
from .readmodel.versions import read_board_version, read_versions, send_board_version, send_versions


@dataclass(frozen=True, slots=True)
class PageLook:
    """One page request's view of the database: None for a strategy that does not exist."""

    profile: StrategyProfile | None
    #: the signed-in user of the request's session cookie (None: none, expired or ended)
    session_user: UUID | None
    owner_record: dict[str, int] | None
    nav_version: datetime | None
    trials_version: int
    price_version: int
    board_version: str

    def versions(self) -> tuple:
        """Everything an answer's ETag must move with besides the viewer and the request."""
        p = self.profile
        face = None if p is None else (p.name, p.visibility, p.benchmark, p.show_positions, p.base_currency,
                                       p.description, tuple(p.tags), p.owner_handle, p.owner_id)  # fmt: skip
        record = None if self.owner_record is None else tuple(sorted(self.owner_record.items()))
        return (face, record, self.nav_version, self.trials_version, self.price_version, self.board_version)


class PageGate:
    """One process's group commit of page looks."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self._connection = GateConnection(database_url)
        self._batches: GroupCommit[tuple[UUID, bytes | None], PageLook] = GroupCommit(self._send, self._connection.drop)

    def start(self) -> None:
        self._batches.start()

    async def close(self) -> None:
        await self._batches.close()
        await self._connection.drop()

    async def look(self, strategy_id: UUID, session_token: str | None) -> PageLook:
        return await self._batches.submit((strategy_id, hash_secret(session_token) if session_token else None))

    async def _send(self, items: list[tuple[UUID, bytes | None]]) -> list[PageLook]:
        conn = await self._connection.get()
        ids = [s for s, _ in items]
        async with conn.pipeline():
            faces, records, sessions = conn.cursor(), conn.cursor(), conn.cursor()
            versions, board, prices = conn.cursor(), conn.cursor(), conn.cursor()
            await send_page_reads(faces, records, sessions, ids, [t for _, t in items if t is not None])
            await send_versions(versions, ids)
            await send_board_version(board)
            await send_price_version(prices)
        profiles, owners, users = await read_page_reads(faces, records, sessions)
        navs, trials = await read_versions(versions)
        board_version = await read_board_version(board)
        price_version = await read_price_version(prices)
        out = []
        for strategy_id, token in items:
            profile = profiles.get(strategy_id)
            owner = None if profile is None or profile.owner_id is None else owners.get(profile.owner_id)
            user = users.get(token) if token is not None else None
            out.append(PageLook(profile, user, owner, navs.get(strategy_id), trials, price_version, board_version))
        return out
