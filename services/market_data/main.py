"""``python -m services.market_data.main``: the market-data daemon (idle without a Polygon key)."""

from __future__ import annotations

import signal
import time

from libs.infra.db import Database
from libs.infra.logs import configure_logging
from libs.infra.settings import Settings

from .polygon import PolygonClient
from .service import MarketDataDaemon


def main() -> None:
    settings = Settings.from_env().require_servers()
    log = configure_logging("market_data", settings.log_level)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    if not settings.polygon_api_key:
        log.info("polygon_not_configured", hint="set BOTRANKS_POLYGON_API_KEY, or load prices with"
                 " `botranks prices import`")
        while not stopping:
            time.sleep(1)
        return
    db = Database(settings.database_url, pool_size=1).create_tables()
    with PolygonClient(settings.polygon_api_key) as client:
        MarketDataDaemon(db, client).run(stop=lambda: bool(stopping))
    db.close()


if __name__ == "__main__":
    main()
