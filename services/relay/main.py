"""``python -m services.relay.main`` (``botranks relay``): publish the event store to JetStream.

Run one or more: they elect a leader with a PostgreSQL advisory lock and the others stand by.
"""

from __future__ import annotations

import asyncio
import signal

from libs.infra.db import Database
from libs.infra.logs import configure_logging
from libs.infra.settings import Settings

from .relay import Relay


async def run_relay(settings: Settings) -> None:
    db = Database(settings.database_url, pool_size=1, max_overflow=2)
    await asyncio.to_thread(db.create_tables)
    relay = Relay(db, settings.nats_url)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, relay.stop)
    try:
        await relay.run()
    finally:
        await asyncio.to_thread(db.close)


def main() -> None:
    settings = Settings.from_env()
    configure_logging("relay", settings.log_level)
    asyncio.run(run_relay(settings.require_servers()))


if __name__ == "__main__":
    main()
