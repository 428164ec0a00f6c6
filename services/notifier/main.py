"""``python -m services.notifier.main``: deliver the followers' webhooks (``notifier``), in a process of
its own. ``BOTRANKS_WEBHOOKS_ALLOW_PRIVATE=1`` lets deliveries reach loopback and private networks
(a test or an intranet); otherwise they are refused."""

from __future__ import annotations

import signal
import threading

from libs.infra.db import Database
from libs.infra.follows.guard import ALLOW_PRIVATE, allow_private
from libs.infra.logs import configure_logging
from libs.infra.serve import exit_by_deadline
from libs.infra.settings import Settings

from .notifier import Notifier

__all__ = ["ALLOW_PRIVATE", "allow_private", "main"]


def main() -> None:
    settings = Settings.from_env().require_servers()
    log = configure_logging("notifier", settings.log_level)
    stopping = threading.Event()

    def on_signal(signum: int, _frame) -> None:
        exit_by_deadline(signum)  # an attempt in flight (at most 5 s) does not hold the stop up
        stopping.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    db = Database(settings.database_url, pool_size=2, max_overflow=4).create_tables()
    log.info("notifier_started", allow_private=allow_private())
    try:
        Notifier(db, settings.url, allow_private=allow_private()).run(stop=stopping.is_set)
    finally:
        db.close()


if __name__ == "__main__":
    main()
