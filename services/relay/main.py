"""``python -m services.relay.main`` (``botranks relay``): publish the event store to JetStream.

Run one or more: they elect a leader with a PostgreSQL advisory lock and the others stand by.
"""

from __future__ import annotations

import asyncio

from libs.infra.db import Database
from libs.infra.health import DatabaseProbe, HealthServer, health_app
from libs.infra.logs import configure_logging
from libs.infra.serve import freeze_startup_heap, run_until_stopped
from libs.infra.settings import Settings

from .relay import Relay


async def run_relay(settings: Settings) -> None:
    db = Database(settings.database_url, pool_size=1, max_overflow=2)
    await asyncio.to_thread(db.create_tables)
    relay = Relay(db, settings.nats_url, settings.nats_stream_replicas)

    async def readiness() -> tuple[bool, dict]:
        """A standby is ready (it only waits for the lock); the leader while JetStream takes its publishes
        and it is no more than the bound behind the log."""
        if not relay.is_leader:
            await asyncio.to_thread(db.events.max_notification_id)  # the database answers
            return True, {"role": "standby"}
        lag = max(0, await asyncio.to_thread(db.events.max_notification_id) - relay.position)
        return relay.publishing and lag <= settings.ready_max_lag, {
            "role": "leader",
            "nats": "up" if relay.publishing else "down",
            "lag_events": lag,
            "max_lag": settings.ready_max_lag,
        }

    probe = DatabaseProbe(settings.database_url)
    health = HealthServer(health_app("relay", readiness, probe), settings.health_host, settings.health_port).start()
    freeze_startup_heap()
    try:
        await run_until_stopped(relay.run, relay.stop)
    finally:  # together: each waits a little (uvicorn's ticks, a cancelled statement's thread)
        await asyncio.gather(health.stop(), probe.close(), asyncio.to_thread(db.close))


def main() -> None:
    settings = Settings.from_env()
    configure_logging("relay", settings.log_level)
    asyncio.run(run_relay(settings.require_servers()))


if __name__ == "__main__":
    main()
