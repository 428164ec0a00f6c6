"""``python -m services.projector.main [run|rebuild]``: the projector daemon, or a full rebuild."""

from __future__ import annotations

import argparse
import asyncio

from libs.infra.db import Database
from libs.infra.health import DatabaseProbe, HealthServer, health_app
from libs.infra.logs import configure_logging
from libs.infra.metrics import StoreCollector
from libs.infra.serve import freeze_startup_heap, run_until_stopped
from libs.infra.settings import Settings

from .consumer import ProjectorDaemon
from .history_cache import HISTORIES
from .rebuild import rebuild


async def run_daemon(settings: Settings) -> None:
    db = Database(settings.database_url, pool_size=2, max_overflow=4)
    await asyncio.to_thread(db.create_tables)
    HISTORIES.max_events = settings.projector_history_cache_events
    daemon = ProjectorDaemon(db, settings.nats_url, settings.nats_stream_replicas)

    async def readiness() -> tuple[bool, dict]:
        """The database answers and none of this projector's partitions is more than the bound behind."""
        head = await asyncio.to_thread(db.events.max_notification_id)
        positions = await asyncio.to_thread(db.projection.partition_positions)
        owned = sorted(daemon.owned)
        lag = {str(p): max(0, head - positions.get(p, 0)) for p in owned}
        ready = all(v <= settings.ready_max_lag for v in lag.values())
        return ready, {"partitions_owned": owned, "lag_events": lag, "max_lag": settings.ready_max_lag}

    probe = DatabaseProbe(settings.database_url)
    health = HealthServer(
        health_app("projector", readiness, probe, [StoreCollector(db)]), settings.health_host, settings.health_port
    ).start()
    freeze_startup_heap()
    try:
        await run_until_stopped(daemon.run, daemon.stop)
    finally:  # together: each waits a little (uvicorn's ticks, a cancelled statement's thread)
        await asyncio.gather(health.stop(), probe.close(), asyncio.to_thread(db.close))


def run_rebuild(settings: Settings, partitions: int | None = None) -> int:
    db = Database(settings.database_url, pool_size=2)
    try:
        return rebuild(db.create_tables(), partitions=partitions)
    finally:
        db.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="BotRanks projector")
    parser.add_argument("command", nargs="?", default="run", choices=["run", "rebuild"])
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    configure_logging("projector", settings.log_level)
    if args.command == "rebuild":
        if not settings.database_url:
            raise SystemExit("BOTRANKS_DATABASE_URL must be set (or use `botranks projector rebuild`)")
        run_rebuild(settings)
    else:
        asyncio.run(run_daemon(settings.require_servers()))


if __name__ == "__main__":
    main()
