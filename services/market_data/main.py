"""``python -m services.market_data.main``: the market-data daemon (idle without a Polygon key)."""

from __future__ import annotations

import os
import signal
import time

from libs.infra.logs import configure_logging
from libs.infra.settings import Settings
from libs.infra.store import EventStore

from .polygon import PolygonClient
from .service import MarketDataDaemon


def main() -> None:
    settings = Settings.from_env()
    log = configure_logging("market_data", settings.log_level)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    api_key = os.environ.get("BOTRANKS_POLYGON_API_KEY", "")
    if not api_key:
        log.info("polygon_not_configured", hint="set BOTRANKS_POLYGON_API_KEY, or load prices with"
                 " `botranks prices import`")
        while not stopping:
            time.sleep(1)
        return
    store = EventStore(settings.database_url, pool_size=1)
    store.create_tables()
    with PolygonClient(api_key) as client:
        MarketDataDaemon(store, client).run(stop=lambda: bool(stopping))
    store.close()


if __name__ == "__main__":
    main()
