"""``python -m services.demo_live.main --api-port PORT`` (or ``--base-url URL``): the demo's live loop, a
process of ``botranks up`` (which gives it its command API's port).

Idle until ``botranks demo`` has made its bots; then, every ``POLL_S`` seconds, the live bots trade
their hour's slot (``live.live_tick``) and, once per new daily close of the demo market (20:00
UTC), the sample bots get that day's bars and send its orders (``live.daily_close``), all through
the public API (the command API at 127.0.0.1:``PORT``, or ``URL``), with the bots' own keys. A
failed round is logged and retried at the next poll (every order is idempotent by its id). A round
runs only under the demo's lock (``replay.exclusively``): while ``botranks demo`` runs, the loop waits."""

from __future__ import annotations

import argparse
import signal
import threading
from datetime import UTC, date, datetime

from libs.infra.db import Database
from libs.infra.logs import configure_logging
from libs.infra.serve import exit_by_deadline
from libs.infra.settings import Settings

from .live import Keys, daily_close, last_close, live_tick
from .replay import exclusively

POLL_S = 30.0


def main() -> None:
    parser = argparse.ArgumentParser(prog="demo_live")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--api-port", type=int, help="the command API's port on 127.0.0.1")
    where.add_argument("--base-url", help="where the public API answers")
    args = parser.parse_args()
    base = args.base_url or f"http://127.0.0.1:{args.api_port}"
    settings = Settings.from_env().require_servers()
    log = configure_logging("demo_live", settings.log_level)
    stopping = threading.Event()

    def on_signal(signum: int, _frame) -> None:
        exit_by_deadline(signum)  # a request in flight does not hold the stop up
        stopping.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    db = Database(settings.database_url, pool_size=1).create_tables()
    keys = Keys(db)
    closed: date | None = None  # the last daily close the sample bots were brought to
    try:
        while not stopping.is_set():
            now = datetime.now(UTC)
            try:
                with exclusively(settings.database_url, None) as mine:
                    if mine:  # else `botranks demo` is running: next poll
                        traded = live_tick(db, base, now, keys)
                        if traded:
                            log.info("demo_live_traded", bots=traded)
                        if closed != last_close(now):
                            sent = daily_close(db, base, now, keys)
                            if sent is not None:  # the demo is here: this close is done
                                closed = last_close(now)
                                log.info("demo_daily_close", day=closed.isoformat(), orders=sent)
            except Exception as error:  # noqa: BLE001 - a round that failed is tried again at the next poll
                log.warning("demo_live_round_failed", error=str(error)[:300])
            stopping.wait(POLL_S)
    finally:
        db.close()


if __name__ == "__main__":
    main()
