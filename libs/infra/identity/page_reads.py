"""What a public page needs of identity, for a batch of page requests in one pipeline (``libs.infra.page_gate``):
each strategy's profile, its owner's record (strategies started: public, private, deleted) and which of the
session cookies sent are live sessions of whom. The same rows as :meth:`Identity.profile`,
:meth:`Identity.owner_record` and :meth:`Identity.session_user`, for many requests at once."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from psycopg import AsyncCursor

from botranks_domain.accounts import StrategyProfile

from .accounts import PROFILES_SQL

OWNER_RECORDS_SQL = (
    "SELECT s.owner_id, count(*) FILTER (WHERE s.visibility = 'public') AS public,"
    " count(*) FILTER (WHERE s.visibility <> 'public') AS private, min(u.strategies_deleted) AS deleted"
    " FROM strategies AS s JOIN users AS u ON u.id = s.owner_id"
    " WHERE s.owner_id IN (SELECT owner_id FROM strategies WHERE id = ANY(%s)) GROUP BY s.owner_id"
)
SESSIONS_SQL = (
    "SELECT token_hash, user_id FROM sessions WHERE token_hash = ANY(%s) AND ended_at IS NULL AND expires_at > now()"
)


async def send_page_reads(
    faces: AsyncCursor, records: AsyncCursor, sessions: AsyncCursor, strategies: Sequence[UUID], tokens: Sequence[bytes]
) -> None:
    """Send the three statements (in the caller's pipeline); read them with :func:`read_page_reads`."""
    ids = sorted(set(strategies))
    await faces.execute(f"{PROFILES_SQL} WHERE s.id = ANY(%s)", (ids,), prepare=True)
    await records.execute(OWNER_RECORDS_SQL, (ids,), prepare=True)
    await sessions.execute(SESSIONS_SQL, (sorted(set(tokens)),), prepare=True)


async def read_page_reads(
    faces: AsyncCursor, records: AsyncCursor, sessions: AsyncCursor
) -> tuple[dict[UUID, StrategyProfile], dict[UUID, dict[str, int]], dict[bytes, UUID]]:
    """Profiles by strategy id, owner records by owner id, the session's user by token hash (live ones)."""
    columns = [c.name for c in faces.description or ()]
    profiles = {row[0]: StrategyProfile(**dict(zip(columns, row, strict=True))) for row in await faces.fetchall()}
    owners = {o: {"public": p, "private": q, "deleted": d} for o, p, q, d in await records.fetchall()}
    users = {bytes(h): u for h, u in await sessions.fetchall()}
    return profiles, owners, users


__all__ = ["read_page_reads", "send_page_reads"]
