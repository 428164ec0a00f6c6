"""The version of everything in the price cache: the newest ``price_updates`` id (every close written,
rates included, moves it), read in the round trip of the key check (``libs.infra.key_gate``) for the
per-process read caches."""

from __future__ import annotations

from psycopg import AsyncCursor

PRICE_VERSION_SQL = "SELECT coalesce(max(id), 0) FROM price_updates"


async def send_price_version(curs: AsyncCursor) -> None:
    await curs.execute(PRICE_VERSION_SQL, prepare=True)


async def read_price_version(curs: AsyncCursor) -> int:
    row = await curs.fetchone()
    return 0 if row is None else row[0]
