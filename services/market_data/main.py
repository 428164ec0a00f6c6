"""``python -m services.market_data.main``: the market-data daemon (idle without a Polygon key)."""

from __future__ import annotations

import signal
import threading

from libs.infra.db import Database
from libs.infra.logs import configure_logging
from libs.infra.serve import exit_by_deadline
from libs.infra.settings import Settings

from .polygon import PolygonClient
from .service import MarketDataDaemon


def main() -> None:
    settings = Settings.from_env().require_servers()
    log = configure_logging("market_data", settings.log_level)
    stopping = threading.Event()

    def on_signal(signum: int, _frame) -> None:
        exit_by_deadline(signum)  # a tick in the middle of a Polygon call does not hold the stop up
        stopping.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    if not settings.polygon_api_key:
        log.info(
            "polygon_not_configured", hint="set BOTRANKS_POLYGON_API_KEY, or load prices with `botranks prices import`"
        )
        while not stopping.wait(0.1):
            pass
        return
    db = Database(settings.database_url, pool_size=1).create_tables()
    with PolygonClient(settings.polygon_api_key) as client:
        MarketDataDaemon(db, client).run(stop=stopping.is_set)
    db.close()


if __name__ == "__main__":
    main()
