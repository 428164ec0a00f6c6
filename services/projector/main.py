"""``python -m services.projector.main [run|rebuild]``: the projector daemon, or a full rebuild."""

from __future__ import annotations

import argparse
import asyncio
import signal

from libs.infra.logs import configure_logging
from libs.infra.settings import Settings
from libs.infra.store import EventStore

from .consumer import ProjectorDaemon
from .projection import rebuild


async def run_daemon(settings: Settings) -> None:
    store = EventStore(settings.database_url, pool_size=2, max_overflow=4)
    await asyncio.to_thread(store.create_tables)
    daemon = ProjectorDaemon(store, settings.nats_url)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, daemon.stop)
    try:
        await daemon.run()
    finally:
        await asyncio.to_thread(store.close)


def run_rebuild(settings: Settings) -> int:
    store = EventStore(settings.database_url, pool_size=2)
    try:
        store.create_tables()
        return rebuild(store)
    finally:
        store.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="BotRanks projector")
    parser.add_argument("command", nargs="?", default="run", choices=["run", "rebuild"])
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    configure_logging("projector", settings.log_level)
    if args.command == "rebuild":
        run_rebuild(settings)
    else:
        asyncio.run(run_daemon(settings))


if __name__ == "__main__":
    main()
